// State on disk (Ledger::Options::load_on_demand): a writer that opens with the catalog only and
// loads each command's customers from their rows decides exactly what a writer holding the whole
// state decides, through reopens, dropped caches, rejected groups and unreadable rows.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ledger/command_stream.h"
#include "ledger/ledger.h"
#include "support/process.h"
#include "workload/workload.h"

namespace subledger::testing {
namespace {

constexpr int64_t kRecordedAt = 1'700'000'000'000'000;

std::unique_ptr<Ledger> open_ledger(const std::string& dir, bool on_demand,
                                    size_t loaded_subscriptions_max = 1 << 18) {
  Ledger::Options o;
  o.clock = [] { return kRecordedAt; };
  o.load_on_demand = on_demand;
  o.loaded_subscriptions_max = loaded_subscriptions_max;
  std::string error;
  auto l = Ledger::open(dir, std::move(o), error);
  EXPECT_TRUE(l) << error;
  return l;
}

// Every event of the log, as stored.
std::vector<std::string> log_of(const std::string& dir) {
  auto store = Store::open(dir, Store::OpenOptions{Store::Access::kRead});
  EXPECT_TRUE(store.ok()) << store.status();
  std::vector<std::string> out;
  EXPECT_TRUE((*store)
                  ->scan_events(0,
                                [&](uint64_t, std::string_view bytes) {
                                  out.emplace_back(bytes);
                                  return true;
                                })
                  .ok());
  return out;
}

std::vector<std::string> workload(uint64_t subscriptions, int months) {
  std::stringstream out;
  write_workload(WorkloadParams{subscriptions, 11, months, 0, Date::from_ymd(2025, 1, 1)}, out);
  return lines_of(out.str());
}

const std::string kCatalog[] = {
    R"({"cmd":"register_partner","request_id":"p1","partner_id":"P1","country":"US","currency":"USD","billing_day":20})",
    R"({"cmd":"define_offer","request_id":"o1","offer_id":"E3","name":"E3","trial_eligible":true})",
    R"({"cmd":"publish_price","request_id":"pr1","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2016-01-01"})",
};

std::string create_customer(const std::string& id) {
  return R"({"cmd":"create_customer","request_id":"c-)" + id + R"(","customer_id":")" + id +
         R"(","partner_id":"P1","country":"US","currency":"USD","company_name":"Contoso"})";
}

std::string create_subscription(const std::string& id, const std::string& customer, int seats) {
  return R"({"cmd":"create_subscription","request_id":"s-)" + id + R"(","subscription_id":")" +
         id + R"(","customer_id":")" + customer + R"(","offer_id":"E3","seats":)" +
         std::to_string(seats) + R"(,"billing_frequency":"monthly","date":"2017-01-15"})";
}

// A small ledger: C1 with S1 and S2, C2 with S3, written by a whole-state writer.
void small_ledger(const std::string& dir) {
  auto l = open_ledger(dir, false);
  for (const std::string& line : kCatalog) ASSERT_TRUE(l->submit(line).ok) << line;
  for (const std::string& line :
       {create_customer("C1"), create_customer("C2"), create_subscription("S1", "C1", 5),
        create_subscription("S2", "C1", 6), create_subscription("S3", "C2", 7)})
    ASSERT_TRUE(l->submit(line).ok) << line;
  ASSERT_EQ(l->commit(), absl::OkStatus());
}

TEST(LoadOnDemand, OpensWithTheCatalogOnlyAndLoadsTheCustomersACommandNames) {
  TempDir dir("on-demand-open");
  small_ledger(dir.str());
  auto l = open_ledger(dir.str(), true);
  EXPECT_TRUE(l->open_report().on_demand);
  EXPECT_EQ(l->state().subscription_count(), 0u);
  EXPECT_NE(l->state().catalog().offer("E3"), nullptr);
  // Through a subscription: its customer comes with all its subscriptions.
  CommandResult r = l->submit(
      R"({"cmd":"change_seats","request_id":"x1","subscription_id":"S2","seats":9,"date":"2017-02-01"})");
  EXPECT_TRUE(r.ok) << r.to_json();
  EXPECT_EQ(l->state().subscription_count(), 2u);
  EXPECT_NE(l->state().subscription("S1"), nullptr);
  EXPECT_EQ(l->state().subscription("S3"), nullptr);
  // A subscription id already taken is found through its row (its customer comes with it).
  r = l->submit(
      R"({"cmd":"create_subscription","request_id":"again-S3","subscription_id":"S3","customer_id":"C1","offer_id":"E3","seats":1,"billing_frequency":"monthly","date":"2017-03-01"})");
  EXPECT_EQ(r.code, "ALREADY_EXISTS") << r.to_json();
  EXPECT_EQ(l->state().subscription_count(), 3u);
  r = l->submit(
      R"({"cmd":"create_customer","request_id":"again-C2","customer_id":"C2","partner_id":"P1","country":"US","currency":"USD","company_name":"Contoso"})");
  EXPECT_EQ(r.code, "ALREADY_EXISTS") << r.to_json();
  // A price publication bounds every subscription: the whole state is loaded, and stays.
  r = l->submit(
      R"({"cmd":"publish_price","request_id":"pr2","offer_id":"E3","currency":"USD","monthly_price":"21.00","effective_from":"2018-01-01"})");
  EXPECT_TRUE(r.ok) << r.to_json();
  EXPECT_EQ(l->state().subscription_count(), 3u);
  ASSERT_EQ(l->commit(), absl::OkStatus());
}

