// `subledger serve` as a client sees it: the real binary on an ephemeral loopback port, driven by a
// real HTTP client (Boost.Beast). Every route and status of SERVER.md, partner isolation on every
// route, idempotent replay, If-Match, limits, throttling, SIGTERM and kill -9 under a burst.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "events/hash.h"
#include "ledger/ledger.h"
#include "support/process.h"
#include "support/server_client.h"

namespace subledger::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Json = nlohmann::json;

const char* kCatalog =
    R"({"cmd":"register_partner","request_id":"p1","partner_id":"P1","country":"US","currency":"USD","billing_day":20}
{"cmd":"register_partner","request_id":"p2","partner_id":"P2","country":"US","currency":"USD","billing_day":20}
{"cmd":"define_offer","request_id":"o1","offer_id":"E3","name":"Office 365 E3","trial_eligible":true}
{"cmd":"define_offer","request_id":"o2","offer_id":"AD","name":"Add-on","addon_of":["E3"]}
{"cmd":"publish_price","request_id":"pr1","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2016-01-01"}
{"cmd":"publish_price","request_id":"pr2","offer_id":"AD","currency":"USD","monthly_price":"2.00","effective_from":"2016-01-01"}
)";

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("server-" + std::string(::testing::UnitTest::GetInstance()
                                                                 ->current_test_info()
                                                                 ->name()));
    db_ = *dir_ / "db";
    keys_ = *dir_ / "keys.jsonl";
    p1_ = add_key(keys_, "--partner P1");
    p2_ = add_key(keys_, "--partner P2");
    op_ = add_key(keys_, "--operator");
    write_file(*dir_ / "catalog.jsonl", kCatalog);
    ASSERT_EQ(run(bin() + " apply --db " + db_ + " " + (*dir_ / "catalog.jsonl") + " >/dev/null 2>&1")
                  .status,
              0);
  }
  void start(const std::vector<std::string>& extra = {}) {
    server_ = std::make_unique<Server>(db_, keys_, extra);
    ASSERT_GT(server_->port(), 0);
  }
  Reply get(const std::string& target, const std::string& key) {
    return request(server_->port(), "GET", target, key);
  }
  Reply write(const std::string& method, const std::string& target, const std::string& key,
              const std::string& rid, const std::string& body,
              std::map<std::string, std::string> headers = {}) {
    if (!rid.empty()) headers["MS-RequestId"] = rid;
    return request(server_->port(), method, target, key, body, headers);
  }
  // P1's customer C1 with an annual E3 subscription S1 (10 seats) and its add-on A1.
  void seed_p1() {
    ASSERT_EQ(write("POST", "/v1/customers", p1_, "c1",
                    R"({"customer_id":"C1","country":"US","currency":"USD"})")
                  .status,
              201);
    Reply order = write("POST", "/v1/customers/C1/orders", p1_, "o1",
                        R"({"date":"2017-01-15","line_items":[)"
                        R"({"subscription_id":"S1","offer_id":"E3","seats":10,"billing_frequency":"annual"},)"
                        R"({"subscription_id":"A1","offer_id":"AD","seats":2,"parent_subscription_id":"S1"}]})");
    ASSERT_EQ(order.status, 201) << order.body;
  }

  std::unique_ptr<TempDir> dir_;
  std::string db_, keys_, p1_, p2_, op_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, KeysFileIsPrivateAndServeRefusesAnOpenOne) {
  struct stat st {};
  ASSERT_EQ(stat(keys_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string text = read_file(keys_);
  EXPECT_EQ(text.find(p1_.substr(p1_.find('.') + 1)), std::string::npos) << "a secret on disk";
  chmod(keys_.c_str(), 0640);
  RunResult r = run(bin() + " serve --db " + db_ + " --keys " + keys_ +
                    " --listen 127.0.0.1:0 -q 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("chmod 600"), std::string::npos) << r.out;
}

TEST_F(ServerTest, RefusesANonLoopbackAddressWithoutTls) {
  RunResult r = run(bin() + " serve --db " + db_ + " --keys " + keys_ +
                    " --listen 0.0.0.0:0 -q 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("loopback"), std::string::npos) << r.out;
}

TEST_F(ServerTest, WithTlsItSpeaksHttpsOnlyTls12OrLater) {
  if (run("command -v openssl >/dev/null && command -v curl >/dev/null").status != 0)
    GTEST_SKIP() << "needs the openssl and curl programs";
  const std::string cert = *dir_ / "tls.crt", key = *dir_ / "tls.key";
  ASSERT_EQ(run("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                " -days 1 -subj /CN=localhost 2>/dev/null")
                .status,
            0);
  server_ = std::make_unique<Server>(db_, keys_,
                                     std::vector<std::string>{"--tls-cert", cert, "--tls-key", key});
  ASSERT_GT(server_->port(), 0);
  const std::string url = "://127.0.0.1:" + std::to_string(server_->port());
  RunResult https = run("curl -sk -H 'Authorization: Bearer " + p1_ + "' https" + url +
                        "/v1/customers");
  EXPECT_EQ(https.status, 0);
  EXPECT_NE(https.out.find("\"total_count\":0"), std::string::npos) << https.out;
  EXPECT_NE(run("curl -sk --tlsv1.1 --tls-max 1.1 https" + url + "/healthz").status, 0);
  EXPECT_EQ(request(server_->port(), "GET", "/healthz", "").status, 0);  // no clear HTTP
  EXPECT_EQ(server_->stop(), 0);
}

TEST_F(ServerTest, AuthenticationAndOperatorRoutes) {
  start();
  EXPECT_EQ(get("/v1/customers", "").status, 401);
  EXPECT_EQ(get("/v1/customers", "").code(), "UNAUTHENTICATED");
  std::string forged = p1_.substr(0, p1_.find('.') + 1) + std::string(64, '0');
  EXPECT_EQ(get("/v1/customers", forged).status, 401);
  EXPECT_EQ(write("POST", "/v1/commands", p1_, "", "{}").status, 403);
  EXPECT_EQ(write("POST", "/v1/billingruns", p1_, "b", R"({"through":"2017-02-01"})").code(),
            "FORBIDDEN");
  EXPECT_EQ(get("/v1/customers", op_).status, 403);
  Reply cmd = write("POST", "/v1/commands", op_, "",
                    R"({"cmd":"define_offer","request_id":"o9","offer_id":"X9","name":"X"})");
  ASSERT_EQ(cmd.status, 200) << cmd.body;
  EXPECT_EQ(cmd.json()["ok"], true);
  Reply bad = write("POST", "/v1/commands", op_, "", R"({"cmd":"define_offer"})");
  EXPECT_EQ(bad.status, 200);
  EXPECT_EQ(bad.json()["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(get("/healthz", "").status, 200);
  EXPECT_EQ(get("/readyz", "").status, 200);
  Reply wrong_method = request(server_->port(), "DELETE", "/v1/customers", p1_);
  EXPECT_EQ(wrong_method.code(), "METHOD_NOT_ALLOWED");
  EXPECT_EQ(wrong_method.headers["Allow"], "POST, GET");
  // The operations routes are GET only: another method is 405 too, never "no route".
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/openapi.json"}) {
    Reply post = request(server_->port(), "POST", path, "", "{}");
    EXPECT_EQ(post.status, 405) << path;
    EXPECT_EQ(post.headers["Allow"], "GET") << path;
  }
  EXPECT_EQ(get("/v1/nothing", p1_).status, 404);
  EXPECT_EQ(request(server_->port(), "GET", "/v1/customers", p1_, "",
                    {{"X-Padding", std::string(20 << 10, 'x')}})
                .status,
            431);  // headers over 16 KiB
  EXPECT_EQ(get("/v1/customers", p1_).status, 200);  // and the server goes on
  Reply metrics = get("/metrics", "");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("subledger_http_requests_total{route=\"/v1/customers\",status=\"401\"}"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("subledger_open_connections"), std::string::npos);
  EXPECT_NE(metrics.body.find("subledger_commit_batch_commands_count"), std::string::npos);
}

TEST_F(ServerTest, RevokedKeyStopsWorkingWithinASecond) {
  start();
  EXPECT_EQ(get("/v1/customers", p1_).status, 200);
  std::string id = p1_.substr(0, p1_.find('.'));
  ASSERT_EQ(run(bin() + " keys revoke --file " + keys_ + " " + id).status, 0);
  int status = 0;
  for (int i = 0; i < 40 && status != 401; ++i) {  // polled every 250 ms; give it 2 s
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = get("/v1/customers", p1_).status;
  }
  EXPECT_EQ(status, 401);
  EXPECT_EQ(get("/v1/customers", p2_).status, 200);
  RunResult list = run(bin() + " keys list --file " + keys_);
  EXPECT_NE(list.out.find("\"revoked\":\"20"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("sha256"), std::string::npos);
}

// PATCH /v1/customers/{cid}: the command update_customer (BILLING_RULES 15) for the caller's own
// customer, answered with the customer as updated; idempotent by MS-RequestId.
TEST_F(ServerTest, CustomerUpdatesAreTheCallersOwnAndIdempotent) {
  start();
  ASSERT_EQ(write("POST", "/v1/customers", p1_, "r1",
                  R"({"customer_id":"C1","country":"US","currency":"USD"})")
                .status,
            201);
  const std::string update = R"({"company_name":"Contoso Ltd","segment":"education"})";
  Reply updated = write("PATCH", "/v1/customers/C1", p1_, "u1", update);
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(updated.json()["customer_id"], "C1");
  EXPECT_EQ(updated.json()["company_name"], "Contoso Ltd");
  EXPECT_EQ(updated.json()["segment"], "education");
  EXPECT_EQ(get("/v1/customers/C1", p1_).json()["company_name"], "Contoso Ltd");
  Reply again = write("PATCH", "/v1/customers/C1", p1_, "u1", update);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, updated.body);
  EXPECT_EQ(again.headers["Idempotent-Replayed"], "true");
  // Another partner's customer is not found, and nothing changes.
  EXPECT_EQ(write("PATCH", "/v1/customers/C1", p2_, "u2", R"({"company_name":"Mine"})").status,
            404);
  EXPECT_EQ(get("/v1/customers/C1", p1_).json()["company_name"], "Contoso Ltd");
  // Bad input: nothing to update, a field that never changes, an unknown segment.
  EXPECT_EQ(write("PATCH", "/v1/customers/C1", p1_, "u3", "{}").code(), "INVALID_ARGUMENT");
  EXPECT_EQ(write("PATCH", "/v1/customers/C1", p1_, "u4", R"({"country":"DE"})").code(),
            "INVALID_ARGUMENT");
  EXPECT_EQ(write("PATCH", "/v1/customers/C1", p1_, "u5", R"({"segment":"military"})").code(),
            "INVALID_ARGUMENT");
  EXPECT_EQ(write("PATCH", "/v1/customers/C1", p1_, "", update).status, 400);  // no MS-RequestId
  EXPECT_EQ(get("/v1/customers/C1", p1_).json()["segment"], "education");
}

// An answer kept by an earlier version (a JSON object after the request's hash) still replays;
// a damaged one is answered 503 (the ledger cannot say what it answered) and nothing is applied.
TEST_F(ServerTest, AnswersKeptInTheEarlierJsonFormStillReplay) {
  const std::string body = R"({"customer_id":"C9","country":"US","currency":"USD"})";
  {
    auto ledger = Ledger::open(db_, Ledger::Options{});
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    const std::string hash = sha256("POST /v1/customers\n" + body);
    (*ledger)->remember_record(
        "http P1:old",
        hash +
            R"({"status":201,"body":"{\"customer_id\":\"C9\",\"partner_id\":\"P1\",\"country\":\"US\",\"currency\":\"USD\",\"company_name\":\"Kept\",\"organization_registration_number\":\"\",\"phone\":\"\",\"middle_name\":\"\"}","headers":{"Location":"/v1/customers/C9"}})");
    (*ledger)->remember_record("http P1:damaged", hash + std::string("\x01\x00", 2));
    ASSERT_EQ((*ledger)->commit(), absl::OkStatus());
  }
  start();
  Reply again = write("POST", "/v1/customers", p1_, "old", body);
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(
      again.body,
      R"({"customer_id":"C9","partner_id":"P1","country":"US","currency":"USD","company_name":"Kept","organization_registration_number":"","phone":"","middle_name":""})");
  EXPECT_EQ(again.headers["Location"], "/v1/customers/C9");
  EXPECT_EQ(again.headers["Idempotent-Replayed"], "true");
  Reply damaged = write("POST", "/v1/customers", p1_, "damaged", body);
  EXPECT_EQ(damaged.status, 503) << damaged.body;
  EXPECT_EQ(damaged.code(), "UNAVAILABLE");
  EXPECT_EQ(get("/v1/customers/C9", p1_).status, 404);  // neither request applied anything
  // A new request keeps its answer in the current form, and replays it.
  Reply created = write("POST", "/v1/customers", p1_, "new", body);
  ASSERT_EQ(created.status, 201) << created.body;
  Reply replayed = write("POST", "/v1/customers", p1_, "new", body);
  EXPECT_EQ(replayed.body, created.body);
  EXPECT_EQ(replayed.headers["Location"], "/v1/customers/C9");
  EXPECT_EQ(replayed.headers["Idempotent-Replayed"], "true");
}

TEST_F(ServerTest, CustomersIdempotencyAndScope) {
  start();
  const std::string body = R"({"customer_id":"C1","country":"US","currency":"USD"})";
  Reply created = write("POST", "/v1/customers", p1_, "r1", body,
                        {{"MS-CorrelationId", "corr-7"}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.headers["Location"], "/v1/customers/C1");
  EXPECT_EQ(created.headers["MS-CorrelationId"], "corr-7");
  EXPECT_EQ(created.json()["customer_id"], "C1");
  EXPECT_EQ(created.json()["partner_id"], "P1");
  Reply again = write("POST", "/v1/customers", p1_, "r1", body);
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.body, created.body);
  EXPECT_EQ(again.headers["Idempotent-Replayed"], "true");
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r1",
                  R"({"customer_id":"C2","country":"US","currency":"USD"})")
                .code(),
            "IDEMPOTENCY_CONFLICT");
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r2", body).status, 409);  // ALREADY_EXISTS
  // A rejected request is not remembered: fixed, the same id is decided again.
  Reply rejected = write("POST", "/v1/customers", p1_, "r3",
                         R"({"customer_id":"C3","country":"ZZ","currency":"USD"})");
  EXPECT_EQ(rejected.status, 404) << rejected.body;  // UNKNOWN_COUNTRY
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r3",
                  R"({"customer_id":"C3","country":"US","currency":"USD"})")
                .status,
            201);
  // P2 has its own C1 and its own r1: nothing of P1's shows.
  Reply other = write("POST", "/v1/customers", p2_, "r1", body);
  EXPECT_EQ(other.status, 201);
  EXPECT_FALSE(other.headers.count("Idempotent-Replayed"));
  EXPECT_EQ(get("/v1/customers", p1_).json()["total_count"], 2);
  EXPECT_EQ(get("/v1/customers", p2_).json()["total_count"], 1);
  EXPECT_EQ(get("/v1/customers/C3", p2_).status, 404);
  // Bad input.
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "", body).status, 400);  // no MS-RequestId
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r9", "{nope").status, 400);
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r9",
                  R"({"customer_id":"C9","customer_id":"C8","country":"US","currency":"USD"})")
                .code(),
            "INVALID_ARGUMENT");
  EXPECT_EQ(write("POST", "/v1/customers/C1/orders", p1_, "r9",
                  R"({"line_items":[{"offer_id":"E3","seats":1,"seats":2}]})")
                .status,
            400);
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r9",
                  R"({"customer_id":"C9","partner_id":"P2","country":"US","currency":"USD"})")
                .status,
            400);
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r9",
                  R"({"customer_id":"P2:C9","country":"US","currency":"USD"})")
                .status,
            400);
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r9", std::string(200000, '[')).status, 400);
  EXPECT_EQ(write("POST", "/v1/customers", p1_, "r9",
                  "{\"customer_id\":\"C9\xff\",\"country\":\"US\",\"currency\":\"USD\"}")
                .status,
            400);
  // A number beyond a double (the parser throws out_of_range, not parse_error) is a 400.
  EXPECT_EQ(write("POST", "/v1/customers/C1/orders", p1_, "r9",
                  R"({"line_items":[{"offer_id":"E3","seats":1e999}]})")
                .code(),
            "INVALID_ARGUMENT");
  EXPECT_EQ(get("/v1/customers?limit=0", p1_).status, 400);
  EXPECT_EQ(get("/v1/customers?limit=1001", p1_).status, 400);
  Reply page = get("/v1/customers?limit=1", p1_);
  EXPECT_EQ(page.json()["items"].size(), 1u);
  std::string next = page.json()["links"]["next"];
  Reply second = get(next, p1_);
  EXPECT_EQ(second.json()["items"][0]["customer_id"], "C3");
  EXPECT_FALSE(second.json()["links"].contains("next"));
}

