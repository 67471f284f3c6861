// Money: exact amounts for prices and invoice lines. No floating point anywhere.
//
// Prices are held in micro-units (10^-6 of the currency's major unit, BILLING_RULES 3: at most 6
// fraction digits). Invoice amounts are held in the currency's minor unit (ISO 4217 exponent).
// A line amount is computed exactly as a rational number with 128-bit intermediates and rounded
// once, half away from zero, to the minor unit. Pure functions; safe from any thread.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace subledger {

inline constexpr int64_t kMicrosPerUnit = 1'000'000;
inline constexpr int kDaysPerProrationYear = 365;  // BILLING_RULES 3: 365 in every year.

struct CurrencyInfo {
  std::string_view code;
  int minor_digits;  // ISO 4217 exponent: 0, 2, 3 or 4
};

// The ISO 4217 entry for an upper-case code, or nullopt when the code is not a currency.
std::optional<CurrencyInfo> find_currency(std::string_view code);
// REQUIRES: code is a known currency.
int minor_digits(std::string_view code);

inline constexpr int kPriceIntegerDigitsMax = 12;  // INTERFACE.md: prices
inline constexpr int kPriceFractionDigitsMax = 6;

// Parses a non-negative decimal price ("20", "20.00", "7.800000") into micro-units. An error names
// the real reason (negative, not a plain decimal, too many integer or fraction digits).
[[nodiscard]] absl::StatusOr<int64_t> parse_price_micros(std::string_view text);
// The locked monthly price as shown on a line: at least two fraction digits, as many as the price
// has (up to 6), never rounded: "35.999", "20.00".
std::string format_price(int64_t micros);
// An amount in minor units with exactly the currency's digits: "-1301.92", "1200" (JPY).
std::string format_minor(int64_t minor, int digits);
// Parses an amount with exactly `digits` fraction digits back into minor units.
std::optional<int64_t> parse_minor(std::string_view text, int digits);

// How a line amount was computed (BILLING_RULES 3), kept on the line for `explain`.
enum class FormulaKind : uint8_t {
  kWholeMonths = 0,  // p × months × seats
  kDays = 1,         // p × 12 / 365 × days × seats
  kReversal = 2,     // negated net sum of the term's lines (BILLING_RULES 6, within 30 days)
};

// An exact amount before rounding: numerator / denominator in minor units.
struct ExactAmount {
  __int128 numerator = 0;
  int64_t denominator = 1;
};

// Divides, rounding half away from zero; nullopt when the result does not fit in int64 (magnitude
// at most INT64_MAX). REQUIRES: denominator > 0.
std::optional<int64_t> checked_round_half_away(__int128 numerator, int64_t denominator);
// The same, for amounts already proven in range: throws std::overflow_error otherwise (a defect).
int64_t round_half_away(__int128 numerator, int64_t denominator);

// p × months × seats, exact, in minor units of a currency with `digits` minor digits.
ExactAmount whole_months_amount(int64_t price_micros, int months, int seats, int digits);
// p × 12 / 365 × days × seats, exact.
ExactAmount prorated_days_amount(int64_t price_micros, int days, int seats, int digits);
inline int64_t rounded(const ExactAmount& a) { return round_half_away(a.numerator, a.denominator); }
// The unrounded amount as a decimal with `fraction_digits` digits, truncated toward zero.
std::string format_exact(const ExactAmount& a, int digits, int fraction_digits);

}  // namespace subledger
