// The `state` view is printed member by member; its text must stay that of the JSON library's
// dump() of the ordered object the view used to build, which this test keeps as the oracle.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "events/money.h"
#include "projections/views.h"

namespace subledger {
namespace {

using Json = nlohmann::ordered_json;

Json date_or_null(Date d) { return d.is_none() ? Json(nullptr) : Json(d.iso()); }

// The builder subscription_json used before it printed its text directly (with the server's
// scope taken off the three ids first, as the server did).
std::string oracle(Subscription s, Date as_of = Date(), const std::string& scope = "") {
  for (std::string* id : {&s.id, &s.customer_id, &s.parent_id})
    if (!scope.empty() && id->starts_with(scope)) *id = id->substr(scope.size());
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

std::vector<Subscription> subscriptions() {
  std::vector<Subscription> all;
  Subscription trial;
  trial.id = "S1";
  trial.customer_id = "C1";
  trial.offer_id = "E3";
  trial.seats = 25;
  trial.trial_end = Date::from_ymd(2025, 1, 31);
  trial.version = 1;
  all.push_back(trial);

  Subscription paid = trial;
  paid.status = Status::kActive;
  paid.paid = true;
  paid.frequency = Frequency::kAnnual;
  paid.term = make_term(Date::from_ymd(2025, 1, 31), 20'000'000);
  paid.currency = "USD";
  paid.seats = 4'294'967'295u;
  paid.version = 18'446'744'073'709'551'615ull;
  all.push_back(paid);

  Subscription promoted = paid;
  promoted.term = make_term(Date::from_ymd(2024, 2, 29), 1'234'567, 36);
  promoted.term.promotion_id = "PROMO-36";
  promoted.term.percent_off = 15;
  promoted.frequency = Frequency::kMonthly;
  promoted.auto_renew = false;
  promoted.status = Status::kCancelled;
  promoted.cancelled_on = Date::from_ymd(2024, 3, 1);
  promoted.parent_id = "P:S0";
  all.push_back(promoted);

  Subscription expired = promoted;
  expired.status = Status::kExpired;
  expired.expired_on = Date::from_ymd(2027, 2, 28);
  expired.term.price_micros = 0;
  all.push_back(expired);

  // Ids holding what JSON escapes: quotes, backslashes, control bytes, UTF-8; and a parent that
  // is exactly the scope (nothing left once it is taken off: printed as null, as before).
  Subscription odd = paid;
  odd.id = "P:S\"quoted\\";
  odd.customer_id = std::string("P:C\x01\b\f\n\t") + '\0';
  odd.offer_id = "Offre-\xC3\xA9t\xC3\xA9";
  odd.parent_id = "P:";
  odd.currency = "JPY";
  all.push_back(odd);

  Subscription unpaid_with_term = trial;  // a term not yet paid is not shown
  unpaid_with_term.term = make_term(Date::from_ymd(2025, 5, 1), 5'000'000, 36);
  unpaid_with_term.term.promotion_id = "X";
  unpaid_with_term.status = Status::kCancelled;
  unpaid_with_term.cancelled_on = Date::from_ymd(2025, 1, 2);
  all.push_back(unpaid_with_term);
  return all;
}

TEST(SubscriptionJson, IsTheTextTheJsonLibraryPrintedForTheSameObject) {
  for (const Subscription& s : subscriptions()) {
    EXPECT_EQ(subscription_json(s), oracle(s)) << s.id;
    EXPECT_EQ(subscription_json(s, Date::from_ymd(2025, 6, 30)),
              oracle(s, Date::from_ymd(2025, 6, 30)))
        << s.id;
    EXPECT_EQ(subscription_json(s, Date(), "P:"), oracle(s, Date(), "P:")) << s.id;
    EXPECT_TRUE(Json::accept(subscription_json(s))) << s.id;
  }
}

TEST(SubscriptionJson, TakesTheScopeOffOnlyTheIdsThatBeginWithIt) {
  Subscription s = subscriptions()[2];
  s.id = "P:S7";
  s.customer_id = "Q:C7";  // another scope's: kept
  const Json j = Json::parse(subscription_json(s, Date(), "P:"));
  EXPECT_EQ(j["subscription_id"], "S7");
  EXPECT_EQ(j["customer_id"], "Q:C7");
  EXPECT_EQ(j["parent_subscription_id"], "S0");
}

TEST(SubscriptionJson, RefusesBytesThatAreNotUtf8AsTheLibraryDid) {
  Subscription s = subscriptions()[0];
  s.offer_id = "bad\xFF";
  EXPECT_THROW((void)subscription_json(s), nlohmann::json::type_error);
  EXPECT_THROW((void)oracle(s), nlohmann::json::type_error);
}

}  // namespace
}  // namespace subledger