// The generated history decided by a whole-state writer, and again by writers that reopen every
// few commands (and after every billing run, which loads the whole state) and drop what they
// loaded after nearly every commit: the same results, the same log, byte for byte.
TEST(LoadOnDemand, DecidesTheSameLogAsTheWholeState) {
  const std::vector<std::string> lines = workload(400, 4);
  TempDir whole("on-demand-whole"), lazy("on-demand-lazy");
  std::vector<std::string> expected;
  {
    auto l = open_ledger(whole.str(), false);
    for (const auto& line : lines) expected.push_back(l->submit(line).to_json());
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  std::unique_ptr<Ledger> l;
  size_t opened_on_demand = 0, evicted = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!l || i % 37 == 0 || lines[i - 1].find("run_billing") != std::string::npos) {
      l.reset();
      l = open_ledger(lazy.str(), true, /*loaded_subscriptions_max=*/4);
      ASSERT_TRUE(l);
      opened_on_demand += l->open_report().on_demand;
    }
    EXPECT_EQ(l->submit(lines[i]).to_json(), expected[i]) << "line " << i + 1 << ": " << lines[i];
    const size_t loaded = l->state().subscription_count();
    ASSERT_EQ(l->commit(), absl::OkStatus());
    evicted += l->state().subscription_count() < loaded;
  }
  l.reset();
  EXPECT_GT(opened_on_demand, lines.size() / 37);
  EXPECT_GT(evicted, 10u);
  EXPECT_EQ(log_of(lazy.str()), log_of(whole.str()));
  // The rows the on-demand writers left are those of the whole state (a whole open takes them).
  auto reopened = open_ledger(lazy.str(), false);
  EXPECT_TRUE(reopened->open_report().from_checkpoint);
  EXPECT_FALSE(reopened->open_report().rows_rebuilt);
  EXPECT_EQ(reopened->state().subscription_count(), open_ledger(whole.str(), false)->state().subscription_count());
}

// A group rejected after it opened a subscription gives its creation ordinal back: the next
// subscription takes it, and the rows stay loadable as the whole state.
TEST(LoadOnDemand, ARejectedGroupGivesBackItsCreationOrdinal) {
  TempDir dir("on-demand-group");
  small_ledger(dir.str());
  {
    auto l = open_ledger(dir.str(), true);
    Ledger::GroupResult g = l->submit_group(
        {*parse_command(create_subscription("S4", "C1", 3)).command,
         *parse_command(
              R"({"cmd":"change_seats","request_id":"x9","subscription_id":"S404","seats":2,"date":"2017-02-01"})")
              .command});
    ASSERT_TRUE(g.rejected_index.has_value());
    EXPECT_TRUE(l->submit(create_subscription("S5", "C2", 3)).ok);
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  auto l = open_ledger(dir.str(), false);
  EXPECT_TRUE(l->open_report().from_checkpoint);
  EXPECT_FALSE(l->open_report().rows_rebuilt) << "the rows have a gap in creation ordinals";
  EXPECT_EQ(l->state().subscription_count(), 4u);
  EXPECT_EQ(l->state().subscription("S5")->ordinal, 3u);
}

// A customer row that cannot be read is no reason to refuse or misjudge a command: the whole
// state is rebuilt from the log and the command decided against it.
TEST(LoadOnDemand, AnUnreadableRowLoadsTheWholeStateFromTheLog) {
  TempDir dir("on-demand-damaged");
  small_ledger(dir.str());
  {
    auto store = Store::open(dir.str(), Store::OpenOptions{Store::Access::kWrite});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->put_raw_for_test("projections", customer_row_key("C1"), "junk").ok());
  }
  auto l = open_ledger(dir.str(), true);
  EXPECT_TRUE(l->open_report().on_demand);
  CommandResult r = l->submit(
      R"({"cmd":"change_seats","request_id":"x1","subscription_id":"S1","seats":8,"date":"2017-02-01"})");
  EXPECT_TRUE(r.ok) << r.to_json();
  EXPECT_EQ(r.seq_first, 9u);
  EXPECT_EQ(l->state().subscription_count(), 3u) << "the whole state";
  EXPECT_EQ(l->state().subscription("S1")->seats, 8);
  ASSERT_EQ(l->commit(), absl::OkStatus());
}


