#include "ledger/reports.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "events/codec.h"
#include "events/hash.h"
#include "events/money.h"
#include "ledger/catalog_rules.h"
#include "ledger/command.h"
#include "projections/views.h"

namespace subledger {

using Json = nlohmann::ordered_json;

namespace {

// BILLING_RULES 12: a promoted line's formula is the list formula times (100 - p) / 100.
std::string discounted(const ChargeLine& line, std::string formula) {
  if (line.percent_off != 0) formula += " × (100 − percent_off) / 100";
  return std::string(line.negated ? "-(" : "") + formula + (line.negated ? ")" : "");
}

Json formula_json(const ChargeLine& line) {
  Json f;
  ExactAmount exact = exact_amount(line);
  switch (line.formula) {
    case FormulaKind::kWholeMonths:
      f["formula"] = discounted(line, "price × months × seats");
      f["months"] = line.quantity;
      break;
    case FormulaKind::kDays:
      f["formula"] = discounted(line, "price × 12 / 365 × days × seats");
      f["days"] = line.quantity;
      break;
    case FormulaKind::kReversal:
      f["formula"] = "-(net of the term's lines so far): 100% credit within 30 days";
      f["reversed_net"] = format_minor(line.reversed_net_minor, line.currency_digits);
      break;
  }
  f["price"] = format_price(line.unit_price_micros);
  f["seats"] = line.seats;
  if (line.percent_off != 0) f["percent_off"] = line.percent_off;
  f["unrounded"] = format_exact(exact, line.currency_digits, 10);
  f["rounded"] = format_minor(line.amount_minor, line.currency_digits);
  f["rounding"] = "half away from zero, once per line";
  return f;
}

}  // namespace

namespace {

std::vector<std::string> renewal_lines_of(const LedgerState& state,
                                          std::vector<const Subscription*> due) {
  std::sort(due.begin(), due.end(), [](const Subscription* a, const Subscription* b) {
    return std::tie(a->term.end, a->id) < std::tie(b->term.end, b->id);
  });
  std::vector<std::string> out;
  for (const Subscription* s : due) {
    auto price = state.catalog().price_at(s->offer_id, s->currency, s->term.end);
    Json j;
    j["subscription_id"] = s->id;
    j["customer_id"] = s->customer_id;
    j["offer_id"] = s->offer_id;
    j["term_end"] = s->term.end.iso();
    j["auto_renew"] = s->auto_renew;
    j["seats"] = s->seats;
    j["billing_frequency"] = to_string(s->frequency);
    j["current_price"] = format_price(s->term.price_micros);
    j["renewal_price"] = s->auto_renew && price ? Json(format_price(*price)) : Json(nullptr);
    j["currency"] = s->currency;
    // BILLING_RULES 12: the promotion the renewal would get if it were decided now (shown only
    // when there is one, so older output stays as it was).
    if (s->auto_renew && price) {
      const TermStart renewal{s->id,    s->customer_id, s->offer_id,
                              s->seats, s->term.end,    TermKind::kRenewal};
      if (const Promotion* p = choose_promotion(renewal, state))
        j["renewal_promotion"] = {{"promotion_id", p->def.promotion_id},
                                  {"percent_off", p->def.percent_off},
                                  {"defined_in_event", p->event_seq}};
    }
    out.push_back(j.dump());
  }
  return out;
}

bool renews_in(const Subscription& s, Date from, Date to) {
  return s.status == Status::kActive && s.term.end >= from && s.term.end <= to;
}

}  // namespace

std::vector<std::string> renewal_lines(const LedgerState& state, Date from, Date to,
                                       const std::function<bool(const Subscription&)>& keep) {
  std::vector<const Subscription*> due;
  for (const auto& id : state.subscription_ids()) {
    const Subscription* s = state.subscription(id);
    if (renews_in(*s, from, to) && (!keep || keep(*s))) due.push_back(s);
  }
  return renewal_lines_of(state, std::move(due));
}

std::vector<std::string> renewal_lines(const LedgerState& state, Date from, Date to,
                                       const std::vector<std::string>& subscription_ids) {
  std::vector<const Subscription*> due;
  for (const auto& id : subscription_ids)
    if (const Subscription* s = state.subscription(id); s && renews_in(*s, from, to))
      due.push_back(s);
  return renewal_lines_of(state, std::move(due));
}

absl::StatusOr<std::vector<std::string>> explain_lines(const Store& store,
                                                       const IssuedInvoice& issued) {
  std::vector<std::string> out;
  EventDecoder decoder;
  int n = 0;
  for (const auto& line : issued.invoice.lines) {
    Json j;
    j["invoice_id"] = issued.invoice.invoice_id;
    j["line"] = ++n;
    j["subscription_id"] = line.subscription_id;
    j["charge_type"] = to_string(line.type);
    j["period_start"] = line.period_start.iso();
    j["period_end"] = line.period_end.iso();
    j["charge_date"] = line.charge_date.iso();
    j["amount"] = format_minor(line.amount_minor, line.currency_digits);
    j["computation"] = formula_json(line);
    if (!line.promotion_id.empty()) {
      // BILLING_RULES 12: the term's promotion and the event that defined it.
      auto defined = store.stream_seqs(Stream{StreamKind::kPromotion, line.promotion_id});
      // No stream is a null link; a store that cannot say is an error, not a null.
      if (!defined.ok() && !absl::IsNotFound(defined.status())) return defined.status();
      j["promotion"] = {{"promotion_id", line.promotion_id},
                        {"percent_off", line.percent_off},
                        {"defined_in_event", defined.ok() && !defined->empty()
                                                 ? Json(defined->front())
                                                 : Json(nullptr)}};
    }
    Event e;
    auto bytes = store.event_bytes(line.event_seq);
    if (!bytes.ok() || !decoder.decode(*bytes, e).ok())
      return absl::UnavailableError("event " + std::to_string(line.event_seq) +
                                    " cannot be read");
    j["caused_by"] = Json::parse(event_json(e));
    if (line.type == ChargeType::kCycle)
      j["note"] = "a monthly cycle fee of the term begun by the causing event";
    j["issued_in_event"] = issued.event_seq;
    // Where both events sit in the hash chain: the source event's link and the chain head the
    // invoice recorded when it was issued (the source always precedes it).
    j["chain_position"] = {{"source_seq", e.seq},
                           {"source_prev_hash", to_hex(e.prev_hash)},
                           {"source_hash", to_hex(e.hash)},
                           {"issued_seq", issued.event_seq},
                           {"chain_head_at_issue", to_hex(issued.chain_head)}};
    out.push_back(j.dump());
  }
  return out;
}

std::string order_json(const std::string& id, const std::string& customer_id, Date date,
                       const std::vector<OrderLine>& lines, std::string_view scope) {
  // Printed member by member (every write answers one, on the deciding thread), as a JSON object
  // of these members in this order prints. As SERVER.md's unscoping does for every `*_id`
  // member: the scope off where an id begins so.
  auto id_member = [&scope](std::string& out, std::string_view name, std::string_view member_id) {
    if (!scope.empty() && member_id.starts_with(scope)) member_id.remove_prefix(scope.size());
    out += name;
    append_dumped_string(out, member_id);
  };
  std::string out = "{\"id\":";
  append_dumped_string(out, id);
  id_member(out, ",\"customer_id\":", customer_id);
  out += ",\"creation_date\":";
  append_dumped_string(out, date.iso());
  out += ",\"line_items\":[";
  for (size_t i = 0; i < lines.size(); ++i) {
    const OrderLine& l = lines[i];
    if (i > 0) out.push_back(',');
    id_member(out, "{\"subscription_id\":", l.subscription_id);
    id_member(out, ",\"offer_id\":", l.offer_id);
    out += ",\"seats\":" + std::to_string(l.seats) + ",\"billing_frequency\":";
    if (l.frequency)
      append_dumped_string(out, to_string(*l.frequency));
    else
      out += "null";
    if (!l.parent_subscription_id.empty())
      id_member(out, ",\"parent_subscription_id\":", l.parent_subscription_id);
    out += l.trial ? ",\"trial\":true}" : ",\"trial\":false}";
  }
  out += "],\"status\":\"completed\"}";
  return out;
}

std::optional<OrderLine> order_line_of(const Event& opening) {
  if (const auto* e = std::get_if<SubscriptionCreated>(&opening.payload))
    return OrderLine{e->subscription_id, e->offer_id, e->parent_subscription_id, e->seats,
                     e->frequency, false};
  if (const auto* e = std::get_if<TrialStarted>(&opening.payload))
    return OrderLine{e->subscription_id, e->offer_id, "", e->seats, std::nullopt, true};
  return std::nullopt;
}

absl::StatusOr<std::vector<Order>> orders_of(const Store& store,
                                             const std::vector<std::string>& subscription_ids) {
  std::vector<Order> orders;
  std::map<std::string, size_t> index;  // order id -> its place in `orders`
  EventDecoder decoder;
  Event e;
  for (const auto& id : subscription_ids) {
    auto seqs = store.stream_seqs(Stream{StreamKind::kSubscription, id});
    if (!seqs.ok() && !absl::IsNotFound(seqs.status())) return seqs.status();
    if (!seqs.ok() || seqs->empty()) continue;  // not durable yet
    auto bytes = store.event_bytes(seqs->front());
    if (!bytes.ok() || !decoder.decode(*bytes, e).ok())
      return absl::UnavailableError("event " + std::to_string(seqs->front()) + " cannot be read");
    auto line = order_line_of(e);
    if (!line) continue;
    std::string order = e.request_id.substr(0, e.request_id.find('#'));
    auto [it, fresh] = index.try_emplace(order, orders.size());
    if (fresh) orders.push_back(Order{order, e.effective_date, {}});
    orders[it->second].lines.push_back(*line);
  }
  return orders;
}

}  // namespace subledger
