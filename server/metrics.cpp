#include "server/metrics.h"

#include <sstream>

namespace subledger::server {

namespace {

template <size_t N>
void observe(std::array<uint64_t, N + 1>& buckets, const std::array<double, N>& bounds,
             double value) {
  size_t i = 0;
  while (i < N && value > bounds[i]) ++i;
  ++buckets[i];
}

template <size_t N>
void histogram(std::ostringstream& out, const std::string& name, const std::string& help,
               const std::array<uint64_t, N + 1>& buckets, const std::array<double, N>& bounds,
               double sum, uint64_t count) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < N; ++i) {
    cumulative += buckets[i];
    out << name << "_bucket{le=\"" << bounds[i] << "\"} " << cumulative << '\n';
  }
  out << name << "_bucket{le=\"+Inf\"} " << count << '\n';
  out << name << "_sum " << sum << '\n' << name << "_count " << count << '\n';
}

}  // namespace

void Metrics::request(const std::string& route, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  observe<kLatencyBounds.size()>(latency_, kLatencyBounds, seconds);
  latency_sum_ += seconds;
  ++latency_count_;
}

void Metrics::batch(size_t commands, uint64_t last_seq) {
  last_seq_.store(last_seq, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  observe<kBatchBounds.size()>(batches_, kBatchBounds, static_cast<double>(commands));
  batch_sum_ += static_cast<double>(commands);
  ++batch_count_;
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mutex_);
  out << "# HELP subledger_http_requests_total HTTP requests by route template and status.\n"
         "# TYPE subledger_http_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "subledger_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second
        << "\"} " << n << '\n';
  histogram<kLatencyBounds.size()>(out, "subledger_http_request_duration_seconds",
                                   "Time from a request read to its answer written.", latency_,
                                   kLatencyBounds, latency_sum_, latency_count_);
  histogram<kBatchBounds.size()>(out, "subledger_commit_batch_commands",
                                 "Acknowledgements per synced write (group commit).", batches_,
                                 kBatchBounds, batch_sum_, batch_count_);
  out << "# HELP subledger_last_seq The sequence number of the last event handed to the store.\n"
         "# TYPE subledger_last_seq gauge\nsubledger_last_seq "
      << last_seq_.load() << '\n';
  out << "# HELP subledger_throttled_total Requests answered 429.\n"
         "# TYPE subledger_throttled_total counter\nsubledger_throttled_total "
      << throttled_.load() << '\n';
  out << "# HELP subledger_open_connections Connections open now.\n"
         "# TYPE subledger_open_connections gauge\nsubledger_open_connections "
      << connections_.load() << '\n';
  if (buckets_)
    out << "# HELP subledger_throttle_buckets Token buckets held now (active partners and "
           "customers).\n# TYPE subledger_throttle_buckets gauge\nsubledger_throttle_buckets "
        << buckets_() << '\n';
  return out.str();
}

}  // namespace subledger::server
