// Hostile storage and operations cases (issue 9): ids that collide in the key space, ledgers of
// an older format, reads that must never write, restore, faults on a small tmpfs, corruption of
// derived data and of the log, sequence numbers at the edge. Each test drives the real binary or
// the library against a real RocksDB directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "events/codec.h"
#include "ledger/ledger.h"
#include "ledger/store.h"
#include "replay/replay.h"
#include "support/process.h"
#include "support/tmpfs.h"

namespace subledger::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string scenario_path(const std::string& name) {
  return std::string(PROJECT_SCENARIOS_DIR) + "/" + name + ".jsonl";
}

bool aborted(const Both& b) { return b.status < 0 || b.status > 2; }

// Every file's name, size and modification time: what a reader must leave as it was.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> snapshot(const std::string& dir) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> out;
  for (const auto& e : fs::directory_iterator(dir))
    out[e.path().filename().string()] = {e.is_regular_file() ? e.file_size() : 0,
                                         e.last_write_time()};
  return out;
}

std::string apply_scenario(const std::string& db, const std::string& name) {
  RunResult r = run(bin() + " apply --db " + db + " " + scenario_path(name) + " 2>/dev/null");
  EXPECT_EQ(r.status, 0) << r.out;
  return r.out;
}

// ---- library helpers: commands that bypass the parser's id grammar ----

Command cmd(CommandType type, const std::string& request_id) {
  Command c;
  c.type = type;
  c.request_id = request_id;
  return c;
}

void seed_catalog(Ledger& l) {
  Command p = cmd(CommandType::kRegisterPartner, "p1");
  p.partner_id = "P1";
  p.country = "US";
  p.currency = "USD";
  p.billing_day = 20;
  ASSERT_TRUE(l.submit(p).ok);
  Command o = cmd(CommandType::kDefineOffer, "o1");
  o.offer_id = "BP";
  o.name = "Business";
  ASSERT_TRUE(l.submit(o).ok);
  Command pr = cmd(CommandType::kPublishPrice, "pr1");
  pr.offer_id = "BP";
  pr.currency = "USD";
  pr.monthly_price_micros = 10'000'000;
  pr.date = *Date::parse("2016-01-01");
  ASSERT_TRUE(l.submit(pr).ok);
}

CommandResult create_customer(Ledger& l, const std::string& id, const std::string& request_id) {
  Command c = cmd(CommandType::kCreateCustomer, request_id);
  c.customer_id = id;
  c.partner_id = "P1";
  c.country = "US";
  c.currency = "USD";
  return l.submit(c);
}

CommandResult create_subscription(Ledger& l, const std::string& id, const std::string& customer,
                                  int64_t seats, const std::string& request_id,
                                  const std::string& date = "2017-03-10") {
  Command c = cmd(CommandType::kCreateSubscription, request_id);
  c.subscription_id = id;
  c.customer_id = customer;
  c.offer_id = "BP";
  c.seats = seats;
  c.frequency = Frequency::kMonthly;
  c.date = *Date::parse(date);
  return l.submit(c);
}

std::unique_ptr<Ledger> open_writer(const std::string& dir, uint32_t rows_every = 1) {
  Ledger::Options o;
  o.projection_every_commits = rows_every;
  auto l = Ledger::open(dir, std::move(o));
  EXPECT_TRUE(l.ok()) << l.status();
  return l.ok() ? std::move(*l) : nullptr;
}

const std::string kNulId("S1\0x", 4);

// S1, "S1\0x" and S1x of two customers, with different seats.
void write_prefix_ids(const std::string& db) {
  auto l = open_writer(db);
  ASSERT_TRUE(l);
  seed_catalog(*l);
  ASSERT_TRUE(create_customer(*l, "C1", "c1").ok);
  ASSERT_TRUE(create_customer(*l, "C2", "c2").ok);
  ASSERT_TRUE(create_subscription(*l, "S1", "C1", 10, "s1").ok);
  ASSERT_TRUE(create_subscription(*l, kNulId, "C2", 3, "s2").ok);
  ASSERT_TRUE(create_subscription(*l, "S1x", "C2", 4, "s3").ok);
  Command seats = cmd(CommandType::kChangeSeats, "s2-seats");
  seats.subscription_id = kNulId;
  seats.seats = 7;
  seats.date = *Date::parse("2017-03-12");
  ASSERT_TRUE(l->submit(seats).ok);
  ASSERT_EQ(l->commit(), absl::OkStatus());
}

// ================= class 2: ids never collide in the key space =================

TEST(HostileKeys, IdsSharingAPrefixNeverMixInHistory) {
  TempDir dir("hk-history");
  std::string db = dir / "db";
  write_prefix_ids(db);
  RunResult h = run(bin() + " history S1 --db " + db);
  ASSERT_EQ(h.status, 0);
  auto lines = lines_of(h.out);
  ASSERT_EQ(lines.size(), 1u) << h.out;
  EXPECT_EQ(Json::parse(lines[0])["stream"], "subscription/S1");
  auto store = Store::open(db, Store::OpenOptions{});
  ASSERT_TRUE(store.ok()) << store.status();
  std::string error;
  auto nul = stream_events(**store, Stream{StreamKind::kSubscription, kNulId}, error);
  ASSERT_EQ(nul.size(), 2u) << error;
  for (const auto& e : nul) EXPECT_EQ(e.stream.id, kNulId);
  EXPECT_EQ(stream_events(**store, Stream{StreamKind::kSubscription, "S1x"}, error).size(), 1u);
}

