// A billing run committed in parts (Ledger::Options::billing_part_bytes): it writes the same log,
// rows and idempotency record as a run written in one batch, and a run a crash cuts short between
// two parts is ended by the next writer's open, with the same events, byte for byte, and the same
// invoices; a retry of it is then a duplicate with the result of the uncut run. So for a ledger's
// first run and a later one, over the whole state and over the state on disk (customers loaded
// as their turn comes, and dropped between parts).
#include <gtest/gtest.h>
#include <absl/strings/escaping.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>

#include "events/codec.h"
#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "support/process.h"
#include "workload/workload.h"

namespace subledger::testing {
namespace {

constexpr int64_t kRecordedAt = 1'700'000'000'000'000;
constexpr size_t kSmallParts = 4096;  // a dozen events or so per part

// `on_demand`: the state on disk (Options::load_on_demand), with so few customers kept loaded
// that a run drops and reloads them between its parts.
std::unique_ptr<Ledger> open_writer(const std::string& dir, size_t part_bytes,
                                    std::function<int64_t()> clock = [] { return kRecordedAt; },
                                    uint32_t rows_every_commits = 1, bool on_demand = false) {
  Ledger::Options o;
  o.clock = std::move(clock);
  o.billing_part_bytes = part_bytes;
  o.projection_every_commits = rows_every_commits;
  o.load_on_demand = on_demand;
  o.bill_from_rows = on_demand;
  o.loaded_subscriptions_max = 40;
  std::string error;
  auto l = Ledger::open(dir, std::move(o), error);
  EXPECT_TRUE(l) << error;
  return l;
}

// Everything a ledger stores that a billing run writes: the log, every projection row and the
// idempotency record of `request_id`.
struct Stored {
  std::vector<std::string> events;
  std::map<std::string, std::string> rows;
  std::string record;
  bool operator==(const Stored&) const = default;
};

Stored stored(const std::string& dir, const std::string& request_id) {
  auto store = Store::open(dir, Store::OpenOptions{Store::Access::kRead});
  EXPECT_TRUE(store.ok()) << store.status();
  Stored out;
  EXPECT_TRUE((*store)
                  ->scan_events(0,
                                [&](uint64_t, std::string_view bytes) {
                                  out.events.emplace_back(bytes);
                                  return true;
                                })
                  .ok());
  EXPECT_TRUE((*store)
                  ->scan_projections("",
                                     [&](std::string_view key, std::string_view value) {
                                       out.rows.emplace(key, value);
                                       return true;
                                     })
                  .ok());
  auto record = (*store)->idempotency(request_id);
  EXPECT_TRUE(record.ok()) << record.status();
  if (record.ok()) out.record = *record;
  return out;
}

// How many invoices the whole listing (`invoices`, `reconcile`) shows a reader.
size_t listed_invoices(const std::string& dir) {
  auto store = Ledger::open_rows_for_reading(dir);
  EXPECT_TRUE(store.ok()) << store.status();
  size_t n = 0;
  EXPECT_TRUE(for_each_issued_invoice(**store, InvoiceSelection{}, [&](const IssuedInvoice&) {
                ++n;
                return true;
              }).ok());
  return n;
}

uint64_t last_seq_of(const std::string& dir) {
  auto store = Store::open(dir, Store::OpenOptions{Store::Access::kRead});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? (*store)->last_seq() : 0;
}

// A reader's stream index of the streams the run's first `events` events belong to is the log's
// own: each event once, in order (the index entries of a run's parts are stored beyond the
// derived mark that is held before the run, and the reader's overlay begins at that mark).
void expect_reader_streams_as_logged(const std::string& dir, uint64_t first_seq, int events) {
  auto store = Store::open(dir, Store::OpenOptions{Store::Access::kRead});
  ASSERT_TRUE(store.ok()) << store.status();
  EventDecoder decoder;
  Event e;
  std::map<std::pair<int, std::string>, std::vector<uint64_t>> logged;
  ASSERT_TRUE((*store)
                  ->scan_events(0,
                                [&](uint64_t seq, std::string_view bytes) {
                                  EXPECT_TRUE(decoder.decode(bytes, e).ok());
                                  logged[{static_cast<int>(e.stream.kind), e.stream.id}].push_back(
                                      seq);
                                  return true;
                                })
                  .ok());
  int checked = 0;
  ASSERT_TRUE((*store)
                  ->scan_events(first_seq - 1,
                                [&](uint64_t, std::string_view bytes) {
                                  EXPECT_TRUE(decoder.decode(bytes, e).ok());
                                  auto indexed = (*store)->stream_seqs(e.stream);
                                  EXPECT_TRUE(indexed.ok()) << indexed.status();
                                  if (indexed.ok()) {
                                    EXPECT_EQ(*indexed,
                                              (logged[{static_cast<int>(e.stream.kind),
                                                       e.stream.id}]))
                                        << "stream " << e.stream.id;
                                  }
                                  return ++checked < events;
                                })
                  .ok());
  EXPECT_EQ(checked, events);
}

bool has_unfinished_run(const std::string& dir) {
  auto store = Store::open(dir, Store::OpenOptions{Store::Access::kRead});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() && (*store)->unfinished_run().ok();
}

// A generated ledger up to its first or its last billing run (three months of 1500
// subscriptions, with renewals, trials ending and add-ons), written into `dir`; returns that
// run's command line. The first run is a ledger's first (no billing clock yet): where each
// partner's invoice dates begin is read from pending charges the run's own invoices consume.
std::string ledger_before_run(const std::string& dir, bool first) {
  std::stringstream text;
  write_workload(WorkloadParams{1500, 7, 3, 0, Date::from_ymd(2025, 1, 1)}, text);
  std::vector<std::string> lines = lines_of(text.str());
  size_t run = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("\"run_billing\"") == std::string::npos) continue;
    run = i;
    if (first) break;
  }
  EXPECT_LT(run, lines.size());
  auto l = open_writer(dir, 0);
  for (size_t i = 0; i < run; ++i) {
    l->submit(lines[i]);
    if (i % 256 == 255) {
      EXPECT_EQ(l->commit(), absl::OkStatus());
    }
  }
  // A promotion on renewal of one offer: renewing a subscription of it looks at the customer's
  // other subscriptions (a run over rows on disk then loads its customer whole, the others alone).
  CommandResult promoted = l->submit(
      R"({"cmd":"define_promotion","request_id":"pm","promotion_id":"E1-RENEW","offer_ids":["E1"],)"
      R"("percent_off":10,"purchase_from":"2025-03-01","purchase_to":"2030-12-31",)"
      R"("applies_to":["renewal"],"new_customer_only":true,"exclude_offers":["E3"]})");
  EXPECT_TRUE(promoted.ok) << promoted.to_json() << promoted.message;
  EXPECT_EQ(l->commit(), absl::OkStatus());
  return lines[run];
}

