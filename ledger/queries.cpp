#include "ledger/queries.h"

#include <algorithm>
#include <tuple>

#include "projections/projection_rows.h"
#include "projections/row_codec.h"
#include "events/codec.h"

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
  absl::Status read =
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
  if (!read.ok()) return read;
  if (!status.ok()) return status;
  std::sort(out.begin(), out.end(), [](const IssuedInvoice& a, const IssuedInvoice& b) {
    return std::tie(a.invoice.invoice_date, a.invoice.invoice_id) <
           std::tie(b.invoice.invoice_date, b.invoice.invoice_id);
  });
  return out;
}

namespace {

bool selected(const InvoiceSelection& s, const std::string& partner_id, Date date) {
  return (s.partner_id.empty() || partner_id == s.partner_id) &&
         (s.from.is_none() || date >= s.from) && (s.to.is_none() || date <= s.to);
}

}  // namespace

absl::Status for_each_issued_invoice(const Store& store, const InvoiceSelection& selection,
                                     const std::function<bool(const IssuedInvoice&)>& fn) {
  if (!selection.customer_id.empty()) {
    // One customer's invoices are few: its rows, sorted in memory.
    auto all = issued_invoices(store, selection.customer_id);
    if (!all.ok()) return all.status();
    for (const IssuedInvoice& issued : *all)
      if (selected(selection, issued.invoice.partner_id, issued.invoice.invoice_date) &&
          !fn(issued))
        break;
    return absl::OkStatus();
  }
  auto runs = store.stream_seqs(Stream{StreamKind::kLedger, "billing"});
  if (!runs.ok()) return runs.status();
  EventDecoder decoder;
  Event run_event, e;
  Date date;                     // of the invoices gathered in `ids`
  std::vector<std::string> ids;  // of one invoice date
  bool more = true;
  // Hands over the invoices of `date`, by id.
  auto flush = [&]() -> absl::Status {
    if (ids.empty()) return absl::OkStatus();
    std::sort(ids.begin(), ids.end());
    for (const std::string& id : ids) {
      // Point reads: each finds its row through the Bloom filters without positioning every
      // level as an iterator's seek would (measured slower).
      auto issued = issued_invoice(store, id);
      if (absl::IsNotFound(issued.status()))
        return absl::DataLossError("the projection row of issued invoice " + id + " is missing");
      if (!issued.ok()) return issued.status();
      if (issued->invoice.invoice_date != date)
        return absl::DataLossError("the projection row of invoice " + id +
                                   " disagrees with its event on the invoice date");
      if (!(more = fn(*issued))) break;
    }
    ids.clear();
    return absl::OkStatus();
  };
  for (uint64_t run_seq : *runs) {
    auto bytes = store.event_bytes(run_seq);
    if (!bytes.ok()) return bytes.status();
    if (absl::Status bad = decoder.decode(*bytes, run_event); !bad.ok())
      return at_event(run_seq, bad);
    const auto* run = std::get_if<BillingRun>(&run_event.payload);
    if (!run || run_seq <= run->invoices_issued)
      return absl::DataLossError("event " + std::to_string(run_seq) +
                                 " of the billing stream is not a billing run");
    if (run->invoices_issued == 0) continue;
    // A run's invoice dates are after its previous clock and on or before its `through`.
    if (!selection.from.is_none() && run->through < selection.from) continue;
    if (!selection.to.is_none() && !run->previous_clock.is_none() &&
        run->previous_clock >= selection.to)
      break;
    absl::Status status;
    const uint64_t first = run_seq - run->invoices_issued;
    absl::Status read = store.scan_events(first - 1, [&](uint64_t seq, std::string_view value) {
      if (seq >= run_seq) return false;
      if (absl::Status bad = decoder.decode(value, e); !bad.ok()) {
        status = at_event(seq, bad);
        return false;
      }
      const auto* issued = std::get_if<InvoiceIssued>(&e.payload);
      if (!issued) {
        status = absl::DataLossError("event " + std::to_string(seq) +
                                     " is not an invoice of the billing run at event " +
                                     std::to_string(run_seq));
        return false;
      }
      if (issued->invoice_date != date) {
        status = flush();
        if (!status.ok() || !more) return false;
        // Each date's invoices are together and dates only grow (see the header), or the
        // order printed would be wrong: refuse rather than print it.
        if (!date.is_none() && issued->invoice_date < date) {
          status = absl::DataLossError("invoice dates out of order at event " +
                                       std::to_string(seq));
          return false;
        }
        date = issued->invoice_date;
      }
      if (selected(selection, issued->partner_id, issued->invoice_date))
        ids.push_back(issued->invoice_id);
      return true;
    });
    if (!read.ok()) return read;
    if (!status.ok() || !more) return status;
  }
  return flush();
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

absl::StatusOr<CustomerRow> stored_customer(const Store& store, const std::string& customer_id,
                                            size_t subscriptions_max) {
  CustomerRow row;
  absl::Status fits;
  absl::Status read = store.scan_projections(
      customer_row_key(customer_id),
      [&](std::string_view key, std::string_view value) {
        fits = add_customer_row(row, key, value);
        if (fits.ok() && row.subscription_count > subscriptions_max)
          fits = absl::ResourceExhaustedError("customer " + customer_id +
                                              " has many subscriptions");
        return fits.ok();
      },
      Store::Scan::kShort);
  if (!read.ok()) return read;
  if (!fits.ok()) return fits;
  if (row.customer.def.customer_id.empty())
    return absl::NotFoundError("no row of customer " + customer_id);
  if (absl::Status complete = check_customer_rows(row); !complete.ok()) return complete;
  return row;
}

absl::StatusOr<std::vector<uint64_t>> customer_event_seqs(const Store& store,
                                                          const std::string& customer_id) {
  auto seqs = store.stream_seqs(Stream{StreamKind::kCustomer, customer_id});
  if (!seqs.ok()) return seqs.status();
  std::vector<uint64_t> out = std::move(*seqs);
  auto row = stored_customer(store, customer_id);
  if (absl::IsNotFound(row.status())) return out;
  if (!row.ok()) return row.status();
  for (const std::string& id : row->customer.subscription_ids) {
    auto sub = store.stream_seqs(Stream{StreamKind::kSubscription, id});
    if (!sub.ok()) return sub.status();
    out.insert(out.end(), sub->begin(), sub->end());
  }
  // Each stream is in version order, which is sequence order; the streams interleave.
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<LedgerState> catalog_only(const Store& store) {
  auto value = store.projection(kCatalogRow);
  if (!value.ok()) return value.status();
  LedgerState state;
  if (!state.load_row(kCatalogRow, *value).ok()) return unreadable("catalog");
  return state;
}

}  // namespace subledger
