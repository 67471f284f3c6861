#include "ledger/store.h"

#include "ledger/store_internal.h"

#include <rocksdb/cache.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cassert>
#include <cstdarg>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "events/codec.h"

namespace subledger {

namespace fs = std::filesystem;

// The one place a rocksdb::Status becomes ours. NotFound stays NotFound (a missing key); a
// checksum or format failure is DataLoss; a full disk is ResourceExhausted; the rest Unavailable.
absl::Status to_status(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  // A read-only file system or a directory we may not write is not "in use": both also fail on
  // the lock file (its name is in the message), so they are told apart first, by errno's text.
  const std::string text = s.ToString();
  if (s.IsIOError() && (text.find("Read-only file system") != std::string::npos ||
                        text.find("Permission denied") != std::string::npos ||
                        text.find("Operation not permitted") != std::string::npos))
    return absl::PermissionDeniedError(message);
  if (s.IsIOError() && text.find("lock") != std::string::npos)
    return absl::FailedPreconditionError(message);
  return absl::UnavailableError(message);
}

rocksdb::ReadOptions checked_reads() {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;  // every block read is checked: a flipped byte is an error
  return ro;
}

namespace {

// RocksDB's default info log is a file in the ledger's directory: readers must not write there,
// and on a full disk its file logger aborts the process. The ledger reports its own errors (each
// failing call returns one), so RocksDB's diagnostics are dropped.
class SilentLogger : public rocksdb::Logger {
 public:
  SilentLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::FATAL_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

std::shared_ptr<rocksdb::Logger> silent_logger() {
  static auto logger = std::make_shared<SilentLogger>();
  return logger;
}

constexpr const char* kColumnFamilies[] = {"default", "events", "streams", "idempotency",
                                           "projections"};
enum Cf { kDefault = 0, kEvents, kStreams, kIdempotency, kProjections, kCfCount };
constexpr const char* kFormatKey = "format";
// How far the stream index and the idempotency records reach (written with them, without the WAL).
constexpr const char* kDerivedKey = "derived";
// A billing run committed in parts and not yet ended: its progress (Ledger::run_billing).
constexpr const char* kUnfinishedRunKey = "unfinished_run";
// Present while the stream index and idempotency records are being rewritten (rewrite_index).
constexpr const char* kIndexRebuildKey = "index_rebuild_in_progress";

std::string stream_prefix(const Stream& s) {
  std::string key(1, static_cast<char>(s.kind));
  key += key_component(s.id);
  return key;
}

// Who opens: a writer (apply, bill, serve...) or a reader (a query: one process, a few reads).
enum class Role { kWriter, kReader };

// Readers' table reads go through one small block cache that also holds the index and filter
// blocks of the tables they open (a writer keeps them in the table cache, outside any bound).
constexpr size_t kReaderBlockCacheBytes = 32 << 20;
// Files a reader keeps open at once, table files and 10 others (RocksDB's count). RocksDB opens
// min(16, tables / 4) table files at open: a query of a few keys (Store::Reads::kFew) gets 20, so
// 10 tables and 2 opened at open: `state` at 3M subscriptions 0.90x (farm-bench medians, 40 pairs),
// while a listing or `replay --verify`, which read every table, keep theirs open.
constexpr int kReaderOpenFiles = 256;
constexpr int kFewReadsOpenFiles = 20;  // RocksDB's least
constexpr int kWriterOpenFiles = 8192;

// In 4 shards of 8 MB, not RocksDB's default of 64 of 512 KB: a block larger than its shard is
// let go as soon as it is read, and a table flushed from one large batch (the rows a format
// upgrade rebuilds: 290-360 MB tables at 3M subscriptions) has an index block of 0.8-1 MB, which
// an `explain` then read and checksummed four times (5.7 MB read for a one-line invoice). A query
// reads from one thread; `replay --verify`'s few workers share 4 locks.
constexpr int kReaderBlockCacheShardBits = 2;

std::shared_ptr<rocksdb::Cache> reader_block_cache() {
  static std::shared_ptr<rocksdb::Cache> cache =
      rocksdb::NewLRUCache(kReaderBlockCacheBytes, kReaderBlockCacheShardBits);
  return cache;
}

rocksdb::ColumnFamilyOptions table_options(std::string_view cf_name, Role role = Role::kWriter) {
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.compression = rocksdb::kLZ4Compression;
  cf_options.write_buffer_size = 64 << 20;
  // Tables of 16 MB rather than 64: a process reads the whole index block of each table its keys
  // fall in (about 1/300 of the table; a query's are never cached across processes), and a
  // listing's 32 MB block cache held too few of the larger ones. At 3M subscriptions, the same
  // rows compacted each way (medians of 40 runs): the rows check of `state` (checkpoint and meta
  // rows) 3.9 ms with 64 MB tables, 0.43 with 16, 0.35 with 8, whose manifest of 367 tables
  // instead of 184 cost the open 0.9 ms more; the first 300k invoices of `invoices` 38.6 s -> 6.3.
  // Compaction moves the same bytes.
  cf_options.target_file_size_base = 16 << 20;
  if (cf_name == kColumnFamilies[kIdempotency] && role == Role::kWriter) {
    // Every command looks its request id up before it is decided, and a new one is nearly always
    // absent: a whole-key Bloom filter over the memtable answers that without a skip-list search
    // (it was 8% of the deciding thread's time in apply). Memory: 2% of the write buffer.
    cf_options.memtable_prefix_bloom_size_ratio = 0.02;
    cf_options.memtable_whole_key_filtering = true;
  }
  rocksdb::BlockBasedTableOptions table;
  table.block_size = 16 * 1024;
  // Index blocks as a query process meets them: each table it touches has its whole index block
  // read, checksummed and (by default) LZ4-decompressed once per process. Uncompressed, they need
  // no LZ4 pass: `state` at 1M subscriptions 0.86x (farm-bench medians of 30 pairs, the same rows
  // compacted both ways). A restart point every 16 index keys as well gained nothing more (0.86x)
  // and costs every seek in a long-lived process (the server) a scan of up to 16 keys. Tables
  // written before keep their layout (it is recorded in each table) until compaction rewrites them.
  table.enable_index_compression = false;
  if (role == Role::kWriter) {
    // Every new request id is looked up before it is decided and is nearly always absent: a
    // Bloom filter answers those lookups without reading table blocks (also sub/ and inv/ rows).
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  } else {
    // A reader opens a few tables for a few reads: their index blocks are loaded into the
    // (bounded) block cache when first needed, not held for every table it ever touches. It
    // reads no filter: a query's keys are nearly all present, and a table's whole filter block
    // (hundreds of KB at 1M subscriptions, read and checksummed) cost more than the one 16 KB
    // data block it could spare, and in a 32 MB cache they evicted each other: replay --verify's
    // check of 1.19M stored rows at 1M subscriptions took 280 s with filters, 13 s without.
    // state / explain at 1M: 31 -> 21 / 37 -> 26 ms (medians of 30 pairs); no change at 30k.
    table.block_cache = reader_block_cache();
    table.cache_index_and_filter_blocks = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
  }
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf_options;
}

// What is in `dir` before opening: nothing (a ledger may be created), a ledger (CURRENT names its
// manifest), or files without CURRENT (a damaged ledger, or not a ledger: never created over).
enum class DirState { kAbsent, kLedger, kOther };

absl::StatusOr<DirState> dir_state(const std::string& dir) {
  std::error_code ec;
  auto status = fs::status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    return absl::UnavailableError("cannot read " + dir + ": " + ec.message());
  if (!fs::exists(status)) return DirState::kAbsent;
  if (!fs::is_directory(status))
    return absl::FailedPreconditionError(dir + " is not a directory (--db names a ledger directory)");
  if (fs::exists(fs::path(dir) / "CURRENT", ec)) return DirState::kLedger;
  bool empty = fs::is_empty(dir, ec);
  if (ec) return absl::UnavailableError("cannot read " + dir + ": " + ec.message());
  return empty ? DirState::kAbsent : DirState::kOther;
}

}  // namespace

std::string be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}

uint64_t from_be64(std::string_view s) {
  assert(s.size() == 8);
  uint64_t v = 0;
  for (unsigned char c : s) v = (v << 8) | c;
  return v;
}

BatchWriter::~BatchWriter() {
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !job_ && !running_; });
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BatchWriter::start(std::function<absl::Status()> job) {
  {
    std::lock_guard lock(mutex_);
    assert(!job_ && !running_ && !result_);
    // The thread first: if it cannot be made (std::system_error), no job is left waiting for it.
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    job_ = std::move(job);
  }
  changed_.notify_all();
}

