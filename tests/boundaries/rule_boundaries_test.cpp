// Boundaries of BILLING_RULES 2, 5 and 6 decided in memory (no database): each limit at max - 1,
// max and max + 1, each date rule on the day before, the day of and the day after. The scenario
// files tests/scenarios/2*-boundary-*.jsonl show the same rules whole through the binary; these
// cases pin what a scenario would make hard to read (periods of single lines, the unrounded amount
// of a reversal, the order of lines). Every expected value is computed by hand from the rules;
// the arithmetic is in the comments.
#include <gtest/gtest.h>

#include "support/fold.h"

namespace subledger::testing {
namespace {

std::string create(const std::string& id, const std::string& offer, int seats,
                   const std::string& date, const std::string& freq = "monthly",
                   const std::string& customer = "C1") {
  return R"({"cmd":"create_subscription","request_id":"r-)" + id + R"(","subscription_id":")" +
         id + R"(","customer_id":")" + customer + R"(","offer_id":")" + offer +
         R"(","seats":)" + std::to_string(seats) + R"(,"billing_frequency":")" + freq +
         R"(","date":")" + date + "\"}";
}
std::string trial(const std::string& id, const std::string& offer, const std::string& date,
                  const std::string& customer = "C1") {
  return R"({"cmd":"start_trial","request_id":"t-)" + id + R"(","subscription_id":")" + id +
         R"(","customer_id":")" + customer + R"(","offer_id":")" + offer + R"(","date":")" +
         date + "\"}";
}
std::string sub_cmd(const std::string& cmd, const std::string& id, const std::string& date,
                    const std::string& extra = "") {
  return R"({"cmd":")" + cmd + R"(","request_id":"q","subscription_id":")" + id +
         R"(","date":")" + date + "\"" + extra + "}";
}
std::string seats(int n) { return R"(,"seats":)" + std::to_string(n); }

// The lines of `sub` charged on `charge_date`, in invoice order.
std::vector<ChargeLine> lines_of(Fold& f, const std::string& sub, const char* charge_date) {
  std::vector<ChargeLine> out;
  auto inv = f.invoice("C1", D("2099-01-01"));
  if (!inv) return out;
  for (const auto& l : inv->lines)
    if (l.subscription_id == sub && l.charge_date == D(charge_date)) out.push_back(l);
  return out;
}

std::string money(const ChargeLine& l) { return format_minor(l.amount_minor, 2); }

class Boundaries : public ::testing::Test {
 protected:
  void SetUp() override {
    f.standard_catalog();  // E3 20.00 no cap; BP 10.00 max_seats 300; C1 of P1 (USD, day 20)
    for (int cap : {24, 25, 26}) {
      std::string id = "CAP" + std::to_string(cap);
      f.given(OfferDefined{id, id, Segment::kCommercial, true, {}, static_cast<uint32_t>(cap), 0});
      f.given(PricePublished{id, "USD", 1'000'000, D("2016-01-01")}, D("2016-01-01"));
    }
    f.given(OfferDefined{"GOV", "Government", Segment::kGovernment, true, {}, 0, 0});
    f.given(OfferDefined{"NPO", "Nonprofit", Segment::kNonprofit, true, {}, 0, 0});
    f.given(OfferDefined{"THREE", "Three per customer", Segment::kCommercial, true, {}, 0, 3});
    f.given(PricePublished{"THREE", "USD", 1'000'000, D("2016-01-01")}, D("2016-01-01"));
  }
  Fold f;
};

TEST_F(Boundaries, MaxSeatsAtMaxMinusOneMaxAndMaxPlusOne) {
  EXPECT_EQ(f.code(create("S0", "BP", 0, "2017-01-10")), "INVALID_SEATS");
  EXPECT_EQ(f.code(create("S0", "BP", 1, "2017-01-10")), "ACCEPTED");
  EXPECT_EQ(f.code(create("S0", "BP", 299, "2017-01-10")), "ACCEPTED");
  EXPECT_EQ(f.code(create("S0", "BP", 300, "2017-01-10")), "ACCEPTED");
  EXPECT_EQ(f.code(create("S0", "BP", 301, "2017-01-10")), "SEATS_ABOVE_OFFER_MAX");
  EXPECT_EQ(f.code(create("S0", "E3", 100000, "2017-01-10")), "ACCEPTED") << "0 = no cap";
  f.accept(create("S1", "BP", 10, "2017-01-10"));
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(0))), "INVALID_SEATS");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(1))), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(9))), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(10))), "INVALID_SEATS")
      << "the same number is not a change";
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(11))), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(299))), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(300))), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "S1", "2017-01-11", seats(301))),
            "SEATS_ABOVE_OFFER_MAX");
}

