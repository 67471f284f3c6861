// The server tests' HTTP client (Boost.Beast), shared by tests/server/*.cpp. Every response it
// receives is checked against the OpenAPI document (server/openapi.json) by
// tests/support/openapi_check.py (jsonschema): the status must be one the route declares and the
// body must match its schema, else the test fails where the request was made. So the document
// cannot drift from what the server answers.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace subledger::testing {

struct Reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string code() const {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    return j.is_object() && j.contains("code") ? j["code"].get<std::string>() : "";
  }
};

// One openapi_check.py process per test process, started at the first response; requests from
// several threads take turns.
class OpenApiCheck {
 public:
  static OpenApiCheck& instance() {
    static OpenApiCheck check;
    return check;
  }
  // Empty when the exchange is as the document says; else what differs.
  std::string problems(const std::string& method, const std::string& target, const Reply& reply) {
    nlohmann::json exchange{{"method", method}, {"target", target}, {"status", reply.status},
                            {"headers", reply.headers}, {"body", reply.body}};
    auto type = reply.headers.find("Content-Type");
    exchange["content_type"] = type == reply.headers.end() ? "" : type->second;
    std::string line =
        exchange.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(mutex_);
    if (!start()) return "the OpenAPI check could not start: " + failure_;
    std::string answer;
    if (fputs(line.c_str(), to_) == EOF || fflush(to_) != 0 || !read_line(answer))
      return "the OpenAPI check (" SUBLEDGER_OPENAPI_CHECK ") stopped answering";
    nlohmann::json verdict = nlohmann::json::parse(answer, nullptr, false);
    if (!verdict.is_object() || !verdict.contains("ok"))
      return "the OpenAPI check answered '" + answer + "'";
    if (verdict["ok"] == true) return "";
    std::string out = "the response does not match server/openapi.json:";
    for (const auto& p : verdict["problems"]) out += "\n  " + p.get<std::string>();
    return out;
  }

 private:
  OpenApiCheck() = default;
  ~OpenApiCheck() {
    if (to_) fclose(to_);  // end of input: the checker exits
    if (from_) fclose(from_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  bool start() {
    if (pid_ > 0) return true;
    if (!failure_.empty()) return false;
    int in[2], out[2];  // close-on-exec: the servers the tests start must not hold them
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
      failure_ = "pipe2 failed";
      return false;
    }
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      execl(SUBLEDGER_SCHEMA_PYTHON, SUBLEDGER_SCHEMA_PYTHON, SUBLEDGER_OPENAPI_CHECK,
            SUBLEDGER_OPENAPI_DOCUMENT, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
    if (pid_ < 0 || !to_ || !from_) failure_ = "fork failed";
    return failure_.empty();
  }
  bool read_line(std::string& line) {
    line.clear();
    for (int c = fgetc(from_); c != EOF; c = fgetc(from_)) {
      if (c == '\n') return true;
      line.push_back(static_cast<char>(c));
    }
    return false;
  }

  std::mutex mutex_;
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  std::string failure_;
};

// One request on its own connection. status 0: the connection failed. A response is checked
// against the OpenAPI document (a mismatch fails the calling test).
inline Reply request(int port, const std::string& method, const std::string& target,
                     const std::string& key, const std::string& body = "",
                     std::map<std::string, std::string> headers = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  Reply out;
  try {
    net::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method != "GET") {
      req.body() = body;
      req.set(http::field::content_type, "application/json");
    }
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(socket, buffer, parser);
    auto& res = parser.get();
    out.status = res.result_int();
    out.body = res.body();
    for (const auto& f : res) out.headers[std::string(f.name_string())] = std::string(f.value());
  } catch (const std::exception&) {
    out.status = 0;
  }
  if (out.status != 0) {
    if (std::string why = OpenApiCheck::instance().problems(method, target, out); !why.empty())
      ADD_FAILURE() << why;
  }
  return out;
}

}  // namespace subledger::testing
