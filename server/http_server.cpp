#include "server/http_server.h"

#include <array>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <list>
#include <map>
#include <optional>
#include <sys/resource.h>
#include <thread>
#include <vector>

#include "server/api.h"
#include "server/ledger_host.h"
#include "server/keys.h"
#include "server/metrics.h"

namespace subledger::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

// A connection that has not authenticated yet, as the listener sees it: the first to go when
// connections run out (SERVER.md: idle sockets with no key must not lock partners out).
class Evictable {
 public:
  virtual ~Evictable() = default;
  virtual void evict() = 0;  // closes the connection (from any thread)
};

// The connections that have not authenticated yet, oldest first, with their client addresses.
class Unauthenticated {
 public:
  uint64_t add(const std::string& address, std::weak_ptr<Evictable> session) {
    std::lock_guard lock(mutex_);
    uint64_t id = ++next_;
    entries_.emplace(id, Entry{address, std::move(session)});
    ++per_address_[address];
    return id;
  }
  void remove(uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    if (--per_address_[it->second.address] == 0) per_address_.erase(it->second.address);
    entries_.erase(it);
  }
  size_t from(const std::string& address) const {
    std::lock_guard lock(mutex_);
    auto it = per_address_.find(address);
    return it == per_address_.end() ? 0 : it->second;
  }
  // Closes the oldest unauthenticated connection (of `address` when not ""). False when none.
  bool evict_oldest(const std::string& address = "") {
    std::shared_ptr<Evictable> victim;
    {
      std::lock_guard lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (!address.empty() && it->second.address != address) continue;
        victim = it->second.session.lock();
        if (--per_address_[it->second.address] == 0) per_address_.erase(it->second.address);
        entries_.erase(it);
        break;
      }
    }
    if (!victim) return false;
    victim->evict();
    return true;
  }

 private:
  struct Entry {
    std::string address;
    std::weak_ptr<Evictable> session;
  };
  mutable std::mutex mutex_;
  uint64_t next_ = 0;
  std::map<uint64_t, Entry> entries_;  // by accept order
  std::map<std::string, size_t> per_address_;
};

struct Shared {
  Api& api;
  Metrics& metrics;
  const ServeOptions& options;
  std::shared_ptr<spdlog::logger> access;
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};
  Unauthenticated unauthenticated;
};

// RFC 9112 6.3: a request's Transfer-Encoding must end in `chunked` (applied once); a coding this
// server does not decode before it is 501. "" when acceptable, else the status and why.
std::pair<int, std::string> transfer_encoding_error(std::string_view field) {
  std::vector<std::string> codings;
  while (true) {
    size_t comma = field.find(',');
    std::string c(field.substr(0, comma));
    c.erase(0, c.find_first_not_of(" \t"));
    c.erase(c.find_last_not_of(" \t") + 1);
    std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (!c.empty()) codings.push_back(c);
    if (comma == std::string_view::npos) break;
    field = field.substr(comma + 1);
  }
  if (codings.empty() || codings.back() != "chunked")
    return {400, "Transfer-Encoding must end in chunked (RFC 9112 6.3)"};
  if (codings.size() > 1) {
    if (std::count(codings.begin(), codings.end(), "chunked") > 1)
      return {400, "chunked must be applied once (RFC 9112 7)"};
    return {501, "only the chunked transfer coding is accepted"};
  }
  return {0, ""};
}