void BatchWriter::finish_now(absl::Status result) {
  std::lock_guard lock(mutex_);
  assert(!job_ && !running_ && !result_);
  result_ = std::move(result);
}

absl::Status BatchWriter::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !job_ && !running_; });
  absl::Status result = result_.value_or(absl::OkStatus());
  result_.reset();
  return result;
}

void BatchWriter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return job_ || stopping_; });
    if (!job_) return;  // stopping, nothing left
    std::function<absl::Status()> job = std::move(job_);
    job_ = nullptr;
    running_ = true;
    lock.unlock();
    absl::Status result;
    try {
      result = job();
    } catch (const std::exception& e) {  // std::bad_alloc: the batch may be partly written
      result = absl::InternalError(std::string("write to the ledger failed: ") + e.what());
    }
    lock.lock();
    running_ = false;
    result_ = std::move(result);
    changed_.notify_all();
  }
}

Store::Impl::~Impl() {
  writer.wait().IgnoreError();
  // A writer leaves its memtables flushed: the next process to open the ledger (a query, a
  // replay, the next month's bill) then starts at once instead of replaying the WAL into memory.
  if (wrote && db && !read_only) db->Flush(rocksdb::FlushOptions(), cfs).PermitUncheckedError();
  for (auto* cf : cfs) db->DestroyColumnFamilyHandle(cf);
  db.reset();
  if (!secondary_dir.empty()) {
    std::error_code ignored;
    fs::remove_all(secondary_dir, ignored);
  }
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

namespace {

std::vector<rocksdb::ColumnFamilyDescriptor> descriptors(Role role = Role::kWriter) {
  std::vector<rocksdb::ColumnFamilyDescriptor> out;
  for (const char* name : kColumnFamilies) out.emplace_back(name, table_options(name, role));
  return out;
}

rocksdb::DBOptions db_options(Role role = Role::kWriter) {
  rocksdb::DBOptions options;
  options.info_log = silent_logger();
  options.paranoid_checks = true;
  // Every acknowledged write was synced to the write-ahead log, so a damaged record in it is
  // damage, never a crash: RocksDB's default (point-in-time recovery) would silently stop at it,
  // losing acknowledged events and letting new ones reuse their sequence numbers. Only an
  // incomplete last record (a write torn by a crash, never acknowledged) is dropped.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // What is derived from the log is written without the WAL: column families flush together, so
  // a crash leaves the derived ones (and their "derived" and "checkpoint" marks) at one
  // consistent point, never the index of one batch beside the rows of another.
  options.atomic_flush = true;
  // A writer's flushes and compactions run on background threads (two compacting). A reader
  // neither flushes nor compacts: it keeps the one thread of each pool that RocksDB starts for
  // any open, and spares the third thread's start, stack and malloc arena.
  if (role == Role::kWriter) options.IncreaseParallelism(2);
  return options;
}

// A Corruption met opening a ledger, naming where: the write-ahead log (no table file or
// manifest named) or the file RocksDB names.
absl::Status damaged(const std::string& dir, const rocksdb::Status& s) {
  const std::string text = s.ToString();
  std::string where;
  if (text.find(".sst") == std::string::npos && text.find("MANIFEST") == std::string::npos) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".log") where += (where.empty() ? "" : ", ") + e.path().string();
  }
  if (!where.empty())
    return absl::DataLossError("the ledger in " + dir + " is damaged: its write-ahead log (" +
                               where + ") fails its checksums (" + text +
                               "); nothing is read or written: restore a backup");
  return absl::DataLossError("the ledger in " + dir + " is damaged (" + text +
                             "); nothing is read or written: restore a backup");
}