TEST_F(Boundaries, MaxPerCustomerAtMaxMinusOneMaxAndMaxPlusOne) {
  // THREE allows 3: the first three (trials and paid alike) are accepted, the fourth is not.
  f.accept(create("A", "THREE", 1, "2017-01-10"));
  f.accept(create("B", "THREE", 1, "2017-01-10"));
  EXPECT_EQ(f.code(create("C", "THREE", 1, "2017-01-10")), "ACCEPTED") << "2 live, max 3";
  f.accept(create("C", "THREE", 1, "2017-01-10"));
  EXPECT_EQ(f.code(create("D", "THREE", 1, "2017-01-10")), "OFFER_LIMIT_REACHED") << "3 live";
  EXPECT_EQ(f.code(trial("T", "THREE", "2017-01-10")), "OFFER_ALREADY_OWNED");
  f.accept(sub_cmd("cancel", "C", "2017-01-11"));
  EXPECT_EQ(f.code(create("D", "THREE", 1, "2017-01-11")), "ACCEPTED") << "2 live again";
}

TEST_F(Boundaries, TrialSeatsAreTwentyFiveWhateverTheOfferCap) {
  // BILLING_RULES 5 lists what start trial needs and max_seats is not among them: "25 seats"
  // whatever the cap; conversion keeps them ("seats stay 25"). Pinned as the text reads.
  for (int cap : {24, 25, 26}) {
    std::string offer = "CAP" + std::to_string(cap);
    f.accept(trial("T" + offer, offer, "2018-09-01"));
    EXPECT_EQ(f.state.subscription("T" + offer)->seats, 25u) << offer;
    f.accept(sub_cmd("convert_trial", "T" + offer, "2018-09-10", R"(,"billing_frequency":"monthly")"));
    EXPECT_EQ(f.state.subscription("T" + offer)->seats, 25u) << offer;
  }
  // A converted trial's seats change like any subscription's, within the cap.
  EXPECT_EQ(f.code(sub_cmd("change_seats", "TCAP25", "2018-09-11", seats(25))), "INVALID_SEATS");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "TCAP25", "2018-09-11", seats(24))), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("change_seats", "TCAP25", "2018-09-11", seats(26))),
            "SEATS_ABOVE_OFFER_MAX");
}

TEST_F(Boundaries, RegistrationNumberCharactersAtTheEdgesOfEachRange) {
  // BILLING_RULES 9: letters and digits only. RU takes 9, 10 or 12 characters: each character
  // just outside a range ('/' ':' '@' '[' '`' '{') at a valid length is rejected, each range's
  // first and last character accepted.
  auto customer = [](const std::string& reg) {
    return R"({"cmd":"create_customer","request_id":"a","customer_id":"CX","partner_id":"P1","country":"RU","currency":"USD","organization_registration_number":")" +
           reg + R"(","phone":"+7"})";
  };
  for (const char* bad : {"123456789/", "123456789:", "123456789@", "123456789[", "123456789`",
                          "123456789{", "12345678 9"})
    EXPECT_EQ(f.code(customer(bad)), "INVALID_REGISTRATION_NUMBER") << bad;
  for (const char* good : {"1234567890", "0000000009", "AAAAAAAAAZ", "aaaaaaaaaz", "Za09zA90aZ"})
    EXPECT_EQ(f.code(customer(good)), "ACCEPTED") << good;
  EXPECT_EQ(f.code(customer("12345678")), "INVALID_REGISTRATION_NUMBER") << "8: too short";
  EXPECT_EQ(f.code(customer("123456789")), "ACCEPTED") << "9";
  EXPECT_EQ(f.code(customer("12345678901")), "INVALID_REGISTRATION_NUMBER") << "11";
  EXPECT_EQ(f.code(customer("123456789012")), "ACCEPTED") << "12";
  EXPECT_EQ(f.code(customer("1234567890123")), "INVALID_REGISTRATION_NUMBER") << "13";
}

