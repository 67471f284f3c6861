// Queries answered straight from the projection rows, without loading the ledger's state: what
// `state`, `explain` and `invoices` use, so their latency does not grow with the ledger.
// Read-only; safe from any thread that may read the store.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ledger/store.h"
#include "projections/ledger_state.h"

namespace subledger {

// True when the rows are of the current format and written through the last event.
bool projections_current(const Store& store);

// Issued invoices by invoice date then id (the order `invoices` prints); `customer_id` filters.
std::vector<IssuedInvoice> issued_invoices(const Store& store, const std::string& customer_id = "");
std::optional<IssuedInvoice> issued_invoice(const Store& store, const std::string& invoice_id);
std::optional<Subscription> stored_subscription(const Store& store, const std::string& id);
// The catalog row loaded into an otherwise empty state (for as-of questions).
std::optional<LedgerState> catalog_only(const Store& store);

}  // namespace subledger
