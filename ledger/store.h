// Store: the RocksDB database behind the ledger, and the only code that includes rocksdb/*.h.
//
// Column families (every key built from an id goes through key_component(), so no id's keys can
// be a prefix of another id's keys, whatever bytes a future id grammar admits):
//   default      "format" -> the on-disk format (kLedgerFormat), written when the ledger is created;
//                "derived" -> the last sequence number the stream index and the idempotency
//                records cover (written with them);
//                "unfinished_run" -> a billing run committed in parts and not yet ended (its
//                progress, in the synced batch of each part; removed in the batch of its end)
//   events       big-endian sequence number -> Cap'n Proto event (the log; gap-free)
//   streams      stream kind, key_component(id), big-endian version -> big-endian sequence number
//   idempotency  key_component(request id) -> payload hash (32 bytes) + the original result line
//   projections  the LedgerState as rows (projections/projection_rows.h) and "checkpoint" -> the
//                last applied sequence, always written in the batch that makes them true
//
// Durability (format 3): a commit is two writes. The log batch (the events, and the few records
// that cannot be derived from the log: the server's HTTP answers, a command accepted without an
// event) is written with the write-ahead log synced: nothing acknowledged after commit() returns
// is ever lost. Then the derived batch (stream index entries, idempotency records, projection
// rows, and "derived"/"checkpoint" saying how far they reach) is written without the WAL: it
// reaches disk only with a flush, and all column families flush together (atomic_flush), so what
// a crash leaves of it is a consistent prefix, as of its own "derived" and "checkpoint". Opening
// catches the rest up from the log (Ledger::open, before any command is decided; readers in
// memory, see stream_seqs).
//
// Readers open read-only: they never create, lock or change a file of the ledger (no WAL, no
// info LOG), work beside a writer (through a secondary instance whose files live outside the
// ledger), and may lay an in-memory overlay of projection rows over the stored ones (rows caught
// up to the last durable event without writing them).
// Errors: absl::Status; NotFound means "no such key", anything else is an I/O or corruption error.
// One Store per process and directory for writers (RocksDB takes a lock); one thread stages and
// commits (the background write of commit_async is the only other thread).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "projections/projection_rows.h"  // key_component()

namespace subledger {

// The on-disk format this build reads and writes. Format 1 (no "format" key) keyed streams as
// kind + id + '\0' + version and request ids and row ids raw. Format 2 wrote every key of a
// command in its synced batch; format 3 syncs only the log and writes what is derived from it
// without the WAL (the "derived" mark says how far it reaches; events carry their command's
// payload hash). DO NOT reuse a number.
inline constexpr int kLedgerFormat = 3;

class Store {
 public:
  enum class Access {
    kRead,           // read-only; the ledger must exist; never writes a file in its directory
    kWrite,          // the ledger must exist
    kCreateOrWrite,  // writers that may start a ledger: apply, bill, demo, restore
  };
  // How many table files a reader expects to read. A query of a few keys (state, explain) keeps
  // at most 10 table files open and opens 2 of them at open; a listing, an export or a
  // verification keeps up to 246 open and opens 16 of them at open.
  enum class Reads { kMany, kFew };
  struct OpenOptions {
    Access access = Access::kRead;
    // Open a ledger of an older format (only `migrate` does, to rewrite it).
    bool any_format = false;
    // Open a ledger whose index rewrite was interrupted (only `rebuild` and `migrate`, to finish it).
    bool repairing_index = false;
    // A table file of a derived column family (projections, streams, idempotency) so damaged
    // that RocksDB cannot open the ledger is dropped with its column family (only `rebuild`,
    // which then re-derives it from the log). Without this the error names `subledger rebuild`.
    bool drop_damaged_derived = false;
    Reads reads = Reads::kMany;  // for Access::kRead
  };

  // Errors: NotFound "no ledger at DIR"; FailedPrecondition for an older format (naming
  // `subledger migrate`) or a ledger held by another writer; DataLoss for a damaged ledger.
  // A writer first checks every block of the log's table files against its checksum (about
  // 0.05 s per 40 MB of events) and refuses a log that cannot be read, naming the first sequence
  // number that cannot: a damaged log is never extended. Refusing changes no file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> open(const std::string& dir,
                                                                    OpenOptions options);
  // For tests: opens (creating if needed) for writing; on failure nullptr and `error`.
  static std::unique_ptr<Store> open(const std::string& dir, std::string& error);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  bool read_only() const;
  // From now on, this process's compactions run at the lowest CPU priority (nice 19; RocksDB's
  // thread pools belong to the process, not to a ledger). For a command that writes a batch and
  // ends (apply, bill): on a machine of two cores its compaction threads otherwise take turns
  // with the synced writes and flushes on the core deciding leaves, and the next batch waits. A
  // month's whole-state billing run at 3M subscriptions 23.4 -> 20.0 s, the first month's apply
  // at 1M 0.95x (medians of 3 and 2 pairs); as SCHED_IDLE the same. Not for a server under
  // sustained load: with every core busy they would get no time, level-0 tables would pile up
  // and RocksDB would slow the writes down (`serve`'s saturated writes varied too much in 5 runs
  // to tell). Flushes keep their priority: a memtable that cannot be flushed stops the writes.
  static void run_compactions_at_low_priority();
  // The on-disk format of this ledger (1: written before formats were recorded).
  int format() const;

