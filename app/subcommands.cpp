#include "app/subcommands.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "app/output.h"
#include "app/progress.h"
#include "app/shell.h"
#include "app/tables.h"
#include "events/codec.h"
#include "events/money.h"
#include "ledger/command_stream.h"
#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "ledger/reports.h"
#include "projections/views.h"
#include "replay/migrate.h"
#include "replay/replay.h"
#include "replay/what_if.h"

namespace subledger::cli {

using Json = nlohmann::ordered_json;

int fail(const std::string& message) {
  tell(message);
  return kExitError;
}

void tell(const std::string& message) {
  // One line: a control byte from an argument (an id with a newline) is shown escaped.
  std::string line;
  for (unsigned char ch : message) {
    if (ch < 0x20 || ch == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      line += "\\x";
      line += kHex[ch >> 4];
      line += kHex[ch & 0xf];
    } else {
      line += static_cast<char>(ch);
    }
  }
  std::cerr << "subledger: " << line << "\n";
}

namespace {

absl::StatusOr<std::unique_ptr<Store>> open_for_reading(const std::string& db) {
  return Store::open(db, Store::OpenOptions{Store::Access::kRead});
}

// What `apply` tells when it is done: "14 commands: 2 applied, 12 rejected, 0 duplicates".
struct CommandCounts {
  uint64_t commands = 0, applied = 0, rejected = 0, duplicates = 0;
  void add(const CommandResult& r) {
    ++commands;
    (!r.ok ? rejected : r.duplicate ? duplicates : applied) += 1;
  }
  std::string summary() const {
    return fmt::format("{} command{}: {} applied, {} rejected, {} duplicate{}", commands,
                       commands == 1 ? "" : "s", applied, rejected, duplicates,
                       duplicates == 1 ? "" : "s");
  }
};

std::string duration_text(double seconds) {
  return seconds < 10 ? fmt::format("{} ms", static_cast<int64_t>(seconds * 1000 + 0.5))
                      : fmt::format("{:.1f} s", seconds);
}

uint64_t per_second(uint64_t n, double seconds) {
  return static_cast<uint64_t>(seconds > 0 ? n / seconds : 0);
}

// What a billing run did, or would do: never "billed" for a dry run or a run that issued nothing.
std::string billing_text(const BillingSummary& run) {
  std::string amounts;
  for (const auto& [currency, minor] : run.totals_minor) {
    const int digits = minor_digits(currency);
    amounts += (amounts.empty() ? "" : ", ") + format_exact(ExactAmount{minor, 1}, digits, digits) +
               " " + currency;
  }
  const std::string invoices =
      fmt::format("{} invoice{} through {} ({})", run.invoices_issued,
                  run.invoices_issued == 1 ? "" : "s", run.through.iso(), amounts);
  if (run.dry_run)
    return run.invoices_issued
               ? "dry run: would issue " + invoices + "; nothing was recorded"
               : "dry run: nothing to bill through " + run.through.iso() + "; nothing was recorded";
  return run.invoices_issued
             ? "issued " + invoices
             : "nothing to bill through " + run.through.iso() + ": no invoice issued";
}

int output_failed(size_t answered_lines) {
  return fail("cannot write the results to standard output after " +
              std::to_string(answered_lines) +
              " input lines; the commands answered so far are durable: apply the file again to "
              "see every result (requests already applied are answered as duplicates)");
}

int write_failed(const std::string& error, size_t unacknowledged) {
  return fail(error + "; the " + std::to_string(unacknowledged) +
              " commands not yet answered were not acknowledged: apply the file again (requests "
              "already applied are answered as duplicates)");
}

}  // namespace

int apply(const ApplyOptions& o, std::ostream& out) {
  std::ifstream file;
  std::istream* in = &std::cin;
  bool interactive = false;
  if (o.input != "-") {
    std::error_code ec;
    if (std::filesystem::is_directory(o.input, ec))
      return fail("cannot read " + o.input + ": it is a directory (apply takes a file of "
                  "JSON-lines commands, or - for standard input)");
    file.open(o.input);
    if (!file) return fail("cannot read " + o.input);
    in = &file;
  } else {
    struct stat st {};
    interactive = fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode);
    if (!interactive && S_ISDIR(st.st_mode)) return fail("standard input is a directory");
  }
  auto opening = std::chrono::steady_clock::now();
  // Rows are derived (written without the WAL, caught up from the log on open): a file's batches
  // write them every 16th batch (a customer touched in many batches is written once), with
  // every billing run, and at the end.
  // State on disk: only the customers the commands name are loaded, unless the input holds so
  // many commands that reading the whole state costs less (Ledger::Options::expected_commands;
  // a generated command is 130-150 bytes, so 128 counts a few too many rather than too few).
  // The length of a pipe or a terminal is unknown: on demand.
  constexpr uint32_t kApplyRowsEveryCommits = 16;
  constexpr uint64_t kBytesPerCommand = 128;
  uint64_t expected_commands = 0;
  if (o.load == "auto") {
    struct stat st {};
    const int got = o.input == "-" ? fstat(STDIN_FILENO, &st) : stat(o.input.c_str(), &st);
    if (got == 0 && S_ISREG(st.st_mode))
      expected_commands = static_cast<uint64_t>(st.st_size) / kBytesPerCommand + 1;
  }
  auto opened = open_ledger(o.db, Mode::kCreateOrWrite, kApplyRowsEveryCommits,
                            /*load_on_demand=*/o.load != "whole", expected_commands);
  if (!opened.ok()) return fail_status(opened.status());
  std::unique_ptr<Ledger> ledger = std::move(*opened);
  auto started = std::chrono::steady_clock::now();
  const uint64_t first_seq = ledger->state().last_seq();
  const bool progress = stderr_is_terminal();
  // The library's pipelined group commit: while batch n is written (synced) on the second core,
  // batch n+1 is decided; batch n's results are printed only once its write has returned.
  CommandCounts counts;
  CommitPipeline::Options pipe_options;
  pipe_options.batch_commands_max = o.batch_commands_max;
  pipe_options.after_acks = [&out] { out.flush(); };
  CommitPipeline pipeline(*ledger, std::move(pipe_options));
  auto failed = [&](const absl::Status& e) {
    return write_failed(std::string(e.message()), pipeline.unacknowledged_at_failure());
  };
  uint64_t lines = 0;
  // One input line: decide it, answer once durable, and write a full batch. An exit status to
  // return at once, or nullopt to go on.
  auto take = [&](const CommandResult& result, bool blank) -> std::optional<int> {
    // INTERFACE.md: a blank line has no result and no effect on the exit status.
    if (!blank) {
      if (!ledger->io_failure().empty()) {
        // The ledger could not be read for this command: answer and keep the ones before it, stop.
        if (absl::Status e = pipeline.commit(); !e.ok()) return failed(e);
        if (!out) return output_failed(lines);
        return fail(ledger->io_failure() + "; line " + std::to_string(lines) +
                    " and those after it were not applied");
      }
      counts.add(result);
      pipeline.on_durable([&out, json = result.to_json()](const std::string& error) {
        if (error.empty()) out << json << '\n';
      });
    }
    // Never hold a result back while the producer on a pipe waits for it.
    bool drained = interactive && in->rdbuf()->in_avail() <= 0;
    if (drained) {
      if (absl::Status e = pipeline.commit(); !e.ok()) return failed(e);
      if (!out) return output_failed(lines);
    } else if (pipeline.batch_full()) {
      if (absl::Status e = pipeline.commit_async(); !e.ok()) return failed(e);
      if (!out) return output_failed(lines);
      if (progress && lines % 65536 < o.batch_commands_max)
        std::cerr << "\rapplied " << lines << " commands" << std::flush;
    }
    return std::nullopt;
  };
  bool read_failed = false;
  if (interactive) {
    // A pipe or a terminal: each line is decided as soon as it arrives.
    std::string line;
    while (std::getline(*in, line)) {
      ++lines;
      const bool blank = is_blank_line(line);
      CommandResult result = blank ? CommandResult{} : ledger->submit(line, lines);
      if (auto status = take(result, blank)) return *status;
    }
    read_failed = in->bad();
  } else {
    // A file: a reader thread parses and hashes the lines ahead, on the core the synced writes
    // leave idle, while this thread decides.
    // It also reads ahead the rows each command will be decided against (state on disk).
    CommandReader reader(*in, 256, 16,
                         [&ledger, recent = Ledger::ReadAhead{}](PreparedCommand& command) mutable {
                           ledger->prefetch_rows(command, recent);
                         });
    std::vector<CommandReader::Line> chunk;
    while (reader.next(chunk)) {
      for (auto& line : chunk) {
        lines = line.number;
        CommandResult result = line.blank ? CommandResult{} : ledger->submit(line.command);
        if (auto status = take(result, line.blank)) return *status;
      }
    }
    read_failed = reader.read_failed();
  }
  if (absl::Status e = pipeline.commit(); !e.ok()) return failed(e);
  if (absl::Status e = ledger->write_rows(); !e.ok()) return failed(e);
  if (!out) return output_failed(lines);
  if (read_failed) return fail("reading " + o.input + " failed after line " + std::to_string(lines));
  if (progress) std::cerr << "\n";
  auto done = std::chrono::steady_clock::now();
  double seconds = std::chrono::duration<double>(done - started).count();
  uint64_t events = ledger->state().last_seq() - first_seq;
  note() << counts.summary() << " in " << duration_text(seconds) << "\n";
  // -v: the figures bench/harness.py reads, exact.
  detail() << "applied " << lines << " commands, " << events << " events in " << seconds << " s ("
           << per_second(lines, seconds) << " commands/s, " << per_second(events, seconds)
           << " events/s, durable); opening the ledger took "
           << std::chrono::duration<double>(started - opening).count() << " s ("
           << (ledger->open_report().on_demand ? "catalog and meta rows; customers on demand"
                                               : "the whole state")
           << ")\n";
  return counts.rejected ? kExitRejected : kExitOk;
}

