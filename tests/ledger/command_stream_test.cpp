// The command stream: acknowledgements only after the batch's synced write, groups all-or-nothing,
// many producers batched into few writes.
#include "ledger/command_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "replay/replay.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

const char* kCatalog[] = {
    R"({"cmd":"register_partner","request_id":"p","partner_id":"P1","country":"US","currency":"USD","billing_day":20})",
    R"({"cmd":"create_customer","request_id":"c","customer_id":"C1","partner_id":"P1","country":"US","currency":"USD"})",
    R"({"cmd":"define_offer","request_id":"o","offer_id":"E3","name":"E3","max_per_customer":2})",
    R"({"cmd":"define_offer","request_id":"o2","offer_id":"AD","name":"Addon","addon_of":["E3"]})",
    R"({"cmd":"publish_price","request_id":"pr","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2016-01-01"})",
    R"({"cmd":"publish_price","request_id":"pr2","offer_id":"AD","currency":"USD","monthly_price":"2.00","effective_from":"2016-01-01"})",
    R"({"cmd":"define_offer","request_id":"o3","offer_id":"E5","name":"E5"})",
    R"({"cmd":"publish_price","request_id":"pr3","offer_id":"E5","currency":"USD","monthly_price":"30.00","effective_from":"2016-01-01"})",
};

std::unique_ptr<Ledger> open_with_catalog(const std::string& dir) {
  std::string error;
  auto l = Ledger::open(dir, {}, error);
  EXPECT_TRUE(l) << error;
  for (const char* line : kCatalog) EXPECT_TRUE(l->submit(line).ok) << line;
  EXPECT_EQ(l->commit(), absl::OkStatus());
  return l;
}

Command parsed(const std::string& line) {
  ParsedCommand p = parse_command(line);
  EXPECT_TRUE(p.command) << p.rejection.message;
  return *p.command;
}

Command create(const std::string& sub, const std::string& offer, const std::string& rid,
               const std::string& parent = "") {
  std::string line = R"({"cmd":"create_subscription","request_id":")" + rid +
                     R"(","subscription_id":")" + sub +
                     R"(","customer_id":"C1","offer_id":")" + offer +
                     R"(","seats":5,"billing_frequency":"monthly","date":"2017-01-15")" +
                     (parent.empty() ? "" : R"(,"parent_subscription_id":")" + parent + "\"") + "}";
  return parsed(line);
}

TEST(CommandGroup, ALaterLineMayBeTheParentOfAnEarlierOnesAddOnInOrder) {
  TempDir dir("group-parent");
  auto l = open_with_catalog(dir.str());
  auto g = l->submit_group({create("S1", "E3", "g-0"), create("A1", "AD", "g-1", "S1")});
  ASSERT_FALSE(g.rejected_index) << g.rejection.message;
  EXPECT_EQ(g.results.size(), 2u);
  EXPECT_NE(l->state().subscription("A1"), nullptr);
}

TEST(CommandGroup, ARejectedLineAppendsNothingOfTheGroup) {
  TempDir dir("group-reject");
  auto l = open_with_catalog(dir.str());
  const uint64_t before = l->state().last_seq();
  // max_per_customer 2 counts the earlier lines of the same group: the third is refused.
  auto g = l->submit_group({create("S1", "E3", "g-0"), create("S2", "E3", "g-1"),
                            create("S3", "E3", "g-2")});
  ASSERT_TRUE(g.rejected_index);
  EXPECT_EQ(*g.rejected_index, 2u);
  EXPECT_EQ(g.rejection.code, "OFFER_LIMIT_REACHED");
  EXPECT_EQ(l->state().last_seq(), before);
  EXPECT_EQ(l->state().subscription("S1"), nullptr);
  EXPECT_EQ(l->staged_events(), 0u);
  ASSERT_EQ(l->commit(), absl::OkStatus());
  // The same lines one at a time are decided again: nothing of the group was remembered.
  EXPECT_TRUE(l->submit(create("S1", "E3", "g-0")).ok);
}

std::map<std::string, std::string> rows_of(const LedgerState& state) {
  std::map<std::string, std::string> rows;
  state.put_all_rows([&](std::string_view k, std::string_view v) { rows.emplace(k, v); });
  return rows;
}

Command seats(const std::string& sub, int n, const std::string& rid, const std::string& date) {
  return parsed(R"({"cmd":"change_seats","request_id":")" + rid + R"(","subscription_id":")" +
                sub + R"(","seats":)" + std::to_string(n) + R"(,"date":")" + date + R"("})");
}