TEST_F(ServerTest, OrdersAreAllOrNothingAndNameTheRejectedLine) {
  start();
  seed_p1();
  Reply bad = write("POST", "/v1/customers/C1/orders", p1_, "o2",
                    R"({"date":"2017-01-15","line_items":[)"
                    R"({"subscription_id":"S2","offer_id":"E3","seats":1,"billing_frequency":"monthly"},)"
                    R"({"subscription_id":"S3","offer_id":"NOPE","seats":1,"billing_frequency":"monthly"}]})");
  EXPECT_EQ(bad.status, 404) << bad.body;
  EXPECT_EQ(bad.json()["line_index"], 1);
  EXPECT_EQ(get("/v1/customers/C1/subscriptions/S2", p1_).status, 404);
  ASSERT_EQ(write("POST", "/v1/customers", p1_, "c2",
                  R"({"customer_id":"C2","country":"US","currency":"USD"})")
                .status,
            201);
  Reply trial = write("POST", "/v1/customers/C2/orders", p1_, "o3",
                      R"({"date":"2017-01-16","line_items":[{"offer_id":"E3","trial":true}]})");
  ASSERT_EQ(trial.status, 201) << trial.body;
  EXPECT_EQ(trial.json()["line_items"][0]["subscription_id"], "o3-0");
  EXPECT_EQ(trial.json()["status"], "completed");
  EXPECT_EQ(trial.headers["Location"], "/v1/customers/C2/orders/o3");
  EXPECT_EQ(get("/v1/customers/C2/orders/o3", p1_).json()["line_items"][0]["trial"], true);
  Reply orders = get("/v1/customers/C1/orders", p1_);
  ASSERT_EQ(orders.status, 200);
  EXPECT_EQ(orders.json()["total_count"], 1);
  Reply one = get("/v1/customers/C1/orders/o1", p1_);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json()["line_items"].size(), 2u);
  EXPECT_EQ(one.json()["line_items"][1]["parent_subscription_id"], "S1");
  EXPECT_EQ(get("/v1/customers/C1/orders/nope", p1_).status, 404);
}

