// Every rejection code of the decisions, and the rules around them (BILLING_RULES 5, 7, 9, 10).
#include <gtest/gtest.h>

#include "support/fold.h"

namespace subledger::testing {
namespace {

std::string create(const std::string& id, const std::string& offer, int seats,
                   const std::string& date, const std::string& extra = "",
                   const std::string& customer = "C1") {
  return R"({"cmd":"create_subscription","request_id":"r-)" + id + R"(","subscription_id":")" +
         id + R"(","customer_id":")" + customer + R"(","offer_id":")" + offer +
         R"(","seats":)" + std::to_string(seats) + R"(,"date":")" + date + "\"" + extra + "}";
}
std::string sub_cmd(const std::string& cmd, const std::string& id, const std::string& date,
                    const std::string& extra = "") {
  return R"({"cmd":")" + cmd + R"(","request_id":"q","subscription_id":")" + id +
         R"(","date":")" + date + "\"" + extra + "}";
}
const std::string kMonthly = R"(,"billing_frequency":"monthly")";
const std::string kAnnual = R"(,"billing_frequency":"annual")";

class Decide : public ::testing::Test {
 protected:
  void SetUp() override {
    f.standard_catalog();
    f.given(OfferDefined{"EDU", "Education", Segment::kEducation, true, {}, 0, 0});
    f.given(PricePublished{"EDU", "USD", 3'000'000, D("2016-01-01")}, D("2016-01-01"));
    f.given(OfferDefined{"ONE", "Limited", Segment::kCommercial, false, {}, 0, 1});
    f.given(PricePublished{"ONE", "USD", 1'000'000, D("2016-01-01")}, D("2016-01-01"));
    f.given(OfferDefined{"VOICE", "Voice", Segment::kCommercial, false, {"E3", "BP"}, 300, 0});
    f.given(PricePublished{"VOICE", "USD", 12'000'000, D("2016-01-01")}, D("2016-01-01"));
    f.given(OfferDefined{"GBPONLY", "No USD price", Segment::kCommercial, false, {}, 0, 0});
  }
  Fold f;
};

TEST_F(Decide, CatalogRejections) {
  EXPECT_EQ(f.code(R"({"cmd":"register_partner","request_id":"a","partner_id":"P1","country":"US","currency":"USD","billing_day":20})"), "ALREADY_EXISTS");
  EXPECT_EQ(f.code(R"({"cmd":"register_partner","request_id":"a","partner_id":"P2","country":"XX","currency":"USD","billing_day":20})"), "UNKNOWN_COUNTRY");
  EXPECT_EQ(f.code(R"({"cmd":"register_partner","request_id":"a","partner_id":"P2","country":"US","currency":"USX","billing_day":20})"), "UNKNOWN_CURRENCY");
  EXPECT_EQ(f.code(R"({"cmd":"register_partner","request_id":"a","partner_id":"P2","country":"US","currency":"USD","billing_day":29})"), "INVALID_ARGUMENT");
  EXPECT_EQ(f.code(R"({"cmd":"create_customer","request_id":"a","customer_id":"C2","partner_id":"NOPE","country":"US","currency":"USD"})"), "UNKNOWN_PARTNER");
  EXPECT_EQ(f.code(R"({"cmd":"define_offer","request_id":"a","offer_id":"E3","name":"again"})"), "ALREADY_EXISTS");
  EXPECT_EQ(f.code(R"({"cmd":"define_offer","request_id":"a","offer_id":"X","name":"x","addon_of":["NOPE"]})"), "UNKNOWN_OFFER");
  EXPECT_EQ(f.code(R"({"cmd":"publish_price","request_id":"a","offer_id":"NOPE","currency":"USD","monthly_price":"1.00","effective_from":"2020-01-01"})"), "UNKNOWN_OFFER");
}

