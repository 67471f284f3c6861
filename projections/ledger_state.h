// LedgerState: every projection of the log in memory: catalog, subscriptions, pending charge
// lines, issued invoices, the billing clock and stream versions.
//
// It is a deterministic fold: apply() each event in sequence order and the state, the lines and
// the invoices come out the same on every run. When an InvoiceIssued event is applied, the invoice
// is regenerated from the pending lines and its hash compared with the recorded one; a difference
// is kept in mismatches() (that is how `replay --verify` proves every invoice).
// Not thread-safe: one writer; readers only between applies.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "projections/catalog.h"
#include "projections/invoice.h"
#include "projections/subscription.h"

namespace subledger {

struct IssuedInvoice {
  Invoice invoice;  // with its lines
  uint64_t event_seq = 0;
  std::string chain_head;  // the log's chain head it was issued at (32 raw bytes)
};

// A customer's pending charge lines: not yet invoiced, in the order they arose. Each has a number
// unique in the customer and never reused (the key of its row, so a change writes only the lines
// it adds and removes); the numbers ascend with the lines.
struct PendingLines {
  std::vector<ChargeLine> lines;
  std::vector<uint64_t> numbers;  // lines[i] has numbers[i]
  uint64_t next = 0;              // the number the next line gets
  uint64_t stored_next = 0;       // lines numbered below it have rows (change tracking only)
  __int128 magnitude = 0;         // the sum of the lines' amounts in absolute value
  static __int128 magnitude_of(const ChargeLine& line) {
    return line.amount_minor < 0 ? -static_cast<__int128>(line.amount_minor) : line.amount_minor;
  }
  void add(ChargeLine&& line) {
    magnitude += magnitude_of(line);
    lines.push_back(std::move(line));
    numbers.push_back(next++);
  }
};

// A customer's rows decoded (projections/row_codec.h, add_customer_row): the customer with its
// subscriptions, its stream's version and its pending lines.
struct CustomerRow {
  Customer customer;
  uint64_t version = 0;
  std::vector<ChargeLine> pending;
  std::vector<uint64_t> pending_numbers;
  uint64_t next_line = 0;
  // What the customer's own row says is under it (the rows read must match: add_customer_row).
  uint32_t subscription_count = 0, pending_count = 0;
};

struct InvoiceMismatch {
  std::string invoice_id;
  uint64_t event_seq = 0;
  std::string recorded_sha256_hex, regenerated_sha256_hex;
  std::string recorded_total, regenerated_total;
};

// Whether `event` may follow the event `last_seq` whose hash is `chain_head`: the next sequence
// number, linked to that hash (and an InvoiceIssued recording it). OK, or DataLoss saying what is
// broken.
[[nodiscard]] absl::Status check_link(const Event& event, uint64_t last_seq,
                                      const std::string& chain_head);

// What LedgerState's undo log holds (begin_undo()): how the state was when it began, and each
// touched entity as it was before its first change. (At namespace scope: clang cannot construct
// a nested class with default member initializers inside std::optional of the enclosing class.)
struct StateUndo {
  uint64_t last_seq = 0, events_applied = 0;
  std::string chain_head;
  int64_t max_term_price_micros = 0;
  uint32_t max_seats = 0;
  uint64_t next_ordinal = 0;
  size_t subs = 0, changed_subscriptions = 0, changed_customers = 0;
  std::vector<std::pair<uint32_t, Subscription>> subscriptions;
  std::vector<std::pair<std::string, Customer>> customers;
  std::vector<std::pair<std::string, std::optional<PendingLines>>> pending;
  size_t erased_rows = 0;
};

class LedgerState {
 public:
  // track_changes: remember what changed since the last take_changed_rows(), so the ledger can
  // write exactly those projection rows in the batch of the events that changed them. Replay
  // leaves it off. Either way memory grows with subscriptions and pending lines, never with the
  // number of events or issued invoices.
  explicit LedgerState(bool track_changes = false) : track_changes_(track_changes) {}

  // A partition of a parallel replay: it sees the catalog, the billing runs and only its own
  // customers' events, so the sequence and the chain are checked by the reader (check_link), not
  // here. Its rows are those of its customers; the meta row is the reader's to compose.
  static LedgerState partition() {
    LedgerState s;
    s.partition_ = true;
    return s;
  }

  // Some customers of a ledger, loaded from its rows (load_row, finish_load): the meta and
  // catalog rows, each chosen customer's row and the rows of all its subscriptions. It folds a
  // tail of the log whose events touch only those customers (and the catalog), and its changed
  // rows are then exactly those a fold of the whole state would write (a reader catching up
  // beside a writer, Ledger::open_rows_for_reading). Tracks changes.
  static LedgerState subset() {
    LedgerState s(/*track_changes=*/true);
    s.subset_ = true;
    return s;
  }