// Opens `impl->dir` read-only: first as a plain read-only instance (no lock, nothing written);
// if that fails while a writer changes the files under it, as a secondary instance whose own
// files go to a fresh directory under the system's temporary directory.
absl::Status open_reader(Store::Impl& impl, Store::Reads reads) {
  rocksdb::DB* db = nullptr;
  rocksdb::DBOptions options = db_options(Role::kReader);
  // Table files are opened when first read, not all at open: a query reads a few of them, and a
  // writer's read-only look before it opens for writing reads only the log's.
  options.max_open_files = reads == Store::Reads::kFew ? kFewReadsOpenFiles : kReaderOpenFiles;
  // The tables opened at open are opened on this thread: a query process would spend more on
  // starting and joining RocksDB's 16 opening threads than on the few small reads they make.
  options.max_file_opening_threads = 1;
  // Nor does it read the properties of up to 20 tables per column family at open: they feed the
  // compaction picker's statistics, and a reader never compacts.
  options.skip_stats_update_on_db_open = true;
  // A query of a few keys checks that every table file of the manifest is there with one listing
  // of the directory, not a stat of each (184 of them at 3M subscriptions: 0.8 ms). A table file
  // cut short is then found when it is read (its footer is read at the size the manifest
  // records) and the query folds the log instead; a reader of every table (`replay --verify`, a
  // listing) still refuses it at open, naming the file and what rewrites it.
  options.skip_checking_sst_file_sizes_on_db_open = reads == Store::Reads::kFew;
  // No info log at all: a read-only instance then creates none (SanitizeOptions), and RocksDB
  // skips listing the directory for its file summary and formatting every option of the database
  // and of each column family into lines that the silent logger would only drop.
  options.info_log = nullptr;
  auto s = rocksdb::DB::OpenForReadOnly(options, impl.dir, descriptors(Role::kReader), &impl.cfs, &db,
                                        /*error_if_wal_file_exists=*/false);
  if (s.ok()) {
    impl.db.reset(db);
    return absl::OkStatus();
  }
  if (s.IsCorruption()) return damaged(impl.dir, s);
  std::string tmpl = (fs::temp_directory_path() / "subledger-reader-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return to_status(s, "cannot open the ledger in " + impl.dir);
  impl.secondary_dir = tmpl;
  impl.cfs.clear();
  options.info_log = silent_logger();  // a secondary instance would create a log file without one
  options.max_open_files = -1;  // hold every table file open while the primary compacts
  auto secondary = rocksdb::DB::OpenAsSecondary(options, impl.dir, impl.secondary_dir,
                                                descriptors(Role::kReader), &impl.cfs, &db);
  if (!secondary.ok()) return to_status(s, "cannot open the ledger in " + impl.dir);
  impl.db.reset(db);
  return to_status(db->TryCatchUpWithPrimary(), "cannot read the ledger in " + impl.dir);
}

absl::Status open_writer(Store::Impl& impl, bool create) {
  rocksdb::DBOptions options = db_options();
  // A writer opens a table file when it first reads it, as readers do, not every one at open
  // (RocksDB's default, -1): a 10-command `apply` reads a few of them, and the bound (clipped by
  // RocksDB to the process's limit on open files) keeps a ledger of thousands of tables from
  // running out of file descriptors.
  options.max_open_files = kWriterOpenFiles;
  options.create_if_missing = create;
  options.create_missing_column_families = true;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(options, impl.dir, descriptors(), &impl.cfs, &db);
  if (!s.ok()) {
    if (s.IsCorruption()) return damaged(impl.dir, s);
    absl::Status status = to_status(s, "cannot open the ledger in " + impl.dir);
    if (absl::IsPermissionDenied(status))
      return absl::PermissionDeniedError("cannot write the ledger in " + impl.dir +
                                         ": its directory is read-only or not ours (" +
                                         std::string(status.message()) + ")");
    if (absl::IsFailedPrecondition(status))
      return absl::FailedPreconditionError("the ledger in " + impl.dir +
                                           " is in use by another process (" +
                                           std::string(status.message()) + ")");
    return status;
  }
  impl.db.reset(db);
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::Status check_format(const Store& store, const std::string& dir) {
  if (store.format() == kLedgerFormat) return absl::OkStatus();
  if (store.format() > kLedgerFormat)
    return absl::FailedPreconditionError(
        "the ledger in " + dir + " is of on-disk format " + std::to_string(store.format()) +
        ", newer than this subledger's " + std::to_string(kLedgerFormat) +
        ": use a newer subledger");
  return absl::FailedPreconditionError(
      "the ledger in " + dir + " is of an older on-disk format (" +
      std::to_string(store.format()) + "; this subledger uses " + std::to_string(kLedgerFormat) +
      "): run `subledger migrate --db " + dir + "` to rebuild what is derived from its log");
}

}  // namespace

namespace {

// The derived column family ("projections", "streams", "idempotency") a table file named in
// `message` belongs to, from the manifest (read with a lenient read-only open, which does not
// load the table files); "" if none is named or it belongs to the log or "default".
std::string derived_cf_of_damaged_table(const std::string& dir, std::string_view message) {
  size_t sst = message.find(".sst");
  if (sst == std::string_view::npos) return "";
  size_t begin = sst;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(message[begin - 1]))) --begin;
  if (begin == sst) return "";
  std::string name = "/" + std::string(message.substr(begin, sst + 4 - begin));
  rocksdb::DBOptions options = db_options();
  options.paranoid_checks = false;
  options.max_open_files = 16;  // loads at most a few tables at open; their errors are ignored
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(options, dir, descriptors(), &cfs, &db, false).ok()) return "";
  std::vector<rocksdb::LiveFileMetaData> files;
  db->GetLiveFilesMetaData(&files);
  std::string cf;
  for (const auto& f : files)
    if (f.name == name) cf = f.column_family_name;
  for (auto* h : cfs) db->DestroyColumnFamilyHandle(h);
  delete db;
  for (Cf derived : {kProjections, kStreams, kIdempotency})
    if (cf == kColumnFamilies[derived]) return cf;
  return "";
}

// A writer checks every table file of the log before it opens (check_events_readable), which
// read the whole log at every open: 0.35-1.4 s at 3M subscriptions, before a 10-command `apply`.
// The tables it found whole are listed in this file of the ledger's directory (RocksDB leaves
// files it does not name alone) and the next writer checks only the others. A table file is never
// rewritten in place, and any write to it (a flipped byte) changes its change time, which
// user-space cannot set back: a listed table is checked again once its file has changed. Every
// read of a block still verifies its checksum. The list is a cache: lost, torn or unreadable, the
// next writer checks every table again.
constexpr const char* kWholeEventTablesEnd = "end";

