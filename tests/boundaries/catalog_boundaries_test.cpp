// Boundaries of BILLING_RULES 12 to 14 decided in memory (no database): the promotion window's
// first and last day and the days around them, the exclusion's last and first day, max_seats at
// the cap and one above, a retirement date and the day before, and the first day of a 36-month
// term's second and third year and the day before each. Every expected value is computed by hand.
#include <gtest/gtest.h>

#include "support/fold.h"

namespace subledger::testing {
namespace {

std::string create(const std::string& id, const std::string& offer, int seats,
                   const std::string& date, const std::string& freq = "monthly") {
  return R"({"cmd":"create_subscription","request_id":"r-)" + id + R"(","subscription_id":")" + id +
         R"(","customer_id":"C1","offer_id":")" + offer + R"(","seats":)" + std::to_string(seats) +
         R"(,"billing_frequency":")" + freq + R"(","date":")" + date + "\"}";
}

// Partner P1 (US, USD, day 20); customer C1 (US); offers BV (15.00) and PO36 (30.00, 36 months).
void catalog(Fold& f) {
  f.given(PartnerRegistered{"P1", "US", "USD", 20});
  f.given(OfferDefined{"BV", "Business Voice", Segment::kCommercial, false, {}, 0, 0});
  f.given(PricePublished{"BV", "USD", 15'000'000, D("2019-01-01")}, D("2019-01-01"));
  OfferDefined po36{"PO36", "Project Operations", Segment::kCommercial, false, {}, 0, 0};
  po36.term_months = kLongTermMonths;
  f.given(po36);
  f.given(PricePublished{"PO36", "USD", 30'000'000, D("2019-01-01")}, D("2019-01-01"));
  f.given(CustomerCreated{"C1", "P1", "US", "USD", "Contoso", "", "", ""});
}

// 25% off BV for new terms bought 2020-11-01..2021-04-30, at most 10 seats, excluding customers
// with BV active or cancelled within 30 days.
void promotion(Fold& f) {
  f.accept(R"({"cmd":"define_promotion","request_id":"pm","promotion_id":"BV25",)"
           R"("offer_ids":["BV"],"percent_off":25,"purchase_from":"2020-11-01",)"
           R"("purchase_to":"2021-04-30","applies_to":["new"],"max_seats":10,)"
           R"("exclude_offers":["BV"]})");
}

// The promotion the purchase of `seats` BV seats on `date` gets ("" for none).
std::string promotion_on(const char* date, int seats = 5) {
  Fold f;
  catalog(f);
  promotion(f);
  Decision d = f.accept(create("S1", "BV", seats, date));
  return std::get<SubscriptionCreated>(d.events.at(0).payload).term.promotion_id;
}

TEST(PromotionWindow, BothDaysIncludedAndNotOneDayMore) {
  EXPECT_EQ(promotion_on("2020-10-31"), "");
  EXPECT_EQ(promotion_on("2020-11-01"), "BV25");
  EXPECT_EQ(promotion_on("2020-11-02"), "BV25");
  EXPECT_EQ(promotion_on("2021-04-29"), "BV25");
  EXPECT_EQ(promotion_on("2021-04-30"), "BV25");
  EXPECT_EQ(promotion_on("2021-05-01"), "");
}

TEST(PromotionWindow, TermDateOfAMonthEndPurchaseIsThePurchaseDateNotTheAnchor) {
  // 2021-04-30 anchors on 2021-05-01, outside the window: the term's date t is the purchase.
  EXPECT_EQ(promotion_on("2021-04-30"), "BV25");
}

TEST(PromotionMaxSeats, AtTheCapAndOneAbove) {
  EXPECT_EQ(promotion_on("2020-12-01", 10), "BV25");
  EXPECT_EQ(promotion_on("2020-12-01", 11), "");
}

// BV bought 2020-11-02 and cancelled on `cancelled`; a second BV bought on `bought`.
std::string promotion_after_cancel(const char* cancelled, const char* bought) {
  Fold f;
  catalog(f);
  promotion(f);
  f.accept(create("S1", "BV", 5, "2020-11-02"));
  f.accept(R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":")" +
           std::string(cancelled) + "\"}");
  Decision d = f.accept(create("S2", "BV", 5, bought));
  return std::get<SubscriptionCreated>(d.events.at(0).payload).term.promotion_id;
}

