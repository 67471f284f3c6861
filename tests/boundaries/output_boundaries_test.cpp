// What the binary prints at the boundaries: the raw order of invoice lines (INTERFACE.md: charge
// date, then event sequence, then the order the event produced them, a credit before its rebill)
// on the program's own output for every project scenario (the scenario test compares lines
// sorted, so it cannot see the order), the currency's digits in every amount and total, and
// explain's exact amounts with their sign. Expected values are computed by hand from the rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "support/process.h"

namespace subledger::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int digits_of(const std::string& currency) {
  if (currency == "JPY" || currency == "KRW") return 0;
  if (currency == "BHD" || currency == "KWD" || currency == "OMR" || currency == "JOD" ||
      currency == "TND")
    return 3;
  return 2;
}

// "-12.345" with 3 digits -> -12345; fails the test when the digits are not exactly `digits`.
int64_t minor_of(const std::string& text, int digits) {
  size_t dot = text.find('.');
  int frac = dot == std::string::npos ? 0 : static_cast<int>(text.size() - dot - 1);
  EXPECT_EQ(frac, digits) << text;
  EXPECT_EQ(dot == std::string::npos, digits == 0) << text;
  std::string all = text;
  all.erase(std::remove(all.begin(), all.end(), '.'), all.end());
  return std::stoll(all);
}

std::vector<json> applied_invoices(const fs::path& file, const std::string& db) {
  run(bin() + " apply --db " + db + " " + file.string() + " > /dev/null");
  std::vector<json> out;
  for (const auto& line : lines_of(run(bin() + " invoices --format json --db " + db).out))
    out.push_back(json::parse(line));
  return out;
}

std::vector<fs::path> project_scenarios() {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(PROJECT_SCENARIOS_DIR)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".jsonl" && name.find(".expected-") == std::string::npos)
      out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(OutputBoundaries, EveryInvoiceListsItsLinesInTheDocumentedOrder) {
  size_t checked = 0;
  for (const auto& file : project_scenarios()) {
    TempDir db("order-" + file.stem().string());
    for (const auto& inv : applied_invoices(file, db.str())) {
      const json& lines = inv["lines"];
      int digits = digits_of(inv["currency"]);
      int64_t sum = 0;
      for (size_t i = 0; i < lines.size(); ++i) {
        sum += minor_of(lines[i]["amount"], digits);
        if (i == 0) continue;
        const json& a = lines[i - 1];
        const json& b = lines[i];
        std::string where = file.stem().string() + " " + inv["invoice_id"].get<std::string>() +
                            " line " + std::to_string(i + 1);
        auto key = [](const json& l) {
          return std::make_tuple(l["charge_date"].get<std::string>(), l["event_seq"].get<int64_t>());
        };
        ASSERT_LE(key(a), key(b)) << where << ": charge date, then event sequence";
        if (key(a) == key(b) && a["subscription_id"] == b["subscription_id"] &&
            a["charge_type"] == b["charge_type"]) {
          if (b["charge_type"] == "CYCLE_INSTANCE_PRORATE")
            EXPECT_TRUE(a["amount"].get<std::string>()[0] == '-' &&
                        b["amount"].get<std::string>()[0] != '-')
                << where << ": the credit stands before its rebill";
          else
            EXPECT_LT(a["period_start"].get<std::string>(), b["period_start"].get<std::string>())
                << where << ": a stub stands before its first period";
        }
      }
      EXPECT_EQ(sum, minor_of(inv["total"], digits)) << inv["invoice_id"];
      ++checked;
    }
  }
  EXPECT_GT(checked, 40u);
}