// A table file as it is on disk: its name, size, inode and change time ("" if it cannot be read).
std::string table_identity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "";
  return fs::path(path).filename().string() + " " + std::to_string(st.st_size) + " " +
         std::to_string(st.st_ino) + " " + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec);
}

std::set<std::string> read_whole_event_tables(const std::string& dir) {
  std::ifstream in(fs::path(dir) / kWholeEventTablesFile);
  std::set<std::string> whole;
  std::string line;
  while (std::getline(in, line)) {
    if (line == kWholeEventTablesEnd) return whole;
    whole.insert(line);
  }
  return {};  // torn or absent: check every table
}

void write_whole_event_tables(const std::string& dir, const std::set<std::string>& whole) {
  const fs::path path = fs::path(dir) / kWholeEventTablesFile;
  const fs::path temporary = fs::path(dir) / kWholeEventTablesTemporary;
  {
    std::ofstream out(temporary, std::ios::trunc);
    for (const std::string& identity : whole) out << identity << '\n';
    out << kWholeEventTablesEnd << '\n';
    if (!out.flush()) return;
  }
  std::error_code ignored;  // a cache: the next writer checks every table instead
  fs::rename(temporary, path, ignored);
}

// Drops column family `cf` of the ledger in `dir`, with its damaged table file, through a
// lenient writer (that does not stop at the file). A dropped index is marked as being rewritten
// first, so no command uses the ledger until `rebuild` has re-derived it.
absl::Status drop_damaged_cf(const std::string& dir, const std::string& cf) {
  rocksdb::DBOptions options = db_options();
  options.paranoid_checks = false;
  options.max_open_files = 16;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(options, dir, descriptors(), &cfs, &raw);
  if (!s.ok()) return to_status(s, "cannot open the ledger in " + dir + " to drop its " + cf);
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions synced;
  synced.sync = true;
  size_t index = 0;
  while (kColumnFamilies[index] != cf) ++index;
  if (index != kProjections) s = db->Put(synced, cfs[kDefault], kIndexRebuildKey, "1");
  if (s.ok()) s = db->DropColumnFamily(cfs[index]);
  rocksdb::ColumnFamilyHandle* fresh = nullptr;
  if (s.ok()) s = db->CreateColumnFamily(table_options(cf), cf, &fresh);
  if (fresh) cfs.push_back(fresh);
  for (auto* h : cfs) db->DestroyColumnFamilyHandle(h);
  if (s.ok()) s = db->Close();
  return to_status(s, "cannot drop the damaged " + cf + " of the ledger in " + dir);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::open(const std::string& dir, OpenOptions options) {
  auto store = open_once(dir, options);
  // Each damaged table file of derived data that stops RocksDB from opening the ledger at all.
  for (int dropped = 0; !store.ok() && absl::IsDataLoss(store.status()) && dropped < 16;
       ++dropped) {
    std::string message(store.status().message());
    std::string cf = derived_cf_of_damaged_table(dir, message);
    if (cf.empty()) break;
    if (!options.drop_damaged_derived || options.access == Access::kRead) {
      if (size_t at = message.find("; nothing is read or written: restore a backup");
          at != std::string::npos)
        message.resize(at);
      return absl::DataLossError(message + "; that file holds the " +
                                 cf + ", derived from the log: `subledger rebuild --db " + dir +
                                 "` rewrites it");
    }
    if (absl::Status s = drop_damaged_cf(dir, cf); !s.ok()) return s;
    store = open_once(dir, options);
  }
  return store;
}

absl::StatusOr<std::unique_ptr<Store>> Store::open_once(const std::string& dir,
                                                        OpenOptions options) {
  if (dir.empty()) return absl::InvalidArgumentError("--db is empty: name the ledger's directory");
  absl::StatusOr<DirState> state = dir_state(dir);
  if (!state.ok()) return state.status();
  const bool create = *state == DirState::kAbsent && options.access == Access::kCreateOrWrite;
  if (*state == DirState::kAbsent && !create) return absl::NotFoundError("no ledger at " + dir);
  if (*state == DirState::kOther)
    return absl::DataLossError(
        "no usable ledger at " + dir +
        ": the directory has files but no CURRENT file (a damaged ledger, or not a ledger); "
        "nothing was changed (restore a backup with `subledger restore`)");
  std::set<std::string> listed_event_tables, whole_event_tables;
  if (!create && options.access != Access::kRead) {
    // Opening for writing changes files (a new WAL, manifest and options file) and may start
    // compactions: a ledger that must be refused (an older format, a damaged log) is refused
    // from a read-only look first, so refusing changes nothing.
    auto look =
        open_once(dir, OpenOptions{Access::kRead, options.any_format, options.repairing_index});
    if (!look.ok()) return look.status();
    uint64_t first_bad_seq = 0;
    listed_event_tables = read_whole_event_tables(dir);
    whole_event_tables = listed_event_tables;
    if (absl::Status error = (*look)->check_events_readable(whole_event_tables, first_bad_seq);
        !error.ok())
      return absl::DataLossError("the event log in " + dir + " is damaged from event " +
                                 std::to_string(first_bad_seq) + " (" +
                                 std::string(error.message()) +
                                 "); writes are refused: restore a backup "
                                 "(`subledger replay --verify` reports the log)");
  }
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->read_only = options.access == Access::kRead;
  absl::Status opened =
      impl->read_only ? open_reader(*impl, options.reads) : open_writer(*impl, create);
  if (!opened.ok()) return opened;
  std::string format;
  if (create) {
    rocksdb::WriteOptions synced;
    synced.sync = true;
    auto s = impl->db->Put(synced, impl->cfs[kDefault], kFormatKey, std::to_string(kLedgerFormat));
    if (!s.ok()) return to_status(s, "cannot write the new ledger in " + dir);
  } else {
    auto s = impl->db->Get(checked_reads(), impl->cfs[kDefault], kFormatKey, &format);
    if (s.IsNotFound())
      impl->format = 1;  // written before formats were recorded
    else if (!s.ok())
      return to_status(s, "cannot read the ledger's format in " + dir);
    else
      impl->format = std::atoi(format.c_str());
  }
  if (!create && !options.repairing_index) {
    std::string marker;
    auto s = impl->db->Get(checked_reads(), impl->cfs[kDefault], kIndexRebuildKey, &marker);
    if (s.ok())
      return absl::FailedPreconditionError(
          "a rewrite of the stream index and idempotency records of the ledger in " + dir +
          " was interrupted: run `subledger rebuild --db " + dir + "` to finish it");
    if (!s.IsNotFound()) return to_status(s, "cannot read the ledger in " + dir);
  }
  auto store = std::unique_ptr<Store>(new Store(std::move(impl)));
  if (!options.any_format)
    if (absl::Status s = check_format(*store, dir); !s.ok()) return s;
  if (!whole_event_tables.empty() && whole_event_tables != listed_event_tables)
    write_whole_event_tables(dir, whole_event_tables);
  return store;
}

std::unique_ptr<Store> Store::open(const std::string& dir, std::string& error) {
  auto store = open(dir, OpenOptions{Access::kCreateOrWrite});
  if (store.ok()) return std::move(*store);
  error = std::string(store.status().message());
  return nullptr;
}

void Store::run_compactions_at_low_priority() {
  // A hint: an environment that refuses it (not POSIX) changes the speed only.
  rocksdb::Env::Default()
      ->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow)
      .PermitUncheckedError();
}