TEST_F(Boundaries, TrialEligibilityBySegment) {
  // BILLING_RULES 13: a segment offer needs the customer's segment first (C1 is commercial).
  EXPECT_EQ(f.code(trial("G", "GOV", "2018-09-01")), "SEGMENT_NOT_ELIGIBLE");
  EXPECT_EQ(f.code(trial("N", "NPO", "2018-09-01")), "SEGMENT_NOT_ELIGIBLE");
  f.given(CustomerCreated{"GOV1", "P1", "US", "USD", "", "", "", "", Segment::kGovernment});
  f.given(CustomerCreated{"NPO1", "P1", "US", "USD", "", "", "", "", Segment::kNonprofit});
  EXPECT_EQ(f.code(trial("G", "GOV", "2018-09-01", "GOV1")), "TRIAL_NOT_ELIGIBLE");
  EXPECT_EQ(f.code(trial("N", "NPO", "2018-09-01", "NPO1")), "ACCEPTED");
  EXPECT_EQ(f.code(trial("E", "E3", "2018-09-01")), "ACCEPTED");
}

TEST_F(Boundaries, TrialEndsOnTrialEndDay) {
  // Started 2018-09-01: trial_end = 2018-10-01. Converting needs date < trial_end.
  f.accept(trial("T1", "E3", "2018-09-01"));
  EXPECT_EQ(f.state.subscription("T1")->trial_end, D("2018-10-01"));
  EXPECT_EQ(f.code(sub_cmd("convert_trial", "T1", "2018-09-30", R"(,"billing_frequency":"annual")")),
            "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("convert_trial", "T1", "2018-10-01", R"(,"billing_frequency":"annual")")),
            "TRIAL_EXPIRED");
  EXPECT_EQ(f.code(sub_cmd("cancel", "T1", "2018-09-30")), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("cancel", "T1", "2018-10-01")), "INVALID_STATE") << "expired";
  // Its status as of each day, and the expiry time brings exactly on trial_end.
  const Subscription& t = *f.state.subscription("T1");
  EXPECT_EQ(t.status_as_of(D("2018-09-30")), Status::kTrial);
  EXPECT_EQ(t.status_as_of(D("2018-10-01")), Status::kExpired);
  EXPECT_TRUE(due_transitions(t, D("2018-09-30"), f.state.catalog()).empty());
  auto due = due_transitions(t, D("2018-10-01"), f.state.catalog());
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].date, D("2018-10-01"));
  EXPECT_TRUE(due[0].by_system);
}

TEST_F(Boundaries, TermEndsOnTermEndDay) {
  f.accept(create("S1", "E3", 10, "2017-01-15", "annual"));
  f.accept(create("S2", "E3", 10, "2017-01-15", "annual"));
  f.accept(sub_cmd("set_auto_renew", "S2", "2017-02-01", R"(,"enabled":false)"));
  const Subscription& renewing = *f.state.subscription("S1");
  const Subscription& ending = *f.state.subscription("S2");
  EXPECT_EQ(renewing.term.end, D("2018-01-15"));
  EXPECT_EQ(ending.status_as_of(D("2018-01-14")), Status::kActive);
  EXPECT_EQ(ending.status_as_of(D("2018-01-15")), Status::kExpired);
  EXPECT_EQ(renewing.status_as_of(D("2018-01-15")), Status::kActive);
  EXPECT_TRUE(due_transitions(renewing, D("2018-01-14"), f.state.catalog()).empty());
  auto due = due_transitions(renewing, D("2018-01-15"), f.state.catalog());
  ASSERT_EQ(due.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<SubscriptionRenewed>(due[0].payload));
  EXPECT_EQ(std::get<SubscriptionRenewed>(due[0].payload).term.start, D("2018-01-15"));
  EXPECT_EQ(std::get<SubscriptionRenewed>(due[0].payload).term.end, D("2019-01-15"));
  EXPECT_TRUE(due[0].by_system) << "what time brings is appended by the system";
  auto ends = due_transitions(ending, D("2018-01-15"), f.state.catalog());
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<SubscriptionExpired>(ends[0].payload));
  EXPECT_TRUE(ends[0].by_system);
  EXPECT_EQ(ends[0].date, D("2018-01-15"));
  // Two terms at once: both renewals come out, each on its own term end.
  auto two = due_transitions(renewing, D("2019-01-15"), f.state.catalog());
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].date, D("2019-01-15"));
  // set_auto_renew needs active: on the expiry day the non-renewing term is expired.
  EXPECT_EQ(f.code(sub_cmd("set_auto_renew", "S2", "2018-01-14", R"(,"enabled":true)")), "ACCEPTED");
  EXPECT_EQ(f.code(sub_cmd("set_auto_renew", "S2", "2018-01-15", R"(,"enabled":true)")),
            "INVALID_STATE");
}