// Parameters: the ledger's first run or a later one; the whole state or the state on disk. The
// run they must all write is the whole state's in one batch.
class BillingRunInParts : public ::testing::TestWithParam<std::tuple<bool, bool>> {
 protected:
  void SetUp() override {
    run_line_ = ledger_before_run(dir_ / "base", first_run());
    std::filesystem::copy(dir_ / "base", dir_ / "one", std::filesystem::copy_options::recursive);
    auto l = open_writer(dir_ / "one", 0);
    uncut_ = l->submit(run_line_);
    ASSERT_TRUE(uncut_.ok) << uncut_.to_json();
    ASSERT_EQ(l->commit(), absl::OkStatus());
    ASSERT_GT(uncut_.seq_last - uncut_.seq_first, 100u) << "a run of many parts";
  }
  bool first_run() const { return std::get<0>(GetParam()); }
  bool on_demand() const { return std::get<1>(GetParam()); }
  std::unique_ptr<Ledger> writer(const std::string& dir, size_t part_bytes,
                                 std::function<int64_t()> clock = [] { return kRecordedAt; },
                                 uint32_t rows_every_commits = 1) {
    return open_writer(dir, part_bytes, std::move(clock), rows_every_commits, on_demand());
  }
  std::string copy_of_base(const std::string& name) {
    std::filesystem::copy(dir_ / "base", dir_ / name, std::filesystem::copy_options::recursive);
    return dir_ / name;
  }
  TempDir dir_{"billing-parts"};
  std::string run_line_;
  CommandResult uncut_;
};