bool Store::read_only() const { return impl_->read_only; }
int Store::format() const { return impl_->format; }

void Store::stage_event(uint64_t seq, const Stream& stream, uint64_t version,
                        std::string_view bytes) {
  impl_->batch.Put(impl_->cfs[kEvents], be64(seq), rocksdb::Slice(bytes.data(), bytes.size()));
  stage_stream_entry(stream, version, seq);
  stage_derived_mark(seq);
  ++impl_->staged;
}

void Store::stage_stream_entry(const Stream& stream, uint64_t version, uint64_t seq) {
  impl_->derived.Put(impl_->cfs[kStreams], stream_prefix(stream) + be64(version), be64(seq));
}

void Store::stage_derived_mark(uint64_t seq) {
  // Written once per batch: the last Put of a key in a batch wins, so the mark is overwritten in
  // place rather than added per event.
  impl_->derived_mark = seq;
}

void Store::hold_derived_mark(std::optional<uint64_t> seq) { impl_->derived_mark_held = seq; }

void Store::stage_unfinished_run(std::string_view record) {
  if (record.empty())
    impl_->batch.Delete(impl_->cfs[kDefault], kUnfinishedRunKey);
  else
    impl_->batch.Put(impl_->cfs[kDefault], kUnfinishedRunKey,
                     rocksdb::Slice(record.data(), record.size()));
}

void Store::stage_idempotency(const std::string& request_id, std::string_view record,
                              bool derivable) {
  (derivable ? impl_->derived : impl_->batch)
      .Put(impl_->cfs[kIdempotency], key_component(request_id),
           rocksdb::Slice(record.data(), record.size()));
}

void Store::stage_projection(std::string_view key, std::string_view value) {
  impl_->derived.Put(impl_->cfs[kProjections], rocksdb::Slice(key.data(), key.size()),
                     rocksdb::Slice(value.data(), value.size()));
}

void Store::stage_projection_erase(std::string_view key) {
  impl_->derived.Delete(impl_->cfs[kProjections], rocksdb::Slice(key.data(), key.size()));
}

void Store::mark_staged() {
  impl_->batch.SetSavePoint();
  impl_->derived.SetSavePoint();
  impl_->staged_at_mark = impl_->staged;
  impl_->derived_mark_at_mark = impl_->derived_mark;
}

// Both fail only without a save point (a caller's bug, not a storage error); they run in
// destructors, so they never throw.
void Store::drop_staged_since_mark() noexcept {
  [[maybe_unused]] rocksdb::Status s = impl_->batch.RollbackToSavePoint();
  assert(s.ok());
  s = impl_->derived.RollbackToSavePoint();
  assert(s.ok());
  impl_->staged = impl_->staged_at_mark;
  impl_->derived_mark = impl_->derived_mark_at_mark;
}

void Store::keep_staged_since_mark() noexcept {
  [[maybe_unused]] rocksdb::Status s = impl_->batch.PopSavePoint();
  assert(s.ok());
  s = impl_->derived.PopSavePoint();
  assert(s.ok());
}

size_t Store::staged_bytes() const {
  return impl_->batch.GetDataSize() + impl_->derived.GetDataSize();
}
size_t Store::staged_count() const { return impl_->staged; }

absl::Status Store::commit(bool sync) {
  commit_async(sync);
  return wait_written();
}

void Store::commit_async(bool sync) {
  // At most one batch in flight; its error was the caller's to collect (wait_written).
  wait_written().IgnoreError();
  // The pair written last takes what is staged, and staging goes on in its memory: a batch is
  // not regrown (copied, its fresh pages faulted in) from nothing every time. One that grew
  // large is let go, so a long-lived writer does not keep a billing run's batch.
  constexpr size_t kReusedBatchBytesMax = 64 << 20;
  std::shared_ptr<Store::Impl::Batches> batches = std::move(impl_->written);
  if (!batches || batches.use_count() > 1 ||
      batches->log.GetDataSize() + batches->derived.GetDataSize() > kReusedBatchBytesMax)
    batches = std::make_shared<Store::Impl::Batches>();
  batches->log.Clear();
  batches->derived.Clear();
  std::swap(batches->log, impl_->batch);
  std::swap(batches->derived, impl_->derived);
  impl_->written = batches;
  impl_->staged = 0;
  const uint64_t mark = impl_->derived_mark_held
                            ? std::min(impl_->derived_mark, *impl_->derived_mark_held)
                            : impl_->derived_mark;
  if (mark != impl_->derived_mark_written && !impl_->read_only) {
    batches->derived.Put(impl_->cfs[kDefault], kDerivedKey, be64(mark));
    impl_->derived_mark_written = mark;
  }
  if (impl_->read_only) {
    // REQUIRES: writers only. A reader that staged something has a bug: refuse, never write.
    impl_->writer.finish_now(batches->log.Count() + batches->derived.Count() == 0
                                 ? absl::OkStatus()
                                 : absl::InternalError("internal error: a reader tried to write"));
    return;
  }
  rocksdb::DB* db = impl_->db.get();
  impl_->wrote = true;
  impl_->writer.start([db, batches, sync] {
    // The log first, synced: once it is durable, everything else is derivable from it. The
    // derived batch after it (never before: a flush could otherwise persist rows or records of
    // events a crash then loses) skips the WAL; it reaches disk with the next (atomic) flush.
    if (batches->log.Count() > 0) {
      rocksdb::WriteOptions wo;
      wo.sync = sync;
      if (absl::Status s = to_status(db->Write(wo, &batches->log), "write to the ledger failed");
          !s.ok())
        return s;
    }
    if (batches->derived.Count() == 0) return absl::OkStatus();
    rocksdb::WriteOptions derived;
    derived.disableWAL = true;
    return to_status(db->Write(derived, &batches->derived), "write to the ledger failed");
  });
}