TEST_F(Boundaries, AnchorOnThe28thAnd29th) {
  EXPECT_EQ(anchor_for(D("2017-03-27")), D("2017-03-27"));
  EXPECT_EQ(anchor_for(D("2017-03-28")), D("2017-03-28"));
  EXPECT_EQ(anchor_for(D("2017-03-29")), D("2017-04-01"));
  EXPECT_EQ(anchor_for(D("2017-03-31")), D("2017-04-01"));
  EXPECT_EQ(anchor_for(D("2017-12-30")), D("2018-01-01"));
  EXPECT_EQ(anchor_for(D("2016-02-29")), D("2016-03-01"));
  EXPECT_EQ(anchor_for(D("2017-02-28")), D("2017-02-28"));
  EXPECT_EQ(anchor_for(D("2017-03-01")), D("2017-03-01"));
  Term t = make_term(D("2017-03-29"), 1);
  EXPECT_EQ(t.start, D("2017-03-29"));
  EXPECT_EQ(t.anchor, D("2017-04-01"));
  EXPECT_EQ(t.end, D("2018-04-01"));
  Term u = make_term(D("2017-03-28"), 1);
  EXPECT_EQ(u.end, D("2018-03-28"));
}

TEST_F(Boundaries, SeatChangePeriodEndsAtTheCurrentPeriodsEnd) {
  // Monthly from 2017-03-10: periods [03-10, 04-10), [04-10, 05-10), ...
  f.accept(create("S1", "BP", 10, "2017-03-10"));
  f.accept(sub_cmd("change_seats", "S1", "2017-04-09", seats(11)));  // last day of period 0
  auto last_day = lines_of(f, "S1", "2017-04-09");
  ASSERT_EQ(last_day.size(), 2u);
  EXPECT_EQ(last_day[0].period_end, D("2017-04-10"));
  // 10.00 × 12 / 365 × 1 × 10 = 3.2876... -> -3.29 credit first; × 11 = 3.6164... -> 3.62.
  EXPECT_EQ(money(last_day[0]), "-3.29");
  EXPECT_EQ(money(last_day[1]), "3.62");
  f.accept(sub_cmd("change_seats", "S1", "2017-04-10", seats(12)));  // first day of period 1
  auto first_day = lines_of(f, "S1", "2017-04-10");
  // Time first: the cycle fee of [04-10, 05-10) at 11 seats (110.00), then the change's credit
  // and rebill over the whole 30-day period: 10 × 12 / 365 × 30 × 11 = 108.49; × 12 = 118.36.
  ASSERT_EQ(first_day.size(), 3u);
  EXPECT_EQ(first_day[0].type, ChargeType::kCycle);
  EXPECT_EQ(money(first_day[0]), "110.00");
  EXPECT_EQ(first_day[1].period_start, D("2017-04-10"));
  EXPECT_EQ(first_day[1].period_end, D("2017-05-10"));
  EXPECT_EQ(money(first_day[1]), "-108.49");
  EXPECT_EQ(money(first_day[2]), "118.36");
  // The day after: [04-11, 05-10) = 29 days; 10 × 12 / 365 × 29 × 12 = 114.41; × 13 = 123.95.
  f.accept(sub_cmd("change_seats", "S1", "2017-04-11", seats(13)));
  auto day_after = lines_of(f, "S1", "2017-04-11");
  ASSERT_EQ(day_after.size(), 2u);
  EXPECT_EQ(day_after[0].period_end, D("2017-05-10"));
  EXPECT_EQ(money(day_after[0]), "-114.41");
  EXPECT_EQ(money(day_after[1]), "123.95");
}

