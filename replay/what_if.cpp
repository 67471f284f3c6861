#include "replay/what_if.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "events/codec.h"
#include "projections/invoice.h"

namespace subledger {

namespace {

using Json = nlohmann::ordered_json;

Command base(CommandType type, const Event& e) {
  Command c;
  c.type = type;
  c.request_id = e.request_id;
  c.actor = e.actor;
  c.date = e.effective_date;
  return c;
}

// The fields update_customer may set (BILLING_RULES 15), as a creation or an update left them.
template <class CustomerEvent>
void updatable_fields(Command& c, const CustomerEvent& p) {
  c.company_name = p.company_name;
  c.organization_registration_number = p.organization_registration_number;
  c.phone = p.phone;
  c.middle_name = p.middle_name;
  c.segment = p.segment;
}

// The command whose decision produced `e`, when `e` is the event that names it.
std::optional<Command> command_of(const Event& e) {
  return std::visit(
      [&](const auto& p) -> std::optional<Command> {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, PartnerRegistered>) {
          Command c = base(CommandType::kRegisterPartner, e);
          c.partner_id = p.partner_id;
          c.country = p.country;
          c.currency = p.currency;
          c.billing_day = p.billing_day;
          return c;
        } else if constexpr (std::is_same_v<T, CustomerCreated>) {
          Command c = base(CommandType::kCreateCustomer, e);
          c.customer_id = p.customer_id;
          c.partner_id = p.partner_id;
          c.country = p.country;
          c.currency = p.currency;
          updatable_fields(c, p);
          return c;
        } else if constexpr (std::is_same_v<T, CustomerUpdated>) {
          // The update's result: every updatable field given, which decides to the same event.
          Command c = base(CommandType::kUpdateCustomer, e);
          c.customer_id = p.customer_id;
          updatable_fields(c, p);
          c.given_fields = ~0u;
          return c;
        } else if constexpr (std::is_same_v<T, OfferRetired>) {
          Command c = base(CommandType::kRetireOffer, e);
          c.offer_id = p.offer_id;
          c.date = p.retired_on;
          return c;
        } else if constexpr (std::is_same_v<T, PromotionDefined>) {
          Command c = base(CommandType::kDefinePromotion, e);
          c.promotion_id = p.promotion_id;
          c.offer_ids = p.offer_ids;
          c.percent_off = p.percent_off;
          c.date = p.purchase_from;
          c.purchase_to = p.purchase_to;
          if (p.applies_to_new) c.applies_to.push_back("new");
          if (p.applies_to_renewal) c.applies_to.push_back("renewal");
          c.markets = p.markets;
          c.max_seats = p.max_seats;
          c.new_customer_only = p.new_customer_only;
          c.exclude_offers = p.exclude_offers;
          c.exclude_cancel_days = p.exclude_cancel_days;
          return c;
        } else if constexpr (std::is_same_v<T, OfferDefined>) {
          Command c = base(CommandType::kDefineOffer, e);
          c.offer_id = p.offer_id;
          c.name = p.name;
          c.segment = p.segment;
          c.trial_eligible = p.trial_eligible;
          c.addon_of = p.addon_of;
          c.max_seats = p.max_seats;
          c.max_per_customer = p.max_per_customer;
          c.markets = p.markets;
          c.term_months = p.term_months;
          return c;
        } else if constexpr (std::is_same_v<T, PricePublished>) {
          Command c = base(CommandType::kPublishPrice, e);
          c.offer_id = p.offer_id;
          c.currency = p.currency;
          c.monthly_price_micros = p.monthly_price_micros;
          c.date = p.effective_from;
          return c;
        } else if constexpr (std::is_same_v<T, SubscriptionCreated>) {
          Command c = base(CommandType::kCreateSubscription, e);
          c.subscription_id = p.subscription_id;
          c.customer_id = p.customer_id;
          c.offer_id = p.offer_id;
          c.parent_subscription_id = p.parent_subscription_id;
          c.seats = p.seats;
          if (p.parent_subscription_id.empty()) c.frequency = p.frequency;  // add-ons inherit
          return c;
        } else if constexpr (std::is_same_v<T, TrialStarted>) {
          Command c = base(CommandType::kStartTrial, e);
          c.subscription_id = p.subscription_id;
          c.customer_id = p.customer_id;
          c.offer_id = p.offer_id;
          return c;
        } else if constexpr (std::is_same_v<T, TrialConverted>) {
          Command c = base(CommandType::kConvertTrial, e);
          c.subscription_id = p.subscription_id;
          c.frequency = p.frequency;
          return c;
        } else if constexpr (std::is_same_v<T, SeatsChanged>) {
          Command c = base(CommandType::kChangeSeats, e);
          c.subscription_id = p.subscription_id;
          c.seats = p.new_seats;
          return c;
        } else if constexpr (std::is_same_v<T, SubscriptionCancelled>) {
          if (!p.cascaded_from.empty()) return std::nullopt;  // part of the parent's cancel
          Command c = base(CommandType::kCancel, e);
          c.subscription_id = p.subscription_id;
          return c;
        } else if constexpr (std::is_same_v<T, SubscriptionReactivated>) {
          Command c = base(CommandType::kReactivate, e);
          c.subscription_id = p.subscription_id;
          return c;
        } else if constexpr (std::is_same_v<T, AutoRenewSet>) {
          Command c = base(CommandType::kSetAutoRenew, e);
          c.subscription_id = p.subscription_id;
          c.enabled = p.enabled;
          return c;
        } else if constexpr (std::is_same_v<T, SubscriptionRenewed>) {
          if (!p.manual) return std::nullopt;  // time's renewal, re-derived
          Command c = base(CommandType::kRenew, e);
          c.subscription_id = p.subscription_id;
          return c;
        } else if constexpr (std::is_same_v<T, AgreementAccepted>) {
          Command c = base(CommandType::kAcceptAgreement, e);
          c.customer_id = p.customer_id;
          c.agreement_type = p.agreement_type;
          c.date = p.date_agreed;
          c.contact_first_name = p.first_name;
          c.contact_last_name = p.last_name;
          c.contact_email = p.email;
          return c;
        } else if constexpr (std::is_same_v<T, BillingRun>) {
          Command c = base(CommandType::kRunBilling, e);
          c.date = p.through;
          return c;
        } else {
          return std::nullopt;  // expiries and invoices are derived by the decisions above
        }
      },
      e.payload);
}

// A line as compared across histories: its canonical JSON without event_seq, because inserting
// commands shifts every later sequence number without changing what is charged.
std::string line_json(ChargeLine line, int digits) {
  line.event_seq = 0;
  std::string array = canonical_lines({line}, digits);
  std::string one = array.substr(1, array.size() - 2);
  if (auto at = one.find(",\"event_seq\":0"); at != std::string::npos)
    one.erase(at, std::string_view(",\"event_seq\":0").size());
  return one;
}

}  // namespace

