#include "ledger/ledger.h"

#include <absl/strings/ascii.h>
#include <absl/strings/escaping.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <limits>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "events/codec.h"
#include "ledger/queries.h"
#include "ledger/stamp.h"
#include "projections/projection_rows.h"
#include "projections/row_codec.h"

namespace subledger {

namespace {

// The last event the stored rows include, if their checkpoint row is there and well formed.
std::optional<uint64_t> stored_checkpoint(const Store& store) {
  auto row = store.projection("checkpoint");
  if (!row.ok() || row->size() != 8) return std::nullopt;
  return from_be64(*row);
}

constexpr size_t kHashBytes = 32;

int64_t system_clock_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CommandResult rejected(const std::string& request_id, const Rejection& r) {
  CommandResult out;
  out.request_id = request_id;
  out.code = r.code;
  out.message = r.message;
  return out;
}

Rejection idempotency_conflict(const std::string& request_id) {
  return {"IDEMPOTENCY_CONFLICT", "request_id '" + request_id +
                                      "' was already used for a different command; use a new "
                                      "request_id"};
}

// Rebuilds an acknowledged result from its idempotency record (the result line as printed).
CommandResult result_from_record(const std::string& json_text) {
  CommandResult out;
  auto j = nlohmann::ordered_json::parse(json_text);
  out.request_id = j.value("request_id", "");
  out.ok = j.value("ok", false);
  out.seq_first = j.value("seq_first", uint64_t{0});
  out.seq_last = j.value("seq_last", uint64_t{0});
  for (const auto& [key, value] : j.items()) {
    if (key == "request_id" || key == "ok" || key == "seq_first" || key == "seq_last") continue;
    if (!out.extra_json.empty()) out.extra_json += ",";
    out.extra_json += nlohmann::json(key).dump() + ":" + value.dump();
  }
  return out;
}

// True when nlohmann's dump would print `text` as is between quotes: printable ASCII without a
// quote or a backslash (every id the grammar admits is).
bool prints_unescaped(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; });
}

}  // namespace

std::string CommandResult::to_json() const {
  if (ok && prints_unescaped(request_id)) {
    // The line of nearly every accepted command, built directly (it is printed and stored in the
    // idempotency record of each one): byte for byte what the general path below prints.
    std::string out;
    out.reserve(request_id.size() + extra_json.size() + 80);
    out += "{\"request_id\":\"";
    out += request_id;
    out += duplicate ? "\",\"ok\":true,\"duplicate\":true,\"seq_first\":"
                     : "\",\"ok\":true,\"seq_first\":";
    out += std::to_string(seq_first);
    out += ",\"seq_last\":";
    out += std::to_string(seq_last);
    if (!extra_json.empty()) {
      out += ',';
      out += extra_json;
    }
    out += '}';
    return out;
  }
  nlohmann::ordered_json j;
  j["request_id"] = request_id;
  j["ok"] = ok;
  if (duplicate) j["duplicate"] = true;
  if (ok) {
    j["seq_first"] = seq_first;
    j["seq_last"] = seq_last;
  } else {
    j["code"] = code;
    j["message"] = message;
  }
  // Messages are built from validated input; should one ever carry a byte that is not UTF-8, it
  // is replaced rather than thrown over (a result line must always be printed).
  std::string out = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (!extra_json.empty()) out.insert(out.size() - 1, "," + extra_json);
  return out;
}

void LoggedCommand::add(uint64_t seq, const Event& e) {
  if (seq_first == 0) {
    request_id = e.request_id;
    command_hash = e.command_hash;
    seq_first = seq;
  }
  seq_last = seq;
  if (const auto* run = std::get_if<BillingRun>(&e.payload)) invoices_issued = run->invoices_issued;
}

std::string LoggedCommand::record(std::string_view payload_hash) const {
  CommandResult result;
  result.request_id = request_id;
  result.ok = true;
  result.seq_first = seq_first;
  result.seq_last = seq_last;
  if (invoices_issued)
    result.extra_json = "\"invoices_issued\":" + std::to_string(*invoices_issued);
  return std::string(payload_hash) + result.to_json();
}

namespace {

// Writes the stream index entries and idempotency records of every event after the derived mark
// (what a crash, or a close without a flush, left unwritten), without the WAL, and moves the mark.
// Returns how many events it covered. Records are derived whole commands at a time, so the mark
// never splits a command.
// `unfinished`: a billing run the log holds without its end: its record is derived once it ends
// (the mark stays before it meanwhile).
absl::StatusOr<uint64_t> catch_up_index(Store& store, const std::optional<UnfinishedRun>& unfinished) {
  constexpr uint64_t kEventsPerWrite = 1 << 18;
  auto mark = store.derived_mark();
  if (!mark.ok()) return mark.status();
  EventDecoder decoder;
  Event e;
  LoggedCommand span;
  uint64_t events = 0, staged = 0;
  absl::Status failed;
  auto finish_span = [&]() -> bool {
    if (span.seq_first == 0) return true;
    if (unfinished && span.request_id == unfinished->request_id &&
        span.seq_last >= unfinished->seq_first) {
      span = LoggedCommand{};
      return true;
    }
    if (span.command_hash.size() != 32) {
      failed = absl::DataLossError("event " + std::to_string(span.seq_first) + " begins request '" +
                                   span.request_id + "' without its command's payload hash");
      return false;
    }
    store.stage_idempotency(span.request_id, span.record(span.command_hash), /*derivable=*/true);
    store.stage_derived_mark(span.seq_last);
    if (staged >= kEventsPerWrite) {
      failed = store.commit(/*sync=*/false);
      staged = 0;
    }
    span = LoggedCommand{};
    return failed.ok();
  };
  absl::Status scan = store.scan_events(*mark, [&](uint64_t seq, std::string_view bytes) {
    if (absl::Status bad = decoder.decode(bytes, e); !bad.ok()) {
      failed = at_event(seq, bad);
      return false;
    }
    if (e.request_id != span.request_id && !finish_span()) return false;
    span.add(seq, e);
    store.stage_stream_entry(e.stream, e.stream_version, seq);
    ++events;
    ++staged;
    return true;
  });
  if (!scan.ok()) return scan;
  if (!failed.ok()) return failed;
  if (!finish_span()) return failed;
  if (absl::Status s = store.commit(/*sync=*/false); !s.ok()) return s;
  return events;
}

}  // namespace

