// The billing run (BILLING_RULES 8): materialize every transition due through D, then issue, in
// date order, every invoice whose date is after the billing clock and on or before D, then move
// the clock to D. Part of Ledger: it appends through the same pipeline as every command.
#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <spdlog/spdlog.h>

#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "projections/projection_rows.h"
#include "projections/row_codec.h"

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

// What a billing run over rows on disk (Options::load_on_demand) reads before it decides, so it
// holds only the customers it is deciding: the subscriptions time brings a transition, in
// creation order, and the latest date any subscription has seen.
struct DueRows {
  struct Due {
    uint64_t ordinal = 0;
    std::string id, customer_id;
    // Its transitions look at no other subscription of the customer: no promotion on renewal
    // names its offer (BILLING_RULES 12), so it is loaded alone
    // (LedgerState::load_subscription_of).
    bool alone = false;
  };
  std::vector<Due> due;
  Date latest_event;
};

// Reads every subscription's row (a loaded subscription as the state holds it) in one pass.
absl::StatusOr<DueRows> read_due(const Store& store, const LedgerState& state, Date through) {
  DueRows out;
  std::set<std::string> promoted;  // offers a promotion on renewal names
  for (const auto& [id, promotion] : state.catalog().promotions())
    if (promotion.def.applies_to_renewal)
      promoted.insert(promotion.def.offer_ids.begin(), promotion.def.offer_ids.end());
  absl::Status bad;
  absl::Status read = store.scan_projections(
      kSubscriptionRowPrefix, [&](std::string_view key, std::string_view value) {
        std::optional<SubscriptionDue> row = decode_subscription_due(value);
        if (!row) {
          bad = absl::DataLossError("the row " + std::string(key.substr(0, 200)) +
                                    " is unreadable");
          return false;
        }
        if (const Subscription* loaded = state.subscription(row->id)) {
          row->status = loaded->status;
          row->trial_end = loaded->trial_end;
          row->term_end = loaded->term.end;
          row->last_event_date = loaded->last_event_date;
        }
        if (!row->last_event_date.is_none() &&
            (out.latest_event.is_none() || row->last_event_date > out.latest_event))
          out.latest_event = row->last_event_date;
        if (row->due_by(through))
          out.due.push_back({row->ordinal, std::move(row->id), std::move(row->customer_id),
                             !promoted.contains(row->offer_id)});
        return true;
      });
  if (!read.ok()) return read;
  if (!bad.ok()) return bad;
  std::sort(out.due.begin(), out.due.end(),
            [](const DueRows::Due& a, const DueRows::Due& b) { return a.ordinal < b.ordinal; });
  return out;
}

// Each partner's customers in id order (the order invoices are cut in) and, with `pending`, the
// earliest charge date among their pending lines (LedgerState::earliest_pending), from the
// customers' rows in one pass: a loaded customer's lines as the state holds them.
struct CustomerRows {
  std::map<std::string, std::vector<std::string>> customers;  // by partner
  std::map<std::string, Date> earliest_pending;               // by partner, where any
};

absl::StatusOr<CustomerRows> read_customers(const Store& store, const LedgerState& state,
                                            bool pending) {
  CustomerRows out;
  absl::Status bad;
  std::string partner;      // of the customer whose rows are being read
  bool from_state = false;  // its lines are the state's (it is loaded)
  auto note_line = [&](Date d) {
    auto [it, added] = out.earliest_pending.try_emplace(partner, d);
    if (!added && d < it->second) it->second = d;
  };
  absl::Status read = store.scan_projections(
      kCustomerRowPrefix, [&](std::string_view key, std::string_view value) {
        std::optional<CustomerRowKey> parsed = parse_customer_row_key(key);
        auto unreadable = [&]() {
          bad = absl::DataLossError("the row " + std::string(key.substr(0, 200)) +
                                    " is unreadable");
          return false;
        };
        if (!parsed) return unreadable();
        if (parsed->kind == CustomerRowKey::Kind::kCustomer) {
          std::optional<std::string> partner_id = decode_customer_partner(value);
          if (!partner_id) return unreadable();
          partner = std::move(*partner_id);
          out.customers[partner].push_back(std::move(parsed->customer_id));
          from_state = pending && state.catalog().customer(out.customers[partner].back());
          if (from_state)
            if (const std::vector<ChargeLine>* lines =
                    state.pending_lines(out.customers[partner].back()))
              for (const ChargeLine& line : *lines) note_line(line.charge_date);
        } else if (parsed->kind == CustomerRowKey::Kind::kLine && pending && !from_state) {
          std::optional<Date> d = decode_charge_line_date(value);
          if (!d) return unreadable();
          note_line(*d);
        }
        return true;
      });
  if (!read.ok()) return read;
  if (!bad.ok()) return bad;
  return out;
}

