// Queries answered through indexes must answer exactly what a scan of the whole log answers.
#include "ledger/queries.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "events/codec.h"
#include "ledger/activity_index.h"
#include "ledger/ledger.h"
#include "projections/invoice.h"
#include "projections/projection_rows.h"
#include "support/process.h"
#include "workload/workload.h"

namespace subledger::testing {
namespace {

using Json = nlohmann::json;

// A generated workload's commands, one JSON line each.
std::vector<std::string> workload_lines(const WorkloadParams& params) {
  std::stringstream commands;
  write_workload(params, commands);
  std::vector<std::string> lines;
  for (std::string line; std::getline(commands, line);) lines.push_back(line);
  return lines;
}

// Submits lines [from, to) to `ledger`, each accepted, committing after every `batch` of them (0:
// only once, at the end) and at the end.
void submit_range(Ledger& ledger, const std::vector<std::string>& lines, size_t from, size_t to,
                  size_t batch = 0) {
  for (size_t i = from; i < to; ++i) {
    CommandResult r = ledger.submit(lines[i]);
    ASSERT_TRUE(r.ok) << lines[i] << " -> " << r.to_json();
    if (batch != 0 && (i + 1) % batch == 0) {
      ASSERT_EQ(ledger.commit(), absl::OkStatus());
    }
  }
  ASSERT_EQ(ledger.commit(), absl::OkStatus());
}

// Applies a generated workload in batches of `batch` commands. With `rows_lag`, the projection
// rows are not written for the second half of the commands, so their checkpoint lags the log
// (readers catch up from it).
// `lag_commands`: with rows_lag, the rows lag by that many last commands instead of half.
// `without_final_billing`: the workload's last billing run is left out.
void apply_workload(const std::string& db, uint64_t subscriptions, uint64_t seed, int months,
                    size_t batch, bool rows_lag = false, size_t lag_commands = 0,
                    bool without_final_billing = false) {
  std::vector<std::string> lines =
      workload_lines(WorkloadParams{subscriptions, seed, months, 0, Date::from_ymd(2025, 1, 1)});
  if (without_final_billing) {
    ASSERT_NE(lines.back().find("\"run_billing\""), std::string::npos) << lines.back();
    lines.pop_back();
  }
  const size_t lag_from = !rows_lag        ? lines.size()
                          : lag_commands == 0 ? lines.size() / 2
                                              : lines.size() - std::min(lag_commands, lines.size());
  auto apply_range = [&](size_t from, size_t to, uint32_t rows_every) {
    Ledger::Options options;
    options.durable = false;
    options.projection_every_commits = rows_every;
    options.rows_with_billing_runs = rows_every == 1;  // the lagging half issues invoices too
    std::string error;
    auto ledger = Ledger::open(db, std::move(options), error);
    ASSERT_TRUE(ledger) << error;
    submit_range(*ledger, lines, from, to, batch);
  };
  apply_range(0, lag_from, 1);
  if (lag_from < lines.size()) apply_range(lag_from, lines.size(), 1u << 30);
}

// The reference: every event of the log read in order, each given to the customer that owns its
// stream (a subscription's is the customer named by the event that opened it).
std::map<std::string, std::vector<uint64_t>> owners_by_scan(const Store& store) {
  std::map<std::string, std::vector<uint64_t>> out;
  std::map<std::string, std::string> customer_of_subscription;
  EventDecoder decoder;
  Event e;
  absl::Status error;
  absl::Status scan = store.scan_events(0, [&](uint64_t seq, std::string_view bytes) {
    error = decoder.decode(bytes, e);
    if (!error.ok()) return false;
    if (const std::string* opener = opening_customer_of(e.payload))
      customer_of_subscription[e.stream.id] = *opener;
    if (e.stream.kind == StreamKind::kCustomer) out[e.stream.id].push_back(seq);
    if (e.stream.kind == StreamKind::kSubscription)
      out[customer_of_subscription.at(e.stream.id)].push_back(seq);
    return true;
  });
  EXPECT_TRUE(scan.ok()) << scan;
  EXPECT_TRUE(error.ok()) << error;
  return out;
}

void expect_index_answers_as_scan(const std::string& db) {
  auto store = Ledger::open_rows_for_reading(db);
  ASSERT_TRUE(store.ok()) << store.status();
  auto expected = owners_by_scan(**store);
  ASSERT_GT(expected.size(), 20u);
  size_t with_subscriptions = 0;
  for (const auto& [customer, seqs] : expected) {
    auto got = customer_event_seqs(**store, customer);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, seqs) << customer;
    with_subscriptions += seqs.size() > 2;
  }
  EXPECT_GT(with_subscriptions, expected.size() / 2) << "the ledger exercises subscriptions";
  auto none = customer_event_seqs(**store, "NO-SUCH-CUSTOMER");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST(CustomerLog, TheIndexGivesEveryCustomerExactlyTheEventsAScanGivesIt) {
  TempDir dir("customer-index");
  apply_workload(dir / "db", 400, 7, 5, 50);
  expect_index_answers_as_scan(dir / "db");
}

TEST(CustomerLog, EventsAfterTheRowsCheckpointAreIncludedIncludingNewSubscriptions) {
  TempDir dir("customer-index-lag");
  // The rows stop at half of the commands: the second half opens subscriptions the stored
  // customer rows do not list yet.
  apply_workload(dir / "db", 400, 8, 5, 50, /*rows_lag=*/true);
  {
    auto store = Store::open(dir / "db", Store::OpenOptions{Store::Access::kRead});
    ASSERT_TRUE(store.ok()) << store.status();
    auto checkpoint = (*store)->projection("checkpoint");
    ASSERT_TRUE(checkpoint.ok());
    ASSERT_LT(from_be64(*checkpoint), (*store)->last_seq()) << "the rows lag the log";
  }
  expect_index_answers_as_scan(dir / "db");
}

// `log --customer C` (with --type, --after-seq, --limit) prints the very lines the unfiltered
// `log` prints for C's streams, in the same order.
TEST(CustomerLog, TheCommandPrintsTheLinesOfTheFullLogThatAreTheCustomers) {
  TempDir dir("customer-log-cli");
  const std::string db = dir / "db";
  apply_workload(db, 200, 9, 4, 40, /*rows_lag=*/true);
  auto all = run(bin() + " log --db " + db);
  ASSERT_EQ(all.status, 0);
  std::map<std::string, std::string> customer_of_subscription;
  std::map<std::string, std::vector<std::string>> lines_of_customer;
  std::map<std::string, std::vector<Json>> parsed_of_customer;
  for (const std::string& line : lines_of(all.out)) {
    Json e = Json::parse(line);
    std::string stream = e["stream"];
    std::string owner;
    if (stream.starts_with("customer/")) owner = stream.substr(9);
    if (stream.starts_with("subscription/")) {
      std::string sub = stream.substr(13);
      if (e["type"] == "SubscriptionCreated" || e["type"] == "TrialStarted")
        customer_of_subscription[sub] = e["data"]["customer_id"];
      owner = customer_of_subscription.at(sub);
    }
    if (owner.empty()) continue;
    lines_of_customer[owner].push_back(line);
    parsed_of_customer[owner].push_back(e);
  }
  ASSERT_GT(lines_of_customer.size(), 10u);
  int checked = 0;
  for (const auto& [customer, lines] : lines_of_customer) {
    auto got = run(bin() + " log --customer " + customer + " --db " + db);
    ASSERT_EQ(got.status, 0);
    EXPECT_EQ(lines_of(got.out), lines) << customer;
    if (++checked % 5 != 0 || lines.size() < 4) continue;
    // Filters combine with the index: after a sequence number, a type, a limit.
    const auto& events = parsed_of_customer[customer];
    uint64_t after = events[1]["seq"];
    std::vector<std::string> after_lines(lines.begin() + 2, lines.end());
    EXPECT_EQ(lines_of(run(bin() + " log --customer " + customer + " --after-seq " +
                           std::to_string(after) + " --db " + db)
                           .out),
              after_lines)
        << customer;
    EXPECT_EQ(lines_of(run(bin() + " log --customer " + customer + " --after-seq " +
                           std::to_string(after) + " --limit 1 --db " + db)
                           .out),
              std::vector<std::string>{lines[2]})
        << customer;
    std::string type = events.back()["type"];
    std::vector<std::string> typed;
    for (size_t i = 0; i < lines.size(); ++i)
      if (events[i]["type"] == type) typed.push_back(lines[i]);
    EXPECT_EQ(lines_of(run(bin() + " log --customer " + customer + " --type " + type + " --db " +
                           db)
                           .out),
              typed)
        << customer;
  }
  // A customer that does not exist is an error (issue 19), not an empty log.
  auto unknown = run(bin() + " log --customer NOBODY --db " + db);
  EXPECT_EQ(unknown.status, 2);
  EXPECT_EQ(unknown.out, "");
}

TEST(CustomerLog, AnUnreadableCustomerRowIsFoldedFromTheLogNotAnError) {
  TempDir dir("customer-log-bad-row");
  const std::string db = dir / "db";
  apply_workload(db, 100, 10, 3, 40);
  const std::string expected = run(bin() + " log --customer C1 --db " + db).out;
  ASSERT_GT(lines_of(expected).size(), 2u);
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_EQ((*store)->put_raw_for_test("projections", customer_row_key("C1"), "not a row"), absl::OkStatus());
  }
  auto got = run(bin() + " log --customer C1 --db " + db);
  EXPECT_EQ(got.status, 0);
  EXPECT_EQ(got.out, expected);
}

}  // namespace
}  // namespace subledger::testing

