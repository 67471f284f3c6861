// Token buckets (SERVER.md "Running it"): per partner for reads, per partner for writes, per
// partner and customer; a bucket holds two seconds' worth; a rate of 0 turns its limit off.
// A request takes one token to start; what it cost beyond that (rows read, entries examined) is
// charged after it ran, so a partner's expensive requests spend its own budget, not others'
// latency. A bucket that went idle long enough to be full again is the same as none: such buckets
// are dropped as the table grows, so memory follows the active keys, not every key ever seen.
// Thread-safe: the buckets are sharded by key so partners rarely contend for a lock.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>

namespace subledger::server {

class TokenBuckets {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TokenBuckets(double rate_per_second) : rate_(rate_per_second) {}
  double rate() const { return rate_; }
  // The smallest rate whose bucket can hold the token a request needs (two seconds' worth).
  static constexpr double kRateMin = 0.5;

  // Takes a token for `key` at `now`. 0 when taken; else the whole seconds until one is there
  // (at least 1), for Retry-After.
  int take(const std::string& key, Clock::time_point now) {
    if (rate_ <= 0) return 0;
    Shard& shard = shard_of(key);
    std::lock_guard lock(shard.mutex);
    Bucket& b = refill(shard, key, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) / rate_)));
  }

  // Charges `tokens` more to `key` (what a request cost beyond the token it took). The debt is
  // bounded at a minute's worth.
  void charge(const std::string& key, double tokens, Clock::time_point now) {
    if (rate_ <= 0 || tokens <= 0) return;
    Shard& shard = shard_of(key);
    std::lock_guard lock(shard.mutex);
    Bucket& b = refill(shard, key, now);
    b.tokens = std::max(-60 * rate_, b.tokens - tokens);
  }

  size_t size() const {
    size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s.mutex);
      n += s.buckets.size();
    }
    return n;
  }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;  // never iterated into any output
    size_t sweep_at = 64;
  };
  Shard& shard_of(const std::string& key) {
    return shards_[std::hash<std::string>{}(key) % shards_.size()];
  }
  // The bucket of `key` refilled up to `now`. REQUIRES: the shard's lock.
  Bucket& refill(Shard& shard, const std::string& key, Clock::time_point now) {
    const double capacity = 2 * rate_;
    if (shard.buckets.size() >= shard.sweep_at) {
      // Full again = as if new: forget those (amortized: the next sweep waits for twice as many).
      std::erase_if(shard.buckets, [&](const auto& entry) {
        const Bucket& b = entry.second;
        return b.tokens + std::chrono::duration<double>(now - b.at).count() * rate_ >= capacity;
      });
      shard.sweep_at = std::max<size_t>(64, 2 * shard.buckets.size());
    }
    auto [it, fresh] = shard.buckets.try_emplace(key, Bucket{capacity, now});
    Bucket& b = it->second;
    if (!fresh) {
      double elapsed = std::chrono::duration<double>(now - b.at).count();
      b.tokens = std::min(capacity, b.tokens + elapsed * rate_);
      b.at = now;
    }
    return b;
  }
  double rate_;
  std::array<Shard, 16> shards_;
};

}  // namespace subledger::server
