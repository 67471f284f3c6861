#include "ledger/countries.h"

#include <algorithm>
#include <array>
#include <map>

namespace subledger {

namespace {

// ISO 3166-1 alpha-2, officially assigned codes, sorted.
constexpr std::string_view kCountries[] = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

// The 27 EU member states and the 4 EFTA states (IS, LI, NO, CH), sorted.
constexpr std::string_view kEuEfta[] = {
    "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
};

template <size_t N>
bool contains(const std::string_view (&sorted)[N], std::string_view code) {
  return std::binary_search(std::begin(sorted), std::end(sorted), code);
}

}  // namespace

bool is_known_country(std::string_view alpha2) { return contains(kCountries, alpha2); }
bool is_eu_or_efta(std::string_view alpha2) { return contains(kEuEfta, alpha2); }

std::vector<int> registration_number_lengths(std::string_view country) {
  static const std::map<std::string_view, std::vector<int>> kLengths = {
      {"AM", {8, 10}},     {"AZ", {7, 10}}, {"BY", {9}},           {"HU", {10, 11}},
      {"KZ", {12}},        {"KG", {14}},    {"MD", {6, 7, 8, 13}}, {"RU", {9, 10, 12}},
      {"TJ", {9, 10, 12}}, {"UZ", {9}},     {"UA", {8, 10, 12}},
  };
  auto it = kLengths.find(country);
  return it == kLengths.end() ? std::vector<int>{} : it->second;
}

}  // namespace subledger
