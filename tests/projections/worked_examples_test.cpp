// BILLING_RULES 11: every worked example, to the cent.
#include <gtest/gtest.h>

#include "support/fold.h"

namespace subledger::testing {
namespace {

const char* kAnnualS1 =
    R"({"cmd":"create_subscription","request_id":"s1","subscription_id":"S1","customer_id":"C1",)"
    R"("offer_id":"E3","seats":10,"billing_frequency":"annual","date":"2017-01-15"})";

TEST(WorkedExample1, AnnualPurchaseThenRenewalAtTheNewPrice) {
  Fold f;
  f.standard_catalog();
  f.accept(kAnnualS1);
  auto jan = f.invoice("C1", D("2017-01-20"));
  ASSERT_TRUE(jan);
  EXPECT_EQ(amounts(*jan), std::vector<std::string>{"2400.00"});
  EXPECT_EQ(jan->lines[0].type, ChargeType::kPurchase);
  f.given(InvoiceIssued{jan->invoice_id, "C1", "P1", D("2017-01-20"), "USD", jan->total_minor,
                        jan->line_count, jan->lines_sha256, ""},
          D("2017-01-20"));
  for (const char* d : {"2017-02-20", "2017-06-20", "2017-12-20"})
    EXPECT_FALSE(f.invoice("C1", D(d))) << "no lines for the next 11 months: " << d;
  f.given(PricePublished{"E3", "USD", 22'000'000, D("2017-07-01")}, D("2017-07-01"));
  auto due = due_transitions(*f.state.subscription("S1"), D("2018-01-31"), f.state.catalog());
  ASSERT_EQ(due.size(), 1u);
  f.given(due[0].payload, due[0].date);
  auto renewal = f.invoice("C1", D("2018-01-20"));
  ASSERT_TRUE(renewal);
  EXPECT_EQ(amounts(*renewal), std::vector<std::string>{"2640.00"});
  EXPECT_EQ(renewal->lines[0].type, ChargeType::kRenew);
  EXPECT_EQ(renewal->lines[0].charge_date, D("2018-01-15"));
}

TEST(WorkedExample2, CancelWithin30DaysCreditsEverythingCharged) {
  Fold f;
  f.standard_catalog();
  f.accept(kAnnualS1);
  f.accept(R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":"2017-02-10"})");
  auto inv = f.invoice("C1", D("2017-02-20"));
  ASSERT_TRUE(inv);
  EXPECT_EQ(amounts(*inv), (std::vector<std::string>{"2400.00", "-2400.00"}));
  EXPECT_EQ(inv->lines[1].type, ChargeType::kCancel);
  EXPECT_EQ(inv->total_minor, 0);
}

TEST(WorkedExample3, CancelAfter30DaysCreditsTheRestByDay) {
  Fold f;
  f.standard_catalog();
  f.accept(kAnnualS1);
  f.accept(R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":"2017-07-01"})");
  auto inv = f.invoice("C1", D("2017-07-20"));
  ASSERT_TRUE(inv);
  EXPECT_EQ(amounts(*inv).back(), "-1301.92");
  EXPECT_EQ(inv->lines.back().quantity, 198);
}

TEST(WorkedExample4, SeatIncreaseIsCreditAndRebillToTermEnd) {
  Fold f;
  f.standard_catalog();
  f.accept(kAnnualS1);
  f.accept(R"({"cmd":"change_seats","request_id":"x","subscription_id":"S1","seats":15,)"
           R"("date":"2017-04-01"})");
  auto inv = f.invoice("C1", D("2017-04-20"));
  ASSERT_TRUE(inv);
  EXPECT_EQ(amounts(*inv), (std::vector<std::string>{"2400.00", "-1900.27", "2850.41"}));
  EXPECT_EQ(inv->lines[1].quantity, 289);
}

TEST(WorkedExample5, MonthEndPurchaseHasStubThenWholeMonths) {
  Fold f;
  f.standard_catalog();
  f.accept(R"({"cmd":"create_subscription","request_id":"s","subscription_id":"S1",)"
           R"("customer_id":"C1","offer_id":"BP","seats":5,"billing_frequency":"monthly",)"
           R"("date":"2017-01-30"})");
  const Subscription* s = f.state.subscription("S1");
  EXPECT_EQ(s->term.anchor, D("2017-02-01"));
  EXPECT_EQ(s->term.end, D("2018-02-01"));
  auto feb = f.invoice("C1", D("2017-02-20"));
  ASSERT_TRUE(feb);
  EXPECT_EQ(amounts(*feb), (std::vector<std::string>{"3.29", "50.00"}));
  EXPECT_EQ(feb->lines[0].period_end, D("2017-02-01"));
  auto mar = f.invoice("C1", D("2017-04-01"));
  ASSERT_TRUE(mar);
  EXPECT_EQ(mar->lines[2].type, ChargeType::kCycle);
  EXPECT_EQ(mar->lines[2].charge_date, D("2017-03-01"));
  EXPECT_EQ(amounts(*mar)[3], "50.00");
}

void monthly_10_seats(Fold& f) {
  f.standard_catalog();
  f.accept(R"({"cmd":"create_subscription","request_id":"s","subscription_id":"S1",)"
           R"("customer_id":"C1","offer_id":"BP","seats":10,"billing_frequency":"monthly",)"
           R"("date":"2017-03-10"})");
}

TEST(WorkedExample6, MonthlySeatDecreaseIsByDayToPeriodEnd) {
  Fold f;
  monthly_10_seats(f);
  f.accept(R"({"cmd":"change_seats","request_id":"x","subscription_id":"S1","seats":4,)"
           R"("date":"2017-03-25"})");
  auto inv = f.invoice("C1", D("2017-03-31"));
  ASSERT_TRUE(inv);
  EXPECT_EQ(amounts(*inv), (std::vector<std::string>{"100.00", "-52.60", "21.04"}));
  EXPECT_EQ(inv->lines[1].period_end, D("2017-04-10"));
}

TEST(WorkedExample7, CancelThenReactivateChargesTheRestOfThePeriod) {
  Fold f;
  monthly_10_seats(f);
  f.accept(R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":"2017-05-15"})");
  f.accept(R"({"cmd":"reactivate","request_id":"y","subscription_id":"S1","date":"2017-05-25"})");
  auto inv = f.invoice("C1", D("2017-05-31"));
  ASSERT_TRUE(inv);
  auto a = amounts(*inv);
  ASSERT_EQ(a.size(), 5u);  // purchase, two cycle fees, credit, activation
  EXPECT_EQ(a[3], "-85.48");
  EXPECT_EQ(a[4], "52.60");
  EXPECT_EQ(inv->lines[4].type, ChargeType::kActivation);
  EXPECT_EQ(f.state.subscription("S1")->status, Status::kActive);
}

TEST(WorkedExample8, TrialConvertsIntoATermFromTheConversionDate) {
  Fold f;
  f.standard_catalog();
  f.accept(R"({"cmd":"start_trial","request_id":"t","subscription_id":"T1","customer_id":"C1",)"
           R"("offer_id":"E3","date":"2018-09-01"})");
  EXPECT_EQ(f.state.subscription("T1")->trial_end, D("2018-10-01"));
  EXPECT_FALSE(f.invoice("C1", D("2018-09-19"))) << "a trial is never charged";
  f.accept(R"({"cmd":"convert_trial","request_id":"c","subscription_id":"T1",)"
           R"("billing_frequency":"monthly","date":"2018-09-20"})");
  auto inv = f.invoice("C1", D("2018-09-20"));
  ASSERT_TRUE(inv);
  EXPECT_EQ(amounts(*inv), std::vector<std::string>{"500.00"});
  EXPECT_EQ(inv->lines[0].period_end, D("2018-10-20"));
  EXPECT_EQ(f.state.subscription("T1")->term.end, D("2019-09-20"));
}

TEST(WorkedExample8, ConvertingOnTheTrialEndIsRejected) {
  Fold f;
  f.standard_catalog();
  f.accept(R"({"cmd":"start_trial","request_id":"t","subscription_id":"T1","customer_id":"C1",)"
           R"("offer_id":"E3","date":"2018-09-01"})");
  EXPECT_EQ(f.code(R"({"cmd":"convert_trial","request_id":"c","subscription_id":"T1",)"
                   R"("billing_frequency":"monthly","date":"2018-10-01"})"),
            "TRIAL_EXPIRED");
}

// ---- BILLING_RULES 11, examples 9 to 11 (sections 12 to 14) ----------------------------------

// Partner P1 (US, USD, day 20), customer C1 in `country`, and `offer` at `price` USD.
void catalog_with(Fold& f, const char* offer, int64_t price_micros, const char* country = "US",
                  int term_months = kDefaultTermMonths) {
  f.given(PartnerRegistered{"P1", "US", "USD", 20});
  OfferDefined o{offer, offer, Segment::kCommercial, false, {}, 0, 0};
  o.term_months = term_months;
  f.given(o);
  f.given(PricePublished{offer, "USD", price_micros, D("2019-01-01")}, D("2019-01-01"));
  f.given(CustomerCreated{"C1", "P1", country, "USD", "Contoso", "", "", ""});
}

// The lines charged on `d` in the customer's pending lines up to `through`.
std::vector<ChargeLine> charged_on(Fold& f, Date d, Date through) {
  std::vector<ChargeLine> out;
  auto inv = f.invoice("C1", through);
  if (inv)
    for (const auto& l : inv->lines)
      if (l.charge_date == d) out.push_back(l);
  return out;
}

TEST(WorkedExample9, NewCustomerPromotionDiscountsTheFirstPurchaseOnly) {
  Fold f;
  catalog_with(f, "E1", 10'000'000, "BR");
  f.accept(R"({"cmd":"define_promotion","request_id":"pm","promotion_id":"E1-MIDMARKET",)"
           R"("offer_ids":["E1"],"percent_off":30,"purchase_from":"2020-12-01",)"
           R"("purchase_to":"2021-05-31","applies_to":["new"],"max_seats":500,)"
           R"("new_customer_only":true})");
  f.accept(R"({"cmd":"create_subscription","request_id":"s1","subscription_id":"S1",)"
           R"("customer_id":"C1","offer_id":"E1","seats":100,"billing_frequency":"annual",)"
           R"("date":"2020-12-15"})");
  auto first = charged_on(f, D("2020-12-15"), D("2020-12-20"));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].amount_minor, 840000);  // 10 x 12 x 100 x 0.7 = 8400.00
  EXPECT_EQ(first[0].promotion_id, "E1-MIDMARKET");
  EXPECT_EQ(first[0].unit_price_micros, 10'000'000) << "unit_price stays the list price";
  f.accept(R"({"cmd":"create_subscription","request_id":"s2","subscription_id":"S2",)"
           R"("customer_id":"C1","offer_id":"E1","seats":10,"billing_frequency":"annual",)"
           R"("date":"2021-01-10"})");
  auto second = charged_on(f, D("2021-01-10"), D("2021-01-20"));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].amount_minor, 120000) << "the customer is no longer new: full price";
  EXPECT_EQ(second[0].promotion_id, "");
}

