// The billing run (BILLING_RULES 8): materialize every transition due through D, then issue, in
// date order, every invoice whose date is after the billing clock and on or before D, then move
// the clock to D. Part of Ledger: it appends through the same pipeline as every command.
#include <algorithm>
#include <cassert>
#include <exception>
#include <tuple>

#include "ledger/ledger.h"

namespace subledger {

namespace {

constexpr int kHorizonYears = 10;  // INTERFACE.md: run_billing's horizon

// The last date a run may bill through when it starts from `base`: 10 years later (a 29 February
// base gives 1 March), never past the last representable year.
Date horizon_after(Date base) {
  constexpr int kLastYear = 9999;
  if (base.year() + kHorizonYears > kLastYear) return Date::from_ymd(kLastYear, 12, 31);
  return Date::from_ymd(base.year() + kHorizonYears, base.month(), 1)
      .plus_days(static_cast<int32_t>(base.day()) - 1);
}

// The partner's invoice dates in (after, through], given its billing day: every one of them (the
// horizon bounds how many; the clock must never pass a date that was not invoiced).
std::vector<Date> invoice_dates(int billing_day, Date after, Date through) {
  std::vector<Date> out;
  Date d = Date::from_ymd(after.year(), after.month(), static_cast<unsigned>(billing_day));
  for (; d <= through; d = d.plus_months(1)) {
    if (d > after) out.push_back(d);
    assert(out.size() <= 12 * (kHorizonYears + 1) && "a billing run within the horizon");
  }
  return out;
}

// Where a never-billed ledger's horizon starts: the earliest pending charge of any partner, else
// the latest date a subscription has seen (a ledger of trials only), else none.
Date horizon_base_unbilled(const LedgerState& state) {
  Date base;
  for (const auto& [partner_id, partner] : state.catalog().partners()) {
    Date d = state.earliest_pending(partner);
    if (!d.is_none() && (base.is_none() || d < base)) base = d;
  }
  if (!base.is_none()) return base;
  for (const auto& id : state.subscription_ids()) {
    Date d = state.subscription(id)->last_event_date;
    if (!d.is_none() && (base.is_none() || d > base)) base = d;
  }
  return base;
}

}  // namespace

CommandResult Ledger::run_billing(const Command& command, const std::string& hash,
                                  const UnfinishedRun* resumed) {
  const Date through = command.date;
  const Date clock = state_.billing_clock();
  if (!clock.is_none() && through < clock)
    return CommandResult{
        command.request_id,
        false,
        false,
        0,
        0,
        "DATE_BEFORE_BILLING_CLOCK",
        "the billing clock is at " + clock.iso() + "; bill through that date or later",
        ""};
  // INTERFACE.md: at most 10 years past the clock, or past the earliest pending charge when the
  // ledger was never billed; further runs go one horizon at a time.
  const Date base = clock.is_none() ? horizon_base_unbilled(state_) : clock;
  if (base.is_none())
    // Nothing dated to bill from: a run would only move the clock, and a clock set far ahead
    // would refuse every later command of the ledger.
    return CommandResult{command.request_id,
                         false,
                         false,
                         0,
                         0,
                         "INVALID_ARGUMENT",
                         "nothing to bill: the ledger has no subscription yet; run the billing "
                         "after the first one",
                         ""};
  if (through > horizon_after(base))
    return CommandResult{
        command.request_id,
        false,
        false,
        0,
        0,
        "INVALID_ARGUMENT",
        "through " + through.iso() + " is more than " + std::to_string(kHorizonYears) +
            " years after " +
            (clock.is_none() ? "the ledger's first charge or latest subscription date "
                             : "the billing clock ") +
            base.iso() + "; bill through " + horizon_after(base).iso() +
            " or earlier, then run again",
        ""};
  BillingSummary summary;
  summary.through = through;
  summary.previous_clock = clock;
  summary.dry_run = options_.preview;
  CommandResult result;
  result.request_id = command.request_id;
  result.ok = true;
  auto note = [&](uint64_t seq) {
    if (result.seq_first == 0) result.seq_first = seq;
    result.seq_last = seq;
  };
  if (resumed) {
    // The parts already written: the run goes on after them (what they materialized is no longer
    // due, the invoices they issued no longer pending), with the same events as if never cut.
    result.seq_first = resumed->seq_first;
    summary.invoices_issued = resumed->invoices_issued;
    summary.transitions = resumed->transitions;
  }
  // Parts: once enough is staged, it is written with the rows and the run's progress, and the
  // derived mark held before the run (its idempotency record is derived whole, once it ends).
  // A ledger's first run is never cut: without a clock, where each partner's invoice dates
  // begin is read from its pending charges, which its own invoices consume, so what is left of
  // it could not be decided again the same way.
  bool in_parts = resumed != nullptr;
  auto write_part_if_due = [&]() -> absl::Status {
    if (options_.preview || options_.billing_part_bytes == 0 || clock.is_none() ||
        result.seq_first == 0 || store_->staged_bytes() < options_.billing_part_bytes)
      return absl::OkStatus();
    UnfinishedRun progress{command.request_id, hash,          command.actor,
                           through,            result.seq_first, summary.invoices_issued,
                           summary.transitions};
    store_->stage_unfinished_run(progress.encode());
    store_->hold_derived_mark(result.seq_first - 1);
    in_parts = true;
    commits_since_rows_ = options_.projection_every_commits;
    // Written on the store's thread while the run goes on (a part acknowledges nothing); the
    // next part, or the caller's commit of the run's end, waits for it.
    return commit_async();
  };
  // Once a part is written, a run that stops before its end (an exception out of deciding) leaves
  // the log holding half of it: nothing more may be decided after it in this process (the next
  // open ends the run first).
  struct UnusableIfCut {
    Ledger& ledger;
    const bool& in_parts;
    const int exceptions = std::uncaught_exceptions();
    ~UnusableIfCut() {
      if (in_parts && std::uncaught_exceptions() > exceptions && ledger.unusable_.ok())
        ledger.unusable_ = absl::InternalError(
            "a billing run stopped part-way; reopen the ledger to end it");
    }
  } unusable_if_cut{*this, in_parts};
  auto part_failed = [&](const absl::Status& error) {
    io_failure_ = std::string(error.message());
    return CommandResult{command.request_id, false, false, 0, 0, "UNAVAILABLE", io_failure_, ""};
  };

  // 1. What time brings, for every subscription, in creation order.
  // By reference: a run materializes transitions and opens no subscription, so the list stays
  // as it is (a copy held every id of the ledger a second time).
  assert(!on_demand_ && "a billing run decides over the whole state (load_for)");
  const std::vector<std::string>& ids = state_.subscription_ids();
  for (const auto& id : ids) {
    std::vector<Staged> due = due_transitions(*state_.subscription(id), through, state_);
    for (const auto& staged : due) note(append(staged, command));
    summary.transitions += static_cast<uint32_t>(due.size());
    if (absl::Status error = write_part_if_due(); !error.ok()) return part_failed(error);
  }

  // 2. Invoice dates of every partner after the clock, issued in date order, then partner id.
  std::vector<std::tuple<Date, std::string>> runs;
  for (const auto& [partner_id, partner] : state_.catalog().partners()) {
    Date after = clock;
    if (after.is_none()) {
      Date earliest = state_.earliest_pending(partner);
      if (earliest.is_none()) continue;
      after = earliest.plus_days(-1);
    }
    for (Date d : invoice_dates(partner.def.billing_day, after, through))
      runs.emplace_back(d, partner_id);
  }
  std::sort(runs.begin(), runs.end());
  for (const auto& [date, partner_id] : runs) {
    const Partner* partner = state_.catalog().partner(partner_id);
    for (const auto& customer_id : partner->customer_ids) {
      state_.advance_customer(customer_id, date);
      std::optional<Invoice> invoice = state_.build_invoice(customer_id, date);
      if (!invoice) continue;
      InvoiceIssued issued{invoice->invoice_id,
                           customer_id,
                           partner_id,
                           date,
                           invoice->currency,
                           invoice->total_minor,
                           invoice->line_count,
                           invoice->lines_sha256,
                           /*chain_head, set when stamped*/ ""};
      summary.totals_minor[invoice->currency] += invoice->total_minor;
      summary.invoice_ids.push_back(invoice->invoice_id);
      ++summary.invoices_issued;
      note(append(Staged{issued, date, false}, command, &*invoice));
      if (absl::Status error = write_part_if_due(); !error.ok()) return part_failed(error);
    }
  }

  // 3. The clock moves to D. The run's end also ends its parts: the progress record goes and the
  // derived mark may cover the run, whose record is staged below (both land with this batch).
  note(
      append(Staged{BillingRun{through, clock, summary.invoices_issued}, through, false}, command));
  if (in_parts) {
    store_->stage_unfinished_run("");
    store_->hold_derived_mark(std::nullopt);
    // Each part wrote rows and reset the count: the end's commit carries them again (invoices
    // are read from their rows), however rarely the rows are written otherwise.
    if (options_.rows_with_billing_runs) commits_since_rows_ = options_.projection_every_commits;
  }
  result.extra_json = "\"invoices_issued\":" + std::to_string(summary.invoices_issued);
  last_billing_ = std::move(summary);
  remember(command, hash, result);
  return result;
}

}  // namespace subledger