TEST_F(ServerTest, SubscriptionsPatchIfMatchConversionsAndAddons) {
  start();
  seed_p1();
  Reply sub = get("/v1/customers/C1/subscriptions/S1", p1_);
  ASSERT_EQ(sub.status, 200);
  EXPECT_EQ(sub.json()["subscription_id"], "S1");
  EXPECT_EQ(sub.json()["customer_id"], "C1");
  std::string etag = sub.headers["ETag"];
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(write("PATCH", "/v1/customers/C1/subscriptions/S1", p1_, "x1",
                  R"({"seats":12,"date":"2017-02-01"})", {{"If-Match", "\"999\""}})
                .status,
            412);
  Reply patched = write("PATCH", "/v1/customers/C1/subscriptions/S1", p1_, "x2",
                        R"({"seats":12,"auto_renew":false,"date":"2017-02-01"})",
                        {{"If-Match", etag}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json()["seats"], 12);
  EXPECT_EQ(patched.json()["auto_renew"], false);
  EXPECT_NE(patched.headers["ETag"], etag);
  // A PATCH whose later field is refused changes nothing.
  Reply refused = write("PATCH", "/v1/customers/C1/subscriptions/S1", p1_, "x3",
                        R"({"seats":15,"status":"active","date":"2017-02-02"})");
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(get("/v1/customers/C1/subscriptions/S1", p1_).json()["seats"], 12);
  EXPECT_EQ(write("PATCH", "/v1/customers/C1/subscriptions/S1", p1_, "x4", R"({"status":"odd"})")
                .status,
            400);
  Reply addons = get("/v1/customers/C1/subscriptions/S1/addons", p1_);
  EXPECT_EQ(addons.json()["total_count"], 1);
  EXPECT_EQ(addons.json()["items"][0]["subscription_id"], "A1");
  // The add-on's own view: its parent as the partner sent it, without the partner's scope.
  Reply addon = get("/v1/customers/C1/subscriptions/A1", p1_);
  ASSERT_EQ(addon.status, 200) << addon.body;
  EXPECT_EQ(addon.json()["parent_subscription_id"], "S1");
  EXPECT_EQ(addon.json()["customer_id"], "C1");
  ASSERT_EQ(write("POST", "/v1/customers", p1_, "c2",
                  R"({"customer_id":"C2","country":"US","currency":"USD"})")
                .status,
            201);
  ASSERT_EQ(write("POST", "/v1/customers/C2/orders", p1_, "t1",
                  R"({"date":"2017-02-01","line_items":[{"subscription_id":"T1","offer_id":"E3","trial":true}]})")
                .status,
            201);
  // Not a trial: no choices.
  EXPECT_EQ(get("/v1/customers/C1/subscriptions/S1/conversions", p1_).json()["total_count"], 0);
  Reply choices = get("/v1/customers/C2/subscriptions/T1/conversions", p1_);
  ASSERT_EQ(choices.status, 200);
  EXPECT_EQ(choices.json()["items"][1]["billing_frequency"], "annual");
  EXPECT_EQ(choices.json()["items"][0]["unit_price"], "20.00");
  EXPECT_EQ(get("/v1/customers/C1/subscriptions/T1/conversions", p1_).status, 404);
  Reply converted = write("POST", "/v1/customers/C2/subscriptions/T1/conversions", p1_, "t2",
                          R"({"billing_frequency":"monthly","date":"2017-02-10"})");
  ASSERT_EQ(converted.status, 200) << converted.body;
  EXPECT_EQ(converted.json()["status"], "active");
  Reply renewed = write("POST", "/v1/customers/C1/subscriptions/S1/renewals", p1_, "rn",
                        R"({"date":"2017-02-12"})");
  EXPECT_EQ(renewed.status / 100 == 2 || renewed.status == 422, true) << renewed.body;
  EXPECT_EQ(get("/v1/customers/C1/subscriptions/S1?as_of=2017-01-20", p1_).json()["seats"], 10);
  EXPECT_EQ(get("/v1/customers/C1/subscriptions/S1?as_of=2016-01-01", p1_).status, 404);
}

TEST_F(ServerTest, AgreementsConflictAndKeepTheContactOutOfAuditRecords) {
  start();
  seed_p1();
  const std::string body =
      R"({"agreement_type":"MicrosoftCustomerAgreement","date_agreed":"2017-01-10",)"
      R"("contact":{"first_name":"Ana","last_name":"Lima","email":"ana@contoso.example"}})";
  Reply accepted = write("POST", "/v1/customers/C1/agreements", p1_, "ag1", body);
  ASSERT_EQ(accepted.status, 201) << accepted.body;
  EXPECT_EQ(accepted.json()["contact"]["email"], "ana@contoso.example");
  Reply twice = write("POST", "/v1/customers/C1/agreements", p1_, "ag2", body);
  EXPECT_EQ(twice.status, 409);
  EXPECT_EQ(twice.code(), "AGREEMENT_ALREADY_ACCEPTED");
  Reply unknown = write("POST", "/v1/customers/C9/agreements", p1_, "ag3", body);
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  Reply listed = get("/v1/customers/C1/agreements", p1_);
  EXPECT_EQ(listed.json()["items"][0]["contact"]["last_name"], "Lima");
  Reply audit = get("/v1/auditrecords?type=AgreementAccepted", p1_);
  ASSERT_EQ(audit.status, 200);
  ASSERT_EQ(audit.json()["items"].size(), 1u);
  EXPECT_FALSE(audit.json()["items"][0]["data"].contains("contact"));
  EXPECT_EQ(audit.body.find("ana@"), std::string::npos);
  EXPECT_EQ(audit.json()["items"][0]["data"]["customer_id"], "C1");
  ASSERT_EQ(server_->stop(), 0);
  // The operator's CLI shows the contact.
  RunResult log = run(bin() + " log --db " + db_ + " --type AgreementAccepted");
  EXPECT_NE(log.out.find("ana@contoso.example"), std::string::npos) << log.out;
  EXPECT_NE(log.out.find("\"actor\":\"key:"), std::string::npos);
}

TEST_F(ServerTest, InvoiceListingsPageInTheCliOrderAndFilterByDate) {
  start();
  // Two partners, three customers each, monthly subscriptions, four runs: many invoices.
  for (const auto* key : {&p1_, &p2_}) {
    for (int c = 1; c <= 3; ++c) {
      const std::string cid = "C" + std::to_string(c);
      ASSERT_EQ(write("POST", "/v1/customers", *key, "c" + cid,
                      R"({"customer_id":")" + cid + R"(","country":"US","currency":"USD"})")
                    .status,
                201);
      ASSERT_EQ(write("POST", "/v1/customers/" + cid + "/orders", *key, "o" + cid,
                      R"({"date":"2017-01-1)" + std::to_string(c) +
                          R"(","line_items":[{"subscription_id":"S)" + std::to_string(c) +
                          R"(","offer_id":"E3","seats":)" + std::to_string(c) +
                          R"(,"billing_frequency":"monthly"}]})")
                    .status,
                201);
    }
  }
  for (const char* through : {"2017-01-31", "2017-02-28", "2017-03-31", "2017-04-30"})
    ASSERT_EQ(write("POST", "/v1/billingruns", op_, std::string("run-") + through,
                    std::string(R"({"through":")") + through + R"("})")
                  .status,
              200);
  // The operator's whole listing is the CLI's `invoices`, in its order.
  Reply all_reply = get("/v1/invoices?limit=1000", op_);
  ASSERT_EQ(all_reply.status, 200) << all_reply.body;
  const Json all = all_reply.json();
  RunResult cli = run(bin() + " invoices --db " + db_);
  ASSERT_EQ(cli.status, 0) << cli.out;
  std::vector<std::string> cli_ids;
  for (const std::string& line : lines_of(cli.out))
    cli_ids.push_back(Json::parse(line)["invoice_id"]);
  ASSERT_GE(cli_ids.size(), 20u);
  ASSERT_EQ(all["total_count"], cli_ids.size());
  for (size_t i = 0; i < cli_ids.size(); ++i)
    EXPECT_EQ(all["items"][i]["invoice_id"], cli_ids[i]) << i;
  // A partner's pages, two at a time, are its part of that order; next links until the end.
  std::vector<std::string> p1_ids;
  for (const auto& id : cli_ids)
    if (id.starts_with("P1:")) p1_ids.push_back(id.substr(3));
  std::vector<std::string> paged;
  std::string path = "/v1/invoices?limit=2";
  for (int guard = 0; !path.empty() && guard < 100; ++guard) {
    Reply page = get(path, p1_);
    ASSERT_EQ(page.status, 200) << page.body;
    const Json body = page.json();
    EXPECT_EQ(body["total_count"], p1_ids.size()) << page.body;
    for (const auto& item : body["items"]) paged.push_back(item["invoice_id"]);
    const Json& links = body["links"];
    path = links.contains("next") ? links["next"].get<std::string>() : "";
  }
  EXPECT_EQ(paged, p1_ids);
  EXPECT_EQ(get("/v1/invoices?limit=2&offset=1000", p1_).json()["items"].size(), 0u);
  // Dates: only the invoices dated in [from, to].
  Reply march_reply = get("/v1/invoices?limit=1000&from=2017-03-01&to=2017-03-31", p1_);
  ASSERT_EQ(march_reply.status, 200) << march_reply.body;
  const Json march = march_reply.json();
  ASSERT_GE(march["total_count"].get<int>(), 1);
  size_t in_march = 0;
  for (const auto& item : all["items"]) {
    const std::string date = item["invoice_date"];
    if (std::string(item["invoice_id"]).starts_with("P1:") && date >= "2017-03-01" &&
        date <= "2017-03-31")
      ++in_march;
  }
  EXPECT_EQ(march["total_count"], in_march);
  for (const auto& item : march["items"])
    EXPECT_EQ(std::string(item["invoice_date"]).substr(0, 7), "2017-03");
  // One customer's.
  Reply c2_reply = get("/v1/invoices?limit=1000&customer_id=C2", p1_);
  ASSERT_EQ(c2_reply.status, 200);
  const Json c2 = c2_reply.json();
  ASSERT_GE(c2["total_count"].get<int>(), 1);
  for (const auto& item : c2["items"]) EXPECT_EQ(item["customer_id"], "C2");
}

TEST_F(ServerTest, BillingInvoicesAndReports) {
  start();
  seed_p1();
  ASSERT_EQ(write("POST", "/v1/customers", p2_, "c1",
                  R"({"customer_id":"C1","country":"US","currency":"USD"})")
                .status,
            201);
  // A dry run computes the run over the ledger as of the last durable write and records nothing.
  Reply dry = write("POST", "/v1/billingruns", op_, "dry-1",
                    R"({"through":"2017-02-28","dry_run":true})");
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(dry.json()["dry_run"], true);
  EXPECT_GE(dry.json()["invoices_issued"].get<int>(), 1);
  EXPECT_EQ(get("/v1/invoices", p1_).json()["total_count"], 0);
  EXPECT_EQ(write("POST", "/v1/billingruns", op_, "dry-2", R"({"dry_run":"yes"})").status, 400);
  EXPECT_EQ(write("POST", "/v1/billingruns", p1_, "dry-3",
                  R"({"through":"2017-02-28","dry_run":true})")
                .status,
            403);
  Reply run_ = write("POST", "/v1/billingruns", op_, "bill-1", R"({"through":"2017-02-28"})");
  ASSERT_EQ(run_.status, 200) << run_.body;
  EXPECT_GE(run_.json()["invoices_issued"].get<int>(), 1);
  EXPECT_EQ(run_.json()["invoices_issued"], dry.json()["invoices_issued"]);
  EXPECT_EQ(run_.json()["totals"], dry.json()["totals"]);
  Reply invoices = get("/v1/invoices", p1_);
  ASSERT_EQ(invoices.status, 200);
  ASSERT_GE(invoices.json()["total_count"].get<int>(), 1);
  Json first = invoices.json()["items"][0];
  EXPECT_EQ(first["customer_id"], "C1");
  std::string id = first["invoice_id"];
  EXPECT_EQ(id.find(':'), std::string::npos);
  EXPECT_EQ(get("/v1/invoices/" + id, p1_).json()["invoice_id"], id);
  Reply lines = get("/v1/invoices/" + id + "/lineitems", p1_);
  ASSERT_EQ(lines.status, 200);
  EXPECT_EQ(lines.json()["items"][0]["subscription_id"], "S1");
  EXPECT_EQ(get("/v1/invoices", p2_).json()["total_count"], 0);
  EXPECT_EQ(get("/v1/invoices", op_).json()["total_count"], invoices.json()["total_count"]);
  Reply csv = get("/v1/reconciliation?from=2017-01-01&to=2017-12-31", p1_);
  EXPECT_EQ(csv.headers["Content-Type"], "text/csv");
  EXPECT_EQ(csv.body.rfind("InvoiceId,InvoiceDate,PartnerId", 0), 0u);
  EXPECT_NE(csv.body.find(",S1,"), std::string::npos);
  EXPECT_EQ(csv.body.find("P1:"), std::string::npos);
  EXPECT_EQ(get("/v1/reconciliation", p1_).status, 400);
  Reply renewals = get("/v1/renewals?from=2018-01-01&to=2018-12-31", p1_);
  ASSERT_EQ(renewals.status, 200);
  ASSERT_EQ(renewals.json()["total_count"], 2);  // by term end, then id
  EXPECT_EQ(renewals.json()["items"][0]["subscription_id"], "A1");
  EXPECT_EQ(renewals.json()["items"][1]["subscription_id"], "S1");
  EXPECT_EQ(get("/v1/renewals?from=2018-01-01&to=2018-12-31", p2_).json()["total_count"], 0);
  // Billing runs sum every partner: never in a partner's activity log.
  Reply audit = get("/v1/auditrecords?limit=1000", p1_);
  EXPECT_EQ(audit.body.find("BillingRun"), std::string::npos);
  EXPECT_NE(audit.body.find("InvoiceIssued"), std::string::npos);
  // Replay of the billing run.
  Reply again = write("POST", "/v1/billingruns", op_, "bill-1", R"({"through":"2017-02-28"})");
  EXPECT_EQ(again.headers["Idempotent-Replayed"], "true");
}

TEST_F(ServerTest, ASecondPartnerSeesNoneOfTheFirstsResources) {
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
  // Hundreds of requests against a server built with ASan outlast the test timeout here; the
  // GCC build runs this test in full.
  GTEST_SKIP() << "isolation sweep runs in the GCC build (too slow under ASan)";
#endif
#endif
  start();
  seed_p1();
  ASSERT_EQ(write("POST", "/v1/customers/C1/agreements", p1_, "ag1",
                  R"({"agreement_type":"MCA","date_agreed":"2017-01-10","contact":{"first_name":"A","last_name":"B","email":"a@b.c"}})")
                .status,
            201);
  ASSERT_EQ(write("POST", "/v1/billingruns", op_, "bill", R"({"through":"2017-02-28"})").status,
            200);
  std::string invoice = get("/v1/invoices", p1_).json()["items"][0]["invoice_id"];
  for (const std::string& target : std::vector<std::string>{
           "/v1/customers/C1", "/v1/customers/C1/orders", "/v1/customers/C1/orders/o1",
        "/v1/customers/C1/subscriptions", "/v1/customers/C1/subscriptions/S1",
        "/v1/customers/C1/subscriptions/S1/addons", "/v1/customers/C1/subscriptions/S1/conversions",
        "/v1/customers/C1/agreements", std::string("/v1/invoices/") + invoice,
        std::string("/v1/invoices/") + invoice + "/lineitems"})
    EXPECT_EQ(get(target, p2_).status, 404) << target;
  for (const auto& [method, target, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", "/v1/customers/C1/orders", R"({"line_items":[{"offer_id":"E3","seats":1,"billing_frequency":"monthly"}]})"},
           {"PATCH", "/v1/customers/C1/subscriptions/S1", R"({"seats":3})"},
           {"POST", "/v1/customers/C1/subscriptions/S1/conversions", R"({"billing_frequency":"monthly"})"},
           {"POST", "/v1/customers/C1/subscriptions/S1/renewals", "{}"},
           {"POST", "/v1/customers/C1/agreements", R"({"agreement_type":"X","date_agreed":"2017-01-10","contact":{"first_name":"A","last_name":"B","email":"a@b.c"}})"}})
    EXPECT_EQ(write(method, target, p2_, "w-" + std::to_string(target.size()), body).status, 404)
        << method << " " << target;
  // P2's own customer C2 cannot reach P1's subscription through its own path either.
  ASSERT_EQ(write("POST", "/v1/customers", p2_, "c2", R"({"customer_id":"C1","country":"US","currency":"USD"})").status, 201);
  EXPECT_EQ(get("/v1/customers/C1/subscriptions/S1", p2_).status, 404);
  Reply audit = get("/v1/auditrecords?limit=1000", p2_);
  ASSERT_EQ(audit.status, 200);
  const Json records = audit.json();  // held: a range-for over a temporary's member dangles
  ASSERT_FALSE(records["items"].empty());
  for (const auto& item : records["items"]) {
    std::string type = item["type"];
    EXPECT_TRUE(type == "PartnerRegistered" || type == "CustomerCreated" ||
                type == "OfferDefined" || type == "PricePublished")
        << item.dump();
    if (type == "PartnerRegistered") {
      EXPECT_EQ(item["data"]["partner_id"], "P2");
    }
  }
  EXPECT_EQ(audit.body.find("P1"), std::string::npos);
  EXPECT_EQ(audit.body.find("S1"), std::string::npos);
}

TEST_F(ServerTest, BodyOverOneMebibyteIs413) {
  start();
  std::string huge = R"({"customer_id":"C1","country":"US","currency":"USD","company_name":")" +
                     std::string((1 << 20) + 10, 'x') + "\"}";
  Reply r = write("POST", "/v1/customers", p1_, "big", huge);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.code(), "PAYLOAD_TOO_LARGE");
  EXPECT_EQ(get("/v1/customers", p1_).json()["total_count"], 0);
}

