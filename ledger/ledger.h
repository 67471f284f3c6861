// Ledger: the command pipeline. It opens the store, rebuilds the projections from the log, and
// turns each input command into appended events: parse, idempotency, decide (or the billing run),
// stamp envelopes, stage into the store's batch and fold into the projections.
//
// Durability contract: submit() stages; nothing may be acknowledged to the user before commit()
// has written the batch with the WAL synced. Many commands may share one commit (group commit).
// If commit() fails the in-memory state is ahead of the disk: the caller must stop using this
// Ledger (the shell exits with status 2; reopening rebuilds from what is durable).
// In preview mode (dry runs, what-if) commit() discards instead of writing.
// Not thread-safe: one thread drives a Ledger.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ledger/command.h"
#include "ledger/decide.h"
#include "ledger/store.h"
#include "projections/ledger_state.h"

namespace spdlog {
class logger;
}

namespace subledger {

struct CommandResult {
  std::string request_id;
  bool ok = false;
  bool duplicate = false;
  uint64_t seq_first = 0, seq_last = 0;
  std::string code, message;
  std::string extra_json;  // further members, e.g. "invoices_issued":3 (no braces)
  std::string to_json() const;
};

struct BillingSummary {
  Date through, previous_clock;
  uint32_t invoices_issued = 0, transitions = 0;
  // Per currency; 128-bit because a run sums every customer's invoice (each one fits int64).
  std::map<std::string, __int128> totals_minor;
  std::vector<std::string> invoice_ids;
  bool dry_run = false;
  std::string to_json() const;
};

class Ledger {
 public:
  struct Options {
    bool preview = false;  // never write: dry runs
    bool durable = true;   // sync the WAL on commit (false: scratch ledgers)
    // Projection rows and their checkpoint are written with every n-th commit (in the same
    // batch); opening catches up the events after the checkpoint. 1 keeps them always current.
    uint32_t projection_every_commits = 1;
    std::function<int64_t()> clock;          // recorded-at micros; default: the system clock
    std::shared_ptr<spdlog::logger> logger;  // default: a null logger
  };

  // Opens (creating if needed) the ledger in `dir`: loads the projection rows and applies the
  // events after their checkpoint (all of them when there are no usable rows).
  static std::unique_ptr<Ledger> open(const std::string& dir, Options options, std::string& error);

  // How the last open() got its state: events applied after the checkpoint, and whether rows
  // were loaded at all.
  struct OpenReport {
    bool from_checkpoint = false;
    uint64_t checkpoint = 0, events_caught_up = 0;
  };
  const OpenReport& open_report() const { return open_report_; }

  // Issued invoices from their projection rows, by invoice date then id (the order `invoices`
  // prints); `customer_id` filters.
  std::vector<IssuedInvoice> issued_invoices(const std::string& customer_id = "") const;
  std::optional<IssuedInvoice> issued_invoice(const std::string& invoice_id) const;

  // `line_number` (1-based, 0 = unknown) locates a malformed line in its rejection message.
  CommandResult submit(std::string_view json_line, uint64_t line_number = 0);
  CommandResult submit(const Command& command);
  // Writes everything submitted since the last commit as one synced batch. "" on success.
  std::string commit();
  // Pipelined commit: starts writing everything submitted since the last commit and returns at
  // once (after waiting for the previous batch, whose error it returns). Nothing of this batch may
  // be acknowledged before wait_committed() returns "" for it.
  std::string commit_async();
  std::string wait_committed();
  size_t staged_events() const { return store_->staged_count(); }

  const BillingSummary& last_billing() const { return last_billing_; }
  const LedgerState& state() const { return state_; }
  Store& store() { return *store_; }
  const Store& store() const { return *store_; }

 private:
  Ledger(std::unique_ptr<Store> store, Options options);
  std::string load_projections();
  std::string catch_up();
  CommandResult run_billing(const Command& command);
  // Stamps, encodes, stages and folds one event. Returns its sequence number.
  uint64_t append(const Staged& staged, const Command& command, Invoice* prebuilt = nullptr);
  void remember(const Command& command, const std::string& hash, const CommandResult& result);
  void stage_projections();
  OpenReport open_report_;
  uint32_t commits_since_rows_ = 0;

  std::unique_ptr<Store> store_;
  Options options_;
  LedgerState state_;
  BillingSummary last_billing_;
  // Idempotency records staged but not yet committed: request id -> hash + result.
  std::unordered_map<std::string, std::string> pending_requests_;
  std::unordered_map<std::string, std::string> in_flight_requests_;  // of the batch being written
  bool in_flight_ = false;
};

}  // namespace subledger
