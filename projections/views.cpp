#include "projections/views.h"

#include <nlohmann/json.hpp>

#include "events/money.h"
#include "projections/invoice.h"

namespace subledger {

using Json = nlohmann::ordered_json;

namespace {

Json date_or_null(Date d) { return d.is_none() ? Json(nullptr) : Json(d.iso()); }

Json term_json(const Term& t) {
  Json j{{"start", date_or_null(t.start)},
         {"anchor", date_or_null(t.anchor)},
         {"end", date_or_null(t.end)},
         {"price", format_price(t.price_micros)}};
  // Members added for BILLING_RULES 12 and 14 appear only with a value other than the default,
  // so what older ledgers print stays byte for byte what it was.
  if (!t.anchor.is_none() && !t.end.is_none() && term_months_of(t) != kDefaultTermMonths)
    j["term_months"] = term_months_of(t);
  if (!t.promotion_id.empty()) {
    j["promotion_id"] = t.promotion_id;
    j["percent_off"] = t.percent_off;
  }
  return j;
}

Json strings(const std::vector<std::string>& values) {
  Json j = Json::array();
  for (const auto& v : values) j.push_back(v);
  return j;
}

struct PayloadJson {
  Json operator()(const PartnerRegistered& e) const {
    return {{"partner_id", e.partner_id},
            {"country", e.country},
            {"currency", e.currency},
            {"billing_day", e.billing_day}};
  }
  Json operator()(const CustomerCreated& e) const {
    Json j{{"customer_id", e.customer_id},
           {"partner_id", e.partner_id},
           {"country", e.country},
           {"currency", e.currency},
           {"company_name", e.company_name},
           {"organization_registration_number", e.organization_registration_number},
           {"phone", e.phone},
           {"middle_name", e.middle_name}};
    if (e.segment != Segment::kCommercial) j["segment"] = to_string(e.segment);
    return j;
  }
  Json operator()(const CustomerUpdated& e) const {
    return {{"customer_id", e.customer_id},
            {"company_name", e.company_name},
            {"organization_registration_number", e.organization_registration_number},
            {"phone", e.phone},
            {"middle_name", e.middle_name},
            {"segment", to_string(e.segment)}};
  }
  Json operator()(const PromotionDefined& e) const {
    std::vector<std::string> applies_to;
    if (e.applies_to_new) applies_to.push_back("new");
    if (e.applies_to_renewal) applies_to.push_back("renewal");
    return {{"promotion_id", e.promotion_id},
            {"offer_ids", strings(e.offer_ids)},
            {"percent_off", e.percent_off},
            {"purchase_from", date_or_null(e.purchase_from)},
            {"purchase_to", date_or_null(e.purchase_to)},
            {"applies_to", strings(applies_to)},
            {"markets", strings(e.markets)},
            {"max_seats", e.max_seats},
            {"new_customer_only", e.new_customer_only},
            {"exclude_offers", strings(e.exclude_offers)},
            {"exclude_cancel_days", e.exclude_cancel_days}};
  }
  Json operator()(const OfferRetired& e) const {
    return {{"offer_id", e.offer_id}, {"retired_on", date_or_null(e.retired_on)}};
  }
  Json operator()(const AgreementAccepted& e) const {
    return {{"customer_id", e.customer_id},
            {"agreement_type", e.agreement_type},
            {"date_agreed", e.date_agreed.iso()},
            {"contact",
             {{"first_name", e.first_name}, {"last_name", e.last_name}, {"email", e.email}}}};
  }
  Json operator()(const OfferDefined& e) const {
    Json j{{"offer_id", e.offer_id},
           {"name", e.name},
           {"segment", to_string(e.segment)},
           {"trial_eligible", e.trial_eligible},
           {"addon_of", e.addon_of},
           {"max_seats", e.max_seats},
           {"max_per_customer", e.max_per_customer}};
    if (!e.markets.empty()) j["markets"] = strings(e.markets);
    if (e.term_months != kDefaultTermMonths) j["term_months"] = e.term_months;
    return j;
  }
  Json operator()(const PricePublished& e) const {
    return {{"offer_id", e.offer_id},
            {"currency", e.currency},
            {"monthly_price", format_price(e.monthly_price_micros)},
            {"effective_from", date_or_null(e.effective_from)}};
  }
  Json operator()(const SubscriptionCreated& e) const {
    return {{"subscription_id", e.subscription_id},
            {"customer_id", e.customer_id},
            {"offer_id", e.offer_id},
            {"parent_subscription_id", e.parent_subscription_id},
            {"seats", e.seats},
            {"billing_frequency", to_string(e.frequency)},
            {"term", term_json(e.term)},
            {"currency", e.currency}};
  }
  Json operator()(const TrialStarted& e) const {
    return {{"subscription_id", e.subscription_id},
            {"customer_id", e.customer_id},
            {"offer_id", e.offer_id},
            {"seats", e.seats},
            {"trial_end", date_or_null(e.trial_end)}};
  }
  Json operator()(const TrialConverted& e) const {
    return {{"subscription_id", e.subscription_id},
            {"billing_frequency", to_string(e.frequency)},
            {"term", term_json(e.term)},
            {"currency", e.currency}};
  }
  Json operator()(const TrialExpired& e) const { return {{"subscription_id", e.subscription_id}}; }
  Json operator()(const SeatsChanged& e) const {
    return {{"subscription_id", e.subscription_id},
            {"old_seats", e.old_seats},
            {"new_seats", e.new_seats}};
  }
  Json operator()(const SubscriptionCancelled& e) const {
    return {{"subscription_id", e.subscription_id}, {"cascaded_from", e.cascaded_from}};
  }
  Json operator()(const SubscriptionReactivated& e) const {
    return {{"subscription_id", e.subscription_id}};
  }
  Json operator()(const AutoRenewSet& e) const {
    return {{"subscription_id", e.subscription_id}, {"enabled", e.enabled}};
  }
  Json operator()(const SubscriptionRenewed& e) const {
    return {
        {"subscription_id", e.subscription_id}, {"manual", e.manual}, {"term", term_json(e.term)}};
  }
  Json operator()(const SubscriptionExpired& e) const {
    return {{"subscription_id", e.subscription_id}};
  }
  Json operator()(const BillingRun& e) const {
    return {{"through", date_or_null(e.through)},
            {"previous_clock", date_or_null(e.previous_clock)},
            {"invoices_issued", e.invoices_issued}};
  }
  Json operator()(const InvoiceIssued& e) const {
    int digits = find_currency(e.currency) ? minor_digits(e.currency) : 2;
    return {{"invoice_id", e.invoice_id},
            {"customer_id", e.customer_id},
            {"partner_id", e.partner_id},
            {"invoice_date", date_or_null(e.invoice_date)},
            {"currency", e.currency},
            {"total", format_minor(e.total_minor, digits)},
            {"line_count", e.line_count},
            {"lines_sha256", to_hex(e.lines_sha256)},
            {"chain_head", to_hex(e.chain_head)}};
  }
};

std::string recorded_at_iso(int64_t micros) {
  // Shown for audits only; UTC, microsecond precision.
  std::time_t secs = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros % 1'000'000));
  return buf;
}

}  // namespace

