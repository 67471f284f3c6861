// `subledger serve`: the HTTP/JSON face of the ledger (SERVER.md) on Boost.Beast over Asio.
// Asynchronous throughout: a few I/O threads serve every connection; the ledger's work runs on the
// command stream's thread (one owner of the Ledger), so a slow client never holds a worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <string>

namespace subledger::server {

struct ServeOptions {
  std::string db, keys_file;
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one (printed)
  std::string tls_cert, tls_key;          // both or neither; without them loopback only
  // Requests per second; a bucket holds two seconds' worth; 0 turns a limit off (SERVER.md).
  double read_rate = 1000, write_rate = 500, customer_rate = 100;
  size_t max_connections = 1024;
  // Not given: lowered to fit the descriptor limit (with a warning); given: refused when it
  // does not fit.
  bool max_connections_given = false;
  // A connection that has not authenticated is closed this long after its accept (requests
  // without a key do not renew it), and goes first when connections run out.
  int unauthenticated_seconds = 5;
  size_t body_bytes_max = 1 << 20;    // 413 beyond
  size_t header_bytes_max = 16 << 10;  // 431 beyond
  int timeout_seconds = 30;  // for a whole request to arrive, counted from the previous answer
  // A 429 is sent this long after it is decided (its Retry-After stands): a client that asks
  // again at once, ignoring Retry-After, gets one answer per pause per connection instead of
  // keeping a core busy with refusals that starve the other partners.
  std::chrono::milliseconds throttle_pause{250};
  int threads = 2;           // I/O threads
  int verbosity = 0;         // -1: warnings only (-q); 0: access log; 1: debug (-v)
  size_t batch_commands_max = 4096;
};

// Runs until SIGTERM or SIGINT, then drains and returns 0; 2 with a message on stderr when it
// cannot start. Prints one line on stdout once listening: {"listening":"HOST:PORT","tls":BOOL}.
int serve(const ServeOptions& options, std::ostream& out);

}  // namespace subledger::server