std::string UnfinishedRun::encode() const {
  nlohmann::ordered_json j;
  j["request_id"] = request_id;
  j["command_hash"] = absl::BytesToHexString(command_hash);
  j["actor"] = actor;
  j["through"] = through.iso();
  j["seq_first"] = seq_first;
  j["invoices_issued"] = invoices_issued;
  j["transitions"] = transitions;
  if (starts) {
    nlohmann::ordered_json after = nlohmann::ordered_json::object();
    for (const auto& [partner_id, date] : *starts) after[partner_id] = date.iso();
    j["starts"] = std::move(after);
  }
  return j.dump();
}

absl::StatusOr<UnfinishedRun> UnfinishedRun::decode(std::string_view record) {
  auto bad = [&]() {
    return absl::DataLossError("the progress record of an unfinished billing run is malformed: " +
                               std::string(record.substr(0, 200)));
  };
  nlohmann::json j = nlohmann::json::parse(record, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad();
  UnfinishedRun run;
  try {
    run.request_id = j.at("request_id").get<std::string>();
    run.actor = j.at("actor").get<std::string>();
    const std::string hex = j.at("command_hash").get<std::string>();
    if (hex.size() != 2 * kHashBytes ||
        !std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); }))
      return bad();
    run.command_hash = absl::HexStringToBytes(hex);
    std::optional<Date> through = Date::parse(j.at("through").get<std::string>());
    if (!through) return bad();
    run.through = *through;
    run.seq_first = j.at("seq_first").get<uint64_t>();
    run.invoices_issued = j.at("invoices_issued").get<uint32_t>();
    run.transitions = j.at("transitions").get<uint32_t>();
    if (j.contains("starts")) {
      const nlohmann::json& after = j.at("starts");
      if (!after.is_object()) return bad();
      run.starts.emplace();
      for (const auto& [partner_id, iso] : after.items()) {
        std::optional<Date> date = Date::parse(iso.get<std::string>());
        if (!date) return bad();
        (*run.starts)[partner_id] = *date;
      }
    }
  } catch (const nlohmann::json::exception&) {
    return bad();
  }
  if (run.command_hash.size() != kHashBytes || run.seq_first == 0 || run.request_id.empty())
    return bad();
  return run;
}

std::string BillingSummary::to_json() const {
  nlohmann::ordered_json j;
  j["through"] = through.iso();
  j["previous_clock"] = previous_clock.is_none() ? nlohmann::ordered_json(nullptr)
                                                 : nlohmann::ordered_json(previous_clock.iso());
  j["dry_run"] = dry_run;
  j["transitions"] = transitions;
  j["invoices_issued"] = invoices_issued;
  nlohmann::ordered_json totals = nlohmann::ordered_json::object();
  for (const auto& [currency, minor] : totals_minor)
    totals[currency] =
        format_exact(ExactAmount{minor, 1}, minor_digits(currency), minor_digits(currency));
  j["totals"] = totals;
  j["invoice_ids"] = invoice_ids;
  return j.dump();
}

Ledger::Ledger(std::unique_ptr<Store> store, Options options)
    : store_(std::move(store)), options_(std::move(options)), state_(/*track_changes=*/true) {
  if (!options_.clock) options_.clock = system_clock_micros;
  if (!options_.logger)
    options_.logger = std::make_shared<spdlog::logger>(
        "subledger", std::make_shared<spdlog::sinks::null_sink_mt>());
}

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::open(const std::string& dir, Options options) {
  Store::OpenOptions how;
  how.access = options.preview             ? Store::Access::kRead
               : options.create_if_missing ? Store::Access::kCreateOrWrite
                                           : Store::Access::kWrite;
  auto store = Store::open(dir, how);
  if (!store.ok()) return store.status();
  return open(std::move(*store), std::move(options));
}

std::unique_ptr<Ledger> Ledger::open(const std::string& dir, Options options, std::string& error) {
  auto ledger = open(dir, std::move(options));
  if (ledger.ok()) return std::move(*ledger);
  error = std::string(ledger.status().message());
  return nullptr;
}

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::open(std::unique_ptr<Store> store,
                                                     Options options) {
  options.preview |= store->read_only();
  std::unique_ptr<Ledger> ledger(new Ledger(std::move(store), std::move(options)));
  std::optional<UnfinishedRun> unfinished;
  if (auto record = ledger->store_->unfinished_run(); record.ok()) {
    auto run = UnfinishedRun::decode(*record);
    if (!run.ok()) return run.status();
    unfinished = std::move(*run);
  } else if (!absl::IsNotFound(record.status())) {
    return record.status();
  }
  if (absl::Status s = ledger->open_state(unfinished); !s.ok()) return s;
  // A billing run a crash cut short is ended before anything else is decided: its events stay
  // contiguous, and a retry of it is then answered as a duplicate. (A reader sees it as its
  // parts left it: some invoices issued, the billing clock not moved yet.)
  if (unfinished && !ledger->options_.preview)
    if (absl::Status s = ledger->end_unfinished_run(*unfinished); !s.ok()) return s;
  if (unfinished && ledger->options_.preview)
    ledger->options_.logger->warn(
        "the billing run '{}' through {} was cut short by a crash after event {}; this reads it "
        "as its parts left it, and the next writer to open the ledger ends it",
        unfinished->request_id, unfinished->through.iso(), ledger->state_.last_seq());
  return ledger;
}