TEST(OutputBoundaries, LineOrderScenarioPrintsItsLinesInOrder) {
  // 2A-boundary-line-order: the 2017-04-20 invoice, computed by hand (rule_boundaries_test has
  // the arithmetic): the cycle fee of 04-10 carries the lowest event sequence and S0 the lowest
  // id, yet the charge date puts them in place.
  TempDir db("line-order");
  auto invoices =
      applied_invoices(fs::path(PROJECT_SCENARIOS_DIR) / "2A-boundary-line-order.jsonl", db.str());
  ASSERT_EQ(invoices.size(), 2u);
  std::vector<std::string> got;
  for (const auto& l : invoices[1]["lines"])
    got.push_back(l["subscription_id"].get<std::string>() + " " +
                  l["charge_type"].get<std::string>() + " " + l["period_start"].get<std::string>() +
                  " " + l["amount"].get<std::string>());
  std::vector<std::string> want = {
      "S2 PRORATE_FEES_WHEN_PURCHASE 2017-03-30 0.66",
      "S2 PRORATE_FEES_WHEN_PURCHASE 2017-04-01 10.00",
      "S1 CYCLE_INSTANCE_PRORATE 2017-04-05 -16.44",
      "S1 CYCLE_INSTANCE_PRORATE 2017-04-05 6.58",
      "S0 PRORATE_FEES_WHEN_PURCHASE 2017-04-05 20.00",
      "S1 CYCLE_FEE 2017-04-10 40.00",
  };
  EXPECT_EQ(got, want);
  // The reconciliation file lists the same lines in the same order.
  auto csv = lines_of(run(bin() + " reconcile --from 2017-04-20 --to 2017-04-20 --db " + db.str()).out);
  ASSERT_EQ(csv.size(), 7u);
  EXPECT_NE(csv[1].find(",S2,BP,PRORATE_FEES_WHEN_PURCHASE,2017-03-30,2017-04-01,1,10.00,0.66,USD,"),
            std::string::npos)
      << csv[1];
  EXPECT_NE(csv[3].find(",S1,BP,CYCLE_INSTANCE_PRORATE,2017-04-05,2017-04-10,10,10.00,-16.44,USD,"),
            std::string::npos)
      << csv[3];
  EXPECT_NE(csv[6].find(",S1,BP,CYCLE_FEE,2017-04-10,2017-05-10,4,10.00,40.00,USD,monthly,2017-04-10,"),
            std::string::npos)
      << csv[6];
}

std::vector<json> explain(const std::string& db, const std::string& invoice) {
  std::vector<json> out;
  for (const auto& line : lines_of(run(bin() + " explain " + invoice + " --db " + db).out))
    out.push_back(json::parse(line));
  return out;
}

TEST(OutputBoundaries, ExplainPrintsAReversalAndAProrationWithTheirSign) {
  // 20-boundary-full-credit-30-days, the 2017-02-20 invoice: A29 and A30 are reversed whole
  // (-2400.00: 100% within 30 days), A31 is credited pro rata: 20 × 12 / 365 × 334 × 10 =
  // 2196.1643835616... -> -2196.16.
  TempDir db("explain-boundary");
  applied_invoices(fs::path(PROJECT_SCENARIOS_DIR) / "20-boundary-full-credit-30-days.jsonl",
                   db.str());
  auto lines = explain(db.str(), "C1-20170220");
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[1]["subscription_id"], "A30");
  EXPECT_EQ(lines[1]["computation"]["unrounded"], "-2400.0000000000");
  EXPECT_EQ(lines[1]["computation"]["rounded"], "-2400.00");
  EXPECT_EQ(lines[1]["computation"]["reversed_net"], "2400.00");
  EXPECT_EQ(lines[4]["subscription_id"], "A31");
  EXPECT_EQ(lines[4]["computation"]["unrounded"], "-2196.1643835616");
  EXPECT_EQ(lines[4]["computation"]["days"], 334);
}