  // Folds one event. Returns OK, or DataLoss saying why the event cannot follow the state (a
  // broken log): a sequence gap, a broken hash chain (event.prev_hash must be chain_head()), an
  // impossible event; FailedPrecondition for an event the undo log could not undo (then nothing
  // was applied). event.hash must be set (the decoder sets it; writers take it from encode_event).
  // `prebuilt` is the invoice the billing run just built for this InvoiceIssued event, so it is
  // not built twice.
  [[nodiscard]] absl::Status apply(const Event& event, Invoice* prebuilt = nullptr);

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
  // The subscription subscription_ids()[slot] names, without a lookup by its id.
  const Subscription& subscription_in_slot(size_t slot) const { return subs_[slot]; }
  size_t subscription_count() const { return subs_.size(); }
  // Subscriptions and customers held: what a subset's memory grows with (a customer loaded in
  // part holds its lists and pending lines with few of its subscriptions).
  size_t loaded_entities() const { return subs_.size() + catalog_.customer_count(); }
  // Subscriptions in the whole ledger (in a subset, not only the loaded ones): the creation
  // ordinal the next one gets.
  uint64_t subscriptions_in_ledger() const { return subset_ ? next_ordinal_ : subs_.size(); }
  uint64_t stream_version(const Stream& stream) const;
  Date billing_clock() const { return billing_clock_; }
  uint64_t last_seq() const { return last_seq_; }
  // The hash of the last applied event: what the next event's prev_hash must be.
  const std::string& chain_head() const { return chain_head_; }
  uint64_t events_applied() const { return events_applied_; }
  uint64_t invoices_issued() const { return invoices_issued_; }
  const std::vector<InvoiceMismatch>& mismatches() const { return mismatches_; }
  const std::vector<ChargeLine>* pending_lines(const std::string& customer_id) const;
  // The sum of the customer's pending lines' amounts in absolute value (kept as lines come and
  // go: a command's amount check does not walk them).
  __int128 pending_magnitude(const std::string& customer_id) const;
  // The highest price any subscription's term has locked so far (a locked price may be one the
  // catalog has since replaced): with the catalog's highest price, a bound of every term amount.
  int64_t max_term_price_micros() const { return max_term_price_micros_; }
  // The most seats any subscription has held so far: with the highest price, a bound of every
  // term amount that does not walk a customer's subscriptions (never lower than a loaded one's).
  uint32_t max_seats() const { return max_seats_; }

  // ---- an undo log for a group of subscription events (an order's line items, a PATCH) ----
  // begin_undo() starts recording what each following subscription event changes (the first
  // time each subscription, customer and customer's pending lines are touched: a copy of how they
  // were); rollback() puts all of it back, end_undo() keeps it. The cost is that of the touched
  // entities, not of the state. REQUIRES: between begin_undo() and its end, only events of a
  // subscription stream are applied (apply() refuses others: nothing could undo them).
  void begin_undo();
  void rollback();
  void end_undo() { undo_.reset(); }

  // ---- projection rows (projections/projection_rows.cpp) ----
  using RowSink = std::function<void(std::string_view key, std::string_view value)>;
  using RowEraser = std::function<void(std::string_view key)>;
  // Puts the rows changed since the last call (subscriptions; customers, with the rows of the
  // subscriptions and pending lines they gained; the catalog; newly issued invoices) and the meta
  // row, erases the rows of the pending lines invoiced since, then forgets the changes.
  // REQUIRES: track_changes.
  void take_changed_rows(const RowSink& put, const RowEraser& erase);
  // Puts every row of the state except issued invoices (verify compares them with the stored ones);
  // a partition puts its own customers' rows and leaves the shared ones to the caller.
  struct RowSelection {
    std::function<bool(const std::string& customer_id)> owns_customer;  // empty: all
    bool catalog = true, meta = true;
  };
  void put_all_rows(const RowSink& put, const RowSelection& selection) const;
  void put_all_rows(const RowSink& put) const { put_all_rows(put, RowSelection{}); }
  // In a partition, the creation ordinal (over the whole log) of the next subscription it opens.
  void set_next_ordinal(uint64_t ordinal) { next_ordinal_ = ordinal; }
  // Rebuilds the state from stored rows: load_row() for each row, then finish_load(). Rows of
  // different kinds may come in any order; a customer's rows come in key order (its own row,
  // then those under it: projection_rows.h).
  // Returns OK, or why the rows cannot be used (then rebuild from the log instead): DataLoss for
  // unreadable or inconsistent rows, FailedPrecondition for rows of another format.
  [[nodiscard]] absl::Status load_row(std::string_view key, std::string_view value);
  [[nodiscard]] absl::Status finish_load();
  // A subset after finish_load() takes one more customer, decoded from its row (customer_row)
  // with every subscription its row lists, in that order (a writer loading what a command needs,
  // Ledger::Options::load_on_demand). REQUIRES: a subset, outside an undo group, the customer
  // not loaded yet. DataLoss when the rows do not fit together; then nothing was loaded.
  [[nodiscard]] absl::Status load_customer(const std::string& customer_id, CustomerRow&& row,
                                           std::vector<Subscription>&& subscriptions);
  // A customer loaded in part: its own row (lists, pending lines) and, one by one
  // (load_subscription_of), only some of its subscriptions. Enough to fold a subscription's own
  // transitions, which look at no other of the customer's (unless a renewal promotion could
  // apply: BILLING_RULES 12), and nothing else: invoicing, deciding a command or advancing the
  // customer needs it whole, so it is completed (complete_customer, once each of its
  // subscriptions is loaded) or dropped (without_customers) first. REQUIRES as load_customer.
  [[nodiscard]] absl::Status load_customer_in_part(const std::string& customer_id,
                                                   CustomerRow&& row);
  // One more subscription of a customer loaded in part, from its row. DataLoss when it does not
  // fit (not listed by its customer, already loaded, a bad ordinal).
  [[nodiscard]] absl::Status load_subscription_of(Subscription&& subscription);
  // A customer loaded in part whose subscriptions are all loaded becomes whole. DataLoss when
  // one is missing.
  [[nodiscard]] absl::Status complete_customer(const std::string& customer_id);
  bool loaded_in_part(const std::string& customer_id) const {
    return in_part_.contains(customer_id);
  }
  size_t customers_loaded_in_part() const { return in_part_.size(); }
  // A subset holding only what every command needs (the catalog, the meta row's counters, the
  // billing clock, stream versions of the catalog): what a writer keeps when it drops the
  // customers it loaded, once their rows are written.
  LedgerState without_customers() const;
  bool is_subset() const { return subset_; }

