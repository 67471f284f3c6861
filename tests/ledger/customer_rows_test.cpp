// A customer's rows (projections/projection_rows.h, format 5): its own row, a row per subscription
// and a row per pending line under it. A change writes what it adds and erases the lines it
// invoices, never the customer's whole history; the rows so written are always exactly the rows
// of the whole state, and read back to it.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "events/codec.h"
#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "projections/projection_rows.h"
#include "replay/replay.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

constexpr int kSubscriptions = 300;

std::string create_subscription(int n, const std::string& date) {
  return R"({"cmd":"create_subscription","request_id":"s)" + std::to_string(n) +
         R"(","subscription_id":"S)" + std::to_string(n) +
         R"(","customer_id":"C1","offer_id":"E3","seats":2,"billing_frequency":"monthly","date":")" +
         date + R"("})";
}

// One customer with kSubscriptions subscriptions, a billing run, then a few more changes and
// (second_run) a run that invoices every line.
std::vector<std::string> big_customer(bool second_run = true) {
  std::vector<std::string> lines = {
      R"({"cmd":"register_partner","request_id":"p1","partner_id":"P1","country":"US","currency":"USD","billing_day":20})",
      R"({"cmd":"define_offer","request_id":"o1","offer_id":"E3","name":"Office 365 E3","trial_eligible":true})",
      R"({"cmd":"publish_price","request_id":"pr1","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2016-01-01"})",
      R"({"cmd":"create_customer","request_id":"c1","customer_id":"C1","partner_id":"P1","country":"US","currency":"USD","company_name":"Contoso"})"};
  for (int n = 1; n <= kSubscriptions; ++n)
    lines.push_back(create_subscription(n, n % 2 ? "2017-03-10" : "2017-04-25"));
  lines.push_back(R"({"cmd":"run_billing","request_id":"b1","through":"2017-03-31"})");
  for (int n = kSubscriptions + 1; n <= kSubscriptions + 5; ++n)
    lines.push_back(create_subscription(n, "2017-05-02"));
  lines.push_back(
      R"({"cmd":"change_seats","request_id":"x1","subscription_id":"S5","seats":7,"date":"2017-05-03"})");
  if (second_run)
    lines.push_back(R"({"cmd":"run_billing","request_id":"b2","through":"2017-05-31"})");
  return lines;
}

std::vector<Event> events_of(const std::vector<std::string>& lines, const TempDir& dir) {
  std::string error;
  auto l = Ledger::open(dir.str(), {}, error);
  EXPECT_TRUE(l) << error;
  for (size_t i = 0; i < lines.size(); ++i) {
    CommandResult r = l->submit(lines[i]);
    EXPECT_TRUE(r.ok) << lines[i] << " -> " << r.message;
    if (i % 50 == 49) {
      EXPECT_EQ(l->commit(), absl::OkStatus());
    }
  }
  EXPECT_EQ(l->commit(), absl::OkStatus());
  std::vector<Event> events;
  EventDecoder decoder;
  EXPECT_EQ(l->store().scan_events(0,
                                   [&](uint64_t, std::string_view bytes) {
                                     EXPECT_TRUE(decoder.decode(bytes, events.emplace_back()).ok());
                                     return true;
                                   }),
            absl::OkStatus());
  return events;
}

// The pending lines' amounts in absolute value, summed from the lines themselves.
__int128 walked_magnitude(const LedgerState& state, const std::string& customer_id) {
  __int128 sum = 0;
  if (const auto* lines = state.pending_lines(customer_id))
    for (const ChargeLine& l : *lines) sum += l.amount_minor < 0 ? -l.amount_minor : l.amount_minor;
  return sum;
}

std::map<std::string, std::string> rows_of(const LedgerState& state) {
  std::map<std::string, std::string> rows;
  state.put_all_rows([&](std::string_view k, std::string_view v) { rows.emplace(k, v); });
  return rows;
}

// What one take_changed_rows() put and erased.
struct Change {
  std::map<std::string, std::string> put;
  std::vector<std::string> erased;
  size_t bytes = 0;
};