// apply's path: a reader thread parses the lines and reads their customers' rows ahead while the
// ledger decides, commits and drops what it loaded after every few commands. A row read before a
// drop may predate the write that came with it, so it must not be used: the log is still the
// whole-state writer's, byte for byte.
TEST(LoadOnDemand, RowsReadAheadOnAnotherThreadDecideTheSameLog) {
  // No billing run, and no price publication after the head: on demand throughout the tail.
  std::vector<std::string> lines;
  for (const std::string& line : workload(400, 4))
    if (line.find("run_billing") == std::string::npos) lines.push_back(line);
  const size_t head = lines.size() * 2 / 5;  // written first, by a whole-state writer
  std::erase_if(lines, [&, i = size_t{0}](const std::string& line) mutable {
    return i++ >= head && line.find("publish_price") != std::string::npos;
  });
  TempDir whole("read-ahead-whole"), lazy("read-ahead-lazy");
  std::vector<std::string> expected;
  for (const TempDir* dir : {&whole, &lazy}) {
    auto l = open_ledger(dir->str(), false);
    for (size_t i = 0; i < head; ++i) {
      CommandResult r = l->submit(lines[i]);
      EXPECT_TRUE(r.ok) << lines[i] << " " << r.to_json();
    }
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  {
    auto l = open_ledger(whole.str(), false);
    for (size_t i = head; i < lines.size(); ++i) expected.push_back(l->submit(lines[i]).to_json());
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  Ledger::Options o;
  o.clock = [] { return kRecordedAt; };
  o.load_on_demand = true;
  o.loaded_subscriptions_max = 8;
  auto opened = Ledger::open(lazy.str(), std::move(o));
  ASSERT_TRUE(opened.ok()) << opened.status();
  Ledger& l = **opened;
  ASSERT_TRUE(l.open_report().on_demand);
  std::string tail;
  for (size_t i = head; i < lines.size(); ++i) tail += lines[i] + "\n";
  std::istringstream in(tail);
  size_t i = 0, dropped = 0, prefetched = 0;
  {
    // Customers are read again after 3 others, so rows read before a drop meet the decisions.
    Ledger::ReadAhead ahead;
    ahead.customers = 3;
    CommandReader reader(in, 16, 8, [&l, recent = ahead](PreparedCommand& p) mutable {
      l.prefetch_rows(p, recent);
    });
    std::vector<CommandReader::Line> chunk;
    while (reader.next(chunk)) {
      for (auto& line : chunk) {
        prefetched += !line.command.prefetch.customers.empty();
        ASSERT_LT(i, expected.size());
        EXPECT_EQ(l.submit(line.command).to_json(), expected[i]) << "line " << head + i + 1;
        ++i;
        if (i % 5 == 0) {
          const size_t loaded = l.state().subscription_count();
          ASSERT_EQ(l.commit(), absl::OkStatus());
          dropped += l.state().subscription_count() < loaded;
        }
      }
    }
  }
  ASSERT_EQ(l.commit(), absl::OkStatus());
  EXPECT_EQ(i, expected.size());
  EXPECT_GT(dropped, 20u);
  EXPECT_GT(prefetched, expected.size() / 4);
  opened->reset();
  EXPECT_EQ(log_of(lazy.str()), log_of(whole.str()));
}

// `apply --load`: auto loads on demand for a file much smaller than the ledger and the whole
// state for one as large; -v says which; an unknown choice is refused before anything is read.
TEST(LoadOnDemand, ApplySaysWhatItLoaded) {
  TempDir dir("apply-load");
  std::ofstream(dir / "all.jsonl") << [] {
    std::string text;
    for (const std::string& line : workload(600, 2))
      if (line.find("run_billing") == std::string::npos) text += line + "\n";
    return text;
  }();
  ASSERT_EQ(run(bin() + " apply -q --db " + (dir / "db") + " " + (dir / "all.jsonl")).status, 0);
  std::ofstream(dir / "one.jsonl") << create_customer("new-1") << "\n";
  RunResult small = run(bin() + " apply -v --db " + (dir / "db") + " " + (dir / "one.jsonl") +
                        " 2>&1");
  EXPECT_NE(small.out.find("customers on demand"), std::string::npos) << small.out;
  RunResult whole = run(bin() + " apply -v --load whole --db " + (dir / "db") + " " +
                        (dir / "one.jsonl") + " 2>&1");
  EXPECT_NE(whole.out.find("(the whole state)"), std::string::npos) << whole.out;
  EXPECT_NE(whole.out.find("\"duplicate\":true"), std::string::npos) << whole.out;
  RunResult again = run(bin() + " apply -v --db " + (dir / "db") + " " + (dir / "all.jsonl") +
                        " 2>&1");
  EXPECT_NE(again.out.find("(the whole state)"), std::string::npos);
  RunResult bad = run(bin() + " apply --load lazy --db " + (dir / "db") + " " +
                      (dir / "one.jsonl") + " 2>&1");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("--load"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace subledger::testing