  // ---- writes: staged, then committed together ----
  // The event goes to the log batch, its stream index entry to the derived batch.
  void stage_event(uint64_t seq, const Stream& stream, uint64_t version, std::string_view bytes);
  // An entry of the stream index alone (derived; catching the index up from the log).
  void stage_stream_entry(const Stream& stream, uint64_t version, uint64_t seq);
  // `derivable`: the record can be derived again from the log (an accepted command with events,
  // whose first event carries its payload hash): it goes to the derived batch; else (the server's
  // HTTP answers, a command accepted without an event) to the synced log batch.
  void stage_idempotency(const std::string& request_id, std::string_view record, bool derivable);
  void stage_projection(std::string_view key, std::string_view value);
  void stage_projection_erase(std::string_view key);
  // The stream index and idempotency records now reach `seq` (written with the derived batch).
  void stage_derived_mark(uint64_t seq);
  // While held, the mark written with each commit goes no further than `seq`: a command whose
  // events are committed in parts (a billing run) is never split by the mark, so its record is
  // derived whole once its last part is written. nullopt releases it.
  void hold_derived_mark(std::optional<uint64_t> seq);
  // A billing run committed in parts (Ledger::run_billing): its progress record goes to the
  // synced log batch, beside the part's events, so the ledger holds one exactly while the log
  // holds a run without its end. An empty `record` removes it (in the batch of the run's end).
  void stage_unfinished_run(std::string_view record);
  size_t staged_bytes() const;
  size_t staged_count() const;
  // Writes the log batch (sync: the WAL is fsynced first), then the derived batch without the WAL.
  [[nodiscard]] absl::Status commit(bool sync = true);
  // Hands everything staged to a background thread and returns at once, so the caller can stage
  // the next batch while this one is written (pipelined group commit on the second core). At most
  // one batch is in flight: this first waits for the previous one. wait_written() blocks until the
  // batch in flight is durable and returns its error (OK when none is in flight). Reads made
  // meanwhile may not see the batch in flight.
  void commit_async(bool sync = true);
  [[nodiscard]] absl::Status wait_written();
  void discard_staged();
  // A mark in what is staged (at most one at a time): drop what was staged after it, or keep it.
  void mark_staged();
  void drop_staged_since_mark() noexcept;
  void keep_staged_since_mark() noexcept;

  // ---- reads ----
  uint64_t last_seq() const;  // 0 for an empty log (or an unreadable last key: see scan_events)
  [[nodiscard]] absl::StatusOr<std::string> event_bytes(uint64_t seq) const;
  // Calls fn(seq, bytes) for each event after `after_seq`, in order, until fn returns false.
  [[nodiscard]] absl::Status scan_events(
      uint64_t after_seq, const std::function<bool(uint64_t, std::string_view)>& fn) const;
  // How far the stored stream index and idempotency records reach (0: nowhere yet).
  [[nodiscard]] absl::StatusOr<uint64_t> derived_mark() const;
  // The progress record of a billing run the log holds without its end; NotFound when none.
  [[nodiscard]] absl::StatusOr<std::string> unfinished_run() const;
  // The sequence numbers of a stream's events, in order. A reader whose stored index lags the
  // log (a writer beside it, or a crash before the index was flushed) first folds the index
  // entries of the events after the derived mark into memory, once.
  [[nodiscard]] absl::StatusOr<std::vector<uint64_t>> stream_seqs(const Stream& stream) const;
  // NotFound: a new request id. Any other error must fail the command (never "new").
  [[nodiscard]] absl::StatusOr<std::string> idempotency(const std::string& request_id) const;
  // A projection row (the overlay first, then the stored one). NotFound when absent.
  [[nodiscard]] absl::StatusOr<std::string> projection(std::string_view key) const;
  // The same for several rows at once (one batched lookup: a customer's subscriptions), in the
  // order of `keys`.
  [[nodiscard]] std::vector<absl::StatusOr<std::string>> projections(
      const std::vector<std::string>& keys) const;
  // Calls fn(key, value) for each projection row whose key starts with `prefix`, in key order,
  // until fn returns false (overlay rows replace stored ones). A long scan reads ahead (4 MB);
  // a short one (a customer's rows) does not.
  enum class Scan { kLong, kShort };
  [[nodiscard]] absl::Status scan_projections(
      std::string_view prefix, const std::function<bool(std::string_view, std::string_view)>& fn,
      Scan length = Scan::kLong) const;
  // Rows held in memory in front of the stored ones (readers' catch-up); never written. An
  // erased row hides the stored one.
  void overlay_projection(std::string_view key, std::string_view value);
  void overlay_projection_erase(std::string_view key);
  // From now on the stored rows are ignored: only the overlay is read (a reader that found them
  // unreadable and folds the whole log in memory instead).
  void ignore_stored_projections();