// Folds the events with change tracking, taking the changed rows after each event into `rows`
// (as a store would hold them); returns each event's change.
std::vector<Change> fold_taking_rows(const std::vector<Event>& events, LedgerState& state,
                                     std::map<std::string, std::string>& rows) {
  std::vector<Change> changes;
  for (const Event& e : events) {
    EXPECT_EQ(state.apply(e), absl::OkStatus()) << e.seq;
    Change& c = changes.emplace_back();
    state.take_changed_rows(
        [&](std::string_view k, std::string_view v) {
          c.put.insert_or_assign(std::string(k), std::string(v));
          c.bytes += k.size() + v.size();
          if (!k.starts_with(kInvoiceRowPrefix)) rows.insert_or_assign(std::string(k), std::string(v));
        },
        [&](std::string_view k) {
          c.erased.emplace_back(k);
          EXPECT_EQ(rows.erase(std::string(k)), 1u) << "erases a row it never wrote";
        });
  }
  return changes;
}

TEST(CustomerRows, AChangeWritesWhatItAddsNotTheCustomersHistory) {
  TempDir dir("customer-rows");
  const std::vector<Event> events = events_of(big_customer(/*second_run=*/false), dir);
  LedgerState state(/*track_changes=*/true);
  std::map<std::string, std::string> rows;
  const std::vector<Change> changes = fold_taking_rows(events, state, rows);

  // Each subscription's opening writes its row, the customer's own row, one row naming it under
  // the customer and its purchase line: the same few rows for the first and the 300th.
  auto opening = [&](int n) -> const Change& {
    for (size_t i = 0; i < events.size(); ++i)
      if (const auto* e = std::get_if<SubscriptionCreated>(&events[i].payload);
          e && e->subscription_id == "S" + std::to_string(n))
        return changes[i];
    ADD_FAILURE() << "no opening of S" << n;
    return changes.front();
  };
  for (int n : {1, 2, kSubscriptions}) {
    const Change& c = opening(n);
    EXPECT_TRUE(c.put.contains(subscription_row_key("S" + std::to_string(n))));
    EXPECT_TRUE(c.put.contains(customer_row_key("C1")));
    EXPECT_TRUE(c.put.contains(customer_subscription_row_key("C1", n - 1)));
    EXPECT_LE(c.put.size(), 6u) << "S" << n;
    EXPECT_TRUE(c.erased.empty());
  }
  EXPECT_LT(opening(kSubscriptions).bytes, opening(1).bytes + 64)
      << "the 300th subscription's change does not carry the 299 before it";

  // The first invoice takes the lines charged through March (the March purchases) and erases
  // exactly their rows, naming no subscription again; the April purchases stay pending.
  size_t first = 0;
  while (!std::holds_alternative<InvoiceIssued>(events[first].payload)) ++first;
  EXPECT_EQ(changes[first].erased.size(), static_cast<size_t>(kSubscriptions / 2));
  for (const auto& [key, value] : changes[first].put) {
    auto parsed = parse_customer_row_key(key);
    EXPECT_FALSE(parsed && parsed->kind != CustomerRowKey::Kind::kCustomer) << "puts " << key;
  }

  // What the changes left is exactly the rows of the whole state, and reads back to it.
  EXPECT_EQ(rows, rows_of(state));
  LedgerState loaded;
  for (const auto& [k, v] : rows) ASSERT_EQ(loaded.load_row(k, v), absl::OkStatus()) << k;
  ASSERT_EQ(loaded.finish_load(), absl::OkStatus());
  EXPECT_EQ(rows_of(loaded), rows);
  ASSERT_NE(loaded.pending_lines("C1"), nullptr);
  EXPECT_EQ(loaded.pending_lines("C1")->size(), state.pending_lines("C1")->size());
  // The running magnitude the amount check reads is the lines' own, folded or loaded.
  EXPECT_GT(walked_magnitude(state, "C1"), 0);
  EXPECT_TRUE(state.pending_magnitude("C1") == walked_magnitude(state, "C1"));
  EXPECT_TRUE(loaded.pending_magnitude("C1") == walked_magnitude(state, "C1"));
}

TEST(CustomerRows, AnUndoneGroupLeavesNoRowAndTheNumbersOfAFold) {
  TempDir dir("customer-rows-undo");
  const std::vector<Event> events = events_of(big_customer(), dir);
  // Every opening is first applied in an undo group and rolled back, then applied for real: the
  // rows taken are those of a fold that never saw the group (line numbers included).
  LedgerState state(/*track_changes=*/true);
  std::map<std::string, std::string> rows;
  for (const Event& e : events) {
    if (std::holds_alternative<SubscriptionCreated>(e.payload)) {
      state.begin_undo();
      ASSERT_EQ(state.apply(e), absl::OkStatus());
      state.rollback();
    }
    fold_taking_rows({e}, state, rows);
  }
  LedgerState plain(/*track_changes=*/true);
  std::map<std::string, std::string> plain_rows;
  fold_taking_rows(events, plain, plain_rows);
  EXPECT_EQ(rows, plain_rows);
  EXPECT_EQ(rows, rows_of(state));
  EXPECT_TRUE(state.pending_magnitude("C1") == walked_magnitude(plain, "C1"));
}

