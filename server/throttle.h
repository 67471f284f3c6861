// Token buckets (SERVER.md "Running it"): per partner for reads, per partner for writes, per
// partner and customer; a bucket holds two seconds' worth; a rate of 0 turns its limit off.
// Thread-safe: the buckets are sharded by key so partners rarely contend for a lock.
#pragma once

#include <array>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>

namespace subledger::server {

class TokenBuckets {
 public:
  explicit TokenBuckets(double rate_per_second) : rate_(rate_per_second) {}
  double rate() const { return rate_; }

  // Takes a token for `key` at `now`. 0 when taken; else the whole seconds until one is there
  // (at least 1), for Retry-After.
  int take(const std::string& key, std::chrono::steady_clock::time_point now) {
    if (rate_ <= 0) return 0;
    const double capacity = 2 * rate_;
    Shard& shard = shards_[std::hash<std::string>{}(key) % shards_.size()];
    std::lock_guard lock(shard.mutex);
    auto [it, fresh] = shard.buckets.try_emplace(key, Bucket{capacity, now});
    Bucket& b = it->second;
    if (!fresh) {
      double elapsed = std::chrono::duration<double>(now - b.at).count();
      b.tokens = std::min(capacity, b.tokens + elapsed * rate_);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) / rate_)));
  }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;  // never iterated
  };
  double rate_;
  std::array<Shard, 16> shards_;
};

}  // namespace subledger::server