  // Every key of every table read once with its block checksums verified.
  [[nodiscard]] absl::Status verify_checksums() const;
  // Checks every block of the log's table files against its checksum, but those `whole` names
  // (their identities, table_identity in store.cpp: a file changed since is checked again).
  // Returns OK, with `whole` then naming every table of the log, or the error, with
  // `first_bad_seq` the first sequence number that cannot be read.
  [[nodiscard]] absl::Status check_events_readable(std::set<std::string>& whole,
                                                   uint64_t& first_bad_seq) const;

  // ---- derived data and format (rebuild, migrate) ----
  // Drops every projection row (the column family, with any damaged table file of it); a
  // read-only store ignores the stored rows instead (ignore_stored_projections).
  [[nodiscard]] absl::Status reset_projections();
  // Replaces the stream index and the idempotency records with `streams` (stream, version, seq)
  // and `records` (request id -> record), marks them derived through `through_seq` and stamps
  // kLedgerFormat. The old ones are dropped with
  // their table files (damaged or not), then the new ones written in one synced batch; a marker
  // written first makes every open but `rebuild`/`migrate` refuse the ledger until that batch.
  struct StreamEntry {
    Stream stream;
    uint64_t version = 0, seq = 0;
  };
  [[nodiscard]] absl::Status rewrite_index(const std::vector<StreamEntry>& streams,
                                           const std::map<std::string, std::string>& records,
                                           uint64_t through_seq);
  // Every stored idempotency record, keyed by request id, of either format.
  [[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> all_idempotency_records()
      const;

  // Overwrites one stored event value as-is (used by tests that prove corruption is detected).
  [[nodiscard]] absl::Status overwrite_event_for_test(uint64_t seq, std::string_view bytes);
  [[nodiscard]] absl::Status delete_event_for_test(uint64_t seq);
  // Writes a raw key into a column family ("default", "streams", ...; tests of the old format).
  [[nodiscard]] absl::Status put_raw_for_test(const std::string& cf, std::string_view key,
                                              std::string_view value);
  [[nodiscard]] absl::Status delete_raw_for_test(const std::string& cf, std::string_view key);
  // Closing then drops what was written without the WAL, as a crash (kill -9) does.
  void drop_unsynced_at_close_for_test();

  // A consistent copy of the database in `backup_dir` via RocksDB's BackupEngine.
  [[nodiscard]] absl::Status backup(const std::string& backup_dir);
  // Backs up the ledger in `db_dir`, even while another process has it open (then through a
  // read-only secondary instance, as of the last batch that process made durable).
  [[nodiscard]] static absl::Status backup_of(const std::string& db_dir,
                                              const std::string& backup_dir, bool& was_in_use,
                                              uint64_t& last_seq);
  struct BackupInfo {
    uint32_t id = 0;
    int64_t timestamp = 0;  // seconds since the epoch, when it was taken
    uint64_t size_bytes = 0;
    uint32_t files = 0;
  };
  [[nodiscard]] static absl::StatusOr<std::vector<BackupInfo>> list_backups(
      const std::string& backup_dir);
  // Restores backup `backup_id` (0: the latest) into `db_dir`, holding the ledger's lock so no
  // process uses it meanwhile. Refuses a ledger in use, and a non-empty `db_dir` unless `force`.
  [[nodiscard]] static absl::Status restore(const std::string& backup_dir,
                                            const std::string& db_dir, uint32_t backup_id,
                                            bool force);
  uint64_t disk_bytes() const;

 // The RocksDB handles (store.cpp only).
  struct Impl;

 private:
  [[nodiscard]] absl::Status drop_and_recreate(int cf);
  [[nodiscard]] absl::Status build_stream_overlay() const;
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> open_once(const std::string& dir,
                                                                         OpenOptions options);
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string be64(uint64_t v);
uint64_t from_be64(std::string_view s);

}  // namespace subledger
