#include "projections/ledger_state.h"

#include <algorithm>
#include <cassert>

#include "projections/projection_rows.h"

namespace subledger {

namespace {

std::string stream_key(const Stream& s) {
  std::string key(1, static_cast<char>('0' + static_cast<int>(s.kind)));
  key += s.id;
  return key;
}

}  // namespace

const Subscription* LedgerState::subscription(const std::string& id) const {
  auto it = sub_index_.find(id);
  return it == sub_index_.end() ? nullptr : &subs_[it->second];
}

uint64_t LedgerState::stream_version(const Stream& stream) const {
  if (stream.kind == StreamKind::kSubscription) {
    const Subscription* s = subscription(stream.id);
    return s ? s->version : 0;
  }
  auto it = stream_versions_.find(stream_key(stream));
  return it == stream_versions_.end() ? 0 : it->second;
}

const std::vector<ChargeLine>* LedgerState::pending_lines(const std::string& customer_id) const {
  auto it = pending_.find(customer_id);
  return it == pending_.end() ? nullptr : &it->second.lines;
}

__int128 LedgerState::pending_magnitude(const std::string& customer_id) const {
  auto it = pending_.find(customer_id);
  return it == pending_.end() ? 0 : it->second.magnitude;
}

// A run of marks of the same entity (each of a customer's subscriptions advanced, say) is
// recorded once; take_changed_rows() drops the other repeats.
void LedgerState::mark_customer(const std::string& customer_id) {
  if (track_changes_ && (changed_customers_.empty() || changed_customers_.back() != customer_id))
    changed_customers_.push_back(customer_id);
}

void LedgerState::mark_subscription(uint32_t slot) {
  if (track_changes_ && (changed_subscriptions_.empty() || changed_subscriptions_.back() != slot))
    changed_subscriptions_.push_back(slot);
}

LineSink LedgerState::sink_for(const std::string& customer_id) {
  save_pending(customer_id);
  mark_customer(customer_id);
  PendingLines* pending = &pending_[customer_id];
  return [pending](ChargeLine&& line) { pending->add(std::move(line)); };
}

absl::Status check_link(const Event& event, uint64_t last_seq, const std::string& chain_head) {
  if (event.seq != last_seq + 1)
    return absl::DataLossError("event " + std::to_string(last_seq + 1) +
                               " is missing (next stored event is " + std::to_string(event.seq) +
                               ")");
  if (event.prev_hash != chain_head)
    return absl::DataLossError("hash chain broken at event " + std::to_string(event.seq) +
                               ": its previous hash is not the hash of event " +
                               std::to_string(last_seq) +
                               " (an event was changed, removed or reordered)");
  if (const auto* issued = std::get_if<InvoiceIssued>(&event.payload);
      issued && issued->chain_head != event.prev_hash)
    return absl::DataLossError("invoice " + issued->invoice_id +
                               " records a chain head that is not the log's");
  return absl::OkStatus();
}

void LedgerState::begin_undo() {
  undo_.emplace();
  undo_->last_seq = last_seq_;
  undo_->events_applied = events_applied_;
  undo_->chain_head = chain_head_;
  undo_->max_term_price_micros = max_term_price_micros_;
  undo_->max_seats = max_seats_;
  undo_->next_ordinal = next_ordinal_;
  undo_->subs = subs_.size();
  undo_->changed_subscriptions = changed_subscriptions_.size();
  undo_->changed_customers = changed_customers_.size();
  undo_->erased_rows = erased_rows_.size();
}

void LedgerState::save_subscription(uint32_t ordinal) {
  if (!undo_ || ordinal >= undo_->subs) return;  // none, or opened since (dropped whole)
  for (const auto& [saved, _] : undo_->subscriptions)
    if (saved == ordinal) return;
  undo_->subscriptions.emplace_back(ordinal, subs_[ordinal]);
}

void LedgerState::save_customer(const std::string& customer_id) {
  if (!undo_) return;
  for (const auto& [saved, _] : undo_->customers)
    if (saved == customer_id) return;
  if (const Customer* c = catalog_.customer(customer_id))
    undo_->customers.emplace_back(customer_id, *c);
}

void LedgerState::save_pending(const std::string& customer_id) {
  if (!undo_) return;
  for (const auto& [saved, _] : undo_->pending)
    if (saved == customer_id) return;
  auto it = pending_.find(customer_id);
  undo_->pending.emplace_back(
      customer_id,
      it == pending_.end() ? std::nullopt : std::optional<PendingLines>(it->second));
}

void LedgerState::rollback() {
  if (!undo_) return;
  StateUndo& u = *undo_;
  for (auto& [ordinal, sub] : u.subscriptions) subs_[ordinal] = std::move(sub);
  while (subs_.size() > u.subs) {
    sub_index_.erase(subscription_order_.back());
    subscription_order_.pop_back();
    subs_.pop_back();
  }
  for (auto& [id, customer] : u.customers) *catalog_.customer_mut(id) = std::move(customer);
  for (auto& [id, lines] : u.pending) {
    if (lines)
      pending_[id] = std::move(*lines);
    else
      pending_.erase(id);
  }
  last_seq_ = u.last_seq;
  events_applied_ = u.events_applied;
  chain_head_ = std::move(u.chain_head);
  max_term_price_micros_ = u.max_term_price_micros;
  max_seats_ = u.max_seats;
  next_ordinal_ = u.next_ordinal;  // a subset's creation ordinals go on from there
  changed_subscriptions_.resize(std::min(changed_subscriptions_.size(), u.changed_subscriptions));
  changed_customers_.resize(std::min(changed_customers_.size(), u.changed_customers));
  erased_rows_.resize(std::min(erased_rows_.size(), u.erased_rows));
  undo_.reset();
}

absl::Status LedgerState::apply(const Event& event, Invoice* prebuilt) {
  if (undo_ && !subscription_id_of(event.payload))
    return absl::FailedPreconditionError("only subscription events can be undone (event " +
                                         std::to_string(event.seq) + ")");
  if (!partition_) {
    if (absl::Status broken = check_link(event, last_seq_, chain_head_); !broken.ok())
      return broken;
  }
  absl::Status error;
  if (subscription_id_of(event.payload)) {
    error = apply_subscription_event(event);
  } else {
    std::string wrong;
    std::visit(
        [&](const auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, PartnerRegistered> || std::is_same_v<T, OfferDefined> ||
                        std::is_same_v<T, PricePublished>) {
            catalog_.apply(e);
            mark_catalog();
          } else if constexpr (std::is_same_v<T, CustomerCreated>) {
            if (!catalog_.partner(e.partner_id))
              wrong = "customer of unknown partner";
            else
              catalog_.apply(e);
            mark_catalog();  // the partner's customer list
            mark_customer(e.customer_id);
          } else if constexpr (std::is_same_v<T, PromotionDefined>) {
            catalog_.apply(e, event.seq);
            mark_catalog();
          } else if constexpr (std::is_same_v<T, OfferRetired>) {
            if (!catalog_.offer(e.offer_id))
              wrong = "retirement of unknown offer";
            else
              catalog_.apply(e);
            mark_catalog();
          } else if constexpr (std::is_same_v<T, CustomerUpdated>) {
            if (!catalog_.customer(e.customer_id)) {
              wrong = "update of unknown customer";
            } else {
              save_customer(e.customer_id);
              catalog_.apply(e);
              mark_customer(e.customer_id);
            }
          } else if constexpr (std::is_same_v<T, InvoiceIssued>) {
            apply_invoice(event, e, prebuilt);
          } else if constexpr (std::is_same_v<T, AgreementAccepted>) {
            Customer* c = catalog_.customer_mut(e.customer_id);
            if (!c) {
              wrong = "agreement of unknown customer";
            } else if (c->agreement(e.agreement_type)) {
              wrong = "agreement " + e.agreement_type + " accepted twice";
            } else {
              c->agreements.push_back(Agreement{e.agreement_type, e.date_agreed, e.first_name,
                                                e.last_name, e.email, event.seq});
              mark_customer(e.customer_id);
            }
          } else if constexpr (std::is_same_v<T, BillingRun>) {
            billing_clock_ = e.through;
            mark_catalog();  // the ledger stream's version
          }
        },
        event.payload);
    if (wrong.empty())
      stream_versions_[stream_key(event.stream)] = event.stream_version;
    else
      error = absl::DataLossError(wrong);
  }
  if (!error.ok())
    return absl::Status(error.code(), std::string(error.message()) + " (event " +
                                          std::to_string(event.seq) + ")");
  last_seq_ = event.seq;
  chain_head_ = event.hash;
  ++events_applied_;
  return absl::OkStatus();
}