// Invoicing on disk loads each partner's customers in an order known before it starts (step 2
// of run_billing). These threads read their rows in that order, on the core the deciding thread
// leaves idle, in batches of kBatch customers, batch i by thread i % kThreads, at most
// kBatchesAhead batches ahead of the deciding thread, so memory stays bounded. (Reading and
// decoding a customer's rows costs more than deciding it: with one thread reading ahead, the
// deciding thread waited for it about half the time, at 1M subscriptions.) The deciding thread
// takes one customer's place at a time, in the same order; a batch read before a customer was
// dropped is not used (Ledger::load_customer checks RowPrefetch::generation), and its customers
// are read again where they are loaded.
class CustomerReadAhead {
 public:
  using ReadBatch = std::function<void(const std::vector<const std::string*>&, RowPrefetch&)>;
  // `order`: the customers, each as often as it will be loaded; they must outlive this.
  // `read` is called from several threads at once.
  CustomerReadAhead(std::vector<const std::string*> order, ReadBatch read)
      : order_(std::move(order)), read_(std::move(read)) {
    for (size_t i = 0; i < kThreads; ++i) threads_.emplace_back([this, i] { run(i); });
  }
  ~CustomerReadAhead() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }
  CustomerReadAhead(const CustomerReadAhead&) = delete;
  CustomerReadAhead& operator=(const CustomerReadAhead&) = delete;

  // What was read ahead for the next customer of the order (waiting for it).
  RowPrefetch* next() {
    assert(taken_ < order_.size() && "no more customers than the order holds");
    if (taken_++ % kBatch == 0) {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return ready_.contains(next_batch_); });
      auto batch = ready_.find(next_batch_);
      current_ = std::move(batch->second);
      ready_.erase(batch);
      ++next_batch_;
      lock.unlock();
      changed_.notify_all();
    }
    return &current_;
  }

 private:
  static constexpr size_t kThreads = 2;
  static constexpr size_t kBatch = 16;
  static constexpr size_t kBatchesAhead = 8;

  void run(size_t thread) {
    const size_t batches = (order_.size() + kBatch - 1) / kBatch;
    for (size_t i = thread; i < batches; i += kThreads) {
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || i < next_batch_ + kBatchesAhead; });
        if (stopping_) return;
      }
      const size_t begin = i * kBatch, end = std::min(order_.size(), begin + kBatch);
      RowPrefetch batch;
      read_(std::vector<const std::string*>(order_.begin() + begin, order_.begin() + end), batch);
      {
        std::lock_guard lock(mutex_);
        ready_.emplace(i, std::move(batch));
      }
      changed_.notify_all();
    }
  }

  const std::vector<const std::string*> order_;
  const ReadBatch read_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<size_t, RowPrefetch> ready_;  // read, not yet taken, by batch number
  size_t next_batch_ = 0;                // the deciding thread's next
  bool stopping_ = false;
  RowPrefetch current_;  // the deciding thread's
  size_t taken_ = 0;
  std::vector<std::thread> threads_;  // last: they start once the members above exist
};

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
  // State on disk: what the run bills is read from the rows first (load_for wrote them), and
  // each customer is loaded as its turn comes. Rows that cannot be read: the whole state.
  std::optional<DueRows> due_rows;
  std::optional<CustomerRows> customer_rows;
  if (on_demand_) {
    // Two scans of different rows, side by side: the customers' on another thread (both only
    // read the store and the state).
    std::future<absl::StatusOr<CustomerRows>> customers_read =
        std::async(std::launch::async, [&, pending = clock.is_none() && !resumed] {
          return read_customers(*store_, state_, pending);
        });
    absl::StatusOr<DueRows> due = read_due(*store_, state_, through);
    absl::StatusOr<CustomerRows> customers = customers_read.get();
    if (!due.ok()) customers = due.status();
    if (customers.ok()) {
      due_rows = std::move(*due);
      customer_rows = std::move(*customers);
    } else {
      options_.logger->warn("loading the whole state: {}",
                            std::string(customers.status().message()));
      if (absl::Status error = load_whole_state(); !error.ok()) {
        io_failure_ = std::string(error.message());
        return CommandResult{command.request_id, false, false, 0, 0, "UNAVAILABLE", io_failure_,
                             ""};
      }
    }
  }
  // INTERFACE.md: at most 10 years past the clock, or past the earliest pending charge when the
  // ledger was never billed; further runs go one horizon at a time. (A run resumed after a crash
  // was accepted before its first part.)
  Date base = clock;
  if (base.is_none() && customer_rows) {
    for (const auto& [partner_id, earliest] : customer_rows->earliest_pending)
      if (base.is_none() || earliest < base) base = earliest;
    if (base.is_none()) base = due_rows->latest_event;
  } else if (base.is_none()) {
    base = horizon_base_unbilled(state_);
  }
  if (base.is_none() && !resumed)
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
  if (!resumed && through > horizon_after(base))
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
  // A ledger's first run (no clock): where each partner's invoice dates begin, once invoicing
  // begins (step 2). Parts written from then on record it: the run's own invoices consume the
  // pending charges it is read from.
  std::optional<std::map<std::string, Date>> starts;
  // Parts: once enough is staged, it is written with the rows and the run's progress, and the
  // derived mark held before the run (its idempotency record is derived whole, once it ends).
  bool in_parts = resumed != nullptr;
  // On disk, a part is also due once more subscriptions are loaded than the ledger keeps: it is
  // what lets them be dropped (invoicing loads every customer, and most add no event).
  const bool parts = !options_.preview && options_.billing_part_bytes != 0;
  auto write_part = [&](bool force) -> absl::Status {
    if (!parts || result.seq_first == 0) return absl::OkStatus();
    if (!force && store_->staged_bytes() < options_.billing_part_bytes &&
        !(customer_rows && state_.loaded_entities() > options_.loaded_subscriptions_max))
      return absl::OkStatus();
    UnfinishedRun progress{command.request_id, hash,          command.actor,
                           through,            result.seq_first, summary.invoices_issued,
                           summary.transitions, starts};
    store_->stage_unfinished_run(progress.encode());
    store_->hold_derived_mark(result.seq_first - 1);
    in_parts = true;
    commits_since_rows_ = options_.projection_every_commits;
    // Written on the store's thread while the run goes on (a part acknowledges nothing); the
    // next part, or the caller's commit of the run's end, waits for it. (On demand, a part that
    // leaves many customers loaded drops them once written: commit_async.)
    return commit_async();
  };
  auto write_part_if_due = [&]() { return write_part(/*force=*/false); };
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
  // A run that stops part-way (an unreadable row on disk, a failed write) has decided and staged
  // some of its events: nothing more is decided in this process (the next writer's open ends a
  // run whose parts were written; what was only staged is never written).
  auto part_failed = [&](const absl::Status& error) {
    io_failure_ = std::string(error.message());
    if (result.seq_first != 0 && unusable_.ok())
      unusable_ = absl::InternalError("a billing run stopped part-way (" + io_failure_ +
                                      "); reopen the ledger to end it");
    return CommandResult{command.request_id, false, false, 0, 0, "UNAVAILABLE", io_failure_, ""};
  };
  // On demand: the customer whose turn it is, loaded from its rows unless it is loaded.
  auto load = [&](const std::string& customer_id,
                  RowPrefetch* prefetch = nullptr) -> absl::Status {
    if (!customer_rows || state_.catalog().customer(customer_id)) return absl::OkStatus();
    absl::Status loaded = load_customer(customer_id, prefetch);
    if (absl::IsNotFound(loaded))
      return absl::DataLossError("customer " + customer_id + " is named by a row but has none");
    return loaded;
  };

  // 1. What time brings, for every subscription, in creation order.
  auto materialize = [&](const Subscription& sub) -> absl::Status {
    std::vector<Staged> due = due_transitions(sub, through, state_);
    for (const auto& staged : due) note(append(staged, command));
    summary.transitions += static_cast<uint32_t>(due.size());
    return write_part_if_due();
  };
  // On disk: one subscription of a customer loaded in part, from its row.
  auto load_one = [&](const std::string& customer, const std::string& id) -> absl::Status {
    if (state_.subscription(id)) return absl::OkStatus();
    absl::StatusOr<Subscription> sub =
        listed_subscription(customer, id, store_->projection(subscription_row_key(id)));
    if (!sub.ok()) return sub.status();
    return state_.load_subscription_of(std::move(*sub));
  };
  // A customer loaded in part made whole: each subscription it lacks.
  auto make_whole = [&](const std::string& customer) -> absl::Status {
    const std::vector<std::string> ids = state_.catalog().customer(customer)->subscription_ids;
    for (const std::string& id : ids)
      if (absl::Status s = load_one(customer, id); !s.ok()) return s;
    return state_.complete_customer(customer);
  };
  // On disk, a subscription due: loaded alone when its transitions look at no other (its
  // customer then loaded in part), else with its customer whole.
  auto load_due = [&](const DueRows::Due& due) -> absl::Status {
    if (state_.subscription(due.id)) return absl::OkStatus();
    const std::string& customer = due.customer_id;
    const bool in_part = state_.loaded_in_part(customer);
    if (!due.alone && !in_part) return load(customer);
    if (!in_part && state_.catalog().customer(customer)) return absl::OkStatus();  // whole
    if (!in_part) {
      absl::StatusOr<CustomerRow> row = stored_customer(*store_, customer);
      if (absl::IsNotFound(row.status()))
        return absl::DataLossError("customer " + customer + " is named by a row but has none");
      if (!row.ok()) return row.status();
      if (absl::Status s = state_.load_customer_in_part(customer, std::move(*row)); !s.ok())
        return s;
    }
    return due.alone ? load_one(customer, due.id) : make_whole(customer);
  };
  if (due_rows) {
    for (const DueRows::Due& due : due_rows->due) {
      absl::Status done = load_due(due);
      const Subscription* sub = done.ok() ? state_.subscription(due.id) : nullptr;
      if (done.ok() && !sub)
        done = absl::DataLossError("subscription " + due.id + " has a row its customer " +
                                   due.customer_id + " does not list");
      if (done.ok()) done = materialize(*sub);
      if (!done.ok()) return part_failed(done);
    }
    due_rows.reset();
    // Customers loaded in part serve transitions only: before invoicing they are dropped, once
    // a part holds their changes (or at once when nothing was staged: their rows are current),
    // or, when no part may be written, completed.
    if (state_.customers_loaded_in_part() != 0) {
      absl::Status done = write_part(/*force=*/true);
      if (done.ok()) done = wait_committed();
      if (done.ok() && (result.seq_first == 0 || parts)) drop_customers();
      if (done.ok() && state_.customers_loaded_in_part() != 0) {
        std::vector<std::string> customers;
        for (const auto& [partner_id, partner] : state_.catalog().partners())
          for (const std::string& id : partner.customer_ids)
            if (state_.loaded_in_part(id)) customers.push_back(id);
        for (const std::string& id : customers)
          if (done = make_whole(id); !done.ok()) break;
      }
      if (!done.ok()) return part_failed(done);
    }
  } else {
    // By slot, in creation order: a run materializes transitions and opens no subscription, so
    // the slots stay as they are (a lookup by id each cost 2-3% of a run at 1M subscriptions).
    for (size_t slot = 0; slot < state_.subscription_ids().size(); ++slot)
      if (absl::Status error = materialize(state_.subscription_in_slot(slot)); !error.ok())
        return part_failed(error);
  }

  // 2. Invoice dates of every partner after the clock, issued in date order, then partner id.
  if (clock.is_none()) {
    if (resumed && resumed->starts) {
      starts = resumed->starts;
    } else if (customer_rows) {
      absl::StatusOr<CustomerRows> read = read_customers(*store_, state_, /*pending=*/true);
      if (!read.ok()) return part_failed(read.status());
      customer_rows = std::move(*read);
      starts.emplace();
      for (const auto& [partner_id, earliest] : customer_rows->earliest_pending)
        (*starts)[partner_id] = earliest.plus_days(-1);
    } else {
      starts.emplace();
      for (const auto& [partner_id, partner] : state_.catalog().partners())
        if (Date earliest = state_.earliest_pending(partner); !earliest.is_none())
          (*starts)[partner_id] = earliest.plus_days(-1);
    }
  }
  std::vector<std::tuple<Date, std::string>> runs;
  for (const auto& [partner_id, partner] : state_.catalog().partners()) {
    Date after = clock;
    if (after.is_none()) {
      auto start = starts->find(partner_id);
      if (start == starts->end()) continue;  // nothing pending
      after = start->second;
    }
    for (Date d : invoice_dates(partner.def.billing_day, after, through))
      runs.emplace_back(d, partner_id);
  }
  std::sort(runs.begin(), runs.end());
  // On disk, the customers are read ahead in the order they are invoiced in (below).
  std::optional<CustomerReadAhead> read_ahead;
  if (customer_rows) {
    constexpr size_t kReadAheadSubscriptionsMax = 256;  // a larger customer is read in its turn
    std::vector<const std::string*> order;
    for (const auto& [date, partner_id] : runs)
      if (auto customers = customer_rows->customers.find(partner_id);
          customers != customer_rows->customers.end())
        for (const std::string& customer_id : customers->second) order.push_back(&customer_id);
    read_ahead.emplace(std::move(order),
                       [this](const std::vector<const std::string*>& ids, RowPrefetch& out) {
                         prefetch_customers(ids, kReadAheadSubscriptionsMax, out);
                       });
  }
  auto invoice = [&](const std::string& customer_id, const std::string& partner_id,
                     Date date) -> absl::Status {
    if (absl::Status loaded = load(customer_id, read_ahead ? read_ahead->next() : nullptr);
        !loaded.ok())
      return loaded;
    state_.advance_customer(customer_id, date);
    std::optional<Invoice> invoice = state_.build_invoice(customer_id, date);
    if (!invoice) return absl::OkStatus();
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
    return write_part_if_due();
  };
  for (const auto& [date, partner_id] : runs) {
    absl::Status error;
    if (customer_rows) {
      auto customers = customer_rows->customers.find(partner_id);
      if (customers == customer_rows->customers.end()) continue;
      for (const std::string& customer_id : customers->second)
        if (error = invoice(customer_id, partner_id, date); !error.ok()) break;
    } else {
      for (const auto& customer_id : state_.catalog().partner(partner_id)->customer_ids)
        if (error = invoice(customer_id, partner_id, date); !error.ok()) break;
    }
    if (!error.ok()) return part_failed(error);
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
