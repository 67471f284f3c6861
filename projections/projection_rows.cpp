#include "projections/projection_rows.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace subledger {

using Json = nlohmann::json;  // std::map objects: keys in a fixed order, so encoding is stable

// ---- value encodings (ADL hooks for nlohmann) ----

void to_json(Json& j, const Date& d) { j = d.days(); }
void from_json(const Json& j, Date& d) { d = Date::from_days(j.get<int32_t>()); }

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Term, start, anchor, end, price_micros)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PartnerRegistered, partner_id, country, currency, billing_day)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CustomerCreated, customer_id, partner_id, country, currency,
                                   company_name, organization_registration_number, phone,
                                   middle_name)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OfferDefined, offer_id, name, segment, trial_eligible, addon_of,
                                   max_seats, max_per_customer)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ChargeLine, subscription_id, offer_id, type, period_start,
                                   period_end, charge_date, seats, unit_price_micros, amount_minor,
                                   frequency, event_seq, order_in_event, formula, quantity,
                                   currency_digits, negated, reversed_net_minor)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Subscription, id, customer_id, offer_id, parent_id, currency,
                                   status, frequency, seats, term, paid, auto_renew,
                                   cancelled_in_trial, created_on, trial_end, cancelled_on,
                                   expired_on, last_event_date, version, term_event_seq, next_cycle,
                                   term_net_minor, term_lines_start, term_lines_end,
                                   currency_digits, ordinal)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Invoice, invoice_id, partner_id, customer_id, invoice_date,
                                   currency, currency_digits, total_minor, line_count, lines,
                                   lines_sha256)

// A member added to one of these structs must be added above, or the rows silently lose it.
static_assert(sizeof(Subscription) == 272, "Subscription changed: update its row encoding");
static_assert(sizeof(ChargeLine) == 144, "ChargeLine changed: update its row encoding");

