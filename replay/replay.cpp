#include "replay/replay.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "events/codec.h"
#include "ledger/decide.h"
#include "projections/projection_rows.h"

namespace subledger {

std::string ReplayReport::to_json(bool verify) const {
  nlohmann::ordered_json j;
  j["events"] = events;
  j["seconds"] = static_cast<double>(static_cast<int64_t>(seconds * 1000)) / 1000;
  j["events_per_second"] = seconds > 0 ? static_cast<uint64_t>(events / seconds) : 0;
  j["verified"] = verify;
  j["invoices_checked"] = invoices_checked;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& m : mismatches)
    list.push_back({{"invoice_id", m.invoice_id},
                    {"event_seq", m.event_seq},
                    {"recorded_sha256", m.recorded_sha256_hex},
                    {"regenerated_sha256", m.regenerated_sha256_hex},
                    {"recorded_total", m.recorded_total},
                    {"regenerated_total", m.regenerated_total}});
  j["mismatches"] = list;
  if (rows_checked) {
    j["projection_rows_compared"] = rows_compared;
    j["invoice_rows_checked"] = invoice_rows_checked;
    j["projection_row_mismatches"] = row_mismatches;
    j["rows_seconds"] = static_cast<double>(static_cast<int64_t>(rows_seconds * 1000)) / 1000;
  }
  if (rows_behind) j["projection_rows_behind_by_events"] = rows_behind;
  if (rows_of_older_format) j["projection_rows_of_older_format"] = true;
  j["ok"] = ok();
  if (!error.empty()) {
    j["error"] = error;
    j["first_bad_seq"] = first_bad_seq;
  }
  return j.dump();
}