TEST(HostileKeys, StateAsOfOfOneIdIgnoresTheEventsOfAnIdItPrefixes) {
  TempDir dir("hk-asof");
  std::string db = dir / "db";
  write_prefix_ids(db);
  RunResult s = run(bin() + " state S1 --as-of 2017-03-31 --db " + db);
  ASSERT_EQ(s.status, 0);
  EXPECT_EQ(Json::parse(s.out)["seats"], 10) << s.out;
  EXPECT_EQ(Json::parse(s.out)["customer_id"], "C1") << s.out;
  RunResult latest = run(bin() + " state S1 --db " + db);
  EXPECT_EQ(Json::parse(latest.out)["seats"], 10) << latest.out;
  auto store = Store::open(db, Store::OpenOptions{});
  ASSERT_TRUE(store.ok());
  Ledger::Options reader;
  reader.preview = true;
  auto catalog = Ledger::open(db, std::move(reader));
  ASSERT_TRUE(catalog.ok());
  std::string error;
  auto nul = subscription_as_of(**store, (*catalog)->state().catalog(), kNulId,
                                *Date::parse("2017-03-31"), error);
  ASSERT_TRUE(nul) << error;
  EXPECT_EQ(nul->seats, 7);
}

TEST(HostileKeys, NoKeyComponentIsAPrefixOfAnother) {
  const std::vector<std::string> ids = {"S1", kNulId, "S1x", std::string("S1\0", 3),
                                        std::string("S1\0\0", 4), std::string("S1\x01", 3)};
  for (const auto& a : ids)
    for (const auto& b : ids) {
      if (a == b) continue;
      EXPECT_FALSE(key_component(b).starts_with(key_component(a)))
          << "'" << a << "' prefixes '" << b << "'";
      EXPECT_EQ(a < b, key_component(a) < key_component(b)) << "order of ids is kept";
    }
}

TEST(HostileKeys, RequestIdsSharingAPrefixAreDifferentRequests) {
  TempDir dir("hk-request");
  std::string db = dir / "db";
  auto l = open_writer(db);
  ASSERT_TRUE(l);
  seed_catalog(*l);
  CommandResult a = create_customer(*l, "C1", "r");
  CommandResult b = create_customer(*l, "C2", std::string("r\0x", 3));
  ASSERT_EQ(l->commit(), absl::OkStatus());
  l.reset();
  l = open_writer(db);
  CommandResult again = create_customer(*l, "C3", std::string("r\0x", 3));
  EXPECT_TRUE(a.ok && b.ok);
  EXPECT_FALSE(b.duplicate);
  EXPECT_EQ(again.code, "IDEMPOTENCY_CONFLICT") << "the record of r\\0x, not of r";
}

TEST(HostileKeys, InvoicesOfACustomerExcludeACustomerWhoseIdItPrefixes) {
  TempDir dir("hk-invoices");
  std::string db = dir / "db";
  {
    auto l = open_writer(db);
    ASSERT_TRUE(l);
    seed_catalog(*l);
    ASSERT_TRUE(create_customer(*l, "C1", "c1").ok);
    ASSERT_TRUE(create_customer(*l, "C1-2017", "c2").ok);
    ASSERT_TRUE(create_subscription(*l, "S1", "C1", 1, "s1").ok);
    ASSERT_TRUE(create_subscription(*l, "S2", "C1-2017", 2, "s2").ok);
    Command bill = cmd(CommandType::kRunBilling, "b1");
    bill.date = *Date::parse("2017-04-30");
    ASSERT_TRUE(l->submit(bill).ok);
    ASSERT_EQ(l->commit(), absl::OkStatus());
  }
  RunResult r = run(bin() + " invoices --customer C1 --db " + db);
  ASSERT_EQ(r.status, 0);
  ASSERT_FALSE(r.out.empty());
  for (const auto& line : lines_of(r.out)) EXPECT_EQ(Json::parse(line)["customer_id"], "C1");
}

// ================= format version and migrate =================

// Rewrites a current ledger into the landed layout of format 1: no format key, stream keys
// kind + id + '\0' + version, raw request ids.
void downgrade_to_format_1(const std::string& db, const std::vector<std::string>& request_ids) {
  auto opened = Store::open(db, Store::OpenOptions{Store::Access::kWrite, true});
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;
  EventDecoder decoder;
  std::vector<Event> events;
  ASSERT_EQ(store.scan_events(0,
                              [&](uint64_t, std::string_view bytes) {
                                Event e;
                                EXPECT_TRUE(decoder.decode(bytes, e).ok());
                                events.push_back(e);
                                return true;
                              }),
            absl::OkStatus());
  for (const auto& e : events) {
    std::string kind(1, static_cast<char>(e.stream.kind));
    ASSERT_EQ(store.delete_raw_for_test(
                  "streams", kind + key_component(e.stream.id) + be64(e.stream_version)),
              absl::OkStatus());
    ASSERT_EQ(store.put_raw_for_test("streams",
                                     kind + e.stream.id + std::string(1, '\0') +
                                         be64(e.stream_version),
                                     be64(e.seq)),
              absl::OkStatus());
  }
  for (const auto& id : request_ids) {
    auto record = store.idempotency(id);
    ASSERT_TRUE(record.ok()) << id;
    ASSERT_EQ(store.delete_raw_for_test("idempotency", key_component(id)), absl::OkStatus());
    ASSERT_EQ(store.put_raw_for_test("idempotency", id, *record), absl::OkStatus());
  }
  ASSERT_EQ(store.delete_raw_for_test("default", "format"), absl::OkStatus());
}