TEST(WorkedExample10, ExcludingPromotionIsReversedWithinThirtyDaysAndNotGivenAgain) {
  Fold f;
  catalog_with(f, "BV", 15'000'000);
  f.accept(R"({"cmd":"define_promotion","request_id":"pm","promotion_id":"BV-INTRO",)"
           R"("offer_ids":["BV"],"percent_off":25,"purchase_from":"2020-11-01",)"
           R"("purchase_to":"2021-04-30","applies_to":["new","renewal"],)"
           R"("exclude_offers":["BV"],"exclude_cancel_days":30})");
  f.accept(R"({"cmd":"create_subscription","request_id":"s1","subscription_id":"S1",)"
           R"("customer_id":"C1","offer_id":"BV","seats":10,"billing_frequency":"monthly",)"
           R"("date":"2020-11-10"})");
  f.accept(R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":"2020-11-25"})");
  f.accept(R"({"cmd":"create_subscription","request_id":"s2","subscription_id":"S2",)"
           R"("customer_id":"C1","offer_id":"BV","seats":10,"billing_frequency":"monthly",)"
           R"("date":"2020-12-01"})");
  auto bought = charged_on(f, D("2020-11-10"), D("2020-12-20"));
  ASSERT_EQ(bought.size(), 1u);
  EXPECT_EQ(bought[0].amount_minor, 11250);  // 150.00 x 0.75
  EXPECT_EQ(bought[0].promotion_id, "BV-INTRO");
  auto cancelled = charged_on(f, D("2020-11-25"), D("2020-12-20"));
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].type, ChargeType::kCancel);
  EXPECT_EQ(cancelled[0].amount_minor, -11250);
  EXPECT_EQ(cancelled[0].promotion_id, "BV-INTRO");
  auto again = charged_on(f, D("2020-12-01"), D("2020-12-20"));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].amount_minor, 15000) << "cancelled 6 days before: no promotion";
  EXPECT_EQ(again[0].promotion_id, "");
}

