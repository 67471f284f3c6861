#include "server/http_server.h"

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
#include <optional>
#include <thread>
#include <vector>

#include "ledger/command_stream.h"
#include "ledger/ledger.h"
#include "server/api.h"
#include "server/keys.h"
#include "server/metrics.h"

namespace subledger::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

struct Shared {
  Api& api;
  Metrics& metrics;
  const ServeOptions& options;
  std::shared_ptr<spdlog::logger> access;
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};
};

bool is_http_error(const beast::error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

template <class Derived>
class Session {
 public:
  explicit Session(Shared& shared) : shared_(shared) { shared_.metrics.connection_opened(); }
  ~Session() { shared_.metrics.connection_closed(); }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(shared_.options.body_bytes_max);
    parser_->header_limit(static_cast<std::uint32_t>(shared_.options.header_bytes_max));
    beast::get_lowest_layer(derived().stream())
        .expires_after(std::chrono::seconds(shared_.options.timeout_seconds));
    http::async_read(derived().stream(), buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, derived().shared_from_this()));
  }

 protected:
  Derived& derived() { return static_cast<Derived&>(*this); }

 private:
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
      auto executor = self->stream().get_executor();
      net::post(executor, [self, response = std::move(response)]() mutable {
        self->send(std::move(response));
      });
    });
  }

  void send(HttpResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "subledger");
    res->set(http::field::content_type, r.content_type);
    if (!correlation_.empty()) res->set("MS-CorrelationId", correlation_);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive_ && !shared_.draining.load());
    res->body() = std::move(r.body);
    res->prepare_payload();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    shared_.metrics.request(r.route, r.status, seconds);
    shared_.access->info("{} {} {} {:.3f}ms key={}", method_, r.route, r.status, seconds * 1e3,
                         r.key_id.empty() ? "-" : r.key_id);
    response_ = res;
    http::async_write(derived().stream(), *res,
                      beast::bind_front_handler(&Session::on_write, derived().shared_from_this(),
                                                res->need_eof()));
  }

  void on_write(bool close, beast::error_code ec, std::size_t) {
    shared_.in_flight.fetch_sub(1);
    response_.reset();
    if (ec) return;
    if (close) return derived().do_eof();
    do_read();
  }

  Shared& shared_;
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
  }

 private:
  beast::tcp_stream stream_;
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
      : ioc_(ioc), acceptor_(acceptor), shared_(shared), tls_(tls) {}
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (static_cast<size_t>(shared_.metrics.open_connections()) >=
          shared_.options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // over the connection limit: refused at once
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        if (tls_)
          std::make_shared<TlsSession>(std::move(socket), *tls_, shared_)->start();
        else
          std::make_shared<PlainSession>(std::move(socket), shared_)->start();
      }
    }
    accept();
  }
  net::io_context& ioc_;
  tcp::acceptor& acceptor_;
  Shared& shared_;
  ssl::context* tls_;
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

}  // namespace

int serve(const ServeOptions& o, std::ostream& out) {
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

  Ledger::Options ledger_options;
  ledger_options.logger = log;
  // Batches here are small (what arrived during one synced write) and a busy customer's row is
  // re-encoded whole with each: rows every 64 batches, and whenever the stream goes idle, cost a
  // catch-up of at most 64 batches at the next open or in a reader beside the server.
  ledger_options.projection_every_commits = 64;
  std::string error;
  auto ledger = Ledger::open(o.db, std::move(ledger_options), error);
  if (!ledger) return fail(error);

  Metrics metrics;
  metrics.batch(0, ledger->state().last_seq());
  CommandStream::Options stream_options;
  stream_options.batch_commands_max = o.batch_commands_max;
  Ledger* owned = ledger.get();
  stream_options.on_batch = [&metrics, owned](size_t n) {
    metrics.batch(n, owned->state().last_seq());
  };
  auto stream = std::make_unique<CommandStream>(*ledger, std::move(stream_options));
  ApiOptions api_options;
  api_options.read_rate = o.read_rate;
  api_options.write_rate = o.write_rate;
  api_options.customer_rate = o.customer_rate;
  api_options.db_dir = o.db;
  auto api = std::make_unique<Api>(*stream, keys, metrics, api_options);
  Shared shared{*api, metrics, o, log};

  auto ioc = std::make_unique<net::io_context>(o.threads);
  {  // the I/O objects go before their io_context
    tcp::acceptor acceptor(*ioc);
    beast::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      stream->stop();
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
  stream->stop();
  std::string failure = stream->failure();
  ioc.reset();  // sessions go before what they refer to
  api.reset();
  stream.reset();
  if (failure.empty()) failure = ledger->commit();
  ledger.reset();
  if (!failure.empty()) return fail("the last write failed: " + failure);
  log->warn("stopped");
  return 0;
}

}  // namespace subledger::server
