// Migration: brings a ledger of an older on-disk format (ledger/store.h kLedgerFormat) to the
// current one by rewriting everything derived from the log, never the log itself:
//   - the stream index, from the events' streams and versions;
//   - the idempotency records, re-keyed, and re-derived from the events for any request id the
//     log holds without a record, so a command retried across the change is still answered as a
//     duplicate (or as a conflict), never applied twice;
//   - the projection rows and checkpoint, dropped and rebuilt by folding the log.
// Crash-safe in any order of failure: the rows are dropped first, then the index and the new
// format are written in one synced batch; until that batch the ledger is still of the old format
// and `migrate` can simply be run again.
// Takes the ledger's lock (a writer); one thread.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <string>

namespace subledger {

struct MigrationReport {
  int from_format = 0, to_format = 0;
  uint64_t events = 0, stream_entries = 0, idempotency_records = 0, records_rederived = 0;
  bool migrated = false;  // false: it was of the current format already
  std::string to_json() const;
};

[[nodiscard]] absl::StatusOr<MigrationReport> migrate_ledger(const std::string& dir);

// What rederive_index rewrote.
struct IndexReport {
  uint64_t events = 0, stream_entries = 0, idempotency_records = 0, records_rederived = 0;
  bool records_were_unreadable = false;  // none could be kept: every one was re-derived
};

// Rewrites the stream index from the log, and the idempotency records: the readable ones kept
// (they hold the original result lines), one re-derived from the events for every request id of
// the log without one (all of them when the stored records cannot be read), so a retried command
// is answered as a duplicate with its seq_first/seq_last. Used by `migrate` and `rebuild`.
// REQUIRES: `store` open for writing (with repairing_index, to finish an interrupted rewrite).
class Store;
[[nodiscard]] absl::StatusOr<IndexReport> rederive_index(Store& store);

}  // namespace subledger