TEST_P(BillingRunInParts, WritesTheLogRowsAndRecordOfARunInOneBatch) {
  const std::string dir = copy_of_base("parts");
  {
    auto l = writer(dir, kSmallParts);
    CommandResult r = l->submit(run_line_);
    ASSERT_TRUE(r.ok) << r.to_json();
    EXPECT_EQ(r.to_json(), uncut_.to_json());
    // Its parts are written (with the progress record), the derived mark held before the run
    // (it never splits a command); its end is staged.
    ASSERT_EQ(l->wait_committed(), absl::OkStatus());  // the last part may still be in flight
    EXPECT_TRUE(l->store().unfinished_run().ok());
    EXPECT_EQ(l->store().derived_mark().value_or(0), r.seq_first - 1);
    ASSERT_EQ(l->commit(), absl::OkStatus());
    EXPECT_TRUE(absl::IsNotFound(l->store().unfinished_run().status()));
    EXPECT_EQ(l->store().derived_mark().value_or(0), r.seq_last);
  }
  EXPECT_TRUE(stored(dir, uncut_.request_id) == stored(dir_ / "one", uncut_.request_id));
  auto again = writer(dir, kSmallParts);
  CommandResult retry = again->submit(run_line_);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.seq_first, uncut_.seq_first);
  EXPECT_EQ(retry.seq_last, uncut_.seq_last);
  EXPECT_EQ(retry.extra_json, uncut_.extra_json);
}

// The clock is read once per event: failing it part-way through the run stops the process there,
// as a crash would (what was not committed is lost).
struct Crash : std::runtime_error {
  Crash() : std::runtime_error("crash") {}
};

void crash_part_way(const std::string& dir, const std::string& run_line, uint64_t events_before,
                    bool lose_unsynced, bool on_demand) {
  auto l = open_writer(
      dir, kSmallParts,
      [calls = uint64_t{0}, events_before]() mutable {
        if (++calls > events_before) throw Crash();
        return kRecordedAt;
      },
      1, on_demand);
  EXPECT_THROW(l->submit(run_line), Crash);
  // The stream index, the records and the rows go without the WAL: a kill -9 loses those of
  // the last flush on; a clean stop keeps them.
  if (lose_unsynced) l->store().drop_unsynced_at_close_for_test();
}

TEST_P(BillingRunInParts, IsEndedByTheNextOpenWithTheSameEventsAndInvoices) {
  const uint64_t run_events = uncut_.seq_last - uncut_.seq_first + 1;
  for (bool lose_unsynced : {false, true})
  for (uint64_t cut : {run_events / 3, run_events - 2}) {
    const std::string dir =
        copy_of_base("cut-" + std::to_string(cut) + (lose_unsynced ? "-lost" : "-kept"));
    crash_part_way(dir, run_line_, cut, lose_unsynced, on_demand());
    ASSERT_TRUE(has_unfinished_run(dir)) << "parts were written before the crash";
    if (first_run() && cut == run_events - 2) {
      // Cut while invoicing: where each partner's dates begin is recorded with the parts.
      auto store = Store::open(dir, Store::OpenOptions{Store::Access::kRead});
      ASSERT_TRUE(store.ok()) << store.status();
      auto run = UnfinishedRun::decode((*store)->unfinished_run().value_or(""));
      ASSERT_TRUE(run.ok()) << run.status();
      ASSERT_TRUE(run->starts.has_value());
      EXPECT_FALSE(run->starts->empty());
    }
    // A reader meanwhile sees the parts: the rows open, and the run is not over.
    {
      Ledger::Options o;
      o.preview = true;
      std::string error;
      auto reader = Ledger::open(dir, std::move(o), error);
      ASSERT_TRUE(reader) << error;
      EXPECT_LT(reader->state().last_seq(), uncut_.seq_last);
      EXPECT_GE(reader->state().last_seq(), uncut_.seq_first);
    }
    expect_reader_streams_as_logged(dir, uncut_.seq_first, 20);
    // The whole listing goes run by run: it shows the run's invoices once the run has ended.
    EXPECT_EQ(listed_invoices(dir), listed_invoices(dir_ / "base"));
    {
      auto l = writer(dir, kSmallParts);
      EXPECT_EQ(l->open_report().ended_run, uncut_.request_id);
      EXPECT_EQ(l->state().last_seq(), uncut_.seq_last);
    }
    EXPECT_FALSE(has_unfinished_run(dir));
    EXPECT_EQ(listed_invoices(dir), listed_invoices(dir_ / "one"));
    EXPECT_TRUE(stored(dir, uncut_.request_id) == stored(dir_ / "one", uncut_.request_id))
        << "cut after " << cut << " of " << run_events << " events";
    auto again = writer(dir, kSmallParts);
    CommandResult retry = again->submit(run_line_);
    EXPECT_TRUE(retry.duplicate);
    CommandResult expected = uncut_;
    expected.duplicate = true;
    EXPECT_EQ(retry.to_json(), expected.to_json());
  }
}

