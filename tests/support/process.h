// Helpers for tests that drive the real `subledger` binary and real RocksDB directories.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace subledger::testing {

struct RunResult {
  int status = -1;
  std::string out;
};

// Runs a shell command; stdout captured, stderr passed through.
inline RunResult run(const std::string& command) {
  RunResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 1 << 16> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

inline std::string bin() { return SUBLEDGER_BIN; }

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A fresh directory under the build tree, removed at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    path_ = std::filesystem::temp_directory_path() /
            ("subledger-test-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& child) const { return (path_ / child).string(); }

 private:
  std::filesystem::path path_;
};

// A command's exit status, standard output and standard error (through a temporary file).
struct Both {
  int status = -1;
  std::string out, err;
};
inline Both run_both(const std::string& command) {
  static int n = 0;
  std::string err_file = (std::filesystem::temp_directory_path() /
                          ("subledger-test-err-" + std::to_string(::getpid()) + "-" +
                           std::to_string(++n)))
                             .string();
  RunResult r = run(command + " 2>" + err_file);
  Both b{r.status, r.out, read_file(err_file)};
  std::filesystem::remove(err_file);
  return b;
}

// The table files of one column family of a ledger (named in each file's properties block).
inline std::vector<std::filesystem::path> tables_of(const std::string& db, const std::string& cf) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(db)) {
    if (e.path().extension() != ".sst") continue;
    std::string bytes = read_file(e.path());
    size_t at = bytes.find("column.family.id");  // the name is the next property
    if (at != std::string::npos && bytes.substr(at, 40).find("name" + cf) != std::string::npos)
      out.push_back(e.path());
  }
  return out;
}

// `apply` of one command (12 seats for S1 on `date`, request id "more") to the ledger in `db`:
// the write the storage tests try on a damaged ledger.
inline Both apply_more_seats(const std::string& db, const std::string& date) {
  return run_both(
      "echo '{\"cmd\":\"change_seats\",\"request_id\":\"more\",\"subscription_id\":\"S1\","
      "\"seats\":12,\"date\":\"" + date + "\"}' | " + bin() + " apply --db " + db);
}

// Flips one byte of a file (a test's stand-in for a bad disk).
inline void flip_byte(const std::filesystem::path& file, size_t offset) {
  std::string bytes = read_file(file);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5a);
  write_file(file, bytes);
}

}  // namespace subledger::testing