static_assert(kBillingPartBytes == size_t{8} << 20, "BillOptions::part_mib's default");

int bill(const BillOptions& o, std::ostream& out) {
  int status = kExitOk;
  auto through = parse_date_arg(o.through, "--through", status);
  if (!through) return status ? status : fail("--through is required");
  if (!o.request_id.empty())
    if (std::string why = id_error("--request-id", o.request_id); !why.empty()) return fail(why);
  if (o.bounded_memory && o.part_mib == 0)
    return fail("--bounded-memory needs parts (--part-mb 1 or more): customers are let go only "
                "once a part holding their changes is written");
  auto opening = std::chrono::steady_clock::now();
  // INTERFACE.md: bill never creates a ledger (a typo in --db says so instead).
  // --bounded-memory: the run reads what it bills from the rows, a customer at a time (a dry
  // run, which writes nothing, folds what it decides over the whole state either way).
  auto opened = open_ledger(o.db, o.dry_run ? Mode::kRead : Mode::kWrite, 1,
                            /*load_on_demand=*/o.bounded_memory, 0, o.part_mib << 20,
                            /*bill_from_rows=*/o.bounded_memory);
  if (!opened.ok()) return fail_status(opened.status());
  std::unique_ptr<Ledger> ledger = std::move(*opened);
  Command c;
  c.type = CommandType::kRunBilling;
  c.date = *through;
  c.request_id = !o.request_id.empty() ? o.request_id
                                       : "bill-" + through->iso() + "-after-" +
                                             std::to_string(ledger->state().last_seq());
  // Run again after a crash cut it short, with the default key: the open has just ended that
  // run, and this is a retry of it (answered as such), not a second run through the same date.
  if (const Ledger::OpenReport& opened_report = ledger->open_report();
      o.request_id.empty() && !opened_report.ended_run.empty() &&
      opened_report.ended_run_through == *through)
    c.request_id = opened_report.ended_run;
  if (stderr_is_terminal()) std::cerr << "billing through " << through->iso() << "...\n";
  auto started = std::chrono::steady_clock::now();
  const double open_seconds = std::chrono::duration<double>(started - opening).count();
  CommandResult result = ledger->submit(c);
  if (!ledger->io_failure().empty()) return fail(ledger->io_failure());
  if (!result.ok || result.duplicate) {
    out << result.to_json() << '\n';
    return result.ok ? kExitOk : kExitRejected;
  }
  if (absl::Status e = ledger->commit(); !e.ok()) return fail_status(e);
  // Until durable: a run writes its parts as it goes (Ledger::Options::billing_part_bytes), so
  // the time before its last write would leave most of its writing out.
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  note() << billing_text(ledger->last_billing()) << " in " << duration_text(seconds) << "\n";
  const uint64_t subscriptions = ledger->state().subscriptions_in_ledger();
  detail() << "billing run over " << subscriptions << " subscriptions in " << seconds << " s ("
           << per_second(subscriptions, seconds)
           << " subscriptions/s, durable); opening the ledger took " << open_seconds << " s\n";
  out << ledger->last_billing().to_json() << '\n';
  return kExitOk;
}

