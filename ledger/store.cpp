#include "ledger/store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/backup_engine.h>
#include <rocksdb/write_batch.h>

#include <cassert>
#include <filesystem>
#include <future>
#include <memory>

namespace subledger {

namespace {

// The one place a rocksdb::Status becomes our error text.
std::string to_error(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return "";
  return std::string(what) + ": " + s.ToString();
}

constexpr const char* kColumnFamilies[] = {"default", "events", "streams", "idempotency",
                                           "projections"};
enum Cf { kDefault = 0, kEvents, kStreams, kIdempotency, kProjections, kCfCount };

std::string stream_prefix(const Stream& s) {
  std::string key(1, static_cast<char>(s.kind));
  key += s.id;
  key.push_back('\0');
  return key;
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

struct Store::Impl {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::WriteBatch batch;
  size_t staged = 0;
  std::string dir;
  std::future<std::string> in_flight;  // the batch being written by commit_async
  bool wrote = false;

  ~Impl() {
    if (in_flight.valid()) in_flight.wait();
    // A writer leaves its memtables flushed: the next process to open the ledger (a query, a
    // replay, the next month's bill) then starts at once instead of replaying the WAL into memory.
    if (wrote && db) db->Flush(rocksdb::FlushOptions(), cfs);
    for (auto* cf : cfs) db->DestroyColumnFamilyHandle(cf);
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

std::unique_ptr<Store> Store::open(const std::string& dir, std::string& error) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.compression = rocksdb::kLZ4Compression;
  cf_options.write_buffer_size = 64 << 20;
  rocksdb::BlockBasedTableOptions table;
  table.block_size = 16 * 1024;
  // Every new request id is looked up before it is decided and is nearly always absent: a Bloom
  // filter answers those lookups without reading table blocks (also sub/ and inv/ row reads).
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kColumnFamilies) descriptors.emplace_back(name, cf_options);
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, descriptors, &impl->cfs, &db);
  if (!s.ok()) {
    error = to_error(s, "cannot open the ledger database in " + dir);
    return nullptr;
  }
  impl->db.reset(db);
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

void Store::stage_event(uint64_t seq, const Stream& stream, uint64_t version,
                        std::string_view bytes) {
  impl_->batch.Put(impl_->cfs[kEvents], be64(seq), rocksdb::Slice(bytes.data(), bytes.size()));
  impl_->batch.Put(impl_->cfs[kStreams], stream_prefix(stream) + be64(version), be64(seq));
  ++impl_->staged;
}

void Store::stage_idempotency(const std::string& request_id, std::string_view record) {
  impl_->batch.Put(impl_->cfs[kIdempotency], request_id,
                   rocksdb::Slice(record.data(), record.size()));
}

void Store::stage_projection(std::string_view key, std::string_view value) {
  impl_->batch.Put(impl_->cfs[kProjections], rocksdb::Slice(key.data(), key.size()),
                   rocksdb::Slice(value.data(), value.size()));
}

size_t Store::staged_bytes() const { return impl_->batch.GetDataSize(); }
size_t Store::staged_count() const { return impl_->staged; }

std::string Store::commit(bool sync) {
  if (impl_->batch.Count() == 0) return "";
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  impl_->wrote = true;
  std::string error = to_error(impl_->db->Write(wo, &impl_->batch), "write to the ledger failed");
  impl_->batch.Clear();
  impl_->staged = 0;
  return error;
}

void Store::commit_async(bool sync) {
  wait_written();  // at most one batch in flight; its error was the caller's to collect
  auto batch = std::make_shared<rocksdb::WriteBatch>(std::move(impl_->batch));
  impl_->batch = rocksdb::WriteBatch();
  impl_->staged = 0;
  rocksdb::DB* db = impl_->db.get();
  impl_->wrote = true;
  impl_->in_flight = std::async(std::launch::async, [db, batch, sync] {
    if (batch->Count() == 0) return std::string();
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return to_error(db->Write(wo, batch.get()), "write to the ledger failed");
  });
}

std::string Store::wait_written() {
  if (!impl_->in_flight.valid()) return "";
  return impl_->in_flight.get();
}

void Store::discard_staged() {
  impl_->batch.Clear();
  impl_->staged = 0;
}

uint64_t Store::last_seq() const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cfs[kEvents]));
  it->SeekToLast();
  return it->Valid() ? from_be64(std::string_view(it->key().data(), it->key().size())) : 0;
}

std::optional<std::string> Store::event_bytes(uint64_t seq) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cfs[kEvents], be64(seq), &value);
  if (!s.ok()) return std::nullopt;
  return value;
}

std::string Store::scan_events(uint64_t after_seq,
                               const std::function<bool(uint64_t, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.readahead_size = 4 << 20;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cfs[kEvents]));
  for (it->Seek(be64(after_seq + 1)); it->Valid(); it->Next()) {
    if (it->key().size() != 8) return "event key of unexpected size";
    uint64_t seq = from_be64(std::string_view(it->key().data(), 8));
    if (!fn(seq, std::string_view(it->value().data(), it->value().size()))) break;
  }
  return to_error(it->status(), "reading the event log failed");
}

std::string Store::scan_projections(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.readahead_size = 4 << 20;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cfs[kProjections]));
  rocksdb::Slice start(prefix.data(), prefix.size());
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size())))
      break;
  }
  return to_error(it->status(), "reading the projections failed");
}

