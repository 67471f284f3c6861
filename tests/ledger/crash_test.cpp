// Crash safety: a child applying a large command file is killed with SIGKILL part-way. After
// reopening, every command whose result line was printed is in the log, no command is half
// applied, and applying the same file again appends only what was missing: the final invoices are
// byte-identical to a ledger that never crashed. The projection rows written before the kill come
// back exactly as a full replay rebuilds them (replay --verify compares them row by row), and
// reopening catches up from their checkpoint exactly the events after it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "ledger/ledger.h"
#include "ledger/store.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

using nlohmann::json;

size_t count_lines(const std::string& path) {
  std::string text = read_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Starts `subledger apply` on `commands` into `db`, kills it once `kill_after` result lines are
// out (or it finishes), and returns the printed lines.
std::vector<std::string> apply_and_kill(const std::string& db, const std::string& commands,
                                        const std::string& out_path, size_t kill_after) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    execl(bin().c_str(), "subledger", "apply", "--db", db.c_str(), "--batch", "512",
          commands.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 60000 && count_lines(out_path) < kill_after; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return lines_of(read_file(out_path));
}

TEST(Crash, KilledApplyLosesNothingAcknowledgedAndRetriesSafely) {
  TempDir dir("crash");
  std::string commands = dir / "cmds.jsonl";
  ASSERT_EQ(run(bin() + " gen --subscriptions 6000 --seed 3 --months 12 -o " + commands +
                " 2>/dev/null").status, 0);
  size_t total = count_lines(commands);
  std::string clean = dir / "clean";
  ASSERT_EQ(run(bin() + " apply --db " + clean + " " + commands + " > /dev/null").status, 0);
  std::string expected_invoices = run(bin() + " invoices --db " + clean).out;

  std::string db = dir / "crashed";
  size_t acknowledged_total = 0;
  for (size_t kill_after : {total / 5, total / 2, (total * 4) / 5}) {
    auto printed = apply_and_kill(db, commands, dir / "out.jsonl", kill_after);
    acknowledged_total += printed.size();
    // Reopen: the log replays cleanly (no half-applied command), and re-applying answers every
    // acknowledged command as a duplicate with the same sequence numbers.
    ASSERT_EQ(run(bin() + " replay --verify --db " + db + " >/dev/null").status, 0);
    // A writer's open catches the derived keys up from the log (the kill may have left none of
    // them on disk: they are written without the WAL) and writes them; verify compares them.
    ASSERT_EQ(run(bin() + " apply --db " + db + " /dev/null 2>/dev/null").status, 0);
    RunResult verify = run(bin() + " replay --verify --db " + db);
    ASSERT_EQ(verify.status, 0) << verify.out;
    json report = json::parse(verify.out);
    EXPECT_GT(report["projection_rows_compared"].get<uint64_t>(), 0u) << verify.out;
    EXPECT_TRUE(report["projection_row_mismatches"].empty()) << verify.out;
    {
      std::string error;
      Ledger::Options options;
      options.preview = true;
      auto reopened = Ledger::open(db, std::move(options), error);
      ASSERT_TRUE(reopened) << error;
      // The rows on disk are those of some earlier batch (written without the WAL, they are as
      // of the last flush): the open catches up exactly the events after their checkpoint.
      const auto& report = reopened->open_report();
      EXPECT_EQ(report.checkpoint + report.events_caught_up, reopened->state().last_seq());
    }
    RunResult again = run(bin() + " apply --db " + db + " " + commands);
    auto results = lines_of(again.out);
    ASSERT_EQ(results.size(), total);
    for (size_t i = 0; i < printed.size(); ++i) {
      json before = json::parse(printed[i]), now = json::parse(results[i]);
      ASSERT_TRUE(now.value("duplicate", false)) << "acknowledged command " << i << " was lost";
      EXPECT_EQ(now["seq_first"], before["seq_first"]);
      EXPECT_EQ(now["seq_last"], before["seq_last"]);
    }
    EXPECT_EQ(run(bin() + " invoices --db " + db).out, expected_invoices);
    std::filesystem::remove_all(db);
  }
  EXPECT_GT(acknowledged_total, 0u);
}

// A writer fed through a pipe answers each line as soon as its batch is durable and then waits for
// more: killed there, it has acknowledged commands whose stream index entries, idempotency records
// and rows (written without the WAL, kept in memory until a flush) never reached the disk.
std::vector<std::string> apply_through_pipe_and_kill(const std::string& db,
                                                     const std::vector<std::string>& lines) {
  int to_child[2], from_child[2];
  EXPECT_EQ(pipe(to_child), 0);
  EXPECT_EQ(pipe(from_child), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to_child[0], STDIN_FILENO);
    dup2(from_child[1], STDOUT_FILENO);
    close(to_child[1]);
    close(from_child[0]);
    execl(bin().c_str(), "subledger", "apply", "--db", db.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  EXPECT_EQ(write(to_child[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  std::string out;
  char buf[4096];
  while (static_cast<size_t>(std::count(out.begin(), out.end(), '\n')) < lines.size()) {
    ssize_t n = read(from_child[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  kill(pid, SIGKILL);  // every line answered, its input still open: no clean close, no flush
  int status = 0;
  waitpid(pid, &status, 0);
  close(to_child[1]);
  close(from_child[0]);
  return lines_of(out);
}

TEST(Crash, AfterAKillTheLogAloneRestoresIndexRecordsAndRows) {
  TempDir dir("crash-derived");
  std::string commands = dir / "cmds.jsonl";
  ASSERT_EQ(run(bin() + " gen --subscriptions 300 --seed 5 --months 3 -o " + commands +
                " 2>/dev/null").status, 0);
  std::vector<std::string> lines = lines_of(read_file(commands));
  ASSERT_GT(lines.size(), 100u);
  std::string clean = dir / "clean", db = dir / "crashed";
  ASSERT_EQ(run(bin() + " apply --db " + clean + " " + commands + " >/dev/null").status, 0);
  std::vector<std::string> acknowledged = apply_through_pipe_and_kill(db, lines);
  ASSERT_EQ(acknowledged.size(), lines.size());
  {
    // The scenario under test: the log holds every acknowledged event, the index does not.
    auto store = Store::open(db, Store::OpenOptions{});
    ASSERT_TRUE(store.ok()) << store.status();
    auto mark = (*store)->derived_mark();
    ASSERT_TRUE(mark.ok()) << mark.status();
    ASSERT_LT(*mark, (*store)->last_seq()) << "the index reached the disk: nothing was tested";
  }
  // Right after the crash, before any writer caught anything up, readers answer from the log.
  EXPECT_EQ(run(bin() + " invoices --db " + db).out, run(bin() + " invoices --db " + clean).out);
  for (const std::string query : {"state S1", "state S150", "renewals --from 2025-01-01 --to 2027-01-01"})
    EXPECT_EQ(run(bin() + " " + query + " --db " + db).out,
              run(bin() + " " + query + " --db " + clean).out)
        << query;
  auto seqs_of = [](const std::string& text) {
    std::vector<uint64_t> out;
    for (const auto& line : lines_of(text)) out.push_back(json::parse(line)["seq"].get<uint64_t>());
    return out;
  };
  for (const std::string id : {"S1", "S150", "S300"}) {
    auto crashed = seqs_of(run(bin() + " history " + id + " --db " + db).out);
    EXPECT_FALSE(crashed.empty()) << id;
    EXPECT_EQ(crashed, seqs_of(run(bin() + " history " + id + " --db " + clean).out)) << id;
  }
  // Every command retried: a duplicate with its original result line, nothing appended.
  uint64_t last_before = 0;
  {
    auto store = Store::open(db, Store::OpenOptions{});
    ASSERT_TRUE(store.ok());
    last_before = (*store)->last_seq();
  }
  RunResult again = run(bin() + " apply --db " + db + " " + commands + " 2>/dev/null");
  auto retried = lines_of(again.out);
  ASSERT_EQ(retried.size(), acknowledged.size());
  for (size_t i = 0; i < acknowledged.size(); ++i) {
    json before = json::parse(acknowledged[i]), now = json::parse(retried[i]);
    if (!before.value("ok", false)) continue;  // a rejection is decided again, as before
    EXPECT_EQ(now.value("duplicate", false), true) << retried[i];
    now.erase("duplicate");
    EXPECT_EQ(now.dump(), before.dump()) << "line " << i;
  }
  {
    auto store = Store::open(db, Store::OpenOptions{});
    ASSERT_TRUE(store.ok());
    EXPECT_EQ((*store)->last_seq(), last_before);
    auto mark = (*store)->derived_mark();
    ASSERT_TRUE(mark.ok());
    EXPECT_EQ(*mark, last_before);
  }
  EXPECT_EQ(run(bin() + " replay --verify --db " + db + " >/dev/null").status, 0);
  EXPECT_EQ(run(bin() + " invoices --db " + db).out, run(bin() + " invoices --db " + clean).out);
}

// `bill` killed with SIGKILL while it writes a run in parts (`--part-mb 1`: about ten of them),
// 0, 20 and 60 ms after a reader first sees one written. Wherever the kill lands (between parts,
// or after the end on a fast machine), the ledger
// ends as one whose run was never killed: the next writer's open ends a run cut short, the
// invoices are byte for byte the same, `replay --verify` passes, and a retry of the run is a
// duplicate with the uncut run's result line.
TEST(Crash, KilledBillIsEndedByTheNextWriterWithTheSameInvoices) {
  TempDir dir("crash-bill");
  const std::string commands = dir / "cmds.jsonl";
  ASSERT_EQ(run(bin() + " gen --subscriptions 50000 --seed 5 --months 12 -o " + commands +
                " 2>/dev/null").status, 0);
  const std::string base = dir / "base";
  ASSERT_EQ(run(bin() + " apply --db " + base + " " + commands + " >/dev/null").status, 0);
  // The month after the generated year: annual renewals and monthly invoices, about 35k events.
  const std::string through = "2026-01-31";
  const std::string bill_args = " --through " + through + " --request-id month-end --part-mb 1";
  auto copy_of_base = [&](const std::string& name) {
    std::filesystem::remove_all(dir / name);
    std::filesystem::copy(base, dir / name, std::filesystem::copy_options::recursive);
    return dir / name;
  };
  const std::string clean = copy_of_base("clean");
  ASSERT_EQ(run(bin() + " bill --db " + clean + bill_args + " >/dev/null").status, 0);
  const std::string expected_invoices = run(bin() + " invoices --db " + clean).out;
  const std::string expected_retry = run(bin() + " bill --db " + clean + bill_args).out;
  ASSERT_NE(expected_retry.find("\"duplicate\":true"), std::string::npos) << expected_retry;

  int cut_between_parts = 0;  // where the kills landed depends on this machine's speed
  for (int kill_after_ms : {0, 20, 60}) {
    const std::string db = copy_of_base("killed");
    pid_t pid = fork();
    if (pid == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      execl(bin().c_str(), "subledger", "bill", "--db", db.c_str(), "--through", through.c_str(),
            "--request-id", "month-end", "--part-mb", "1", static_cast<char*>(nullptr));
      _exit(127);
    }
    // Killed `kill_after_ms` after a reader first sees a part written (or at once if the run
    // ended or never wrote one within 20 s).
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 4000 && !reaped; ++i) {
      auto look = Store::open(db, Store::OpenOptions{Store::Access::kRead});
      if (look.ok() && (*look)->unfinished_run().ok()) break;
      reaped = waitpid(pid, &status, WNOHANG) == pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!reaped) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    {
      auto store = Store::open(db, Store::OpenOptions{Store::Access::kRead});
      ASSERT_TRUE(store.ok()) << store.status();
      if ((*store)->unfinished_run().ok()) ++cut_between_parts;
    }
    // The retry ends the run (or runs it, if no part was written), then answers it.
    RunResult first = run(bin() + " bill --db " + db + bill_args + " 2>/dev/null");
    ASSERT_EQ(first.status, 0) << "killed after " << kill_after_ms << " ms: " << first.out;
    EXPECT_EQ(run(bin() + " bill --db " + db + bill_args).out, expected_retry)
        << "killed after " << kill_after_ms << " ms";
    EXPECT_EQ(run(bin() + " invoices --db " + db).out, expected_invoices)
        << "killed after " << kill_after_ms << " ms";
    RunResult verify = run(bin() + " replay --verify --db " + db);
    EXPECT_EQ(verify.status, 0) << verify.out;
  }
  RecordProperty("kills_between_parts", cut_between_parts);
  // Each kill follows the first part by at most 60 ms of a run of about ten parts.
  EXPECT_GE(cut_between_parts, 1) << "no kill landed between two parts: the test proved little";
}

}  // namespace
}  // namespace subledger::testing
