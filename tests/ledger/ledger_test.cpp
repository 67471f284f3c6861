// The pipeline on a real RocksDB: durability, idempotency across reopen, gap-free sequence,
// billing runs, dry runs and determinism.
#include "ledger/ledger.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "support/process.h"
#include "workload/workload.h"

namespace subledger::testing {
namespace {

std::unique_ptr<Ledger> open(const std::string& dir, bool preview = false) {
  std::string error;
  Ledger::Options o;
  o.preview = preview;
  o.clock = [] { return int64_t{1'700'000'000'000'000}; };
  auto l = Ledger::open(dir, std::move(o), error);
  EXPECT_TRUE(l) << error;
  return l;
}

std::vector<std::string> scenario(const std::string& name) {
  return lines_of(read_file(std::string(PROJECT_SCENARIOS_DIR) + "/" + name + ".jsonl"));
}

// An accepted command's line is built directly (apply's hot path); it must print exactly what the
// JSON library prints for the same members, or a retry's original line would change bytes.
TEST(Ledger, AcceptedResultLinesAreTheJsonOfTheirMembers) {
  auto reference = [](const CommandResult& r) {
    nlohmann::ordered_json j;
    j["request_id"] = r.request_id;
    j["ok"] = true;
    if (r.duplicate) j["duplicate"] = true;
    j["seq_first"] = r.seq_first;
    j["seq_last"] = r.seq_last;
    std::string out = j.dump();
    if (!r.extra_json.empty()) out.insert(out.size() - 1, "," + r.extra_json);
    return out;
  };
  const std::vector<std::string> ids = {"r-1",         "P1:order.7#2", "http P1:x~y_z",
                                       "",            "a\"b",         "back\\slash",
                                       "tab\there",   "del\x7f",      "caf\xc3\xa9"};
  for (const std::string& id : ids) {
    for (bool duplicate : {false, true}) {
      for (const char* extra : {"", "\"invoices_issued\":3"}) {
        CommandResult r;
        r.request_id = id;
        r.ok = true;
        r.duplicate = duplicate;
        r.seq_first = 18446744073709551615ull;
        r.seq_last = 7;
        r.extra_json = extra;
        EXPECT_EQ(r.to_json(), reference(r)) << id;
      }
    }
  }
}

TEST(Ledger, IdempotencySurvivesReopen) {
  TempDir dir("idem");
  auto lines = scenario("11-idempotent-requests");
  {
    auto l = open(dir.str());
    for (const auto& line : lines) l->submit(line);
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  auto l = open(dir.str());
  uint64_t before = l->state().last_seq();
  CommandResult again = l->submit(lines[6]);  // s1, the original create
  EXPECT_TRUE(again.ok);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq_first, 7u);
  CommandResult conflict = l->submit(lines[8]);  // s1 with 11 seats
  EXPECT_EQ(conflict.code, "IDEMPOTENCY_CONFLICT");
  ASSERT_EQ(l->commit(), absl::OkStatus());
  EXPECT_EQ(l->state().last_seq(), before) << "duplicates and conflicts append nothing";
}

TEST(Ledger, RejectedCommandsAppendNothingAndFreeTheirRequestId) {
  TempDir dir("reject");
  auto l = open(dir.str());
  for (const auto& line : scenario("01-annual-purchase-renewal")) l->submit(line);
  uint64_t before = l->state().last_seq();
  CommandResult bad = l->submit(
      R"({"cmd":"change_seats","request_id":"fix","subscription_id":"S1","seats":0,"date":"2018-02-01"})");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(l->state().last_seq(), before);
  CommandResult good = l->submit(
      R"({"cmd":"change_seats","request_id":"fix","subscription_id":"S1","seats":5,"date":"2018-02-01"})");
  EXPECT_TRUE(good.ok) << good.message;
  EXPECT_EQ(good.seq_first, before + 1) << "the sequence is gap-free";
}

TEST(Ledger, SecondBillingRunThroughTheSameDateIssuesNothing) {
  TempDir dir("bill");
  auto l = open(dir.str());
  for (const auto& line : scenario("05-monthly-month-end-purchase")) l->submit(line);
  size_t issued = l->state().invoices_issued();
  CommandResult again = l->submit(R"({"cmd":"run_billing","request_id":"b-again","through":"2018-02-28"})");
  EXPECT_TRUE(again.ok);
  EXPECT_EQ(l->last_billing().invoices_issued, 0u);
  EXPECT_EQ(l->state().invoices_issued(), issued);
  CommandResult back = l->submit(R"({"cmd":"run_billing","request_id":"b-back","through":"2018-01-31"})");
  EXPECT_EQ(back.code, "DATE_BEFORE_BILLING_CLOCK");
}

TEST(Ledger, DryRunPreviewsAndRecordsNothing) {
  TempDir dir("dry");
  {
    auto l = open(dir.str());
    auto lines = scenario("05-monthly-month-end-purchase");
    lines.pop_back();  // leave the billing run out
    for (const auto& line : lines) l->submit(line);
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  uint64_t last;
  {
    auto preview = open(dir.str(), true);
    last = preview->state().last_seq();
    CommandResult r = preview->submit(R"({"cmd":"run_billing","request_id":"dry","through":"2017-06-30"})");
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(preview->last_billing().invoices_issued, 5u);
    EXPECT_TRUE(preview->last_billing().dry_run);
    ASSERT_EQ(preview->commit(), absl::OkStatus());
  }
  auto l = open(dir.str());
  EXPECT_EQ(l->state().last_seq(), last);
  EXPECT_TRUE(l->state().billing_clock().is_none());
  EXPECT_EQ(l->state().invoices_issued(), 0u);
  EXPECT_TRUE(l->issued_invoices()->empty());
}

TEST(Ledger, SameCommandsGiveByteIdenticalInvoicesAndReconciliation) {
  std::stringstream commands;
  write_workload(WorkloadParams{600, 7, 13, 0, Date::from_ymd(2025, 1, 1)}, commands);
  std::string file = commands.str();
  TempDir a("det-a"), b("det-b");
  std::ofstream(a / "cmds.jsonl") << file;
  for (const TempDir* d : {&a, &b}) {
    RunResult r = run(bin() + " apply --db " + (*d / "db") + " " + (a / "cmds.jsonl"));
    ASSERT_EQ(r.status, 0) << "every generated command is accepted";
  }
  for (std::string query : {std::string(" invoices --format json"),
                            std::string(" reconcile --from 2025-01-01 --to 2026-12-31")}) {
    RunResult x = run(bin() + query + " --db " + (a / "db"));
    RunResult y = run(bin() + query + " --db " + (b / "db"));
    EXPECT_EQ(x.status, 0);
    EXPECT_GT(x.out.size(), 1000u);
    EXPECT_EQ(x.out, y.out) << query;
  }
}

}  // namespace
}  // namespace subledger::testing