absl::Status Ledger::open_state(const std::optional<UnfinishedRun>& unfinished) {
  if (!options_.preview) {
    // Before any command is decided, the stream index and the idempotency records reach the end
    // of the log again, so a command retried after a crash is answered as a duplicate. (Readers
    // decide nothing; they fold the index entries they lack in memory, Store::stream_seqs.)
    auto caught_up = catch_up_index(*store_, unfinished);
    if (!caught_up.ok()) return caught_up.status();
    open_report_.index_caught_up = *caught_up;
    if (options_.load_on_demand) {
      auto on_demand = load_catalog_only();
      if (!on_demand.ok()) return on_demand.status();
      if (*on_demand) return absl::OkStatus();
    }
  }
  if (absl::Status s = load_or_reset_projections(); !s.ok()) return s;
  if (absl::Status error = catch_up(); !error.ok())
    return absl::DataLossError("the event log is damaged: " + std::string(error.message()) +
                               "; nothing was written (`subledger replay --verify` reports the "
                               "log; restore a backup)");
  if (open_report_.events_caught_up == 0) return absl::OkStatus();
  if (options_.preview) {
    // A reader never writes: the caught-up rows go into the store's overlay, so what it reads
    // from the rows (issued invoices, subscriptions) is as of the last durable event.
    state_.take_changed_rows(
        [&](std::string_view key, std::string_view value) { store_->overlay_projection(key, value); },
        [&](std::string_view key) { store_->overlay_projection_erase(key); });
    store_->overlay_projection("checkpoint", be64(state_.last_seq()));
    return absl::OkStatus();
  }
  // Write the caught-up rows now, so the next open starts from here.
  commits_since_rows_ = options_.projection_every_commits;
  return commit();
}

absl::Status Ledger::end_unfinished_run(const UnfinishedRun& run) {
  Command c;
  c.type = CommandType::kRunBilling;
  c.request_id = run.request_id;
  c.actor = run.actor;
  c.date = run.through;
  if (absl::Status s = load_for(c); !s.ok()) return s;
  commits_since_rows_ = options_.projection_every_commits;
  CommandResult result = run_billing(c, run.command_hash, &run);
  if (!io_failure_.empty()) return absl::UnavailableError(io_failure_);
  if (!result.ok)
    return absl::DataLossError("the billing run '" + run.request_id + "' through " +
                               run.through.iso() + ", cut short by a crash, cannot be ended: " +
                               result.message);
  if (absl::Status s = commit(); !s.ok()) return s;
  open_report_.ended_run = run.request_id;
  open_report_.ended_run_through = run.through;
  open_report_.ended_run_invoices = last_billing_.invoices_issued;
  options_.logger->warn(
      "ended the billing run '{}' through {}, which a crash had cut short: {} invoices in all, "
      "events {}-{}",
      run.request_id, run.through.iso(), last_billing_.invoices_issued, result.seq_first,
      result.seq_last);
  return absl::OkStatus();
}

absl::Status Ledger::load_or_reset_projections() {
  absl::Status why = load_projections();
  if (why.ok()) return absl::OkStatus();
  // Unusable rows are not fatal: the log is the truth. Drop them (with any damaged table file)
  // and rebuild from the log; a reader does it in memory.
  options_.logger->warn("rebuilding the projections from the log: {}",
                        std::string(why.message()));
  state_ = LedgerState(/*track_changes=*/true);
  open_report_ = OpenReport{};
  open_report_.rows_rebuilt = true;
  return store_->reset_projections();
}

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::rebuild(const std::string& dir, Options options) {
  options.preview = false;
  options.create_if_missing = false;
  auto store = Store::open(dir, Store::OpenOptions{Store::Access::kWrite});
  if (!store.ok()) return store.status();
  if (absl::Status s = (*store)->reset_projections(); !s.ok()) return s;
  auto ledger = open(std::move(*store), std::move(options));
  if (ledger.ok()) (*ledger)->open_report_.rows_rebuilt = true;
  return ledger;
}