absl::Status Store::wait_written() { return impl_->writer.wait(); }

void Store::discard_staged() {
  impl_->batch.Clear();
  impl_->derived.Clear();
  impl_->staged = 0;
}

uint64_t Store::last_seq() const {
  if (impl_->read_only) {
    // A reader's view does not move: the last event is the largest key the manifest records for
    // any table file or the memtable (replayed from the log) holds, and one point read of it
    // opens only the table that holds it. Reading the log from its end opened every level-0 table
    // and the last table of each level (4 of them at 1M subscriptions: `state` 0.97x, `explain`
    // 0.95x, 60 pairs). If that key was deleted (the tests' damaged logs), its end is read.
    std::string largest;
    rocksdb::ColumnFamilyMetaData meta;
    impl_->db->GetColumnFamilyMetaData(impl_->cfs[kEvents], &meta);
    for (const auto& level : meta.levels)
      for (const auto& file : level.files) largest = std::max(largest, file.largestkey);
    rocksdb::ReadOptions in_memory = checked_reads();
    in_memory.read_tier = rocksdb::kMemtableTier;
    std::unique_ptr<rocksdb::Iterator> memtable(
        impl_->db->NewIterator(in_memory, impl_->cfs[kEvents]));
    memtable->SeekToLast();
    if (memtable->Valid()) largest = std::max(largest, memtable->key().ToString());
    std::string value;
    if (largest.size() == 8 &&
        impl_->db->Get(checked_reads(), impl_->cfs[kEvents], largest, &value).ok())
      return from_be64(largest);
    if (largest.empty() && memtable->status().ok()) return 0;  // nothing was ever written
  }
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(checked_reads(), impl_->cfs[kEvents]));
  it->SeekToLast();
  return it->Valid() && it->key().size() == 8
             ? from_be64(std::string_view(it->key().data(), it->key().size()))
             : 0;
}

absl::StatusOr<std::string> Store::event_bytes(uint64_t seq) const {
  std::string value;
  auto s = impl_->db->Get(checked_reads(), impl_->cfs[kEvents], be64(seq), &value);
  if (!s.ok()) return to_status(s, "reading event " + std::to_string(seq));
  return value;
}

absl::Status Store::scan_events(uint64_t after_seq,
                                const std::function<bool(uint64_t, std::string_view)>& fn) const {
  // Nothing can follow the largest sequence number.
  if (after_seq == UINT64_MAX) return absl::OkStatus();
  rocksdb::ReadOptions ro = checked_reads();
  ro.readahead_size = 4 << 20;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cfs[kEvents]));
  for (it->Seek(be64(after_seq + 1)); it->Valid(); it->Next()) {
    if (it->key().size() != 8) return absl::DataLossError("event key of unexpected size");
    uint64_t seq = from_be64(std::string_view(it->key().data(), 8));
    if (!fn(seq, std::string_view(it->value().data(), it->value().size()))) break;
  }
  return to_status(it->status(), "reading the event log failed");
}

absl::StatusOr<std::string> Store::unfinished_run() const {
  std::string value;
  auto s = impl_->db->Get(checked_reads(), impl_->cfs[kDefault], kUnfinishedRunKey, &value);
  if (s.IsNotFound()) return absl::NotFoundError("no unfinished billing run");
  if (!s.ok()) return to_status(s, "reading whether a billing run is unfinished");
  return value;
}

absl::StatusOr<uint64_t> Store::derived_mark() const {
  std::string value;
  auto s = impl_->db->Get(checked_reads(), impl_->cfs[kDefault], kDerivedKey, &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return to_status(s, "reading how far the index reaches");
  if (value.size() != 8) return absl::DataLossError("the ledger's derived mark is malformed");
  return from_be64(value);
}

namespace {

// The first event that cannot be read, by reading them all (slow: decompresses every block).
absl::Status first_unreadable_event(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                    uint64_t& first_bad_seq) {
  rocksdb::ReadOptions ro = checked_reads();
  ro.readahead_size = 4 << 20;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, events));
  uint64_t last = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) break;
    last = from_be64(std::string_view(it->key().data(), 8));
    it->value();  // the value's block is read and checked with the key's
  }
  first_bad_seq = last + 1;
  if (it->Valid())
    return absl::DataLossError("event key of unexpected size after event " +
                               std::to_string(last));
  return to_status(it->status(), "event " + std::to_string(last + 1) + " cannot be read");
}

}  // namespace

absl::Status Store::check_events_readable(std::set<std::string>& whole,
                                          uint64_t& first_bad_seq) const {
  // Each table file of the log is checked block by block against its checksums without
  // decompressing (about 0.05 s for 40 MB of events, 0.35-1.4 s for the 3 GB of 10.6M events);
  // the events still in the write-ahead log were checked against its record checksums when the
  // ledger was opened.
  std::vector<rocksdb::LiveFileMetaData> files;
  impl_->db->GetLiveFilesMetaData(&files);
  rocksdb::Options options;
  options.info_log = silent_logger();
  std::set<std::string> now_whole;
  for (const auto& f : files) {
    if (f.column_family_name != kColumnFamilies[kEvents]) continue;
    const std::string identity = table_identity(f.db_path + f.name);
    if (!identity.empty() && whole.contains(identity)) {
      now_whole.insert(identity);
      continue;
    }
    rocksdb::SstFileReader reader(options);
    auto s = reader.Open(f.db_path + f.name);
    if (s.ok()) s = reader.VerifyChecksum(checked_reads());
    if (s.ok()) {
      if (!identity.empty()) now_whole.insert(identity);
      continue;
    }
    absl::Status error = first_unreadable_event(*impl_->db, impl_->cfs[kEvents], first_bad_seq);
    if (!error.ok()) return error;
    first_bad_seq = f.smallestkey.size() == 8 ? from_be64(f.smallestkey) : 0;
    return to_status(s, "table file " + f.name + " of the log is damaged");
  }
  first_bad_seq = 0;
  whole = std::move(now_whole);
  return absl::OkStatus();
}