namespace {

// `invoices --format csv`: one row per invoice (the line-level file is `reconcile`'s).
constexpr const char* kInvoiceCsvHeader =
    "InvoiceId,InvoiceDate,PartnerId,CustomerId,Currency,Total,LineCount\r\n";
void append_invoice_csv_row(std::string& text, const Invoice& inv) {
  append_csv_row(
      text, {csv_cell(inv.invoice_id, true), inv.invoice_date.iso(), csv_cell(inv.partner_id, true),
             csv_cell(inv.customer_id, true), inv.currency,
             format_minor(inv.total_minor, inv.currency_digits), std::to_string(inv.line_count)});
}

absl::Status check_invoice_filters(const Store& store, const InvoicesOptions& o) {
  KnownIds ids = known_ids(store);
  if (absl::Status s = require_known(ids, "customer", o.customer); !s.ok()) return s;
  return require_known(ids, "partner", o.partner);
}

}  // namespace

int invoices(const InvoicesOptions& o, std::ostream& out) {
  int status = kExitOk;
  auto from = parse_date_arg(o.from, "--from", status);
  auto to = parse_date_arg(o.to, "--to", status);
  if (status) return status;
  if (from && to && *to < *from)
    return fail("--from " + from->iso() + " is after --to " + to->iso() + "; give a range");
  InvoiceSelection selection{o.customer, o.partner, from.value_or(Date()), to.value_or(Date())};
  const Format format = o.reconciliation ? Format::kCsv : resolve_format(o.format);
  RecordPrinter table(invoice_view(), Format::kTable, out);
  // Streamed: each invoice is printed as it is read, in chunks, so memory stays flat and the first
  // lines leave at once (a table waits for its widths). If a stored row cannot be read, the rows
  // are folded in memory from the log and the listing goes on after the invoices already printed
  // (the same invoices in the same order: rows are derived data).
  constexpr size_t kChunk = 1 << 20;
  std::string text = o.reconciliation         ? reconciliation_header()
                     : format == Format::kCsv ? kInvoiceCsvHeader
                                              : "";
  uint64_t printed = 0;
  auto add = [&](const Invoice& invoice) {
    if (o.reconciliation) {
      append_reconciliation_rows(text, invoice);
    } else if (format == Format::kCsv) {
      append_invoice_csv_row(text, invoice);
    } else if (format == Format::kJson) {
      text += invoice_json(invoice);
      text += '\n';
    } else {
      table.add_json_line(invoice_json(invoice));
    }
  };
  for (bool fold_everything : {false, true}) {
    auto store = Ledger::open_rows_for_reading(o.db, fold_everything);
    if (!store.ok()) return fail_status(store.status());
    if (absl::Status known = check_invoice_filters(**store, o); !known.ok())
      return fail_status(known);
    uint64_t seen = 0;
    absl::Status read = for_each_issued_invoice(**store, selection, [&](const IssuedInvoice& issued) {
      if (seen++ < printed) return true;  // printed before a row failed to read
      add(issued.invoice);
      ++printed;
      if (text.size() >= kChunk || printed == 1) {
        out << text;
        out.flush();
        text.clear();
      }
      return static_cast<bool>(out);  // stdout gone: stop (main reports it)
    });
    if (read.ok()) {
      out << text;
      if (format == Format::kTable && !o.reconciliation) table.finish();
      return kExitOk;
    }
    if (!absl::IsDataLoss(read) || fold_everything) {
      if (printed > 0) out << text;  // the invoices before the failure, whole
      return fail_status(read);
    }
  }
  return kExitError;
}

