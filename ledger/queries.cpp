#include "ledger/queries.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "projections/projection_rows.h"

namespace subledger {

bool projections_current(const Store& store) {
  auto checkpoint = store.projection("checkpoint");
  auto meta = store.projection(kMetaRow);
  return checkpoint && from_be64(*checkpoint) == store.last_seq() && meta &&
         meta_row_current(*meta);
}

std::vector<IssuedInvoice> issued_invoices(const Store& store, const std::string& customer_id) {
  std::vector<IssuedInvoice> out;
  std::string prefix(kInvoiceRowPrefix);
  if (!customer_id.empty()) prefix += customer_id + "-";
  std::string error =
      store.scan_projections(prefix, [&](std::string_view key, std::string_view value) {
        auto issued = decode_invoice_row(value);
        if (!issued) throw std::runtime_error("invoice row " + std::string(key) + " is unreadable");
        if (customer_id.empty() || issued->invoice.customer_id == customer_id)
          out.push_back(std::move(*issued));
        return true;
      });
  if (!error.empty()) throw std::runtime_error(error);
  std::sort(out.begin(), out.end(), [](const IssuedInvoice& a, const IssuedInvoice& b) {
    return std::tie(a.invoice.invoice_date, a.invoice.invoice_id) <
           std::tie(b.invoice.invoice_date, b.invoice.invoice_id);
  });
  return out;
}

std::optional<IssuedInvoice> issued_invoice(const Store& store, const std::string& invoice_id) {
  auto value = store.projection(std::string(kInvoiceRowPrefix) + invoice_id);
  if (!value) return std::nullopt;
  return decode_invoice_row(*value);
}

std::optional<Subscription> stored_subscription(const Store& store, const std::string& id) {
  auto value = store.projection(std::string(kSubscriptionRowPrefix) + id);
  if (!value) return std::nullopt;
  return decode_subscription_row(*value);
}

std::optional<LedgerState> catalog_only(const Store& store) {
  auto value = store.projection("catalog");
  if (!value) return std::nullopt;
  std::optional<LedgerState> state(std::in_place);
  if (!state->load_row("catalog", *value).empty()) return std::nullopt;
  return state;
}

}  // namespace subledger