namespace {

// The rows a reader reads lag the log (a writer beside it has not flushed them yet): folds the
// events after their checkpoint into the customers those events touch, each loaded from its rows
// with all its subscriptions, and lays the rows that changed over the stored ones. A tail that
// touches a few customers costs those customers, not the ledger. Returns false when the tail
// cannot be folded that way (a row missing, unreadable or damaged; a broken or damaged log): the
// caller then folds it over the whole state, which rebuilds what it can and says what is wrong.
// Errors other than damage (an I/O error) are returned as they are.
absl::StatusOr<bool> overlay_tail_by_customer(Store& store, uint64_t checkpoint,
                                              Ledger::RowsCatchUp& report) {
  // Damage (DataLoss) is for the whole fold to handle; anything else is the caller's error.
  auto fall_back_or = [](const absl::Status& s) -> absl::StatusOr<bool> {
    if (absl::IsDataLoss(s) || absl::IsNotFound(s)) return false;
    return s;
  };
  // First pass: which customers the tail touches (a subscription's, from the event that opened
  // it or else from its row), and which it creates.
  std::set<std::string> customers, created_customers, subscriptions_elsewhere, opened_in_tail;
  EventDecoder decoder;
  Event event;
  bool readable = true;
  absl::Status scan = store.scan_events(checkpoint, [&](uint64_t, std::string_view bytes) {
    if (!decoder.decode(bytes, event).ok()) return readable = false;
    if (const std::string* sub = subscription_id_of(event.payload)) {
      if (const std::string* customer = opening_customer_of(event.payload)) {
        customers.insert(*customer);
        opened_in_tail.insert(*sub);
      } else if (!opened_in_tail.contains(*sub)) {
        subscriptions_elsewhere.insert(*sub);
      }
    } else if (const std::string* customer = customer_named_by(event.payload)) {
      customers.insert(*customer);
      if (std::holds_alternative<CustomerCreated>(event.payload))
        created_customers.insert(*customer);
    }
    return true;
  });
  if (!scan.ok()) return fall_back_or(scan);
  if (!readable) return false;

  LedgerState state = LedgerState::subset();
  // A row the fold needs: false when it is absent or cannot be loaded.
  auto load = [&](const std::string& key) -> absl::StatusOr<bool> {
    auto row = store.projection(key);
    if (!row.ok()) return fall_back_or(row.status());
    return state.load_row(key, *row).ok();
  };
  // A subscription opened in the tail has no row yet (else the log opens it twice, which the
  // whole fold reports); one opened before has, and names its customer.
  for (const std::string& sub : opened_in_tail) {
    auto row = store.projection(subscription_row_key(sub));
    if (!absl::IsNotFound(row.status())) return row.ok() ? false : fall_back_or(row.status());
  }
  for (const std::string& sub : subscriptions_elsewhere) {
    auto row = store.projection(subscription_row_key(sub));
    if (!row.ok()) return fall_back_or(row.status());
    std::optional<Subscription> decoded = decode_subscription_row(*row);
    if (!decoded) return false;
    customers.insert(decoded->customer_id);
  }
  for (const std::string& key : {std::string(kCatalogRow), std::string(kMetaRow)}) {
    auto loaded = load(key);
    if (!loaded.ok() || !*loaded) return loaded;
  }
  // Likewise a customer created in the tail has no row yet, and every other one has.
  for (const std::string& customer : customers) {
    const std::string key = customer_row_key(customer);
    if (created_customers.contains(customer)) {
      auto row = store.projection(key);
      if (!absl::IsNotFound(row.status())) return row.ok() ? false : fall_back_or(row.status());
      continue;
    }
    // Its own row and those under it (the state takes the customer whole at the next customer's
    // row or at finish_load), then the row of each subscription listed there.
    bool fits = true, found = false;
    std::vector<std::string> subscriptions;
    absl::Status read = store.scan_projections(
        key,
        [&](std::string_view k, std::string_view v) {
          found = true;
          fits = state.load_row(k, v).ok();
          auto parsed = parse_customer_row_key(k);
          if (parsed && parsed->kind == CustomerRowKey::Kind::kSubscription)
            subscriptions.emplace_back(v);
          return fits;
        },
        Store::Scan::kShort);
    if (!read.ok()) return fall_back_or(read);
    if (!found || !fits) return false;
    for (const std::string& sub : subscriptions) {
      auto loaded = load(subscription_row_key(sub));
      if (!loaded.ok() || !*loaded) return loaded;
    }
  }
  if (!state.finish_load().ok()) return false;

  // Second pass: the fold itself.
  bool folded = true;
  scan = store.scan_events(checkpoint, [&](uint64_t seq, std::string_view bytes) {
    folded = decoder.decode(bytes, event).ok() && event.seq == seq && state.apply(event).ok();
    return folded;
  });
  if (!scan.ok()) return fall_back_or(scan);
  if (!folded || !state.mismatches().empty()) return false;  // the whole fold says what is wrong
  report.events = state.last_seq() - checkpoint;
  report.customers = customers.size();
  state.take_changed_rows(
      [&](std::string_view key, std::string_view value) { store.overlay_projection(key, value); },
      [&](std::string_view key) { store.overlay_projection_erase(key); });
  store.overlay_projection("checkpoint", be64(state.last_seq()));
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Ledger::open_rows_for_reading(const std::string& dir,
                                                                     bool fold_everything,
                                                                     RowsCatchUp* report,
                                                                     Store::Reads reads) {
  RowsCatchUp ignored;
  if (!report) report = &ignored;
  *report = RowsCatchUp{};
  Store::OpenOptions store_options{Store::Access::kRead};
  store_options.reads = reads;
  auto store = Store::open(dir, store_options);
  if (!store.ok()) return store.status();
  const uint64_t last = (*store)->last_seq();
  if (fold_everything) {
    if (absl::Status s = (*store)->reset_projections(); !s.ok()) return s;
  } else if (last == 0) {
    return store;
  } else if (std::optional<uint64_t> checkpoint = stored_checkpoint(**store);
             checkpoint && *checkpoint <= last) {
    auto meta = (*store)->projection(kMetaRow);
    if (meta.ok() && meta_row_current(*meta)) {
      if (*checkpoint == last) return store;  // the rows are current
      auto overlaid = overlay_tail_by_customer(**store, *checkpoint, *report);
      if (!overlaid.ok()) return overlaid.status();
      if (*overlaid) return store;
    }
  }
  Options options;
  options.preview = true;
  auto ledger = open(std::move(*store), std::move(options));  // overlays the caught-up rows
  if (!ledger.ok()) return ledger.status();
  report->whole_state = true;
  report->events = (*ledger)->open_report().events_caught_up;
  return (*ledger)->release_store();
}

absl::Status Ledger::load_projections() {
  auto checkpoint = store_->projection("checkpoint");
  if (absl::IsNotFound(checkpoint.status()))
    return absl::OkStatus();  // a new ledger, or never written rows
  if (!checkpoint.ok()) return checkpoint.status();
  if (checkpoint->size() != 8) return absl::DataLossError("the checkpoint row is malformed");
  auto meta = store_->projection(kMetaRow);
  if (!meta.ok() && !absl::IsNotFound(meta.status())) return meta.status();
  if (!meta.ok() || !meta_row_current(*meta))
    return absl::FailedPreconditionError("projection rows of an older format");
  // Row by row of each kind the state holds, so the invoice rows (most of the bytes: they are
  // written once and never loaded) are skipped by seeking past them, not read.
  for (std::string_view prefix : kStateRowPrefixes) {
    absl::Status error;
    absl::Status read =
        store_->scan_projections(prefix, [&](std::string_view key, std::string_view value) {
          error = state_.load_row(key, value);
          return error.ok();
        });
    if (!read.ok()) return read;
    if (!error.ok()) return error;
  }
  if (absl::Status bad = state_.finish_load(); !bad.ok()) return bad;
  if (state_.last_seq() != from_be64(*checkpoint))
    return absl::DataLossError("checkpoint and meta row disagree");
  open_report_.from_checkpoint = true;
  open_report_.checkpoint = state_.last_seq();
  return absl::OkStatus();
}

absl::StatusOr<bool> Ledger::load_catalog_only() {
  LedgerState subset = LedgerState::subset();
  const uint64_t last = store_->last_seq();
  if (last != 0) {
    // Only rows that reach the end of the log will do: a tail to fold (after a crash) could
    // touch any customer, so it is folded over the whole state, which also rebuilds bad rows.
    if (stored_checkpoint(*store_) != last) return false;
    for (std::string_view key : {kCatalogRow, kMetaRow}) {
      auto row = store_->projection(key);
      if (!row.ok() || !subset.load_row(key, *row).ok()) return false;
    }
    if (!subset.finish_load().ok() || subset.last_seq() != last) return false;
    const uint64_t expected = options_.expected_commands;
    if (expected != 0 &&
        expected >= subset.subscriptions_in_ledger() / kSubscriptionsPerCommandOnDemand)
      return false;  // they would touch much of it: the whole state, read in order
  }
  state_ = std::move(subset);
  {
    std::unique_lock lock(prefetch_mutex_);
    on_demand_ = true;
  }
  open_report_.on_demand = true;
  open_report_.from_checkpoint = last != 0;
  open_report_.checkpoint = last;
  return true;
}

absl::StatusOr<Subscription> listed_subscription(const std::string& customer_id,
                                                 const std::string& id,
                                                 const absl::StatusOr<std::string>& row) {
  if (absl::IsNotFound(row.status()))
    return absl::DataLossError("customer " + customer_id + " lists subscription " + id +
                               ", which has no row");
  if (!row.ok()) return row.status();
  std::optional<Subscription> decoded = decode_subscription(*row);
  if (!decoded) return absl::DataLossError("the row of subscription " + id + " is unreadable");
  return std::move(*decoded);
}

namespace {

// A customer's rows decoded: the customer's, then each of its subscriptions' in its order.
// NotFound when the customer has no row; DataLoss when a row cannot be read.
// `subscriptions_max`: a customer with more is not read (ResourceExhausted).
absl::Status read_customer(const Store& store, const std::string& customer_id,
                           RowPrefetch::Customer& out,
                           size_t subscriptions_max = std::numeric_limits<size_t>::max()) {
  absl::StatusOr<CustomerRow> row = stored_customer(store, customer_id, subscriptions_max);
  if (!row.ok()) return row.status();
  const std::vector<std::string>& ids = row->customer.subscription_ids;
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const std::string& id : ids) keys.push_back(subscription_row_key(id));
  // One batched lookup: the rows share the blocks they fall in.
  std::vector<absl::StatusOr<std::string>> rows = store.projections(keys);
  out.subscriptions.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::StatusOr<Subscription> sub = listed_subscription(customer_id, ids[i], rows[i]);
    if (!sub.ok()) return sub.status();
    out.subscriptions.push_back(std::move(*sub));
  }
  out.id = customer_id;
  out.exists = true;
  out.row = std::move(*row);
  return absl::OkStatus();
}

// A customer's rows read ahead into `out`, or that it has none. A read that fails is left out:
// the command's own read meets the error again.
void read_ahead(const Store& store, const std::string& customer_id, size_t subscriptions_max,
                RowPrefetch& out) {
  RowPrefetch::Customer read;
  absl::Status s = read_customer(store, customer_id, read, subscriptions_max);
  if (absl::IsNotFound(s)) read.id = customer_id;
  if (s.ok() || absl::IsNotFound(s)) out.customers.push_back(std::move(read));
}

// The customer a subscription's row names ("" when it has no row).
absl::StatusOr<std::string> read_customer_of(const Store& store,
                                             const std::string& subscription_id) {
  auto value = store.projection(subscription_row_key(subscription_id));
  if (absl::IsNotFound(value.status())) return std::string();
  if (!value.ok()) return value.status();
  std::optional<Subscription> sub = decode_subscription_row(*value);
  if (!sub || sub->customer_id.empty())
    return absl::DataLossError("the row of subscription " + subscription_id + " is unreadable");
  return std::move(sub->customer_id);
}

}  // namespace

