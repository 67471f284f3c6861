// Replay and audit: rebuild every projection from the stored log alone, prove each issued invoice
// against the hash recorded when it was issued, and answer "what did this look like on that date".
//
// Replay decodes each event once into a reused buffer and folds it into fresh LedgerStates that
// keep no invoice lines, so its memory does not grow with the number of events or invoices.
// Read-only on the store; replay_log uses a reader thread and a thread per lane.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "ledger/store.h"
#include "projections/ledger_state.h"

namespace subledger {

struct ReplayReport {
  uint64_t events = 0;
  uint64_t invoices_checked = 0;
  double seconds = 0;
  std::vector<InvoiceMismatch> mismatches;
  std::string
      error;  // a broken log: undecodable event, sequence gap, broken chain, impossible event
  uint64_t first_bad_seq = 0;  // with an error: the first sequence number that is not as written
  // With verify: the stored projection rows compared with the ones the replay rebuilt, and every
  // stored invoice row (what `invoices` prints) checked against the hash its event recorded.
  bool rows_checked = false;
  uint64_t rows_compared = 0, invoice_rows_checked = 0;
  uint64_t rows_behind = 0;                 // the checkpoint lags the log (caught up on next open)
  bool rows_of_older_format = false;        // not compared: rebuilt from the log on next open
  std::vector<std::string> row_mismatches;  // keys of rows that differ (at most a few dozen)
  double rows_seconds = 0;
  bool ok() const { return error.empty() && mismatches.empty() && row_mismatches.empty(); }
  std::string to_json(bool verify) const;
};

// Progress callback: events done so far (called every few hundred thousand events).
using ReplayProgress = std::function<void(uint64_t events_done)>;

// Rebuilds every projection from the log; with verify, also checks the stored rows (above).
// workers > 1: one thread reads, decodes and checks the chain; customers are split across
// `workers` lanes that fold in parallel (a customer's subscriptions and invoices share a lane;
// catalog events and billing runs go to every lane). The result is the same as with 1.
ReplayReport replay_log(const Store& store, bool verify, const ReplayProgress& progress = {},
                        size_t workers = 2);

// The same fold over event values read from elsewhere, one hex-encoded value per line in
// sequence order (a "\\x" or "\\\\x" prefix is skipped: how PostgreSQL prints bytea, and COPY's
// text form). The bench harness uses it to feed scans of peer stores through the same projection
// code.
ReplayReport replay_hex_values(std::istream& in, const ReplayProgress& progress = {});

// The subscription as it stood at the end of `as_of`, from its own events dated on or before that
// date, plus what time had brought by then (BILLING_RULES 5), judged with today's price list.
// A renewal not yet in the log takes the promotion a billing run would choose for it now
// (BILLING_RULES 12), judged against `state`, which must then hold the customer and its
// subscriptions; with `state` nullptr (only the catalog is known) it takes none:
// previews_promoted_renewal() says when that would differ.
std::optional<Subscription> subscription_as_of(const Store& store, const Catalog& catalog,
                                               const std::string& subscription_id, Date as_of,
                                               std::string& error,
                                               const LedgerState* state = nullptr);
// Whether subscription_as_of(..., as_of) of `latest` (its newest row) previews an automatic
// renewal while the catalog defines a promotion: then it needs the whole state.
bool previews_promoted_renewal(const Subscription& latest, const Catalog& catalog, Date as_of);

// Every event of a stream, decoded, in version order.
std::vector<Event> stream_events(const Store& store, const Stream& stream, std::string& error);

}  // namespace subledger
