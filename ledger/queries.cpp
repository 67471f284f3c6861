#include "ledger/queries.h"

#include <algorithm>
#include <tuple>

#include "projections/projection_rows.h"

namespace subledger {

namespace {

absl::Status unreadable(std::string_view key) {
  return absl::DataLossError("projection row " + std::string(key) + " is unreadable");
}

}  // namespace

absl::StatusOr<std::vector<IssuedInvoice>> issued_invoices(const Store& store,
                                                           const std::string& customer_id) {
  std::vector<IssuedInvoice> out;
  // An invoice id is the customer id, '-', the date: the rows of every id beginning so (and the
  // customer's own are kept by the filter below).
  std::string prefix = customer_id.empty() ? std::string(kInvoiceRowPrefix)
                                           : invoice_rows_prefix(customer_id + "-");
  absl::Status status;
  std::string error =
      store.scan_projections(prefix, [&](std::string_view key, std::string_view value) {
        auto issued = decode_invoice_row(value);
        if (!issued) {
          status = unreadable(key);
          return false;
        }
        if (customer_id.empty() || issued->invoice.customer_id == customer_id)
          out.push_back(std::move(*issued));
        return true;
      });
  if (!error.empty()) return absl::DataLossError(error);
  if (!status.ok()) return status;
  std::sort(out.begin(), out.end(), [](const IssuedInvoice& a, const IssuedInvoice& b) {
    return std::tie(a.invoice.invoice_date, a.invoice.invoice_id) <
           std::tie(b.invoice.invoice_date, b.invoice.invoice_id);
  });
  return out;
}

absl::StatusOr<IssuedInvoice> issued_invoice(const Store& store, const std::string& invoice_id) {
  const std::string key = invoice_row_key(invoice_id);
  auto value = store.projection(key);
  if (!value.ok()) return value.status();
  auto issued = decode_invoice_row(*value);
  if (!issued) return unreadable(key);
  return std::move(*issued);
}

absl::StatusOr<Subscription> stored_subscription(const Store& store, const std::string& id) {
  const std::string key = subscription_row_key(id);
  auto value = store.projection(key);
  if (!value.ok()) return value.status();
  auto sub = decode_subscription_row(*value);
  if (!sub) return unreadable(key);
  return std::move(*sub);
}

absl::StatusOr<LedgerState> catalog_only(const Store& store) {
  auto value = store.projection("catalog");
  if (!value.ok()) return value.status();
  LedgerState state;
  if (!state.load_row("catalog", *value).empty()) return unreadable("catalog");
  return state;
}

}  // namespace subledger
