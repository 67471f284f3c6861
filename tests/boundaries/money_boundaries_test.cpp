// Boundaries of the money arithmetic and its text forms (BILLING_RULES 3, INTERFACE.md): every
// minor-unit digit count (0, 2, 3), rounding exactly on the half, the limits of a price's digits,
// and the formatting of negative amounts. Expected values are computed by hand from the rules
// (shown in the comments), not copied from the program's output.
#include <gtest/gtest.h>

#include <optional>
#include <type_traits>

#include "events/money.h"
#include "projections/invoice.h"

namespace subledger::testing {
namespace {

// Rounds p (micros) × months × seats to the currency's minor unit.
std::string whole(int64_t price_micros, int months, int seats, int digits) {
  return format_minor(rounded(whole_months_amount(price_micros, months, seats, digits)), digits);
}
std::string days(int64_t price_micros, int d, int seats, int digits) {
  return format_minor(rounded(prorated_days_amount(price_micros, d, seats, digits)), digits);
}

TEST(MoneyBoundaries, MinorDigitsOfTheThreeKinds) {
  EXPECT_EQ(minor_digits("JPY"), 0);
  EXPECT_EQ(minor_digits("KRW"), 0);
  EXPECT_EQ(minor_digits("USD"), 2);
  EXPECT_EQ(minor_digits("EUR"), 2);
  EXPECT_EQ(minor_digits("BHD"), 3);
  EXPECT_EQ(minor_digits("KWD"), 3);
  EXPECT_EQ(minor_digits("OMR"), 3);
  EXPECT_EQ(minor_digits("JOD"), 3);
  EXPECT_EQ(minor_digits("TND"), 3);
  EXPECT_FALSE(find_currency("XXX").has_value());
  EXPECT_FALSE(find_currency("").has_value());
}

TEST(MoneyBoundaries, HalfAMinorUnitRoundsAwayFromZeroAtEveryDigitCount) {
  // 0.5 of the minor unit: JPY 0.5 -> 1; USD 0.005 -> 0.01; BHD 0.0005 -> 0.001.
  EXPECT_EQ(whole(500'000, 1, 1, 0), "1");
  EXPECT_EQ(whole(5'000, 1, 1, 2), "0.01");
  EXPECT_EQ(whole(500, 1, 1, 3), "0.001");
  // Just under the half: JPY 0.499999 -> 0; USD 0.004999 -> 0.00; BHD 0.000499 -> 0.000.
  EXPECT_EQ(whole(499'999, 1, 1, 0), "0");
  EXPECT_EQ(whole(4'999, 1, 1, 2), "0.00");
  EXPECT_EQ(whole(499, 1, 1, 3), "0.000");
  // Negative halves go away from zero too (a credit is the negated charge).
  EXPECT_EQ(round_half_away(-5, 10), -1);
  EXPECT_EQ(round_half_away(-4, 10), 0);
  EXPECT_EQ(round_half_away(-15, 10), -2);
  EXPECT_EQ(round_half_away(15, 10), 2);
  EXPECT_EQ(round_half_away(14, 10), 1);
  EXPECT_EQ(round_half_away(16, 10), 2);
  EXPECT_EQ(round_half_away(0, 7), 0);
}

TEST(MoneyBoundaries, ProrationByDaysAtEveryDigitCount) {
  // 20.00 × 12 / 365 × 334 days × 10 seats = 2196.164383... -> 2196.16 (worked example 3's kind).
  EXPECT_EQ(days(20'000'000, 334, 10, 2), "2196.16");
  // JPY 1234.5 × 12 / 365 × 320 × 1 = 12987.616... -> 12988.
  EXPECT_EQ(days(1'234'500'000, 320, 1, 0), "12988");
  // BHD 7.1235 × 12 / 365 × 320 × 1 = 74.943123... -> 74.943.
  EXPECT_EQ(days(7'123'500, 320, 1, 3), "74.943");
  // 365 days of a 365-day year is exactly 12 months: 10.00 × 12 × 3 = 360.00.
  EXPECT_EQ(days(10'000'000, 365, 3, 2), "360.00");
  // One day of 20.00 × 10 seats: 2400 / 365 = 6.575342... -> 6.58.
  EXPECT_EQ(days(20'000'000, 1, 10, 2), "6.58");
  // Whole months: 20.00 × 12 × 10 = 2400.00; JPY 1234.5 × 12 = 14814; BHD 7.1235 × 12 = 85.482.
  EXPECT_EQ(whole(20'000'000, 12, 10, 2), "2400.00");
  EXPECT_EQ(whole(1'234'500'000, 12, 1, 0), "14814");
  EXPECT_EQ(whole(7'123'500, 12, 1, 3), "85.482");
}

TEST(MoneyBoundaries, MinorAmountsPrintWithExactlyTheCurrencyDigits) {
  EXPECT_EQ(format_minor(0, 0), "0");
  EXPECT_EQ(format_minor(12988, 0), "12988");
  EXPECT_EQ(format_minor(-12988, 0), "-12988");
  EXPECT_EQ(format_minor(0, 2), "0.00");
  EXPECT_EQ(format_minor(1, 2), "0.01");
  EXPECT_EQ(format_minor(-1, 2), "-0.01");
  EXPECT_EQ(format_minor(99, 2), "0.99");
  EXPECT_EQ(format_minor(100, 2), "1.00");
  EXPECT_EQ(format_minor(-219616, 2), "-2196.16");
  EXPECT_EQ(format_minor(1, 3), "0.001");
  EXPECT_EQ(format_minor(-74943, 3), "-74.943");
  EXPECT_EQ(format_minor(1000, 3), "1.000");
  EXPECT_EQ(format_minor(INT64_MIN, 2), "-92233720368547758.08");
  EXPECT_EQ(format_minor(INT64_MAX, 0), "9223372036854775807");
}

TEST(MoneyBoundaries, ParseMinorNeedsExactlyTheCurrencyDigits) {
  EXPECT_EQ(parse_minor("12988", 0), 12988);
  EXPECT_EQ(parse_minor("-12988", 0), -12988);
  EXPECT_FALSE(parse_minor("12988.0", 0));
  EXPECT_EQ(parse_minor("-2196.16", 2), -219616);
  EXPECT_EQ(parse_minor("0.01", 2), 1);
  EXPECT_FALSE(parse_minor("0.1", 2));
  EXPECT_FALSE(parse_minor("0.100", 2));
  EXPECT_FALSE(parse_minor(".10", 2));
  EXPECT_FALSE(parse_minor("1a.00", 2));
  EXPECT_FALSE(parse_minor("1.0a", 2));
  EXPECT_EQ(parse_minor("74.943", 3), 74943);
  EXPECT_EQ(parse_minor("-0.001", 3), -1);
  EXPECT_FALSE(parse_minor("74.94", 3));
}

// parse_price_micros as an optional, whether it returns std::optional or absl::StatusOr.
template <class Result>
std::optional<int64_t> as_optional(const Result& r) {
  if constexpr (std::is_same_v<Result, std::optional<int64_t>>)
    return r;
  else
    return r.ok() ? std::optional<int64_t>(*r) : std::nullopt;
}
std::optional<int64_t> price(std::string_view text) {
  return as_optional(parse_price_micros(text));
}

TEST(MoneyBoundaries, PriceDigitsAtTheirLimits) {
  // At most 12 integer and 6 fraction digits (INTERFACE.md).
  EXPECT_EQ(price("999999999999.999999"), 999'999'999'999'999'999LL);
  EXPECT_FALSE(price("1000000000000"));  // 13 integer digits
  EXPECT_EQ(price("100000000000"), 100'000'000'000'000'000LL);  // 12
  EXPECT_EQ(price("0.000001"), 1);
  EXPECT_FALSE(price("0.0000001"));  // 7 fraction digits
  EXPECT_EQ(price("0.00001"), 10);  // 5
  EXPECT_EQ(price("20"), 20'000'000);
  EXPECT_EQ(price("7.8"), 7'800'000);
  EXPECT_EQ(price("35.999"), 35'999'000);
  EXPECT_EQ(price("0"), 0);
  EXPECT_EQ(price("9"), 9'000'000);
  EXPECT_FALSE(price(""));
  EXPECT_FALSE(price("1."));
  EXPECT_FALSE(price(".5"));
  EXPECT_FALSE(price("-1.00"));
  EXPECT_FALSE(price("1.0a"));
  EXPECT_FALSE(price("1a.00"));
  EXPECT_FALSE(price("1.00.0"));
  EXPECT_FALSE(price("/"));
  EXPECT_FALSE(price(":"));
  EXPECT_FALSE(price("1./"));
  EXPECT_FALSE(price("1.:"));
}

TEST(MoneyBoundaries, UnitPriceKeepsAtLeastTwoAndAtMostSixFractionDigits) {
  EXPECT_EQ(format_price(20'000'000), "20.00");
  EXPECT_EQ(format_price(35'999'000), "35.999");
  EXPECT_EQ(format_price(7'800'000), "7.80");
  EXPECT_EQ(format_price(1), "0.000001");
  EXPECT_EQ(format_price(10), "0.00001");
  EXPECT_EQ(format_price(0), "0.00");
  EXPECT_EQ(format_price(999'999'999'999'999'999LL), "999999999999.999999");
  EXPECT_EQ(format_price(1'000'000), "1.00");
  EXPECT_EQ(format_price(1'100'000), "1.10");
  EXPECT_EQ(format_price(1'010'000), "1.01");
}

TEST(MoneyBoundaries, ExactAmountsPrintTheirSignAndDigits) {
  // 2400 / 365 × 198 ... worked example 3: 20 × 12 / 365 × 198 × 10 = 1301.9178082191...
  ExactAmount credit = prorated_days_amount(20'000'000, 198, 10, 2);
  credit.numerator = -credit.numerator;
  EXPECT_EQ(format_exact(credit, 2, 10), "-1301.9178082191");
  EXPECT_EQ(format_exact(prorated_days_amount(20'000'000, 198, 10, 2), 2, 10), "1301.9178082191");
  EXPECT_EQ(format_exact(prorated_days_amount(20'000'000, 198, 10, 2), 2, 0), "1301");
  // JPY: 1234.5 × 12 / 365 × 320 = 12987.6164383561...
  EXPECT_EQ(format_exact(prorated_days_amount(1'234'500'000, 320, 1, 0), 0, 4), "12987.6164");
  // BHD: 7.1235 × 12 / 365 × 320 = 74.9431232876...
  EXPECT_EQ(format_exact(prorated_days_amount(7'123'500, 320, 1, 3), 3, 5), "74.94312");
  EXPECT_EQ(format_exact(ExactAmount{-240000, 1}, 2, 3), "-2400.000");
  EXPECT_EQ(format_exact(ExactAmount{0, 1}, 2, 2), "0.00");
  EXPECT_EQ(format_exact(ExactAmount{7, 1}, 0, 0), "7");
}

TEST(MoneyBoundaries, JsonStringsEscapeEveryControlCharacter) {
  std::string out;
  append_json_string(out, "a\"b\\c\nd\re\tf");
  EXPECT_EQ(out, R"("a\"b\\c\nd\re\tf")");
  out.clear();
  append_json_string(out, std::string("\x01\x1f\x20", 3));
  EXPECT_EQ(out, "\"\\u0001\\u001f \"");
  out.clear();
  append_json_string(out, "");
  EXPECT_EQ(out, "\"\"");
}

}  // namespace
}  // namespace subledger::testing
