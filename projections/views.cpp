#include "projections/views.h"

#include <algorithm>

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

void append_dumped_string(std::string& out, std::string_view s) {
  // Printable ASCII other than '"' and '\\' is copied; a string holding anything else is printed
  // by the library (which escapes \b and \f as such, unlike the invoices' append_json_string).
  const bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
    return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
  });
  if (!plain) {
    out += Json(std::string(s)).dump();
    return;
  }
  out.push_back('"');
  out.append(s);
  out.push_back('"');
}

std::string subscription_json(const Subscription& s, Date as_of, std::string_view scope) {
  // Printed member by member, the text of the library's dump() of the same ordered object
  // (tests/projections/views_test.cpp keeps that builder as the oracle): a GET of a subscription
  // spent 14% of the server's CPU building and dumping the object.
  auto unscoped = [scope](const std::string& id) {
    std::string_view v = id;
    if (!scope.empty() && v.starts_with(scope)) v.remove_prefix(scope.size());
    return v;
  };
  std::string out;
  out.reserve(384);
  out.push_back('{');
  auto name = [&out](std::string_view member) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    out.append(member);
    out += "\":";
  };
  auto text = [&](std::string_view member, std::string_view value) {
    name(member);
    append_dumped_string(out, value);
  };
  auto null = [&](std::string_view member) {
    name(member);
    out += "null";
  };
  auto text_or_null = [&](std::string_view member, bool present, std::string_view value) {
    if (present) text(member, value);
    else null(member);
  };
  auto date = [&](std::string_view member, bool present, Date d) {
    text_or_null(member, present && !d.is_none(), d.is_none() ? std::string() : d.iso());
  };
  auto number = [&](std::string_view member, auto value) {
    name(member);
    out += std::to_string(value);
  };
  text("subscription_id", unscoped(s.id));
  if (!as_of.is_none()) text("as_of", as_of.iso());
  text("customer_id", unscoped(s.customer_id));
  text("offer_id", s.offer_id);
  const std::string_view parent = unscoped(s.parent_id);
  text_or_null("parent_subscription_id", !parent.empty(), parent);
  text("status", to_string(s.status));
  number("seats", s.seats);
  text_or_null("billing_frequency", s.paid, s.paid ? to_string(s.frequency) : "");
  date("term_start", s.paid, s.term.start);
  date("term_anchor", s.paid, s.term.anchor);
  date("term_end", s.paid, s.term.end);
  date("trial_end", true, s.trial_end);
  text_or_null("locked_price", s.paid, s.paid ? format_price(s.term.price_micros) : "");
  // BILLING_RULES 12 and 14, shown only when not the default (older output stays as it was).
  if (s.paid && term_months_of(s.term) != kDefaultTermMonths)
    number("term_months", term_months_of(s.term));
  if (s.paid && !s.term.promotion_id.empty()) {
    text("promotion_id", s.term.promotion_id);
    number("percent_off", s.term.percent_off);
  }
  text_or_null("currency", !s.currency.empty(), s.currency);
  name("auto_renew");
  out += s.auto_renew ? "true" : "false";
  date("cancelled_on", true, s.cancelled_on);
  date("expired_on", true, s.expired_on);
  number("stream_version", s.version);
  out.push_back('}');
  return out;
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