int reconcile(const InvoicesOptions& o, std::ostream& out) {
  if (o.from.empty() || o.to.empty()) return fail("reconcile needs --from DATE and --to DATE");
  InvoicesOptions csv = o;
  csv.reconciliation = true;
  return invoices(csv, out);
}

namespace {

// A one-record answer in any format; JSON stays the line the query prints.
std::string record_text(const std::string& json, Format format) {
  if (format == Format::kJson) return json + "\n";
  std::ostringstream text;
  print_record_fields(Record::parse(json), format, text);
  return text.str();
}

}  // namespace

int state(const std::string& db, const std::string& id, const std::string& as_of,
          const std::string& format_flag, std::ostream& out) {
  int status = kExitOk;
  auto date = parse_date_arg(as_of, "--as-of", status);
  if (status) return status;
  const Format format = resolve_format(format_flag);
  return query_rows(
      db, Store::Reads::kFew,
      [&](const Store& store) -> absl::StatusOr<std::string> {
        auto latest = stored_subscription(store, id);
        if (absl::IsNotFound(latest.status())) return no_such(known_ids(store), "subscription", id);
        if (!latest.ok()) return latest.status();
        if (!date) return record_text(subscription_json(*latest), format);
        auto catalog = catalog_only(store);
        if (!catalog.ok()) return catalog.status();
        // A renewal the log does not hold yet takes its promotion against the whole state.
        std::unique_ptr<Ledger> whole;
        if (previews_promoted_renewal(*latest, catalog->catalog(), *date)) {
          Ledger::Options options;
          options.preview = true;
          options.create_if_missing = false;
          auto opened = Ledger::open(db, std::move(options));
          if (!opened.ok()) return opened.status();
          whole = std::move(*opened);
        }
        std::string error;
        auto sub = subscription_as_of(store, catalog->catalog(), id, *date, error,
                                      whole ? &whole->state() : nullptr);
        if (!error.empty()) return absl::DataLossError(error);
        if (!sub)
          return absl::NotFoundError("subscription '" + id + "' did not exist yet on " +
                                     date->iso());
        return record_text(subscription_json(*sub, *date), format);
      },
      out);
}

