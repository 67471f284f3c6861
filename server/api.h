// The routes of SERVER.md, apart from HTTP transport: a request in, exactly one response out
// (through a callback, possibly from another thread). Authentication, partner scope, throttling
// (charged by what a request costs), idempotency (MS-RequestId), If-Match, and the translation of
// ledger codes to statuses live here. One handler per route, keyed from the route table.
// Writes run on the command stream's thread, so every write shares the group commit and every
// answer that rests on a write leaves only after that write is durable; reads run on reader
// threads of their own against the ledger's read interfaces (LedgerHost), never on the thread that
// decides writes, and an answer never shows an event before it is durable.
#pragma once

#include <absl/status/statusor.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "events/date.h"
#include "server/keys.h"
#include "server/ledger_host.h"
#include "server/metrics.h"
#include "server/throttle.h"

namespace subledger::server {

struct HttpRequest {
  std::string method;  // GET, POST, PATCH, ...
  std::string target;  // path and query as sent
  std::string body;
  std::string authorization, request_id, if_match;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string route = "unmatched";  // the route template: a metrics label, never a raw path
  std::string key_id;               // who asked, for the access log
  // A body of any size produced piece by piece after `body` (sent chunked, each piece only once
  // the one before it was written: a client that does not read holds one piece). Each call
  // appends the next piece to its argument and returns true, false at the end, or an error (the
  // connection is then closed before the last chunk, so the client sees a truncated answer).
  std::function<absl::StatusOr<bool>(std::string&)> stream;
};

struct ApiOptions {
  // Requests per second (SERVER.md: a bucket holds two seconds' worth; 0 turns a limit off).
  double read_rate = 1000, write_rate = 500, customer_rate = 100;
  std::function<Date()> today;  // the date of a write without `date`; default: today in UTC
  // The ledger's directory: a dry billing run opens it read-only beside the writer, on a thread
  // of its own, as `bill --dry-run` does ("" refuses dry runs).
  std::string db_dir;
  int reader_threads = 2;
};

class Api {
 public:
  Api(LedgerHost& host, const KeyRing& keys, Metrics& metrics, ApiOptions options);
  using Done = std::function<void(HttpResponse)>;
  // Calls `done` exactly once, on this thread, a reader thread or the command stream's.
  void handle(HttpRequest request, Done done);
  // Stop taking ledger work (SIGTERM): /readyz turns 503, writes get 503 UNAVAILABLE.
  void set_draining() { draining_ = true; }
  // Waits for the reads and the dry run in progress (their answers are posted to the I/O context
  // they came from: call this while that context still exists).
  void join_background();
  ~Api() { join_background(); }

  // The cost of a read beyond the token it takes, in tokens: rows read from the store, and
  // entries of the ledger's memory examined.
  static constexpr double kRowsPerToken = 1, kEntriesPerToken = 1000;

 private:
  struct Call;
  struct Route;
  static const std::vector<Route>& routes();
  // What a read handler sees: the ledger's state and store under the read lock, and the index.
  struct ReadView {
    const Ledger& ledger;
    ActivityIndex& index;
    double cost = 0;  // tokens beyond the one taken
    const LedgerState& state() const { return ledger.state(); }
    const Store& store() const { return ledger.store(); }
  };
  using Json = nlohmann::ordered_json;

  // Route handlers (SERVER.md's table).
  void create_customer(Call& call);
  void list_customers(Call& call);
  void get_customer(Call& call);
  void update_customer(Call& call);
  void place_order(Call& call);
  void list_orders(Call& call);
  void get_order(Call& call);
  void list_subscriptions(Call& call);
  void get_subscription(Call& call);
  void patch_subscription(Call& call);
  void list_addons(Call& call);
  void list_conversions(Call& call);
  void convert_trial(Call& call);
  void renew(Call& call);
  void accept_agreement(Call& call);
  void list_agreements(Call& call);
  void list_invoices(Call& call);
  void get_invoice(Call& call);
  void invoice_lines(Call& call);
  void reconciliation(Call& call);
  void list_renewals(Call& call);
  void audit_records(Call& call);
  void operator_command(Call& call);
  void billing_run(Call& call);

  // Under the read lock; the answer leaves once what it saw is durable. On a reader thread, or
  // (`in_memory`: a lookup in the state, no store read) on the calling I/O thread when the lock
  // is free at once: the hand-over to a reader and back would cost more than the lookup.
  // `uses_index`: the activity index is caught up with the durable log first.
  enum class ReadKind { kReadsStore, kInMemory };
  void read(Call& call, std::function<HttpResponse(ReadView&)> work, bool uses_index = false,
            ReadKind kind = ReadKind::kReadsStore);
  void read_attempt(Call* call, std::shared_ptr<std::function<HttpResponse(ReadView&)>> work,
                    bool uses_index, bool may_retry, ReadKind kind = ReadKind::kReadsStore);
  // The read itself; with `only_if_free`, false (and nothing done) when the lock is held.
  bool answer_read(Call* call, const std::shared_ptr<std::function<HttpResponse(ReadView&)>>& work,
                   bool uses_index, bool may_retry, bool only_if_free);
  // On the command stream's thread (deciding and staging); answered once durable.
  void run(Call& call, std::function<HttpResponse(Ledger&)> work);
  void write(Call& call, std::vector<Command> commands,
             std::function<std::optional<HttpResponse>(Ledger&)> precheck,
             std::function<HttpResponse(Ledger&, const Ledger::GroupResult&)> render,
             bool line_indexed = false);
  // A command on the subscription of the path, in the caller's scope; false when answered.
  bool subscription_command(Call& call, const char* cmd, Json fields, std::vector<Command>& out);
  // A POST that sends one command about the path's subscription (`fields` allowed in its body,
  // `date` defaulting to today) and answers 200 with the subscription.
  void single_subscription_command(Call& call, const char* cmd,
                                   std::initializer_list<const char*> fields, const char* what);
  void dry_run(Call& call, Command command);
  void charge_read(const Call& call, double tokens);

  LedgerHost& host_;
  const KeyRing& keys_;
  Metrics& metrics_;
  ApiOptions options_;
  TokenBuckets reads_, writes_, customers_;
  std::atomic<bool> draining_{false};
  boost::asio::thread_pool readers_;
  // One dry run at a time: each holds a second copy of the ledger's state.
  std::atomic<bool> dry_run_busy_{false};
  std::mutex background_mutex_;
  std::thread background_;
};

// The status SERVER.md gives a ledger code (400, 404, 409, 422 or 503). The one place it is
// decided.
int status_of_code(const std::string& code);
// An error body {"code", "description"}.
HttpResponse error_response(int status, const std::string& code, const std::string& description);

}  // namespace subledger::server
