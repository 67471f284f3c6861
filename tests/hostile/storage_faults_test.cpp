// Hostile storage cases, second round (issue 9, classes 7-9): a damaged write-ahead log, restore
// and backup onto dangerous targets or a disk that fills up, damaged derived index column
// families, and writers on a read-only directory. Each drives the real binary against a real
// RocksDB directory.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ledger/ledger.h"
#include "ledger/store.h"
#include "support/process.h"
#include "support/tmpfs.h"

namespace subledger::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string scenario(const std::string& name) {
  return std::string(PROJECT_SCENARIOS_DIR) + "/" + name + ".jsonl";
}

void apply_to(const std::string& db, const std::string& name) {
  RunResult r = run(bin() + " apply --db '" + db + "' " + scenario(name) + " >/dev/null 2>&1");
  ASSERT_EQ(r.status, 0) << db;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// ================= class 8: a damaged write-ahead log =================

// A writer that commits (synced) and dies without closing: its events are only in the WAL.
void write_and_die(const std::string& db, const std::string& input) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Ledger::Options o;
    auto l = Ledger::open(db, std::move(o));
    if (!l.ok()) _exit(3);
    for (const auto& line : lines_of(read_file(input))) (*l)->submit(line);
    if (!(*l)->commit().ok()) _exit(4);
    _exit(0);  // no close: nothing is flushed into table files
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
}

TEST(HostileWal, AFlippedByteInTheWriteAheadLogIsReportedAndWritesAreRefused) {
  TempDir dir("hw-flip");
  std::string db = dir / "db";
  write_and_die(db, scenario("07-cancel-and-reactivate"));
  fs::path wal;
  for (const auto& e : fs::directory_iterator(db))
    if (e.path().extension() == ".log" && (wal.empty() || e.file_size() > fs::file_size(wal)))
      wal = e.path();
  ASSERT_FALSE(wal.empty());
  ASSERT_GT(fs::file_size(wal), 1000u) << "the events should be in the write-ahead log";
  std::string bytes = read_file(wal);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
  write_file(wal, bytes);
  auto before = entries(db);
  for (const std::string c : {"log", "replay --verify", "invoices", "state S1"}) {
    Both r = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(r.status, 2) << c << " read a damaged log as if whole: " << r.out;
    EXPECT_NE(r.err.find("write-ahead log"), std::string::npos) << c << ": " << r.err;
  }
  Both w = apply_more_seats(db, "2017-08-01");
  EXPECT_EQ(w.status, 2);
  EXPECT_TRUE(w.out.empty()) << "acknowledged on a damaged log: " << w.out;
  EXPECT_NE(w.err.find("write-ahead log"), std::string::npos) << w.err;
  EXPECT_EQ(lines_of(w.err).size(), 1u) << w.err;
  EXPECT_EQ(run_both(bin() + " bill --through 2017-09-30 --db " + db).status, 2);
  EXPECT_EQ(run_both(bin() + " rebuild --db " + db).status, 2);
  EXPECT_EQ(entries(db), before) << "refusing changed the ledger";
  EXPECT_EQ(read_file(wal), bytes);
}

TEST(HostileWal, AnIntactWriteAheadLogOfADeadWriterLosesNothing) {
  TempDir dir("hw-intact");
  std::string db = dir / "db", whole = dir / "whole";
  write_and_die(db, scenario("07-cancel-and-reactivate"));
  apply_to(whole, "07-cancel-and-reactivate");
  RunResult log = run(bin() + " log --db " + db);
  EXPECT_EQ(log.status, 0);
  EXPECT_EQ(lines_of(log.out).size(), lines_of(run(bin() + " log --db " + whole).out).size());
  EXPECT_EQ(run(bin() + " apply --db " + db + " " + scenario("07-cancel-and-reactivate") +
                " >/dev/null 2>&1")
                .status,
            0);
  EXPECT_EQ(run(bin() + " log --db " + db).out, log.out) << "a retry was applied again";
}

