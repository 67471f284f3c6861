// subledger: the command-line shell over the ledger (INTERFACE.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <string_view>

#include <sys/prctl.h>
#include <unistd.h>

#include <malloc.h>
#include <sys/mman.h>

#ifdef SUBLEDGER_IS_BULK_BINARY
#include <gperftools/malloc_extension.h>
#endif

#include "app/cli_errors.h"
#include "app/output.h"
#include "app/server_commands.h"
#include "app/shell.h"
#include "app/subcommands.h"
#include "app/summary.h"
#include "app/version.h"
#include "events/event.h"
#include "ledger/command.h"

namespace cli = subledger::cli;

#ifndef SUBLEDGER_IS_BULK_BINARY
namespace {

// A query process is short, and on a virtual machine each first touch of a page is a page fault
// of 5-15 us: `state` at 1M subscriptions took 433 faults, 234 of them on heap pages touched one
// by one. Before any static initializer allocates, the heap is grown once, populated by one
// madvise (under 1 us a page), and kept: glibc neither trims it back nor serves a query's large
// blocks (whole index blocks of 100-200 KB) from fresh mmaps that fault again and are unmapped at
// free. 433 -> 201 faults; `state` at 3M subscriptions 0.89x (farm-bench medians, 40 pairs). A
// kernel without MADV_POPULATE_WRITE (before 5.14) refuses it and the pages fault as before.
__attribute__((constructor(101))) void populate_heap() {
  constexpr size_t kHeapBytes = 2 << 20;
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  void* block = std::malloc(kHeapBytes);
  if (!block) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(block) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(block) + kHeapBytes) & ~(page - 1);
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
  std::free(block);
}

}  // namespace
#endif