int history(const std::string& db, const std::string& id, const std::string& format,
            std::ostream& out) {
  auto store = open_for_reading(db);
  if (!store.ok()) return fail_status(store.status());
  std::string error;
  auto events = stream_events(**store, Stream{StreamKind::kSubscription, id}, error);
  if (!error.empty()) return fail(error);
  if (events.empty()) return fail_status(no_such(known_ids(**store), "subscription", id));
  RecordPrinter printer(event_view(), resolve_format(format), out);
  for (const auto& e : events) printer.add_json_line(event_json(e));
  printer.finish();
  return kExitOk;
}

namespace {

// `log --customer`: the customer's events through the stream index (its own stream and its
// subscriptions' streams), read one by one instead of scanning the whole log; the same lines in
// the same order as the scan would print. If its row cannot be read, the rows are folded in
// memory from the log and the index asked again (rows are derived data).
int log_of_customer(const LogOptions& o, RecordPrinter& printer) {
  for (bool fold_everything : {false, true}) {
    auto opened = Ledger::open_rows_for_reading(o.db, fold_everything);
    if (!opened.ok()) return fail_status(opened.status());
    const Store& store = **opened;
    if (absl::Status known = require_known(known_ids(store), "customer", o.customer); !known.ok())
      return fail_status(known);
    auto seqs = customer_event_seqs(store, o.customer);
    if (!seqs.ok()) {
      if (absl::IsDataLoss(seqs.status()) && !fold_everything) continue;
      return fail("cannot read the log: " + std::string(seqs.status().message()));
    }
    EventDecoder decoder;
    Event e;
    uint64_t printed = 0;
    for (auto seq = std::upper_bound(seqs->begin(), seqs->end(), o.after_seq);
         seq != seqs->end(); ++seq) {
      auto bytes = store.event_bytes(*seq);
      if (!bytes.ok())
        return fail("cannot read the log: " + (absl::IsNotFound(bytes.status())
                                                   ? "event " + std::to_string(*seq) +
                                                         " is missing"
                                                   : std::string(bytes.status().message())));
      if (absl::Status bad = decoder.decode(*bytes, e); !bad.ok())
        return fail("cannot read the log: " + std::string(bad.message()));
      if (!o.type.empty() && event_type_name(e.payload) != o.type) continue;
      printer.add_json_line(event_json(e));
      if (o.limit != 0 && ++printed >= o.limit) break;
    }
    printer.finish();
    return kExitOk;
  }
  return kExitError;
}

}  // namespace