TEST(PromotionExclusion, CancelledThirtyDaysBeforeExcludesThirtyOneDoesNot) {
  // t - c = 30: the exclusion's last day; 31: its first day over.
  EXPECT_EQ(promotion_after_cancel("2020-11-05", "2020-12-05"), "");
  EXPECT_EQ(promotion_after_cancel("2020-11-05", "2020-12-06"), "BV25");
}

TEST(PromotionExclusion, ActiveOnTheDayBeforeExcludesCancelledOnTheDayStillCounts) {
  // Cancelled on t itself: at the end of the day before t it was active.
  EXPECT_EQ(promotion_after_cancel("2020-12-01", "2020-12-01"), "");
}

TEST(PromotionExclusion, ASubscriptionStartingOnTheTermDateDoesNotCount) {
  Fold f;
  catalog(f);
  promotion(f);
  f.accept(create("S1", "BV", 5, "2020-12-02"));
  // S2 dated before S1's start, appended after it: S1 had no event by the end of 2020-11-30.
  Decision d = f.accept(create("S2", "BV", 5, "2020-12-01"));
  EXPECT_EQ(std::get<SubscriptionCreated>(d.events.at(0).payload).term.promotion_id, "BV25");
}

TEST(PromotionExclusion, AnExcluderCancelledLaterInTheLogIsTakenAsItStoodBeforeT) {
  Fold f;
  catalog(f);
  promotion(f);
  f.accept(create("S1", "BV", 5, "2020-11-02"));
  f.accept(R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":"2021-01-10"})");
  // On 2020-12-15 S1 was still active (its cancellation is dated later).
  Decision d = f.accept(create("S2", "BV", 5, "2020-12-15"));
  EXPECT_EQ(std::get<SubscriptionCreated>(d.events.at(0).payload).term.promotion_id, "");
}

TEST(PromotionAmounts, HundredPercentGivesZeroNeverNegativeZero) {
  Fold f;
  catalog(f);
  f.accept(R"({"cmd":"define_promotion","request_id":"pm","promotion_id":"FREE",)"
           R"("offer_ids":["BV"],"percent_off":100,"purchase_from":"2020-11-01",)"
           R"("purchase_to":"2020-11-30","applies_to":["new"]})");
  f.accept(create("S1", "BV", 5, "2020-11-10"));
  f.accept(R"({"cmd":"cancel","request_id":"x","subscription_id":"S1","date":"2021-01-10"})");
  auto inv = f.invoice("C1", D("2021-01-20"));
  ASSERT_TRUE(inv);
  for (const auto& l : inv->lines) {
    EXPECT_EQ(format_minor(l.amount_minor, 2), "0.00");
    EXPECT_EQ(l.promotion_id, "FREE");
  }
}

TEST(PromotionAmounts, OnePercentIsTheSmallestDiscount) {
  Fold f;
  catalog(f);
  f.accept(R"({"cmd":"define_promotion","request_id":"pm","promotion_id":"ONE",)"
           R"("offer_ids":["BV"],"percent_off":1,"purchase_from":"2020-11-01",)"
           R"("purchase_to":"2020-11-30","applies_to":["new"]})");
  f.accept(create("S1", "BV", 5, "2020-11-10"));
  auto inv = f.invoice("C1", D("2020-11-20"));
  ASSERT_TRUE(inv);
  // 15.00 x 5 = 75.00, x 99 / 100 = 74.25.
  EXPECT_EQ(amounts(*inv), std::vector<std::string>{"74.25"});
}

TEST(PromotionChoice, HighestPercentThenLowestIdInByteOrder) {
  Fold f;
  catalog(f);
  for (const char* p :
       {R"("b-20","percent_off":20)", R"("a-20","percent_off":20)", R"("Z-10","percent_off":10)"})
    f.accept(std::string(R"({"cmd":"define_promotion","request_id":"pm-)") + p[1] + p[3] +
             R"(","promotion_id":)" + p +
             R"(,"offer_ids":["BV"],"purchase_from":"2020-11-01","purchase_to":"2020-11-30",)"
             R"("applies_to":["new"]})");
  Decision d = f.accept(create("S1", "BV", 5, "2020-11-10"));
  const Term& term = std::get<SubscriptionCreated>(d.events.at(0).payload).term;
  EXPECT_EQ(term.promotion_id, "a-20");
  EXPECT_EQ(term.percent_off, 20);
}