namespace subledger::testing {
namespace {

// What `invoices` printed before it streamed: every invoice row, sorted by date then id, then
// filtered. The reference the streamed listing must match byte for byte.
std::string listing_by_sorting_every_row(const std::string& db, const std::string& format,
                                         const std::string& partner = "", Date from = Date(),
                                         Date to = Date(), const std::string& customer = "") {
  auto store = Ledger::open_rows_for_reading(db);
  EXPECT_TRUE(store.ok()) << store.status();
  auto all = issued_invoices(**store, customer);
  EXPECT_TRUE(all.ok()) << all.status();
  std::string text = format == "csv" ? reconciliation_header() : "";
  for (const IssuedInvoice& issued : *all) {
    const Invoice& inv = issued.invoice;
    if (!partner.empty() && inv.partner_id != partner) continue;
    if (!from.is_none() && inv.invoice_date < from) continue;
    if (!to.is_none() && inv.invoice_date > to) continue;
    if (format == "csv") {
      append_reconciliation_rows(text, inv);
    } else {
      text += invoice_json(inv) + "\n";
    }
  }
  return text;
}

void expect_streamed_listings_as_sorted(const std::string& db) {
  const std::string all = run(bin() + " invoices --db " + db).out;
  EXPECT_EQ(all, listing_by_sorting_every_row(db, "json"));
  ASSERT_GT(lines_of(all).size(), 100u);
  std::set<std::string> dates, partners;
  for (const auto& line : lines_of(all)) {
    Json j = Json::parse(line);
    dates.insert(j["invoice_date"].get<std::string>());
    partners.insert(j["partner_id"].get<std::string>());
  }
  ASSERT_GT(dates.size(), 6u);
  ASSERT_GE(partners.size(), 3u);
  // The line-level CSV is reconcile's (`invoices --format csv` is one row per invoice).
  EXPECT_EQ(run(bin() + " reconcile --from 1900-01-01 --to 9999-12-31 --db " + db).out,
            listing_by_sorting_every_row(db, "csv"));
  // Windows whose ends are invoice dates, fall between them, or hold none; per partner.
  std::vector<std::string> ordered(dates.begin(), dates.end());
  const std::vector<std::pair<std::string, std::string>> windows = {
      {ordered[1], ordered[ordered.size() - 2]},
      {Date::parse(ordered[2])->plus_days(1).iso(), ordered[5]},
      {ordered[3], ordered[3]},
      {"2001-01-01", "2001-12-31"},
      {"2001-01-01", ordered[0]},
      {ordered.back(), "2099-12-31"}};
  for (const auto& [from, to] : windows) {
    Date f = *Date::parse(from), t = *Date::parse(to);
    EXPECT_EQ(run(bin() + " reconcile --from " + from + " --to " + to + " --db " + db).out,
              listing_by_sorting_every_row(db, "csv", "", f, t))
        << from << ".." << to;
    EXPECT_EQ(run(bin() + " invoices --from " + from + " --db " + db).out,
              listing_by_sorting_every_row(db, "json", "", f))
        << from;
    EXPECT_EQ(run(bin() + " invoices --to " + to + " --db " + db).out,
              listing_by_sorting_every_row(db, "json", "", Date(), t))
        << to;
    for (const auto& p : partners)
      EXPECT_EQ(run(bin() + " invoices --partner " + p + " --from " + from + " --to " + to +
                    " --db " + db)
                    .out,
                listing_by_sorting_every_row(db, "json", p, f, t))
          << p << " " << from << ".." << to;
  }
  EXPECT_EQ(run(bin() + " invoices --customer C3 --db " + db).out,
            listing_by_sorting_every_row(db, "json", "", Date(), Date(), "C3"));
}

TEST(InvoiceListing, StreamedInvoicesAreTheSortedRowsByteForByteWithEveryFilter) {
  TempDir dir("invoices-stream");
  apply_workload(dir / "db", 600, 11, 7, 60);
  expect_streamed_listings_as_sorted(dir / "db");
}

TEST(InvoiceListing, InvoicesIssuedAfterTheRowsCheckpointAreListedInTheirPlace) {
  TempDir dir("invoices-stream-lag");
  apply_workload(dir / "db", 600, 12, 7, 60, /*rows_lag=*/true);
  expect_streamed_listings_as_sorted(dir / "db");
}

TEST(InvoiceListing, AnUnreadableRowMidwayIsFoldedFromTheLogAndTheListingGoesOnWhole) {
  TempDir dir("invoices-stream-bad-row");
  const std::string db = dir / "db";
  apply_workload(db, 300, 13, 5, 60);
  const std::string expected = run(bin() + " invoices --db " + db).out;
  auto lines = lines_of(expected);
  ASSERT_GT(lines.size(), 50u);
  const std::string victim = Json::parse(lines[lines.size() / 2])["invoice_id"];
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_EQ((*store)->put_raw_for_test("projections", invoice_row_key(victim), "not a row"), absl::OkStatus());
  }
  auto got = run(bin() + " invoices --db " + db);
  EXPECT_EQ(got.status, 0);
  EXPECT_EQ(got.out, expected) << "each invoice once, in order, though the row of " << victim
                               << " failed after half of them were printed";
}

// ---- a reader whose rows lag the log (a writer beside it) ----

// Every projection row as a store reads it (its overlay over the stored rows).
std::map<std::string, std::string> rows_of(const Store& store) {
  std::map<std::string, std::string> out;
  absl::Status scan = store.scan_projections("", [&](std::string_view key, std::string_view value) {
    out.emplace(key, value);
    return true;
  });
  EXPECT_TRUE(scan.ok()) << scan;
  return out;
}

// The server's index of issued invoices lists them as `invoices` does (date, then id), though a
// billing run issues them by date, partner and customer (so one partner's fall between
// another's), and whether it catches up over the whole log at once or a run at a time.
TEST(ActivityIndexInvoices, ListedByDateThenIdWhateverOrderTheLogIssuedThem) {
  TempDir dir("activity-index-invoices");
  const std::string db = dir / "db";
  // 25 partners over 19 billing days: some share theirs.
  std::vector<std::string> lines =
      workload_lines(WorkloadParams{800, 13, 5, 25, Date::from_ymd(2025, 1, 1)});
  ASSERT_NE(lines.back().find("\"run_billing\""), std::string::npos) << lines.back();

  ActivityIndex once_per_run, whole_log;
  auto apply = [&](size_t from, size_t to) {
    Ledger::Options options;
    options.durable = false;
    std::string error;
    auto ledger = Ledger::open(db, std::move(options), error);
    ASSERT_TRUE(ledger) << error;
    submit_range(*ledger, lines, from, to);
    ASSERT_EQ(once_per_run.catch_up(ledger->store()), absl::OkStatus());
  };
  apply(0, lines.size() - 1);
  apply(lines.size() - 1, lines.size());
  auto store = Ledger::open_rows_for_reading(db);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(whole_log.catch_up(**store), absl::OkStatus());

  // The reference: every InvoiceIssued of the log, sorted.
  using Ref = std::tuple<Date, std::string, std::string>;  // date, invoice id, customer id
  std::vector<Ref> issued;
  EventDecoder decoder;
  Event e;
  ASSERT_TRUE(store.value()
                  ->scan_events(0,
                                [&](uint64_t, std::string_view bytes) {
                                  EXPECT_EQ(decoder.decode(bytes, e), absl::OkStatus());
                                  if (const auto* i = std::get_if<InvoiceIssued>(&e.payload))
                                    issued.emplace_back(i->invoice_date, i->invoice_id,
                                                        i->customer_id);
                                  return true;
                                })
                  .ok());
  std::vector<Ref> in_log_order = issued;
  std::sort(issued.begin(), issued.end());
  ASSERT_GT(issued.size(), 300u);
  ASSERT_NE(in_log_order, issued) << "the log issues them out of listing order";

  auto listed = [](const ActivityIndex& index, const std::string& customer) {
    std::vector<ActivityIndex::InvoiceRef> page;
    index.invoices(InvoiceSelection{customer, "", Date(), Date()}, 0, SIZE_MAX, page);
    std::vector<Ref> out;
    for (const auto& ref : page) out.emplace_back(ref.date, ref.invoice_id, ref.customer_id);
    return out;
  };
  std::map<std::string, std::vector<Ref>> by_customer;
  for (const Ref& ref : issued) by_customer[std::get<2>(ref)].push_back(ref);
  ASSERT_GT(by_customer.size(), 100u);
  for (const ActivityIndex* index : {&once_per_run, &whole_log}) {
    EXPECT_EQ(listed(*index, ""), issued);
    for (const auto& [customer, own] : by_customer)
      EXPECT_EQ(listed(*index, customer), own) << customer;
  }
}

// A reader of a few keys (Store::Reads::kFew) keeps at most 10 table files open: over a ledger of
// many more (written by many sessions, each flushing its own), every row it reads by key, and
// every row it scans, is the row a reader that keeps every table open reads.
TEST(ReaderFewReads, ThroughTenOpenTablesEveryRowIsTheRowOfAReaderKeepingThemAll) {
  TempDir dir("reader-few-reads");
  const std::string db = dir / "db";
  std::vector<std::string> lines =
      workload_lines(WorkloadParams{300, 23, 3, 0, Date::from_ymd(2025, 1, 1)});
  constexpr size_t kSessions = 16;
  for (size_t session = 0; session < kSessions; ++session) {
    Ledger::Options options;
    options.durable = false;
    std::string error;
    auto ledger = Ledger::open(db, std::move(options), error);
    ASSERT_TRUE(ledger) << error;
    const size_t from = lines.size() * session / kSessions;
    const size_t to = lines.size() * (session + 1) / kSessions;
    for (size_t i = from; i < to; ++i) {
      CommandResult r = ledger->submit(lines[i]);
      ASSERT_TRUE(r.ok) << lines[i] << " -> " << r.to_json();
    }
    ASSERT_EQ(ledger->commit(), absl::OkStatus());
  }  // each session flushes its own tables at close
  size_t tables = 0;
  for (const auto& entry : std::filesystem::directory_iterator(db))
    tables += entry.path().extension() == ".sst";
  ASSERT_GT(tables, 20u) << "more table files than the reader keeps open";

  auto all = Store::open(db, Store::OpenOptions{Store::Access::kRead});
  ASSERT_TRUE(all.ok()) << all.status();
  const auto want = rows_of(**all);
  ASSERT_GT(want.size(), 300u);
  Store::OpenOptions few{Store::Access::kRead};
  few.reads = Store::Reads::kFew;
  auto store = Store::open(db, few);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(rows_of(**store), want);
  size_t differing = 0;
  for (auto it = want.rbegin(); it != want.rend(); ++it) {  // backwards: tables leave the cache
    auto got = (*store)->projection(it->first);
    if ((!got.ok() || *got != it->second) && ++differing <= 5)
      ADD_FAILURE() << "row " << it->first << ": " << got.status();
  }
  EXPECT_EQ(differing, 0u);
}

uint64_t checkpoint_and_last_seq(const std::string& db, uint64_t& last_seq) {
  auto store = Store::open(db, Store::OpenOptions{Store::Access::kRead});
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return 0;
  last_seq = (*store)->last_seq();
  auto checkpoint = (*store)->projection("checkpoint");
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  return checkpoint.ok() ? from_be64(*checkpoint) : 0;
}


// The rows lag the log, and the rows a reader reads after folding the tail into the customers it
// touches (at most `max_customers` of them) are byte for byte those of a fold of the whole log.
void expect_rows_of_a_whole_fold(const std::string& db, size_t max_customers,
                                 size_t min_rows = 100) {
  uint64_t last = 0;
  const uint64_t checkpoint = checkpoint_and_last_seq(db, last);
  ASSERT_LT(checkpoint, last) << "the rows lag the log";
  Ledger::RowsCatchUp report;
  auto caught_up = Ledger::open_rows_for_reading(db, /*fold_everything=*/false, &report);
  ASSERT_TRUE(caught_up.ok()) << caught_up.status();
  EXPECT_FALSE(report.whole_state);
  EXPECT_EQ(report.events, last - checkpoint);
  EXPECT_GT(report.customers, 0u);
  EXPECT_LE(report.customers, max_customers);
  auto whole = Ledger::open_rows_for_reading(db, /*fold_everything=*/true);
  ASSERT_TRUE(whole.ok()) << whole.status();
  auto got = rows_of(**caught_up), want = rows_of(**whole);
  ASSERT_GE(want.size(), min_rows);
  EXPECT_EQ(got.size(), want.size());
  size_t differing = 0;
  for (const auto& [key, value] : want) {
    auto it = got.find(key);
    if (it == got.end() || it->second != value) {
      if (++differing <= 5) ADD_FAILURE() << "row " << key << " differs from the whole fold's";
    }
  }
  EXPECT_EQ(differing, 0u);
}

TEST(ReaderCatchUp, AShortTailIsFoldedOverTheFewCustomersItTouches) {
  TempDir dir("reader-short-tail");
  const std::string db = dir / "db";
  // The last 60 commands (new subscriptions, seat changes, cancellations, reactivations) are
  // after the rows' checkpoint. (A billing run there would touch every invoiced customer: the
  // test of half the log has those.)
  apply_workload(db, 600, 21, 4, 50, /*rows_lag=*/true, /*lag_commands=*/60,
                 /*without_final_billing=*/true);
  expect_rows_of_a_whole_fold(db, /*max_customers=*/60);
}

TEST(ReaderCatchUp, HalfTheLogFoldedOverTheCustomersItTouchesGivesTheWholeFoldsRows) {
  TempDir dir("reader-long-tail");
  const std::string db = dir / "db";
  apply_workload(db, 400, 22, 6, 50, /*rows_lag=*/true);
  expect_rows_of_a_whole_fold(db, /*max_customers=*/400);
}

// Every scenario (new customers, updates, agreements, promotions, retirements, add-ons, trials,
// renewals and expiries, billing runs) cut at a third and at two thirds: the commands after the
// cut leave the rows behind, and a reader folding that tail over its customers reads what a
// whole fold gives.
TEST(ReaderCatchUp, EveryScenarioCutAnywhereGivesTheWholeFoldsRows) {
  std::vector<std::filesystem::path> files;
  const std::string shared = SHARED_SCENARIOS_DIR;
  for (const std::string& d : {std::string(PROJECT_SCENARIOS_DIR), shared, shared + "/catalog"}) {
    if (!std::filesystem::is_directory(d)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(d))
      if (entry.path().extension() == ".jsonl" &&
          entry.path().filename().string().find(".expected-") == std::string::npos)
        files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 20u);
  size_t folded = 0;
  for (const auto& file : files) {
    std::vector<std::string> lines;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(line);
    for (size_t cut : {lines.size() / 3, 2 * lines.size() / 3}) {
      SCOPED_TRACE(file.filename().string() + " cut after " + std::to_string(cut));
      TempDir dir("reader-scenario");
      const std::string db = dir / "db";
      for (auto [from, to, rows_every] :
           {std::tuple{size_t{0}, cut, 1u}, std::tuple{cut, lines.size(), 1u << 30}}) {
        Ledger::Options options;
        options.durable = false;
        options.projection_every_commits = rows_every;
        options.rows_with_billing_runs = rows_every == 1;
        std::string error;
        auto ledger = Ledger::open(db, std::move(options), error);
        ASSERT_TRUE(ledger) << error;
        for (size_t i = from; i < to; ++i) {
          (void)ledger->submit(lines[i]);  // some are rejected on purpose
          ASSERT_EQ(ledger->commit(), absl::OkStatus());
        }
      }
      uint64_t last = 0;
      if (checkpoint_and_last_seq(db, last) == last) continue;  // the tail appended nothing
      expect_rows_of_a_whole_fold(db, lines.size(), /*min_rows=*/3);
      ++folded;
    }
  }
  EXPECT_GT(folded, files.size()) << "most cuts leave a tail to fold";
}

// A lagging ledger (its last 8 commands after the rows' checkpoint) and a subscription the tail
// changes that was opened before it (so the tail needs its stored row and its customer's).
std::string lagging_ledger_and_a_subscription_the_tail_needs(const std::string& db,
                                                              uint64_t seed) {
  apply_workload(db, 300, seed, 3, 50, /*rows_lag=*/true, /*lag_commands=*/8);
  uint64_t last = 0;
  const uint64_t checkpoint = checkpoint_and_last_seq(db, last);
  EXPECT_LT(checkpoint, last);
  auto store = Store::open(db, Store::OpenOptions{Store::Access::kRead});
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return "";
  std::string touched;
  std::set<std::string> opened_in_tail;
  EventDecoder decoder;
  Event e;
  absl::Status scan = (*store)->scan_events(checkpoint, [&](uint64_t, std::string_view bytes) {
    EXPECT_TRUE(decoder.decode(bytes, e).ok());
    if (const std::string* sub = subscription_id_of(e.payload)) {
      if (opening_customer_of(e.payload))
        opened_in_tail.insert(*sub);
      else if (!opened_in_tail.contains(*sub))
        touched = *sub;
    }
    return true;
  });
  EXPECT_TRUE(scan.ok()) << scan;
  EXPECT_FALSE(touched.empty()) << "the tail changes a subscription opened before it";
  return touched;
}

// The reader had to fold the whole state, and reads what a fold of the whole log gives.
void expect_the_whole_state_folded(const std::string& db) {
  Ledger::RowsCatchUp report;
  auto caught_up = Ledger::open_rows_for_reading(db, false, &report);
  ASSERT_TRUE(caught_up.ok()) << caught_up.status();
  EXPECT_TRUE(report.whole_state);
  auto whole = Ledger::open_rows_for_reading(db, /*fold_everything=*/true);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(rows_of(**caught_up), rows_of(**whole));
}

// A customer row the tail needs that cannot be read: the tail is folded over the whole state
// instead (which rebuilds the rows in memory from the log), with the rows of a whole fold.
TEST(ReaderCatchUp, AnUnreadableRowTheTailNeedsFoldsTheWholeStateInstead) {
  TempDir dir("reader-unreadable-row");
  const std::string db = dir / "db";
  const std::string sub = lagging_ledger_and_a_subscription_the_tail_needs(db, 24);
  ASSERT_FALSE(sub.empty());
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite});
    ASSERT_TRUE(store.ok()) << store.status();
    auto row = (*store)->projection(subscription_row_key(sub));
    ASSERT_TRUE(row.ok()) << row.status();
    const std::string customer = decode_subscription_row(*row)->customer_id;
    ASSERT_EQ((*store)->put_raw_for_test("projections", customer_row_key(customer), "not a row"),
              absl::OkStatus());
  }
  expect_the_whole_state_folded(db);
}

// A row the tail needs that is missing: the tail is folded over the whole state instead, with
// the same rows (the missing row is rebuilt in memory from the log).
TEST(ReaderCatchUp, ARowTheTailNeedsMissingFoldsTheWholeStateInstead) {
  TempDir dir("reader-missing-row");
  const std::string db = dir / "db";
  const std::string sub = lagging_ledger_and_a_subscription_the_tail_needs(db, 23);
  ASSERT_FALSE(sub.empty());
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->delete_raw_for_test("projections", subscription_row_key(sub)).ok());
  }
  expect_the_whole_state_folded(db);
}

}  // namespace
}  // namespace subledger::testing
