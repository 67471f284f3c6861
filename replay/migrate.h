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

}  // namespace subledger
