// Backup and restore of a ledger (RocksDB's BackupEngine), apart from the store's reads and writes.
#include <fcntl.h>
#include <rocksdb/env.h>
#include <rocksdb/utilities/backup_engine.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ledger/store.h"
#include "ledger/store_internal.h"

namespace subledger {

namespace fs = std::filesystem;

absl::Status Store::backup(const std::string& backup_dir) {
  rocksdb::BackupEngine* engine = nullptr;
  auto s = rocksdb::BackupEngine::Open(rocksdb::Env::Default(),
                                       rocksdb::BackupEngineOptions(backup_dir), &engine);
  if (!s.ok()) return to_status(s, "cannot open backup directory " + backup_dir);
  std::unique_ptr<rocksdb::BackupEngine> owned(engine);
  // The backup's metadata records its last sequence number (listed by `backups`).
  return to_status(owned->CreateNewBackupWithMetadata(impl_->db.get(), std::to_string(last_seq()),
                                                      /*flush_before_backup=*/true),
                   "backup failed");
}

namespace {

// Holds RocksDB's own lock file of a ledger directory, so no process opens the ledger meanwhile
// and none is using it now (RocksDB takes the same lock on open).
class LedgerLock {
 public:
  static absl::StatusOr<std::unique_ptr<LedgerLock>> take(const std::string& dir) {
    auto lock = std::unique_ptr<LedgerLock>(new LedgerLock);
    auto s = rocksdb::Env::Default()->LockFile((fs::path(dir) / "LOCK").string(), &lock->lock_);
    if (!s.ok()) {
      absl::Status status = to_status(s, "lock");
      if (!absl::IsFailedPrecondition(status))
        return absl::Status(status.code(), "cannot lock the ledger in " + dir + " (" +
                                               std::string(status.message()) + ")");
      return absl::FailedPreconditionError(
          "the ledger in " + dir + " is in use by another process; stop it first (" +
          std::string(status.message()) + ")");
    }
    return lock;
  }
  ~LedgerLock() {
    if (lock_) rocksdb::Env::Default()->UnlockFile(lock_).PermitUncheckedError();
  }

 private:
  LedgerLock() = default;
  rocksdb::FileLock* lock_ = nullptr;
};

}  // namespace

namespace {

// What a directory named as a restore target or a backup directory holds. Restore replaces only
// a ledger and backup writes only into a backup directory: anything else is someone's files.
enum class Target { kMissing, kEmpty, kLedger, kBackups, kOther };

// A file of a ledger: RocksDB's, or the list of whole log tables a writer keeps beside them.
bool is_ledger_file(const std::string& name) {
  auto ends = [&](std::string_view suffix) { return name.ends_with(suffix); };
  return name == "CURRENT" || name == "IDENTITY" || name == "LOCK" || name.starts_with("LOG") ||
         name.starts_with("MANIFEST-") || name.starts_with("OPTIONS-") || ends(".sst") ||
         ends(".log") || ends(".blob") || ends(".dbtmp") || name == kWholeEventTablesFile ||
         name == kWholeEventTablesTemporary;
}

// `first_other` names an entry that made it kOther (for the message).
absl::StatusOr<Target> classify(const std::string& dir, std::string& first_other) {
  std::error_code ec;
  auto st = fs::status(dir, ec);
  if (!fs::exists(st)) return Target::kMissing;
  if (!fs::is_directory(st)) {
    first_other = dir + " is a file";
    return Target::kOther;
  }
  bool any = false, marker = false, rocks = true, backups = true, meta = false;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name == "LOCK") continue;  // left by a lock taken on an empty directory
    any = true;
    if (name == "CURRENT" || name == "IDENTITY" || name.starts_with("MANIFEST-")) marker = true;
    if (name == "meta") meta = true;
    bool backup_entry = e.is_directory() && (name == "meta" || name == "private" ||
                                             name == "shared" || name == "shared_checksum");
    if (!is_ledger_file(name)) rocks = false;
    if (!backup_entry) backups = false;
    if (!is_ledger_file(name) && !backup_entry && first_other.empty()) first_other = name;
  }
  if (ec) return absl::UnavailableError("cannot read " + dir + ": " + ec.message());
  if (!any) return Target::kEmpty;
  if (rocks && marker) return Target::kLedger;
  if (backups && meta) return Target::kBackups;
  if (first_other.empty()) first_other = "files of an incomplete ledger or backup";
  return Target::kOther;
}