TEST(WorkedExample11, ThirtySixMonthAnnualTermBillsEachYearAtItsStart) {
  Fold f;
  catalog_with(f, "PO36", 30'000'000, "US", kLongTermMonths);
  f.accept(R"({"cmd":"create_subscription","request_id":"s1","subscription_id":"S1",)"
           R"("customer_id":"C1","offer_id":"PO36","seats":5,"billing_frequency":"annual",)"
           R"("date":"2021-01-15"})");
  EXPECT_EQ(f.state.subscription("S1")->term.end, D("2024-01-15"));
  auto bought = charged_on(f, D("2021-01-15"), D("2021-01-20"));
  ASSERT_EQ(bought.size(), 1u);
  EXPECT_EQ(bought[0].period_end, D("2022-01-15"));
  EXPECT_EQ(bought[0].amount_minor, 180000);
  auto year2 = charged_on(f, D("2022-01-15"), D("2022-01-20"));
  ASSERT_EQ(year2.size(), 1u);
  EXPECT_EQ(year2[0].type, ChargeType::kCycle);
  EXPECT_EQ(year2[0].period_start, D("2022-01-15"));
  EXPECT_EQ(year2[0].period_end, D("2023-01-15"));
  EXPECT_EQ(year2[0].amount_minor, 180000);
  f.accept(R"({"cmd":"change_seats","request_id":"c","subscription_id":"S1","seats":8,)"
           R"("date":"2022-07-01"})");
  auto change = charged_on(f, D("2022-07-01"), D("2022-07-20"));
  ASSERT_EQ(change.size(), 2u);
  EXPECT_EQ(change[0].quantity, 198);
  EXPECT_EQ(change[0].period_end, D("2023-01-15"));
  EXPECT_EQ(change[0].amount_minor, -97644);
  EXPECT_EQ(change[1].amount_minor, 156230);
  auto year3 = charged_on(f, D("2023-01-15"), D("2023-01-20"));
  ASSERT_EQ(year3.size(), 1u);
  EXPECT_EQ(year3[0].seats, 8u);
  EXPECT_EQ(year3[0].amount_minor, 288000);
  EXPECT_EQ(year3[0].period_end, D("2024-01-15"));
  EXPECT_TRUE(charged_on(f, D("2024-01-15"), D("2024-01-20")).empty()) << "no fourth year";
  auto due = due_transitions(*f.state.subscription("S1"), D("2024-01-31"), f.state);
  ASSERT_EQ(due.size(), 1u);
  const auto& renewed = std::get<SubscriptionRenewed>(due[0].payload);
  EXPECT_EQ(due[0].date, D("2024-01-15"));
  EXPECT_EQ(renewed.term.end, D("2027-01-15"));
}

}  // namespace
}  // namespace subledger::testing