TEST_F(ServerTest, ThrottlesAPartnerWithRetryAfterAndNotTheOthers) {
  start({"--write-rate", "1", "--read-rate", "1000"});
  int throttled = 0;
  std::string retry_after;
  for (int i = 0; i < 5; ++i) {  // a bucket holds two seconds' worth: 2 pass at once
    Reply r = write("POST", "/v1/customers", p1_, "t" + std::to_string(i),
                    R"({"customer_id":"C)" + std::to_string(i) + R"(","country":"US","currency":"USD"})");
    if (r.status == 429) {
      ++throttled;
      retry_after = r.headers["Retry-After"];
      EXPECT_EQ(r.code(), "THROTTLED");
    }
  }
  EXPECT_GE(throttled, 2);
  EXPECT_GE(std::stoi(retry_after), 1);
  EXPECT_EQ(write("POST", "/v1/customers", p2_, "u1",
                  R"({"customer_id":"C1","country":"US","currency":"USD"})")
                .status,
            201);
  EXPECT_NE(get("/metrics", "").body.find("subledger_throttled_total "), std::string::npos);
}

TEST_F(ServerTest, SigtermDrainsAndExitsZeroWithEverythingDurable) {
  start();
  seed_p1();
  EXPECT_EQ(server_->stop(SIGTERM), 0);
  RunResult state = run(bin() + " state --db " + db_ + " P1:S1");
  EXPECT_EQ(state.status, 0);
  EXPECT_NE(state.out.find("\"seats\":10"), std::string::npos) << state.out;
  RunResult verify = run(bin() + " replay --verify --db " + db_ + " 2>/dev/null");
  EXPECT_EQ(verify.status, 0) << verify.out;
}

