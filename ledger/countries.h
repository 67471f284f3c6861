// Countries: ISO 3166-1 alpha-2 codes, and the regions the billing rules single out.
// Pure lookups over constant tables; safe from any thread.
#pragma once

#include <string_view>

namespace subledger {

bool is_known_country(std::string_view alpha2);
// EU member states and EFTA states: partners there are billed in their own currency
// (BILLING_RULES 8).
bool is_eu_or_efta(std::string_view alpha2);

}  // namespace subledger