TEST_F(Decide, CustomerScreeningBySection9) {
  auto customer = [](const std::string& country, const std::string& reg, const std::string& phone) {
    return R"({"cmd":"create_customer","request_id":"a","customer_id":"CX","partner_id":"P1","country":")" +
           country + R"(","currency":"USD","organization_registration_number":")" + reg +
           R"(","phone":")" + phone + "\"}";
  };
  EXPECT_EQ(f.code(customer("RU", "7707083893", "+7")), "ACCEPTED");
  EXPECT_EQ(f.code(customer("RU", "77-07083893", "+7")), "INVALID_REGISTRATION_NUMBER");
  EXPECT_EQ(f.code(customer("RU", "7707083893", "")), "PHONE_REQUIRED");
  EXPECT_EQ(f.code(customer("BY", "1234567890", "+375")), "INVALID_REGISTRATION_NUMBER");
  EXPECT_EQ(f.code(customer("BY", "123456789", "+375")), "ACCEPTED");
  EXPECT_EQ(f.code(customer("MD", "1234567890123", "+373")), "ACCEPTED");
  EXPECT_EQ(f.code(customer("KG", "", "+996")), "INVALID_REGISTRATION_NUMBER");
  EXPECT_EQ(f.code(customer("US", "", "")), "ACCEPTED");
}

TEST_F(Decide, CreateRejections) {
  EXPECT_EQ(f.code(create("S1", "E3", 1, "2017-01-01", kMonthly, "NOPE")), "UNKNOWN_CUSTOMER");
  EXPECT_EQ(f.code(create("S1", "NOPE", 1, "2017-01-01", kMonthly)), "UNKNOWN_OFFER");
  EXPECT_EQ(f.code(create("S1", "GBPONLY", 1, "2017-01-01", kMonthly)), "NO_PRICE");
  EXPECT_EQ(f.code(create("S1", "E3", 1, "2015-06-01", kMonthly)), "NO_PRICE");
  EXPECT_EQ(f.code(create("S1", "E3", 0, "2017-01-01", kMonthly)), "INVALID_SEATS");
  EXPECT_EQ(f.code(create("S1", "BP", 301, "2017-01-01", kMonthly)), "SEATS_ABOVE_OFFER_MAX");
  EXPECT_EQ(f.code(create("S1", "E3", 1, "2017-01-01")), "INVALID_ARGUMENT");
  EXPECT_EQ(f.code(create("S1", "E3", 1, "2017-01-01", kMonthly + R"(,"parent_subscription_id":"X")")),
            "INVALID_ARGUMENT");
  f.accept(create("S1", "E3", 1, "2017-01-01", kMonthly));
  EXPECT_EQ(f.code(create("S1", "E3", 1, "2017-01-01", kMonthly)), "ALREADY_EXISTS");
}

TEST_F(Decide, OfferLimitCountsTrialAndActiveOnTheDate) {
  f.accept(create("S1", "ONE", 1, "2017-01-01", kMonthly));
  EXPECT_EQ(f.code(create("S2", "ONE", 1, "2017-01-05", kMonthly)), "OFFER_LIMIT_REACHED");
  f.accept(sub_cmd("cancel", "S1", "2017-01-10"));
  EXPECT_EQ(f.code(create("S2", "ONE", 1, "2017-01-11", kMonthly)), "ACCEPTED");
}

TEST_F(Decide, AddonRules) {
  f.accept(create("S1", "E3", 5, "2019-03-04", kAnnual));
  EXPECT_EQ(f.code(create("A1", "VOICE", 5, "2019-03-10")), "PARENT_REQUIRED");
  EXPECT_EQ(f.code(create("A1", "VOICE", 5, "2019-03-10", kMonthly + R"(,"parent_subscription_id":"S1")")),
            "ADDON_FREQUENCY_MISMATCH");
  f.accept(create("A1", "VOICE", 5, "2019-03-10", R"(,"parent_subscription_id":"S1")"));
  EXPECT_EQ(f.state.subscription("A1")->frequency, Frequency::kAnnual) << "inherits the parent's";
  f.accept(sub_cmd("cancel", "S1", "2019-06-01"));
  EXPECT_EQ(f.state.subscription("A1")->status, Status::kCancelled) << "cascade";
  EXPECT_EQ(f.code(create("A2", "VOICE", 5, "2019-06-02", R"(,"parent_subscription_id":"S1")")),
            "PARENT_NOT_ACTIVE");
  EXPECT_EQ(f.code(sub_cmd("reactivate", "A1", "2019-06-03")), "PARENT_NOT_ACTIVE");
  EXPECT_EQ(f.code(R"({"cmd":"start_trial","request_id":"t","subscription_id":"T","customer_id":"C1","offer_id":"VOICE","date":"2019-06-03"})"),
            "TRIAL_NOT_ELIGIBLE");
}

