// Incremental projections: rows and their checkpoint are written in the batch that makes them
// true; opening loads them and catches up the events after the checkpoint, and the result is the
// state a full replay builds, row for row.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "ledger/ledger.h"
#include "ledger/store.h"
#include "replay/replay.h"
#include "support/process.h"
#include "workload/workload.h"

namespace subledger::testing {
namespace {

std::unique_ptr<Ledger> open(const std::string& dir, uint32_t rows_every = 1,
                             bool preview = false) {
  std::string error;
  Ledger::Options o;
  o.preview = preview;
  o.projection_every_commits = rows_every;
  o.clock = [] { return int64_t{1'700'000'000'000'000}; };
  auto l = Ledger::open(dir, std::move(o), error);
  EXPECT_TRUE(l) << error;
  return l;
}

std::map<std::string, std::string> rows_of(const LedgerState& state) {
  std::map<std::string, std::string> rows;
  state.put_all_rows([&](std::string_view k, std::string_view v) { rows.emplace(k, v); });
  return rows;
}

std::vector<std::string> workload_lines(uint64_t subscriptions, int months) {
  std::stringstream commands;
  write_workload(WorkloadParams{subscriptions, 11, months, 0, Date::from_ymd(2025, 1, 1)},
                 commands);
  return lines_of(commands.str());
}

// Applies lines[from, to), one commit per 50 commands.
void apply(Ledger& l, const std::vector<std::string>& lines, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    CommandResult r = l.submit(lines[i]);
    ASSERT_TRUE(r.ok) << lines[i] << " -> " << r.message;
    if (i % 50 == 49) {
      ASSERT_EQ(l.commit(), absl::OkStatus());
    }
  }
  ASSERT_EQ(l.commit(), absl::OkStatus());
}

// A ledger in `dir` holding a generated workload, every row written with its batch.
void applied_workload(const TempDir& dir, uint64_t subscriptions, int months) {
  auto lines = workload_lines(subscriptions, months);
  auto l = open(dir.str());
  apply(*l, lines, 0, lines.size());
}

TEST(Projections, OpenCatchesUpFromALaggingCheckpointToTheFullReplayState) {
  auto lines = workload_lines(400, 8);
  // The second half without its billing runs: a run's commit always carries the rows, and this
  // half is to leave them behind (both ledgers apply the same lines).
  size_t half = lines.size() / 2;
  lines.erase(std::remove_if(lines.begin() + static_cast<std::ptrdiff_t>(half), lines.end(),
                             [](const std::string& line) {
                               return line.find("\"run_billing\"") != std::string::npos;
                             }),
              lines.end());
  TempDir always("always"), lagging("lagging");
  {
    auto l = open(always.str());
    apply(*l, lines, 0, lines.size());
  }
  {
    auto l = open(lagging.str());
    apply(*l, lines, 0, half);
  }
  {
    auto l = open(lagging.str(), /*rows_every=*/1'000'000);  // the second half writes no rows
    EXPECT_EQ(l->open_report().events_caught_up, 0u);
    apply(*l, lines, half, lines.size());
  }
  auto reference = open(always.str(), 1, /*preview=*/true);
  ASSERT_TRUE(reference->open_report().from_checkpoint);
  EXPECT_EQ(reference->open_report().events_caught_up, 0u);

  auto caught_up = open(lagging.str(), 1, /*preview=*/true);
  const auto& report = caught_up->open_report();
  EXPECT_TRUE(report.from_checkpoint);
  EXPECT_GT(report.checkpoint, 0u);
  EXPECT_GT(report.events_caught_up, 200u) << "the second half came from the log";
  EXPECT_EQ(report.checkpoint + report.events_caught_up, caught_up->state().last_seq());
  EXPECT_EQ(rows_of(caught_up->state()), rows_of(reference->state()));
  caught_up.reset();

  // Opened for writing, the caught-up rows are stored; verify then finds them equal to a replay.
  { open(lagging.str()); }
  std::string error;
  auto store = Store::open(lagging.str(), error);
  ReplayReport verify = replay_log(*store, /*verify=*/true);
  EXPECT_TRUE(verify.ok()) << verify.to_json(true);
  EXPECT_TRUE(verify.rows_checked);
  EXPECT_GT(verify.rows_compared, 400u);
  EXPECT_EQ(verify.invoice_rows_checked, verify.invoices_checked);
}

TEST(Projections, ABillingRunsCommitCarriesItsRowsHoweverFarTheyLag) {
  // The server writes rows every 64 batches; issued invoices are read from their rows, so a
  // billing run's commit must carry them, and an idle writer catches its rows up on request.
  auto lines = workload_lines(200, 4);
  TempDir dir("lag");
  auto l = open(dir.str(), /*rows_every=*/1'000'000);
  size_t runs = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    CommandResult r = l->submit(lines[i]);
    ASSERT_TRUE(r.ok) << lines[i] << " -> " << r.message;
    if (i % 50 == 49 || lines[i].find("run_billing") != std::string::npos) {
      ASSERT_EQ(l->commit(), absl::OkStatus());
    }
    if (lines[i].find("run_billing") == std::string::npos) continue;
    ++runs;
    auto issued = l->issued_invoices();
    ASSERT_TRUE(issued.ok()) << issued.status();
    EXPECT_EQ(issued->size(), l->state().invoices_issued()) << "after run " << runs;
  }
  ASSERT_GE(runs, 3u);
  ASSERT_EQ(l->commit(), absl::OkStatus());
  EXPECT_TRUE(l->rows_behind()) << "commands after the last run left the rows behind";
  ASSERT_EQ(l->write_rows(), absl::OkStatus());
  EXPECT_FALSE(l->rows_behind());
  const auto expected = rows_of(l->state());
  l.reset();
  auto reopened = open(dir.str(), 1, /*preview=*/true);
  EXPECT_TRUE(reopened->open_report().from_checkpoint);
  EXPECT_EQ(reopened->open_report().events_caught_up, 0u);
  EXPECT_EQ(rows_of(reopened->state()), expected);
}

TEST(Projections, OpeningNeverReadsEventsBeforeTheCheckpoint) {
  TempDir dir("checkpoint");
  applied_workload(dir, 100, 3);
  {
    std::string error;
    auto store = Store::open(dir.str(), error);
    ASSERT_EQ(store->delete_event_for_test(1), absl::OkStatus());
  }
  auto l = open(dir.str());  // would fail on the gap if it replayed from the start
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->open_report().from_checkpoint);
  EXPECT_EQ(l->open_report().events_caught_up, 0u);
  ReplayReport verify = replay_log(l->store(), true);
  EXPECT_EQ(verify.first_bad_seq, 1u) << "the audit still sees the damage";
}

// A reader takes the log's last event from the largest keys the manifest records, the memtable
// it replays from the write-ahead log, and one point read of the largest; a deleted last event
// (damage) sends it to read the log from its end. Every case against a scan of the whole log.
TEST(Projections, AReaderFindsTheLastEventWhereverTheLogHoldsIt) {
  TempDir dir("last-seq");
  auto reader_last = [&](uint64_t expected) {
    for (Store::Reads reads : {Store::Reads::kFew, Store::Reads::kMany}) {
      Store::OpenOptions options{Store::Access::kRead};
      options.reads = reads;
      auto store = Store::open(dir.str(), options);
      ASSERT_TRUE(store.ok()) << store.status();
      ASSERT_TRUE((*store)->read_only());
      uint64_t scanned = 0;
      ASSERT_EQ((*store)->scan_events(0,
                                      [&](uint64_t seq, std::string_view) {
                                        scanned = seq;
                                        return true;
                                      }),
                absl::OkStatus());
      EXPECT_EQ(scanned, expected);
      EXPECT_EQ((*store)->last_seq(), expected);
    }
  };
  {
    std::string error;
    ASSERT_TRUE(Store::open(dir.str(), error)) << error;
  }
  reader_last(0);  // a ledger with no event
  auto lines = workload_lines(60, 2);
  const size_t half = lines.size() / 2;
  auto l = open(dir.str());
  apply(*l, lines, 0, half);
  const uint64_t first = l->state().last_seq();
  ASSERT_GT(first, 0u);
  reader_last(first);  // the writer still open: the events are in its log, not yet in tables
  l.reset();
  reader_last(first);  // flushed at close: in table files only
  l = open(dir.str());
  apply(*l, lines, half, lines.size());
  const uint64_t all = l->state().last_seq();
  ASSERT_GT(all, first);
  reader_last(all);  // both: tables and the log
  l.reset();
  {
    std::string error;
    auto store = Store::open(dir.str(), error);
    ASSERT_TRUE(store) << error;
    ASSERT_EQ(store->delete_event_for_test(all), absl::OkStatus());
    reader_last(all - 1);  // the table still holds the largest key; its deletion is in the log
  }
  reader_last(all - 1);
}

TEST(Projections, UnreadableRowsAreRebuiltFromTheLog) {
  auto lines = workload_lines(100, 3);
  TempDir dir("rebuild");
  std::map<std::string, std::string> before;
  {
    auto l = open(dir.str());
    apply(*l, lines, 0, lines.size());
    before = rows_of(l->state());
    l->store().stage_projection("meta", "not msgpack");
    ASSERT_TRUE(l->store().commit().ok());
  }
  auto l = open(dir.str());
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->open_report().from_checkpoint);
  EXPECT_EQ(l->open_report().events_caught_up, l->state().last_seq());
  EXPECT_EQ(rows_of(l->state()), before);
  EXPECT_TRUE(replay_log(l->store(), true).ok());
}

}  // namespace
}  // namespace subledger::testing