// A run cut short twice (its end cut short too) is still ended whole.
TEST_P(BillingRunInParts, ARunCutShortAgainWhileBeingEndedIsEndedByTheOpenAfter) {
  const uint64_t run_events = uncut_.seq_last - uncut_.seq_first + 1;
  const std::string dir = copy_of_base("twice");
  crash_part_way(dir, run_line_, run_events / 4, /*lose_unsynced=*/true, on_demand());
  const uint64_t after_first_cut = last_seq_of(dir);
  auto throwing_clock = [](uint64_t events_before) {
    return [calls = uint64_t{0}, events_before]() mutable -> int64_t {
      if (++calls > events_before) throw Crash();
      return kRecordedAt;
    };
  };
  {
    // Cut before the first event of its end: the open's catch-up has written the index and the
    // records of the log before the run, and neither a record nor the mark for the run's parts.
    Ledger::Options o;
    o.billing_part_bytes = kSmallParts;
    o.load_on_demand = on_demand();
    o.bill_from_rows = on_demand();
    o.clock = throwing_clock(0);
    EXPECT_THROW((void)Ledger::open(dir, std::move(o)), Crash);
    auto store = Store::open(dir, Store::OpenOptions{Store::Access::kRead});
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->derived_mark().value_or(0), uncut_.seq_first - 1);
    EXPECT_TRUE(absl::IsNotFound((*store)->idempotency(uncut_.request_id).status()));
  }
  {
    Ledger::Options o;
    o.billing_part_bytes = kSmallParts;
    o.load_on_demand = on_demand();
    o.bill_from_rows = on_demand();
    o.clock = throwing_clock(run_events / 4);
    EXPECT_THROW((void)Ledger::open(dir, std::move(o)), Crash);
  }
  ASSERT_TRUE(has_unfinished_run(dir));
  EXPECT_GT(last_seq_of(dir), after_first_cut) << "the second cut came after parts of the end";
  { auto l = writer(dir, kSmallParts); }
  EXPECT_TRUE(stored(dir, uncut_.request_id) == stored(dir_ / "one", uncut_.request_id));
}

// Rows written only every 64th commit (as the server does): the run's end still carries them
// (invoices are read from their rows), though each part reset the count.
TEST_P(BillingRunInParts, TheEndOfARunInPartsCarriesTheRowsHoweverRarelyTheyAreWritten) {
  const std::string dir = copy_of_base("rare-rows");
  auto l = writer(dir, kSmallParts, [] { return kRecordedAt; }, /*rows_every_commits=*/64);
  CommandResult r = l->submit(run_line_);
  ASSERT_TRUE(r.ok) << r.to_json();
  ASSERT_EQ(l->commit(), absl::OkStatus());
  auto checkpoint = l->store().projection("checkpoint");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(from_be64(*checkpoint), r.seq_last);
}

// A year and more of billing (so subscriptions renew), with a promotion on renewal of one offer
// whose terms look at the customer's other subscriptions (new customers only, some offers
// excluded): every run over the state on disk, in small parts, with few customers kept loaded,
// writes the whole state's log and rows byte for byte. Renewals of the promoted offer load their
// customer whole; the others load alone.
// Submits `lines` to a new ledger in `at`, over the whole state or the state on disk (reopened
// before each billing run, so that it loads only the catalog). Returns the last request id.
std::string submit_all(const std::string& at, const std::vector<std::string>& lines, bool on_disk) {
  std::string last_request;
  auto l = open_writer(at, kSmallParts, [] { return kRecordedAt; }, 1, on_disk);
  for (size_t i = 0; i < lines.size(); ++i) {
    const bool run = lines[i].find("\"run_billing\"") != std::string::npos;
    if (on_disk && run) {
      // Opened afresh, only the catalog is loaded (a price publication loads the whole state).
      EXPECT_EQ(l->commit(), absl::OkStatus());
      l.reset();
      l = open_writer(at, kSmallParts, [] { return kRecordedAt; }, 1, on_disk);
      EXPECT_TRUE(l->open_report().on_demand);
    }
    CommandResult r = l->submit(lines[i]);
    EXPECT_TRUE(r.ok || r.duplicate) << r.to_json();
    last_request = r.request_id;
    if (run || i % 256 == 255) {
      EXPECT_EQ(l->commit(), absl::OkStatus());
    }
  }
  EXPECT_EQ(l->commit(), absl::OkStatus());
  return last_request;
}