TEST(CommandGroup, ARejectedGroupPutsBackEveryRowItTouchedAndItsStagedWrites) {
  // Groups are decided in place and undone on a rejection: existing subscriptions changed
  // (with the lines and renewals time brings), subscriptions and add-ons opened, the customer's
  // lists and pending lines, the staged batch and the remembered request ids all go back.
  TempDir dir("group-undo");
  auto l = open_with_catalog(dir.str());
  ASSERT_TRUE(l->submit(create("B1", "E5", "b-1")).ok);
  ASSERT_TRUE(l->submit(create("B2", "E3", "b-2")).ok);
  ASSERT_TRUE(l->submit(create("BA", "AD", "b-3", "B2")).ok);
  const auto rows = rows_of(l->state());
  const uint64_t last_seq = l->state().last_seq(), staged = l->staged_events();
  const std::vector<std::vector<Command>> rejected_groups = {
      // A seat change a year later (renewals materialized), an opening, then an unknown offer.
      {seats("B1", 7, "g1-a", "2018-03-01"), create("N1", "E5", "g1-b"),
       create("N2", "NOPE", "g1-c")},
      // Openings with an add-on, then the offer's limit (B2 is the first of its two).
      {create("N3", "E3", "g2-a"), create("NA", "AD", "g2-b", "N3"), create("N4", "E3", "g2-c")},
      // A change of the add-on and its base, then the same request id with another payload.
      {seats("BA", 3, "g3-a", "2017-02-01"), seats("B2", 9, "g3-b", "2017-02-01"),
       seats("B2", 8, "g3-b", "2017-02-01")},
  };
  for (size_t g = 0; g < rejected_groups.size(); ++g) {
    auto result = l->submit_group(rejected_groups[g]);
    ASSERT_TRUE(result.rejected_index) << "group " << g;
    EXPECT_EQ(*result.rejected_index, 2u) << "group " << g;
    EXPECT_TRUE(result.results.empty());
    EXPECT_EQ(rows_of(l->state()), rows) << "group " << g;
    EXPECT_EQ(l->state().last_seq(), last_seq);
    EXPECT_EQ(l->staged_events(), staged);
    EXPECT_EQ(l->state().subscription("N1"), nullptr);
    EXPECT_EQ(l->state().subscription("N3"), nullptr);
  }
  // Nothing of them was remembered: the same ids are new, their commands decided afresh.
  auto accepted = l->submit_group({seats("B1", 7, "g1-a", "2018-03-01"),
                                   create("N1", "E5", "g1-b"), create("NA", "AD", "g2-b", "B2")});
  ASSERT_FALSE(accepted.rejected_index) << accepted.rejection.message;
  ASSERT_EQ(accepted.results.size(), 3u);
  EXPECT_FALSE(accepted.results[0].duplicate);
  ASSERT_EQ(l->commit(), absl::OkStatus());
  const auto expected = rows_of(l->state());
  l.reset();
  // What is stored is what a replay of the log rebuilds: no write of a rejected group survived.
  Ledger::Options preview;
  preview.preview = true;
  std::string error;
  auto reopened = Ledger::open(dir.str(), std::move(preview), error);
  ASSERT_TRUE(reopened) << error;
  EXPECT_EQ(rows_of(reopened->state()), expected);
  ReplayReport verify = replay_log(reopened->store(), /*verify=*/true);
  EXPECT_TRUE(verify.ok()) << verify.to_json(true);
}