TEST_F(ServerTest, KillNineUnderABurstLosesNoAcknowledgedWriteAndAppliesNoneTwice) {
  start();
  constexpr int kWriters = 4, kEach = 60;
  std::mutex mutex;
  std::set<int> acknowledged;
  std::atomic<bool> killed{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w, port = server_->port()] {
      for (int i = 0; i < kEach && !killed; ++i) {
        int n = w * kEach + i;
        Reply r = request(port, "POST", "/v1/customers", p1_,
                          R"({"customer_id":"K)" + std::to_string(n) +
                              R"(","country":"US","currency":"USD"})",
                          {{"MS-RequestId", "k" + std::to_string(n)}});
        if (r.status == 201) {
          std::lock_guard lock(mutex);
          acknowledged.insert(n);
        }
      }
    });
  }
  while (true) {
    {
      std::lock_guard lock(mutex);
      if (acknowledged.size() >= 40) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(server_->stop(SIGKILL), -SIGKILL);
  killed = true;
  for (auto& t : writers) t.join();
  start();
  // Every client retries every request with its MS-RequestId: acknowledged ones replay.
  for (int n = 0; n < kWriters * kEach; ++n) {
    Reply r = write("POST", "/v1/customers", p1_, "k" + std::to_string(n),
                    R"({"customer_id":"K)" + std::to_string(n) +
                        R"(","country":"US","currency":"USD"})");
    ASSERT_EQ(r.status, 201) << n << " " << r.body;
    if (acknowledged.count(n)) {
      EXPECT_EQ(r.headers["Idempotent-Replayed"], "true") << "acknowledged write " << n << " lost";
    }
  }
  EXPECT_EQ(get("/v1/customers?limit=1000", p1_).json()["total_count"], kWriters * kEach);
  EXPECT_EQ(server_->stop(SIGTERM), 0);
  RunResult verify = run(bin() + " replay --verify --db " + db_ + " 2>/dev/null");
  EXPECT_EQ(verify.status, 0) << verify.out;
}