namespace {

std::string pack(const Json& j) {
  std::string out;
  Json::to_msgpack(j, out);
  return out;
}

Json unpack(std::string_view value) {
  return Json::from_msgpack(value.begin(), value.end(), /*strict=*/true, /*allow_exceptions=*/true);
}

std::string stream_key(StreamKind kind, const std::string& id) {
  std::string key(1, static_cast<char>('0' + static_cast<int>(kind)));
  key += id;
  return key;
}

std::string row_key(std::string_view prefix, const std::string& id) {
  std::string key(prefix);
  key += id;
  return key;
}

// Sorts and dedups, so each changed row is written once per batch.
void unique(std::vector<std::string>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

}  // namespace

std::string encode_invoice_row(const IssuedInvoice& issued) {
  return pack(Json{{"invoice", issued.invoice},
                   {"event_seq", issued.event_seq},
                   {"chain_head", issued.chain_head}});
}

std::optional<IssuedInvoice> decode_invoice_row(std::string_view value) {
  try {
    Json j = unpack(value);
    IssuedInvoice out;
    j.at("invoice").get_to(out.invoice);
    j.at("event_seq").get_to(out.event_seq);
    j.at("chain_head").get_to(out.chain_head);
    return out;
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

std::optional<Subscription> decode_subscription_row(std::string_view value) {
  try {
    return unpack(value).get<Subscription>();
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

// ---- LedgerState rows ----

void LedgerState::take_changed_rows(const RowSink& put) {
  unique(changed_subscriptions_);
  unique(changed_customers_);
  put_rows(changed_subscriptions_, changed_customers_, catalog_changed_, put);
  for (const auto& issued : issued_since_)
    put(row_key(kInvoiceRowPrefix, issued.invoice.invoice_id), encode_invoice_row(issued));
  changed_subscriptions_.clear();
  changed_customers_.clear();
  catalog_changed_ = false;
  issued_since_.clear();
}

void LedgerState::put_all_rows(const RowSink& put) const {
  std::vector<std::string> customers;
  for (const auto& [id, p] : catalog_.partners())
    customers.insert(customers.end(), p.customer_ids.begin(), p.customer_ids.end());
  unique(customers);
  std::vector<std::string> subs(subscription_order_);
  unique(subs);
  put_rows(subs, customers, /*catalog=*/true, put);
}

void LedgerState::put_rows(const std::vector<std::string>& subscription_ids,
                           const std::vector<std::string>& customer_ids, bool catalog,
                           const RowSink& put) const {
  for (const auto& id : subscription_ids)
    put(row_key(kSubscriptionRowPrefix, id), pack(Json(subscriptions_.at(id))));
  for (const auto& id : customer_ids) {
    const Customer* c = catalog_.customer(id);
    if (!c) continue;
    auto pending = pending_.find(id);
    auto version = stream_versions_.find(stream_key(StreamKind::kCustomer, id));
    put(row_key("cust/", id),
        pack(Json{{"def", c->def},
                  {"subscriptions", c->subscription_ids},
                  {"trial_offers", c->trial_offers},
                  {"version", version == stream_versions_.end() ? 0 : version->second},
                  {"pending", pending == pending_.end() ? Json::array() : Json(pending->second)}}));
  }
  if (catalog) {
    Json partners = Json::array(), offers = Json::array(), prices = Json::array(),
         versions = Json::array();
    for (const auto& [id, p] : catalog_.partners()) partners.push_back(p.def);
    for (const auto& [id, o] : catalog_.offers()) offers.push_back(o);
    for (const auto& [key, by_date] : catalog_.prices())
      for (const auto& [date, micros] : by_date)
        prices.push_back(Json{key.first, key.second, date, micros});
    for (const auto& [key, version] : std::map(stream_versions_.begin(), stream_versions_.end()))
      if (key[0] != '0' + static_cast<int>(StreamKind::kCustomer))
        versions.push_back(Json{key, version});
    put("catalog", pack(Json{{"partners", partners},
                             {"offers", offers},
                             {"prices", prices},
                             {"versions", versions}}));
  }
  put(kMetaRow, pack(Json{{"format", kProjectionFormat},
                          {"last_seq", last_seq_},
                          {"chain_head", chain_head_},
                          {"clock", billing_clock_},
                          {"events_applied", events_applied_},
                          {"invoices_issued", invoices_issued_}}));
}

std::string LedgerState::load_row(std::string_view key, std::string_view value) {
  try {
    if (key.starts_with(kSubscriptionRowPrefix)) {
      Subscription sub = unpack(value).get<Subscription>();
      std::string id = sub.id;
      subscriptions_.insert_or_assign(std::move(id), std::move(sub));
    } else if (key.starts_with("cust/")) {
      Json j = unpack(value);
      CustomerCreated def = j.at("def").get<CustomerCreated>();
      catalog_.apply(def);
      Customer* c = catalog_.customer_mut(def.customer_id);
      j.at("subscriptions").get_to(c->subscription_ids);
      j.at("trial_offers").get_to(c->trial_offers);
      stream_versions_[stream_key(StreamKind::kCustomer, def.customer_id)] =
          j.at("version").get<uint64_t>();
      auto pending = j.at("pending").get<std::vector<ChargeLine>>();
      if (!pending.empty()) pending_[def.customer_id] = std::move(pending);
    } else if (key == "catalog") {
      Json j = unpack(value);
      for (const auto& p : j.at("partners")) catalog_.apply(p.get<PartnerRegistered>());
      for (const auto& o : j.at("offers")) catalog_.apply(o.get<OfferDefined>());
      for (const auto& p : j.at("prices"))
        catalog_.apply(PricePublished{p.at(0).get<std::string>(), p.at(1).get<std::string>(),
                                      p.at(3).get<int64_t>(), p.at(2).get<Date>()});
      for (const auto& v : j.at("versions"))
        stream_versions_[v.at(0).get<std::string>()] = v.at(1).get<uint64_t>();
    } else if (key == kMetaRow) {
      Json j = unpack(value);
      if (j.at("format").get<int>() != kProjectionFormat)
        return "projection rows of another format";
      j.at("last_seq").get_to(last_seq_);
      j.at("chain_head").get_to(chain_head_);
      j.at("clock").get_to(billing_clock_);
      j.at("events_applied").get_to(events_applied_);
      j.at("invoices_issued").get_to(invoices_issued_);
    }
  } catch (const Json::exception& e) {
    return "projection row '" + std::string(key) + "' is unreadable: " + e.what();
  }
  return "";
}

std::string LedgerState::finish_load() {
  subscription_order_.assign(subscriptions_.size(), std::string());
  for (const auto& [id, sub] : subscriptions_) {
    if (sub.ordinal >= subscription_order_.size() || !subscription_order_[sub.ordinal].empty())
      return "subscription rows with a bad creation ordinal";
    subscription_order_[sub.ordinal] = id;
  }
  if (last_seq_ == 0 && !subscriptions_.empty()) return "projection rows without a meta row";
  return "";
}

}  // namespace subledger