TEST_F(Boundaries, TheStubBelongsToTheFirstPeriod) {
  // Monthly from 2017-01-30: anchor 02-01; the first paid period is [01-30, 03-01).
  f.accept(create("S1", "BP", 10, "2017-01-30"));
  f.accept(sub_cmd("change_seats", "S1", "2017-01-31", seats(5)));
  auto lines = lines_of(f, "S1", "2017-01-31");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].period_end, D("2017-03-01"));  // 29 days
  // 10 × 12 / 365 × 29 × 10 = 95.342... -> -95.34; × 5 = 47.671... -> 47.67.
  EXPECT_EQ(money(lines[0]), "-95.34");
  EXPECT_EQ(money(lines[1]), "47.67");
  // On the anchor itself the period is [02-01, 03-01) (28 days): × 5 -> 46.03, × 6 -> 55.23.
  f.accept(sub_cmd("change_seats", "S1", "2017-02-01", seats(6)));
  auto on_anchor = lines_of(f, "S1", "2017-02-01");
  ASSERT_EQ(on_anchor.size(), 2u);
  EXPECT_EQ(on_anchor[0].period_start, D("2017-02-01"));
  EXPECT_EQ(on_anchor[0].period_end, D("2017-03-01"));
  EXPECT_EQ(money(on_anchor[0]), "-46.03");
  EXPECT_EQ(money(on_anchor[1]), "55.23");
}

TEST_F(Boundaries, LastMonthlyPeriodEndsAtTheTermEnd) {
  // Monthly from 2017-03-10, term end 2018-03-10: the 12th period is [2018-02-10, 2018-03-10).
  f.accept(create("S1", "BP", 10, "2017-03-10"));
  f.accept(sub_cmd("set_auto_renew", "S1", "2017-03-11", R"(,"enabled":false)"));
  f.accept(sub_cmd("change_seats", "S1", "2018-03-09", seats(11)));
  auto lines = lines_of(f, "S1", "2018-03-09");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].period_end, D("2018-03-10"));
  auto inv = f.invoice("C1", D("2099-01-01"));
  ASSERT_TRUE(inv);
  int cycles = 0;
  for (const auto& l : inv->lines)
    if (l.type == ChargeType::kCycle) ++cycles;
  EXPECT_EQ(cycles, 11) << "periods 1..11; period 0 is the purchase";
}

TEST_F(Boundaries, FullCreditCountsFromThePurchaseDateOfAMonthEndPurchase) {
  // Annual from 2017-01-30 (anchor 02-01): term_start is the purchase date. 2017-03-01 is day 30
  // (100%), 2017-03-02 day 31 (pro rata to the term end 2018-02-01: 336 days;
  // 20 × 12 / 365 × 336 × 10 = 2209.315... -> -2209.32).
  f.accept(create("S30", "E3", 10, "2017-01-30", "annual"));
  f.accept(create("S31", "E3", 10, "2017-01-30", "annual"));
  f.accept(sub_cmd("cancel", "S30", "2017-03-01"));
  f.accept(sub_cmd("cancel", "S31", "2017-03-02"));
  auto full = lines_of(f, "S30", "2017-03-01");
  ASSERT_EQ(full.size(), 1u);
  // The stub 20 × 12 / 365 × 2 × 10 = 13.15 and the term 2400.00: -2413.15.
  EXPECT_EQ(money(full[0]), "-2413.15");
  EXPECT_EQ(full[0].period_start, D("2017-01-30"));
  EXPECT_EQ(full[0].period_end, D("2018-02-01"));
  auto prorated = lines_of(f, "S31", "2017-03-02");
  ASSERT_EQ(prorated.size(), 1u);
  EXPECT_EQ(money(prorated[0]), "-2209.32");
  EXPECT_EQ(prorated[0].period_start, D("2017-03-02"));
}