bool is_http_error(const beast::error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

template <class Derived>
class Session : public Evictable {
 public:
  explicit Session(Shared& shared)
      : shared_(shared),
        unauthenticated_until_(std::chrono::steady_clock::now() +
                               std::chrono::seconds(shared.options.unauthenticated_seconds)) {
    shared_.metrics.connection_opened();
  }
  ~Session() override {
    if (registered_) shared_.unauthenticated.remove(registration_);
    shared_.metrics.connection_closed();
  }
  // Counted among the unauthenticated connections until a request authenticates.
  void register_unauthenticated(const std::string& address) {
    registration_ = shared_.unauthenticated.add(address, derived().weak_from_this());
    registered_ = true;
  }
  void evict() override {
    net::post(derived().stream().get_executor(), [self = derived().shared_from_this()] {
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream()).socket().close(ignored);
    });
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(shared_.options.body_bytes_max);
    parser_->header_limit(static_cast<std::uint32_t>(shared_.options.header_bytes_max));
    // A connection without a key gets a short deadline from its accept, which requests without a
    // key (/healthz) do not renew.
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(shared_.options.timeout_seconds);
    if (!authenticated_) deadline = std::min(deadline, unauthenticated_until_);
    beast::get_lowest_layer(derived().stream()).expires_at(deadline);
    http::async_read_header(
        derived().stream(), buffer_, *parser_,
        beast::bind_front_handler(&Session::on_header, derived().shared_from_this()));
  }

 protected:
  Derived& derived() { return static_cast<Derived&>(*this); }

 private:
  // The header is in: check the framing before reading a body, answer Expect: 100-continue.
  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read(ec, 0);
    auto& req = parser_->get();
    version_ = req.version();
    auto refuse = [&](int status, const std::string& why) {
      started_ = std::chrono::steady_clock::now();
      keep_alive_ = false;  // what follows the header cannot be framed: the connection ends
      shared_.in_flight.fetch_add(1);
      send(error_response(status, status == 501 ? "NOT_IMPLEMENTED" : "INVALID_ARGUMENT", why));
    };
    if (auto te = req[http::field::transfer_encoding]; !te.empty() ||
                                                       req.count(http::field::transfer_encoding)) {
      if (req.count(http::field::transfer_encoding) > 1)
        return refuse(400, "Transfer-Encoding must be sent once");
      auto [status, why] = transfer_encoding_error(std::string_view(te.data(), te.size()));
      if (status) return refuse(status, why);
      if (req.count(http::field::content_length))
        return refuse(400, "a request has Transfer-Encoding or Content-Length, not both "
                           "(RFC 9112 6.3)");
    }
    if (req.count(http::field::authorization) > 1)
      return refuse(400, "send one Authorization header");
    auto expect = req[http::field::expect];
    if (!expect.empty() && !parser_->is_done()) {
      if (!beast::iequals(expect, "100-continue"))
        return refuse(417, "the only expectation served is 100-continue");
      // RFC 9110 10.1.1: the client waits for this before it sends the body.
      auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                        version_);
      return http::async_write(
          derived().stream(), *interim,
          [self = derived().shared_from_this(), interim](beast::error_code e, std::size_t) {
            if (e) return;
            self->read_body();
          });
    }
    read_body();
  }

  void read_body() {
    http::async_read(derived().stream(), buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, derived().shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return derived().do_eof();
    started_ = std::chrono::steady_clock::now();
    keep_alive_ = false;
    if (ec == http::error::body_limit) {
      shared_.in_flight.fetch_add(1);
      return send(error_response(413, "PAYLOAD_TOO_LARGE",
                                 "the body is over " +
                                     std::to_string(shared_.options.body_bytes_max) + " bytes"));
    }
    if (ec == http::error::header_limit) {
      shared_.in_flight.fetch_add(1);
      return send(error_response(431, "INVALID_ARGUMENT",
                                 "the request's headers are over " +
                                     std::to_string(shared_.options.header_bytes_max) + " bytes"));
    }
    if (ec && is_http_error(ec)) {
      shared_.in_flight.fetch_add(1);
      return send(error_response(400, "INVALID_ARGUMENT", "malformed HTTP: " + ec.message()));
    }
    if (ec) return;  // timed out or closed: the connection ends here
    auto& req = parser_->get();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    correlation_ = std::string(req["MS-CorrelationId"]);
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.body = std::move(req.body());
    request.authorization = std::string(req[http::field::authorization]);
    request.request_id = std::string(req["MS-RequestId"]);
    request.if_match = std::string(req[http::field::if_match]);
    method_ = request.method;
    shared_.in_flight.fetch_add(1);
    auto self = derived().shared_from_this();
    shared_.api.handle(std::move(request), [self](HttpResponse response) {
      if (!response.key_id.empty()) self->authenticated_ = true;
      auto executor = self->stream().get_executor();
      if (response.status == 429) {
        auto pause = std::make_shared<net::steady_timer>(executor,
                                                         self->shared_.options.throttle_pause);
        return pause->async_wait(
            [self, pause, response = std::move(response)](beast::error_code) mutable {
              self->send(std::move(response));
            });
      }
      net::post(executor, [self, response = std::move(response)]() mutable {
        self->send(std::move(response));
      });
    });
  }

  void send(HttpResponse r) {
    if (authenticated_ && registered_) {
      shared_.unauthenticated.remove(registration_);
      registered_ = false;
    }
    if (r.stream) return send_streamed(std::move(r));
    auto res = response_head<http::string_body>(r);
    res->body() = std::move(r.body);
    res->prepare_payload();
    log_response(r);
    response_ = res;
    beast::get_lowest_layer(derived().stream())
        .expires_after(std::chrono::seconds(shared_.options.timeout_seconds));
    http::async_write(derived().stream(), *res,
                      beast::bind_front_handler(&Session::on_write, derived().shared_from_this(),
                                                res->need_eof()));
  }

  // Status line and headers every response carries: server, type, correlation id, r's own.
  template <class Body>
  std::shared_ptr<http::response<Body>> response_head(const HttpResponse& r) const {
    auto res = std::make_shared<http::response<Body>>(static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "subledger");
    res->set(http::field::content_type, r.content_type);
    if (!correlation_.empty()) res->set("MS-CorrelationId", correlation_);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive_ && !shared_.draining.load());
    return res;
  }

  void log_response(const HttpResponse& r) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    shared_.metrics.request(r.route, r.status, seconds);
    shared_.access->info("{} {} {} {:.3f}ms key={}", method_, r.route, r.status, seconds * 1e3,
                         r.key_id.empty() ? "-" : r.key_id);
  }

  // A body produced piece by piece: chunked, each piece made only after the one before it was
  // written, so a client that does not read holds one piece until the write times out.
  void send_streamed(HttpResponse r) {
    auto res = response_head<http::empty_body>(r);
    res->chunked(true);
    log_response(r);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    producer_ = std::move(r.stream);
    auto first = std::make_shared<std::string>(std::move(r.body));
    bool close = res->need_eof();
    beast::get_lowest_layer(derived().stream())
        .expires_after(std::chrono::seconds(shared_.options.timeout_seconds));
    http::async_write_header(
        derived().stream(), *serializer,
        [self = derived().shared_from_this(), res, serializer, first, close](beast::error_code ec,
                                                                             std::size_t) {
          if (ec) return self->abort_stream();
          self->write_piece(first, close);
        });
  }

  void write_piece(std::shared_ptr<std::string> piece, bool close) {
    while (piece->empty()) {
      auto more = producer_(*piece);
      if (!more.ok()) {
        shared_.access->warn("a streamed answer failed: {}", std::string(more.status().message()));
        return abort_stream();
      }
      if (!*more) {
        beast::get_lowest_layer(derived().stream())
            .expires_after(std::chrono::seconds(shared_.options.timeout_seconds));
        return net::async_write(derived().stream(), http::make_chunk_last(),
                                [self = derived().shared_from_this(), close](
                                    beast::error_code ec, std::size_t n) {
                                  self->producer_ = nullptr;
                                  self->on_write(close, ec, n);
                                });
      }
    }
    beast::get_lowest_layer(derived().stream())
        .expires_after(std::chrono::seconds(shared_.options.timeout_seconds));
    net::async_write(derived().stream(), http::make_chunk(net::buffer(*piece)),
                     [self = derived().shared_from_this(), piece, close](beast::error_code ec,
                                                                         std::size_t) {
                       if (ec) return self->abort_stream();
                       piece->clear();
                       self->write_piece(piece, close);
                     });
  }

  void abort_stream() {
    producer_ = nullptr;
    shared_.in_flight.fetch_sub(1);
    beast::error_code ignored;
    beast::get_lowest_layer(derived().stream()).socket().close(ignored);
  }

  void on_write(bool close, beast::error_code ec, std::size_t) {
    shared_.in_flight.fetch_sub(1);
    response_.reset();
    if (ec) return;
    if (close) return derived().do_eof();
    do_read();
  }

  Shared& shared_;
  std::chrono::steady_clock::time_point unauthenticated_until_;
  bool authenticated_ = false, registered_ = false;
  uint64_t registration_ = 0;
  std::function<absl::StatusOr<bool>(std::string&)> producer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
  std::chrono::steady_clock::time_point started_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  std::string correlation_, method_;
};