namespace {

std::string default_db() {
  const char* env = std::getenv("SUBLEDGER_DB");
  return env && *env ? env : "./subledger-data";
}

// A decimal unsigned 64-bit number, nothing else: no sign, no wrap (strtoull would take "-1" as
// 18446744073709551615 and saturate an overflow silently).
bool parse_u64(const std::string& text, uint64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

constexpr const char* kExitQuery =
    "Exit status: 0 success; 2 usage error, no ledger, an id that does not exist, or an I/O "
    "error (one line on stderr, beginning 'subledger:').";
constexpr const char* kExitCommands =
    "Exit status: 0 success; 1 at least one command was rejected (the others were applied); 2 "
    "usage error, no ledger, or an I/O error (one line on stderr, beginning 'subledger:').";
constexpr const char* kExitWrite =
    "Exit status: 0 success; 2 usage error, no ledger, or an I/O or corruption error (one line "
    "on stderr, beginning 'subledger:').";

// The program's options and the state its callbacks share.
struct Cli {
  CLI::App app{"subledger: an event-sourced subscription billing ledger"};
  std::string db = default_db();
  int status = cli::kExitOk;
  int quiet = 0, verbose = 0;

  // A subcommand with --db, -q, -v and a help that ends with examples and the exit status.
  CLI::App* command(const std::string& name, const std::string& description,
                    const std::vector<std::string>& examples, const char* exits,
                    bool with_db = true) {
    CLI::App* sub = app.add_subcommand(name, description);
    if (with_db)
      sub->add_option("--db", db,
                      "ledger directory (default: $SUBLEDGER_DB, else "
                      "./subledger-data)")
          ->type_name("DIR");
    add_verbosity(sub);
    help_footer(sub, examples, exits);
    return sub;
  }
  void add_verbosity(CLI::App* sub) {
    sub->add_flag("-q,--quiet", quiet,
                  "print nothing on stderr but errors (no summary, no progress)");
    sub->add_flag("-v,--verbose", verbose,
                  "also timings, rates and the ledger's own log on stderr");
  }
  static void help_footer(CLI::App* sub, const std::vector<std::string>& examples,
                          const char* exits) {
    std::string text = "Examples:\n";
    for (const auto& e : examples) text += "  " + e + "\n";
    sub->footer(text + "\n" + exits);
  }
  // Runs `fn` as the subcommand's action, with -q/-v in force.
  void run(CLI::App* sub, std::function<int()> fn) {
    sub->callback([this, fn = std::move(fn)] {
      cli::set_verbosity(quiet     ? cli::Verbosity::kQuiet
                         : verbose ? cli::Verbosity::kVerbose
                                   : cli::Verbosity::kNormal);
      status = fn();
    });
  }
};

CLI::Option* date_option(CLI::App* sub, const std::string& name, std::string& value,
                         const std::string& description) {
  return sub->add_option(name, value, description + " (a date, YYYY-MM-DD)")->type_name("DATE");
}

CLI::Option* id_option(CLI::App* sub, const std::string& name, std::string& value,
                       const std::string& description) {
  return sub->add_option(name, value, description)->type_name("ID");
}

CLI::Option* format_option(CLI::App* sub, std::string& value) {
  return sub->add_option("--format", value, cli::kFormatHelp)
      ->check(CLI::IsMember(cli::format_names()))
      ->type_name("FORMAT");
}

void add_apply_and_bill(Cli& c) {
  static cli::ApplyOptions apply;
  auto* apply_cmd =
      c.command("apply",
                "append the JSON-lines commands of FILE (or standard input), in order; one JSON "
                "result per command on stdout and a count of what happened on stderr",
                {"subledger apply commands.jsonl", "subledger apply - < commands.jsonl",
                 "subledger apply --db ./ledger -q commands.jsonl > results.jsonl"},
                kExitCommands);
  apply_cmd->add_option("file", apply.input, "command file, or - for standard input (default)")
      ->type_name("FILE");
  apply_cmd
      ->add_option("--batch", apply.batch_commands_max,
                   "commands per synced write (1 to 1048576; default 4096)")
      ->check(CLI::Range(1, 1 << 20));
  apply_cmd
      ->add_option("--load", apply.load,
                   "what is read before the first command: on-demand (the customers each "
                   "command names, from their rows), whole (every row), or auto (default: "
                   "whole when the input holds a command for every 24 subscriptions or more)")
      ->check(CLI::IsMember({"auto", "on-demand", "whole"}));
  c.run(apply_cmd, [&c] {
    apply.db = c.db;
    return cli::apply(apply, std::cout);
  });

  static cli::BillOptions bill;
  auto* bill_cmd = c.command(
      "bill",
      "run the billing through DATE (BILLING_RULES 8): issue every invoice dated up to "
      "it; prints a JSON summary. Needs an existing ledger",
      {"subledger bill --through 2025-03-31", "subledger bill --through 2025-03-31 --dry-run"},
      kExitCommands);
  date_option(bill_cmd, "--through", bill.through, "bill every invoice date up to this one")
      ->required();
  bill_cmd->add_flag("--dry-run", bill.dry_run,
                     "compute and print what the run would issue; record nothing");
  bill_cmd
      ->add_option("--part-mb", bill.part_mib,
                   "write the run in parts of about this many MiB of events, each synced with "
                   "its rows and the run's progress, so memory stays bounded; a run a crash "
                   "cuts short is ended by the next writer (0: one batch; default 8)")
      ->check(CLI::Range(0, 4096));
  bill_cmd->add_flag("--bounded-memory", bill.bounded_memory,
                     "hold only the customers being billed, read from disk as their turn comes "
                     "(and dropped once written), not the whole ledger: memory stays under a "
                     "gigabyte at any size (0.5 GB at 3M subscriptions, against 3.2), but the "
                     "run itself takes about twice as long (it no longer loads the ledger first: "
                     "1.2 times as long in all); the same invoices either way");
  auto* request_id = id_option(bill_cmd, "--request-id", bill.request_id,
                               "idempotency key of this run (1 to 128 of A-Z a-z 0-9 . _ ~ -; "
                               "default: derived from the date and the log)");
  c.run(bill_cmd, [&c, request_id] {
    bill.db = c.db;
    // Given, it must be an id: an empty one would silently mean the default key.
    if (request_id->count() > 0 && bill.request_id.empty())
      return cli::fail(subledger::id_error("--request-id", ""));
    return cli::bill(bill, std::cout);
  });
}

void add_invoice_queries(Cli& c) {
  static cli::InvoicesOptions inv;
  auto* inv_cmd = c.command(
      "invoices", "issued invoices, by date then id",
      {"subledger invoices", "subledger invoices --customer C1 --from 2025-01-01 --to 2025-03-31",
       "subledger invoices --format csv > invoices.csv   # one row per invoice",
       "subledger invoices --format json | jq .total"},
      kExitQuery);
  id_option(inv_cmd, "--customer", inv.customer, "only this customer's invoices");
  id_option(inv_cmd, "--partner", inv.partner, "only this partner's invoices");
  date_option(inv_cmd, "--from", inv.from, "first invoice date to include");
  date_option(inv_cmd, "--to", inv.to, "last invoice date to include");
  format_option(inv_cmd, inv.format);
  c.run(inv_cmd, [&c] {
    inv.db = c.db;
    return cli::invoices(inv, std::cout);
  });

  static cli::InvoicesOptions rec;
  auto* rec_cmd =
      c.command("reconcile",
                "the reconciliation file: every line of every invoice dated in the range, "
                "as CSV with a header row",
                {"subledger reconcile --from 2025-01-01 --to 2025-01-31 > january.csv",
                 "subledger reconcile --from 2025-01-01 --to 2025-12-31 --partner P1"},
                kExitQuery);
  date_option(rec_cmd, "--from", rec.from, "first invoice date to include")->required();
  date_option(rec_cmd, "--to", rec.to, "last invoice date to include")->required();
  id_option(rec_cmd, "--partner", rec.partner, "only this partner's invoices");
  c.run(rec_cmd, [&c] {
    rec.db = c.db;
    return cli::reconcile(rec, std::cout);
  });

  static std::string invoice_id, format;
  auto* explain_cmd = c.command(
      "explain", "each line of an invoice with the event that caused it and the formula's inputs",
      {"subledger explain C1-20250115", "subledger explain C1-20250115 --format json"}, kExitQuery);
  explain_cmd->add_option("invoice_id", invoice_id, "the invoice, e.g. C1-20250115")
      ->required()
      ->type_name("INVOICE_ID");
  format_option(explain_cmd, format);
  c.run(explain_cmd, [&c] { return cli::explain(c.db, invoice_id, format, std::cout); });

  static cli::SummaryOptions sum;
  auto* sum_cmd =
      c.command("summary",
                "invoices, gross charges, credits and net per group and currency, with a total "
                "row per currency, over the invoices dated in the range",
                {"subledger summary --from 2025-01-01 --to 2025-12-31",
                 "subledger summary --from 2025-01-01 --to 2025-12-31 --by offer --currency USD",
                 "subledger summary --from 2025-01-01 --to 2025-03-31 --by customer --format csv"},
                kExitQuery);
  date_option(sum_cmd, "--from", sum.from, "first invoice date to include")->required();
  date_option(sum_cmd, "--to", sum.to, "last invoice date to include")->required();
  sum_cmd
      ->add_option("--by", sum.by,
                   "group by month (default), partner, customer, offer or "
                   "charge-type")
      ->check(CLI::IsMember(cli::InvoiceSummary::groupings()))
      ->type_name("GROUP");
  sum_cmd->add_option("--currency", sum.currency, "only invoices in this ISO 4217 currency")
      ->type_name("CODE");
  format_option(sum_cmd, sum.format);
  c.run(sum_cmd, [&c] {
    sum.db = c.db;
    return cli::summary(sum, std::cout);
  });
}

void add_subscription_queries(Cli& c) {
  static std::string sub_id, as_of, format;
  auto* state_cmd = c.command(
      "state", "a subscription as it stands, or as it stood at the end of a date",
      {"subledger state S1", "subledger state S1 --as-of 2025-06-30 --format json"}, kExitQuery);
  state_cmd->add_option("subscription_id", sub_id, "the subscription")
      ->required()
      ->type_name("SUBSCRIPTION_ID");
  date_option(state_cmd, "--as-of", as_of, "as it stood at the end of this date");
  format_option(state_cmd, format);
  c.run(state_cmd, [&c] { return cli::state(c.db, sub_id, as_of, format, std::cout); });

  auto* history_cmd =
      c.command("history", "every event of a subscription, in order",
                {"subledger history S1", "subledger history S1 --format csv"}, kExitQuery);
  history_cmd->add_option("subscription_id", sub_id, "the subscription")
      ->required()
      ->type_name("SUBSCRIPTION_ID");
  format_option(history_cmd, format);
  c.run(history_cmd, [&c] { return cli::history(c.db, sub_id, format, std::cout); });

  static std::string from, to;
  auto* ren_cmd =
      c.command("renewals",
                "active subscriptions whose term ends in the range, with the price they will "
                "renew at",
                {"subledger renewals --from 2025-12-01 --to 2025-12-31"}, kExitQuery);
  date_option(ren_cmd, "--from", from, "first term end to include")->required();
  date_option(ren_cmd, "--to", to, "last term end to include")->required();
  format_option(ren_cmd, format);
  c.run(ren_cmd, [&c] { return cli::renewals(c.db, from, to, format, std::cout); });
}

void add_log(Cli& c) {
  static cli::LogOptions log;
  static std::string after_seq_text = "0", limit_text = "0";
  auto* log_cmd =
      c.command("log", "the activity log: every event in sequence order",
                {"subledger log --limit 20", "subledger log --customer C1 --type seatschanged",
                 "subledger log --after-seq 1000 --format json"},
                kExitQuery);
  log_cmd->add_option("--after-seq", after_seq_text, "only events after this sequence number")
      ->type_name("N");
  log_cmd->add_option("--limit", limit_text, "at most this many events (0, the default: all)")
      ->type_name("N");
  id_option(log_cmd, "--customer", log.customer, "only this customer's events");
  log_cmd
      ->add_option("--type", log.type, "only events of this type, in any case (e.g. SeatsChanged)")
      ->transform(CLI::IsMember(subledger::event_type_names(), CLI::ignore_case))
      ->type_name("TYPE");
  format_option(log_cmd, log.format);
  c.run(log_cmd, [&c] {
    log.db = c.db;
    if (!parse_u64(after_seq_text, log.after_seq))
      return cli::fail("--after-seq must be a whole number from 0 to 18446744073709551615; got '" +
                       after_seq_text + "'");
    if (!parse_u64(limit_text, log.limit))
      return cli::fail("--limit must be a whole number from 0 to 18446744073709551615; got '" +
                       limit_text + "'");
    return cli::log(log, std::cout);
  });
}

void add_listings(Cli& c) {
  static cli::ListOptions o;
  auto listing = [&c](const std::string& name, const std::string& description,
                      const std::vector<std::string>& examples,
                      int (*fn)(const cli::ListOptions&, std::ostream&)) {
    CLI::App* sub = c.command(name, description, examples, kExitQuery);
    format_option(sub, o.format);
    c.run(sub, [&c, fn] {
      o.db = c.db;
      return fn(o, std::cout);
    });
    return sub;
  };
  auto* customers =
      listing("customers", "customers by partner, then id",
              {"subledger customers", "subledger customers --partner P1"}, cli::customers);
  id_option(customers, "--partner", o.partner, "only this partner's customers");
  auto* subs = listing("subscriptions", "subscriptions in the order they were created",
                       {"subledger subscriptions --customer C1",
                        "subledger subscriptions --status active --offer E3"},
                       cli::subscriptions);
  id_option(subs, "--customer", o.customer, "only this customer's subscriptions");
  subs->add_option("--status", o.status,
                   "only those in this status: trial, active, cancelled "
                   "or expired")
      ->check(CLI::IsMember(std::vector<std::string>{"trial", "active", "cancelled", "expired"}))
      ->type_name("STATUS");
  id_option(subs, "--offer", o.offer, "only subscriptions of this offer");
  listing("offers", "the offers of the catalog, by id", {"subledger offers"}, cli::offers);
  auto* prices =
      listing("prices",
              "published monthly prices by offer and currency, each with the date it is "
              "effective from",
              {"subledger prices", "subledger prices --offer E3 --as-of 2025-06-01"}, cli::prices);
  id_option(prices, "--offer", o.offer, "only this offer's prices");
  date_option(prices, "--as-of", o.as_of, "only the price in force on this date");
  auto* trials =
      listing("trials",
              "subscriptions in their free trial, with the day each trial ends (partners get "
              "no notice: this is how to track them)",
              {"subledger trials", "subledger trials --expiring-before 2025-07-01"}, cli::trials);
  date_option(trials, "--expiring-before", o.expiring_before,
              "only trials ending before this date");
}

void add_replay(Cli& c) {
  static bool verify = false;
  static std::string what_if_file, from_hex;
  static size_t workers = 2;
  auto* replay_cmd = c.command(
      "replay",
      "fold the whole log into fresh state in memory and report (writes nothing); "
      "--verify proves every invoice and row, --what-if shows how invoices would change",
      {"subledger replay --verify", "subledger replay --what-if late-cancel.jsonl"},
      "Exit status: 0 success; 1 a --what-if command would be rejected; 2 a mismatch, a damaged "
      "log, usage or I/O error (one line on stderr, beginning 'subledger:').");
  auto* verify_flag = replay_cmd->add_flag(
      "--verify", verify,
      "regenerate every issued invoice and compare hashes; check the stored projection rows");
  replay_cmd
      ->add_option("--what-if", what_if_file,
                   "decide the history again with the commands of FILE merged in by date and "
                   "print how each invoice would change (writes nothing)")
      ->excludes(verify_flag)
      ->type_name("FILE");
  replay_cmd
      ->add_option("--workers", workers,
                   "lanes that fold customers in parallel (1 to 64; 1: one thread does all)")
      ->check(CLI::Range(1, 64));
  replay_cmd
      ->add_option("--from-hex", from_hex,
                   "fold event values read from FILE (- for stdin), one hex value per line (what "
                   "`export` writes; used by bench/run to scan other stores)")
      ->type_name("FILE");
  c.run(replay_cmd, [&c] {
    if (!from_hex.empty()) return cli::replay_from_hex(from_hex, std::cout);
    if (!what_if_file.empty()) return cli::replay_what_if(c.db, what_if_file, std::cout);
    return cli::replay(c.db, verify, workers, std::cout);
  });

  auto* export_cmd =
      c.command("export",
                "every stored event as seq, stream and hex value, tab-separated (for other "
                "stores; writes nothing)",
                {"subledger export > events.tsv"}, kExitWrite);
  c.run(export_cmd, [&c] { return cli::export_events(c.db, std::cout); });
}

void add_maintenance(Cli& c) {
  static std::string dir;
  auto* backup_cmd =
      c.command("backup", "back up the ledger into DIR (also while another process writes to it)",
                {"subledger backup /var/backups/subledger"}, kExitWrite);
  backup_cmd->add_option("dir", dir, "backup directory")->required()->type_name("DIR");
  c.run(backup_cmd, [&c] { return cli::backup(c.db, dir, std::cout); });
  auto* backups_cmd = c.command("backups", "list the backups in DIR (JSON, one a line)",
                                {"subledger backups /var/backups/subledger"}, kExitWrite, false);
  backups_cmd->add_option("dir", dir, "backup directory")->required()->type_name("DIR");
  c.run(backups_cmd, [] { return cli::backups(dir, std::cout); });

  static cli::RestoreOptions restore;
  auto* restore_cmd = c.command(
      "restore", "restore a backup from DIR into a ledger that no process holds (creates it)",
      {"subledger restore /var/backups/subledger --db ./ledger",
       "subledger restore /var/backups/subledger --backup-id 3 --force"},
      kExitWrite);
  restore_cmd->add_option("dir", restore.dir, "backup directory")->required()->type_name("DIR");
  restore_cmd->add_option("--backup-id", restore.backup_id, "which backup (default: the latest)")
      ->check(CLI::Range(1u, 0xffffffffu));
  restore_cmd->add_flag("--force", restore.force, "replace a ledger directory that is not empty");
  c.run(restore_cmd, [&c] {
    restore.db = c.db;
    return cli::restore(restore, std::cout);
  });
  auto* rebuild_cmd =
      c.command("rebuild",
                "rewrite every projection row and index from the log (for damaged rows; needs "
                "an existing ledger)",
                {"subledger rebuild --db ./ledger"}, kExitWrite);
  c.run(rebuild_cmd, [&c] { return cli::rebuild(c.db, std::cout); });
  auto* migrate_cmd =
      c.command("migrate",
                "bring a ledger of an older on-disk format to this one (rebuilds what is "
                "derived from the log; needs an existing ledger)",
                {"subledger migrate --db ./ledger"}, kExitWrite);
  c.run(migrate_cmd, [&c] { return cli::migrate(c.db, std::cout); });
}

void add_demo_and_gen(Cli& c) {
  static cli::DemoOptions demo;
  auto* demo_cmd =
      c.command("demo",
                "bill fourteen months of the embedded demo (one partner, a few dozen customers) "
                "into a new ledger, verify it, write its reconciliation CSV and end with a summary",
                {"subledger demo --db ./subledger-demo", "subledger demo --customers 200 --seed 7"},
                kExitCommands);
  demo_cmd
      ->add_option("--csv", demo.csv_path,
                   "where to write the reconciliation CSV (default: DB-reconciliation.csv)")
      ->type_name("FILE");
  demo_cmd->add_option("--customers", demo.customers, "how many customers (1 to 100000; 36)")
      ->check(CLI::Range(1, 100000));
  demo_cmd->add_option("--seed", demo.seed, "seed of the generated activity (2017)");
  c.run(demo_cmd, [&c] {
    demo.db = c.db;
    return cli::demo(demo, std::cout);
  });

  static cli::GenOptions gen;
  auto* gen_cmd =
      c.command("gen", "write a deterministic workload command file (what bench/run applies)",
                {"subledger gen --subscriptions 1000 -o workload.jsonl"}, kExitWrite, false);
  gen_cmd->add_option("--subscriptions", gen.subscriptions, "how many (1 to 100000000)")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}));
  gen_cmd->add_option("--seed", gen.seed, "seed of the generated activity (1)");
  gen_cmd->add_option("--months", gen.months, "months of activity (1 to 120; 12)")
      ->check(CLI::Range(1, 120));
  gen_cmd->add_option("--output,-o", gen.output, "file, or - for standard output (default)")
      ->type_name("FILE");
  c.run(gen_cmd, [] { return cli::gen(gen, std::cout); });
}