std::vector<uint64_t> Store::stream_seqs(const Stream& stream) const {
  std::vector<uint64_t> out;
  std::string prefix = stream_prefix(stream);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cfs[kStreams]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    out.push_back(from_be64(std::string_view(it->value().data(), it->value().size())));
  return out;
}

std::optional<std::string> Store::idempotency(const std::string& request_id) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cfs[kIdempotency], request_id, &value);
  if (!s.ok()) return std::nullopt;
  return value;
}

std::optional<std::string> Store::projection(std::string_view key) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cfs[kProjections],
                          rocksdb::Slice(key.data(), key.size()), &value);
  if (!s.ok()) return std::nullopt;
  return value;
}

std::string Store::overwrite_event_for_test(uint64_t seq, std::string_view bytes) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return to_error(impl_->db->Put(wo, impl_->cfs[kEvents], be64(seq),
                                 rocksdb::Slice(bytes.data(), bytes.size())),
                  "overwrite failed");
}

std::string Store::delete_event_for_test(uint64_t seq) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return to_error(impl_->db->Delete(wo, impl_->cfs[kEvents], be64(seq)), "delete failed");
}

std::string Store::backup(const std::string& backup_dir) {
  rocksdb::BackupEngine* engine = nullptr;
  auto s = rocksdb::BackupEngine::Open(rocksdb::Env::Default(),
                                       rocksdb::BackupEngineOptions(backup_dir), &engine);
  if (!s.ok()) return to_error(s, "cannot open backup directory " + backup_dir);
  std::unique_ptr<rocksdb::BackupEngine> owned(engine);
  return to_error(owned->CreateNewBackup(impl_->db.get(), /*flush_before_backup=*/true),
                  "backup failed");
}

std::string Store::backup_of(const std::string& db_dir, const std::string& backup_dir,
                             bool& was_in_use, uint64_t& last_seq) {
  was_in_use = false;
  std::string error;
  if (auto store = Store::open(db_dir, error)) {
    last_seq = store->last_seq();
    return store->backup(backup_dir);
  }
  if (error.find("lock") == std::string::npos) return error;
  // Another process holds the ledger. Read it through a secondary instance (no lock; it sees
  // every batch the primary has made durable, never half of one), copy that state into a staging
  // database, and back the staging database up with the BackupEngine.
  was_in_use = true;
  const std::string secondary_dir = backup_dir + ".secondary";
  const std::string staging_dir = backup_dir + ".staging";
  rocksdb::DestroyDB(staging_dir, rocksdb::Options());
  rocksdb::DBOptions options;
  options.max_open_files = -1;  // hold every table file open while the primary compacts
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kColumnFamilies)
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s =
      rocksdb::DB::OpenAsSecondary(options, db_dir, secondary_dir, descriptors, &handles, &raw);
  if (!s.ok()) return to_error(s, "cannot read the ledger in use in " + db_dir);
  std::unique_ptr<rocksdb::DB> secondary(raw);
  auto release = [&] {
    for (auto* h : handles) secondary->DestroyColumnFamilyHandle(h);
    secondary.reset();
  };
  s = secondary->TryCatchUpWithPrimary();
  if (s.ok()) {
    auto staging = Store::open(staging_dir, error);
    if (!staging) {
      release();
      return error;
    }
    for (size_t cf = 0; cf < handles.size() && s.ok(); ++cf) {
      std::unique_ptr<rocksdb::Iterator> it(
          secondary->NewIterator(rocksdb::ReadOptions(), handles[cf]));
      rocksdb::WriteBatch batch;
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        batch.Put(staging->impl_->cfs[cf], it->key(), it->value());
        if (batch.GetDataSize() > (32 << 20)) {
          s = staging->impl_->db->Write(rocksdb::WriteOptions(), &batch);
          batch.Clear();
          if (!s.ok()) break;
        }
      }
      if (s.ok()) s = it->status();
      if (s.ok()) s = staging->impl_->db->Write(rocksdb::WriteOptions(), &batch);
    }
    if (s.ok()) {
      last_seq = staging->last_seq();
      error = staging->backup(backup_dir);
    }
  }
  release();
  rocksdb::DestroyDB(staging_dir, rocksdb::Options());
  std::error_code ignored;
  std::filesystem::remove_all(staging_dir, ignored);
  std::filesystem::remove_all(secondary_dir, ignored);
  if (!s.ok()) return to_error(s, "copying the ledger in use failed");
  return error;
}

std::string Store::restore(const std::string& backup_dir, const std::string& db_dir) {
  rocksdb::BackupEngineReadOnly* engine = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(rocksdb::Env::Default(),
                                               rocksdb::BackupEngineOptions(backup_dir), &engine);
  if (!s.ok()) return to_error(s, "cannot open backup directory " + backup_dir);
  std::unique_ptr<rocksdb::BackupEngineReadOnly> owned(engine);
  return to_error(owned->RestoreDBFromLatestBackup(db_dir, db_dir), "restore failed");
}

uint64_t Store::disk_bytes() const {
  uint64_t total = 0, v = 0;
  for (auto* cf : impl_->cfs)
    if (impl_->db->GetIntProperty(cf, "rocksdb.total-sst-files-size", &v)) total += v;
  return total;
}

}  // namespace subledger