TEST(CommandGroup, AnExceptionMidwayPutsTheGroupBackAndLeavesNothingRecording) {
  // The server answers 500 to an exception and goes on with the same ledger: the half-decided
  // group must not reach the next batch, and later events of any kind must still apply.
  TempDir dir("group-throw");
  int clock_calls = 0, throw_at = 0;
  Ledger::Options options;
  options.clock = [&] {
    if (++clock_calls == throw_at) throw std::runtime_error("injected");
    return int64_t{1'700'000'000'000'000};
  };
  std::string error;
  auto l = Ledger::open(dir.str(), std::move(options), error);
  ASSERT_TRUE(l) << error;
  for (const char* line : kCatalog) ASSERT_TRUE(l->submit(line).ok) << line;
  ASSERT_TRUE(l->submit(create("B1", "E5", "b-1")).ok);
  const auto rows = rows_of(l->state());
  const size_t staged = l->staged_events();
  throw_at = clock_calls + 2;  // the second line's event
  EXPECT_THROW(l->submit_group({create("N1", "E5", "t-1"), create("N2", "E5", "t-2")}),
               std::runtime_error);
  EXPECT_EQ(rows_of(l->state()), rows);
  EXPECT_EQ(l->staged_events(), staged);
  EXPECT_EQ(l->state().subscription("N1"), nullptr);
  // Not remembered, not recording: the same request is new, and a customer (not a subscription
  // event) still applies.
  EXPECT_FALSE(l->submit(create("N1", "E5", "t-1")).duplicate);
  EXPECT_TRUE(l->submit(parsed(
                            R"({"cmd":"create_customer","request_id":"c2","customer_id":"C2","partner_id":"P1","country":"US","currency":"USD"})"))
                  .ok);
  ASSERT_EQ(l->commit(), absl::OkStatus());
  ReplayReport verify = replay_log(l->store(), /*verify=*/true);
  EXPECT_TRUE(verify.ok()) << verify.to_json(true);
}

TEST(CommitPipeline, AcknowledgesOnlyAfterTheBatchIsWritten) {
  TempDir dir("pipeline");
  auto l = open_with_catalog(dir.str());
  CommitPipeline::Options o;
  o.batch_commands_max = 2;
  std::vector<size_t> batches;
  o.on_batch = [&](size_t n) { batches.push_back(n); };
  CommitPipeline pipe(*l, o);
  std::vector<std::string> acked;
  for (int i = 0; i < 5; ++i) {
    CommandResult r = l->submit(create("S" + std::to_string(i), "E5", "r" + std::to_string(i)));
    ASSERT_TRUE(r.ok) << r.message;
    pipe.on_durable([&, id = r.request_id](const std::string& e) {
      EXPECT_EQ(e, "");
      acked.push_back(id);
    });
    if (pipe.batch_full()) {
      ASSERT_EQ(pipe.commit_async(), absl::OkStatus());
    }
    // While a batch is in flight, none of its commands is acknowledged.
    EXPECT_LE(acked.size(), static_cast<size_t>(i + 1) - pipe.batch_size());
  }
  ASSERT_EQ(pipe.commit(), absl::OkStatus());
  EXPECT_EQ(acked, (std::vector<std::string>{"r0", "r1", "r2", "r3", "r4"}));
  EXPECT_EQ(batches, (std::vector<size_t>{2, 2, 1}));
  EXPECT_TRUE(pipe.idle());
}

// apply's reader parses ahead on its own thread: every line comes out once, in input order, with
// its number, blank lines marked, a malformed line as its rejection, and a well-formed one with
// the same payload hash the ledger computes itself (what idempotency compares).
TEST(CommandReader, HandsOutEveryLineInOrderParsedAndHashed) {
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    if (i % 7 == 3) text += "   \n";
    else if (i % 11 == 5) text += "{\"cmd\":\"nope\",\"request_id\":\"bad" + std::to_string(i) + "\"}\n";
    else text += std::string(kCatalog[i % 8]) + "\n";
  }
  text += std::string(kCatalog[0]);  // a last line without a newline is a line
  std::istringstream in(text);
  CommandReader reader(in, /*chunk_lines=*/3, /*chunks_max=*/2);  // tiny: the reader waits often
  std::vector<CommandReader::Line> chunk;
  uint64_t expected = 0;
  while (reader.next(chunk)) {
    ASSERT_FALSE(chunk.empty());
    for (const auto& line : chunk) {
      const uint64_t i = expected++;
      ASSERT_EQ(line.number, i + 1);
      if (i == 1000) {
        ASSERT_TRUE(line.command.parsed.command);
        EXPECT_EQ(line.command.parsed.command->request_id, "p");
      } else if (i % 7 == 3) {
        EXPECT_TRUE(line.blank) << i;
      } else if (i % 11 == 5) {
        EXPECT_FALSE(line.blank);
        EXPECT_FALSE(line.command.parsed.command) << i;
        EXPECT_EQ(line.command.parsed.request_id, "bad" + std::to_string(i));
        EXPECT_FALSE(line.command.parsed.rejection.code.empty());
      } else {
        ASSERT_TRUE(line.command.parsed.command) << i;
        EXPECT_EQ(line.command.payload_hash, payload_hash(parsed(kCatalog[i % 8]))) << i;
      }
    }
  }
  EXPECT_EQ(expected, 1001u);
  EXPECT_FALSE(reader.read_failed());
}

