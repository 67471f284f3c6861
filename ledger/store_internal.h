// What store.cpp and backup.cpp share: the RocksDB handles behind a Store and the one
// translation of a rocksdb::Status. Included by those two files only (the only code that includes
// rocksdb/*.h).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <absl/status/status.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ledger/store.h"

namespace subledger {

// The one place a rocksdb::Status becomes ours. NotFound stays NotFound (a missing key); a
// checksum or format failure is DataLoss; a full disk is ResourceExhausted; the rest Unavailable.
absl::Status to_status(const rocksdb::Status& s, std::string_view what);

// Reads that check every block's checksum.
rocksdb::ReadOptions checked_reads();

// The one file of a ledger's directory that is ours, not RocksDB's: the log's table files a writer
// found whole (store.cpp, check_events_readable), and the name it is written under first.
inline constexpr const char* kWholeEventTablesFile = "SUBLEDGER-WHOLE-EVENT-TABLES";
inline constexpr const char* kWholeEventTablesTemporary = "SUBLEDGER-WHOLE-EVENT-TABLES.tmp";

// The store's one writing thread, started with its first batch and kept until the store closes:
// a batch costs a wake-up, not a thread (spawning one per synced write took about 1 ms here).
class BatchWriter {
 public:
  BatchWriter() = default;
  ~BatchWriter();  // waits for the job running, then stops the thread
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Runs `job` on the writing thread. REQUIRES: the previous job's result was collected.
  void start(std::function<absl::Status()> job);
  // A job that already has its result (nothing to write): wait() returns it.
  void finish_now(absl::Status result);
  // Blocks until the job started last has finished and returns its result, once (then OK).
  [[nodiscard]] absl::Status wait();

 private:
  void run();
  std::mutex mutex_;
  std::condition_variable changed_;
  std::function<absl::Status()> job_;  // set: waiting for the thread to take it
  bool running_ = false, stopping_ = false;
  std::optional<absl::Status> result_;  // of the last job, until wait() collects it
  std::thread thread_;
};

struct Store::Impl {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::WriteBatch batch;    // the log: written with the WAL synced
  rocksdb::WriteBatch derived;  // what the log determines: written without the WAL
  struct Batches {
    rocksdb::WriteBatch log, derived;
  };
  std::shared_ptr<Batches> written;  // handed to the writer last; reused once it is written
  size_t staged = 0, staged_at_mark = 0;
  // Readers whose stored index lags the log: (stream key + version) -> seq, folded once.
  mutable std::map<std::string, uint64_t, std::less<>> stream_overlay;
  mutable bool stream_overlay_built = false;
  // The last sequence number staged, and the one last put into a derived batch as "derived".
  uint64_t derived_mark = 0, derived_mark_at_mark = 0, derived_mark_written = 0;
  std::optional<uint64_t> derived_mark_held;  // hold_derived_mark
  std::string dir;
  std::string secondary_dir;  // a reader beside a writer: its own files, outside the ledger
  bool read_only = false;
  int format = kLedgerFormat;
  // Readers' caught-up rows; nullopt: a row erased (a pending line invoiced in the tail).
  std::map<std::string, std::optional<std::string>, std::less<>> overlay;
  bool overlay_only = false;  // stored rows ignored (unreadable; folded in memory instead)
  BatchWriter writer;  // writes commit_async's batches
  bool wrote = false;

  ~Impl();
};

}  // namespace subledger