// ================= class 7: restore and backup targets =================

TEST(HostileRestoreTarget, ForceNeverDeletesADirectoryThatIsNotALedger) {
  TempDir dir("ht-user");
  std::string db = dir / "db", backup = dir / "backup", user = dir / "userdir";
  apply_to(db, "07-cancel-and-reactivate");
  ASSERT_EQ(run(bin() + " backup " + backup + " --db " + db + " >/dev/null").status, 0);
  fs::create_directories(user);
  write_file(user + "/notes.txt", "precious");
  Both b = run_both(bin() + " restore " + backup + " --force --db " + user);
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("not a ledger"), std::string::npos) << b.err;
  EXPECT_EQ(read_file(user + "/notes.txt"), "precious");
  EXPECT_EQ(entries(user), std::vector<std::string>{"notes.txt"});
  // A file beside a ledger's files is someone's too.
  std::string mixed = dir / "mixed";
  apply_to(mixed, "01-annual-purchase-renewal");
  write_file(mixed + "/keep.me", "x");
  EXPECT_EQ(run_both(bin() + " restore " + backup + " --force --db " + mixed).status, 2);
  EXPECT_TRUE(fs::exists(mixed + "/keep.me"));
  // A backup directory is not a ledger either, its own least of all.
  Both own = run_both(bin() + " restore " + backup + " --force --db " + backup);
  EXPECT_EQ(own.status, 2);
  EXPECT_EQ(run(bin() + " backups " + backup).out.empty(), false);
  std::string other_backup = dir / "backup2";
  ASSERT_EQ(run(bin() + " backup " + other_backup + " --db " + db + " >/dev/null").status, 0);
  EXPECT_EQ(run_both(bin() + " restore " + backup + " --force --db " + other_backup).status, 2);
  EXPECT_FALSE(run(bin() + " backups " + other_backup).out.empty());
  EXPECT_EQ(run_both(bin() + " restore " + backup + " --force --db " + backup + "/inner").status,
            2);
  EXPECT_FALSE(fs::exists(backup + "/inner"));
  Both empty = run_both(bin() + " restore " + backup + " --db ''");
  EXPECT_EQ(empty.status, 2);
  EXPECT_NE(empty.err.find("--db is empty"), std::string::npos) << empty.err;
  // A ledger is still replaced with --force, and a new directory is created.
  ASSERT_EQ(run(bin() + " restore " + backup + " --force --db " + mixed + " >/dev/null 2>&1")
                .status,
            2);
  fs::remove(mixed + "/keep.me");
  ASSERT_EQ(run(bin() + " restore " + backup + " --force --db " + mixed + " >/dev/null").status,
            0);
  EXPECT_EQ(run(bin() + " invoices --db " + mixed).out, run(bin() + " invoices --db " + db).out);
  ASSERT_EQ(run(bin() + " restore " + backup + " --db " + dir / "fresh" + " >/dev/null").status,
            0);
  EXPECT_EQ(run(bin() + " invoices --db " + dir / "fresh").out,
            run(bin() + " invoices --db " + db).out);
  for (const auto& name : entries(dir.str()))
    EXPECT_EQ(name.find(".restoring-"), std::string::npos) << "staging left behind: " << name;
}