 private:
  void put_rows(const std::vector<uint32_t>& subscription_slots,
                const std::vector<std::string>& customer_ids, bool catalog, const RowSink& put,
                bool meta = true) const;
  // A customer's own row and the rows under it: all of them, or (only_new) those it gained
  // since they were last put.
  void put_customer_rows(const std::string& id, const Customer& c, const PendingLines* pending,
                         bool only_new, const RowSink& put) const;
  [[nodiscard]] absl::Status take_loading_customer();
  void mark_customer(const std::string& customer_id);
  void mark_subscription(uint32_t slot);
  void mark_catalog() { catalog_changed_ |= track_changes_; }
  void apply_invoice(const Event& event, const InvoiceIssued& e, Invoice* prebuilt);
  [[nodiscard]] absl::Status apply_subscription_event(const Event& event);
  LineSink sink_for(const std::string& customer_id);
  void save_subscription(uint32_t ordinal);
  void save_customer(const std::string& customer_id);
  void save_pending(const std::string& customer_id);
  // The customer of a stored row into the catalog, with its lists, stream version and pending
  // lines; returns it (its subscription_ordinals are the caller's to set).
  Customer* take_customer_row(CustomerRow&& row);
  void note_bounds(const Subscription& sub) {
    max_term_price_micros_ = std::max(max_term_price_micros_, sub.term.price_micros);
    max_seats_ = std::max(max_seats_, sub.seats);
  }

  bool track_changes_;
  bool partition_ = false;
  bool subset_ = false;
  uint64_t next_ordinal_ = 0;
  uint64_t meta_subscriptions_ = 0;  // the meta row's count, checked by finish_load()
  bool subs_by_ordinal_ = false;     // loading: rows go straight to their slot (meta came first)
  std::optional<CustomerRow> loading_;  // loading: the customer whose rows are being read
  absl::flat_hash_set<std::string> in_part_;  // customers loaded in part (lookup only)
  Catalog catalog_;
  // Flat hash tables: lookup only, never iterated for output (no hash order leaks). Nothing keeps
  // a reference into them across an insert.
  // Subscriptions by creation ordinal (a deque: stable addresses), with an id -> ordinal index.
  // Invoicing walks a customer's subscriptions by ordinal, with no hash lookup per subscription.
  std::deque<Subscription> subs_;
  absl::flat_hash_map<std::string, uint32_t> sub_index_;
  std::vector<std::string> subscription_order_;  // creation order
  absl::flat_hash_map<std::string, PendingLines> pending_;
  absl::flat_hash_map<std::string, uint64_t> stream_versions_;  // non-subscription streams
  uint64_t invoices_issued_ = 0;
  int64_t max_term_price_micros_ = 0;
  uint32_t max_seats_ = 0;
  std::vector<InvoiceMismatch> mismatches_;
  // Changes not yet taken as rows (only with track_changes).
  std::vector<uint32_t> changed_subscriptions_;  // slots in subs_
  std::vector<std::string> changed_customers_;
  bool catalog_changed_ = false;
  std::vector<std::string> erased_rows_;  // pending lines invoiced that have rows
  std::vector<IssuedInvoice> issued_since_;
  Date billing_clock_;
  uint64_t last_seq_ = 0;
  std::string chain_head_;
  uint64_t events_applied_ = 0;

  std::optional<StateUndo> undo_;
};

}  // namespace subledger