namespace {

constexpr size_t kMaxRowMismatches = 50;

void note_row_mismatch(ReplayReport& report, std::string key) {
  if (report.row_mismatches.size() < kMaxRowMismatches)
    report.row_mismatches.push_back(std::move(key));
}

// The stored rows must be exactly the rows of the rebuilt state, and each invoice row must hash
// to what its InvoiceIssued event recorded.
// put_expected(put) puts every row the replay rebuilt; invoices_issued counts its invoices.
void check_rows(const Store& store,
                const std::function<void(const LedgerState::RowSink&)>& put_expected,
                uint64_t invoices_issued, ReplayReport& report) {
  auto started = std::chrono::steady_clock::now();
  report.rows_checked = true;
  // The two halves read disjoint things and run on both cores: the rebuilt rows against the
  // stored ones, and the stored invoice rows against their events.
  struct Found {
    uint64_t rows = 0;
    std::vector<std::string> differing;
  };
  auto rebuilt_rows = std::async(std::launch::async, [&] {
    Found found;
    put_expected([&](std::string_view key, std::string_view value) {
      ++found.rows;
      auto stored = store.projection(key);
      if (!stored.ok() || *stored != value) found.differing.emplace_back(key);
    });
    return found;
  });
  Found invoices;
  uint64_t stored_rows = 0;
  EventDecoder decoder;
  Event event;
  absl::Status read = store.scan_projections("", [&](std::string_view key, std::string_view value) {
    if (key == "checkpoint") return true;
    if (!key.starts_with(kInvoiceRowPrefix)) {
      ++stored_rows;
      return true;
    }
    ++invoices.rows;
    auto issued = decode_invoice_row(value);
    const InvoiceIssued* recorded = nullptr;
    if (issued) {
      auto bytes = store.event_bytes(issued->event_seq);
      if (bytes.ok() && decoder.decode(*bytes, event).ok())
        recorded = std::get_if<InvoiceIssued>(&event.payload);
    }
    if (!recorded || recorded->invoice_id != issued->invoice.invoice_id ||
        sha256(canonical_lines(issued->invoice.lines, issued->invoice.currency_digits)) !=
            recorded->lines_sha256)
      invoices.differing.emplace_back(key);
    return true;
  });
  Found rows = rebuilt_rows.get();
  // Rows that cannot be read are not rows that match: the audit fails naming why.
  if (!read.ok())
    note_row_mismatch(report,
                      "* (the stored rows cannot be read: " + std::string(read.message()) + ")");
  report.rows_compared = rows.rows;
  report.invoice_rows_checked = invoices.rows;
  for (auto& key : rows.differing) note_row_mismatch(report, std::move(key));
  for (auto& key : invoices.differing) note_row_mismatch(report, std::move(key));
  if (report.invoice_rows_checked != invoices_issued)
    note_row_mismatch(report, "inv/* (" + std::to_string(report.invoice_rows_checked) +
                                  " rows for " + std::to_string(invoices_issued) +
                                  " issued invoices)");
  if (stored_rows != rows.rows)
    note_row_mismatch(report, "* (" + std::to_string(stored_rows) + " stored rows, " +
                                  std::to_string(rows.rows) + " expected)");
  report.rows_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace

namespace {

// The fold shared by every source of stored event values: decode once into a reused buffer,
// check the sequence and the chain, apply.
class Folder {
 public:
  explicit Folder(const ReplayProgress& progress)
      : progress_(progress), started_(std::chrono::steady_clock::now()) {}

  // False once the log is broken (report().error says where).
  bool feed(uint64_t seq, std::string_view bytes) {
    absl::Status error = decoder_.decode(bytes, event_);
    if (error.ok() && event_.seq != seq)
      error = absl::DataLossError("stored under the wrong sequence number");
    if (error.ok()) error = state_.apply(event_);
    if (!error.ok()) {
      // A gap is the missing number; anything else is this event.
      report_.first_bad_seq = seq > state_.last_seq() + 1 ? state_.last_seq() + 1 : seq;
      report_.error = std::string(at_event(report_.first_bad_seq, error).message());
      return false;
    }
    if (progress_ && state_.events_applied() % kProgressEvery == 0)
      progress_(state_.events_applied());
    return true;
  }

  ReplayReport& finish() {
    report_.events = state_.events_applied();
    report_.invoices_checked = state_.invoices_issued();
    report_.mismatches = state_.mismatches();
    report_.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return report_;
  }
  const LedgerState& state() const { return state_; }
  ReplayReport& report() { return report_; }

 private:
  static constexpr uint64_t kProgressEvery = 1 << 18;
  const ReplayProgress& progress_;
  std::chrono::steady_clock::time_point started_;
  LedgerState state_;
  EventDecoder decoder_;
  Event event_;
  ReplayReport report_;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

namespace {

// The tail check and the row check, shared by both replays: `last` is the last event folded.
void finish_audit(const Store& store, bool verify, uint64_t last, ReplayReport& report,
                  const std::function<void(const LedgerState::RowSink&)>& put_expected,
                  uint64_t invoices_issued) {
  auto checkpoint = store.projection("checkpoint");
  const bool has_checkpoint = checkpoint.ok() && checkpoint->size() == 8;
  // A checkpoint that cannot be read, or is not a sequence number, is a wrong stored row, not a
  // missing one: the audit names it rather than reporting the rows as merely behind the log.
  const bool bad_checkpoint = !has_checkpoint && !absl::IsNotFound(checkpoint.status());
  if (report.error.empty() && has_checkpoint && from_be64(*checkpoint) > last) {
    // The projections were written through a later event: the tail of the log was removed.
    report.first_bad_seq = last + 1;
    report.error = "event " + std::to_string(report.first_bad_seq) +
                   " is missing: the projections were written through event " +
                   std::to_string(from_be64(*checkpoint));
  }
  if (!verify || !report.error.empty()) return;
  if (bad_checkpoint) {
    report.rows_checked = true;
    note_row_mismatch(report, checkpoint.ok() ? "checkpoint (" + std::to_string(checkpoint->size()) +
                                                    " bytes, not a sequence number)"
                                              : "checkpoint (cannot be read: " +
                                                    std::string(checkpoint.status().message()) + ")");
    return;
  }
  auto meta = store.projection(kMetaRow);
  uint64_t through = has_checkpoint ? from_be64(*checkpoint) : 0;
  if (last == 0) return;  // an empty log: no row can be wrong (nothing was derived from it)
  if (meta.ok() && !meta_row_current(*meta))
    report.rows_of_older_format = true;  // rebuilt from the log when the ledger is next opened
  else if (through == last)
    check_rows(store, put_expected, invoices_issued, report);
  else
    report.rows_behind = last - through;
}

// ---- the parallel replay: one reader, customers split across lanes ----

struct Routed {
  Event event;
  uint64_t ordinal = 0;  // for an event that opens a subscription: its creation ordinal
};

class Lane {
 public:
  void push(Routed&& r) {
    filling_.push_back(std::move(r));
    if (filling_.size() >= kBatch) flush();
  }
  void flush() {
    if (filling_.empty()) return;
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return full_.size() < kMaxBatches; });
    full_.push_back(std::move(filling_));
    filling_.clear();
    filling_.reserve(kBatch);
    ready_.notify_one();
  }
  void close() {
    flush();
    std::lock_guard lock(mutex_);
    closed_ = true;
    ready_.notify_one();
  }
  // The worker: applies batches until the reader closes the lane.
  void run() {
    for (;;) {
      std::vector<Routed> batch;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !full_.empty() || closed_; });
        if (full_.empty()) return;
        batch = std::move(full_.front());
        full_.pop_front();
        room_.notify_one();
      }
      for (auto& r : batch) {
        if (!error.empty()) break;  // a broken partition stops; the reader reports the first
        if (r.ordinal) state.set_next_ordinal(r.ordinal - 1);
        if (absl::Status e = state.apply(r.event); !e.ok()) {
          error = std::string(e.message());
          error_seq = r.event.seq;
        }
      }
    }
  }

