#include "events/money.h"

#include "events/date.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace subledger {

namespace {

// ISO 4217 active codes (list one, 2024) with their minor units.
constexpr CurrencyInfo kCurrencies[] = {
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2}, {"AUD", 2},
    {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2}, {"BHD", 3}, {"BIF", 0},
    {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BOV", 2}, {"BRL", 2}, {"BSD", 2}, {"BTN", 2}, {"BWP", 2},
    {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2}, {"CHE", 2}, {"CHF", 2}, {"CHW", 2}, {"CLF", 4},
    {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"COU", 2}, {"CRC", 2}, {"CUC", 2}, {"CUP", 2}, {"CVE", 2},
    {"CZK", 2}, {"DJF", 0}, {"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2}, {"ETB", 2},
    {"EUR", 2}, {"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2},
    {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2}, {"HTG", 2}, {"HUF", 2}, {"IDR", 2},
    {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0}, {"JMD", 2}, {"JOD", 3}, {"JPY", 0},
    {"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KMF", 0}, {"KPW", 2}, {"KRW", 0}, {"KWD", 3}, {"KYD", 2},
    {"KZT", 2}, {"LAK", 2}, {"LBP", 2}, {"LKR", 2}, {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2},
    {"MDL", 2}, {"MGA", 2}, {"MKD", 2}, {"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2},
    {"MVR", 2}, {"MWK", 2}, {"MXN", 2}, {"MXV", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2}, {"NGN", 2},
    {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2}, {"PEN", 2}, {"PGK", 2},
    {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2}, {"RSD", 2}, {"RUB", 2},
    {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2}, {"SEK", 2}, {"SGD", 2}, {"SHP", 2},
    {"SLE", 2}, {"SLL", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2}, {"STN", 2}, {"SVC", 2}, {"SYP", 2},
    {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2}, {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2},
    {"TWD", 2}, {"TZS", 2}, {"UAH", 2}, {"UGX", 0}, {"USD", 2}, {"USN", 2}, {"UYI", 0}, {"UYU", 2},
    {"UYW", 4}, {"UZS", 2}, {"VED", 2}, {"VES", 2}, {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0},
    {"XCD", 2}, {"XOF", 0}, {"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2}, {"ZWL", 2},
};

int64_t pow10(int n) {
  int64_t r = 1;
  while (n-- > 0) r *= 10;
  return r;
}

std::string int128_to_string(unsigned __int128 v) {
  if (v == 0) return "0";
  std::string s;
  while (v > 0) {
    s.push_back(static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  std::reverse(s.begin(), s.end());
  return s;
}

// The table is in code order (checked at compile time): a binary search, as every invoice and
// every money field asks.
constexpr bool codes_sorted() {
  for (size_t i = 1; i < std::size(kCurrencies); ++i)
    if (!(kCurrencies[i - 1].code < kCurrencies[i].code)) return false;
  return true;
}
static_assert(codes_sorted(), "kCurrencies must stay in code order");

}  // namespace

std::optional<CurrencyInfo> find_currency(std::string_view code) {
  const auto* it = std::lower_bound(
      std::begin(kCurrencies), std::end(kCurrencies), code,
      [](const CurrencyInfo& c, std::string_view wanted) { return c.code < wanted; });
  if (it == std::end(kCurrencies) || it->code != code) return std::nullopt;
  return *it;
}

int minor_digits(std::string_view code) {
  auto c = find_currency(code);
  assert(c.has_value());
  return c ? c->minor_digits : 2;
}

absl::StatusOr<int64_t> parse_price_micros(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(why + "; a price is a decimal string with at most " +
                                      std::to_string(kPriceIntegerDigitsMax) + " integer and " +
                                      std::to_string(kPriceFractionDigitsMax) +
                                      " fraction digits, like \"20.00\"");
  };
  if (text.empty()) return bad("is empty");
  if (text[0] == '-') return bad("is negative (" + std::string(text.substr(0, 32)) + ")");
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  auto digits_only = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  };
  if (whole.empty() || !digits_only(whole) || !digits_only(frac) ||
      (dot != std::string_view::npos && frac.empty()))
    return bad("is not a plain decimal number");
  if (whole.size() > static_cast<size_t>(kPriceIntegerDigitsMax))
    return bad("has " + std::to_string(whole.size()) + " integer digits");
  if (frac.size() > static_cast<size_t>(kPriceFractionDigitsMax))
    return bad("has " + std::to_string(frac.size()) + " fraction digits");
  // At most 12 + 6 digits: below 10^18 micro-units, inside int64.
  int64_t micros = 0;
  for (char ch : whole) micros = micros * 10 + (ch - '0');
  for (int i = 0; i < kPriceFractionDigitsMax; ++i)
    micros = micros * 10 +
             (static_cast<size_t>(i) < frac.size() ? frac[static_cast<size_t>(i)] - '0' : 0);
  return micros;
}

std::string format_price(int64_t micros) {
  assert(micros >= 0);
  std::string frac = std::to_string(kMicrosPerUnit + micros % kMicrosPerUnit).substr(1);
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return std::to_string(micros / kMicrosPerUnit) + "." + frac;
}

std::string format_minor(int64_t minor, int digits) {
  bool negative = minor < 0;
  uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(minor) : static_cast<uint64_t>(minor);
  uint64_t scale = static_cast<uint64_t>(pow10(digits));
  std::string out = negative ? "-" : "";
  out += std::to_string(magnitude / scale);
  if (digits > 0) {
    // scale + remainder has exactly digits + 1 digits; its leading 1 keeps the fraction's zeros.
    // (Appended piecewise: `"." + std::to_string(...).substr(1)` trips GCC 12's -Wrestrict false
    // positive at -O3.)
    std::string fraction = std::to_string(scale + magnitude % scale);
    out += '.';
    out.append(fraction, 1);
  }
  return out;
}

std::optional<int64_t> parse_minor(std::string_view text, int digits) {
  bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || static_cast<int>(frac.size()) != digits) return std::nullopt;
  int64_t v = 0;
  for (char ch : whole) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + (ch - '0');
  }
  for (char ch : frac) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + (ch - '0');
  }
  return negative ? -v : v;
}

std::optional<int64_t> checked_round_half_away(__int128 numerator, int64_t denominator) {
  assert(denominator > 0);
  bool negative = numerator < 0;
  unsigned __int128 n =
      negative ? static_cast<unsigned __int128>(0) - static_cast<unsigned __int128>(numerator)
               : static_cast<unsigned __int128>(numerator);
  auto d = static_cast<unsigned __int128>(denominator);
  unsigned __int128 q = n / d;
  if ((n % d) * 2 >= d) ++q;  // half away from zero
  // Symmetric range: a credit is always representable as the negation of a charge.
  if (q > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  auto result = static_cast<int64_t>(q);
  return negative ? -result : result;
}

int64_t round_half_away(__int128 numerator, int64_t denominator) {
  std::optional<int64_t> r = checked_round_half_away(numerator, denominator);
  // Decisions reject commands whose amounts leave the range (AMOUNT_OUT_OF_RANGE) before any
  // event exists, so a fold never meets one.
  if (!r) throw std::overflow_error("amount out of the range of signed 64-bit minor units");
  return *r;
}

ExactAmount whole_months_amount(int64_t price_micros, int months, int seats, int digits) {
  return {static_cast<__int128>(price_micros) * months * seats, pow10(6 - digits)};
}

ExactAmount prorated_days_amount(int64_t price_micros, int days, int seats, int digits) {
  return {static_cast<__int128>(price_micros) * kMonthsPerYear * days * seats,
          kDaysPerProrationYear * pow10(6 - digits)};
}

std::string format_exact(const ExactAmount& a, int digits, int fraction_digits) {
  bool negative = a.numerator < 0;
  unsigned __int128 n = negative ? static_cast<unsigned __int128>(-a.numerator)
                                 : static_cast<unsigned __int128>(a.numerator);
  // value in major units = n / (denominator × 10^digits)
  unsigned __int128 den =
      static_cast<unsigned __int128>(a.denominator) * static_cast<unsigned __int128>(pow10(digits));
  std::string out = negative ? "-" : "";
  out += int128_to_string(n / den);
  unsigned __int128 rem = n % den;
  if (fraction_digits > 0) out += ".";
  for (int i = 0; i < fraction_digits; ++i) {
    rem *= 10;
    out.push_back(static_cast<char>('0' + static_cast<int>(rem / den)));
    rem %= den;
  }
  return out;
}

}  // namespace subledger