class PlainSession : public Session<PlainSession>,
                     public std::enable_shared_from_this<PlainSession> {
 public:
  PlainSession(tcp::socket&& socket, Shared& shared)
      : Session<PlainSession>(shared), stream_(std::move(socket)) {}
  beast::tcp_stream& stream() { return stream_; }
  void start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&PlainSession::do_read, shared_from_this()));
  }
  void do_eof() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    // A lingering close: what the client still sends (a refused body) is read and dropped, bounded
    // in time and bytes, so that closing with unread data does not reset the connection before
    // the client has read the answer (a 413 is sent while the body is still arriving).
    stream_.expires_after(std::chrono::seconds(kLingerSeconds));
    drain(0);
  }

 private:
  static constexpr int kLingerSeconds = 2;
  static constexpr size_t kLingerBytesMax = 4 << 20;
  void drain(size_t drained) {
    stream_.async_read_some(
        net::buffer(discard_), [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
          if (!ec && drained + n <= kLingerBytesMax) self->drain(drained + n);
        });
  }
  beast::tcp_stream stream_;
  std::array<char, 16384> discard_{};
};

class TlsSession : public Session<TlsSession>, public std::enable_shared_from_this<TlsSession> {
 public:
  TlsSession(tcp::socket&& socket, ssl::context& context, Shared& shared)
      : Session<TlsSession>(shared), stream_(std::move(socket), context), timeout_(shared.options.timeout_seconds) {}
  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }
  void start() {
    auto self = shared_from_this();
    net::dispatch(stream_.get_executor(), [self] {
      beast::get_lowest_layer(self->stream_).expires_after(std::chrono::seconds(self->timeout_));
      self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
        if (!ec) self->do_read();
      });
    });
  }
  void do_eof() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(timeout_));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }

 private:
  beast::ssl_stream<beast::tcp_stream> stream_;
  int timeout_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor& acceptor, Shared& shared, ssl::context* tls)
      : ioc_(ioc), acceptor_(acceptor), shared_(shared), tls_(tls), retry_(ioc) {}
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors (or another accept error): retrying at once would spin on the same
      // error; wait, doubling up to a second, while connections close.
      backoff_ = std::min(std::chrono::milliseconds(1000),
                          backoff_.count() ? backoff_ * 2 : std::chrono::milliseconds(10));
      if (!warned_) shared_.access->warn("accept failed ({}): retrying in up to 1 s", ec.message());
      warned_ = true;
      retry_.expires_after(backoff_);
      retry_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (!e) self->accept();
      });
      return;
    }
    backoff_ = std::chrono::milliseconds(0);
    warned_ = false;
    beast::error_code ignored;
    std::string address = socket.remote_endpoint(ignored).address().to_string();
    const size_t max = shared_.options.max_connections;
    // Connections without a key make room: the oldest of this address beyond its share, and the
    // oldest of all when every connection is taken.
    if (shared_.unauthenticated.from(address) >= std::max<size_t>(1, max / 2))
      shared_.unauthenticated.evict_oldest(address);
    bool room = static_cast<size_t>(shared_.metrics.open_connections()) < max ||
                shared_.unauthenticated.evict_oldest();
    if (!room) {
      socket.close(ignored);  // every connection is an authenticated client's: refused at once
    } else {
      socket.set_option(tcp::no_delay(true), ignored);
      if (tls_) {
        auto session = std::make_shared<TlsSession>(std::move(socket), *tls_, shared_);
        session->register_unauthenticated(address);
        session->start();
      } else {
        auto session = std::make_shared<PlainSession>(std::move(socket), shared_);
        session->register_unauthenticated(address);
        session->start();
      }
    }
    accept();
  }
  net::io_context& ioc_;
  tcp::acceptor& acceptor_;
  Shared& shared_;
  ssl::context* tls_;
  net::steady_timer retry_;
  std::chrono::milliseconds backoff_{0};
  bool warned_ = false;
};