TEST_F(Decide, TrialRules) {
  auto trial = [](const std::string& id, const std::string& offer, const std::string& date) {
    return R"({"cmd":"start_trial","request_id":"t","subscription_id":")" + id +
           R"(","customer_id":"C1","offer_id":")" + offer + R"(","date":")" + date + "\"}";
  };
  // BILLING_RULES 13: C1 is commercial, so the segment check comes first.
  EXPECT_EQ(f.code(trial("T1", "EDU", "2018-09-01")), "SEGMENT_NOT_ELIGIBLE");
  f.given(CustomerCreated{"EDU1", "P1", "US", "USD", "", "", "", "", Segment::kEducation});
  EXPECT_EQ(f.code(R"({"cmd":"start_trial","request_id":"t","subscription_id":"T9",)"
                   R"("customer_id":"EDU1","offer_id":"EDU","date":"2018-09-01"})"),
            "TRIAL_NOT_ELIGIBLE");
  EXPECT_EQ(f.code(trial("T1", "ONE", "2018-09-01")), "TRIAL_NOT_ELIGIBLE");
  f.accept(create("S1", "BP", 3, "2018-08-01", kMonthly));
  EXPECT_EQ(f.code(trial("T1", "BP", "2018-09-01")), "OFFER_ALREADY_OWNED");
  f.accept(trial("T1", "E3", "2018-09-01"));
  EXPECT_EQ(f.state.subscription("T1")->seats, 25u);
  EXPECT_EQ(f.code(sub_cmd("change_seats", "T1", "2018-09-05", R"(,"seats":30)")), "TRIAL_SEATS_FIXED");
  EXPECT_EQ(f.code(sub_cmd("reactivate", "T1", "2018-09-05")), "INVALID_STATE");
  EXPECT_EQ(f.code(sub_cmd("convert_trial", "S1", "2018-09-05", kMonthly)), "NOT_A_TRIAL");
  EXPECT_EQ(f.code(trial("T2", "E3", "2018-09-02")), "TRIAL_ALREADY_USED");
  f.accept(sub_cmd("cancel", "T1", "2018-09-10"));
  EXPECT_EQ(f.code(sub_cmd("reactivate", "T1", "2018-09-11")), "INVALID_STATE")
      << "a cancelled trial cannot be reactivated";
}

TEST_F(Decide, RejectedCommandsMaterializeNoTransition) {
  f.accept(R"({"cmd":"start_trial","request_id":"t","subscription_id":"T1","customer_id":"C1","offer_id":"E3","date":"2018-09-01"})");
  Decision rejected = f.when(sub_cmd("convert_trial", "T1", "2018-10-01", kMonthly));
  ASSERT_TRUE(rejected.rejection);
  EXPECT_TRUE(rejected.events.empty());
  EXPECT_EQ(f.state.subscription("T1")->status, Status::kTrial) << "nothing appended";
  EXPECT_EQ(f.code(sub_cmd("cancel", "T1", "2018-10-02")), "INVALID_STATE")
      << "judged as expired on its date";
  EXPECT_EQ(f.state.subscription("T1")->status, Status::kTrial) << "still nothing appended";
  auto due = due_transitions(*f.state.subscription("T1"), D("2018-10-31"), f.state.catalog());
  ASSERT_EQ(due.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<TrialExpired>(due[0].payload));
  EXPECT_EQ(due[0].date, D("2018-10-01"));
}

TEST_F(Decide, RenewalIsMaterializedBeforeALaterCommand) {
  f.accept(create("S1", "E3", 10, "2017-01-15", kAnnual));
  Decision d = f.accept(sub_cmd("change_seats", "S1", "2018-02-01", R"(,"seats":12)"));
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<SubscriptionRenewed>(d.events[0].payload));
  EXPECT_TRUE(d.events[0].by_system);
  EXPECT_EQ(d.events[0].date, D("2018-01-15"));
  EXPECT_EQ(f.state.subscription("S1")->term.end, D("2019-01-15"));
}

TEST_F(Decide, DatesOnlyMoveForward) {
  f.accept(create("S1", "E3", 10, "2017-03-10", kMonthly));
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-03-09", R"(,"seats":12)")), "DATE_BEFORE_LAST_EVENT");
  f.given(BillingRun{D("2017-04-30"), Date(), 0}, D("2017-04-30"));
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-04-29", R"(,"seats":12)")), "DATE_BEFORE_BILLING_CLOCK");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-04-30", R"(,"seats":12)")), "ACCEPTED");
  EXPECT_EQ(f.code(R"({"cmd":"publish_price","request_id":"p","offer_id":"E3","currency":"USD","monthly_price":"1.00","effective_from":"2017-04-01"})"),
            "DATE_BEFORE_BILLING_CLOCK");
}