  LedgerState state = LedgerState::partition();
  std::string error;
  uint64_t error_seq = 0;

 private:
  static constexpr size_t kBatch = 2048, kMaxBatches = 8;
  std::vector<Routed> filling_;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<std::vector<Routed>> full_;
  bool closed_ = false;
};

// FNV-1a: a fixed function of the customer id, so a customer's lane does not depend on the run.
size_t lane_of(std::string_view customer_id, size_t lanes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : customer_id) h = (h ^ c) * 1099511628211ull;
  return static_cast<size_t>(h % lanes);
}

ReplayReport replay_parallel(const Store& store, bool verify, const ReplayProgress& progress,
                             size_t lanes_count) {
  ReplayReport report;
  auto started = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Lane>> lanes;
  for (size_t i = 0; i < lanes_count; ++i) lanes.push_back(std::make_unique<Lane>());
  std::vector<std::thread> workers;
  for (auto& lane : lanes) workers.emplace_back([l = lane.get()] { l->run(); });

  absl::flat_hash_map<std::string, uint8_t> lane_of_subscription;
  EventDecoder decoder;
  uint64_t last_seq = 0, ordinals = 0;
  std::string chain_head;
  constexpr uint64_t kProgressEvery = 1 << 18;
  absl::Status scan = store.scan_events(0, [&](uint64_t seq, std::string_view bytes) {
    Event e;
    absl::Status error = decoder.decode(bytes, e);
    if (error.ok() && e.seq != seq)
      error = absl::DataLossError("stored under the wrong sequence number");
    if (error.ok()) error = check_link(e, last_seq, chain_head);
    if (!error.ok()) {
      report.first_bad_seq = seq > last_seq + 1 ? last_seq + 1 : seq;
      report.error = std::string(at_event(report.first_bad_seq, error).message());
      return false;
    }
    last_seq = e.seq;
    chain_head = e.hash;
    if (const std::string* sub = subscription_id_of(e.payload)) {
      size_t lane = 0;
      uint64_t ordinal = 0;
      if (const std::string* customer = opening_customer_of(e.payload)) {
        lane = lane_of(*customer, lanes.size());
        lane_of_subscription.emplace(*sub, static_cast<uint8_t>(lane));
        ordinal = ++ordinals;
      } else if (auto it = lane_of_subscription.find(*sub); it != lane_of_subscription.end()) {
        lane = it->second;
      }  // an unknown subscription goes to lane 0, which reports it
      lanes[lane]->push(Routed{std::move(e), ordinal});
    } else if (const auto* issued = std::get_if<InvoiceIssued>(&e.payload)) {
      lanes[lane_of(issued->customer_id, lanes.size())]->push(Routed{std::move(e), 0});
    } else if (const auto* agreed = std::get_if<AgreementAccepted>(&e.payload)) {
      // Only the customer's lane writes its row, so only it needs the agreement.
      lanes[lane_of(agreed->customer_id, lanes.size())]->push(Routed{std::move(e), 0});
    } else {
      for (size_t i = 0; i + 1 < lanes.size(); ++i) lanes[i]->push(Routed{e, 0});
      lanes.back()->push(Routed{std::move(e), 0});  // catalog and billing runs: every lane
    }
    if (progress && last_seq % kProgressEvery == 0) progress(last_seq);
    return true;
  });
  for (auto& lane : lanes) lane->close();
  for (auto& w : workers) w.join();
  if (!scan.ok() && report.error.empty()) report.error = std::string(scan.message());

  uint64_t first_failure = 0;
  for (auto& lane : lanes) {
    if (!lane->error.empty() && (first_failure == 0 || lane->error_seq < first_failure) &&
        (report.first_bad_seq == 0 || lane->error_seq < report.first_bad_seq)) {
      first_failure = lane->error_seq;
      report.first_bad_seq = lane->error_seq;
      report.error = "event " + std::to_string(lane->error_seq) + ": " + lane->error;
    }
  }
  uint64_t invoices = 0;
  for (auto& lane : lanes) {
    invoices += lane->state.invoices_issued();
    const auto& m = lane->state.mismatches();
    report.mismatches.insert(report.mismatches.end(), m.begin(), m.end());
  }
  std::sort(
      report.mismatches.begin(), report.mismatches.end(),
      [](const InvoiceMismatch& a, const InvoiceMismatch& b) { return a.event_seq < b.event_seq; });
  report.events = report.error.empty() ? last_seq : std::min(last_seq, report.first_bad_seq - 1);
  report.invoices_checked = invoices;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  auto put_expected = [&](const LedgerState::RowSink& put) {
    for (size_t i = 0; i < lanes.size(); ++i) {
      LedgerState::RowSelection selection;
      selection.owns_customer = [&, i](const std::string& c) {
        return lane_of(c, lanes.size()) == i;
      };
      selection.catalog = i == 0;  // every lane saw every catalog event
      selection.meta = false;      // the counters are the reader's and the sum of the lanes'
      lanes[i]->state.put_all_rows(put, selection);
    }
    put(kMetaRow,
        encode_meta_row(last_seq, chain_head, lanes[0]->state.billing_clock(), last_seq, invoices,
                        ordinals));
  };
  finish_audit(store, verify, last_seq, report, put_expected, invoices);
  return report;
}

}  // namespace

