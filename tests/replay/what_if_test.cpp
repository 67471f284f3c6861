// replay --what-if: the history decided again with extra commands, compared invoice by invoice,
// with the real ledger left untouched.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace subledger::testing {
namespace {

using Json = nlohmann::json;

// "-12.34" -> -1234 (two-digit currencies).
int64_t cents(const Json& amount) {
  std::string s = amount.get<std::string>();
  bool negative = s[0] == '-';
  std::string digits;
  for (char c : s)
    if (c >= '0' && c <= '9') digits += c;
  int64_t v = std::stoll(digits);
  return negative ? -v : v;
}

struct Fixture {
  TempDir dir{"whatif"};
  std::string db = dir / "db";
  Fixture() {
    std::string commands = dir / "cmds.jsonl";
    EXPECT_EQ(
        run(bin() + " gen --subscriptions 300 --seed 3 --months 6 -o " + commands + " 2>/dev/null")
            .status,
        0);
    EXPECT_EQ(run(bin() + " apply --db " + db + " " + commands + " >/dev/null").status, 0);
  }
  std::string file(const std::string& name, const std::string& text) {
    std::string path = dir / name;
    write_file(path, text);
    return path;
  }
};

TEST(WhatIf, NoExtraCommandsRegeneratesEveryInvoiceUnchanged) {
  Fixture f;
  RunResult r = run(bin() + " replay --what-if " + f.file("none.jsonl", "") + " --db " + f.db);
  ASSERT_EQ(r.status, 0) << r.out;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u) << "only the summary: the recovered commands decide the same history";
  Json summary = Json::parse(lines[0]);
  EXPECT_GT(summary["original_commands"].get<int>(), 400);
  EXPECT_GT(summary["invoices_compared"].get<int>(), 200);
  EXPECT_EQ(summary["invoices_changed"], 0);
  EXPECT_TRUE(summary["rejected"].empty());
  for (const auto& [currency, t] : summary["totals"].items())
    EXPECT_EQ(t["old"], t["new"]) << currency;
}

TEST(WhatIf, ACorrectedPastPriceShowsOldAndNewLinesAndWritesNothing) {
  Fixture f;
  std::string before_log = run(bin() + " log --db " + f.db).out;
  std::string before_invoices = run(bin() + " invoices --db " + f.db).out;
  std::string fix = f.file(
      "fix.jsonl", R"({"cmd":"publish_price","request_id":"fix-e1","offer_id":"E1",)"
                   R"("currency":"USD","monthly_price":"7.50","effective_from":"2025-03-01"})"
                   "\n");
  RunResult r = run(bin() + " replay --what-if " + fix + " --db " + f.db);
  ASSERT_EQ(r.status, 0) << r.out;
  auto lines = lines_of(r.out);
  ASSERT_GT(lines.size(), 2u);
  Json summary = Json::parse(lines.back());
  EXPECT_EQ(summary["invoices_changed"].get<size_t>(), lines.size() - 1);
  EXPECT_EQ(summary["totals"]["EUR"]["difference"], "0.00");
  EXPECT_LT(cents(summary["totals"]["USD"]["difference"]), 0) << "a lower price bills less";
  EXPECT_EQ(summary["written"], false);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    Json d = Json::parse(lines[i]);
    EXPECT_EQ(d["currency"], "USD") << d;
    int64_t delta = 0;  // the totals move by exactly the lines that changed
    for (const auto& l : d["lines_removed"]) {
      EXPECT_EQ(l["offer_id"], "E1");
      EXPECT_EQ(l["unit_price"], "8.00");
      delta -= cents(l["amount"]);
    }
    for (const auto& l : d["lines_added"]) {
      EXPECT_EQ(l["unit_price"], "7.50") << l;
      delta += cents(l["amount"]);
    }
    EXPECT_EQ(cents(d["new_total"]) - cents(d["old_total"]), delta) << d;
    EXPECT_EQ(d["lines_removed"].size(), d["lines_added"].size());
  }
  EXPECT_EQ(run(bin() + " log --db " + f.db).out, before_log) << "the log is untouched";
  EXPECT_EQ(run(bin() + " invoices --db " + f.db).out, before_invoices);
}

TEST(WhatIf, AnInvalidFileRunsNothing) {
  Fixture f;
  std::string bad = f.file("bad.jsonl", R"({"cmd":"publish_price","request_id":"x"})"
                                        "\n");
  RunResult r = run(bin() + " replay --what-if " + bad + " --db " + f.db + " 2>/dev/null");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.out.empty()) << r.out;
  RunResult message = run(bin() + " replay --what-if " + bad + " --db " + f.db + " 2>&1");
  EXPECT_NE(message.out.find("line 1: INVALID_ARGUMENT"), std::string::npos) << message.out;
}

}  // namespace
}  // namespace subledger::testing
