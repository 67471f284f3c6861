// A one-line progress bar on stderr for long work (only when stderr is a terminal).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace subledger::cli {

class ProgressBar {
 public:
  ProgressBar(std::string what, uint64_t total, bool enabled)
      : what_(std::move(what)),
        total_(total),
        enabled_(enabled),
        started_(std::chrono::steady_clock::now()) {}

  void update(uint64_t done) {
    if (!enabled_) return;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    double rate = seconds > 0 ? done / seconds : 0;
    constexpr int kWidth = 30;
    int filled =
        total_ ? static_cast<int>(kWidth * std::min<double>(1.0, double(done) / total_)) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    double eta = rate > 0 && total_ > done ? (total_ - done) / rate : 0;
    std::fprintf(stderr, "\r[%s] %3d%% %llu/%llu %s, %.0f/s, %.0f s left  ", bar.c_str(),
                 total_ ? static_cast<int>(100.0 * done / total_) : 0,
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_),
                 what_.c_str(), rate, eta);
    std::fflush(stderr);
  }
  void finish(uint64_t done) {
    if (!enabled_) return;
    update(done);
    std::fputc('\n', stderr);
  }

 private:
  std::string what_;
  uint64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace subledger::cli