int log(const LogOptions& o, std::ostream& out) {
  RecordPrinter printer(event_view(), resolve_format(o.format), out);
  if (!o.customer.empty()) return log_of_customer(o, printer);
  auto opened = open_for_reading(o.db);  // the log alone: no row is read
  if (!opened.ok()) return fail_status(opened.status());
  const Store& store = **opened;
  EventDecoder decoder;
  Event e;
  uint64_t printed = 0;
  absl::Status decode_error;
  absl::Status error = store.scan_events(o.after_seq, [&](uint64_t, std::string_view bytes) {
    decode_error = decoder.decode(bytes, e);
    if (!decode_error.ok()) return false;
    if (!o.type.empty() && event_type_name(e.payload) != o.type) return true;
    printer.add_json_line(event_json(e));
    return o.limit == 0 || ++printed < o.limit;
  });
  if (!decode_error.ok())
    return fail("cannot read the log: " + std::string(decode_error.message()));
  if (!error.ok()) return fail_status(error);
  printer.finish();
  return kExitOk;
}

int renewals(const std::string& db, const std::string& from_text, const std::string& to_text,
             const std::string& format, std::ostream& out) {
  int status = kExitOk;
  auto from = parse_date_arg(from_text, "--from", status);
  auto to = parse_date_arg(to_text, "--to", status);
  if (status) return status;
  if (!from || !to) return fail("renewals needs --from DATE and --to DATE");
  auto ledger = open_ledger(db, Mode::kRead);
  if (!ledger.ok()) return fail_status(ledger.status());
  RecordPrinter printer(renewal_view(), resolve_format(format), out);
  for (const auto& line : renewal_lines((*ledger)->state(), *from, *to))
    printer.add_json_line(line);
  printer.finish();
  return kExitOk;
}

namespace {

absl::StatusOr<std::string> explain_text(const Store& store, const std::string& invoice_id,
                                         Format format) {
  auto issued = issued_invoice(store, invoice_id);
  if (absl::IsNotFound(issued.status())) return no_such(known_ids(store), "invoice", invoice_id);
  if (!issued.ok()) return issued.status();
  auto lines = explain_lines(store, *issued);
  if (!lines.ok()) return lines.status();
  std::ostringstream text;
  RecordPrinter printer(explain_view(issued->invoice.currency), format, text);
  for (const auto& line : *lines) printer.add_json_line(line);
  printer.finish();
  return text.str();
}

}  // namespace