absl::Status recover_commands(const Store& store, std::vector<Command>& out) {
  EventDecoder decoder;
  Event e;
  absl::Status error;
  std::string current_request;
  std::optional<Command> pending;  // the command of the request being read
  bool pending_is_billing = false;
  absl::Status scan = store.scan_events(0, [&](uint64_t seq, std::string_view bytes) {
    if (absl::Status bad = decoder.decode(bytes, e); !bad.ok()) {
      error = at_event(seq, bad);
      return false;
    }
    if (e.request_id != current_request) {
      if (pending) out.push_back(std::move(*pending));
      pending.reset();
      pending_is_billing = false;
      current_request = e.request_id;
    }
    if (e.actor == kSystemActor || pending_is_billing) return true;
    std::optional<Command> c = command_of(e);
    if (c && c->type == CommandType::kRunBilling) {
      pending = std::move(c);  // the run's own event comes after its invoices
      pending_is_billing = true;
    } else if (c && !pending) {
      pending = std::move(c);
    }
    return true;
  });
  if (pending) out.push_back(std::move(*pending));
  if (!scan.ok()) return scan;
  return error;
}

std::string InvoiceDiff::to_json() const {
  Json j;
  j["invoice_id"] = invoice_id;
  j["currency"] = currency;
  j["old_total"] = issued ? Json(format_minor(old_total_minor, currency_digits)) : Json(nullptr);
  j["new_total"] =
      regenerated ? Json(format_minor(new_total_minor, currency_digits)) : Json(nullptr);
  Json removed = Json::array(), added = Json::array();
  for (const auto& l : lines_removed) removed.push_back(Json::parse(l));
  for (const auto& l : lines_added) added.push_back(Json::parse(l));
  j["lines_removed"] = removed;
  j["lines_added"] = added;
  return j.dump();
}

std::string WhatIfReport::summary_json(const std::string& file) const {
  Json j;
  j["what_if"] = file;
  j["original_commands"] = original_commands;
  j["what_if_commands"] = what_if_commands;
  j["invoices_compared"] = invoices_compared;
  j["invoices_changed"] = changed.size();
  Json totals = Json::object();
  for (const auto& [currency, t] : totals_minor) {
    int digits = minor_digits(currency);
    totals[currency] = {{"old", format_minor(t.first, digits)},
                        {"new", format_minor(t.second, digits)},
                        {"difference", format_minor(t.second - t.first, digits)}};
  }
  j["totals"] = totals;
  Json rejected_json = Json::array();
  for (const auto& r : rejected) rejected_json.push_back(Json::parse(r.to_json()));
  j["rejected"] = rejected_json;
  j["written"] = false;
  return j.dump();
}