TEST(HostileBackupTarget, DangerousBackupDirectoriesAreRefused) {
  TempDir dir("hb-targets");
  std::string db = dir / "db", other = dir / "other", user = dir / "userdir";
  apply_to(db, "07-cancel-and-reactivate");
  apply_to(other, "01-annual-purchase-renewal");
  auto ledger_files = entries(db);
  Both empty = run_both(bin() + " backup '' --db " + db);
  EXPECT_EQ(empty.status, 2);
  EXPECT_NE(empty.err.find("empty"), std::string::npos) << empty.err;
  EXPECT_EQ(run_both(bin() + " backup " + db + " --db " + db).status, 2);
  EXPECT_EQ(run_both(bin() + " backup " + db + "/bk --db " + db).status, 2);
  EXPECT_FALSE(fs::exists(db + "/bk"));
  EXPECT_EQ(entries(db), ledger_files);
  std::string other_log = run(bin() + " log --db " + other).out;
  Both into_ledger = run_both(bin() + " backup " + other + " --db " + db);
  EXPECT_EQ(into_ledger.status, 2);
  EXPECT_NE(into_ledger.err.find("is a ledger"), std::string::npos) << into_ledger.err;
  EXPECT_EQ(run(bin() + " log --db " + other).out, other_log);
  fs::create_directories(user);
  write_file(user + "/notes.txt", "precious");
  Both into_user = run_both(bin() + " backup " + user + " --db " + db);
  EXPECT_EQ(into_user.status, 2);
  EXPECT_NE(into_user.err.find("not a backup directory"), std::string::npos) << into_user.err;
  EXPECT_EQ(entries(user), std::vector<std::string>{"notes.txt"});
  // An empty directory and an existing backup directory are fine; nothing is left beside them.
  fs::create_directories(dir / "bk");
  ASSERT_EQ(run(bin() + " backup " + dir / "bk" + " --db " + db + " >/dev/null").status, 0);
  ASSERT_EQ(run(bin() + " backup " + dir / "bk" + " --db " + db + " >/dev/null").status, 0);
  EXPECT_EQ(lines_of(run(bin() + " backups " + dir / "bk").out).size(), 2u);
  for (const auto& name : entries(dir.str()))
    EXPECT_EQ(name.find(".staging"), std::string::npos) << "staging left behind: " << name;
}

// ================= class 8: restore onto a disk that fills up =================

TEST(HostileRestoreTarget, ADiskFullRestoreLeavesTheOldLedgerWhole) {
  TempDir dir("ht-full");
  std::string big = dir / "big", input = dir / "w.jsonl", backup = dir / "backup";
  std::string mnt = dir / "mnt";
  ASSERT_EQ(run(bin() + " gen --subscriptions 3000 --seed 7 --months 12 -o " + input).status, 0);
  ASSERT_EQ(run(bin() + " apply --db " + big + " " + input + " >/dev/null 2>&1").status, 0);
  ASSERT_EQ(run(bin() + " backup " + backup + " --db " + big + " >/dev/null").status, 0);
  uintmax_t backup_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(backup))
    if (e.is_regular_file()) backup_bytes += e.file_size();
  // Room for the small ledger and half the backup.
  Tmpfs fs_(mnt, std::to_string(1 + backup_bytes / 2 / 1024) + "k");
  SKIP_UNLESS_MOUNTED(fs_);
  std::string db = mnt + "/db";
  apply_to(db, "07-cancel-and-reactivate");
  std::string log = run(bin() + " log --db " + db).out;
  auto files = entries(db);
  Both b = run_both(bin() + " restore " + backup + " --force --db " + db);
  EXPECT_EQ(b.status, 2);
  EXPECT_EQ(lines_of(b.err).size(), 1u) << b.err;
  EXPECT_EQ(entries(db), files);
  EXPECT_EQ(run(bin() + " log --db " + db).out, log) << "the old ledger was damaged";
  EXPECT_EQ(run(bin() + " replay --verify --db " + db + " >/dev/null 2>&1").status, 0);
  // Into a new directory: no half-restored ledger is left.
  Both fresh = run_both(bin() + " restore " + backup + " --db " + mnt + "/fresh");
  EXPECT_EQ(fresh.status, 2);
  EXPECT_FALSE(fs::exists(mnt + "/fresh"));
  EXPECT_EQ(entries(mnt), std::vector<std::string>{"db"}) << "staging left behind";
}

// ================= class 8: writers on a read-only directory =================

