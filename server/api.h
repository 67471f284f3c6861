// The routes of SERVER.md, apart from HTTP transport: a request in, exactly one response out
// (through a callback, possibly from another thread). Authentication, partner scope, throttling,
// idempotency (MS-RequestId), If-Match, and the translation of ledger codes to statuses live here;
// the ledger work runs on the command stream's thread, so every write shares the group commit and
// every answer that rests on a write leaves only after that write is durable.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "events/date.h"
#include "ledger/command_stream.h"
#include "server/keys.h"
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
};

struct ApiOptions {
  // Requests per second (SERVER.md: a bucket holds two seconds' worth; 0 turns a limit off).
  double read_rate = 1000, write_rate = 500, customer_rate = 100;
  std::function<Date()> today;  // the date of a write without `date`; default: today in UTC
  // The ledger's directory: a dry billing run opens it read-only beside the writer, on a thread
  // of its own, as `bill --dry-run` does ("" refuses dry runs).
  std::string db_dir;
};

class Api {
 public:
  Api(CommandStream& stream, const KeyRing& keys, Metrics& metrics, ApiOptions options);
  using Done = std::function<void(HttpResponse)>;
  // Calls `done` exactly once, on this thread or on the command stream's.
  void handle(HttpRequest request, Done done);
  // Stop taking ledger work (SIGTERM): /readyz turns 503, writes get 503 UNAVAILABLE.
  void set_draining() { draining_ = true; }
  // Waits for a dry run in progress (its answer is posted to the I/O context it came from: call
  // this while that context still exists).
  void join_background();
  ~Api() { join_background(); }

 private:
  struct Call;
  void dispatch(Call& call);
  void run(Call& call, std::function<HttpResponse(Ledger&)> work);
  void write(Call& call, std::vector<Command> commands,
             std::function<std::optional<HttpResponse>(Ledger&)> precheck,
             std::function<HttpResponse(Ledger&, const Ledger::GroupResult&)> render,
             bool line_indexed = false);
  void dry_run(Call& call, Command command);

  CommandStream& stream_;
  const KeyRing& keys_;
  Metrics& metrics_;
  ApiOptions options_;
  TokenBuckets reads_, writes_, customers_;
  std::atomic<bool> draining_{false};
  // One dry run at a time: each holds a second copy of the ledger's state.
  std::atomic<bool> dry_run_busy_{false};
  std::mutex background_mutex_;
  std::thread background_;
};

// The status SERVER.md gives a ledger code (400, 404, 409 or 422).
int status_of_code(const std::string& code);
// An error body {"code", "description"}.
HttpResponse error_response(int status, const std::string& code, const std::string& description);

}  // namespace subledger::server
