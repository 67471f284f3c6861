// Backup and restore: a restored ledger passes replay --verify and prints the invoices it had when
// it was backed up, also when the backup was taken while another process held the ledger open.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ledger/ledger.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

using Json = nlohmann::json;

TEST(Backup, RestoredLedgerVerifiesAndPrintsTheSameInvoices) {
  TempDir dir("backup");
  std::string db = dir / "db", backup = dir / "backup", restored = dir / "restored";
  std::string commands = dir / "cmds.jsonl";
  ASSERT_EQ(
      run(bin() + " gen --subscriptions 500 --seed 9 --months 6 -o " + commands + " 2>/dev/null")
          .status,
      0);
  auto lines = lines_of(read_file(commands));
  std::string first_half, second_half;
  for (size_t i = 0; i < lines.size(); ++i)
    (i < (lines.size() * 3) / 4 ? first_half : second_half) += lines[i] + "\n";
  write_file(dir / "a.jsonl", first_half);
  write_file(dir / "b.jsonl", second_half);
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + (dir / "a.jsonl") + " >/dev/null").status, 0);
  std::string invoices_at_backup = run(bin() + " invoices --db " + db).out;
  ASSERT_FALSE(invoices_at_backup.empty());

  RunResult b = run(bin() + " backup " + backup + " --db " + db);
  ASSERT_EQ(b.status, 0) << b.out;
  EXPECT_EQ(Json::parse(b.out)["ledger_was_in_use"], false);
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + (dir / "b.jsonl") + " >/dev/null").status, 0);

  ASSERT_EQ(run(bin() + " restore " + backup + " --db " + restored).status, 0);
  RunResult verify = run(bin() + " replay --verify --db " + restored);
  EXPECT_EQ(verify.status, 0) << verify.out;
  EXPECT_TRUE(Json::parse(verify.out)["projection_row_mismatches"].empty());
  EXPECT_EQ(run(bin() + " invoices --db " + restored).out, invoices_at_backup);
  EXPECT_NE(run(bin() + " invoices --db " + db).out, invoices_at_backup) << "the original moved on";
}

TEST(Backup, TakenWhileAnotherProcessHoldsTheLedgerOpen) {
  TempDir dir("backup-busy");
  std::string db = dir / "db", backup = dir / "backup", restored = dir / "restored";
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + PROJECT_SCENARIOS_DIR +
                "/07-cancel-and-reactivate.jsonl >/dev/null")
                .status,
            0);
  std::string invoices = run(bin() + " invoices --db " + db).out;
  std::string error;
  auto holder = Ledger::open(db, Ledger::Options{}, error);  // holds RocksDB's lock
  ASSERT_TRUE(holder) << error;
  EXPECT_NE(run(bin() + " apply --db " + db + " /dev/null 2>/dev/null").status, 0)
      << "the ledger really is locked for writers";
  EXPECT_EQ(run(bin() + " invoices --db " + db).out, invoices) << "readers work beside it";

  RunResult b = run(bin() + " backup " + backup + " --db " + db);
  ASSERT_EQ(b.status, 0) << b.out;
  Json report = Json::parse(b.out);
  EXPECT_EQ(report["ledger_was_in_use"], true);
  EXPECT_EQ(report["last_seq"], holder->state().last_seq());
  holder.reset();

  ASSERT_EQ(run(bin() + " restore " + backup + " --db " + restored).status, 0);
  EXPECT_EQ(run(bin() + " replay --verify --db " + restored).status, 0);
  EXPECT_EQ(run(bin() + " invoices --db " + restored).out, invoices);
}

}  // namespace
}  // namespace subledger::testing
