// Date: a calendar date (proleptic Gregorian), stored as days since 1970-01-01.
//
// Invariants: a default-constructed Date is "none" (no date); every other value is a real day.
// Month arithmetic never clamps silently: add_months REQUIRES a day of month that exists in the
// target month (BILLING_RULES 2 anchors every term on day 1..28 so that this always holds).
// Pure value type; safe to use from any thread.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace subledger {

class Date {
 public:
  constexpr Date() = default;
  static constexpr Date from_days(int32_t days_since_epoch) { return Date(days_since_epoch); }
  static Date from_ymd(int year, unsigned month, unsigned day);
  // Parses "YYYY-MM-DD"; nullopt unless it names a real calendar day.
  static std::optional<Date> parse(std::string_view text);
  // YYYYMMDD as an integer (0 for none): the on-disk form. REQUIRES: a real day.
  static Date from_yyyymmdd(uint32_t packed);

  // The dates a stored value may hold. Input dates are years 1900 to 9999 (parse); the ledger
  // derives others from them by at most a few years either way (a term's end, the billing clock's
  // day before, the run horizon), so a century of margin on each side keeps every honest value and
  // still leaves room for arithmetic on any accepted date.
  static constexpr int kMinStoredYear = 1800;
  static constexpr int kMaxStoredYear = 10099;
  // The decoding boundary: these never assert. nullopt unless the value is none (0, resp. the
  // days form of none) or a real day in years kMinStoredYear..kMaxStoredYear.
  static std::optional<Date> from_stored_yyyymmdd(uint32_t packed);
  static std::optional<Date> from_stored_days(int32_t days_since_epoch);

  bool is_none() const { return days_ == kNone; }
  int32_t days() const { return days_; }
  int year() const;
  unsigned month() const;
  unsigned day() const;
  uint32_t yyyymmdd() const;

  std::string iso() const;      // "YYYY-MM-DD", or "" for none
  std::string compact() const;  // "YYYYMMDD", used in invoice ids

  Date plus_days(int32_t n) const { return Date(days_ + n); }
  // REQUIRES: the day of month exists in the target month.
  Date plus_months(int n) const;
  // The 1st of the month after this date's month.
  Date first_of_next_month() const;

  friend int32_t operator-(Date a, Date b) { return a.days_ - b.days_; }
  friend auto operator<=>(Date, Date) = default;

 private:
  static constexpr int32_t kNone = INT32_MIN;
  constexpr explicit Date(int32_t d) : days_(d) {}
  int32_t days_ = kNone;
};

// Months from `from` to the first month boundary not after `to`, counting whole months when both
// dates share the same day of month (anchor arithmetic). REQUIRES: from.day() <= 28.
int whole_months_between(Date from, Date to);

inline constexpr int kMonthsPerYear = 12;
// BILLING_RULES 1 and 2: billing days and term anchors fall on day 1..kLastSafeDay of a month,
// a day every month has, so adding months never clamps.
inline constexpr unsigned kLastSafeDay = 28;

}  // namespace subledger