absl::Status LedgerState::apply_subscription_event(const Event& event) {
  const std::string& id = *subscription_id_of(event.payload);
  const std::string* opening_customer = opening_customer_of(event.payload);
  auto it = sub_index_.find(id);
  if (opening_customer && it != sub_index_.end())
    return absl::DataLossError("subscription " + id + " created twice");
  if (!opening_customer && it == sub_index_.end())
    return absl::DataLossError("event for unknown subscription " + id);
  if (opening_customer) {
    save_customer(*opening_customer);
    Customer* customer = catalog_.customer_mut(*opening_customer);
    if (!customer)
      return absl::DataLossError("subscription of unknown customer " + *opening_customer);
    const auto ordinal = static_cast<uint32_t>(subs_.size());
    customer->subscription_ids.push_back(id);
    customer->subscription_ordinals.push_back(ordinal);
    if (const auto* t = std::get_if<TrialStarted>(&event.payload))
      customer->trial_offers.insert(t->offer_id);
    subs_.emplace_back().ordinal = partition_ ? next_ordinal_ : subset_ ? next_ordinal_++ : ordinal;
    it = sub_index_.emplace(id, ordinal).first;
    subscription_order_.push_back(id);
    mark_customer(*opening_customer);
  }
  save_subscription(it->second);
  Subscription& sub = subs_[it->second];
  mark_subscription(it->second);
  if (event.effective_date < sub.last_event_date)
    return absl::DataLossError("event dated before the subscription's last event");
  LineSink sink = sink_for(opening_customer ? *opening_customer : sub.customer_id);
  advance_to(sub, event.effective_date, sink);
  evolve(sub, event, sink);
  note_bounds(sub);
  return absl::OkStatus();
}