TEST_F(Decide, SeatChangeMustChangeSomething) {
  f.accept(create("S1", "BP", 10, "2017-03-10", kMonthly));
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-03-12", R"(,"seats":10)")), "INVALID_SEATS");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-03-12", R"(,"seats":0)")), "INVALID_SEATS");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-03-12", R"(,"seats":301)")), "SEATS_ABOVE_OFFER_MAX");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "NOPE", "2017-03-12", R"(,"seats":3)")), "UNKNOWN_SUBSCRIPTION");
}

TEST_F(Decide, ReactivationAndManualRenewalWindowsAre90Days) {
  f.accept(create("S1", "BP", 10, "2017-03-10", kMonthly));
  f.accept(sub_cmd("cancel", "S1", "2017-05-01"));
  EXPECT_EQ(f.code(sub_cmd("reactivate", "S1", "2017-07-31")), "RETENTION_WINDOW_PASSED");
  EXPECT_EQ(f.code(sub_cmd("reactivate", "S1", "2017-07-30")), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("renew", "S1", "2017-07-30")), "INVALID_STATE");
  f.accept(create("S2", "E3", 1, "2017-01-15", kAnnual));
  f.accept(sub_cmd("set_auto_renew", "S2", "2017-02-01", R"(,"enabled":false)"));
  EXPECT_EQ(f.code(sub_cmd("renew", "S2", "2018-04-16")), "RETENTION_WINDOW_PASSED");
  EXPECT_EQ(f.code(sub_cmd("renew", "S2", "2018-04-15")), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("set_auto_renew", "S2", "2018-02-01", R"(,"enabled":true)")), "INVALID_STATE")
      << "expired on 2018-01-15";
}

TEST(Parse, StrictFieldsAndClearMessages) {
  auto p = parse_command(R"({"cmd":"cancel","request_id":"r","subscription_id":"S","date":"2017-02-30"})");
  ASSERT_FALSE(p.command);
  EXPECT_EQ(p.rejection.code, "INVALID_ARGUMENT");
  EXPECT_NE(p.rejection.message.find("YYYY-MM-DD"), std::string::npos);
  p = parse_command(R"({"cmd":"cancel","request_id":"r","subscription_id":"S","date":"2017-02-03","color":"red"})");
  EXPECT_NE(p.rejection.message.find("unknown field \"color\""), std::string::npos);
  p = parse_command(R"({"cmd":"cancel","request_id":"r","date":"2017-02-03"})");
  EXPECT_NE(p.rejection.message.find("subscription_id"), std::string::npos);
  p = parse_command("not json");
  EXPECT_EQ(p.rejection.code, "INVALID_ARGUMENT");
  p = parse_command(R"({"cmd":"fly","request_id":"r"})");
  EXPECT_NE(p.rejection.message.find("register_partner"), std::string::npos);
  p = parse_command(R"({"cmd":"publish_price","request_id":"r","offer_id":"E3","currency":"USD","monthly_price":20.5,"effective_from":"2017-01-01"})");
  EXPECT_EQ(p.rejection.code, "INVALID_ARGUMENT") << "prices are decimal strings, never floats";
}

TEST(Parse, CanonicalPayloadIgnoresKeyOrderAndDefaults) {
  auto a = parse_command(R"({"cmd":"define_offer","request_id":"r","offer_id":"E3","name":"n"})");
  auto b = parse_command(R"({ "name":"n", "trial_eligible":false, "segment":"commercial", "max_seats":0, "offer_id":"E3", "addon_of":[], "request_id":"r", "cmd":"define_offer"})");
  auto c = parse_command(R"({"cmd":"define_offer","request_id":"r","offer_id":"E3","name":"n","max_seats":5})");
  ASSERT_TRUE(a.command && b.command && c.command);
  EXPECT_EQ(payload_hash(*a.command), payload_hash(*b.command));
  EXPECT_NE(payload_hash(*a.command), payload_hash(*c.command));
}

}  // namespace
}  // namespace subledger::testing