TEST(CommandReader, StoppingBeforeTheEndNeitherHangsNorReadsOn) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += std::string(kCatalog[i % 8]) + "\n";
  std::istringstream in(text);
  {
    CommandReader reader(in, 4, 1);
    std::vector<CommandReader::Line> chunk;
    ASSERT_TRUE(reader.next(chunk));
    EXPECT_EQ(chunk.front().number, 1u);
  }  // the reader waits for room that never comes: its destructor must still return
  // At most the chunks it could hold (and the one it was filling) were read.
  EXPECT_LT(in.tellg(), static_cast<std::streamoff>(text.size()));
}

TEST(CommandStream, ProducersOnManyThreadsShareBatchesAndEveryAckIsDurable) {
  TempDir dir("stream");
  std::atomic<size_t> written_commands{0}, batches{0};
  {
    auto l = open_with_catalog(dir.str());
    CommandStream::Options o;
    o.on_batch = [&](size_t n) {
      written_commands += n;
      ++batches;
    };
    CommandStream stream(*l, o);
    constexpr int kThreads = 4, kEach = 50;
    std::vector<std::thread> threads;
    std::atomic<int> acked{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          std::promise<bool> done;
          std::string id = "T" + std::to_string(t) + "-" + std::to_string(i);
          ASSERT_TRUE(stream.try_submit([&, id](Ledger* ledger) -> CommitPipeline::Ack {
            EXPECT_TRUE(ledger);
            std::string line = R"({"cmd":"define_offer","request_id":")" + id +
                               R"(","offer_id":")" + id + R"(","name":"x"})";
            bool ok = ledger->submit(line).ok;
            return [&, ok](const std::string& e) { done.set_value(ok && e.empty()); };
          }));
          EXPECT_TRUE(done.get_future().get());
          ++acked;
        }
      });
    }
    for (auto& th : threads) th.join();
    stream.stop();
    EXPECT_EQ(acked.load(), kThreads * kEach);
    EXPECT_FALSE(stream.try_submit([](Ledger*) { return CommitPipeline::Ack(); }));
  }
  EXPECT_EQ(written_commands.load(), 4u * 50u);
  // Reopened from disk: every acknowledged command is there.
  std::string error;
  auto l = Ledger::open(dir.str(), {}, error);
  ASSERT_TRUE(l) << error;
  EXPECT_NE(l->state().catalog().offer("T3-49"), nullptr);
  EXPECT_NE(l->state().catalog().offer("T0-0"), nullptr);
}

TEST(CommandStream, RowsLeftBehindTheLogAreWrittenWhenTheStreamStops) {
  // serve writes projection rows only every 64 batches; what a stop leaves behind would be
  // caught up at the next open, and by every reader beside it until then: a stop writes them.
  TempDir dir("stream-rows");
  {
    std::string error;
    Ledger::Options options;
    options.projection_every_commits = 1'000'000;
    auto l = Ledger::open(dir.str(), std::move(options), error);
    ASSERT_TRUE(l) << error;
    for (const char* line : kCatalog) ASSERT_TRUE(l->submit(line).ok) << line;
    ASSERT_EQ(l->commit(), absl::OkStatus());  // the first commit after opening carries the rows
    CommandStream stream(*l, {});
    for (int i = 0; i < 20; ++i) {
      std::promise<bool> done;
      ASSERT_TRUE(stream.try_submit([&, i](Ledger* ledger) -> CommitPipeline::Ack {
        bool ok = ledger->submit(create("S" + std::to_string(i), "E5", "r" + std::to_string(i)))
                      .ok;
        return [&, ok](const std::string& e) { done.set_value(ok && e.empty()); };
      }));
      EXPECT_TRUE(done.get_future().get());
    }
    stream.stop();
    EXPECT_FALSE(l->rows_behind());
  }
  std::string error;
  Ledger::Options preview;
  preview.preview = true;
  auto l = Ledger::open(dir.str(), std::move(preview), error);
  ASSERT_TRUE(l) << error;
  EXPECT_TRUE(l->open_report().from_checkpoint);
  EXPECT_EQ(l->open_report().events_caught_up, 0u);
  EXPECT_NE(l->state().subscription("S19"), nullptr);
}

}  // namespace
}  // namespace subledger::testing