TEST_F(Boundaries, FullCreditReversesTheNetOfTheTermIncludingEarlierCredits) {
  // Annual 10 seats from 2017-01-15 (2400.00); seats -> 15 on 2017-02-01 (348 days to the term
  // end: credit 20 × 12 / 365 × 348 × 10 = 2288.219... -> -2288.22, rebill × 15 = 3432.328... ->
  // 3432.33); cancelled on day 30 (2017-02-14): -(2400.00 - 2288.22 + 3432.33) = -3544.11, over
  // [2017-01-15, 2018-01-15), at the 15 seats of the cancellation.
  f.accept(create("S1", "E3", 10, "2017-01-15", "annual"));
  f.accept(sub_cmd("change_seats", "S1", "2017-02-01", seats(15)));
  f.accept(sub_cmd("cancel", "S1", "2017-02-14"));
  auto cancel = lines_of(f, "S1", "2017-02-14");
  ASSERT_EQ(cancel.size(), 1u);
  EXPECT_EQ(cancel[0].type, ChargeType::kCancel);
  EXPECT_EQ(money(cancel[0]), "-3544.11");
  EXPECT_EQ(cancel[0].seats, 15u);
  EXPECT_EQ(cancel[0].period_start, D("2017-01-15"));
  EXPECT_EQ(cancel[0].period_end, D("2018-01-15"));
  EXPECT_EQ(cancel[0].unit_price_micros, 20'000'000);
  // explain's unrounded amount of a reversal: the same sign as the line, exact.
  EXPECT_EQ(format_exact(exact_amount(cancel[0]), 2, 10), "-3544.1100000000");
  EXPECT_EQ(cancel[0].reversed_net_minor, 354411);
}

TEST_F(Boundaries, ARenewedTermGetsItsOwnThirtyDays) {
  // Annual from 2017-01-15 renews on 2018-01-15 (2400.00). Cancelled 2018-02-14 (day 30 of the
  // new term): -2400.00, the renewal only; 2018-02-15 (day 31): pro rata [02-15, 2019-01-15) =
  // 334 days, 20 × 12 / 365 × 334 × 10 = 2196.164... -> -2196.16.
  f.accept(create("S30", "E3", 10, "2017-01-15", "annual"));
  f.accept(create("S31", "E3", 10, "2017-01-15", "annual"));
  f.accept(sub_cmd("cancel", "S30", "2018-02-14"));
  f.accept(sub_cmd("cancel", "S31", "2018-02-15"));
  auto full = lines_of(f, "S30", "2018-02-14");
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(money(full[0]), "-2400.00");
  EXPECT_EQ(full[0].period_start, D("2018-01-15"));
  auto prorated = lines_of(f, "S31", "2018-02-15");
  ASSERT_EQ(prorated.size(), 1u);
  EXPECT_EQ(money(prorated[0]), "-2196.16");
}

TEST_F(Boundaries, ParentCancelledOnTheDayOfItsAddonsLastEvent) {
  // BILLING_RULES 7: the add-on is cancelled with its parent on the same date. Its own last event
  // dated that very day does not stand in the way; one dated the day after does.
  f.given(OfferDefined{"VOICE", "Voice", Segment::kCommercial, false, {"E3"}, 0, 0});
  f.given(PricePublished{"VOICE", "USD", 12'000'000, D("2016-01-01")}, D("2016-01-01"));
  f.accept(create("P", "E3", 5, "2019-03-01", "annual"));
  f.accept(R"({"cmd":"create_subscription","request_id":"a","subscription_id":"A","customer_id":"C1","offer_id":"VOICE","seats":5,"date":"2019-03-10","parent_subscription_id":"P"})");
  EXPECT_EQ(f.code(sub_cmd("cancel", "P", "2019-03-09")), "DATE_BEFORE_LAST_EVENT");
  f.accept(sub_cmd("cancel", "P", "2019-03-10"));
  EXPECT_EQ(f.state.subscription("A")->status, Status::kCancelled);
  EXPECT_EQ(f.state.subscription("A")->cancelled_on, D("2019-03-10"));
  // Day 0 of the add-on's term: 100% of its 12.00 × 12 × 5 = 720.00.
  auto lines = lines_of(f, "A", "2019-03-10");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(money(lines[1]), "-720.00");
}