TEST(HostileReadOnly, WritersNameTheReadOnlyFileSystemNotAnotherProcess) {
  TempDir dir("hr-ro-writers");
  std::string mnt = dir / "mnt";
  Tmpfs fs_(mnt, "16m");
  SKIP_UNLESS_MOUNTED(fs_);
  std::string db = mnt + "/db";
  apply_to(db, "07-cancel-and-reactivate");
  ASSERT_TRUE(fs_.remount_read_only());
  for (const std::string c : {"apply /dev/null", "bill --through 2017-09-30", "rebuild",
                              "migrate"}) {
    Both b = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(b.status, 2) << c;
    EXPECT_EQ(b.err.find("in use"), std::string::npos) << c << ": " << b.err;
    EXPECT_NE(b.err.find("read-only"), std::string::npos) << c << ": " << b.err;
  }
  Both r = run_both(bin() + " restore " + dir / "nobackup" + " --force --db " + db);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.find("in use"), std::string::npos) << r.err;
}

// ================= class 9: damaged derived index column families =================

void expect_duplicates_of(const std::string& db, const std::string& first_answers) {
  RunResult again =
      run(bin() + " apply --db " + db + " " + scenario("07-cancel-and-reactivate") + " 2>/dev/null");
  auto was = lines_of(first_answers), now = lines_of(again.out);
  ASSERT_EQ(now.size(), was.size()) << again.out;
  for (size_t i = 0; i < now.size(); ++i) {
    Json w = Json::parse(was[i]), n = Json::parse(now[i]);
    if (!w["ok"].get<bool>()) continue;
    EXPECT_EQ(n["duplicate"], true) << "applied twice: " << now[i];
    EXPECT_EQ(n["seq_first"], w["seq_first"]) << now[i];
    EXPECT_EQ(n["seq_last"], w["seq_last"]) << now[i];
  }
}

TEST(HostileIndex, ADamagedStreamIndexNamesRebuildAndRebuildRewritesIt) {
  TempDir dir("hi-streams");
  std::string db = dir / "db";
  std::string answers =
      run(bin() + " apply --db " + db + " " + scenario("07-cancel-and-reactivate") + " 2>/dev/null")
          .out;
  std::string history = run(bin() + " history S1 --db " + db).out;
  ASSERT_FALSE(history.empty());
  auto tables = tables_of(db, "streams");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) flip_byte(t, 40);
  Both h = run_both(bin() + " history S1 --db " + db);
  EXPECT_EQ(h.status, 2);
  EXPECT_NE(h.err.find("subledger rebuild"), std::string::npos) << h.err;
  Both r = run_both(bin() + " rebuild --db " + db);
  ASSERT_EQ(r.status, 0) << r.err;
  Json summary = Json::parse(r.out);
  EXPECT_NE(summary["rewrote"].dump().find("streams"), std::string::npos) << r.out;
  EXPECT_GT(summary["stream_entries"].get<int>(), 0);
  EXPECT_EQ(run(bin() + " history S1 --db " + db).out, history);
  expect_duplicates_of(db, answers);
  EXPECT_EQ(run(bin() + " replay --verify --db " + db + " >/dev/null 2>&1").status, 0);
}

TEST(HostileIndex, DamagedIdempotencyRecordsAreRederivedSoARetryIsStillADuplicate) {
  TempDir dir("hi-idem");
  std::string db = dir / "db";
  std::string answers =
      run(bin() + " apply --db " + db + " " + scenario("07-cancel-and-reactivate") + " 2>/dev/null")
          .out;
  std::string log = run(bin() + " log --db " + db).out;
  auto tables = tables_of(db, "idempotency");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) flip_byte(t, 40);
  Both retry = run_both(bin() + " apply --db " + db + " " + scenario("07-cancel-and-reactivate"));
  EXPECT_EQ(retry.status, 2);
  EXPECT_NE(retry.err.find("subledger rebuild"), std::string::npos) << retry.err;
  EXPECT_EQ(run(bin() + " log --db " + db).out, log) << "a retry was applied on damaged records";
  Both r = run_both(bin() + " rebuild --db " + db);
  ASSERT_EQ(r.status, 0) << r.err;
  Json summary = Json::parse(r.out);
  EXPECT_NE(summary["rewrote"].dump().find("idempotency"), std::string::npos) << r.out;
  EXPECT_GT(summary["idempotency_records_rederived"].get<int>(), 0) << r.out;
  expect_duplicates_of(db, answers);
  EXPECT_EQ(run(bin() + " log --db " + db).out, log) << "a retry was applied twice";
  // migrate of a current ledger is fine as well after the damage was repaired.
  EXPECT_EQ(run(bin() + " migrate --db " + db + " >/dev/null 2>&1").status, 0);
}

