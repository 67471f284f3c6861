// What store.cpp and backup.cpp share: the RocksDB handles behind a Store and the one
// translation of a rocksdb::Status. Included by those two files only (the only code that includes
// rocksdb/*.h).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <absl/status/status.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/store.h"

namespace subledger {

// The one place a rocksdb::Status becomes ours. NotFound stays NotFound (a missing key); a
// checksum or format failure is DataLoss; a full disk is ResourceExhausted; the rest Unavailable.
absl::Status to_status(const rocksdb::Status& s, std::string_view what);

// Reads that check every block's checksum.
rocksdb::ReadOptions checked_reads();

struct Store::Impl {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::WriteBatch batch;    // the log: written with the WAL synced
  rocksdb::WriteBatch derived;  // what the log determines: written without the WAL
  size_t staged = 0, staged_at_mark = 0;
  // Readers whose stored index lags the log: (stream key + version) -> seq, folded once.
  mutable std::map<std::string, uint64_t, std::less<>> stream_overlay;
  mutable bool stream_overlay_built = false;
  // The last sequence number staged, and the one last put into a derived batch as "derived".
  uint64_t derived_mark = 0, derived_mark_at_mark = 0, derived_mark_written = 0;
  std::string dir;
  std::string secondary_dir;  // a reader beside a writer: its own files, outside the ledger
  bool read_only = false;
  int format = kLedgerFormat;
  std::map<std::string, std::string, std::less<>> overlay;  // readers' caught-up rows
  bool overlay_only = false;  // stored rows ignored (unreadable; folded in memory instead)
  std::future<absl::Status> in_flight;  // the batch being written by commit_async
  bool wrote = false;

  ~Impl();
};

}  // namespace subledger
