// Replay proves every issued invoice: a changed recorded hash is named, with both hashes.
#include "replay/replay.h"

#include <gtest/gtest.h>

#include "events/codec.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

TEST(Replay, AlteredInvoiceHashIsNamedAndExitsTwo) {
  TempDir dir("tamper");
  std::string db = dir / "db";
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + PROJECT_SCENARIOS_DIR +
                "/07-cancel-and-reactivate.jsonl").status, 0);
  ASSERT_EQ(run(bin() + " replay --verify --db " + db).status, 0);
  {
    std::string error;
    auto store = Store::open(db, error);
    ASSERT_TRUE(store) << error;
    EventDecoder decoder;
    uint64_t target = 0;
    Event e;
    store->scan_events(0, [&](uint64_t seq, std::string_view bytes) {
      if (!decoder.decode(bytes, e).empty()) return false;
      auto* inv = std::get_if<InvoiceIssued>(&e.payload);
      if (inv && inv->invoice_id == "C1-20170520") target = seq;
      return target == 0;
    });
    ASSERT_NE(target, 0u);
    std::get<InvoiceIssued>(e.payload).lines_sha256[0] ^= 1;
    ASSERT_EQ(store->overwrite_event_for_test(target, encode_event(e)), "");
  }
  RunResult verify = run(bin() + " replay --verify --db " + db + " 2>/dev/null");
  EXPECT_EQ(verify.status, 2);
  EXPECT_NE(verify.out.find("\"invoice_id\":\"C1-20170520\""), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("recorded_sha256"), std::string::npos);
}

TEST(Replay, StateAsOfAnswersFromTheEvents) {
  TempDir dir("asof");
  std::string db = dir / "db";
  run(bin() + " apply --db " + db + " " + PROJECT_SCENARIOS_DIR + "/07-cancel-and-reactivate.jsonl");
  RunResult before = run(bin() + " state S1 --as-of 2017-05-20 --db " + db);
  EXPECT_NE(before.out.find("\"status\":\"cancelled\""), std::string::npos) << before.out;
  RunResult after = run(bin() + " state S1 --as-of 2017-05-25 --db " + db);
  EXPECT_NE(after.out.find("\"status\":\"active\""), std::string::npos) << after.out;
  RunResult history = run(bin() + " history S1 --db " + db);
  EXPECT_EQ(lines_of(history.out).size(), 3u);
  EXPECT_NE(history.out.find("\"request_id\":\"x1\""), std::string::npos);
}

TEST(Replay, ExplainShowsTheCausingEventAndFormula) {
  TempDir dir("explain");
  std::string db = dir / "db";
  run(bin() + " apply --db " + db + " " + PROJECT_SCENARIOS_DIR + "/03-annual-cancel-prorated.jsonl");
  RunResult r = run(bin() + " explain C1-20170720 --db " + db);
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("\"days\":198"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"unrounded\":\"-1301.9178082191\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"request_id\":\"x1\""), std::string::npos);
}

}  // namespace
}  // namespace subledger::testing