TEST(OutputBoundaries, ZeroAndThreeDigitCurrenciesPrintTheirOwnDigits) {
  // 29-boundary-currency-digits: JPY 1234.5 × 12 / 365 × 320 = 12987.616... -> -12988 and the
  // JPY 0.5 cycle fee -> 1: total -12987, no decimals. BHD 7.1235 × 12 / 365 × 320 = 74.9431...
  // -> -74.943 and 0.0005 -> 0.001: total -74.942.
  TempDir db("digits");
  auto invoices =
      applied_invoices(fs::path(PROJECT_SCENARIOS_DIR) / "29-boundary-currency-digits.jsonl",
                       db.str());
  std::map<std::string, json> by_id;
  for (const auto& inv : invoices) by_id[inv["invoice_id"]] = inv;
  EXPECT_EQ(by_id["CJ-20170320"]["total"], "-12987");
  EXPECT_EQ(by_id["CJ-20170120"]["total"], "14815");
  EXPECT_EQ(by_id["CB-20170320"]["total"], "-74.942");
  EXPECT_EQ(by_id["CK-20170320"]["total"], "-74.942");
  EXPECT_EQ(by_id["CU-20170320"]["total"], "0.01");
  auto jpy = explain(db.str(), "CJ-20170320");
  ASSERT_EQ(jpy.size(), 2u);
  EXPECT_EQ(jpy[0]["computation"]["unrounded"], "-12987.6164383561");
  EXPECT_EQ(jpy[0]["computation"]["rounded"], "-12988");
  auto bhd = explain(db.str(), "CB-20170320");
  ASSERT_EQ(bhd.size(), 2u);
  EXPECT_EQ(bhd[0]["computation"]["unrounded"], "-74.9431232876");
  EXPECT_EQ(bhd[0]["computation"]["rounded"], "-74.943");
  auto csv = run(bin() + " reconcile --from 2017-03-20 --to 2017-03-20 --db " + db.str()).out;
  EXPECT_NE(csv.find(",-12988,JPY,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",-74.943,BHD,"), std::string::npos) << csv;
}

TEST(OutputBoundaries, BillSummaryCountsTransitionsAndInvoicesThroughExactlyABillingDay) {
  // Annual A (auto-renew) and B (auto-renew off) from 2017-01-15, 1 seat at 20.00; a trial from
  // 2017-12-20 (trial_end 2018-01-19). Billing through exactly 2018-01-20 (a billing day, first
  // run: from the earliest charge) materializes 3 transitions (A renewed and B expired on
  // 2018-01-15, the trial expired on 2018-01-19) and issues C1-20170120 (240.00 × 2) and
  // C1-20180120 (A's renewal 240.00): 720.00 in all.
  TempDir dir("bill-summary");
  // The ledger in its own folder: the command file sits beside it, not in it.
  const std::string db = dir / "ledger";
  std::string cmds = dir / "cmds.jsonl";
  write_file(cmds,
             R"({"cmd":"register_partner","request_id":"p","partner_id":"P1","country":"US","currency":"USD","billing_day":20}
{"cmd":"define_offer","request_id":"o","offer_id":"E3","name":"E3","trial_eligible":true}
{"cmd":"publish_price","request_id":"pr","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2016-01-01"}
{"cmd":"create_customer","request_id":"c","customer_id":"C1","partner_id":"P1","country":"US","currency":"USD"}
{"cmd":"create_customer","request_id":"c2","customer_id":"C2","partner_id":"P1","country":"US","currency":"USD"}
{"cmd":"create_subscription","request_id":"a","subscription_id":"A","customer_id":"C1","offer_id":"E3","seats":1,"billing_frequency":"annual","date":"2017-01-15"}
{"cmd":"create_subscription","request_id":"b","subscription_id":"B","customer_id":"C1","offer_id":"E3","seats":1,"billing_frequency":"annual","date":"2017-01-15"}
{"cmd":"set_auto_renew","request_id":"b2","subscription_id":"B","enabled":false,"date":"2017-01-16"}
{"cmd":"start_trial","request_id":"t","subscription_id":"T","customer_id":"C2","offer_id":"E3","date":"2017-12-20"}
)");
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + cmds + " 2>/dev/null").status, 0);
  json first = json::parse(run(bin() + " bill --through 2018-01-20 --db " + db).out);
  EXPECT_EQ(first["through"], "2018-01-20");
  EXPECT_TRUE(first["previous_clock"].is_null());
  EXPECT_EQ(first["transitions"], 3);
  EXPECT_EQ(first["invoices_issued"], 2);
  EXPECT_EQ(first["invoice_ids"], json::parse(R"(["C1-20170120","C1-20180120"])"));
  EXPECT_EQ(first["totals"]["USD"], "720.00");
  json again = json::parse(run(bin() + " bill --through 2018-01-20 --db " + db).out);
  EXPECT_EQ(again["previous_clock"], "2018-01-20");
  EXPECT_EQ(again["transitions"], 0);
  EXPECT_EQ(again["invoices_issued"], 0);
  // A command dated on the clock's day is accepted and billed on the next invoice date; the
  // run's result line says how many invoices it issued.
  write_file(cmds,
             R"({"cmd":"create_subscription","request_id":"m","subscription_id":"M","customer_id":"C1","offer_id":"E3","seats":1,"billing_frequency":"monthly","date":"2018-01-20"}
{"cmd":"run_billing","request_id":"r","through":"2018-02-20"}
)");
  auto results = lines_of(run(bin() + " apply --db " + db + " " + cmds + " 2>/dev/null").out);
  ASSERT_EQ(results.size(), 2u);
  json run_result = json::parse(results[1]);
  EXPECT_EQ(run_result["invoices_issued"], 1) << results[1];
  EXPECT_EQ(run_result["ok"], true);
  // The run appended the invoice, then the clock's event: the two sequence numbers after M's.
  uint64_t after = json::parse(results[0])["seq_last"].get<uint64_t>();
  EXPECT_EQ(run_result["seq_first"].get<uint64_t>(), after + 1) << results[1];
  EXPECT_EQ(run_result["seq_last"].get<uint64_t>(), after + 2) << results[1];
  auto invoices = lines_of(run(bin() + " invoices --format json --db " + db).out);
  ASSERT_EQ(invoices.size(), 3u);
  // M's purchase (01-20) and its cycle fee (02-20, on the billing day): 40.00.
  EXPECT_EQ(json::parse(invoices[2])["invoice_id"], "C1-20180220");
  EXPECT_EQ(json::parse(invoices[2])["total"], "40.00");
}

