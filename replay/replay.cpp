#include "replay/replay.h"

#include <chrono>
#include <nlohmann/json.hpp>

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
void check_rows(const Store& store, const LedgerState& state, ReplayReport& report) {
  auto started = std::chrono::steady_clock::now();
  report.rows_checked = true;
  uint64_t expected_rows = 0;
  state.put_all_rows([&](std::string_view key, std::string_view value) {
    ++expected_rows;
    auto stored = store.projection(key);
    if (!stored || *stored != value) note_row_mismatch(report, std::string(key));
  });
  report.rows_compared = expected_rows;
  uint64_t stored_rows = 0;
  EventDecoder decoder;
  Event event;
  store.scan_projections("", [&](std::string_view key, std::string_view value) {
    if (key == "checkpoint") return true;
    if (!key.starts_with(kInvoiceRowPrefix)) {
      ++stored_rows;
      return true;
    }
    ++report.invoice_rows_checked;
    auto issued = decode_invoice_row(value);
    const InvoiceIssued* recorded = nullptr;
    if (issued) {
      auto bytes = store.event_bytes(issued->event_seq);
      if (bytes && decoder.decode(*bytes, event).empty())
        recorded = std::get_if<InvoiceIssued>(&event.payload);
    }
    if (!recorded || recorded->invoice_id != issued->invoice.invoice_id ||
        sha256(canonical_lines(issued->invoice.lines, issued->invoice.currency_digits)) !=
            recorded->lines_sha256)
      note_row_mismatch(report, std::string(key));
    return true;
  });
  if (report.invoice_rows_checked != state.invoices_issued())
    note_row_mismatch(report, "inv/* (" + std::to_string(report.invoice_rows_checked) +
                                  " rows for " + std::to_string(state.invoices_issued()) +
                                  " issued invoices)");
  if (stored_rows != expected_rows)
    note_row_mismatch(report, "* (" + std::to_string(stored_rows) + " stored rows, " +
                                  std::to_string(expected_rows) + " expected)");
  report.rows_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace

ReplayReport replay_log(const Store& store, bool verify, const ReplayProgress& progress) {
  ReplayReport report;
  auto started = std::chrono::steady_clock::now();
  LedgerState state;
  EventDecoder decoder;
  Event event;
  constexpr uint64_t kProgressEvery = 1 << 18;
  std::string scan = store.scan_events(0, [&](uint64_t seq, std::string_view bytes) {
    std::string error = decoder.decode(bytes, event);
    if (error.empty() && event.seq != seq) error = "stored under the wrong sequence number";
    if (error.empty()) error = state.apply(event);
    if (!error.empty()) {
      // A gap is the missing number; anything else is this event.
      report.first_bad_seq = seq > state.last_seq() + 1 ? state.last_seq() + 1 : seq;
      report.error = "event " + std::to_string(report.first_bad_seq) + ": " + error;
      return false;
    }
    if (progress && state.events_applied() % kProgressEvery == 0) progress(state.events_applied());
    return true;
  });
  if (!scan.empty()) report.error = scan;
  if (auto checkpoint = store.projection("checkpoint");
      report.error.empty() && checkpoint && from_be64(*checkpoint) > state.last_seq()) {
    // The projections were written through a later event: the tail of the log was removed.
    report.first_bad_seq = state.last_seq() + 1;
    report.error = "event " + std::to_string(report.first_bad_seq) +
                   " is missing: the projections were written through event " +
                   std::to_string(from_be64(*checkpoint));
  }
  report.events = state.events_applied();
  report.invoices_checked = state.invoices_issued();
  report.mismatches = state.mismatches();
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (verify && report.error.empty()) {
    auto checkpoint = store.projection("checkpoint");
    uint64_t through = checkpoint ? from_be64(*checkpoint) : 0;
    if (through == state.last_seq())
      check_rows(store, state, report);
    else
      report.rows_behind = state.last_seq() - through;
  }
  return report;
}

std::vector<Event> stream_events(const Store& store, const Stream& stream, std::string& error) {
  std::vector<Event> out;
  EventDecoder decoder;
  for (uint64_t seq : store.stream_seqs(stream)) {
    auto bytes = store.event_bytes(seq);
    Event e;
    if (!bytes) {
      error = "event " + std::to_string(seq) + " is missing";
      return {};
    }
    if (std::string bad = decoder.decode(*bytes, e); !bad.empty()) {
      error = "event " + std::to_string(seq) + ": " + bad;
      return {};
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<Subscription> subscription_as_of(const Store& store, const Catalog& catalog,
                                               const std::string& subscription_id, Date as_of,
                                               std::string& error) {
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
  evolve_copy(sub, due_transitions(sub, as_of, catalog));
  return sub;
}

}  // namespace subledger