int explain(const std::string& db, const std::string& invoice_id, const std::string& format,
            std::ostream& out) {
  return query_rows(
      db, Store::Reads::kFew,
      [&](const Store& store) { return explain_text(store, invoice_id, resolve_format(format)); },
      out);
}

int replay(const std::string& db, bool verify, size_t workers, std::ostream& out) {
  auto opened = open_for_reading(db);
  if (!opened.ok()) return fail_status(opened.status());
  const Store* store = opened->get();
  ProgressBar bar("events", store->last_seq(), stderr_is_terminal());
  ReplayProgress progress;
  if (stderr_is_terminal()) progress = [&](uint64_t n) { bar.update(n); };
  ReplayReport report = replay_log(*store, verify, progress, workers);
  bar.finish(report.events);
  out << report.to_json(verify) << '\n';
  if (!report.error.empty()) return fail(report.error);
  if (verify && !report.ok()) {
    for (const auto& m : report.mismatches)
      std::cerr << "subledger: invoice " << m.invoice_id << " does not regenerate: recorded "
                << m.recorded_sha256_hex << ", regenerated " << m.regenerated_sha256_hex << "\n";
    for (const auto& key : report.row_mismatches)
      std::cerr << "subledger: projection row " << key << " differs from the replayed state\n";
    return kExitError;
  }
  return kExitOk;
}

int replay_from_hex(const std::string& file, std::ostream& out) {
  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (file != "-") {
    in_file.open(file);
    if (!in_file) return fail("cannot read " + file);
    in = &in_file;
  }
  ReplayReport report = replay_hex_values(*in);
  out << report.to_json(false) << '\n';
  if (!report.error.empty()) return fail(report.error);
  return kExitOk;
}

int export_events(const std::string& db, std::ostream& out) {
  auto opened = open_for_reading(db);
  if (!opened.ok()) return fail_status(opened.status());
  const Store* store = opened->get();
  EventDecoder decoder;
  Event e;
  absl::Status decode_error;
  std::string text;
  absl::Status error = store->scan_events(0, [&](uint64_t seq, std::string_view bytes) {
    // The stream from the decoded envelope, so a corrupt value stops the export.
    decode_error = decoder.decode(bytes, e);
    if (!decode_error.ok()) return false;
    text += std::to_string(seq);
    text += '\t';
    text += to_string(e.stream.kind);
    text += '/';
    text += e.stream.id;
    text += '\t';
    text += to_hex(bytes);
    text += '\n';
    if (text.size() > (1 << 20)) {
      out << text;
      text.clear();
    }
    return true;
  });
  out << text;
  if (!decode_error.ok()) return fail("corrupt event: " + std::string(decode_error.message()));
  if (!error.ok()) return fail_status(error);
  return kExitOk;
}

int replay_what_if(const std::string& db, const std::string& file, std::ostream& out) {
  if (std::error_code ec; std::filesystem::is_directory(file, ec))
    return fail(file + " is a directory; --what-if takes a command file");
  std::ifstream in(file);
  if (!in) return fail("cannot read " + file);
  std::vector<Command> extra;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (is_blank_line(line)) continue;
    ParsedCommand parsed = parse_command(line);
    if (!parsed.command)
      return fail(file + " line " + std::to_string(n) + ": " + parsed.rejection.code + ": " +
                  parsed.rejection.message + " (nothing was run)");
    extra.push_back(std::move(*parsed.command));
  }
  auto opened = open_ledger(db, Mode::kRead);
  if (!opened.ok()) return fail_status(opened.status());
  const Ledger* ledger = opened->get();
  if (stderr_is_terminal())
    std::cerr << "deciding " << ledger->state().last_seq() << " events of history again with "
              << extra.size() << " what-if commands...\n";
  std::string scratch =
      (std::filesystem::temp_directory_path() / ("subledger-what-if-" + std::to_string(getpid())))
          .string();
  WhatIfReport report;
  if (absl::Status e = what_if(*ledger, extra, scratch, report); !e.ok()) return fail_status(e);
  for (const auto& d : report.changed) out << d.to_json() << '\n';
  out << report.summary_json(file) << '\n';
  // As `apply` does: 1 when the changed history no longer accepts a command.
  if (!report.rejected.empty())
    note() << report.rejected.size() << " command" << (report.rejected.size() == 1 ? "" : "s")
           << " of the history with " << file << " merged in would be rejected\n";
  return report.rejected.empty() ? kExitOk : kExitRejected;
}