// `keys` and `serve` come with their own options (app/server_commands.cpp): here they get the
// help footers and, for `keys`, -q/-v like every other subcommand.
void finish_server_commands(Cli& c) {
  CLI::App* keys = c.app.get_subcommand("keys");
  for (CLI::App* sub : keys->get_subcommands([](CLI::App*) { return true; })) {
    c.add_verbosity(sub);
    Cli::help_footer(
        sub,
        {"subledger keys add --file keys.json --partner CONTOSO",
         "subledger keys list --file keys.json", "subledger keys revoke --file keys.json KEY_ID"},
        kExitWrite);
  }
  c.add_verbosity(keys);
  Cli::help_footer(keys, {"subledger keys add --file keys.json --operator"}, kExitWrite);
  Cli::help_footer(c.app.get_subcommand("serve"),
                   {"subledger serve --keys keys.json --listen 127.0.0.1:8080",
                    "subledger serve --keys keys.json --tls-cert cert.pem --tls-key key.pem -q"},
                   kExitWrite);
}

void add_server(Cli& c) {
  cli::add_server_commands(c.app, c.db, c.status);
  finish_server_commands(c);
}

// The subcommands, in the order `subledger --help` lists them, by the function that adds them.
struct CommandGroup {
  std::initializer_list<std::string_view> names;
  void (*add)(Cli&);
};
const CommandGroup kCommandGroups[] = {
    {{"apply", "bill"}, add_apply_and_bill},
    {{"invoices", "reconcile", "explain", "summary"}, add_invoice_queries},
    {{"state", "history", "renewals"}, add_subscription_queries},
    {{"log"}, add_log},
    {{"customers", "subscriptions", "offers", "prices", "trials"}, add_listings},
    {{"replay", "export"}, add_replay},
    {{"backup", "backups", "restore", "rebuild", "migrate"}, add_maintenance},
    {{"demo", "gen"}, add_demo_and_gen},
    {{"keys", "serve"}, add_server},
};