TEST(HostileFormat, AnOlderLedgerIsRefusedByEveryCommandNamingMigrate) {
  TempDir dir("hf-refused");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  downgrade_to_format_1(db, {"p1", "s1", "b1"});
  auto before = snapshot(db);
  for (const std::string c :
       {"invoices", "state S1", "history S1", "log", "renewals --from 2017-01-01 --to 2019-01-01",
        "explain C1-20170320", "replay", "replay --verify", "export",
        "reconcile --from 2017-01-01 --to 2018-01-01", "bill --through 2017-08-31 --dry-run",
        "bill --through 2017-08-31", "apply /dev/null", "rebuild"}) {
    Both b = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(b.status, 2) << c;
    EXPECT_NE(b.err.find("subledger migrate"), std::string::npos) << c << ": " << b.err;
    EXPECT_TRUE(b.out.empty() || c.starts_with("replay")) << c << ": " << b.out;
  }
  EXPECT_EQ(snapshot(db), before) << "refusing changed nothing";
}

TEST(HostileFormat, MigrateRebuildsAndARetriedRequestIsStillADuplicate) {
  TempDir dir("hf-migrate");
  std::string db = dir / "db";
  std::string first_results = apply_scenario(db, "07-cancel-and-reactivate");
  std::string invoices = run(bin() + " invoices --db " + db).out;
  std::string history = run(bin() + " history S1 --db " + db).out;
  downgrade_to_format_1(db, {"p1", "o1", "pr1", "o2", "pr2", "c1", "s1", "b1", "x1", "x2", "b2"});
  RunResult m = run(bin() + " migrate --db " + db);
  ASSERT_EQ(m.status, 0) << m.out;
  EXPECT_EQ(Json::parse(m.out)["from_format"], 1);
  EXPECT_EQ(Json::parse(m.out)["migrated"], true);
  EXPECT_EQ(run(bin() + " invoices --db " + db).out, invoices);
  EXPECT_EQ(run(bin() + " history S1 --db " + db).out, history);
  RunResult again = run(bin() + " apply --db " + db + " " +
                        scenario_path("07-cancel-and-reactivate") + " 2>/dev/null");
  ASSERT_EQ(again.status, 0);
  for (const auto& line : lines_of(again.out))
    EXPECT_EQ(Json::parse(line)["duplicate"], true) << line;
  EXPECT_EQ(run(bin() + " replay --verify --db " + db).status, 0);
}

TEST(HostileFormat, MigrateRederivesALostIdempotencyRecordFromTheEvents) {
  TempDir dir("hf-rederive");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  downgrade_to_format_1(db, {});
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite, true});
    ASSERT_TRUE(store.ok());
    ASSERT_EQ((*store)->delete_raw_for_test("idempotency", key_component("s1")), absl::OkStatus());
  }
  RunResult m = run(bin() + " migrate --db " + db);
  ASSERT_EQ(m.status, 0);
  EXPECT_GE(Json::parse(m.out)["idempotency_records_rederived"].get<int>(), 1);
  std::string line = lines_of(read_file(scenario_path("07-cancel-and-reactivate")))[6];
  RunResult retry = run("echo '" + line + "' | " + bin() + " apply --db " + db + " 2>/dev/null");
  ASSERT_EQ(retry.status, 0) << retry.out;
  EXPECT_EQ(Json::parse(retry.out)["duplicate"], true) << retry.out;
  EXPECT_EQ(Json::parse(retry.out)["seq_first"], 7) << retry.out;
}

// Format 2 had the same keys as format 3 but wrote them all in the synced batch: a ledger of it has
// a complete index and no "derived" mark.
void downgrade_to_format_2(const std::string& db) {
  auto opened = Store::open(db, Store::OpenOptions{Store::Access::kWrite, true});
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ((*opened)->delete_raw_for_test("default", "derived"), absl::OkStatus());
  ASSERT_EQ((*opened)->put_raw_for_test("default", "format", "2"), absl::OkStatus());
}

TEST(HostileFormat, AFormat2LedgerIsRefusedNamingMigrateAndMigrates) {
  TempDir dir("hf-format2");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  std::string invoices = run(bin() + " invoices --db " + db).out;
  downgrade_to_format_2(db);
  for (const std::string c : {"invoices", "history S1", "apply /dev/null"}) {
    Both b = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(b.status, 2) << c;
    EXPECT_NE(b.err.find("subledger migrate"), std::string::npos) << c << ": " << b.err;
  }
  RunResult m = run(bin() + " migrate --db " + db);
  ASSERT_EQ(m.status, 0) << m.out;
  EXPECT_EQ(Json::parse(m.out)["from_format"], 2);
  EXPECT_EQ(Json::parse(m.out)["format"], kLedgerFormat);
  EXPECT_EQ(run(bin() + " invoices --db " + db).out, invoices);
  {
    auto store = Store::open(db, Store::OpenOptions{});
    ASSERT_TRUE(store.ok()) << store.status();
    auto mark = (*store)->derived_mark();
    ASSERT_TRUE(mark.ok());
    EXPECT_EQ(*mark, (*store)->last_seq()) << "migrate marks the index derived through the log";
  }
  RunResult again = run(bin() + " apply --db " + db + " " +
                        scenario_path("07-cancel-and-reactivate") + " 2>/dev/null");
  ASSERT_EQ(again.status, 0);
  for (const auto& line : lines_of(again.out))
    EXPECT_EQ(Json::parse(line)["duplicate"], true) << line;
}