absl::Status what_if(const Ledger& ledger, const std::vector<Command>& extra,
                     const std::string& scratch_dir, WhatIfReport& report) {
  std::vector<Command> original;
  if (absl::Status e = recover_commands(ledger.store(), original); !e.ok()) return e;
  report.original_commands = original.size();
  report.what_if_commands = extra.size();

  // Each what-if command goes after every original command dated on or before it.
  std::vector<const Command*> merged;
  merged.reserve(original.size() + extra.size());
  std::vector<const Command*> sorted_extra;
  for (const auto& c : extra) sorted_extra.push_back(&c);
  std::stable_sort(sorted_extra.begin(), sorted_extra.end(),
                   [](const Command* a, const Command* b) { return a->date < b->date; });
  size_t next_extra = 0;
  for (const auto& c : original) {
    while (next_extra < sorted_extra.size() && !c.date.is_none() &&
           c.date > sorted_extra[next_extra]->date)
      merged.push_back(sorted_extra[next_extra++]);
    merged.push_back(&c);
  }
  while (next_extra < sorted_extra.size()) merged.push_back(sorted_extra[next_extra++]);

  std::error_code ec;
  std::filesystem::remove_all(scratch_dir, ec);
  std::vector<IssuedInvoice> regenerated;
  {
    Ledger::Options options;
    options.durable = false;  // scratch: nothing here needs to survive a crash
    options.clock = [] { return int64_t{0}; };
    auto opened = Ledger::open(scratch_dir, std::move(options));
    if (!opened.ok())
      return absl::Status(opened.status().code(), "cannot create the scratch ledger: " +
                                                      std::string(opened.status().message()));
    Ledger& scratch = **opened;
    size_t since_commit = 0;
    for (const Command* c : merged) {
      CommandResult r = scratch.submit(*c);
      if (!r.ok) report.rejected.push_back(std::move(r));
      if (++since_commit == 4096) {
        if (absl::Status e = scratch.commit(); !e.ok()) return e;
        since_commit = 0;
      }
    }
    if (absl::Status e = scratch.commit(); !e.ok()) return e;
    auto issued = scratch.issued_invoices();
    if (!issued.ok()) return issued.status();
    regenerated = std::move(*issued);
  }
  std::filesystem::remove_all(scratch_dir, ec);

  std::map<std::string, const Invoice*> before, after;
  auto issued_or = ledger.issued_invoices();
  if (!issued_or.ok()) return issued_or.status();
  const std::vector<IssuedInvoice>& issued = *issued_or;
  for (const auto& i : issued) before[i.invoice.invoice_id] = &i.invoice;
  for (const auto& i : regenerated) after[i.invoice.invoice_id] = &i.invoice;
  std::map<std::string, std::pair<const Invoice*, const Invoice*>> both;
  for (const auto& [id, inv] : before) both[id].first = inv;
  for (const auto& [id, inv] : after) both[id].second = inv;
  for (const auto& [id, pair] : both) {
    ++report.invoices_compared;
    const auto [old_inv, new_inv] = pair;
    const Invoice* any = old_inv ? old_inv : new_inv;
    auto& totals = report.totals_minor[any->currency];
    if (old_inv) totals.first += old_inv->total_minor;
    if (new_inv) totals.second += new_inv->total_minor;
    if (old_inv && new_inv && old_inv->lines_sha256 == new_inv->lines_sha256) continue;
    InvoiceDiff d;
    d.invoice_id = id;
    d.currency = any->currency;
    d.currency_digits = any->currency_digits;
    d.issued = old_inv != nullptr;
    d.regenerated = new_inv != nullptr;
    std::vector<std::string> old_lines, new_lines;
    if (old_inv) {
      d.old_total_minor = old_inv->total_minor;
      for (const auto& l : old_inv->lines) old_lines.push_back(line_json(l, any->currency_digits));
    }
    if (new_inv) {
      d.new_total_minor = new_inv->total_minor;
      for (const auto& l : new_inv->lines) new_lines.push_back(line_json(l, any->currency_digits));
    }
    std::sort(old_lines.begin(), old_lines.end());
    std::sort(new_lines.begin(), new_lines.end());
    std::set_difference(old_lines.begin(), old_lines.end(), new_lines.begin(), new_lines.end(),
                        std::back_inserter(d.lines_removed));
    std::set_difference(new_lines.begin(), new_lines.end(), old_lines.begin(), old_lines.end(),
                        std::back_inserter(d.lines_added));
    if (d.issued && d.regenerated && d.lines_removed.empty() && d.lines_added.empty()) continue;
    report.changed.push_back(std::move(d));
  }
  return absl::OkStatus();
}

}  // namespace subledger