absl::StatusOr<std::string> Ledger::customer_of(const std::string& subscription_id,
                                                const RowPrefetch* prefetch) const {
  if (prefetch && prefetch->generation == generation_.load(std::memory_order_acquire))
    for (const auto& [id, customer] : prefetch->subscription_customers)
      if (id == subscription_id) return customer;
  return read_customer_of(*store_, subscription_id);
}

absl::Status Ledger::load_customer(const std::string& customer_id, RowPrefetch* prefetch) {
  if (prefetch && prefetch->generation == generation_.load(std::memory_order_acquire)) {
    for (RowPrefetch::Customer& read : prefetch->customers) {
      // Taken once, it is read again (a batch of billing's read-ahead may name it twice).
      if (read.id != customer_id || read.taken) continue;
      if (!read.exists) return absl::NotFoundError("no customer " + customer_id);
      read.taken = true;
      return state_.load_customer(customer_id, std::move(read.row),
                                  std::move(read.subscriptions));
    }
  }
  RowPrefetch::Customer read;
  if (absl::Status s = read_customer(*store_, customer_id, read); !s.ok()) return s;
  return state_.load_customer(customer_id, std::move(read.row), std::move(read.subscriptions));
}

void Ledger::prefetch_customers(const std::vector<const std::string*>& customer_ids,
                                size_t subscriptions_max, RowPrefetch& out) const {
  std::shared_lock lock(prefetch_mutex_);
  if (!on_demand_) return;
  // Read before the rows, as in prefetch_rows: a customer dropped after this makes them stale.
  out.generation = generation_.load(std::memory_order_acquire);
  for (const std::string* id : customer_ids) read_ahead(*store_, *id, subscriptions_max, out);
}