TEST(HostileFormat, ANewLedgerRecordsTheCurrentFormat) {
  TempDir dir("hf-new");
  std::string db = dir / "db";
  ASSERT_EQ(run(bin() + " apply --db " + db + " /dev/null 2>/dev/null").status, 0);
  auto store = Store::open(db, Store::OpenOptions{});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->format(), kLedgerFormat);
  RunResult m = run(bin() + " migrate --db " + db);
  EXPECT_EQ(m.status, 0);
  EXPECT_EQ(Json::parse(m.out)["migrated"], false);
}

// ================= class 6: reading never writes =================

const std::vector<std::string> kReaders = {
    "invoices",
    "invoices --format csv",
    "reconcile --from 2017-01-01 --to 2018-01-01",
    "state S1",
    "state S1 --as-of 2017-05-20",
    "history S1",
    "log",
    "log --customer C1",
    "renewals --from 2017-01-01 --to 2019-01-01",
    "explain C1-20170320",
    "replay",
    "replay --verify",
    "export",
    "bill --through 2017-08-31 --dry-run"};

TEST(HostileRead, AMistypedDbCreatesNothingAndSaysNoLedger) {
  TempDir dir("hr-missing");
  std::string db = dir / "no-such-ledger";
  for (const auto& c : kReaders) {
    Both b = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(b.status, 2) << c;
    EXPECT_NE(b.err.find("no ledger at " + db), std::string::npos) << c << ": " << b.err;
    EXPECT_FALSE(fs::exists(db)) << c << " created the ledger";
  }
  fs::create_directories(db);
  Both empty = run_both(bin() + " log --db " + db);
  EXPECT_EQ(empty.status, 2);
  EXPECT_TRUE(fs::is_empty(db)) << "an empty directory stays empty";
}

TEST(HostileRead, ReadersLeaveEveryFileOfTheLedgerAsItWas) {
  TempDir dir("hr-untouched");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  auto before = snapshot(db);
  for (const auto& c : kReaders) {
    Both b = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(b.status, 0) << c << ": " << b.err;
    EXPECT_EQ(snapshot(db), before) << c << " changed the ledger's directory";
  }
  EXPECT_FALSE(fs::exists(fs::path(db) / "LOG.old"));
}

TEST(HostileRead, ALostCurrentFileIsReportedNeverRecreated) {
  TempDir dir("hr-current");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  fs::remove(fs::path(db) / "CURRENT");
  auto before = snapshot(db);
  std::vector<std::string> all = kReaders;
  all.push_back("apply /dev/null");
  all.push_back("bill --through 2017-08-31");
  all.push_back("rebuild");
  for (const auto& c : all) {
    Both b = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(b.status, 2) << c;
    EXPECT_NE(b.err.find("CURRENT"), std::string::npos) << c << ": " << b.err;
    EXPECT_EQ(snapshot(db), before) << c << " changed the damaged ledger";
  }
}

TEST(HostileRead, ADirectoryThatIsNotALedgerIsNeverWrittenInto) {
  TempDir dir("hr-other");
  std::string db = dir / "home";
  fs::create_directories(db);
  write_file(fs::path(db) / "notes.txt", "mine");
  Both b = run_both(bin() + " apply --db " + db + " " + scenario_path("07-cancel-and-reactivate"));
  EXPECT_EQ(b.status, 2);
  EXPECT_TRUE(b.out.empty());
  EXPECT_EQ(snapshot(db).size(), 1u);
}

TEST(HostileRead, ReadersBesideAWriterSeeEveryDurableEventThoughRowsLag) {
  TempDir dir("hr-beside");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  // A writer holding the ledger that writes its rows only every 1000 commits: after this
  // commit the stored rows lag the log, and readers must fold the rest in memory.
  auto writer = open_writer(db, /*rows_every=*/1000);
  ASSERT_TRUE(writer);
  CommandResult r = writer->submit(
      R"({"cmd":"change_seats","request_id":"more","subscription_id":"S1","seats":42,"date":"2017-08-01"})");
  ASSERT_TRUE(r.ok) << r.message;
  ASSERT_EQ(writer->commit(), absl::OkStatus());
  auto before = snapshot(db);
  RunResult s = run(bin() + " state S1 --db " + db);
  ASSERT_EQ(s.status, 0);
  EXPECT_EQ(Json::parse(s.out)["seats"], 42) << s.out;
  RunResult log = run(bin() + " log --after-seq " + std::to_string(r.seq_first - 1) + " --db " + db);
  ASSERT_EQ(log.status, 0);
  EXPECT_EQ(lines_of(log.out).size(), 1u);
  EXPECT_EQ(run(bin() + " history S1 --db " + db).status, 0);
  EXPECT_EQ(run(bin() + " invoices --db " + db).status, 0);
  EXPECT_EQ(run(bin() + " renewals --from 2017-01-01 --to 2019-01-01 --db " + db).status, 0);
  EXPECT_EQ(run(bin() + " replay --verify --db " + db).status, 0);
  EXPECT_EQ(snapshot(db), before);
}