// The same log, rows and last record: the first event or row that differs is named.
void expect_same_stored(const Stored& disk, const Stored& whole) {
  EXPECT_EQ(disk.events.size(), whole.events.size());
  for (size_t i = 0; i < std::min(disk.events.size(), whole.events.size()); ++i)
    if (disk.events[i] != whole.events[i]) {
      ADD_FAILURE() << "event " << i + 1 << " differs";
      break;
    }
  EXPECT_EQ(disk.rows.size(), whole.rows.size());
  for (const auto& [key, value] : whole.rows) {
    auto it = disk.rows.find(key);
    if (it == disk.rows.end() || it->second != value) {
      ADD_FAILURE() << "row " << absl::CEscape(key)
                    << (it == disk.rows.end() ? " missing" : " differs");
      break;
    }
  }
  EXPECT_EQ(disk.record, whole.record);
}

TEST(BillingRunOnDisk, EveryRunOfAYearWithAPromotionOnRenewalIsTheWholeStatesRun) {
  TempDir dir("billing-on-disk");
  std::stringstream text;
  write_workload(WorkloadParams{400, 11, 14, 0, Date::from_ymd(2025, 1, 1)}, text);
  std::vector<std::string> lines = lines_of(text.str());
  const std::string promotion =
      R"({"cmd":"define_promotion","request_id":"pm","promotion_id":"E1-RENEW","offer_ids":)"
      R"(["E1","E3"],"percent_off":10,"purchase_from":"2025-01-01","purchase_to":"2030-12-31",)"
      R"("applies_to":["renewal"],"new_customer_only":true,"exclude_offers":["BP"]})";
  auto first_customer = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("\"create_customer\"") != std::string::npos;
  });
  ASSERT_NE(first_customer, lines.end());
  lines.insert(first_customer, promotion);
  std::string last_request;
  for (bool on_disk : {false, true})
    last_request = submit_all(dir / (on_disk ? "disk" : "whole"), lines, on_disk);
  uint64_t renewals = 0;
  {
    auto store = Store::open(dir / "whole", Store::OpenOptions{Store::Access::kRead});
    ASSERT_TRUE(store.ok()) << store.status();
    EventDecoder decoder;
    Event e;
    ASSERT_TRUE((*store)
                    ->scan_events(0,
                                  [&](uint64_t, std::string_view bytes) {
                                    EXPECT_TRUE(decoder.decode(bytes, e).ok());
                                    if (const auto* renewed =
                                            std::get_if<SubscriptionRenewed>(&e.payload))
                                      renewals += renewed->term.promotion_id.empty() ? 0 : 1;
                                    return true;
                                  })
                    .ok());
  }
  EXPECT_GT(renewals, 0u) << "renewals the promotion applies to";
  expect_same_stored(stored(dir / "disk", last_request), stored(dir / "whole", last_request));
}

// One run through a year invoices each customer once a month, and over the state on disk it
// drops and reloads its customers between parts: rows its invoicing read ahead (on other
// threads, run_billing's CustomerReadAhead) before a customer's last invoice was written are
// older than the customer by its next turn, and must not be used (they would invoice its
// charges again).
TEST(BillingRunOnDisk, OneRunOfAYearsInvoiceDatesIsTheWholeStatesRun) {
  TempDir dir("billing-on-disk-dates");
  std::stringstream text;
  write_workload(WorkloadParams{400, 12, 12, 0, Date::from_ymd(2025, 1, 1)}, text);
  std::vector<std::string> lines;
  std::string last_run;
  for (std::string& line : lines_of(text.str()))
    (line.find("\"run_billing\"") != std::string::npos ? last_run : lines.emplace_back()) =
        std::move(line);
  ASSERT_FALSE(last_run.empty());
  lines.push_back(last_run);
  std::string last_request;
  for (bool on_disk : {false, true})
    last_request = submit_all(dir / (on_disk ? "disk" : "whole"), lines, on_disk);
  const Stored whole = stored(dir / "whole", last_request);
  size_t invoices = 0;
  EventDecoder decoder;
  Event e;
  for (const std::string& bytes : whole.events) {
    ASSERT_TRUE(decoder.decode(bytes, e).ok());
    invoices += std::holds_alternative<InvoiceIssued>(e.payload) ? 1 : 0;
  }
  EXPECT_GT(invoices, 500u) << "the customers invoiced month after month in one run";
  expect_same_stored(stored(dir / "disk", last_request), whole);
}

INSTANTIATE_TEST_SUITE_P(FirstOrLaterRun, BillingRunInParts,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "First" : "Later") +
                                  "Run" + (std::get<1>(info.param) ? "StateOnDisk" : "WholeState");
                         });

}  // namespace
}  // namespace subledger::testing
