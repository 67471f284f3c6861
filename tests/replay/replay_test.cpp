// Replay proves every issued invoice: a changed recorded hash is named, with both hashes.
#include "replay/replay.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "events/codec.h"
#include "support/process.h"

namespace subledger::testing {
namespace {

using Json = nlohmann::json;

// A ledger with a few invoices, applied through the real binary.
std::string applied_ledger(const TempDir& dir) {
  std::string db = dir / "db";
  EXPECT_EQ(run(bin() + " apply --db " + db + " " + PROJECT_SCENARIOS_DIR +
                "/07-cancel-and-reactivate.jsonl")
                .status,
            0);
  EXPECT_EQ(run(bin() + " replay --verify --db " + db).status, 0);
  return db;
}

uint64_t seq_of_invoice(const Store& store, const std::string& invoice_id) {
  EventDecoder decoder;
  Event e;
  uint64_t target = 0;
  absl::Status read = store.scan_events(0, [&](uint64_t seq, std::string_view bytes) {
    if (!decoder.decode(bytes, e).ok()) return false;
    auto* inv = std::get_if<InvoiceIssued>(&e.payload);
    if (inv && inv->invoice_id == invoice_id) target = seq;
    return target == 0;
  });
  EXPECT_TRUE(read.ok()) << read;
  return target;
}

// A forger who changes event `target` and rewrites every later link so the chain holds again.
void forge_from(Store& store, uint64_t target, const std::function<void(Event&)>& change) {
  EventDecoder decoder;
  std::string prev_hash;
  uint64_t last = store.last_seq();
  for (uint64_t seq = target; seq <= last; ++seq) {
    Event e;
    ASSERT_TRUE(decoder.decode(*store.event_bytes(seq), e).ok());
    if (seq == target)
      change(e);
    else
      e.prev_hash = prev_hash;
    if (auto* inv = std::get_if<InvoiceIssued>(&e.payload)) inv->chain_head = e.prev_hash;
    std::string bytes = encode_event(e);
    prev_hash = std::string(stored_event_hash(bytes));
    ASSERT_EQ(store.overwrite_event_for_test(seq, bytes), absl::OkStatus());
  }
}

Json verify_report(const std::string& db, int expected_status) {
  RunResult r = run(bin() + " replay --verify --db " + db + " 2>/dev/null");
  EXPECT_EQ(r.status, expected_status) << r.out;
  return Json::parse(lines_of(r.out).at(0));
}

TEST(Replay, OneFlippedByteOfAStoredEventIsNamed) {
  TempDir dir("flip");
  std::string db = applied_ledger(dir);
  {
    std::string error;
    auto store = Store::open(db, error);
    ASSERT_TRUE(store) << error;
    std::string bytes = *store->event_bytes(9);
    bytes[bytes.size() / 2] ^= 0x01;  // somewhere inside the message
    ASSERT_EQ(store->overwrite_event_for_test(9, bytes), absl::OkStatus());
  }
  Json report = verify_report(db, 2);
  EXPECT_EQ(report["first_bad_seq"], 9) << report.dump();
  EXPECT_FALSE(report["ok"].get<bool>());
}

// Before, a checkpoint row that was not 8 bytes read as no checkpoint: verify passed, reporting
// the rows as behind the log by every event. A damaged stored row fails the audit, by name.
TEST(Replay, AMalformedCheckpointRowFailsVerifyByName) {
  TempDir dir("bad-checkpoint");
  std::string db = applied_ledger(dir);
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_EQ((*store)->put_raw_for_test("projections", "checkpoint", "junk"), absl::OkStatus());
  }
  Json report = verify_report(db, 2);
  EXPECT_FALSE(report["ok"].get<bool>()) << report.dump();
  EXPECT_FALSE(report.contains("projection_rows_behind_by_events")) << report.dump();
  EXPECT_EQ(report["projection_row_mismatches"],
            Json::array({"checkpoint (4 bytes, not a sequence number)"}))
      << report.dump();
}

TEST(Replay, AnEventRewrittenWithoutRelinkingBreaksTheChainAtTheNext) {
  TempDir dir("relink");
  std::string db = applied_ledger(dir);
  {
    std::string error;
    auto store = Store::open(db, error);
    EventDecoder decoder;
    Event e;
    ASSERT_TRUE(decoder.decode(*store->event_bytes(8), e).ok());
    e.actor = "mallory";  // re-encoded with a fresh, self-consistent hash
    ASSERT_EQ(store->overwrite_event_for_test(8, encode_event(e)), absl::OkStatus());
  }
  Json report = verify_report(db, 2);
  EXPECT_EQ(report["first_bad_seq"], 9) << report.dump();
  EXPECT_NE(report["error"].get<std::string>().find("hash chain broken"), std::string::npos);
}

TEST(Replay, RemovedAndReorderedEventsAreNamed) {
  TempDir dir("remove");
  std::string db = applied_ledger(dir);
  {
    std::string error;
    auto store = Store::open(db, error);
    ASSERT_EQ(store->delete_event_for_test(6), absl::OkStatus());
  }
  EXPECT_EQ(verify_report(db, 2)["first_bad_seq"], 6);

  TempDir dir2("reorder");
  std::string db2 = applied_ledger(dir2);
  uint64_t last = 0;
  {
    std::string error;
    auto store = Store::open(db2, error);
    std::string a = *store->event_bytes(4), b = *store->event_bytes(5);
    ASSERT_EQ(store->overwrite_event_for_test(4, b), absl::OkStatus());
    ASSERT_EQ(store->overwrite_event_for_test(5, a), absl::OkStatus());
    last = store->last_seq();
  }
  EXPECT_EQ(verify_report(db2, 2)["first_bad_seq"], 4);

  TempDir dir3("truncate");
  std::string db3 = applied_ledger(dir3);
  {
    std::string error;
    auto store = Store::open(db3, error);
    ASSERT_EQ(store->delete_event_for_test(last), absl::OkStatus());
  }
  EXPECT_EQ(verify_report(db3, 2)["first_bad_seq"], last);
}

TEST(Replay, ForgedInvoiceWithARelinkedChainFailsRegeneration) {
  TempDir dir("tamper");
  std::string db = applied_ledger(dir);
  std::string head_before;
  {
    std::string error;
    auto store = Store::open(db, error);
    ASSERT_TRUE(store) << error;
    uint64_t target = seq_of_invoice(*store, "C1-20170520");
    ASSERT_NE(target, 0u);
    forge_from(*store, target,
               [](Event& e) { std::get<InvoiceIssued>(e.payload).lines_sha256[0] ^= 1; });
  }
  Json report = verify_report(db, 2);
  ASSERT_EQ(report["mismatches"].size(), 1u) << report.dump();
  EXPECT_EQ(report["mismatches"][0]["invoice_id"], "C1-20170520");
  EXPECT_NE(report["mismatches"][0]["recorded_sha256"],
            report["mismatches"][0]["regenerated_sha256"]);
}

TEST(Replay, StateAsOfAnswersFromTheEvents) {
  TempDir dir("asof");
  std::string db = dir / "db";
  run(bin() + " apply --db " + db + " " + PROJECT_SCENARIOS_DIR +
      "/07-cancel-and-reactivate.jsonl");
  RunResult before = run(bin() + " state S1 --as-of 2017-05-20 --db " + db);
  EXPECT_NE(before.out.find("\"status\":\"cancelled\""), std::string::npos) << before.out;
  RunResult after = run(bin() + " state S1 --as-of 2017-05-25 --db " + db);
  EXPECT_NE(after.out.find("\"status\":\"active\""), std::string::npos) << after.out;
  RunResult history = run(bin() + " history S1 --db " + db);
  EXPECT_EQ(lines_of(history.out).size(), 3u);
  EXPECT_NE(history.out.find("\"request_id\":\"x1\""), std::string::npos);
}

// BILLING_RULES 12: a renewal takes the promotion chosen when it happens. `state --as-of` past a
// term end the log has not reached previews that renewal with the promotion a billing run would
// choose now, so the preview equals what the billing run then records.
TEST(Replay, StateAsOfPreviewsARenewalWithItsPromotion) {
  TempDir dir("asof-promotion");
  std::string db = dir / "db";
  write_file(dir / "commands.jsonl", R"({"cmd":"register_partner","request_id":"p1","partner_id":"P1","country":"US","currency":"USD","billing_day":20}
{"cmd":"define_offer","request_id":"o2","offer_id":"BV","name":"Microsoft 365 Business Voice"}
{"cmd":"publish_price","request_id":"pr2","offer_id":"BV","currency":"USD","monthly_price":"15.00","effective_from":"2019-01-01"}
{"cmd":"create_customer","request_id":"c4","customer_id":"US2","partner_id":"P1","country":"US","currency":"USD"}
{"cmd":"create_subscription","request_id":"s11","subscription_id":"S11","customer_id":"US2","offer_id":"BV","seats":4,"billing_frequency":"annual","date":"2020-02-15"}
{"cmd":"define_promotion","request_id":"pm2","promotion_id":"BV-INTRO","offer_ids":["BV"],"percent_off":25,"purchase_from":"2020-11-01","purchase_to":"2021-04-30","applies_to":["new","renewal"]}
)");
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + (dir / "commands.jsonl")).status, 0);
  RunResult preview = run(bin() + " state S11 --as-of 2021-03-01 --db " + db);
  ASSERT_EQ(preview.status, 0);
  Json previewed = Json::parse(preview.out);
  EXPECT_EQ(previewed["promotion_id"], "BV-INTRO") << preview.out;
  // Before the term end, the term bought without a promotion.
  RunResult before = run(bin() + " state S11 --as-of 2021-02-14 --db " + db);
  EXPECT_FALSE(Json::parse(before.out).contains("promotion_id")) << before.out;

  ASSERT_EQ(run(bin() + " bill --through 2021-03-20 --db " + db).status, 0);
  RunResult recorded = run(bin() + " state S11 --as-of 2021-03-01 --db " + db);
  EXPECT_EQ(Json::parse(recorded.out), previewed);
}