TEST(HostileRead, AReadOnlyDirectoryServesEveryReader) {
  TempDir dir("hr-ro");
  std::string mnt = dir / "mnt";
  Tmpfs fs_(mnt, "16m");
  SKIP_UNLESS_MOUNTED(fs_);
  std::string db = mnt + "/db";
  apply_scenario(db, "07-cancel-and-reactivate");
  ASSERT_TRUE(fs_.remount_read_only());
  for (const auto& c : kReaders) {
    Both b = run_both(bin() + " " + c + " --db " + db);
    EXPECT_EQ(b.status, 0) << c << ": " << b.err;
  }
  Both w = run_both(bin() + " apply /dev/null --db " + db);
  EXPECT_EQ(w.status, 2);
  EXPECT_FALSE(aborted(w));
}

// ================= class 7: restore =================

TEST(HostileRestore, ALedgerInUseIsRefused) {
  TempDir dir("hs-in-use");
  std::string db = dir / "db", backup = dir / "backup";
  apply_scenario(db, "07-cancel-and-reactivate");
  ASSERT_EQ(run(bin() + " backup " + backup + " --db " + db).status, 0);
  auto writer = open_writer(db);
  ASSERT_TRUE(writer);
  CommandResult r = writer->submit(
      R"({"cmd":"change_seats","request_id":"more","subscription_id":"S1","seats":42,"date":"2017-08-01"})");
  ASSERT_EQ(writer->commit(), absl::OkStatus());
  Both b = run_both(bin() + " restore " + backup + " --force --db " + db);
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("in use"), std::string::npos) << b.err;
  writer.reset();
  RunResult s = run(bin() + " state S1 --db " + db);
  EXPECT_EQ(Json::parse(s.out)["seats"], 42) << "the acknowledged change survived";
}

TEST(HostileRestore, RestoreWhileApplyRunsIsRefusedAndTheApplyLosesNothing) {
  TempDir dir("hs-during-apply");
  std::string db = dir / "db", backup = dir / "backup", out = dir / "out.jsonl";
  auto lines = lines_of(read_file(scenario_path("07-cancel-and-reactivate")));
  std::string first;
  for (size_t i = 0; i < 6; ++i) first += lines[i] + "\n";
  write_file(dir / "first.jsonl", first);
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + (dir / "first.jsonl") + " >/dev/null 2>&1")
                .status,
            0);
  ASSERT_EQ(run(bin() + " backup " + backup + " --db " + db).status, 0);
  // A running apply fed through a pipe: it answers each line once it is durable, so once the
  // first answer is out, it holds the ledger.
  FILE* apply = popen((bin() + " apply --db " + db + " >" + out + " 2>/dev/null").c_str(), "w");
  ASSERT_NE(apply, nullptr);
  fputs((lines[6] + "\n").c_str(), apply);
  fflush(apply);
  for (int i = 0; i < 2000 && lines_of(read_file(out)).empty(); ++i) usleep(10'000);
  ASSERT_EQ(lines_of(read_file(out)).size(), 1u) << "apply did not answer";
  Both r = run_both(bin() + " restore " + backup + " --force --db " + db);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  for (size_t i = 7; i < lines.size(); ++i) fputs((lines[i] + "\n").c_str(), apply);
  ASSERT_EQ(pclose(apply), 0);
  auto answers = lines_of(read_file(out));
  ASSERT_EQ(answers.size(), lines.size() - 6);
  RunResult again = run(bin() + " apply --db " + db + " " +
                        scenario_path("07-cancel-and-reactivate") + " 2>/dev/null");
  for (const auto& line : lines_of(again.out))
    EXPECT_EQ(Json::parse(line)["duplicate"], true) << "acknowledged, then lost: " << line;
}

TEST(HostileRestore, ANonEmptyTargetNeedsForce) {
  TempDir dir("hs-force");
  std::string db = dir / "db", backup = dir / "backup", other = dir / "other";
  apply_scenario(db, "07-cancel-and-reactivate");
  ASSERT_EQ(run(bin() + " backup " + backup + " --db " + db).status, 0);
  apply_scenario(other, "01-annual-purchase-renewal");
  std::string others = run(bin() + " invoices --db " + other).out;
  Both refused = run_both(bin() + " restore " + backup + " --db " + other);
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(run(bin() + " invoices --db " + other).out, others) << "nothing was replaced";
  ASSERT_EQ(run(bin() + " restore " + backup + " --force --db " + other).status, 0);
  EXPECT_EQ(run(bin() + " invoices --db " + other).out, run(bin() + " invoices --db " + db).out);
}