namespace subledger::testing {
namespace {

TEST(Projections, ParallelReplayRebuildsExactlyWhatOneThreadDoes) {
  TempDir dir("parallel");
  applied_workload(dir, 600, 8);
  std::string error;
  auto store = Store::open(dir.str(), error);
  ASSERT_TRUE(store) << error;
  ReplayReport one = replay_log(*store, /*verify=*/true, {}, /*workers=*/1);
  ASSERT_TRUE(one.ok()) << one.to_json(true);
  for (size_t workers : {2, 3, 5}) {
    ReplayReport many = replay_log(*store, true, {}, workers);
    EXPECT_TRUE(many.ok()) << workers << ": " << many.to_json(true);
    EXPECT_TRUE(many.rows_checked);
    EXPECT_EQ(many.events, one.events);
    EXPECT_EQ(many.invoices_checked, one.invoices_checked);
    EXPECT_EQ(many.rows_compared, one.rows_compared) << "the lanes' rows are the whole state";
    EXPECT_EQ(many.invoice_rows_checked, one.invoice_rows_checked);
  }
}

// The store stages each batch in the memory of the batch it wrote last (Store::commit_async):
// what was written before must never be written again. An erased row stays erased after later
// batches, and a row put once is not put back over a later value.
TEST(Projections, AReusedBatchNeverWritesAnEarlierBatchAgain) {
  TempDir dir("reused-batch");
  std::string error;
  auto store = Store::open(dir.str(), error);
  ASSERT_TRUE(store) << error;
  store->stage_projection("x", "1");
  store->stage_projection("y", "1");
  ASSERT_EQ(store->commit(), absl::OkStatus());
  store->stage_projection_erase("x");
  ASSERT_EQ(store->commit(), absl::OkStatus());
  store->stage_projection("y", "2");
  ASSERT_EQ(store->commit(), absl::OkStatus());
  store->stage_projection("z", "3");  // the first batch's memory again, then the second's
  ASSERT_EQ(store->commit(), absl::OkStatus());
  ASSERT_EQ(store->commit(), absl::OkStatus());  // nothing staged: nothing written
  EXPECT_TRUE(absl::IsNotFound(store->projection("x").status()));
  EXPECT_EQ(store->projection("y").value_or("?"), "2");
  EXPECT_EQ(store->projection("z").value_or("?"), "3");
  // And so after reopening (what reached the disk, not a cache).
  store.reset();
  store = Store::open(dir.str(), error);
  ASSERT_TRUE(store) << error;
  EXPECT_TRUE(absl::IsNotFound(store->projection("x").status()));
  EXPECT_EQ(store->projection("y").value_or("?"), "2");
  EXPECT_EQ(store->projection("z").value_or("?"), "3");
}

}  // namespace
}  // namespace subledger::testing
