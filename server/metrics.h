// The server's Prometheus metrics (text exposition format 0.0.4): requests by route template and
// status (never a raw path: ids are not labels), request latency, commit batch sizes, the last
// sequence number, throttled requests, open connections. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace subledger::server {

class Metrics {
 public:
  void request(const std::string& route, int status, double seconds);
  void batch(size_t commands, uint64_t last_seq);
  void throttled() { throttled_.fetch_add(1, std::memory_order_relaxed); }
  void connection_opened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t open_connections() const { return connections_.load(std::memory_order_relaxed); }
  std::string render() const;
  // Where the number of token buckets held comes from (set once, before serving).
  void set_buckets(std::function<size_t()> count) { buckets_ = std::move(count); }

 private:
  static constexpr std::array<double, 14> kLatencyBounds = {
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  static constexpr std::array<double, 10> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 256, 1024, 4096};
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::array<uint64_t, kLatencyBounds.size() + 1> latency_{};
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
  std::array<uint64_t, kBatchBounds.size() + 1> batches_{};
  double batch_sum_ = 0;
  uint64_t batch_count_ = 0;
  std::atomic<uint64_t> last_seq_{0}, throttled_{0};
  std::atomic<int64_t> connections_{0};
  std::function<size_t()> buckets_;
};

}  // namespace subledger::server
