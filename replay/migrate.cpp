#include "replay/migrate.h"

#include <algorithm>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <vector>

#include "events/codec.h"
#include "ledger/command.h"
#include "ledger/ledger.h"
#include "ledger/store.h"
#include "replay/what_if.h"

namespace subledger {

std::string MigrationReport::to_json() const {
  nlohmann::ordered_json j;
  j["migrated"] = migrated;
  j["from_format"] = from_format;
  j["format"] = to_format;
  j["events"] = events;
  j["stream_entries"] = stream_entries;
  j["idempotency_records"] = idempotency_records;
  j["idempotency_records_rederived"] = records_rederived;
  return j.dump();
}

namespace {

// The stream index entries and each request id's events, from the log.
absl::Status read_log(const Store& store, std::vector<Store::StreamEntry>& streams,
                      std::map<std::string, LoggedCommand>& requests, uint64_t& events) {
  EventDecoder decoder;
  Event e;
  absl::Status error;
  absl::Status scan = store.scan_events(0, [&](uint64_t seq, std::string_view bytes) {
    error = decoder.decode(bytes, e);
    if (!error.ok()) {
      error = at_event(seq, error);
      return false;
    }
    ++events;
    streams.push_back(Store::StreamEntry{e.stream, e.stream_version, seq});
    requests[e.request_id].add(seq, e);
    return true;
  });
  if (!scan.ok()) return scan;
  return error;
}

// A record for each request id of the log that has none. Its hash is the one the command's first
// event carries (format 3: exact), else the hash of the command recovered from its events (older
// events); its result line is the one its events show. A retry with the same payload is then a
// duplicate; with a payload an older recovery does not reproduce exactly, a conflict: never a
// second application.
absl::Status rederive_records(const Store& store,
                              const std::map<std::string, LoggedCommand>& spans,
                              std::map<std::string, std::string>& records, uint64_t& rederived) {
  for (const auto& [id, span] : spans) {
    if (records.count(id) || span.command_hash.empty()) continue;
    records[id] = span.record(span.command_hash);
    ++rederived;
  }
  if (std::all_of(spans.begin(), spans.end(),
                  [&](const auto& span) { return records.count(span.first) > 0; }))
    return absl::OkStatus();
  std::vector<Command> commands;
  if (absl::Status e = recover_commands(store, commands); !e.ok()) return e;
  for (const Command& c : commands) {
    if (records.count(c.request_id)) continue;
    auto span = spans.find(c.request_id);
    if (span == spans.end()) continue;
    records[c.request_id] = span->second.record(payload_hash(c));
    ++rederived;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<IndexReport> rederive_index(Store& s) {
  IndexReport report;
  std::vector<Store::StreamEntry> streams;
  std::map<std::string, LoggedCommand> spans;
  if (absl::Status st = read_log(s, streams, spans, report.events); !st.ok()) return st;
  auto records = s.all_idempotency_records();
  if (absl::IsDataLoss(records.status())) {
    // A damaged table of records: every record is re-derived from the log instead.
    report.records_were_unreadable = true;
    records = std::map<std::string, std::string>();
  }
  if (!records.ok()) return records.status();
  // A billing run the log holds without its end gets its record when the next writer's open ends
  // it; until then the index is marked as reaching no further than the event before it.
  uint64_t through_seq = s.last_seq();
  std::optional<UnfinishedRun> unfinished;
  if (auto record = s.unfinished_run(); record.ok()) {
    auto run = UnfinishedRun::decode(*record);
    if (!run.ok()) return run.status();
    unfinished = std::move(*run);
    spans.erase(unfinished->request_id);
    through_seq = std::min(through_seq, unfinished->seq_first - 1);
  } else if (!absl::IsNotFound(record.status())) {
    return record.status();
  }
  if (absl::Status st = rederive_records(s, spans, *records, report.records_rederived); !st.ok())
    return st;
  if (absl::Status st = s.rewrite_index(streams, *records, through_seq); !st.ok()) return st;
  report.stream_entries = streams.size();
  report.idempotency_records = records->size();
  return report;
}

absl::StatusOr<MigrationReport> migrate_ledger(const std::string& dir) {
  MigrationReport report;
  report.to_format = kLedgerFormat;
  {
    Store::OpenOptions how{Store::Access::kWrite, /*any_format=*/true, /*repairing_index=*/true};
    auto store = Store::open(dir, how);
    if (!store.ok()) return store.status();
    Store& s = **store;
    report.from_format = s.format();
    if (s.format() > kLedgerFormat)
      return absl::FailedPreconditionError("the ledger in " + dir + " is of a newer format (" +
                                           std::to_string(s.format()) +
                                           "): use a newer subledger");
    if (absl::Status st = s.reset_projections(); !st.ok()) return st;
    auto index = rederive_index(s);
    if (!index.ok()) return index.status();
    report.events = index->events;
    report.stream_entries = index->stream_entries;
    report.idempotency_records = index->idempotency_records;
    report.records_rederived = index->records_rederived;
    report.migrated = report.from_format != kLedgerFormat;
  }
  // Opening folds the whole log (there are no rows now) and writes every row and the checkpoint.
  Ledger::Options options;
  options.create_if_missing = false;
  auto ledger = Ledger::open(dir, std::move(options));
  if (!ledger.ok()) return ledger.status();
  return report;
}

}  // namespace subledger
