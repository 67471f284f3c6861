// Store: the RocksDB database behind the ledger, and the only code that includes rocksdb/*.h.
//
// Column families:
//   events       big-endian sequence number -> Cap'n Proto event (the log; gap-free)
//   streams      stream kind, id, 0, big-endian version -> big-endian sequence number
//   idempotency  request id -> payload hash (32 bytes) + the original result line
//   projections  the LedgerState as rows (projections/projection_rows.h) and "checkpoint" -> the
//                last applied sequence, always written in the batch that makes them true
// Everything one command writes goes into one WriteBatch; commit() writes it atomically with the
// write-ahead log synced, so nothing acknowledged after commit() returns is ever lost.
// One Store per process and directory (RocksDB takes a lock); one thread stages and commits (the
// background write of commit_async is the only other thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"

namespace subledger {

class Store {
 public:
  // Opens or creates the database in `dir`. On failure returns nullptr and sets `error`.
  static std::unique_ptr<Store> open(const std::string& dir, std::string& error);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- writes: staged, then committed together ----
  void stage_event(uint64_t seq, const Stream& stream, uint64_t version, std::string_view bytes);
  void stage_idempotency(const std::string& request_id, std::string_view record);
  void stage_projection(std::string_view key, std::string_view value);
  size_t staged_bytes() const;
  size_t staged_count() const;
  // Writes everything staged as one atomic batch; sync: the WAL is fsynced first. "" on success.
  std::string commit(bool sync = true);
  // Hands everything staged to a background thread and returns at once, so the caller can stage
  // the next batch while this one is written (pipelined group commit on the second core). At most
  // one batch is in flight: this first waits for the previous one. wait_written() blocks until the
  // batch in flight is durable and returns its error ("" when none is in flight). Reads made
  // meanwhile may not see the batch in flight.
  void commit_async(bool sync = true);
  std::string wait_written();
  void discard_staged();

  // ---- reads ----
  uint64_t last_seq() const;  // 0 for an empty log
  std::optional<std::string> event_bytes(uint64_t seq) const;
  // Calls fn(seq, bytes) for each event after `after_seq`, in order, until fn returns false.
  // Returns "" or a read error.
  std::string scan_events(uint64_t after_seq,
                          const std::function<bool(uint64_t, std::string_view)>& fn) const;
  std::vector<uint64_t> stream_seqs(const Stream& stream) const;
  std::optional<std::string> idempotency(const std::string& request_id) const;
  std::optional<std::string> projection(std::string_view key) const;
  // Calls fn(key, value) for each projection row whose key starts with `prefix`, in key order,
  // until fn returns false. Returns "" or a read error.
  std::string scan_projections(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn) const;

  // Overwrites one stored event value as-is (used by tests that prove corruption is detected).
  std::string overwrite_event_for_test(uint64_t seq, std::string_view bytes);
  std::string delete_event_for_test(uint64_t seq);
  // A consistent copy of the database in `backup_dir` via RocksDB's BackupEngine.
  std::string backup(const std::string& backup_dir);
  // Backs up the ledger in `db_dir`, even while another process has it open (then through a
  // read-only secondary instance, as of the last batch that process made durable).
  static std::string backup_of(const std::string& db_dir, const std::string& backup_dir,
                               bool& was_in_use, uint64_t& last_seq);
  static std::string restore(const std::string& backup_dir, const std::string& db_dir);
  uint64_t disk_bytes() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string be64(uint64_t v);
uint64_t from_be64(std::string_view s);

}  // namespace subledger