int fail(const std::string& message) {
  std::cerr << "subledger: " << message << "\n";
  return 2;
}

// host:port or [v6]:port. "" or why not.
std::string parse_listen(const std::string& text, tcp::endpoint& out) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size())
    return "--listen must be HOST:PORT, like 127.0.0.1:8080; got '" + text + "'";
  std::string host = text.substr(0, colon), port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return "--listen needs an IP address (or localhost); got '" + host + "'";
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), ::isdigit) ||
      std::stoi(port_text) > 65535)
    return "--listen port must be 0 to 65535; got '" + port_text + "'";
  out = tcp::endpoint(address, static_cast<unsigned short>(std::stoi(port_text)));
  return "";
}

// The descriptors the server may need: its connections, plus an allowance for the ledger's files,
// the reader threads' and a dry run's. Raises the soft limit when it is lower (up to the hard
// one). "" or why the server cannot start (or, when `may_lower`, lowers max_connections to fit).
std::string check_descriptor_budget(size_t& max_connections, bool may_lower,
                                    const std::shared_ptr<spdlog::logger>& log) {
  constexpr size_t kAllowance = 256;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return "";
  const rlim_t needed = static_cast<rlim_t>(max_connections + kAllowance);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed) return "";
  const size_t fits = limit.rlim_cur > kAllowance + 16 ? limit.rlim_cur - kAllowance : 0;
  if (may_lower && fits > 0) {
    log->warn("the descriptor limit is {} (hard {}): serving at most {} connections", limit.rlim_cur,
              limit.rlim_max, fits);
    max_connections = fits;
    return "";
  }
  return "--max-connections " + std::to_string(max_connections) + " needs about " +
         std::to_string(needed) + " file descriptors (" + std::to_string(kAllowance) +
         " for the ledger's files), but the limit is " + std::to_string(limit.rlim_cur) +
         " (hard " + std::to_string(limit.rlim_max) + "): raise it (ulimit -n) or pass " +
         (fits > 0 ? "--max-connections " + std::to_string(fits) + " or less"
                   : "a higher limit");
}

}  // namespace