std::string subscription_json(const Subscription& s, Date as_of) {
  Json j;
  j["subscription_id"] = s.id;
  if (!as_of.is_none()) j["as_of"] = as_of.iso();
  j["customer_id"] = s.customer_id;
  j["offer_id"] = s.offer_id;
  j["parent_subscription_id"] = s.parent_id.empty() ? Json(nullptr) : Json(s.parent_id);
  j["status"] = to_string(s.status);
  j["seats"] = s.seats;
  j["billing_frequency"] = s.paid ? Json(to_string(s.frequency)) : Json(nullptr);
  j["term_start"] = s.paid ? date_or_null(s.term.start) : Json(nullptr);
  j["term_anchor"] = s.paid ? date_or_null(s.term.anchor) : Json(nullptr);
  j["term_end"] = s.paid ? date_or_null(s.term.end) : Json(nullptr);
  j["trial_end"] = date_or_null(s.trial_end);
  j["locked_price"] = s.paid ? Json(format_price(s.term.price_micros)) : Json(nullptr);
  // BILLING_RULES 12 and 14, shown only when not the default (older output stays as it was).
  if (s.paid && term_months_of(s.term) != kDefaultTermMonths)
    j["term_months"] = term_months_of(s.term);
  if (s.paid && !s.term.promotion_id.empty()) {
    j["promotion_id"] = s.term.promotion_id;
    j["percent_off"] = s.term.percent_off;
  }
  j["currency"] = s.currency.empty() ? Json(nullptr) : Json(s.currency);
  j["auto_renew"] = s.auto_renew;
  j["cancelled_on"] = date_or_null(s.cancelled_on);
  j["expired_on"] = date_or_null(s.expired_on);
  j["stream_version"] = s.version;
  return j.dump();
}

std::string customer_json(const CustomerCreated& def) { return PayloadJson{}(def).dump(); }

std::string payload_json(const EventPayload& payload) {
  return std::visit(PayloadJson{}, payload).dump();
}

std::string agreement_json(const std::string& customer_id, const Agreement& a, bool with_contact) {
  Json j = PayloadJson{}(AgreementAccepted{customer_id, a.agreement_type, a.date_agreed,
                                           a.first_name, a.last_name, a.email});
  if (!with_contact) j.erase("contact");
  j["event_seq"] = a.event_seq;
  return j.dump();
}

std::string event_json(const Event& e) {
  Json j;
  j["seq"] = e.seq;
  j["type"] = event_type_name(e.payload);
  j["stream"] = std::string(to_string(e.stream.kind)) + "/" + e.stream.id;
  j["stream_version"] = e.stream_version;
  j["effective_date"] = date_or_null(e.effective_date);
  j["recorded_at"] = recorded_at_iso(e.recorded_at_micros);
  j["actor"] = e.actor;
  j["request_id"] = e.request_id;
  j["data"] = std::visit(PayloadJson{}, e.payload);
  // The event's place in the hash chain: what it follows and what follows it.
  j["prev_hash"] = to_hex(e.prev_hash);
  j["hash"] = to_hex(e.hash);
  return j.dump();
}

}  // namespace subledger