TEST_F(Boundaries, AnAddonsParentMustBeTheCustomersOwnOfAnAllowedOffer) {
  f.given(OfferDefined{"VOICE", "Voice", Segment::kCommercial, false, {"E3"}, 0, 0});
  f.given(PricePublished{"VOICE", "USD", 12'000'000, D("2016-01-01")}, D("2016-01-01"));
  f.given(CustomerCreated{"C2", "P1", "US", "USD", "Other", "", "", ""});
  f.accept(create("P", "E3", 5, "2019-03-01", "annual"));
  f.accept(create("Q", "BP", 5, "2019-03-01", "annual"));
  f.accept(create("O", "E3", 5, "2019-03-01", "annual", "C2"));
  auto addon = [](const std::string& parent) {
    return R"({"cmd":"create_subscription","request_id":"a","subscription_id":"A","customer_id":"C1","offer_id":"VOICE","seats":5,"date":"2019-03-10","parent_subscription_id":")" +
           parent + "\"}";
  };
  EXPECT_EQ(f.code(addon("NOPE")), "INVALID_ARGUMENT") << "unknown parent";
  EXPECT_EQ(f.code(addon("O")), "INVALID_ARGUMENT") << "another customer's subscription";
  EXPECT_EQ(f.code(addon("Q")), "INVALID_ARGUMENT") << "an offer not in addon_of";
  EXPECT_EQ(f.code(addon("P")), "ACCEPTED");
}

TEST_F(Boundaries, OnlyAnExpiredPaidTermCanBeRenewed) {
  f.accept(create("S", "E3", 1, "2017-01-15", "annual"));
  EXPECT_EQ(f.code(sub_cmd("renew", "S", "2017-02-01")), "INVALID_STATE") << "active";
  f.accept(sub_cmd("cancel", "S", "2017-02-01"));
  EXPECT_EQ(f.code(sub_cmd("renew", "S", "2017-02-02")), "INVALID_STATE") << "cancelled";
  f.accept(trial("T", "E3", "2017-03-01"));
  EXPECT_EQ(f.code(sub_cmd("renew", "T", "2017-03-02")), "INVALID_STATE") << "a trial";
  EXPECT_EQ(f.code(sub_cmd("renew", "T", "2017-04-01")), "INVALID_STATE") << "an expired trial";
}

TEST_F(Boundaries, CommandsAreAppendedByTheirActorAndTimeBySystem) {
  auto last_by_system = [](const Decision& d) {
    return !d.events.empty() && d.events.back().by_system;
  };
  EXPECT_FALSE(last_by_system(f.accept(create("S", "E3", 10, "2017-01-15", "annual"))));
  EXPECT_FALSE(last_by_system(f.accept(sub_cmd("change_seats", "S", "2017-02-01", seats(11)))));
  EXPECT_FALSE(last_by_system(
      f.accept(sub_cmd("set_auto_renew", "S", "2017-02-02", R"(,"enabled":false)"))));
  EXPECT_FALSE(last_by_system(f.accept(sub_cmd("cancel", "S", "2017-03-01"))));
  EXPECT_FALSE(last_by_system(f.accept(sub_cmd("reactivate", "S", "2017-03-02"))));
  // The expiry on 2018-01-15 is appended by the system just before the renewal.
  Decision renewed = f.accept(sub_cmd("renew", "S", "2018-02-01"));
  ASSERT_EQ(renewed.events.size(), 2u);
  EXPECT_TRUE(renewed.events[0].by_system);
  EXPECT_EQ(renewed.events[0].date, D("2018-01-15"));
  EXPECT_FALSE(renewed.events[1].by_system);
  EXPECT_FALSE(last_by_system(f.accept(trial("T", "BP", "2018-09-01"))));
  EXPECT_FALSE(last_by_system(
      f.accept(sub_cmd("convert_trial", "T", "2018-09-02", R"(,"billing_frequency":"monthly")"))));
}

TEST_F(Boundaries, SealingAnInvoiceAgainGivesTheSameTotal) {
  f.accept(create("S", "E3", 10, "2017-01-15", "annual"));
  auto inv = f.invoice("C1", D("2017-01-20"));
  ASSERT_TRUE(inv);
  Invoice copy = *inv;
  seal_invoice(copy);
  EXPECT_EQ(copy.total_minor, 240000);
  EXPECT_EQ(copy.lines_sha256, inv->lines_sha256);
  EXPECT_EQ(invoice_json(copy), invoice_json(*inv));
}