TEST_F(ServerTest, ServesItsOpenApiDocumentWithoutAKey) {
  start();
  Reply r = get("/openapi.json", "");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_EQ(r.json(), Json::parse(read_file(SUBLEDGER_OPENAPI_DOCUMENT)));
  EXPECT_EQ(r.json()["openapi"], "3.1.0");
}

// The check behind every request of this file: a body or a status the document does not declare
// is refused (so a test passing means its responses matched).
TEST(OpenApiCheck, RefusesWhatTheDocumentDoesNotDeclare) {
  auto problems = [](const std::string& method, const std::string& target, int status,
                     const std::string& body,
                     std::map<std::string, std::string> headers = {{"Content-Type",
                                                                    "application/json"}}) {
    return OpenApiCheck::instance().problems(method, target, Reply{status, body, headers});
  };
  const std::string customer =
      R"({"customer_id":"C1","partner_id":"P1","country":"US","currency":"USD","company_name":"",)"
      R"("organization_registration_number":"","phone":"","middle_name":""})";
  EXPECT_EQ(problems("GET", "/v1/customers/C1", 200, customer), "");
  EXPECT_NE(problems("GET", "/v1/customers/C1", 200, R"({"customer_id":"C1"})"), "");
  EXPECT_NE(problems("GET", "/v1/customers/C1", 200,
                     customer.substr(0, customer.size() - 1) + R"(,"extra":1})"),
            "");
  EXPECT_NE(problems("GET", "/v1/customers/C1", 500, R"({"code":"INTERNAL","description":"x"})"),
            "");
  EXPECT_NE(problems("GET", "/v1/customers/C1", 404, R"({"code":"THROTTLED","description":"x"})"),
            "");
  EXPECT_NE(problems("POST", "/v1/customers", 429, R"({"code":"THROTTLED","description":"x"})"),
            "")
      << "429 without Retry-After";
  EXPECT_EQ(problems("GET", "/v1/nothing", 404, R"({"code":"NOT_FOUND","description":"x"})"), "");
  EXPECT_NE(problems("GET", "/v1/nothing", 200, "{}"), "");
  EXPECT_EQ(problems("DELETE", "/v1/customers", 405,
                     R"({"code":"METHOD_NOT_ALLOWED","description":"x"})"),
            "");
  EXPECT_NE(problems("GET", "/v1/reconciliation?from=2017-01-01&to=2017-01-31", 200, "a,b\r\n"),
            "")
      << "CSV declared as text/csv, not JSON";
}

}  // namespace
}  // namespace subledger::testing