TEST(Replay, ExplainShowsTheCausingEventAndFormula) {
  TempDir dir("explain");
  std::string db = dir / "db";
  run(bin() + " apply --db " + db + " " + PROJECT_SCENARIOS_DIR +
      "/03-annual-cancel-prorated.jsonl");
  RunResult r = run(bin() + " explain C1-20170720 --db " + db);
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("\"days\":198"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"unrounded\":\"-1301.9178082191\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"request_id\":\"x1\""), std::string::npos);
}

}  // namespace
}  // namespace subledger::testing

namespace subledger::testing {
namespace {

TEST(Replay, ExportedValuesFoldTheSameThroughFromHex) {
  TempDir dir("export");
  std::string db = applied_ledger(dir);
  RunResult exported = run(bin() + " export --db " + db);
  ASSERT_EQ(exported.status, 0);
  auto rows = lines_of(exported.out);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].rfind("1\tpartner/P1\t", 0), 0u) << rows[0];
  // As PostgreSQL's COPY prints bytea: "\x" then hex.
  write_file(dir / "events.tsv", exported.out);
  RunResult folded = run("cut -f3 " + (dir / "events.tsv") + " | sed 's/^/\\\\x/' | " + bin() +
                         " replay --from-hex -");
  ASSERT_EQ(folded.status, 0) << folded.out;
  Json direct = verify_report(db, 0), from_hex = Json::parse(folded.out);
  EXPECT_EQ(from_hex["events"], direct["events"]);
  EXPECT_EQ(from_hex["invoices_checked"], direct["invoices_checked"]);
  EXPECT_TRUE(from_hex["ok"].get<bool>());
}

}  // namespace
}  // namespace subledger::testing

