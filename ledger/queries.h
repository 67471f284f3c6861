// Queries answered straight from the projection rows, without loading the ledger's state: what
// `state`, `explain` and `invoices` use, so their latency does not grow with the ledger.
// Errors: NotFound when there is no such row; DataLoss when a row cannot be decoded (the caller
// folds the log in memory instead: Ledger::open_rows_for_reading); others are I/O errors.
// Read-only; safe from any thread that may read the store.
#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <vector>

#include "ledger/store.h"
#include "projections/ledger_state.h"

namespace subledger {

// Issued invoices by invoice date then id (the order `invoices` prints); `customer_id` filters.
[[nodiscard]] absl::StatusOr<std::vector<IssuedInvoice>> issued_invoices(
    const Store& store, const std::string& customer_id = "");
[[nodiscard]] absl::StatusOr<IssuedInvoice> issued_invoice(const Store& store,
                                                           const std::string& invoice_id);
[[nodiscard]] absl::StatusOr<Subscription> stored_subscription(const Store& store,
                                                               const std::string& id);
// The catalog row loaded into an otherwise empty state (for as-of questions).
[[nodiscard]] absl::StatusOr<LedgerState> catalog_only(const Store& store);

}  // namespace subledger
