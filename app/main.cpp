// subledger: the command-line shell over the ledger (INTERFACE.md).
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdlib>
#include <iostream>

#include "app/server_commands.h"
#include "app/subcommands.h"
#include "app/version.h"
#include "events/event.h"
#include "ledger/command.h"

namespace cli = subledger::cli;

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

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  CLI::App app{"subledger: an event-sourced subscription billing ledger"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("subledger ") + subledger::kVersion);
  std::string db = default_db();
  app.add_option("--db", db, "ledger directory (default: $SUBLEDGER_DB, else ./subledger-data)");
  auto with_db = [&](CLI::App* sub) {
    sub->add_option("--db", db, "ledger directory");
    return sub;
  };
  int status = cli::kExitOk;

  cli::ApplyOptions apply;
  auto* apply_cmd =
      with_db(app.add_subcommand("apply", "append JSON-lines commands from FILE or -"));
  apply_cmd->add_option("file", apply.input, "command file, or - for stdin");
  apply_cmd->add_option("--batch", apply.batch_commands_max, "commands per synced write")
      ->check(CLI::Range(1, 1 << 20));
  apply_cmd->callback([&] {
    apply.db = db;
    status = cli::apply(apply, std::cout);
  });

  cli::BillOptions bill;
  auto* bill_cmd = with_db(app.add_subcommand("bill", "run the billing through a date"));
  bill_cmd->add_option("--through", bill.through, "bill through DATE")->required();
  bill_cmd->add_flag("--dry-run", bill.dry_run, "preview: compute and print, record nothing");
  auto* bill_request_id =
      bill_cmd->add_option("--request-id", bill.request_id, "idempotency key of this run");
  bill_cmd->callback([&] {
    bill.db = db;
    // Given, it must be an id: an empty one would silently mean the default key.
    if (bill_request_id->count() > 0 && bill.request_id.empty()) {
      status = cli::fail(subledger::id_error("--request-id", ""));
      return;
    }
    status = cli::bill(bill, std::cout);
  });

  cli::InvoicesOptions inv;
  auto* inv_cmd = with_db(app.add_subcommand("invoices", "issued invoices, by date then id"));
  inv_cmd->add_option("--customer", inv.customer);
  inv_cmd->add_option("--partner", inv.partner);
  inv_cmd->add_option("--from", inv.from);
  inv_cmd->add_option("--to", inv.to);
  inv_cmd->add_option("--format", inv.format, "json or csv");
  inv_cmd->callback([&] {
    inv.db = db;
    status = cli::invoices(inv, std::cout);
  });

  cli::InvoicesOptions rec;
  auto* rec_cmd = with_db(app.add_subcommand("reconcile", "the reconciliation CSV"));
  rec_cmd->add_option("--from", rec.from)->required();
  rec_cmd->add_option("--to", rec.to)->required();
  rec_cmd->add_option("--partner", rec.partner);
  rec_cmd->callback([&] {
    rec.db = db;
    status = cli::reconcile(rec, std::cout);
  });

  std::string sub_id, as_of;
  auto* state_cmd = with_db(app.add_subcommand("state", "a subscription's state"));
  state_cmd->add_option("subscription_id", sub_id)->required();
  state_cmd->add_option("--as-of", as_of, "as it stood at the end of DATE");
  state_cmd->callback([&] { status = cli::state(db, sub_id, as_of, std::cout); });

  auto* history_cmd = with_db(app.add_subcommand("history", "every event of a subscription"));
  history_cmd->add_option("subscription_id", sub_id)->required();
  history_cmd->callback([&] { status = cli::history(db, sub_id, std::cout); });

  cli::LogOptions log;
  auto* log_cmd = with_db(app.add_subcommand("log", "the activity log in sequence order"));
  std::string after_seq_text = "0", limit_text = "0";
  log_cmd->add_option("--after-seq", after_seq_text, "events after this sequence number");
  log_cmd->add_option("--limit", limit_text, "at most this many events (0: all)");
  log_cmd->add_option("--customer", log.customer);
  log_cmd->add_option("--type", log.type, "event type, e.g. SeatsChanged")
      ->check(CLI::IsMember(subledger::event_type_names()));
  log_cmd->callback([&] {
    log.db = db;
    if (!parse_u64(after_seq_text, log.after_seq)) {
      status = cli::fail("--after-seq must be a whole number from 0 to 18446744073709551615; got '" +
                         after_seq_text + "'");
      return;
    }
    if (!parse_u64(limit_text, log.limit)) {
      status = cli::fail("--limit must be a whole number from 0 to 18446744073709551615; got '" +
                         limit_text + "'");
      return;
    }
    status = cli::log(log, std::cout);
  });

  std::string from, to;
  auto* ren_cmd = with_db(app.add_subcommand("renewals", "terms ending in a range"));
  ren_cmd->add_option("--from", from)->required();
  ren_cmd->add_option("--to", to)->required();
  ren_cmd->callback([&] { status = cli::renewals(db, from, to, std::cout); });

  std::string invoice_id;
  auto* explain_cmd = with_db(app.add_subcommand("explain", "why each line of an invoice"));
  explain_cmd->add_option("invoice_id", invoice_id)->required();
  explain_cmd->callback([&] { status = cli::explain(db, invoice_id, std::cout); });

  bool verify = false;
  std::string what_if_file, from_hex;
  size_t workers = 2;
  auto* replay_cmd = with_db(app.add_subcommand("replay", "rebuild projections from the log"));
  auto* verify_flag = replay_cmd->add_flag(
      "--verify", verify,
      "regenerate every issued invoice and compare hashes; check the stored projection rows");
  replay_cmd
      ->add_option("--what-if", what_if_file,
                   "decide the history again with the commands of FILE merged in by date and "
                   "print how each invoice would change (writes nothing)")
      ->excludes(verify_flag);
  replay_cmd
      ->add_option("--workers", workers,
                   "lanes that fold customers in parallel (1: one thread does everything)")
      ->check(CLI::Range(1, 64));
  replay_cmd->add_option("--from-hex", from_hex,
                         "fold event values read from FILE (- for stdin), one hex value per line "
                         "(what `export` writes; used by bench/run to scan other stores)");
  replay_cmd->callback([&] {
    if (!from_hex.empty())
      status = cli::replay_from_hex(from_hex, std::cout);
    else if (!what_if_file.empty())
      status = cli::replay_what_if(db, what_if_file, std::cout);
    else
      status = cli::replay(db, verify, workers, std::cout);
  });

  auto* export_cmd = with_db(app.add_subcommand(
      "export",
      "every stored event as seq, stream and hex value, tab-separated (for other stores)"));
  export_cmd->callback([&] { status = cli::export_events(db, std::cout); });

  std::string dir;
  auto* backup_cmd = with_db(app.add_subcommand("backup", "back up the ledger to DIR"));
  backup_cmd->add_option("dir", dir)->required();
  backup_cmd->callback([&] { status = cli::backup(db, dir, std::cout); });
  auto* backups_cmd = app.add_subcommand("backups", "list the backups in DIR (JSON, one a line)");
  backups_cmd->add_option("dir", dir)->required();
  backups_cmd->callback([&] { status = cli::backups(dir, std::cout); });
  cli::RestoreOptions restore;
  auto* restore_cmd = with_db(app.add_subcommand(
      "restore", "restore a backup from DIR into a ledger that no process holds"));
  restore_cmd->add_option("dir", restore.dir)->required();
  restore_cmd->add_option("--backup-id", restore.backup_id, "which backup (default: the latest)")
      ->check(CLI::Range(1u, 0xffffffffu));
  restore_cmd->add_flag("--force", restore.force, "replace a ledger directory that is not empty");
  restore_cmd->callback([&] {
    restore.db = db;
    status = cli::restore(restore, std::cout);
  });
  auto* rebuild_cmd = with_db(app.add_subcommand(
      "rebuild", "rewrite every projection row from the log (for damaged rows)"));
  rebuild_cmd->callback([&] { status = cli::rebuild(db, std::cout); });
  auto* migrate_cmd = with_db(app.add_subcommand(
      "migrate", "bring a ledger of an older on-disk format to this one (rebuilds what is "
                 "derived from the log)"));
  migrate_cmd->callback([&] { status = cli::migrate(db, std::cout); });

  cli::DemoOptions demo;
  auto* demo_cmd = with_db(app.add_subcommand("demo", "a year of billing on the embedded demo"));
  demo_cmd->add_option("--csv", demo.csv_path, "where to write the reconciliation CSV");
  demo_cmd->add_option("--customers", demo.customers)->check(CLI::Range(1, 100000));
  demo_cmd->add_option("--seed", demo.seed);
  demo_cmd->callback([&] {
    demo.db = db;
    status = cli::demo(demo, std::cout);
  });

  cli::GenOptions gen;
  auto* gen_cmd = app.add_subcommand("gen", "write a deterministic workload command file");
  gen_cmd->add_option("--subscriptions", gen.subscriptions)
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}));
  gen_cmd->add_option("--seed", gen.seed);
  gen_cmd->add_option("--months", gen.months)->check(CLI::Range(1, 120));
  gen_cmd->add_option("--output,-o", gen.output, "file, or - for stdout");
  gen_cmd->callback([&] { status = cli::gen(gen, std::cout); });

  cli::add_server_commands(app, db, status);

  // Help and --version print to standard output: a write that fails is an error there too.
  auto exit_printing = [&app](const CLI::Error& e) {
    int code = app.exit(e);
    std::cout.flush();
    if (!std::cout) return cli::fail("cannot write to standard output");
    return code;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return exit_printing(e);
  } catch (const CLI::CallForAllHelp& e) {
    return exit_printing(e);
  } catch (const CLI::CallForVersion& e) {
    return exit_printing(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return cli::kExitError;
  } catch (const std::exception& e) {
    return cli::fail(std::string("internal error: ") + e.what());
  }
  // Output that cannot be written (a full disk, a closed pipe) is an error, whatever the
  // subcommand: checked once here, after the last flush.
  std::cout.flush();
  if (!std::cout && status != cli::kExitError)
    return cli::fail("cannot write to standard output");
  return status;
}