#if defined(__SANITIZE_ADDRESS__)  // GCC
constexpr bool kLeakCheckedAtExit = true;
#elif defined(__has_feature)  // clang
constexpr bool kLeakCheckedAtExit = __has_feature(address_sanitizer);
#else
constexpr bool kLeakCheckedAtExit = false;
#endif

// The commands that only read the ledger and print (no backup: it writes a directory).
constexpr std::string_view kQueryCommands[] = {
    "invoices", "reconcile", "explain",       "summary", "state",  "history", "renewals",
    "log",      "customers", "subscriptions", "offers",  "prices", "trials",  "backups"};

// Building every subcommand costs CLI11 about 2.5 ms, a tenth of a `state` process: a command
// line that names a subcommand gets only its group. Help, --version, a leading option other than
// --db, or a name not found there get them all (so errors list every command, and a name missing
// from the table above costs time, never a wrong answer).
void add_commands(Cli& c, const std::vector<std::string>& args) {
  std::string_view name = cli::command_word(args);
  bool added[std::size(kCommandGroups)] = {};
  for (size_t g = 0; g < std::size(kCommandGroups) && !name.empty(); ++g) {
    const auto& names = kCommandGroups[g].names;
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    kCommandGroups[g].add(c);
    added[g] = true;
    if (!c.app.get_subcommands([name](CLI::App* sub) { return sub->get_name() == name; }).empty())
      return;
    break;
  }
  for (size_t g = 0; g < std::size(kCommandGroups); ++g)
    if (!added[g]) kCommandGroups[g].add(c);
}