// True if `a` and `b` are the same directory or one lies inside the other.
bool overlap(const std::string& a, const std::string& b) {
  std::error_code ec;
  fs::path x = fs::weakly_canonical(fs::absolute(a), ec), y = fs::weakly_canonical(fs::absolute(b), ec);
  auto inside = [](const fs::path& inner, const fs::path& outer) {
    auto o = outer.begin(), i = inner.begin();
    for (; o != outer.end(); ++o, ++i) {
      if (o->empty()) continue;  // a trailing separator
      if (i == inner.end() || *i != *o) return false;
    }
    return true;
  };
  return inside(x, y) || inside(y, x);
}

// A new empty directory beside `target` (same file system, so a rename can swap them).
absl::StatusOr<std::string> staging_beside(const std::string& target, const std::string& what) {
  std::error_code ec;
  fs::path t = fs::weakly_canonical(fs::absolute(target), ec);
  if (t.filename().empty()) t = t.parent_path();
  fs::path parent = t.parent_path();
  fs::create_directories(parent, ec);
  std::string tmpl = (parent / ("." + t.filename().string() + "." + what + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data()))
    return absl::UnavailableError("cannot create a staging directory beside " + target + ": " +
                                  std::strerror(errno));
  return tmpl;
}

void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

absl::Status Store::backup_of(const std::string& db_dir, const std::string& backup_dir,
                              bool& was_in_use, uint64_t& last_seq) {
  if (db_dir.empty())
    return absl::InvalidArgumentError("--db is empty: name the ledger's directory");
  if (backup_dir.empty())
    return absl::InvalidArgumentError("the backup directory is empty: name a directory");
  if (overlap(db_dir, backup_dir))
    return absl::InvalidArgumentError(
        "the backup directory " + backup_dir + " and the ledger's directory " + db_dir +
        " are the same or one is inside the other: back up into a directory outside the ledger");
  {
    std::string other;
    auto target = classify(backup_dir, other);
    if (!target.ok()) return target.status();
    if (*target == Target::kLedger)
      return absl::InvalidArgumentError(
          backup_dir + " is a ledger, not a backup directory: back up into an empty or new "
                       "directory, or one that holds backups");
    if (*target == Target::kOther)
      return absl::InvalidArgumentError(
          backup_dir + " is not empty and not a backup directory (it holds " + other +
          "): back up into an empty or new directory, or one that holds backups");
  }
  // Backing up only reads the ledger, so it never writes into its directory (not even a flush),
  // in use or not: the ledger is read through a read-only (or secondary) instance, which sees
  // every batch a writer has made durable and never half of one; that state is copied into a
  // staging database outside the ledger, and the staging database is backed up.
  was_in_use = !LedgerLock::take(db_dir).ok();
  auto made = staging_beside(backup_dir, "staging");
  if (!made.ok()) return made.status();
  const std::string staging_dir = *made;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{staging_dir};
  auto reader = Store::open(db_dir, OpenOptions{Access::kRead, /*any_format=*/true,
                                                /*repairing_index=*/true});
  if (!reader.ok()) return reader.status();
  auto staging = Store::open(staging_dir, OpenOptions{Access::kCreateOrWrite, true});
  if (!staging.ok()) return staging.status();
  Impl& from = *(*reader)->impl_;
  Impl& to = *(*staging)->impl_;
  rocksdb::Status s;
  for (size_t cf = 0; cf < from.cfs.size() && s.ok(); ++cf) {
    std::unique_ptr<rocksdb::Iterator> it(from.db->NewIterator(checked_reads(), from.cfs[cf]));
    rocksdb::WriteBatch batch;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      batch.Put(to.cfs[cf], it->key(), it->value());
      if (batch.GetDataSize() > (32 << 20)) {
        s = to.db->Write(rocksdb::WriteOptions(), &batch);
        batch.Clear();
        if (!s.ok()) break;
      }
    }
    if (s.ok()) s = it->status();
    if (s.ok()) s = to.db->Write(rocksdb::WriteOptions(), &batch);
  }
  absl::Status error;
  if (s.ok()) {
    last_seq = (*staging)->last_seq();
    error = (*staging)->backup(backup_dir);
  }
  reader->reset();
  staging->reset();
  if (!s.ok()) return to_status(s, "copying the ledger in use failed");
  return error;
}

