// The command stream: submit -> decide -> batch -> durable -> acknowledge, the one group-commit
// pipeline behind both `apply` (one thread reads lines and drives it) and `serve` (connections hand
// work to the thread that owns the Ledger through a bounded queue).
//
// An acknowledgement runs only after the synced write of the batch its command was staged into
// has returned (or with the write's error: then nothing of that batch may be reported as done).
// While batch n is written on the store's background thread, batch n+1 is decided.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <istream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger.h"

namespace subledger {

// The pipeline in the caller's thread. Stage on the ledger (submit, submit_group, reads), then
// register what to do once that is durable with on_durable().
class CommitPipeline {
 public:
  // error: "" once durable, else why the batch was not written (the Ledger is then unusable).
  using Ack = std::function<void(const std::string& error)>;
  struct Options {
    size_t batch_commands_max = 4096;      // acknowledgements per synced write
    std::function<void()> after_acks;      // runs after each batch's acknowledgements
    std::function<void(size_t)> on_batch;  // the size of each batch handed to the store
  };
  CommitPipeline(Ledger& ledger, Options options);

  void on_durable(Ack ack) { current_.push_back(std::move(ack)); }
  bool batch_full() const { return current_.size() >= options_.batch_commands_max; }
  size_t batch_size() const { return current_.size(); }
  bool idle() const { return current_.empty() && in_flight_.empty(); }

  // Waits for the batch in flight (acknowledging it), then starts writing the current one. A
  // batch that staged nothing (reads only) is acknowledged as soon as the one before it is.
  // An error is the write's (every pending ack got its message; the pipeline then fails all).
  [[nodiscard]] absl::Status commit_async();
  // Waits for the batch in flight and acknowledges it.
  [[nodiscard]] absl::Status settle();
  // Everything staged so far, durable and acknowledged.
  [[nodiscard]] absl::Status commit();
  // After a failed write: how many acknowledgements it answered with the error.
  size_t unacknowledged_at_failure() const { return unacknowledged_at_failure_; }

 private:
  void fire(std::vector<Ack>& acks, const std::string& error);
  absl::Status fail(const absl::Status& error);
  Ledger& ledger_;
  Options options_;
  std::vector<Ack> current_, in_flight_;
  absl::Status failed_;
  size_t unacknowledged_at_failure_ = 0;
};

// The front of the pipeline for a file (apply): a thread reads the lines, parses each command and
// hashes its payload (pure work that needs no state) ahead of the thread that decides them, on
// the core the synced writes leave idle. Lines come out in input order, in chunks; at most
// `chunks_max` chunks wait, so memory stays bounded whatever the file's size. The caller's thread
// owns nothing of the reader but what next() hands it.
class CommandReader {
 public:
  struct Line {
    uint64_t number = 0;  // 1-based line number in the input
    bool blank = false;   // INTERFACE.md: no result, no effect
    PreparedCommand command;
  };
  // `also`, when given, runs on the reading thread for each parsed command after it is hashed
  // (Ledger::prefetch_rows); it must be safe beside the caller's thread.
  using Also = std::function<void(PreparedCommand&)>;
  explicit CommandReader(std::istream& in, size_t chunk_lines = 256, size_t chunks_max = 16,
                         Also also = nullptr);
  ~CommandReader();  // stops reading (what was not handed out is dropped) and joins
  CommandReader(const CommandReader&) = delete;
  CommandReader& operator=(const CommandReader&) = delete;

  // Replaces `lines` with the next lines in order; false once every line was handed out.
  bool next(std::vector<Line>& lines);
  // After next() returned false: whether reading failed (rather than reaching the end).
  bool read_failed() const;

 private:
  void run(std::istream& in);
  const size_t chunk_lines_, chunks_max_;
  const Also also_;
  mutable std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<std::vector<Line>> chunks_;
  bool done_ = false, failed_ = false, stopping_ = false;
  std::thread thread_;
};

// The pipeline on its own thread, fed by any number of threads: the thread owns the Ledger.
class CommandStream {
 public:
  // Runs on the stream's thread with the Ledger (stage or read), and returns what to run once that
  // is durable (on the same thread: it should hand the answer back, not do slow work). The Ledger
  // is null after a failed write: then the work must not decide anything, and its ack gets the
  // error.
  using Work = std::function<CommitPipeline::Ack(Ledger*)>;
  struct Options {
    size_t batch_commands_max = 4096;
    size_t queue_max = 65536;  // submissions beyond it are refused (the caller answers 503)
    std::function<void(size_t)> on_batch;  // runs on the stream's thread
    // Rows left behind the log (Ledger::Options::projection_every_commits) are written after
    // this long without work, and when the stream stops.
    std::chrono::milliseconds rows_after_quiet{500};
  };
  CommandStream(Ledger& ledger, Options options);
  ~CommandStream();
  CommandStream(const CommandStream&) = delete;
  CommandStream& operator=(const CommandStream&) = delete;

  // False when the queue is full or the stream stopped (then `work` never runs).
  [[nodiscard]] bool try_submit(Work work);
  // Refuses new work, runs and acknowledges what was queued, and joins the thread.
  void stop();
  // "" while writes succeed; else the first write error (the ledger refuses all further work).
  std::string failure() const;
  size_t queued() const;

 private:
  void run();
  Ledger& ledger_;
  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Work> queue_;
  bool stopping_ = false;
  std::string failure_;
  std::thread thread_;
};

}  // namespace subledger
