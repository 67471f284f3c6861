// The acceptance scenarios: every command file in the project's copy (tests/scenarios), in
// ../shared/scenarios and in ../shared/scenarios/catalog when those folders exist is applied with
// the real binary; the results and the invoices must match the expected files as the scenarios'
// README describes. A new file dropped into either folder is picked up without code changes.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/process.h"

namespace subledger::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<fs::path> scenario_files() {
  std::vector<fs::path> out;
  const std::string shared = SHARED_SCENARIOS_DIR;
  for (const std::string& dir : {std::string(PROJECT_SCENARIOS_DIR), shared, shared + "/catalog"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (entry.path().extension() == ".jsonl" && name.find(".expected-") == std::string::npos)
        out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

json normalized(json invoice) {
  json lines = json::array();
  for (auto line : invoice["lines"]) {
    line.erase("event_seq");
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end(), [](const json& a, const json& b) {
    return std::tie(a["charge_date"], a["subscription_id"], a["charge_type"], a["amount"]) <
           std::tie(b["charge_date"], b["subscription_id"], b["charge_type"], b["amount"]);
  });
  invoice["lines"] = lines;
  return invoice;
}

class Scenario : public ::testing::TestWithParam<fs::path> {};

TEST_P(Scenario, ResultsAndInvoicesMatchExpected) {
  const fs::path file = GetParam();
  const std::string base = (file.parent_path() / file.stem()).string();
  TempDir db("scenario-" + file.stem().string());
  RunResult applied = run(bin() + " apply --db " + db.str() + " " + file.string());
  auto results = lines_of(applied.out);
  auto expected = lines_of(read_file(base + ".expected-results.jsonl"));
  ASSERT_EQ(results.size(), expected.size()) << "one result per command";
  bool any_rejected = false;
  for (size_t i = 0; i < expected.size(); ++i) {
    json want = json::parse(expected[i]);
    json got = json::parse(results[i]);
    for (const auto& [key, value] : want.items())
      EXPECT_EQ(got[key], value) << "command " << i + 1 << " (" << key << "): got " << got.dump();
    any_rejected |= !got["ok"].get<bool>();
  }
  EXPECT_EQ(applied.status, any_rejected ? 1 : 0);

  RunResult invoices = run(bin() + " invoices --format json --db " + db.str());
  ASSERT_EQ(invoices.status, 0);
  auto got = lines_of(invoices.out);
  auto want = lines_of(read_file(base + ".expected-invoices.jsonl"));
  ASSERT_EQ(got.size(), want.size()) << invoices.out;
  for (size_t i = 0; i < want.size(); ++i) {
    json invoice = json::parse(got[i]);
    EXPECT_EQ(normalized(invoice), normalized(json::parse(want[i]))) << "invoice " << i + 1;
    // The program's own order (INTERFACE.md): charge date, then event sequence.
    const json& lines = invoice["lines"];
    for (size_t k = 1; k < lines.size(); ++k)
      EXPECT_LE(std::tie(lines[k - 1]["charge_date"], lines[k - 1]["event_seq"]),
                std::tie(lines[k]["charge_date"], lines[k]["event_seq"]))
          << "invoice " << i + 1 << " line " << k + 1;
  }

  RunResult verify = run(bin() + " replay --verify --db " + db.str());
  EXPECT_EQ(verify.status, 0) << verify.out;
}

// The same file applied one command per process: each `apply` opens the ledger with the catalog
// only and decides its command against the customer it loads from the rows (state on disk), and
// every billing run loads the whole state. The results and the invoices are those of one process.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

TEST_P(Scenario, OneCommandPerProcessGivesTheSameResultsAndInvoices) {
  const fs::path file = GetParam();
  // A process under AddressSanitizer costs about ten times as much: there, the project's first
  // nine files keep this path checked (LoadOnDemand.* cover the loading itself).
  if (kUnderAddressSanitizer && (file.parent_path() != fs::path(PROJECT_SCENARIOS_DIR) ||
                                 file.filename().string()[0] != '0'))
    GTEST_SKIP() << "one process per command: the project's 0* files under AddressSanitizer";
  const std::string base = (file.parent_path() / file.stem()).string();
  TempDir db("scenario-each-" + file.stem().string());
  auto expected = lines_of(read_file(base + ".expected-results.jsonl"));
  size_t i = 0;
  for (const std::string& line : lines_of(read_file(file.string()))) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::ofstream(db / "one.jsonl", std::ios::trunc) << line << "\n";
    RunResult applied = run(bin() + " apply --load on-demand --db " + (db / "ledger") + " " +
                            (db / "one.jsonl"));
    auto result = lines_of(applied.out);
    ASSERT_EQ(result.size(), 1u) << line << "\n" << applied.out;
    ASSERT_LT(i, expected.size());
    json want = json::parse(expected[i]);
    json got = json::parse(result[0]);
    for (const auto& [key, value] : want.items())
      EXPECT_EQ(got[key], value) << "command " << i + 1 << " (" << key << "): got " << got.dump();
    ++i;
  }
  EXPECT_EQ(i, expected.size());
  RunResult invoices = run(bin() + " invoices --format json --db " + (db / "ledger"));
  ASSERT_EQ(invoices.status, 0);
  auto got = lines_of(invoices.out);
  auto want = lines_of(read_file(base + ".expected-invoices.jsonl"));
  ASSERT_EQ(got.size(), want.size()) << invoices.out;
  for (size_t k = 0; k < want.size(); ++k)
    EXPECT_EQ(normalized(json::parse(got[k])), normalized(json::parse(want[k])))
        << "invoice " << k + 1;
  RunResult verify = run(bin() + " replay --verify --db " + (db / "ledger"));
  EXPECT_EQ(verify.status, 0) << verify.out;
}

INSTANTIATE_TEST_SUITE_P(Files, Scenario, ::testing::ValuesIn(scenario_files()),
                         [](const auto& info) {
                           bool ours = info.param.parent_path() == fs::path(PROJECT_SCENARIOS_DIR);
                           std::string name =
                               (ours ? "project_" : "shared_") + info.param.stem().string();
                           for (char& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace subledger::testing
