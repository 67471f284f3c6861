// Queries answered straight from the projection rows, without loading the ledger's state: what
// `state`, `explain` and `invoices` use, so their latency does not grow with the ledger.
// Errors: NotFound when there is no such row; DataLoss when a row cannot be decoded (the caller
// folds the log in memory instead: Ledger::open_rows_for_reading); others are I/O errors.
// Read-only; safe from any thread that may read the store.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ledger/store.h"
#include "projections/ledger_state.h"

namespace subledger {

// Issued invoices by invoice date then id (the order `invoices` prints); `customer_id` filters.
[[nodiscard]] absl::StatusOr<std::vector<IssuedInvoice>> issued_invoices(
    const Store& store, const std::string& customer_id = "");
// Which issued invoices for_each_issued_invoice() reads: empty strings and dates match all.
struct InvoiceSelection {
  std::string customer_id, partner_id;
  Date from, to;  // invoice dates, both included
};
// Calls fn for each selected issued invoice in the order `invoices` prints them (invoice date,
// then id), until fn returns false, holding one invoice date's ids at a time: memory does not
// grow with the ledger and the first invoice comes at once. The order comes from the log: a
// billing run's InvoiceIssued events are the `invoices_issued` events just before its BillingRun
// event (ledger/billing_run.cpp), in date order, and each run's dates follow the previous run's.
// A row missing for an issued invoice is DataLoss (the rows are then folded from the log).
[[nodiscard]] absl::Status for_each_issued_invoice(
    const Store& store, const InvoiceSelection& selection,
    const std::function<bool(const IssuedInvoice&)>& fn);
[[nodiscard]] absl::StatusOr<IssuedInvoice> issued_invoice(const Store& store,
                                                           const std::string& invoice_id);
[[nodiscard]] absl::StatusOr<Subscription> stored_subscription(const Store& store,
                                                               const std::string& id);
// A customer's rows (its own and those under it, projection_rows.h), read and checked together.
// ResourceExhausted when its own row counts more than `subscriptions_max` subscriptions (the
// rows under it are then not read).
[[nodiscard]] absl::StatusOr<CustomerRow> stored_customer(
    const Store& store, const std::string& customer_id,
    size_t subscriptions_max = std::numeric_limits<size_t>::max());
// The sequence numbers of every event of customer `customer_id`, ascending: its customer stream
// (created, agreements, invoices issued) and the stream of each subscription its row lists (a
// subscription belongs for good to the customer that opened it). Read through the stream index,
// never by scanning the log: what `log --customer` prints. An unknown customer has none.
[[nodiscard]] absl::StatusOr<std::vector<uint64_t>> customer_event_seqs(
    const Store& store, const std::string& customer_id);
// The catalog row loaded into an otherwise empty state (for as-of questions).
[[nodiscard]] absl::StatusOr<LedgerState> catalog_only(const Store& store);

}  // namespace subledger