TEST_F(Boundaries, AStreamsVersionsStartAtOneAndCountItsEvents) {
  // A stream with no event is at version 0; each event takes the next version, the first 1.
  EXPECT_EQ(f.state.stream_version(Stream{StreamKind::kSubscription, "S"}), 0u);
  EXPECT_EQ(f.state.stream_version(Stream{StreamKind::kCustomer, "NOPE"}), 0u);
  f.accept(create("S", "E3", 10, "2017-01-15", "annual"));
  EXPECT_EQ(f.state.stream_version(Stream{StreamKind::kSubscription, "S"}), 1u);
  EXPECT_EQ(f.state.subscription("S")->version, 1u);
  f.accept(sub_cmd("change_seats", "S", "2017-02-01", seats(11)));
  EXPECT_EQ(f.state.stream_version(Stream{StreamKind::kSubscription, "S"}), 2u);
  // A renewal appended by time before the command takes its own version.
  f.accept(sub_cmd("change_seats", "S", "2018-02-01", seats(12)));
  EXPECT_EQ(f.state.subscription("S")->version, 4u);
}

TEST_F(Boundaries, CancelledTrialHasNothingToCreditAndCannotBeReactivated) {
  f.accept(trial("T1", "E3", "2018-09-01"));
  f.accept(sub_cmd("cancel", "T1", "2018-09-02"));
  EXPECT_FALSE(f.invoice("C1", D("2099-01-01")));
  EXPECT_EQ(f.code(sub_cmd("reactivate", "T1", "2018-09-03")), "INVALID_STATE");
}

TEST_F(Boundaries, InvoiceLinesStandInTheDocumentedOrder) {
  // Charge date first, then event sequence, then the order the event produced them. S1's cycle
  // fee of 04-10 carries its purchase's sequence (the lowest), S0 sorts first by id: neither may
  // lead. A credit stands before its rebill, a stub before its first period.
  f.accept(create("S1", "BP", 10, "2017-03-10"));
  f.accept(create("S2", "BP", 1, "2017-03-30"));
  f.accept(sub_cmd("change_seats", "S1", "2017-04-05", seats(4)));
  f.accept(create("S0", "BP", 2, "2017-04-05"));
  auto inv = f.invoice("C1", D("2017-04-20"));
  ASSERT_TRUE(inv);
  std::vector<std::string> got;
  for (const auto& l : inv->lines)
    got.push_back(l.subscription_id + " " + std::string(to_string(l.type)) + " " +
                  l.period_start.iso() + " " + format_minor(l.amount_minor, 2));
  // 10 × 12 / 365 × 2 = 0.657 -> 0.66; credit 10 × 12 / 365 × 5 × 10 = 16.438 -> -16.44,
  // rebill × 4 = 6.575 -> 6.58.
  std::vector<std::string> want = {
      "S1 PRORATE_FEES_WHEN_PURCHASE 2017-03-10 100.00",
      "S2 PRORATE_FEES_WHEN_PURCHASE 2017-03-30 0.66",
      "S2 PRORATE_FEES_WHEN_PURCHASE 2017-04-01 10.00",
      "S1 CYCLE_INSTANCE_PRORATE 2017-04-05 -16.44",
      "S1 CYCLE_INSTANCE_PRORATE 2017-04-05 6.58",
      "S0 PRORATE_FEES_WHEN_PURCHASE 2017-04-05 20.00",
      "S1 CYCLE_FEE 2017-04-10 40.00",
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(format_minor(inv->total_minor, 2), "160.80");
  EXPECT_EQ(inv->line_count, 7u);
  EXPECT_EQ(inv->invoice_id, "C1-20170420");
  // invoice_order itself: each key decides before the next one.
  ChargeLine a, b;
  a.charge_date = D("2017-04-05");
  b.charge_date = D("2017-04-06");
  a.event_seq = 9;
  b.event_seq = 1;
  EXPECT_TRUE(invoice_order(a, b));
  EXPECT_FALSE(invoice_order(b, a));
  b.charge_date = a.charge_date;
  EXPECT_TRUE(invoice_order(b, a));
  b.event_seq = 9;
  a.order_in_event = 0;
  b.order_in_event = 1;
  a.subscription_id = "Z";
  b.subscription_id = "A";
  EXPECT_TRUE(invoice_order(a, b));
  EXPECT_FALSE(invoice_order(b, a));
  b.order_in_event = 0;
  EXPECT_TRUE(invoice_order(b, a));
  EXPECT_FALSE(invoice_order(a, a));
}

}  // namespace
}  // namespace subledger::testing
