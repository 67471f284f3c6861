#include "server/ledger_host.h"

#include <spdlog/spdlog.h>

namespace subledger::server {

namespace {

Ledger::Options writer_options(const std::shared_ptr<spdlog::logger>& logger) {
  Ledger::Options options;
  options.logger = logger;
  // Batches here are small (what arrived during one synced write) and a busy customer's row is
  // re-encoded whole with each: rows every 64 batches, and whenever the stream goes idle, cost a
  // catch-up of at most 64 batches at the next open or in a reader beside the server.
  options.projection_every_commits = 64;
  return options;
}

}  // namespace

std::shared_ptr<Generation> LedgerHost::writer(std::unique_ptr<Ledger> ledger) {
  auto g = std::make_shared<Generation>();
  g->ledger = std::move(ledger);
  g->durable_seq = g->ledger->state().last_seq();
  CommandStream::Options stream_options;
  stream_options.batch_commands_max = options_.batch_commands_max;
  Ledger* owned = g->ledger.get();
  auto on_batch = options_.on_batch;
  stream_options.on_batch = [on_batch, owned](size_t n) {
    if (on_batch) on_batch(n, owned->state().last_seq());
  };
  g->stream = std::make_unique<CommandStream>(*g->ledger, std::move(stream_options));
  return g;
}

std::unique_ptr<LedgerHost> LedgerHost::open(Options options, std::string& error) {
  auto ledger = Ledger::open(options.dir, writer_options(options.logger), error);
  if (!ledger) return nullptr;
  std::unique_ptr<LedgerHost> host(new LedgerHost(std::move(options)));
  host->current_ = host->writer(std::move(ledger));
  if (absl::Status s = host->index_.catch_up(host->current_->ledger->store()); !s.ok()) {
    error = std::string(s.message());
    host->stop();
    return nullptr;
  }
  return host;
}

LedgerHost::~LedgerHost() { stop(); }

std::shared_ptr<Generation> LedgerHost::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void LedgerHost::supervise() {
  std::lock_guard supervising(supervise_mutex_);  // one at a time (a timer, and failed reads)
  std::shared_ptr<Generation> g = current();
  if (!g) return;
  auto log = options_.logger ? options_.logger : spdlog::default_logger();
  if (g->writable()) {
    std::string failure = g->stream->failure();
    if (failure.empty()) return;
    // The writer's memory is ahead of its disk: stop it (what is queued answers 503), and read
    // from what is durable instead.
    log->error("the ledger cannot write ({}): reads go on, writes answer 503 until it can", failure);
    g->stream->stop();
    Ledger::Options reader;
    reader.preview = true;
    reader.create_if_missing = false;
    auto opened = Ledger::open(options_.dir, std::move(reader));
    auto next = std::make_shared<Generation>();
    next->why_read_only = failure;
    if (opened.ok()) {
      next->ledger = std::move(*opened);
      next->durable_seq = next->ledger->state().last_seq();
    } else {
      log->error("the ledger cannot be read either: {}", std::string(opened.status().message()));
      next->why_read_only = failure + "; and it cannot be read: " +
                            std::string(opened.status().message());
    }
    {
      std::lock_guard lock(mutex_);
      current_ = next;
      next_try_ = std::chrono::steady_clock::now() + options_.retry_every;
    }
    return;  // the failed writer goes with the last read that still holds it
  }
  if (std::chrono::steady_clock::now() < next_try_) return;
  {
    std::lock_guard lock(mutex_);
    next_try_ = std::chrono::steady_clock::now() + options_.retry_every;
  }
  std::string error;
  auto ledger = Ledger::open(options_.dir, writer_options(options_.logger), error);
  if (!ledger) {
    log->debug("the ledger cannot write yet: {}", error);
    return;
  }
  // (A read still holding the failed writer keeps its lock on the files: this open then fails
  // and the next try succeeds. A disk that takes the open but not the next write fails again.)
  auto next = writer(std::move(ledger));
  {
    std::lock_guard lock(mutex_);
    current_ = next;
  }
  log->warn("the ledger writes again");
}

std::string LedgerHost::stop() {
  std::shared_ptr<Generation> g = current();
  if (!g) return "";
  if (!g->writable()) return g->why_read_only;
  g->stream->stop();
  std::string failure = g->stream->failure();
  if (failure.empty()) failure = std::string(g->ledger->commit().message());
  return failure;
}

}  // namespace subledger::server
