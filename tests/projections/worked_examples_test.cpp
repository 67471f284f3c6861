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

}  // namespace
}  // namespace subledger::testing