TEST(HostileRestore, BackupsAreListedAndOneIsChosenById) {
  TempDir dir("hs-list");
  std::string db = dir / "db", backup = dir / "backup", restored = dir / "restored";
  std::vector<std::string> lines =
      lines_of(read_file(scenario_path("07-cancel-and-reactivate")));
  std::string half = dir / "half.jsonl";
  std::string text;
  for (size_t i = 0; i < 8; ++i) text += lines[i] + "\n";
  write_file(half, text);
  ASSERT_EQ(run(bin() + " apply --db " + db + " " + half + " >/dev/null 2>&1").status, 0);
  std::string first_invoices = run(bin() + " invoices --db " + db).out;
  ASSERT_EQ(run(bin() + " backup " + backup + " --db " + db).status, 0);
  apply_scenario(db, "07-cancel-and-reactivate");
  ASSERT_EQ(run(bin() + " backup " + backup + " --db " + db).status, 0);
  RunResult list = run(bin() + " backups " + backup);
  ASSERT_EQ(list.status, 0);
  auto rows = lines_of(list.out);
  ASSERT_EQ(rows.size(), 2u) << list.out;
  EXPECT_EQ(Json::parse(rows[0])["backup_id"], 1);
  EXPECT_EQ(Json::parse(rows[1])["backup_id"], 2);
  EXPECT_GT(Json::parse(rows[0])["size_bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(Json::parse(rows[0]).contains("timestamp"));
  ASSERT_EQ(run(bin() + " restore " + backup + " --backup-id 1 --db " + restored).status, 0);
  EXPECT_EQ(run(bin() + " invoices --db " + restored).out, first_invoices);
  Both unknown = run_both(bin() + " restore " + backup + " --backup-id 9 --force --db " + restored);
  EXPECT_EQ(unknown.status, 2);
  EXPECT_EQ(run_both(bin() + " backups " + (dir / "nothing")).status, 2);
}

// ================= class 8: faults =================

TEST(HostileFault, ADiskFullDuringApplyIsOneLineAndLosesNothingAcknowledged) {
  TempDir dir("hx-full");
  std::string mnt = dir / "mnt", input = dir / "w.jsonl", copy = dir / "copy";
  Tmpfs fs_(mnt, "8m");
  SKIP_UNLESS_MOUNTED(fs_);
  ASSERT_EQ(run(bin() + " gen --subscriptions 20000 --seed 3 -o " + input).status, 0);
  std::string db = mnt + "/db";
  Both b = run_both(bin() + " apply --batch 256 --db " + db + " " + input);
  ASSERT_FALSE(aborted(b)) << "status " << b.status << ": " << b.err;
  ASSERT_EQ(b.status, 2) << "the disk should have filled up: " << b.err;
  EXPECT_EQ(lines_of(b.err).size(), 1u) << b.err;
  EXPECT_EQ(b.err.rfind("subledger: ", 0), 0u) << b.err;
  // Reads on the full disk do not abort either.
  for (const std::string c : {"log --limit 1", "replay --verify", "invoices", "state S000001"}) {
    Both r = run_both(bin() + " " + c + " --db " + db + " >/dev/null");
    EXPECT_FALSE(aborted(r)) << c << ": " << r.err;
  }
  // Everything acknowledged is there once the ledger has room again.
  fs::copy(db, copy, fs::copy_options::recursive);
  auto acknowledged = lines_of(b.out);
  ASSERT_FALSE(acknowledged.empty());
  std::string replayed = dir / "acknowledged.jsonl";
  auto inputs = lines_of(read_file(input));
  std::string text;
  for (size_t i = 0; i < acknowledged.size(); ++i) text += inputs[i] + "\n";
  write_file(replayed, text);
  RunResult again = run(bin() + " apply --db " + copy + " " + replayed + " 2>/dev/null");
  auto answers = lines_of(again.out);
  ASSERT_EQ(answers.size(), acknowledged.size());
  for (size_t i = 0; i < answers.size(); ++i) {
    Json was = Json::parse(acknowledged[i]), now = Json::parse(answers[i]);
    if (!was["ok"].get<bool>()) continue;
    ASSERT_EQ(now["duplicate"], true) << "acknowledged but lost: " << acknowledged[i];
    ASSERT_EQ(now["seq_first"], was["seq_first"]);
  }
  EXPECT_EQ(run(bin() + " replay --verify --db " + copy + " >/dev/null").status, 0);
}

TEST(HostileFault, OutputThatCannotBeWrittenExitsTwo) {
  TempDir dir("hx-devfull");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  for (const std::string& c :
       std::vector<std::string>{"invoices", "log", "history S1", "replay --verify", "export",
                                "state S1", "renewals --from 2017-01-01 --to 2019-01-01"}) {
    Both b = run_both(bin() + " " + c + " --db " + db + " >/dev/full");
    EXPECT_EQ(b.status, 2) << c << ": " << b.err;
  }
  Both a = run_both(bin() + " apply --db " + (dir / "db2") + " " +
                    scenario_path("07-cancel-and-reactivate") + " >/dev/full");
  EXPECT_EQ(a.status, 2) << a.err;
  // The commands were durable all the same: a retry answers them as duplicates.
  RunResult again = run(bin() + " apply --db " + (dir / "db2") + " " +
                        scenario_path("07-cancel-and-reactivate") + " 2>/dev/null");
  for (const auto& line : lines_of(again.out)) EXPECT_EQ(Json::parse(line)["duplicate"], true);
}

TEST(HostileFault, ApplyOfADirectoryIsAnError) {
  TempDir dir("hx-dir");
  Both b = run_both(bin() + " apply --db " + (dir / "db") + " " + dir.str());
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("directory"), std::string::npos) << b.err;
  EXPECT_FALSE(fs::exists(dir / "db")) << "nothing was created";
  Both in = run_both(bin() + " apply --db " + (dir / "db") + " < " + dir.str());
  EXPECT_EQ(in.status, 2);
}

TEST(HostileFault, ADamagedIdempotencyRecordFailsTheCommandNeverTreatsItAsNew) {
  TempDir dir("hx-idem");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite});
    ASSERT_TRUE(store.ok());
    ASSERT_EQ((*store)->put_raw_for_test("idempotency", key_component("x1"), "short"), absl::OkStatus());
    EXPECT_TRUE(absl::IsNotFound((*store)->idempotency("never-used").status()));
  }
  std::string line = lines_of(read_file(scenario_path("07-cancel-and-reactivate")))[8];
  std::string last_before = run(bin() + " log --db " + db).out;
  Both b = run_both("echo '" + line + "' | " + bin() + " apply --db " + db);
  EXPECT_EQ(b.status, 2) << b.out;
  EXPECT_TRUE(b.out.empty()) << b.out;
  EXPECT_EQ(run(bin() + " log --db " + db).out, last_before) << "nothing appended";
}