int serve(const ServeOptions& options, std::ostream& out) {
  ServeOptions o = options;
  tcp::endpoint endpoint;
  if (std::string e = parse_listen(o.listen, endpoint); !e.empty()) return fail(e);
  const bool tls = !o.tls_cert.empty() || !o.tls_key.empty();
  if (tls && (o.tls_cert.empty() || o.tls_key.empty()))
    return fail("--tls-cert and --tls-key go together");
  if (!tls && !endpoint.address().is_loopback())
    return fail("without --tls-cert/--tls-key the server listens on loopback addresses only "
                "(bearer keys must not cross a network in clear); got " +
                endpoint.address().to_string());
  KeyRing keys;
  if (o.keys_file.empty()) return fail("serve needs --keys FILE (see subledger keys add)");
  if (std::string e = keys.load(o.keys_file); !e.empty()) return fail(e);

  std::unique_ptr<ssl::context> tls_context;
  if (tls) {
    tls_context = std::make_unique<ssl::context>(ssl::context::tls_server);
    beast::error_code ec;
    tls_context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    tls_context->use_certificate_chain_file(o.tls_cert, ec);
    if (ec) return fail("cannot use --tls-cert " + o.tls_cert + ": " + ec.message());
    tls_context->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) return fail("cannot use --tls-key " + o.tls_key + ": " + ec.message());
  }

  auto log = spdlog::get("subledger-serve");
  if (!log) log = spdlog::stderr_color_mt("subledger-serve");
  log->set_level(o.verbosity < 0 ? spdlog::level::warn
                 : o.verbosity > 0 ? spdlog::level::debug
                                   : spdlog::level::info);

  if (std::string e = check_descriptor_budget(o.max_connections, !o.max_connections_given, log);
      !e.empty())
    return fail(e);

  Metrics metrics;
  LedgerHost::Options host_options;
  host_options.dir = o.db;
  host_options.logger = log;
  host_options.batch_commands_max = o.batch_commands_max;
  host_options.on_batch = [&metrics](size_t n, uint64_t last_seq) { metrics.batch(n, last_seq); };
  std::string error;
  auto host = LedgerHost::open(std::move(host_options), error);
  if (!host) return fail(error);
  metrics.batch(0, host->current()->ledger->state().last_seq());
  // A failed writer is replaced by a read-only ledger, and that by a writer once the disk takes
  // writes again: checked beside the I/O threads.
  std::atomic<bool> supervising{true};
  std::thread supervisor([&] {
    while (supervising) {
      host->supervise();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  ApiOptions api_options;
  api_options.read_rate = o.read_rate;
  api_options.write_rate = o.write_rate;
  api_options.customer_rate = o.customer_rate;
  api_options.db_dir = o.db;
  auto api = std::make_unique<Api>(*host, keys, metrics, api_options);
  Shared shared{*api, metrics, o, log, {0}, {false}, {}};

  auto ioc = std::make_unique<net::io_context>(o.threads);
  {  // the I/O objects go before their io_context
    tcp::acceptor acceptor(*ioc);
    beast::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      supervising = false;
      supervisor.join();
      return fail("cannot listen on " + o.listen + ": " + ec.message());
    }
    tcp::endpoint bound = acceptor.local_endpoint();
    std::make_shared<Listener>(*ioc, acceptor, shared, tls_context.get())->accept();

    // A revoked key stops working within a second: the keys file is polled.
    net::steady_timer key_timer(*ioc);
    std::function<void()> poll_keys = [&] {
      key_timer.expires_after(std::chrono::milliseconds(250));
      key_timer.async_wait([&](beast::error_code e) {
        if (e) return;
        keys.poll();
        poll_keys();
      });
    };
    poll_keys();

    // SIGTERM / SIGINT: stop accepting, answer what is in flight, then stop.
    net::signal_set signals(*ioc, SIGINT, SIGTERM);
    net::steady_timer drain_timer(*ioc);
    auto drain_deadline = std::chrono::steady_clock::now();
    std::function<void()> wait_drained = [&] {
      drain_timer.expires_after(std::chrono::milliseconds(10));
      drain_timer.async_wait([&](beast::error_code) {
        if (shared.in_flight.load() == 0 || std::chrono::steady_clock::now() > drain_deadline) {
          ioc->stop();
          return;
        }
        wait_drained();
      });
    };
    signals.async_wait([&](beast::error_code e, int signal) {
      if (e) return;
      log->warn("signal {}: draining", signal);
      shared.draining = true;
      api->set_draining();
      beast::error_code ignored;
      acceptor.close(ignored);
      key_timer.cancel();
      drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      wait_drained();
    });

    nlohmann::ordered_json listening{
        {"listening", (bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                               : bound.address().to_string()) +
                          ":" + std::to_string(bound.port())},
        {"tls", tls}};
    out << listening.dump() << std::endl;
    log->info("serving {} on {}", o.db, listening.dump());

    std::vector<std::thread> threads;
    for (int i = 1; i < o.threads; ++i) threads.emplace_back([&] { ioc->run(); });
    ioc->run();
    for (auto& t : threads) t.join();
    api->join_background();  // a dry run posts its answer to this io_context
  }
  // Everything queued is decided, written and acknowledged; then the rows and the checkpoint.
  supervising = false;
  supervisor.join();
  std::string failure = host->stop();
  ioc.reset();  // sessions go before what they refer to
  api.reset();
  host.reset();
  if (!failure.empty()) return fail("the last write failed: " + failure);
  log->warn("stopped");
  return 0;
}

}  // namespace subledger::server
