// The workload generator: deterministic by seed, and every command it writes is accepted.
#include "workload/workload.h"

#include <gtest/gtest.h>

#include <sstream>

#include "ledger/ledger.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

std::string generate(uint64_t subscriptions, uint64_t seed) {
  std::stringstream out;
  write_workload(WorkloadParams{subscriptions, seed, 13, 0, Date::from_ymd(2025, 1, 1)}, out);
  return out.str();
}

TEST(Workload, SameSeedSameBytesOtherSeedOtherBytes) {
  EXPECT_EQ(generate(500, 9), generate(500, 9));
  EXPECT_NE(generate(500, 9), generate(500, 10));
}

TEST(Workload, EveryGeneratedCommandIsAcceptedAndTheMixIsRealistic) {
  TempDir dir("workload");
  std::string error;
  auto ledger = Ledger::open(dir / "db", Ledger::Options{}, error);
  ASSERT_TRUE(ledger) << error;
  std::stringstream in(generate(3000, 11));
  std::map<std::string, int> commands;
  for (std::string line; std::getline(in, line);) {
    CommandResult r = ledger->submit(line);
    ASSERT_TRUE(r.ok) << line << " -> " << r.to_json();
    ++commands[line.substr(8, line.find('"', 8) - 8)];
  }
  for (const char* cmd : {"create_subscription", "start_trial", "convert_trial", "change_seats",
                          "cancel", "reactivate", "publish_price", "run_billing"})
    EXPECT_GT(commands[cmd], 0) << cmd;
  EXPECT_EQ(commands["run_billing"], 13);
  EXPECT_GT(ledger->state().invoices_issued(), 1000u);
  ASSERT_EQ(ledger->commit(), absl::OkStatus());
}

}  // namespace
}  // namespace subledger::testing
