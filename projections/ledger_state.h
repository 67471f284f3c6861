// LedgerState: every projection of the log in memory: catalog, subscriptions, pending charge
// lines, issued invoices, the billing clock and stream versions.
//
// It is a deterministic fold: apply() each event in sequence order and the state, the lines and
// the invoices come out the same on every run. When an InvoiceIssued event is applied, the invoice
// is regenerated from the pending lines and its hash compared with the recorded one; a difference
// is kept in mismatches() (that is how `replay --verify` proves every invoice).
// Not thread-safe: one writer; readers only between applies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/event.h"
#include "projections/catalog.h"
#include "projections/invoice.h"
#include "projections/subscription.h"

namespace subledger {

struct IssuedInvoice {
  Invoice invoice;  // lines kept only when the state retains them
  uint64_t event_seq = 0;
};

struct InvoiceMismatch {
  std::string invoice_id;
  uint64_t event_seq = 0;
  std::string recorded_sha256_hex, regenerated_sha256_hex;
  std::string recorded_total, regenerated_total;
};

class LedgerState {
 public:
  // retain_issued_lines: keep every issued invoice's lines (queries); false keeps only totals and
  // hashes, so memory does not grow with the number of invoices (apply, replay, bench).
  explicit LedgerState(bool retain_issued_lines = true) : retain_lines_(retain_issued_lines) {}

  // Folds one event. Returns "" or why the event cannot follow the state (a broken log): a
  // sequence gap, a broken hash chain (event.prev_hash must be chain_head()), an impossible event.
  // event.hash must be set (the decoder sets it; writers take it from encode_event).
  // `prebuilt` is the invoice the billing run just built for this InvoiceIssued event, so it is
  // not built twice.
  std::string apply(const Event& event, Invoice* prebuilt = nullptr);

  // Emits the cycle fees of the customer's subscriptions up to `d` (lazy, deterministic).
  void advance_customer(const std::string& customer_id, Date d);
  // The invoice the customer would get on `d`: pending lines charged on or before `d`.
  // REQUIRES: advance_customer(customer_id, d) ran. nullopt when no line is pending.
  std::optional<Invoice> build_invoice(const std::string& customer_id, Date d) const;
  // The earliest charge date among pending lines of the partner's customers, or none.
  Date earliest_pending(const Partner& partner) const;

  const Catalog& catalog() const { return catalog_; }
  const Subscription* subscription(const std::string& id) const;
  const std::vector<std::string>& subscription_ids() const { return subscription_order_; }
  size_t subscription_count() const { return subscriptions_.size(); }
  uint64_t stream_version(const Stream& stream) const;
  Date billing_clock() const { return billing_clock_; }
  uint64_t last_seq() const { return last_seq_; }
  // The hash of the last applied event: what the next event's prev_hash must be.
  const std::string& chain_head() const { return chain_head_; }
  uint64_t events_applied() const { return events_applied_; }
  const std::vector<IssuedInvoice>& invoices() const { return invoices_; }
  const IssuedInvoice* invoice(const std::string& invoice_id) const;
  const std::vector<InvoiceMismatch>& mismatches() const { return mismatches_; }
  const std::vector<ChargeLine>* pending_lines(const std::string& customer_id) const;

 private:
  void apply_invoice(const Event& event, const InvoiceIssued& e, Invoice* prebuilt);
  std::string apply_subscription_event(const Event& event);
  LineSink sink_for(const std::string& customer_id);

  bool retain_lines_;
  Catalog catalog_;
  std::unordered_map<std::string, Subscription> subscriptions_;  // lookup only
  std::vector<std::string> subscription_order_;                  // creation order
  std::unordered_map<std::string, std::vector<ChargeLine>> pending_;
  std::unordered_map<std::string, uint64_t> stream_versions_;    // non-subscription streams
  std::vector<IssuedInvoice> invoices_;
  std::unordered_map<std::string, size_t> invoice_index_;
  std::vector<InvoiceMismatch> mismatches_;
  Date billing_clock_;
  uint64_t last_seq_ = 0;
  std::string chain_head_;
  uint64_t events_applied_ = 0;
};

}  // namespace subledger