TEST(OutputBoundaries, FirstRunIssuesTheInvoiceOfAChargeDatedOnTheBillingDayItself) {
  // No clock yet: the first run bills from the earliest charge on. That charge falls on the
  // billing day (2017-01-20) and the run goes through exactly that day: one invoice, 20.00.
  TempDir dir("first-run");
  // The ledger in its own folder: the command file sits beside it, not in it.
  const std::string db = dir / "ledger";
  std::string cmds = dir / "cmds.jsonl";
  write_file(cmds,
             R"({"cmd":"register_partner","request_id":"p","partner_id":"P1","country":"US","currency":"USD","billing_day":20}
{"cmd":"define_offer","request_id":"o","offer_id":"E3","name":"E3"}
{"cmd":"publish_price","request_id":"pr","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2016-01-01"}
{"cmd":"create_customer","request_id":"c","customer_id":"C1","partner_id":"P1","country":"US","currency":"USD"}
{"cmd":"create_subscription","request_id":"a","subscription_id":"A","customer_id":"C1","offer_id":"E3","seats":1,"billing_frequency":"monthly","date":"2017-01-20"}
)");
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + cmds + " 2>/dev/null").status, 0);
  json summary = json::parse(run(bin() + " bill --through 2017-01-20 --db " + db).out);
  EXPECT_EQ(summary["invoice_ids"], json::parse(R"(["C1-20170120"])"));
  EXPECT_EQ(summary["totals"]["USD"], "20.00");
}

}  // namespace
}  // namespace subledger::testing
