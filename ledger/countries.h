// Countries: ISO 3166-1 alpha-2 codes, and the regions the billing rules single out.
// Pure lookups over constant tables; safe from any thread.
#pragma once

#include <string_view>
#include <vector>

namespace subledger {

bool is_known_country(std::string_view alpha2);
// EU member states and EFTA states: partners there are billed in their own currency
// (BILLING_RULES 8).
bool is_eu_or_efta(std::string_view alpha2);
// BILLING_RULES 9: the registration-number lengths required per country (empty: not screened).
std::vector<int> registration_number_lengths(std::string_view country);

}  // namespace subledger