void Ledger::prefetch_rows(PreparedCommand& prepared, ReadAhead& recent) const {
  constexpr size_t kSubscriptionsMax = 32;
  if (!prepared.parsed.command) return;
  const Command& c = *prepared.parsed.command;
  if (c.type == CommandType::kRunBilling || c.type == CommandType::kPublishPrice) return;
  std::shared_lock lock(prefetch_mutex_);
  if (!on_demand_) return;
  RowPrefetch& out = prepared.prefetch;
  // Read before the rows: a customer dropped after this (its newer row perhaps not read here)
  // makes the prefetch stale, and it is then not used.
  out.generation = generation_.load(std::memory_order_acquire);
  auto fetch_customer = [&](const std::string& customer_id) {
    if (std::find(recent.recent.begin(), recent.recent.end(), customer_id) != recent.recent.end())
      return;
    if (recent.recent.size() < recent.customers)
      recent.recent.push_back(customer_id);
    else if (!recent.recent.empty())
      recent.recent[recent.next++ % recent.recent.size()] = customer_id;
    read_ahead(*store_, customer_id, kSubscriptionsMax, out);
  };
  for (const std::string* id : {&c.subscription_id, &c.parent_subscription_id}) {
    if (id->empty()) continue;
    absl::StatusOr<std::string> customer = read_customer_of(*store_, *id);
    if (!customer.ok()) continue;
    out.subscription_customers.emplace_back(*id, *customer);
    if (!customer->empty()) fetch_customer(*customer);
  }
  if (!c.customer_id.empty()) fetch_customer(c.customer_id);
}

absl::Status Ledger::load_for(const Command& c, RowPrefetch* prefetch) {
  // Inside a group everything was loaded first (submit_group): nothing may be loaded, let alone
  // committed, between its commands.
  if (!on_demand_ || in_group_) return absl::OkStatus();
  if (c.type == CommandType::kPublishPrice ||
      (c.type == CommandType::kRunBilling && !options_.bill_from_rows))
    return load_whole_state();
  if (c.type == CommandType::kRunBilling) {
    // A billing run reads what it bills from the rows (run_billing): everything decided so far
    // is written with its rows first, so the rows are the state.
    commits_since_rows_ = options_.projection_every_commits;
    return commit();
  }
  auto load = [&]() -> absl::Status {
    // A subscription the command names (or adds to) brings its customer, wherever it is.
    for (const std::string* id : {&c.subscription_id, &c.parent_subscription_id}) {
      if (id->empty() || state_.subscription(*id)) continue;
      absl::StatusOr<std::string> customer = customer_of(*id, prefetch);
      if (!customer.ok()) return customer.status();
      if (customer->empty()) continue;  // no such subscription (yet)
      if (state_.catalog().customer(*customer))
        return absl::DataLossError("subscription " + *id + " has a row its customer does not list");
      absl::Status loaded = load_customer(*customer, prefetch);
      if (absl::IsNotFound(loaded))
        return absl::DataLossError("subscription " + *id + " has a row, its customer none");
      if (!loaded.ok()) return loaded;
    }
    if (c.customer_id.empty() || state_.catalog().customer(c.customer_id))
      return absl::OkStatus();
    absl::Status loaded = load_customer(c.customer_id, prefetch);
    return absl::IsNotFound(loaded) ? absl::OkStatus() : loaded;  // NotFound: a new customer
  };
  absl::Status loaded = load();
  if (loaded.ok()) return loaded;
  // Rows that cannot be used (unreadable, not fitting together, or an error reading them) are
  // not fatal: the whole state is loaded instead, rebuilt from the log when it must be, and
  // that meets a lasting I/O error itself.
  options_.logger->warn("loading the whole state: {}", std::string(loaded.message()));
  return load_whole_state();
}

absl::Status Ledger::load_whole_state() {
  {
    std::unique_lock lock(prefetch_mutex_);  // no prefetch reads the rows past this
    on_demand_ = false;
  }
  absl::Status loaded = [&]() -> absl::Status {
    // Everything decided so far is written with its rows first, so the rows are the state.
    commits_since_rows_ = options_.projection_every_commits;
    if (absl::Status error = commit(); !error.ok()) return error;
    state_ = LedgerState(/*track_changes=*/true);
    if (absl::Status s = load_or_reset_projections(); !s.ok()) return s;
    if (absl::Status error = catch_up(); !error.ok())
      return absl::DataLossError("the event log is damaged: " + std::string(error.message()));
    if (open_report_.events_caught_up == 0) return absl::OkStatus();
    commits_since_rows_ = options_.projection_every_commits;  // rows rebuilt from the log
    return commit();
  }();
  // A state half replaced decides nothing more (what was written before stays written).
  if (!loaded.ok() && unusable_.ok()) unusable_ = loaded;
  return loaded;
}

absl::Status Ledger::catch_up() {
  // A long catch-up (a rebuild) writes its rows every so often, so the invoices it regenerates
  // are not all held in memory until the end; each write is consistent with the events so far.
  constexpr uint64_t kRowsEvery = 1'000'000;
  EventDecoder decoder;
  Event event;
  absl::Status error;
  absl::Status scan =
      store_->scan_events(state_.last_seq(), [&](uint64_t seq, std::string_view bytes) {
        error = decoder.decode(bytes, event);
        if (error.ok() && event.seq != seq)
          error = absl::DataLossError("stored under the wrong sequence number");
        if (error.ok()) error = state_.apply(event);
        if (!error.ok()) return (error = at_event(seq, error)), false;
        if (++open_report_.events_caught_up % kRowsEvery == 0 && !options_.preview) {
          stage_projections();
          error = store_->commit(/*sync=*/false);
        }
        return error.ok();
      });
  if (!scan.ok()) return scan;
  return error;
}

absl::StatusOr<std::vector<IssuedInvoice>> Ledger::issued_invoices(
    const std::string& customer_id) const {
  return subledger::issued_invoices(*store_, customer_id);
}

CommandResult Ledger::submit(std::string_view json_line, uint64_t line_number) {
  ParsedCommand parsed = parse_command(json_line, line_number);
  if (!parsed.command) return rejected(parsed.request_id, parsed.rejection);
  return submit(*parsed.command);
}