// The commands that fold the whole ledger or run long (writers, replays, the server, the
// workload generator). Where the build links tcmalloc (a static Release build), they run in
// `subledger-bulk`: the same program with tcmalloc, which applies about 1.2x faster than glibc's
// malloc. `subledger` itself keeps glibc's: tcmalloc's start-up (about 3.5 MB of its page heap
// zeroed, ~900 page faults) cost 11 ms of every query process, a third of a `state`.
#ifdef SUBLEDGER_HAS_BULK_BINARY
constexpr std::string_view kBulkCommands[] = {"apply",   "bill",    "serve", "replay", "export",
                                              "rebuild", "migrate", "demo",  "gen"};

// Replaces this process by subledger-bulk, found beside the running binary (a build tree) or
// where an install puts it (../libexec/subledger/ from bin/), with the same arguments, standard
// streams and process id. Returns only when there is none to run: the command then runs here,
// slower, never differently.
void run_in_bulk_binary(char** argv) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return;
  const std::filesystem::path dir = self.parent_path();
  for (const auto& candidate :
       {dir / "subledger-bulk", dir / SUBLEDGER_BULK_INSTALLED_FROM_BIN / "subledger-bulk"}) {
    if (::access(candidate.c_str(), X_OK) == 0) ::execv(candidate.c_str(), argv);
  }
}
#endif