absl::Status Store::verify_checksums() const {
  return to_status(impl_->db->VerifyChecksum(checked_reads()), "the ledger's tables are damaged");
}

void Store::ignore_stored_projections() {
  impl_->overlay.clear();
  impl_->overlay_only = true;
}

void Store::overlay_projection(std::string_view key, std::string_view value) {
  impl_->overlay.insert_or_assign(std::string(key), std::string(value));
}

void Store::overlay_projection_erase(std::string_view key) {
  impl_->overlay.insert_or_assign(std::string(key), std::nullopt);
}

absl::Status Store::scan_projections(
    std::string_view prefix, const std::function<bool(std::string_view, std::string_view)>& fn,
    Scan length) const {
  rocksdb::ReadOptions ro = checked_reads();
  if (length == Scan::kLong) ro.readahead_size = 4 << 20;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cfs[kProjections]));
  rocksdb::Slice start(prefix.data(), prefix.size());
  const auto& overlay = impl_->overlay;
  auto next = overlay.lower_bound(prefix);
  auto overlay_in_range = [&] { return next != overlay.end() && next->first.starts_with(prefix); };
  if (!impl_->overlay_only) it->Seek(start);  // unpositioned, an iterator is not Valid()
  // A merge of two sorted sequences; on equal keys the overlay's row replaces the stored one.
  while (true) {
    bool stored = it->Valid() && it->key().starts_with(start);
    bool mine = overlay_in_range();
    if (!stored && !mine) break;
    std::string_view key = stored ? std::string_view(it->key().data(), it->key().size()) : "";
    if (mine && (!stored || next->first <= key)) {
      if (stored && next->first == key) it->Next();
      bool more = !next->second || fn(next->first, *next->second);
      ++next;
      if (!more) break;
      continue;
    }
    if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
    it->Next();
  }
  return to_status(it->status(), "reading the projections failed");
}

namespace {
// The stream index and idempotency records are derived from the log: a damaged one is rewritten
// by `subledger rebuild`, so the error says so.
absl::Status rebuild_hint(absl::Status status, const std::string& dir) {
  if (!absl::IsDataLoss(status)) return status;
  return absl::DataLossError(std::string(status.message()) +
                             " (derived from the log: `subledger rebuild --db " + dir +
                             "` rewrites it)");
}
}  // namespace

absl::StatusOr<std::vector<uint64_t>> Store::stream_seqs(const Stream& stream) const {
  if (absl::Status s = build_stream_overlay(); !s.ok()) return s;
  std::vector<uint64_t> out;
  std::string prefix = stream_prefix(stream);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(checked_reads(), impl_->cfs[kStreams]));
  std::string last_stored;  // the key of the last stored entry
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->value().size() != 8 || it->key().size() != prefix.size() + 8)
      return absl::DataLossError("a stream index entry of " + stream.id + " is malformed");
    out.push_back(from_be64(std::string_view(it->value().data(), it->value().size())));
    last_stored.assign(it->key().data(), it->key().size());
  }
  if (!it->status().ok())
    return rebuild_hint(to_status(it->status(), "reading the stream index failed"), impl_->dir);
  // Entries of events after the derived mark (a reader's overlay) follow the stored ones. Some
  // may be stored already: the mark is held before a billing run written in parts, whose
  // entries are stored with each part (Store::hold_derived_mark), so versions stored are skipped.
  for (auto e = impl_->stream_overlay.upper_bound(std::max(last_stored, prefix));
       e != impl_->stream_overlay.end() && std::string_view(e->first).starts_with(prefix); ++e)
    out.push_back(e->second);
  return out;
}

absl::Status Store::build_stream_overlay() const {
  if (!impl_->read_only || impl_->stream_overlay_built) return absl::OkStatus();
  impl_->stream_overlay_built = true;
  auto mark = derived_mark();
  if (!mark.ok()) return mark.status();
  EventDecoder decoder;
  Event e;
  absl::Status error;
  absl::Status scan = scan_events(*mark, [&](uint64_t seq, std::string_view bytes) {
    error = decoder.decode(bytes, e);
    if (!error.ok()) {
      error = at_event(seq, error);
      return false;
    }
    impl_->stream_overlay.insert_or_assign(stream_prefix(e.stream) + be64(e.stream_version), seq);
    return true;
  });
  if (!scan.ok()) return scan;
  return error;
}

absl::StatusOr<std::string> Store::idempotency(const std::string& request_id) const {
  std::string value;
  auto s = impl_->db->Get(checked_reads(), impl_->cfs[kIdempotency], key_component(request_id),
                          &value);
  if (!s.ok())
    return rebuild_hint(to_status(s, "looking up request id '" + request_id + "'"), impl_->dir);
  return value;
}

absl::StatusOr<std::string> Store::projection(std::string_view key) const {
  if (auto it = impl_->overlay.find(key); it != impl_->overlay.end()) {
    if (!it->second) return absl::NotFoundError("no projection row " + std::string(key));
    return *it->second;
  }
  if (impl_->overlay_only) return absl::NotFoundError("no projection row " + std::string(key));
  std::string value;
  auto s = impl_->db->Get(checked_reads(), impl_->cfs[kProjections],
                          rocksdb::Slice(key.data(), key.size()), &value);
  if (!s.ok()) return to_status(s, "reading projection row " + std::string(key));
  return value;
}

std::vector<absl::StatusOr<std::string>> Store::projections(
    const std::vector<std::string>& keys) const {
  std::vector<absl::StatusOr<std::string>> out(keys.size(), absl::NotFoundError(""));
  std::vector<rocksdb::Slice> stored;  // the keys the overlay does not answer
  std::vector<size_t> at;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (impl_->overlay.contains(keys[i]) || impl_->overlay_only) {
      out[i] = projection(keys[i]);
    } else {
      stored.emplace_back(keys[i]);
      at.push_back(i);
    }
  }
  if (stored.empty()) return out;
  std::vector<rocksdb::PinnableSlice> values(stored.size());
  std::vector<rocksdb::Status> statuses(stored.size());
  impl_->db->MultiGet(checked_reads(), impl_->cfs[kProjections], stored.size(), stored.data(),
                      values.data(), statuses.data());
  for (size_t j = 0; j < stored.size(); ++j) {
    const std::string& key = keys[at[j]];
    if (!statuses[j].ok())
      out[at[j]] = to_status(statuses[j], "reading projection row " + key);
    else
      out[at[j]] = values[j].ToString();
  }
  return out;
}