// ================= class 9: corruption =================

TEST(HostileCorrupt, AFlippedByteInTheRowsIsRebuiltAndApplyGoesOn) {
  TempDir dir("hc-rows");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  std::string invoices = run(bin() + " invoices --db " + db).out;
  auto tables = tables_of(db, "projections");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) flip_byte(t, 40);
  // Readers fold the log in memory meanwhile.
  RunResult read = run(bin() + " invoices --db " + db);
  EXPECT_EQ(read.status, 0);
  EXPECT_EQ(read.out, invoices);
  EXPECT_EQ(Json::parse(run(bin() + " state S1 --db " + db).out)["seats"], 10);
  // A writer rebuilds the rows and goes on.
  Both w = apply_more_seats(db, "2017-08-01");
  EXPECT_EQ(w.status, 0) << w.out << w.err;
  EXPECT_EQ(Json::parse(run(bin() + " state S1 --db " + db).out)["seats"], 12);
  EXPECT_EQ(run(bin() + " invoices --db " + db).out, invoices);
  EXPECT_EQ(run(bin() + " replay --verify --db " + db + " >/dev/null").status, 0);
  EXPECT_EQ(run(bin() + " apply --db " + db + " /dev/null 2>/dev/null").status, 0)
      << "and again: not rebuilt for good";
}

// A query of a few keys does not stat each table at open (Store::Reads::kFew): a projection
// table cut short is found when read, and the query folds the log instead, answering as before;
// `replay --verify`, which reads every table, refuses the ledger at open naming the file and the
// rebuild that rewrites it.
TEST(HostileCorrupt, ARowsTableCutShortStillAnswersQueriesAndVerifyNamesIt) {
  TempDir dir("hc-cut");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  const std::string state = run(bin() + " state S1 --db " + db).out;
  ASSERT_EQ(Json::parse(state)["seats"], 10);
  auto tables = tables_of(db, "projections");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) fs::resize_file(t, fs::file_size(t) / 2);
  RunResult read = run(bin() + " state S1 --db " + db);
  EXPECT_EQ(read.status, 0);
  EXPECT_EQ(read.out, state);
  Both verify = run_both(bin() + " replay --verify --db " + db);
  EXPECT_EQ(verify.status, 2) << verify.err;
  EXPECT_TRUE(verify.out.empty()) << verify.out;
  EXPECT_TRUE(std::any_of(tables.begin(), tables.end(), [&](const fs::path& t) {
    return verify.err.find(t.filename().string()) != std::string::npos;
  })) << verify.err;
  EXPECT_NE(verify.err.find("subledger rebuild --db"), std::string::npos) << verify.err;
}

TEST(HostileCorrupt, RebuildRewritesEveryRowOnDemand) {
  TempDir dir("hc-rebuild");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  std::string invoices = run(bin() + " invoices --db " + db).out;
  for (const auto& t : tables_of(db, "projections")) flip_byte(t, 40);
  RunResult r = run(bin() + " rebuild --db " + db + " 2>/dev/null");
  ASSERT_EQ(r.status, 0);
  Json summary = Json::parse(r.out);
  EXPECT_EQ(summary["rebuilt"], true);
  EXPECT_EQ(summary["events"], Json::parse(lines_of(run(bin() + " log --db " + db).out).back())["seq"]);
  EXPECT_EQ(run(bin() + " invoices --db " + db).out, invoices);
  EXPECT_EQ(run(bin() + " replay --verify --db " + db + " >/dev/null").status, 0);
  EXPECT_EQ(run_both(bin() + " rebuild --db " + (dir / "none")).status, 2);
  EXPECT_FALSE(fs::exists(dir / "none"));
}

TEST(HostileCorrupt, AFlippedByteInTheLogRefusesWritesNamingTheFirstBadSeq) {
  TempDir dir("hc-log");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  auto tables = tables_of(db, "events");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) flip_byte(t, 40);
  auto before = snapshot(db);
  Both b = apply_more_seats(db, "2017-08-01");
  EXPECT_EQ(b.status, 2);
  EXPECT_TRUE(b.out.empty()) << "nothing acknowledged: " << b.out;
  EXPECT_NE(b.err.find("damaged from event 1 "), std::string::npos) << b.err;
  EXPECT_EQ(run_both(bin() + " bill --through 2017-09-30 --db " + db).status, 2);
  EXPECT_EQ(snapshot(db), before);
  EXPECT_EQ(run_both(bin() + " replay --verify --db " + db).status, 2);
}