PreparedCommand prepare_command(std::string_view json_line, uint64_t line_number) {
  PreparedCommand out{parse_command(json_line, line_number), "", {}};
  if (out.parsed.command) out.payload_hash = payload_hash(*out.parsed.command);
  return out;
}

CommandResult Ledger::submit(PreparedCommand& prepared) {
  if (!prepared.parsed.command)
    return rejected(prepared.parsed.request_id, prepared.parsed.rejection);
  return submit_hashed(*prepared.parsed.command, prepared.payload_hash, &prepared.prefetch);
}

CommandResult Ledger::submit(const Command& command) {
  return submit_hashed(command, payload_hash(command));
}

CommandResult Ledger::submit_hashed(const Command& command, const std::string& hash,
                                    RowPrefetch* prefetch) {
  if (!unusable_.ok()) {
    io_failure_ = std::string(unusable_.message());
    return rejected(command.request_id, {"UNAVAILABLE", io_failure_});
  }
  if (absl::Status error = load_for(command, prefetch); !error.ok()) {
    io_failure_ = std::string(error.message());
    return rejected(command.request_id, {"UNAVAILABLE", io_failure_});
  }
  if (auto r = check_scopes(command, state_)) return rejected(command.request_id, *r);
  std::optional<std::string> record;
  if (auto it = pending_requests_.find(command.request_id); it != pending_requests_.end()) {
    record = it->second;
  } else if (auto in = in_flight_requests_.find(command.request_id);
             in != in_flight_requests_.end()) {
    record = in->second;
  } else if (auto stored = store_->idempotency(command.request_id); stored.ok()) {
    record = std::move(*stored);
  } else if (!absl::IsNotFound(stored.status())) {
    // Unknown is not new: deciding it could apply a retried command twice.
    io_failure_ = std::string(stored.status().message());
    return rejected(command.request_id, {"UNAVAILABLE", io_failure_});
  }
  if (record && record->size() < kHashBytes) {
    io_failure_ = "the idempotency record of request id '" + command.request_id +
                  "' is damaged; nothing was decided";
    return rejected(command.request_id, {"UNAVAILABLE", io_failure_});
  }
  if (record) {
    // BILLING_RULES 10: same id and payload -> the original result; other payload -> conflict.
    if (record->compare(0, kHashBytes, hash) != 0)
      return rejected(command.request_id, idempotency_conflict(command.request_id));
    CommandResult original = result_from_record(record->substr(kHashBytes));
    original.duplicate = true;
    return original;
  }
  // The command's first event carries its payload hash: its idempotency record is then derived
  // from the log (Store: format 3).
  command_hash_ = hash;
  if (command.type == CommandType::kRunBilling) {
    // Issued invoices are read from their rows (`invoices`, the server's invoice routes): the
    // run's commit carries them, however far the rows may otherwise lag.
    if (options_.rows_with_billing_runs) commits_since_rows_ = options_.projection_every_commits;
    return run_billing(command, hash);
  }
  Decision decision = decide(command, state_);
  if (decision.rejection) {
    command_hash_.clear();
    return rejected(command.request_id, *decision.rejection);
  }
  CommandResult result;
  result.request_id = command.request_id;
  result.ok = true;
  for (const auto& staged : decision.events) {
    uint64_t seq = append(staged, command);
    if (result.seq_first == 0) result.seq_first = seq;
    result.seq_last = seq;
  }
  remember(command, hash, result);
  return result;
}

Ledger::GroupResult Ledger::submit_group(const std::vector<Command>& commands) {
  const bool undoable =
      std::all_of(commands.begin(), commands.end(),
                  [](const Command& c) { return c.is_subscription_command(); });
  // What the whole group is decided against is loaded first: loading never happens inside the
  // undo log (it could not be undone), nor after the copy of the state.
  for (size_t i = 0; i < commands.size(); ++i) {
    if (absl::Status error = load_for(commands[i]); !error.ok()) {
      io_failure_ = std::string(error.message());
      GroupResult out;
      out.rejected_index = i;
      out.rejection = rejected(commands[i].request_id, {"UNAVAILABLE", io_failure_});
      return out;
    }
  }
  struct Paused {
    bool& flag;
    ~Paused() { flag = false; }
  } paused{in_group_};
  in_group_ = true;
  if (commands.size() < 2 || !undoable) return submit_group_on_copy(commands);
  // Decided in place, each against what the earlier ones left; a rejection puts back what the
  // group changed: the touched entities (the state's undo log), the staged writes (a mark in the
  // batch) and the idempotency records remembered for the batch. Costs what the group touches,
  // not a copy of the ledger.
  // The group is put back unless kept: on a rejection and on an exception alike (a half-applied
  // group must never reach the next batch, nor leave the undo log recording).
  struct PutBack {
    Ledger& ledger;
    std::vector<std::string> remembered;
    bool keep = false;
    ~PutBack() {
      if (keep) {
        ledger.state_.end_undo();
        ledger.store_->keep_staged_since_mark();
        return;
      }
      ledger.state_.rollback();
      ledger.store_->drop_staged_since_mark();
      for (const auto& key : remembered) ledger.pending_requests_.erase(key);
    }
  };
  GroupResult out;
  state_.begin_undo();
  store_->mark_staged();
  PutBack put_back{*this, {}};
  for (size_t i = 0; i < commands.size(); ++i) {
    CommandResult r = submit(commands[i]);
    if (!r.ok) {
      out.results.clear();
      out.rejected_index = i;
      out.rejection = std::move(r);
      return out;
    }
    if (!r.duplicate) put_back.remembered.push_back(commands[i].request_id);
    out.results.push_back(std::move(r));
  }
  put_back.keep = true;
  return out;
}