int parse(Cli& c, const std::vector<std::string>& args, int argc, char** argv) {
  // Help and --version print to standard output: a write that fails is an error there too.
  auto exit_printing = [&c](const CLI::Error& e) {
    int code = c.app.exit(e);
    std::cout.flush();
    if (!std::cout) return cli::fail("cannot write to standard output");
    return code;
  };
  if (int bad = cli::check_arguments(c.app, args)) return bad;
  try {
    c.app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return exit_printing(e);
  } catch (const CLI::CallForAllHelp& e) {
    return exit_printing(e);
  } catch (const CLI::CallForVersion& e) {
    return exit_printing(e);
  } catch (const CLI::ParseError& e) {
    return cli::report_parse_error(c.app, e);
  } catch (const std::exception& e) {
    return cli::fail(std::string("internal error: ") + e.what());
  }
  return -1;
}

#ifdef SUBLEDGER_IS_BULK_BINARY
// tcmalloc's memory from the system, asked for transparent huge pages. The bulk commands build the
// whole ledger in memory (about 1.5 KB a subscription): at 1M subscriptions, first touching it
// 4 KB at a time was about a quarter of opening a ledger for writing (each fault a trip through
// this virtual machine's hypervisor). The system's THP setting is usually "madvise", which this
// is; "never" leaves it a no-op. Wraps tcmalloc's own system allocator: where memory comes from
// and how it is returned stay tcmalloc's. `serve` too: it opens its ledger as the other writers
// do (its runs with and without did not differ beyond the machine's spread). In a process that
// lives for weeks, khugepaged may fill a huge page back in around the small spans tcmalloc
// returns, so RSS can drift back towards the heap's high-water mark (which the memory image,
// most of the heap, reached once already), never beyond it.
class HugePageSysAllocator : public SysAllocator {
 public:
  explicit HugePageSysAllocator(SysAllocator* next) : next_(next) {}
  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    void* p = next_->Alloc(size, actual_size, alignment);
    // The advice is a hint: a kernel without THP refuses it, and nothing else changes.
    if (p != nullptr) (void)::madvise(p, *actual_size, MADV_HUGEPAGE);
    return p;
  }

 private:
  SysAllocator* next_;
};

