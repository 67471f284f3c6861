// The server's ledger, as generations: a writer (a Ledger driven by its CommandStream) while writes
// succeed; after a failed write (a full disk, a log that fails its checks) a read-only ledger as of
// the last durable event, so reads go on while writes answer 503; and a writer again, reopened by
// itself, once the ledger can be opened for writing (nothing that was not durable is ever
// acknowledged: the failed writer's memory is dropped, the new one folds what is on disk).
//
// Reads and writes meet only here: the stream's work (deciding, staging) holds a generation's
// state lock exclusively, readers share it on threads of their own, so a read never runs on the
// thread that decides writes and a write waits at most for the reads already running.
#pragma once

#include <absl/synchronization/mutex.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "ledger/activity_index.h"
#include "ledger/command_stream.h"
#include "ledger/ledger.h"

namespace spdlog {
class logger;
}

namespace subledger::server {

struct Generation {
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<CommandStream> stream;  // null: read-only (why_read_only says why)
  std::string why_read_only;
  absl::Mutex state_mutex;  // writers exclusive (the stream's work), readers shared
  // The last sequence number known durable: a read that saw a later one answers only once that
  // is durable too.
  std::atomic<uint64_t> durable_seq{0};
  bool writable() const { return stream != nullptr; }
  // "" while the writer writes; else why it cannot (also for a read-only generation).
  std::string failure() const { return stream ? stream->failure() : why_read_only; }
};

class LedgerHost {
 public:
  struct Options {
    std::string dir;
    std::shared_ptr<spdlog::logger> logger;
    size_t batch_commands_max = 4096;
    std::function<void(size_t commands, uint64_t last_seq)> on_batch;  // on the stream's thread
    std::chrono::milliseconds retry_every{1000};  // a read-only generation tries to write again
  };
  // Opens the writer. "" or why not (in `error`).
  static std::unique_ptr<LedgerHost> open(Options options, std::string& error);
  ~LedgerHost();

  std::shared_ptr<Generation> current() const;
  ActivityIndex& index() { return index_; }
  // Replaces a failed writer by a read-only ledger, and a read-only ledger by a writer once one
  // can be opened. Call it often (a timer; a read that finds the writer failed calls it too); it
  // returns at once when there is nothing to do. Thread-safe.
  void supervise();
  // Stops the writer: everything queued is decided, written and acknowledged, then the rows and
  // the checkpoint. "" or why the ledger could not write.
  std::string stop();

 private:
  explicit LedgerHost(Options options) : options_(std::move(options)) {}
  std::shared_ptr<Generation> writer(std::unique_ptr<Ledger> ledger);
  Options options_;
  mutable std::mutex mutex_;
  std::mutex supervise_mutex_;
  std::shared_ptr<Generation> current_;
  std::chrono::steady_clock::time_point next_try_{};
  ActivityIndex index_;
};

}  // namespace subledger::server
