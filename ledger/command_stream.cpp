#include "ledger/command_stream.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace subledger {

CommitPipeline::CommitPipeline(Ledger& ledger, Options options)
    : ledger_(ledger), options_(std::move(options)) {}

void CommitPipeline::fire(std::vector<Ack>& acks, const std::string& error) {
  for (auto& ack : acks)
    if (ack) ack(error);
  acks.clear();
  if (options_.after_acks) options_.after_acks();
}

absl::Status CommitPipeline::fail(const absl::Status& error) {
  failed_ = error;
  unacknowledged_at_failure_ = in_flight_.size() + current_.size();
  const std::string message(error.message());
  fire(in_flight_, message);
  fire(current_, message);
  return error;
}

absl::Status CommitPipeline::commit_async() {
  if (!failed_.ok()) return fail(failed_);
  if (ledger_.staged_events() == 0) {
    // Nothing to write (reads, duplicates, rejections): their answers rest on the batch in
    // flight at most, so they go out as soon as it is durable.
    if (absl::Status error = settle(); !error.ok()) return error;
    if (!current_.empty()) fire(current_, "");
    return absl::OkStatus();
  }
  if (absl::Status error = ledger_.commit_async(); !error.ok()) return fail(error);
  if (!in_flight_.empty()) fire(in_flight_, "");
  if (options_.on_batch) options_.on_batch(current_.size());
  in_flight_ = std::move(current_);
  current_.clear();
  return absl::OkStatus();
}

absl::Status CommitPipeline::settle() {
  if (!failed_.ok()) return fail(failed_);
  if (absl::Status error = ledger_.wait_committed(); !error.ok()) return fail(error);
  if (!in_flight_.empty()) fire(in_flight_, "");
  return absl::OkStatus();
}

absl::Status CommitPipeline::commit() {
  if (absl::Status error = commit_async(); !error.ok()) return error;
  return settle();
}

CommandReader::CommandReader(std::istream& in, size_t chunk_lines, size_t chunks_max, Also also)
    : chunk_lines_(std::max<size_t>(chunk_lines, 1)),
      chunks_max_(std::max<size_t>(chunks_max, 1)),
      also_(std::move(also)) {
  thread_ = std::thread([this, &in] { run(in); });
}

CommandReader::~CommandReader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  room_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void CommandReader::run(std::istream& in) {
  std::vector<Line> chunk;
  auto hand_over = [&] {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return stopping_ || chunks_.size() < chunks_max_; });
    if (stopping_) return false;
    chunks_.push_back(std::move(chunk));
    chunk.clear();
    ready_.notify_one();
    return true;
  };
  std::string text;
  uint64_t number = 0;
  while (std::getline(in, text)) {
    Line& line = chunk.emplace_back();
    line.number = ++number;
    line.blank = is_blank_line(text);
    if (!line.blank) {
      line.command = prepare_command(text, number);
      if (also_) also_(line.command);
    }
    if (chunk.size() >= chunk_lines_ && !hand_over()) return;
  }
  if (!chunk.empty() && !hand_over()) return;
  std::lock_guard lock(mutex_);
  done_ = true;
  failed_ = in.bad();
  ready_.notify_one();
}

bool CommandReader::next(std::vector<Line>& lines) {
  std::unique_lock lock(mutex_);
  ready_.wait(lock, [&] { return !chunks_.empty() || done_; });
  if (chunks_.empty()) return false;
  lines = std::move(chunks_.front());
  chunks_.pop_front();
  room_.notify_one();
  return true;
}

bool CommandReader::read_failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

CommandStream::CommandStream(Ledger& ledger, Options options)
    : ledger_(ledger), options_(std::move(options)) {
  thread_ = std::thread([this] { run(); });
}

CommandStream::~CommandStream() { stop(); }

bool CommandStream::try_submit(Work work) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.queue_max) return false;
    queue_.push_back(std::move(work));
  }
  wake_.notify_one();
  return true;
}

void CommandStream::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::string CommandStream::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

size_t CommandStream::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void CommandStream::run() {
  CommitPipeline pipeline(ledger_, {options_.batch_commands_max, nullptr, options_.on_batch});
  std::string failed;  // the first write error's message: every later ack gets it
  auto record = [&](const absl::Status& error) {
    if (error.ok() || !failed.empty()) return;
    failed = std::string(error.message());
    std::lock_guard lock(mutex_);
    failure_ = failed;
  };
  std::vector<Work> taken;
  for (;;) {
    taken.clear();
    bool rows_due = false;
    {
      std::unique_lock lock(mutex_);
      if (queue_.empty() && pipeline.idle()) {
        // Quiet for a while (or stopping) with projection rows behind the log: write them, so
        // readers beside the writer and the next open have no events to catch up. Not at every
        // empty queue: under a paced load that is between any two requests, and the row write
        // would delay the next answer. (Time decides only when derived rows are written.)
        const auto arrived = [&] { return !queue_.empty() || stopping_; };
        if (failed.empty() && ledger_.rows_behind())
          rows_due = !wake_.wait_for(lock, options_.rows_after_quiet, arrived) || queue_.empty();
        if (!rows_due) {
          wake_.wait(lock, arrived);
          if (queue_.empty()) break;  // stopping, and everything is acknowledged
        }
      }
      // Group commit: everything that queued up while the last batch was written, up to a batch.
      const size_t room =
          options_.batch_commands_max - std::min(options_.batch_commands_max, pipeline.batch_size());
      while (!rows_due && !queue_.empty() && taken.size() < std::max<size_t>(room, 1)) {
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (rows_due) {
      record(ledger_.write_rows());
      continue;
    }
    for (auto& work : taken) {
      if (!failed.empty()) {
        // The ledger's memory is ahead of its disk: refuse, never decide on it again.
        if (CommitPipeline::Ack ack = work(nullptr)) ack(failed);
        continue;
      }
      pipeline.on_durable(work(&ledger_));
    }
    if (!taken.empty())
      record(pipeline.commit_async());
    else if (!pipeline.idle())
      record(pipeline.settle());
  }
  record(pipeline.commit());
}

}  // namespace subledger