TEST(CustomerRows, StoredRowsMatchAReplayAndAMissingLineIsFoundAndRebuilt) {
  TempDir dir("customer-rows-store");
  events_of(big_customer(/*second_run=*/false), dir);  // lines left pending
  std::string error;
  {
    auto store = Store::open(dir.str(), error);
    ASSERT_TRUE(store) << error;
    ReplayReport verify = replay_log(*store, /*verify=*/true);
    EXPECT_TRUE(verify.ok()) << verify.to_json(true);
    auto c1 = stored_customer(*store, "C1");
    ASSERT_TRUE(c1.ok()) << c1.status();
    EXPECT_EQ(c1->customer.subscription_ids.size(), static_cast<size_t>(kSubscriptions + 5));
    EXPECT_EQ(c1->customer.subscription_ids.back(), "S" + std::to_string(kSubscriptions + 5));
    EXPECT_TRUE(absl::IsNotFound(stored_customer(*store, "C2").status()));
    EXPECT_TRUE(absl::IsResourceExhausted(stored_customer(*store, "C1", 32).status()));
    // A pending line's row lost: the customer's rows no longer add up.
    ASSERT_FALSE(c1->pending_numbers.empty());
    ASSERT_EQ(store->delete_raw_for_test("projections",
                                         customer_line_row_key("C1", c1->pending_numbers[0])),
              absl::OkStatus());
    EXPECT_TRUE(absl::IsDataLoss(stored_customer(*store, "C1").status()));
    EXPECT_FALSE(replay_log(*store, /*verify=*/true).ok()) << "the audit names the missing row";
  }
  // The next writer rebuilds the rows from the log, and the audit passes again.
  auto l = Ledger::open(dir.str(), {}, error);
  ASSERT_TRUE(l) << error;
  EXPECT_FALSE(l->open_report().from_checkpoint);
  EXPECT_TRUE(replay_log(l->store(), /*verify=*/true).ok());
}

TEST(CustomerRows, KeysReadBackAndMalformedOnesAreNotACustomers) {
  const std::string nul_id("C\0\x01x", 4);  // ids may hold any byte
  for (const std::string& id : {std::string("C1"), nul_id}) {
    auto own = parse_customer_row_key(customer_row_key(id));
    ASSERT_TRUE(own);
    EXPECT_EQ(own->kind, CustomerRowKey::Kind::kCustomer);
    EXPECT_EQ(own->customer_id, id);
    auto sub = parse_customer_row_key(customer_subscription_row_key(id, 0x01020304));
    ASSERT_TRUE(sub);
    EXPECT_EQ(sub->kind, CustomerRowKey::Kind::kSubscription);
    EXPECT_EQ(sub->index, 0x01020304u);
    auto line = parse_customer_row_key(customer_line_row_key(id, 0x0102030405060708));
    ASSERT_TRUE(line);
    EXPECT_EQ(line->kind, CustomerRowKey::Kind::kLine);
    EXPECT_EQ(line->index, 0x0102030405060708u);
    EXPECT_EQ(line->customer_id, id);
    // Every row under a customer sorts after its own row and before the next customer's.
    EXPECT_LT(customer_row_key(id), customer_subscription_row_key(id, 0));
    EXPECT_TRUE(customer_line_row_key(id, ~uint64_t{0}).starts_with(customer_row_key(id)));
  }
  const std::string own = customer_row_key("C1");
  for (const std::string& bad :
       {std::string("cust/C1"), own + "s", own + "s123", own + "p1234567", own + "x1234",
        own + "s12345", std::string("cust/C\0\x02\0\0", 9), std::string("sub/C1\0\0", 8)})
    EXPECT_FALSE(parse_customer_row_key(bad)) << bad;
  CustomerRow row;
  EXPECT_TRUE(absl::IsDataLoss(add_customer_row(row, own + "x1234", "")));
  EXPECT_TRUE(absl::IsDataLoss(add_customer_row(row, customer_subscription_row_key("C1", 0), "S1")))
      << "a row under a customer before its own row";
}

}  // namespace
}  // namespace subledger::testing
