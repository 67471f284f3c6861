// `demo` and `gen`: the embedded demo ledger (a year of billing for one partner's customers) and
// the workload generator's command-line face.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <utility>

#include "app/subcommands.h"
#include "app/summary.h"
#include "ledger/ledger.h"
#include "replay/replay.h"
#include "workload/workload.h"

namespace subledger::cli {

namespace {

// The demo's last word: `summary --by month` over every invoice it issued, as a table.
void print_summary(const std::vector<IssuedInvoice>& issued_invoices, std::ostream& out) {
  InvoiceSummary summary("month");
  for (const auto& issued : issued_invoices) summary.add(issued.invoice);
  out << "\nsummary --by month (subledger summary --from DATE --to DATE for any range):\n";
  print_records(summary.records(), summary.view(), Format::kTable, out);
}

}  // namespace

// The November 2020 catalog in the demo (BILLING_RULES 12 and 14): a promotion on the E1 offer
// for the first quarter and a 36-month offer bought on annual billing. Submitted after the
// workload's catalog, before its first purchase.
constexpr const char* kCatalogDemo[] = {
    R"({"cmd":"define_offer","request_id":"demo-o-PO36","offer_id":"PO36",)"
    R"("name":"Dynamics 365 Project Operations, 36 months","term_months":36})",
    R"({"cmd":"publish_price","request_id":"demo-pr-PO36","offer_id":"PO36","currency":"USD",)"
    R"("monthly_price":"30.00","effective_from":"2020-01-01"})",
    R"({"cmd":"define_promotion","request_id":"demo-pm-E1","promotion_id":"E1-LAUNCH",)"
    R"("offer_ids":["E1"],"percent_off":30,"purchase_from":"2025-01-01",)"
    R"("purchase_to":"2025-03-31","applies_to":["new"],"max_seats":500})",
    R"({"cmd":"create_subscription","request_id":"demo-s-PO36","subscription_id":"DEMO-PO36",)"
    R"("customer_id":"C1","offer_id":"PO36","seats":5,"billing_frequency":"annual",)"
    R"("date":"2025-01-15"})",
};

bool is_purchase_line(const std::string& line) {
  return line.find(R"("cmd":"create_subscription")") != std::string::npos ||
         line.find(R"("cmd":"start_trial")") != std::string::npos;
}

int demo(const DemoOptions& o, std::ostream& out) {
  WorkloadParams params;
  params.subscriptions = static_cast<uint64_t>(o.customers) * 5;  // about five each
  params.seed = o.seed;
  params.months = 14;  // a year of billing and the renewals that follow it
  params.partners = 1;
  params.start = Date::from_ymd(2025, 1, 1);
  std::stringstream commands;
  WorkloadStats stats = write_workload(params, commands);

  std::string error;
  Ledger::Options options;
  auto ledger = Ledger::open(o.db, std::move(options), error);
  if (!ledger) return fail(error);
  uint64_t rejected = 0, duplicates = 0;
  // The demo goes into a new ledger or its own earlier run (then every command is a duplicate),
  // never into someone's ledger: that would bill real customers for demo subscriptions.
  const bool had_events = ledger->state().last_seq() > 0;
  bool first = true, catalog_demo_sent = false;
  std::string line;
  while (std::getline(commands, line)) {
    if (!catalog_demo_sent && is_purchase_line(line)) {
      catalog_demo_sent = true;
      for (const char* extra : kCatalogDemo) {
        CommandResult r = ledger->submit(extra);
        rejected += !r.ok;
        duplicates += r.duplicate;
        if (!r.ok) tell("demo: rejected " + r.to_json());
      }
    }
    CommandResult r = ledger->submit(line);
    if (std::exchange(first, false) && had_events && !r.duplicate)
      return fail(o.db +
                  " already holds a ledger that is not the demo's; give the demo a new "
                  "directory (nothing was written)");
    rejected += !r.ok;
    duplicates += r.duplicate;
    if (!r.ok) tell("demo: rejected " + r.to_json());
  }
  if (absl::Status e = ledger->commit(); !e.ok()) return fail(std::string(e.message()));

  out << "subledger demo: " << stats.partners << " partner, " << stats.customers << " customers, "
      << stats.subscriptions << " subscriptions, " << stats.commands << " commands (" << rejected
      << " rejected, " << duplicates << " already applied), billed month by month through "
      << ledger->state().billing_clock().iso() << "; " << ledger->state().last_seq()
      << " events in " << std::filesystem::absolute(o.db).string() << "\n\n";
  auto issued_or = ledger->issued_invoices();
  if (!issued_or.ok()) return fail(std::string(issued_or.status().message()));
  const std::vector<IssuedInvoice>& issued = *issued_or;

  ReplayReport report = replay_log(ledger->store(), /*verify=*/true);
  out << "replay --verify: " << report.invoices_checked << " invoices regenerated, "
      << report.mismatches.size() << " mismatches, " << report.rows_compared
      << " projection rows and " << report.invoice_rows_checked << " invoice rows checked, "
      << report.row_mismatches.size() << " differ"
      << (report.error.empty() ? "" : ", " + report.error) << "\n";

  std::string csv_path = o.csv_path.empty() ? o.db + "-reconciliation.csv" : o.csv_path;
  std::string csv = reconciliation_header();
  for (const auto& i : issued) append_reconciliation_rows(csv, i.invoice);
  std::ofstream file(csv_path, std::ios::binary);
  file << csv;
  if (!file) return fail("cannot write " + csv_path);
  out << "reconciliation CSV: " << std::filesystem::absolute(csv_path).string() << "\n";
  print_summary(issued, out);
  return report.ok() && rejected == 0 ? kExitOk : kExitRejected;
}

int gen(const GenOptions& o, std::ostream& out) {
  WorkloadParams params;
  params.subscriptions = o.subscriptions;
  params.seed = o.seed;
  params.months = o.months;
  WorkloadStats stats;
  if (o.output == "-") {
    stats = write_workload(params, out);
  } else {
    std::ofstream file(o.output, std::ios::binary);
    if (!file) return fail("cannot write " + o.output);
    stats = write_workload(params, file);
    if (!file) return fail("write to " + o.output + " failed");
  }
  std::cerr << "gen: " << stats.commands << " commands, " << stats.subscriptions
            << " subscriptions, " << stats.customers << " customers, " << stats.partners
            << " partners, " << stats.billing_runs << " billing runs\n";
  return kExitOk;
}

}  // namespace subledger::cli