void LedgerState::advance_customer(const std::string& customer_id, Date d) {
  const Customer* customer = catalog_.customer(customer_id);
  if (!customer) return;
  assert(!in_part_.contains(customer_id) && "a customer loaded in part is never invoiced");
  LineSink sink = sink_for(customer_id);
  for (uint32_t ordinal : customer->subscription_ordinals) {
    Subscription& sub = subs_[ordinal];
    Date before = sub.next_cycle;
    advance_to(sub, d, sink);
    note_bounds(sub);
    if (sub.next_cycle != before) mark_subscription(ordinal);
  }
}

std::optional<Invoice> LedgerState::build_invoice(const std::string& customer_id, Date d) const {
  auto it = pending_.find(customer_id);
  if (it == pending_.end()) return std::nullopt;
  Invoice inv;
  for (const auto& line : it->second.lines)
    if (line.charge_date <= d) inv.lines.push_back(line);
  if (inv.lines.empty()) return std::nullopt;
  const Customer* customer = catalog_.customer(customer_id);
  // The first line's subscription, among the customer's own (a few, next to each other) before
  // the index of every subscription of the ledger.
  const std::string& first_id = inv.lines.front().subscription_id;
  const Subscription* found = nullptr;
  for (uint32_t ordinal : customer->subscription_ordinals)
    if (subs_[ordinal].id == first_id) {
      found = &subs_[ordinal];
      break;
    }
  const Subscription& first = found ? *found : *subscription(first_id);
  inv.invoice_id = invoice_id_for(customer_id, d);
  inv.partner_id = customer->def.partner_id;
  inv.customer_id = customer_id;
  inv.invoice_date = d;
  inv.currency = first.currency;
  inv.currency_digits = first.currency_digits;
  seal_invoice(inv);
  return inv;
}

Date LedgerState::earliest_pending(const Partner& partner) const {
  Date earliest;
  for (const auto& customer_id : partner.customer_ids) {
    auto it = pending_.find(customer_id);
    if (it == pending_.end()) continue;
    for (const auto& line : it->second.lines)
      if (earliest.is_none() || line.charge_date < earliest) earliest = line.charge_date;
  }
  return earliest;
}

void LedgerState::apply_invoice(const Event& event, const InvoiceIssued& e, Invoice* prebuilt) {
  std::optional<Invoice> built;
  if (prebuilt && prebuilt->invoice_id == e.invoice_id) {
    built = std::move(*prebuilt);
  } else {
    advance_customer(e.customer_id, e.invoice_date);
    built = build_invoice(e.customer_id, e.invoice_date);
  }
  Invoice inv = built ? std::move(*built) : Invoice{};
  if (!built || inv.lines_sha256 != e.lines_sha256 || inv.total_minor != e.total_minor ||
      inv.line_count != e.line_count) {
    int digits = find_currency(e.currency) ? minor_digits(e.currency) : 2;
    mismatches_.push_back(InvoiceMismatch{
        e.invoice_id, event.seq, to_hex(e.lines_sha256), to_hex(inv.lines_sha256),
        format_minor(e.total_minor, digits), format_minor(inv.total_minor, digits)});
  }
  // The recorded invoice is what was issued: its header comes from the event.
  inv.invoice_id = e.invoice_id;
  inv.partner_id = e.partner_id;
  inv.customer_id = e.customer_id;
  inv.invoice_date = e.invoice_date;
  inv.currency = e.currency;
  const std::optional<CurrencyInfo> currency = find_currency(e.currency);
  inv.currency_digits = currency ? currency->minor_digits : 2;
  // The invoiced lines leave (with their rows, for those that have one); the rest keep their order.
  PendingLines& pending = pending_[e.customer_id];
  size_t kept = 0;
  for (size_t i = 0; i < pending.lines.size(); ++i) {
    if (pending.lines[i].charge_date <= e.invoice_date) {
      pending.magnitude -= PendingLines::magnitude_of(pending.lines[i]);
      if (track_changes_ && pending.numbers[i] < pending.stored_next)
        erased_rows_.push_back(customer_line_row_key(e.customer_id, pending.numbers[i]));
      continue;
    }
    if (kept != i) {
      pending.lines[kept] = std::move(pending.lines[i]);
      pending.numbers[kept] = pending.numbers[i];
    }
    ++kept;
  }
  pending.lines.resize(kept);
  pending.numbers.resize(kept);
  mark_customer(e.customer_id);
  ++invoices_issued_;
  if (track_changes_)
    issued_since_.push_back(IssuedInvoice{std::move(inv), event.seq, e.chain_head});
}

}  // namespace subledger