absl::StatusOr<std::vector<Store::BackupInfo>> Store::list_backups(const std::string& backup_dir) {
  std::error_code ec;
  if (!fs::is_directory(backup_dir, ec) || !fs::exists(fs::path(backup_dir) / "meta", ec))
    return absl::NotFoundError("no backups in " + backup_dir);
  rocksdb::BackupEngineReadOnly* engine = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(rocksdb::Env::Default(),
                                               rocksdb::BackupEngineOptions(backup_dir), &engine);
  if (!s.ok()) return to_status(s, "cannot open backup directory " + backup_dir);
  std::unique_ptr<rocksdb::BackupEngineReadOnly> owned(engine);
  std::vector<rocksdb::BackupInfo> infos;
  owned->GetBackupInfo(&infos);
  std::vector<BackupInfo> out;
  for (const auto& i : infos)
    out.push_back(BackupInfo{i.backup_id, i.timestamp, i.size, i.number_files});
  return out;
}

absl::Status Store::restore(const std::string& backup_dir, const std::string& db_dir,
                            uint32_t backup_id, bool force) {
  if (db_dir.empty()) return absl::InvalidArgumentError("--db is empty: name the ledger's directory");
  if (backup_dir.empty())
    return absl::InvalidArgumentError("the backup directory is empty: name a directory");
  if (overlap(db_dir, backup_dir))
    return absl::InvalidArgumentError(
        "the ledger's directory " + db_dir + " and the backup directory " + backup_dir +
        " are the same or one is inside the other: restore into a directory outside the backups");
  auto backups = list_backups(backup_dir);
  if (!backups.ok()) return backups.status();
  if (backups->empty()) return absl::NotFoundError("no backups in " + backup_dir);
  if (backup_id != 0 &&
      std::none_of(backups->begin(), backups->end(),
                   [&](const BackupInfo& b) { return b.id == backup_id; }))
    return absl::NotFoundError("no backup " + std::to_string(backup_id) + " in " + backup_dir +
                               " (`subledger backups " + backup_dir + "` lists them)");
  std::string other;
  auto target = classify(db_dir, other);
  if (!target.ok()) return target.status();
  if (*target == Target::kOther || *target == Target::kBackups)
    return absl::FailedPreconditionError(
        db_dir + " is not empty and not a ledger (it holds " +
        (*target == Target::kBackups ? std::string("backups") : other) +
        "): restore replaces only a ledger, even with --force; restore into an empty or new "
        "directory");
  if (*target == Target::kLedger && !force)
    return absl::FailedPreconditionError(
        db_dir + " is not empty: restoring replaces the ledger in it; pass --force to do that");
  // The ledger (or empty directory) stays untouched and locked until the backup is restored in
  // full beside it; only then the two are swapped by one rename. A failure (a full disk) leaves
  // it as it was and removes the half-restored copy.
  std::unique_ptr<LedgerLock> lock;
  if (*target != Target::kMissing) {
    auto taken = LedgerLock::take(db_dir);
    if (!taken.ok()) return taken.status();
    lock = std::move(*taken);
  }
  auto made = staging_beside(db_dir, "restoring");
  if (!made.ok()) return made.status();
  const std::string staging = *made;
  auto discard = [&](absl::Status status) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    return status;
  };
  rocksdb::BackupEngineReadOnly* engine = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(rocksdb::Env::Default(),
                                               rocksdb::BackupEngineOptions(backup_dir), &engine);
  if (!s.ok()) return discard(to_status(s, "cannot open backup directory " + backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> owned(engine);
  s = backup_id == 0 ? owned->RestoreDBFromLatestBackup(staging, staging)
                     : owned->RestoreDBFromBackup(backup_id, staging, staging);
  // A failed restore returns at the first file that failed while the engine's copying thread
  // still works through the files queued after it, into the staging directory. Closing the
  // engine joins that thread, so nothing writes into the staging directory once it is removed.
  owned.reset();
  if (!s.ok())
    return discard(to_status(s, "restore failed; " + db_dir + " was left as it was"));
  sync_dir(staging);
  std::error_code ec;
  fs::path target_path = fs::weakly_canonical(fs::absolute(db_dir), ec);
  if (target_path.filename().empty()) target_path = target_path.parent_path();
  int rc = 0;
  if (*target == Target::kMissing) {
    rc = ::rename(staging.c_str(), target_path.c_str());
  } else {
    rc = ::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target_path.c_str(), RENAME_EXCHANGE);
  }
  if (rc != 0)
    return discard(absl::UnavailableError("restore failed: cannot move the restored ledger into " +
                                          db_dir + ": " + std::strerror(errno) + "; " + db_dir +
                                          " was left as it was"));
  sync_dir(target_path.parent_path());
  lock.reset();
  return discard(absl::OkStatus());  // the old ledger, now at the staging path
}

}  // namespace subledger