namespace subledger::testing {
namespace {

TEST(Replay, LogPagesAndFiltersAndEveryEventShowsItsAuditFields) {
  TempDir dir("log");
  std::string db = applied_ledger(dir);
  auto page = lines_of(run(bin() + " log --after-seq 5 --limit 3 --db " + db).out);
  ASSERT_EQ(page.size(), 3u);
  for (size_t i = 0; i < page.size(); ++i) {
    Json e = Json::parse(page[i]);
    EXPECT_EQ(e["seq"], 6 + i);
    for (const char* field : {"actor", "request_id", "effective_date", "recorded_at", "prev_hash",
                              "hash", "stream", "stream_version"})
      EXPECT_TRUE(e.contains(field)) << field << " in " << page[i];
  }
  Json sixth = Json::parse(page[0]);
  Json fifth =
      Json::parse(lines_of(run(bin() + " log --after-seq 4 --limit 1 --db " + db).out).at(0));
  EXPECT_EQ(sixth["prev_hash"], fifth["hash"]) << "the chain links each event to the one before";

  auto invoices = lines_of(run(bin() + " log --type InvoiceIssued --db " + db).out);
  ASSERT_FALSE(invoices.empty());
  for (const auto& l : invoices) EXPECT_EQ(Json::parse(l)["type"], "InvoiceIssued");

  auto all = lines_of(run(bin() + " log --db " + db).out);
  auto c1 = lines_of(run(bin() + " log --customer C1 --db " + db).out);
  EXPECT_FALSE(c1.empty());
  EXPECT_LT(c1.size(), all.size()) << "the catalog events are not C1's";
  for (const auto& l : c1) {
    Json e = Json::parse(l);
    std::string stream = e["stream"];
    EXPECT_TRUE(stream == "customer/C1" || stream.rfind("subscription/", 0) == 0) << l;
  }
}

TEST(Replay, ExplainGivesTheChainPositionOfEachSourceEvent) {
  TempDir dir("explain-chain");
  std::string db = applied_ledger(dir);
  auto lines = lines_of(run(bin() + " explain C1-20170520 --db " + db).out);
  ASSERT_FALSE(lines.empty());
  for (const auto& l : lines) {
    Json j = Json::parse(l);
    const Json& pos = j["chain_position"];
    EXPECT_EQ(pos["source_seq"], j["caused_by"]["seq"]);
    EXPECT_EQ(pos["source_hash"], j["caused_by"]["hash"]);
    EXPECT_EQ(pos["source_hash"].get<std::string>().size(), 64u);
    EXPECT_LT(pos["source_seq"].get<uint64_t>(), pos["issued_seq"].get<uint64_t>());
    Json issued = Json::parse(lines_of(run(bin() + " log --after-seq " +
                                           std::to_string(pos["issued_seq"].get<uint64_t>() - 1) +
                                           " --limit 1 --db " + db)
                                           .out)
                                  .at(0));
    EXPECT_EQ(pos["chain_head_at_issue"], issued["prev_hash"]);
    EXPECT_EQ(issued["data"]["chain_head"], issued["prev_hash"]);
  }
}

}  // namespace
}  // namespace subledger::testing
