// The columns each query shows in a table and a CSV file (app/output.h), by the members of the
// JSON records it prints.
#pragma once

#include <string>

#include "app/output.h"

namespace subledger::cli {

View invoice_view();  // `invoices` (its CSV is one row per invoice: invoice_csv_row)
View renewal_view();  // `renewals`
View event_view();    // `log`, `history`
View explain_view(const std::string& currency);  // `explain`: the invoice's currency
View customer_view();                            // `customers`
View subscription_view();                        // `subscriptions`
View trial_view();                               // `trials`
View offer_view();                               // `offers`
View price_view();                               // `prices`
// `summary --by`: the group's member (e.g. "month", "offer_id") and its table header.
View summary_view(const std::string& group_member, const std::string& group_header);

}  // namespace subledger::cli
