// A client of `subledger serve` for tests: the real binary as a child process on an ephemeral
// loopback port, and one request per connection through Boost.Beast.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/http_client.h"
#include "support/process.h"

namespace subledger::testing {

namespace server_client {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Json = nlohmann::json;
}  // namespace server_client
using namespace server_client;

// Reply and request() come from support/http_client.h: every response is checked against
// server/openapi.json there.

inline std::string add_key(const std::string& file, const std::string& who) {
  RunResult r = run(bin() + " keys add --file " + file + " " + who);
  EXPECT_EQ(r.status, 0);
  return r.out.substr(0, r.out.find('\n'));
}

// The server as a child process; stdout's first line says where it listens.
class Server {
 public:
  Server(const std::string& db, const std::string& keys, const std::vector<std::string>& extra = {}) {
    int pipefd[2];
    EXPECT_EQ(pipe(pipefd), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(pipefd[1], STDOUT_FILENO);
      close(pipefd[0]);
      std::vector<std::string> args = {bin(), "serve", "--db", db, "--keys", keys,
                                       "--listen", "127.0.0.1:0", "-q"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(pipefd[1]);
    std::string line;
    char ch;
    while (read(pipefd[0], &ch, 1) == 1 && ch != '\n') line += ch;
    close(pipefd[0]);
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("listening")) {
      std::string where = j["listening"];
      port_ = std::stoi(where.substr(where.rfind(':') + 1));
    }
  }
  ~Server() {
    if (pid_ > 0) stop(SIGKILL);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends `signal` and returns the exit status (-signal when killed by it).
  int stop(int signal = SIGTERM) {
    kill(pid_, signal);
    int raw = 0;
    waitpid(pid_, &raw, 0);
    pid_ = -1;
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -WTERMSIG(raw);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace subledger::testing
