// Crash safety: a child applying a large command file is killed with SIGKILL part-way. After
// reopening, every command whose result line was printed is in the log, no command is half
// applied, and applying the same file again appends only what was missing: the final invoices are
// byte-identical to a ledger that never crashed. The projection rows written before the kill come
// back exactly as a full replay rebuilds them (replay --verify compares them row by row), and
// reopening starts from their checkpoint with nothing to catch up: rows and events share a batch.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "ledger/ledger.h"
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
      EXPECT_TRUE(reopened->open_report().from_checkpoint);
      EXPECT_EQ(reopened->open_report().events_caught_up, 0u);
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

}  // namespace
}  // namespace subledger::testing