// Scenario 07 applied, then billed through 2017-08-31 by a second writer: a writer opening a
// ledger that exists checks the log and lists its tables found whole. Returns the list's path.
fs::path ledger_with_listed_log_tables(const std::string& db) {
  apply_scenario(db, "07-cancel-and-reactivate");
  EXPECT_EQ(run_both(bin() + " bill --through 2017-08-31 --db " + db).status, 0);
  return fs::path(db) / "SUBLEDGER-WHOLE-EVENT-TABLES";
}

// A writer lists the log's tables it found whole, and the next writer checks only the others:
// a table damaged after it was listed is checked again (its file changed), and writes are refused.
TEST(HostileCorrupt, ALogTableDamagedAfterAWriterFoundItWholeStillRefusesWrites) {
  TempDir dir("hc-log-listed");
  std::string db = dir / "db";
  const fs::path listed = ledger_with_listed_log_tables(db);
  ASSERT_TRUE(fs::exists(listed));
  std::vector<std::string> listed_tables;  // the bill's own events may be in a table since
  for (const auto& t : tables_of(db, "events"))
    if (read_file(listed).find(fs::path(t).filename().string() + " ") != std::string::npos)
      listed_tables.push_back(t);
  ASSERT_FALSE(listed_tables.empty());
  flip_byte(listed_tables.front(), 40);
  auto before = snapshot(db);
  Both b = apply_more_seats(db, "2017-09-01");
  EXPECT_EQ(b.status, 2);
  EXPECT_TRUE(b.out.empty()) << "nothing acknowledged: " << b.out;
  EXPECT_NE(b.err.find("damaged from event "), std::string::npos) << b.err;
  EXPECT_EQ(snapshot(db), before);
}

// The list is a cache: torn or not ours, the next writer checks every table and goes on.
TEST(HostileCorrupt, AnUnreadableListOfWholeLogTablesIsCheckedAgain) {
  TempDir dir("hc-log-list-torn");
  std::string db = dir / "db";
  const fs::path listed = ledger_with_listed_log_tables(db);
  const std::pair<std::string, std::string> junk_then_through[] = {
      {"garbage\nwithout its end", "2017-09-30"},
      {std::string("\0\1", 2), "2017-10-31"},
      {"", "2017-11-30"}};
  for (const auto& [junk, through] : junk_then_through) {
    std::ofstream(listed, std::ios::trunc) << junk;
    EXPECT_EQ(run_both(bin() + " bill --through " + through + " --db " + db).status, 0);
    EXPECT_NE(read_file(listed).find("\nend\n"), std::string::npos);
  }
  EXPECT_EQ(run_both(bin() + " replay --verify --db " + db).status, 0);
}

TEST(HostileCorrupt, AnEmptyLedgerVerifies) {
  TempDir dir("hc-empty");
  std::string db = dir / "db";
  ASSERT_EQ(run(bin() + " apply --db " + db + " /dev/null 2>/dev/null").status, 0);
  RunResult r = run(bin() + " replay --verify --db " + db);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(Json::parse(r.out)["ok"], true);
}

// ================= class 11: sequence numbers at the edge =================

TEST(HostileSeq, LogAfterTheLargestSequenceNumberPrintsNothing) {
  TempDir dir("hq-log");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  auto all = lines_of(run(bin() + " log --db " + db).out);
  uint64_t last = Json::parse(all.back())["seq"];
  for (const std::string& after : {std::string("18446744073709551615"),
                                   std::string("18446744073709551614"), std::to_string(last)}) {
    RunResult r = run(bin() + " log --after-seq " + after + " --db " + db);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "") << after;
  }
  EXPECT_EQ(lines_of(run(bin() + " log --after-seq " + std::to_string(last - 1) + " --db " + db)
                         .out)
                .size(),
            1u);
  EXPECT_EQ(run_both(bin() + " log --after-seq 18446744073709551616 --db " + db).status, 2);
  EXPECT_EQ(run_both(bin() + " log --after-seq -1 --db " + db).status, 2);
}

TEST(HostileSeq, TheLargestLimitIsNoLimitAndNothingWraps) {
  TempDir dir("hq-limit");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  std::string all = run(bin() + " log --db " + db).out;
  EXPECT_EQ(run(bin() + " log --limit 18446744073709551615 --db " + db).out, all);
  EXPECT_EQ(run(bin() + " log --after-seq 0 --limit 18446744073709551615 --db " + db).out, all);
  EXPECT_EQ(lines_of(run(bin() + " log --limit 1 --db " + db).out).size(), 1u);
  EXPECT_EQ(run_both(bin() + " log --limit -1 --db " + db).status, 2);
  EXPECT_EQ(run_both(bin() + " log --limit 1x --db " + db).status, 2);
}

TEST(HostileSeq, TheLibraryScanAfterTheLargestSequenceNumberVisitsNothing) {
  TempDir dir("hq-scan");
  std::string db = dir / "db";
  apply_scenario(db, "07-cancel-and-reactivate");
  auto store = Store::open(db, Store::OpenOptions{});
  ASSERT_TRUE(store.ok());
  uint64_t visited = 0;
  for (uint64_t after : {UINT64_MAX, UINT64_MAX - 1, (*store)->last_seq()})
    EXPECT_EQ((*store)->scan_events(after,
                                    [&](uint64_t, std::string_view) {
                                      ++visited;
                                      return true;
                                    }),
              absl::OkStatus());
  EXPECT_EQ(visited, 0u);
  EXPECT_TRUE(absl::IsNotFound((*store)->event_bytes(UINT64_MAX).status()));
}

}  // namespace
}  // namespace subledger::testing