Ledger::GroupResult Ledger::submit_group_on_copy(const std::vector<Command>& commands) {
  GroupResult out;
  if (commands.size() > 1) {
    // Decide the whole group on a scratch copy of the state first, so a rejection of a later
    // command leaves nothing staged. Only groups of two or more pay for the copy.
    LedgerState scratch = state_;
    for (size_t i = 0; i < commands.size(); ++i) {
      const Command& c = commands[i];
      if (c.type == CommandType::kRunBilling)
        throw std::logic_error("a billing run cannot be part of a command group");
      if (auto r = check_scopes(c, scratch)) {
        out.rejected_index = i;
        out.rejection = rejected(c.request_id, *r);
        return out;
      }
      if (auto record = request_record(c.request_id); record.ok()) {
        if (record->compare(0, kHashBytes, payload_hash(c)) == 0) continue;  // a duplicate
        out.rejected_index = i;
        out.rejection = rejected(c.request_id, idempotency_conflict(c.request_id));
        return out;
      } else if (!absl::IsNotFound(record.status())) {
        // Unknown is not new: deciding it could apply a retried command twice.
        io_failure_ = std::string(record.status().message());
        out.rejected_index = i;
        out.rejection = rejected(c.request_id, {"UNAVAILABLE", io_failure_});
        return out;
      }
      Decision decision = decide(c, scratch);
      if (decision.rejection) {
        out.rejected_index = i;
        out.rejection = rejected(c.request_id, *decision.rejection);
        return out;
      }
      for (const auto& staged : decision.events) {
        StampedEvent stamped = stamp_event(
            scratch, staged.payload, staged.date,
            staged.by_system ? std::string(kSystemActor) : c.actor, c.request_id, 0);
        if (absl::Status error = scratch.apply(stamped.event); !error.ok())
          throw std::logic_error("decided an event the projections reject: " +
                                 std::string(error.message()));
      }
    }
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    CommandResult r = submit(commands[i]);
    if (!r.ok) {
      // Only reachable for a single command: a group was decided whole above.
      if (commands.size() > 1) throw std::logic_error("a group decided twice differently");
      out.rejected_index = i;
      out.rejection = std::move(r);
      return out;
    }
    out.results.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::string> Ledger::request_record(const std::string& key) const {
  if (auto it = pending_requests_.find(key); it != pending_requests_.end()) return it->second;
  if (auto it = in_flight_requests_.find(key); it != in_flight_requests_.end()) return it->second;
  return store_->idempotency(key);
}

void Ledger::remember_record(const std::string& key, std::string record) {
  store_->stage_idempotency(key, record, /*derivable=*/false);  // the log cannot say it
  pending_requests_[key] = std::move(record);
}

uint64_t Ledger::append(const Staged& staged, const Command& command, Invoice* prebuilt) {
  StampedEvent stamped = stamp_event(state_, staged.payload, staged.date,
                                     staged.by_system ? std::string(kSystemActor) : command.actor,
                                     command.request_id, options_.clock(),
                                     std::exchange(command_hash_, std::string()));
  const Event& event = stamped.event;
  store_->stage_event(event.seq, event.stream, event.stream_version, stamped.bytes);
  if (absl::Status error = state_.apply(event, prebuilt); !error.ok())
    throw std::logic_error("decided an event the projections reject: " +
                           std::string(error.message()));
  return event.seq;
}

void Ledger::remember(const Command& command, const std::string& hash,
                      const CommandResult& result) {
  std::string record = hash + result.to_json();
  // A command accepted without an event leaves no trace in the log: its record is synced.
  store_->stage_idempotency(command.request_id, record, /*derivable=*/result.seq_first != 0);
  pending_requests_[command.request_id] = std::move(record);
}

void Ledger::stage_projections() {
  state_.take_changed_rows(
      [&](std::string_view key, std::string_view value) { store_->stage_projection(key, value); },
      [&](std::string_view key) { store_->stage_projection_erase(key); });
  store_->stage_projection("checkpoint", be64(state_.last_seq()));
}

absl::Status Ledger::commit() {
  if (absl::Status error = commit_async(); !error.ok()) return error;
  return wait_committed();
}

absl::Status Ledger::commit_async() {
  if (absl::Status error = wait_committed(); !error.ok()) return error;  // also an earlier one
  if (options_.preview) {
    store_->discard_staged();
    pending_requests_.clear();
    return absl::OkStatus();
  }
  const bool with_rows = ++commits_since_rows_ >= options_.projection_every_commits;
  if (with_rows) {
    stage_projections();
    commits_since_rows_ = 0;
    rows_behind_ = false;
  } else {
    rows_behind_ = true;
  }
  store_->commit_async(/*sync=*/options_.durable);
  in_flight_requests_ = std::move(pending_requests_);
  pending_requests_.clear();
  in_flight_ = true;
  if (with_rows && on_demand_ &&
      state_.loaded_entities() > options_.loaded_subscriptions_max) {
    // This batch holds the row of every loaded customer that changed: once it is written, every
    // customer can be loaded again from its row, so all are dropped.
    if (absl::Status error = wait_committed(); !error.ok()) return error;
    drop_customers();
  }
  return absl::OkStatus();
}

void Ledger::drop_customers() {
  generation_.fetch_add(1, std::memory_order_acq_rel);  // rows read before now may be older
  state_ = state_.without_customers();
}

absl::Status Ledger::write_rows() {
  if (absl::Status error = wait_committed(); !error.ok()) return error;
  if (options_.preview || !rows_behind_) return absl::OkStatus();
  stage_projections();
  commits_since_rows_ = 0;
  rows_behind_ = false;
  return store_->commit(/*sync=*/options_.durable);
}

absl::Status Ledger::wait_committed() {
  // A failed write stays failed: whoever asks next (the commit pipeline, after a commit made
  // inside a submit) learns it too, and nothing is written after it.
  if (!write_error_.ok()) return write_error_;
  if (!in_flight_) return absl::OkStatus();
  in_flight_ = false;
  // The caller reports it (one line, exit 2).
  absl::Status error = store_->wait_written();
  in_flight_requests_.clear();
  if (!error.ok()) write_error_ = error;
  return error;
}

}  // namespace subledger