absl::Status Store::reset_projections() {
  if (impl_->read_only) {
    ignore_stored_projections();  // a reader only ever replaces rows in memory
    return absl::OkStatus();
  }
  impl_->overlay.clear();
  auto s = impl_->db->DropColumnFamily(impl_->cfs[kProjections]);
  if (!s.ok()) return to_status(s, "cannot drop the projection rows");
  impl_->db->DestroyColumnFamilyHandle(impl_->cfs[kProjections]);
  impl_->cfs[kProjections] = nullptr;
  s = impl_->db->CreateColumnFamily(table_options(kColumnFamilies[kProjections]),
                                    kColumnFamilies[kProjections], &impl_->cfs[kProjections]);
  return to_status(s, "cannot recreate the projection rows");
}

absl::StatusOr<std::map<std::string, std::string>> Store::all_idempotency_records() const {
  std::map<std::string, std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(checked_reads(), impl_->cfs[kIdempotency]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    std::string id(key);
    if (impl_->format >= 2) {
      auto component = take_key_component(key);
      if (!component || !key.empty())
        return absl::DataLossError("a malformed idempotency key in the ledger");
      id = std::move(*component);
    }
    out.insert_or_assign(std::move(id), it->value().ToString());
  }
  if (!it->status().ok())
    return rebuild_hint(to_status(it->status(), "reading the idempotency records"), impl_->dir);
  return out;
}

absl::Status Store::drop_and_recreate(int cf) {
  auto index = static_cast<size_t>(cf);
  auto s = impl_->db->DropColumnFamily(impl_->cfs[index]);
  if (!s.ok()) return to_status(s, std::string("cannot drop the ") + kColumnFamilies[cf]);
  impl_->db->DestroyColumnFamilyHandle(impl_->cfs[index]);
  impl_->cfs[index] = nullptr;
  s = impl_->db->CreateColumnFamily(table_options(kColumnFamilies[cf]), kColumnFamilies[cf],
                                    &impl_->cfs[index]);
  return to_status(s, std::string("cannot recreate the ") + kColumnFamilies[cf]);
}

absl::Status Store::rewrite_index(const std::vector<StreamEntry>& streams,
                                  const std::map<std::string, std::string>& records,
                                  uint64_t through_seq) {
  if (impl_->read_only) return absl::InternalError("internal error: a reader tried to write");
  rocksdb::WriteOptions synced;
  synced.sync = true;
  impl_->wrote = true;
  // The old index is dropped with its table files, damaged or not (a damaged file cannot even be
  // iterated to delete its keys). Between the drop and the synced batch that writes the new one,
  // a crash would leave a ledger without its idempotency records, where a retried command could
  // be applied twice: the marker written first makes every open refuse it until a rebuild ends.
  auto s = impl_->db->Put(synced, impl_->cfs[kDefault], kIndexRebuildKey, "1");
  if (!s.ok()) return to_status(s, "rewriting the index failed");
  for (Cf cf : {kStreams, kIdempotency})
    if (absl::Status dropped = drop_and_recreate(cf); !dropped.ok()) return dropped;
  rocksdb::WriteBatch batch;
  for (const auto& e : streams)
    batch.Put(impl_->cfs[kStreams], stream_prefix(e.stream) + be64(e.version), be64(e.seq));
  for (const auto& [id, record] : records)
    batch.Put(impl_->cfs[kIdempotency], key_component(id), record);
  batch.Put(impl_->cfs[kDefault], kDerivedKey, be64(through_seq));
  batch.Put(impl_->cfs[kDefault], kFormatKey, std::to_string(kLedgerFormat));
  batch.Delete(impl_->cfs[kDefault], kIndexRebuildKey);
  s = impl_->db->Write(synced, &batch);
  if (s.ok()) impl_->format = kLedgerFormat;
  return to_status(s, "rewriting the index failed");
}

absl::Status Store::overwrite_event_for_test(uint64_t seq, std::string_view bytes) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return to_status(impl_->db->Put(wo, impl_->cfs[kEvents], be64(seq),
                                 rocksdb::Slice(bytes.data(), bytes.size())),
                  "overwrite failed");
}

absl::Status Store::delete_event_for_test(uint64_t seq) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return to_status(impl_->db->Delete(wo, impl_->cfs[kEvents], be64(seq)), "delete failed");
}

namespace {
int cf_index(const std::string& name) {
  for (int i = 0; i < kCfCount; ++i)
    if (name == kColumnFamilies[i]) return i;
  return -1;
}
}  // namespace

absl::Status Store::put_raw_for_test(const std::string& cf, std::string_view key,
                                    std::string_view value) {
  int i = cf_index(cf);
  if (i < 0) return absl::InvalidArgumentError("no column family " + cf);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return to_status(impl_->db->Put(wo, impl_->cfs[static_cast<size_t>(i)],
                                 rocksdb::Slice(key.data(), key.size()),
                                 rocksdb::Slice(value.data(), value.size())),
                  "put failed");
}

void Store::drop_unsynced_at_close_for_test() {
  impl_->writer.wait().IgnoreError();
  impl_->db->SetDBOptions({{"avoid_flush_during_shutdown", "true"}}).PermitUncheckedError();
  impl_->wrote = false;
}

absl::Status Store::delete_raw_for_test(const std::string& cf, std::string_view key) {
  int i = cf_index(cf);
  if (i < 0) return absl::InvalidArgumentError("no column family " + cf);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return to_status(impl_->db->Delete(wo, impl_->cfs[static_cast<size_t>(i)],
                                    rocksdb::Slice(key.data(), key.size())),
                  "delete failed");
}

uint64_t Store::disk_bytes() const {
  uint64_t total = 0, v = 0;
  for (auto* cf : impl_->cfs)
    if (impl_->db->GetIntProperty(cf, "rocksdb.total-sst-files-size", &v)) total += v;
  return total;
}

}  // namespace subledger