ReplayReport replay_log(const Store& store, bool verify, const ReplayProgress& progress,
                        size_t workers) {
  if (workers > 1) return replay_parallel(store, verify, progress, workers);
  Folder folder(progress);
  absl::Status scan = store.scan_events(
      0, [&](uint64_t seq, std::string_view bytes) { return folder.feed(seq, bytes); });
  ReplayReport& report = folder.report();
  if (!scan.ok() && report.error.empty()) report.error = std::string(scan.message());
  folder.finish();
  const LedgerState& state = folder.state();
  finish_audit(
      store, verify, state.last_seq(), report,
      [&](const LedgerState::RowSink& put) { state.put_all_rows(put); }, state.invoices_issued());
  return report;
}

ReplayReport replay_hex_values(std::istream& in, const ReplayProgress& progress) {
  Folder folder(progress);
  std::string line, bytes;
  uint64_t seq = 0;
  while (std::getline(in, line)) {
    ++seq;
    std::string_view hex = line;
    // PostgreSQL prints bytea as \x..., and COPY's text format doubles the backslash.
    while (hex.starts_with('\\')) hex.remove_prefix(1);
    if (hex.starts_with('x')) hex.remove_prefix(1);
    bytes.resize(hex.size() / 2);
    bool ok = hex.size() % 2 == 0;
    for (size_t i = 0; ok && i < bytes.size(); ++i) {
      int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      bytes[i] = static_cast<char>(hi * 16 + lo);
    }
    if (!ok) {
      folder.report().first_bad_seq = seq;
      folder.report().error = "line " + std::to_string(seq) + " is not a hex event value";
      break;
    }
    if (!folder.feed(seq, bytes)) break;
  }
  return folder.finish();
}

std::vector<Event> stream_events(const Store& store, const Stream& stream, std::string& error) {
  std::vector<Event> out;
  EventDecoder decoder;
  auto seqs = store.stream_seqs(stream);
  if (!seqs.ok()) {
    error = std::string(seqs.status().message());
    return {};
  }
  for (uint64_t seq : *seqs) {
    auto bytes = store.event_bytes(seq);
    Event e;
    if (!bytes.ok()) {
      error = absl::IsNotFound(bytes.status()) ? "event " + std::to_string(seq) + " is missing"
                                               : std::string(bytes.status().message());
      return {};
    }
    if (absl::Status bad = decoder.decode(*bytes, e); !bad.ok()) {
      error = std::string(at_event(seq, bad).message());
      return {};
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<Subscription> subscription_as_of(const Store& store, const Catalog& catalog,
                                               const std::string& subscription_id, Date as_of,
                                               std::string& error, const LedgerState* state) {
  std::vector<Event> events =
      stream_events(store, Stream{StreamKind::kSubscription, subscription_id}, error);
  if (events.empty()) return std::nullopt;
  static const LineSink discard = [](ChargeLine&&) {};
  Subscription sub;
  bool exists = false;
  for (const auto& e : events) {
    if (e.effective_date > as_of) break;
    advance_to(sub, e.effective_date, discard);
    evolve(sub, e, discard);
    exists = true;
  }
  if (!exists) return std::nullopt;
  evolve_copy(sub,
              state ? due_transitions(sub, as_of, *state) : due_transitions(sub, as_of, catalog));
  return sub;
}

bool previews_promoted_renewal(const Subscription& latest, const Catalog& catalog, Date as_of) {
  return !catalog.promotions().empty() && latest.status == Status::kActive && latest.auto_renew &&
         latest.term.end <= as_of;
}

}  // namespace subledger
