#include "events/date.h"

#include <cassert>
#include <charconv>
#include <chrono>
#include <cstdio>

namespace subledger {

namespace chr = std::chrono;

namespace {
chr::year_month_day to_ymd(int32_t days) {
  return chr::year_month_day{chr::sys_days{chr::days{days}}};
}
}  // namespace

Date Date::from_ymd(int year, unsigned month, unsigned day) {
  chr::year_month_day ymd{chr::year{year}, chr::month{month}, chr::day{day}};
  assert(ymd.ok());
  return Date(chr::sys_days{ymd}.time_since_epoch().count());
}

std::optional<Date> Date::parse(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  auto number = [&](size_t pos, size_t len, int& out) {
    for (size_t i = pos; i < pos + len; ++i)
      if (text[i] < '0' || text[i] > '9') return false;
    return std::from_chars(text.data() + pos, text.data() + pos + len, out).ec == std::errc{};
  };
  int y = 0, m = 0, d = 0;
  if (!number(0, 4, y) || !number(5, 2, m) || !number(8, 2, d)) return std::nullopt;
  chr::year_month_day ymd{chr::year{y}, chr::month{static_cast<unsigned>(m)},
                          chr::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || y < 1900) return std::nullopt;
  return Date(chr::sys_days{ymd}.time_since_epoch().count());
}

Date Date::from_yyyymmdd(uint32_t packed) {
  if (packed == 0) return Date();
  return from_ymd(static_cast<int>(packed / 10000), (packed / 100) % 100, packed % 100);
}

std::optional<Date> Date::from_stored_yyyymmdd(uint32_t packed) {
  if (packed == 0) return Date();
  int year = static_cast<int>(packed / 10000);
  if (year < kMinStoredYear || year > kMaxStoredYear) return std::nullopt;
  chr::year_month_day ymd{chr::year{year}, chr::month{(packed / 100) % 100},
                          chr::day{packed % 100}};
  if (!ymd.ok()) return std::nullopt;
  return Date(chr::sys_days{ymd}.time_since_epoch().count());
}

std::optional<Date> Date::from_stored_days(int32_t days_since_epoch) {
  if (days_since_epoch == kNone) return Date();
  // Compared as days (not via year()): a day count far outside chrono's years must not be
  // converted to a calendar date at all.
  static const int32_t first = from_ymd(kMinStoredYear, 1, 1).days();
  static const int32_t last = from_ymd(kMaxStoredYear, 12, 31).days();
  if (days_since_epoch < first || days_since_epoch > last) return std::nullopt;
  return Date(days_since_epoch);
}

int Date::year() const { return static_cast<int>(to_ymd(days_).year()); }
unsigned Date::month() const { return static_cast<unsigned>(to_ymd(days_).month()); }
unsigned Date::day() const { return static_cast<unsigned>(to_ymd(days_).day()); }

uint32_t Date::yyyymmdd() const {
  if (is_none()) return 0;
  auto ymd = to_ymd(days_);
  return static_cast<uint32_t>(static_cast<int>(ymd.year())) * 10000 +
         static_cast<unsigned>(ymd.month()) * 100 + static_cast<unsigned>(ymd.day());
}

std::string Date::iso() const {
  if (is_none()) return "";
  // Hot in invoice regeneration: digits by hand instead of snprintf.
  auto ymd = to_ymd(days_);
  int y = static_cast<int>(ymd.year());
  if (y < 0 || y > 9999) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", y, static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()));
    return buf;
  }
  unsigned m = static_cast<unsigned>(ymd.month()), d = static_cast<unsigned>(ymd.day());
  char buf[10] = {static_cast<char>('0' + y / 1000),     static_cast<char>('0' + y / 100 % 10),
                  static_cast<char>('0' + y / 10 % 10),  static_cast<char>('0' + y % 10),
                  '-',
                  static_cast<char>('0' + m / 10),       static_cast<char>('0' + m % 10),
                  '-',
                  static_cast<char>('0' + d / 10),       static_cast<char>('0' + d % 10)};
  return std::string(buf, sizeof buf);
}

std::string Date::compact() const {
  std::string s = iso();
  return s.substr(0, 4) + s.substr(5, 2) + s.substr(8, 2);
}

Date Date::plus_months(int n) const {
  auto ymd = to_ymd(days_);
  auto moved = ymd + chr::months{n};
  assert(moved.ok() && "plus_months needs a day of month that exists in the target month");
  return Date(chr::sys_days{moved}.time_since_epoch().count());
}

Date Date::first_of_next_month() const {
  auto ym = chr::year_month{to_ymd(days_).year(), to_ymd(days_).month()} + chr::months{1};
  return Date(chr::sys_days{ym / chr::day{1}}.time_since_epoch().count());
}

int whole_months_between(Date from, Date to) {
  assert(from.day() <= 28);
  int months = (to.year() - from.year()) * 12 + static_cast<int>(to.month()) -
               static_cast<int>(from.month());
  if (to.day() < from.day()) --months;
  return months;
}

}  // namespace subledger