TEST(HostileIndex, AnInterruptedIndexRewriteIsRefusedUntilRebuildFinishesIt) {
  TempDir dir("hi-interrupted");
  std::string db = dir / "db";
  apply_to(db, "07-cancel-and-reactivate");
  {
    std::string error;
    auto store = Store::open(db, error);
    ASSERT_TRUE(store) << error;
    ASSERT_EQ(store->put_raw_for_test("default", "index_rebuild_in_progress", "1"), absl::OkStatus());
  }
  Both w = run_both(bin() + " apply /dev/null --db " + db);
  EXPECT_EQ(w.status, 2);
  EXPECT_NE(w.err.find("subledger rebuild"), std::string::npos) << w.err;
  EXPECT_EQ(run_both(bin() + " history S1 --db " + db).status, 2);
  ASSERT_EQ(run(bin() + " rebuild --db " + db + " >/dev/null 2>&1").status, 0);
  EXPECT_EQ(run(bin() + " apply /dev/null --db " + db + " >/dev/null 2>&1").status, 0);
}

// A table file damaged in its footer stops RocksDB from opening the ledger at all.
TEST(HostileIndex, ATableOfDerivedDataDamagedInItsFooterIsDroppedAndRewrittenByRebuild) {
  for (const std::string cf : {"projections", "streams", "idempotency"}) {
    TempDir dir("hi-footer-" + cf);
    std::string db = dir / "db";
    std::string answers = run(bin() + " apply --db " + db + " " +
                              scenario("07-cancel-and-reactivate") + " 2>/dev/null")
                              .out;
    std::string invoices = run(bin() + " invoices --db " + db).out;
    auto tables = tables_of(db, cf);
    ASSERT_FALSE(tables.empty()) << cf;
    for (const auto& t : tables) flip_byte(t, fs::file_size(t) - 4);  // the magic number
    for (const std::string c : {"invoices", "apply /dev/null"}) {
      Both b = run_both(bin() + " " + c + " --db " + db);
      EXPECT_EQ(b.status, 2) << cf << ": " << c;
      EXPECT_NE(b.err.find("subledger rebuild"), std::string::npos) << cf << ": " << b.err;
    }
    Both r = run_both(bin() + " rebuild --db " + db);
    ASSERT_EQ(r.status, 0) << cf << ": " << r.err;
    EXPECT_EQ(run(bin() + " invoices --db " + db).out, invoices) << cf;
    expect_duplicates_of(db, answers);
    EXPECT_EQ(run(bin() + " replay --verify --db " + db + " >/dev/null 2>&1").status, 0) << cf;
  }
}

TEST(HostileIndex, RebuildNeverDropsATableOfTheLog) {
  TempDir dir("hi-footer-events");
  std::string db = dir / "db";
  apply_to(db, "07-cancel-and-reactivate");
  auto tables = tables_of(db, "events");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) flip_byte(t, fs::file_size(t) - 4);
  auto before = entries(db);
  Both r = run_both(bin() + " rebuild --db " + db);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.find("subledger rebuild"), std::string::npos) << r.err;
  EXPECT_EQ(entries(db), before);
}

}  // namespace
}  // namespace subledger::testing