void ask_for_huge_pages() {
  MallocExtension* tcmalloc = MallocExtension::instance();
  if (SysAllocator* next = tcmalloc->GetSystemAllocator())
    tcmalloc->SetSystemAllocator(new HugePageSysAllocator(next));  // lives as long as the process
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef SUBLEDGER_IS_BULK_BINARY
  // Run by `subledger` in its place: ps, top, pgrep and killall keep seeing `subledger`.
  ::prctl(PR_SET_NAME, "subledger", 0, 0, 0);
  ask_for_huge_pages();
#endif
  std::ios::sync_with_stdio(false);
  static Cli c;
  c.app.require_subcommand(1);
  c.app.set_version_flag("--version", std::string("subledger ") + subledger::kVersion);
  c.app
      .add_option("--db", c.db,
                  "ledger directory (default: $SUBLEDGER_DB, else "
                  "./subledger-data)")
      ->type_name("DIR");
  c.app.footer(
      "Examples:\n  subledger demo --db ./demo\n  subledger invoices --db ./demo\n"
      "  subledger summary --db ./demo --from 2025-01-01 --to 2025-12-31\n"
      "  subledger COMMAND --help\n\n"
      "Exit status: 0 success; 1 at least one command was rejected; 2 usage, I/O or corruption "
      "error (one line on stderr, beginning 'subledger:').");
  const std::vector<std::string> args(argv + 1, argv + argc);
#ifdef SUBLEDGER_HAS_BULK_BINARY
  const std::string_view word = cli::command_word(args);
  if (std::find(std::begin(kBulkCommands), std::end(kBulkCommands), word) !=
      std::end(kBulkCommands))
    run_in_bulk_binary(argv);
#endif
  add_commands(c, args);
  if (int code = parse(c, args, argc, argv); code >= 0) return code;
  // Output that cannot be written (a full disk, a closed pipe) is an error, whatever the
  // subcommand: checked once here, after the last flush.
  std::cout.flush();
  if (!std::cout && c.status != cli::kExitError)
    return cli::fail("cannot write to standard output");
  // A query has printed all it had to and closed its ledger: the process ends here, without
  // RocksDB's, CLI11's and the other libraries' static destructors (about 0.6 ms of a 15 ms
  // `state`). Commands that write keep the ordinary exit, and so does the sanitizer build, whose
  // leak check runs at an ordinary exit.
  if (!kLeakCheckedAtExit &&
      std::find(std::begin(kQueryCommands), std::end(kQueryCommands), cli::command_word(args)) !=
          std::end(kQueryCommands)) {
    std::fflush(nullptr);
    std::_Exit(c.status);
  }
  return c.status;
}