// BILLING_RULES 13: retirement.
std::string retired_code(const char* bought) {
  Fold f;
  catalog(f);
  f.accept(R"({"cmd":"retire_offer","request_id":"r","offer_id":"BV","date":"2021-02-01"})");
  return f.code(create("S1", "BV", 5, bought));
}

TEST(Retirement, TheDayBeforeIsOpenTheDateIsClosed) {
  EXPECT_EQ(retired_code("2021-01-31"), "ACCEPTED");
  EXPECT_EQ(retired_code("2021-02-01"), "OFFER_RETIRED");
  EXPECT_EQ(retired_code("2021-02-02"), "OFFER_RETIRED");
}

// BILLING_RULES 14: the yearly periods of a 36-month term billed annually from 2021-01-15.
TEST(ThirtySixMonthTerm, EachYearIsChargedOnItsFirstDayNotTheDayBefore) {
  Fold f;
  catalog(f);
  f.accept(create("S1", "PO36", 2, "2021-01-15", "annual"));
  auto count_cycles = [&](const char* through) {
    auto inv = f.invoice("C1", D(through));
    int n = 0;
    for (const auto& l : inv->lines) n += l.type == ChargeType::kCycle;
    return n;
  };
  EXPECT_EQ(count_cycles("2022-01-14"), 0);
  EXPECT_EQ(count_cycles("2022-01-15"), 1);
  EXPECT_EQ(count_cycles("2023-01-14"), 1);
  EXPECT_EQ(count_cycles("2023-01-15"), 2);
}

TEST(ThirtySixMonthTerm, CurrentPeriodChangesOnTheYearsFirstDay) {
  Fold f;
  catalog(f);
  f.accept(create("S1", "PO36", 2, "2021-01-15", "annual"));
  const Subscription* s = f.state.subscription("S1");
  EXPECT_EQ(s->current_period_end(D("2022-01-14")), D("2022-01-15"));
  EXPECT_EQ(s->current_period_end(D("2022-01-15")), D("2023-01-15"));
  EXPECT_EQ(s->current_period_end(D("2023-01-14")), D("2023-01-15"));
  EXPECT_EQ(s->current_period_end(D("2023-01-15")), D("2024-01-15"));
}

TEST(ThirtySixMonthTerm, ASeatChangeOnAYearsFirstDayRunsToThatYearsEnd) {
  Fold f;
  catalog(f);
  f.accept(create("S1", "PO36", 2, "2021-01-15", "annual"));
  f.accept(R"({"cmd":"change_seats","request_id":"c","subscription_id":"S1","seats":3,)"
           R"("date":"2022-01-15"})");
  auto inv = f.invoice("C1", D("2022-01-20"));
  ASSERT_TRUE(inv);
  // After that day's CYCLE_FEE (2 x 30 x 12 = 720.00): credit 30 x 12 / 365 x 365 x 2 = -720.00,
  // rebill 3 seats 1080.00.
  ASSERT_EQ(amounts(*inv), (std::vector<std::string>{"720.00", "720.00", "-720.00", "1080.00"}));
  EXPECT_EQ(inv->lines[2].period_end, D("2023-01-15"));
}

TEST(TermMonths, OnlyTwelveOrThirtySix) {
  Fold f;
  catalog(f);
  EXPECT_EQ(f.code(R"({"cmd":"define_offer","request_id":"o","offer_id":"X","name":"x",)"
                   R"("term_months":24})"),
            "INVALID_ARGUMENT");
  EXPECT_EQ(f.code(R"({"cmd":"define_offer","request_id":"o","offer_id":"X","name":"x",)"
                   R"("term_months":36})"),
            "ACCEPTED");
}

}  // namespace
}  // namespace subledger::testing
