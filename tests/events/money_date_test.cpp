#include <gtest/gtest.h>

#include "events/date.h"
#include "events/money.h"

namespace subledger {
namespace {

TEST(Money, RoundsHalfAwayFromZeroOnce) {
  EXPECT_EQ(round_half_away(5, 10), 1);
  EXPECT_EQ(round_half_away(-5, 10), -1);
  EXPECT_EQ(round_half_away(4, 10), 0);
  EXPECT_EQ(round_half_away(-14, 10), -1);
  // 12.345 × 3 = 37.035 -> 37.04 (scenario 13)
  EXPECT_EQ(rounded(whole_months_amount(12'345'000, 1, 3, 2)), 3704);
}

TEST(Money, ProrationIsByDaysOver365) {
  // BILLING_RULES 11.3: 20 × 12 / 365 × 198 × 10 = 1301.917… -> 1301.92
  ExactAmount a = prorated_days_amount(20'000'000, 198, 10, 2);
  EXPECT_EQ(rounded(a), 130192);
  EXPECT_EQ(format_exact(a, 2, 6), "1301.917808");
}

TEST(Money, ZeroAndThreeDigitCurrencies) {
  EXPECT_EQ(minor_digits("JPY"), 0);
  EXPECT_EQ(minor_digits("KWD"), 3);
  EXPECT_EQ(minor_digits("USD"), 2);
  EXPECT_FALSE(find_currency("XXY"));
  EXPECT_EQ(rounded(prorated_days_amount(1000'000'000, 10, 1, 0)), 329);  // 328.767 JPY
  EXPECT_EQ(format_minor(329, 0), "329");
  EXPECT_EQ(format_minor(-1234, 3), "-1.234");
}

// find_currency is a binary search over the ISO 4217 table: the ends of the table, each
// exponent, and what is not a code (before the first, after the last, between two, a prefix, a
// longer string, lower case, empty) are told apart.
TEST(Money, CurrencyLookupFindsExactlyTheTablesCodes) {
  const std::pair<const char*, int> known[] = {{"AED", 2}, {"ZWL", 2}, {"JPY", 0}, {"BHD", 3},
                                               {"CLF", 4}, {"UYW", 4}, {"USD", 2}, {"EUR", 2}};
  for (const auto& [code, digits] : known) {
    ASSERT_TRUE(find_currency(code)) << code;
    EXPECT_EQ(find_currency(code)->code, code);
    EXPECT_EQ(find_currency(code)->minor_digits, digits) << code;
  }
  for (const char* not_a_code : {"AAA", "ZZZ", "ZWK", "US", "USDX", "usd", ""})
    EXPECT_FALSE(find_currency(not_a_code)) << not_a_code;
  EXPECT_FALSE(find_currency(std::string_view("USD\0", 4)));
}

TEST(Money, PricesParseExactlyAndPrintUnrounded) {
  EXPECT_EQ(*parse_price_micros("20.00"), 20'000'000);
  EXPECT_EQ(*parse_price_micros("7.800000"), 7'800'000);
  EXPECT_EQ(*parse_price_micros("35.999"), 35'999'000);
  EXPECT_FALSE(parse_price_micros("1.1234567").ok());
  EXPECT_FALSE(parse_price_micros("-1").ok());
  EXPECT_FALSE(parse_price_micros("1e3").ok());
  EXPECT_FALSE(parse_price_micros("12.").ok());
  EXPECT_EQ(format_price(35'999'000), "35.999");
  EXPECT_EQ(format_price(20'000'000), "20.00");
  EXPECT_EQ(format_price(12'345'678), "12.345678");
  EXPECT_EQ(parse_minor("-1301.92", 2), -130192);
}

TEST(Date, ParsesOnlyRealDays) {
  EXPECT_TRUE(Date::parse("2020-02-29"));
  EXPECT_FALSE(Date::parse("2019-02-29"));
  EXPECT_FALSE(Date::parse("2019-13-01"));
  EXPECT_FALSE(Date::parse("2019-1-01"));
  EXPECT_EQ(Date::parse("2017-01-30")->iso(), "2017-01-30");
  EXPECT_EQ(*Date::parse("2018-01-15") - *Date::parse("2017-07-01"), 198);
  EXPECT_EQ(Date::parse("2017-01-15")->plus_months(12).iso(), "2018-01-15");
  EXPECT_EQ(whole_months_between(*Date::parse("2017-03-10"), *Date::parse("2017-05-09")), 1);
  EXPECT_EQ(whole_months_between(*Date::parse("2017-03-10"), *Date::parse("2017-05-10")), 2);
}

}  // namespace
}  // namespace subledger
