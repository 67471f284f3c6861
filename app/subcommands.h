// The shell: each `subledger` subcommand as a function that opens the ledger, calls the core and
// prints. Exit status (INTERFACE.md): 0 success, 1 some command rejected, 2 usage/I-O/corruption.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace subledger::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRejected = 1;
inline constexpr int kExitError = 2;

struct ApplyOptions {
  std::string db, input = "-";
  size_t batch_commands_max = 4096;  // commands per synced write (group commit)
  // What is loaded before the first command: "auto" (by the input's size against the ledger's),
  // "on-demand" (the customers each command names) or "whole" (every row).
  std::string load = "auto";
};
int apply(const ApplyOptions& o, std::ostream& out);

struct BillOptions {
  std::string db, through, request_id;
  bool dry_run = false;
  size_t part_mib = 8;  // Ledger::Options::billing_part_bytes (kBillingPartBytes), in MiB
  bool bounded_memory = false;  // Ledger::Options::bill_from_rows
};
int bill(const BillOptions& o, std::ostream& out);

struct InvoicesOptions {
  std::string db, customer, from, to, format, partner;  // format "": table on a terminal, else JSON
  bool reconciliation = false;                          // the line-level CSV of `reconcile`
};
int invoices(const InvoicesOptions& o, std::ostream& out);
int reconcile(const InvoicesOptions& o, std::ostream& out);

// `format` (here and below): "table", "json", "csv", or "" for table on a terminal, else JSON.
int state(const std::string& db, const std::string& subscription_id, const std::string& as_of,
          const std::string& format, std::ostream& out);
int history(const std::string& db, const std::string& subscription_id, const std::string& format,
            std::ostream& out);

struct LogOptions {
  std::string db, customer, type, format;
  uint64_t after_seq = 0;
  uint64_t limit = 0;  // 0: no limit
};
int log(const LogOptions& o, std::ostream& out);

int renewals(const std::string& db, const std::string& from, const std::string& to,
             const std::string& format, std::ostream& out);
int explain(const std::string& db, const std::string& invoice_id, const std::string& format,
            std::ostream& out);
// The listings (app/listings.cpp); each filter naming an id that does not exist is exit 2.
struct ListOptions {
  std::string db, format;
  std::string partner;                  // customers
  std::string customer, status, offer;  // subscriptions (offer: prices too)
  std::string as_of;                    // prices: the price in force on that date
  std::string expiring_before;          // trials
};
int customers(const ListOptions& o, std::ostream& out);
int subscriptions(const ListOptions& o, std::ostream& out);
int offers(const ListOptions& o, std::ostream& out);
int prices(const ListOptions& o, std::ostream& out);
int trials(const ListOptions& o, std::ostream& out);

struct SummaryOptions {
  std::string db, from, to, by = "month", currency, format;
};
int summary(const SummaryOptions& o, std::ostream& out);

int replay(const std::string& db, bool verify, size_t workers, std::ostream& out);
int replay_from_hex(const std::string& file, std::ostream& out);
int export_events(const std::string& db, std::ostream& out);
int replay_what_if(const std::string& db, const std::string& file, std::ostream& out);
int backup(const std::string& db, const std::string& dir, std::ostream& out);
int backups(const std::string& dir, std::ostream& out);
struct RestoreOptions {
  std::string db, dir;
  uint32_t backup_id = 0;  // 0: the latest
  bool force = false;      // replace a non-empty ledger directory
};
int restore(const RestoreOptions& o, std::ostream& out);
int rebuild(const std::string& db, std::ostream& out);
int migrate(const std::string& db, std::ostream& out);

struct DemoOptions {
  std::string db, csv_path;
  uint64_t seed = 2017;
  int customers = 36;
};
int demo(const DemoOptions& o, std::ostream& out);

struct GenOptions {
  uint64_t subscriptions = 1000, seed = 1;
  int months = 12;
  std::string output = "-";
};
int gen(const GenOptions& o, std::ostream& out);

// Prints "subledger: <message>" on stderr (one line: control bytes escaped) and returns
// kExitError; tell() prints the same line for a warning that does not end the command.
int fail(const std::string& message);
void tell(const std::string& message);

}  // namespace subledger::cli