int backup(const std::string& db, const std::string& dir, std::ostream& out) {
  bool in_use = false;
  uint64_t last_seq = 0;
  if (absl::Status e = Store::backup_of(db, dir, in_use, last_seq); !e.ok()) return fail_status(e);
  out << Json{{"backup", dir}, {"last_seq", last_seq}, {"ledger_was_in_use", in_use}}.dump()
      << '\n';
  return kExitOk;
}

int backups(const std::string& dir, std::ostream& out) {
  auto list = Store::list_backups(dir);
  if (!list.ok()) return fail_status(list.status());
  for (const auto& b : *list) {
    char taken_at[32] = "";
    std::time_t t = static_cast<std::time_t>(b.timestamp);
    std::tm tm{};
    if (gmtime_r(&t, &tm)) std::strftime(taken_at, sizeof taken_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    out << Json{{"backup_id", b.id},
                {"timestamp", b.timestamp},
                {"taken_at", taken_at},
                {"size_bytes", b.size_bytes},
                {"files", b.files}}
               .dump()
        << '\n';
  }
  return kExitOk;
}

int restore(const RestoreOptions& o, std::ostream& out) {
  if (absl::Status s = Store::restore(o.dir, o.db, o.backup_id, o.force); !s.ok())
    return fail_status(s);
  Json j{{"restored", o.db}, {"from", o.dir}};
  j["backup_id"] = o.backup_id == 0 ? Json("latest") : Json(o.backup_id);
  out << j.dump() << '\n';
  return kExitOk;
}

int rebuild(const std::string& db, std::ostream& out) {
  auto started = std::chrono::steady_clock::now();
  // Everything derived from the log is rewritten: first the stream index and the idempotency
  // records (a damaged table of either is dropped with them), then the projection rows.
  IndexReport index;
  {
    auto store = Store::open(db, Store::OpenOptions{Store::Access::kWrite, /*any_format=*/false,
                                                    /*repairing_index=*/true,
                                                    /*drop_damaged_derived=*/true});
    if (!store.ok()) return fail_status(store.status());
    auto rewritten = rederive_index(**store);
    if (!rewritten.ok()) return fail_status(rewritten.status());
    index = *rewritten;
  }
  Ledger::Options options;
  options.logger = cli_logger();
  auto ledger = Ledger::rebuild(db, std::move(options));
  if (!ledger.ok()) return fail_status(ledger.status());
  const LedgerState& state = (*ledger)->state();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  out << Json{{"rebuilt", true},
              {"rewrote", Json::array({"projections", "streams", "idempotency"})},
              {"events", state.last_seq()},
              {"stream_entries", index.stream_entries},
              {"idempotency_records", index.idempotency_records},
              {"idempotency_records_rederived", index.records_rederived},
              {"subscriptions", state.subscription_count()},
              {"invoices", state.invoices_issued()},
              {"seconds", static_cast<double>(static_cast<int64_t>(seconds * 1000)) / 1000}}
             .dump()
      << '\n';
  return kExitOk;
}

int migrate(const std::string& db, std::ostream& out) {
  auto report = migrate_ledger(db);
  if (!report.ok()) return fail_status(report.status());
  out << report->to_json() << '\n';
  return kExitOk;
}

}  // namespace subledger::cli
