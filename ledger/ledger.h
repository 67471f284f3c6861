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

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ledger/command.h"
#include "ledger/decide.h"
#include "ledger/store.h"
#include "projections/ledger_state.h"
#include "projections/row_codec.h"

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

// One accepted command as the log shows it: its events (a command's events are contiguous), the
// payload hash its first event carries ("" on events written before on-disk format 3), and a
// billing run's invoice count. Enough to derive its idempotency record again.
struct LoggedCommand {
  std::string request_id, command_hash;
  uint64_t seq_first = 0, seq_last = 0;
  std::optional<uint32_t> invoices_issued;
  void add(uint64_t seq, const Event& e);  // the next event of this command
  // The record its acceptance stored: `payload_hash` then the result line it was answered with.
  std::string record(std::string_view payload_hash) const;
};

// A billing run committed in parts whose end is not in the log yet (Store::unfinished_run): what
// deciding the rest of it needs. Written with each part; the next writer to open the ledger ends
// the run before it decides anything else (Ledger::open).
struct UnfinishedRun {
  std::string request_id, command_hash, actor;  // command_hash: 32 raw bytes
  Date through;
  uint64_t seq_first = 0;  // the run's first event
  uint32_t invoices_issued = 0, transitions = 0;  // in the parts written
  // A ledger's first run (no billing clock yet), once it has begun invoicing: the day after
  // which each partner's invoice dates begin (the day before its earliest pending charge then;
  // its own invoices consume those charges, so what is left could not say it again).
  std::optional<std::map<std::string, Date>> starts;
  std::string encode() const;
  // DataLoss when `record` is not one encode() wrote.
  [[nodiscard]] static absl::StatusOr<UnfinishedRun> decode(std::string_view record);
};

// A command line parsed and its payload hashed, ahead of deciding it: both are pure, so another
// thread may do them (apply's reader) while the ledger's thread decides the lines before it.
// What a command will be decided against, read and decoded ahead on another thread
// (Ledger::prefetch_rows). Used only while no customer was dropped since it was read
// (`generation`); else read again. Consumed by the submit that decides the command.
struct RowPrefetch {
  uint64_t generation = 0;
  // Subscription id -> the customer its row names ("" when it has no row).
  std::vector<std::pair<std::string, std::string>> subscription_customers;
  struct Customer {
    std::string id;
    bool exists = false;  // false: it had no row
    bool taken = false;   // loaded from here once: its rows were moved into the state
    CustomerRow row;
    std::vector<Subscription> subscriptions;  // every one of the row's, in its order
  };
  std::vector<Customer> customers;
};

// The row of subscription `id`, which `customer_id`'s row lists, decoded (`row`: as read).
// DataLoss when it is absent or unreadable; another read error as it is.
[[nodiscard]] absl::StatusOr<Subscription> listed_subscription(
    const std::string& customer_id, const std::string& id, const absl::StatusOr<std::string>& row);

struct PreparedCommand {
  ParsedCommand parsed;
  std::string payload_hash;  // of parsed.command, when there is one
  RowPrefetch prefetch;      // empty unless prefetch_rows() filled it
};
PreparedCommand prepare_command(std::string_view json_line, uint64_t line_number = 0);

// Below one expected command per this many subscriptions, a writer loads on demand (Options).
// Measured end to end (`apply` of the first N commands of a generated month against a 30k
// ledger, medians of 5, on demand / whole): N = 500: 0.15 / 0.19 s; 1000: 0.22 / 0.21 s;
// 2000: 0.24 / 0.21 s. Looking a customer up costs about what reading 25 rows in order does.
inline constexpr uint64_t kSubscriptionsPerCommandOnDemand = 24;

// How many bytes of a billing run's events are staged before they are written as a part
// (Options::billing_part_bytes). At 1M subscriptions (a month of 710k events), farm-bench medians:
// the bill process's peak 1291 MiB against 2058 in one batch, wall 0.92x.
inline constexpr size_t kBillingPartBytes = 8 << 20;

class Ledger {
 public:
  struct Options {
    // Never write: dry runs and what-if. The ledger is opened read-only (it must exist), rows
    // that lag or cannot be read are caught up in memory only.
    bool preview = false;
    bool create_if_missing = true;  // writers that may start a ledger (apply, bill, demo)
    bool durable = true;   // sync the WAL on commit (false: scratch ledgers)
    // Projection rows and their checkpoint are written with every n-th commit (in the same
    // batch); opening catches up the events after the checkpoint. 1 keeps them always current.
    uint32_t projection_every_commits = 1;
    // A billing run's commit carries the rows however far they lag: the server reads issued
    // invoices from their rows. (Readers that fold the events after the checkpoint, as the CLI's
    // do, also list invoices issued after it: tests turn this off to build such a ledger.)
    bool rows_with_billing_runs = true;
    // State on disk (a writer that decides a few commands against a large ledger, `apply`):
    // opening loads only the catalog and the meta row; each command first loads the customers it
    // names (directly, or through a subscription or a parent subscription) from their rows, with
    // all their subscriptions. A command that needs every subscription (a billing run, a price
    // publication) first writes the rows and then loads the whole state, which stays loaded.
    // Rows that lag the log or cannot be read make it load the whole state too (rebuilt from the
    // log when it must be). Decisions are the same either way. REQUIRES: not preview.
    bool load_on_demand = false;
    // With load_on_demand: how many commands the writer expects to decide (0: unknown). When
    // that many would touch a large part of the ledger (one command or more per
    // kSubscriptionsPerCommandOnDemand subscriptions), the whole state is loaded at open instead:
    // reading every row in key order then costs less than looking that many customers up.
    uint64_t expected_commands = 0;
    // With load_on_demand: once more subscriptions and customers than this are loaded
    // (LedgerState::loaded_entities), the next commit that writes the rows drops every customer
    // (their rows are then written), keeping memory bounded.
    size_t loaded_subscriptions_max = 1 << 17;
    // A billing run commits in parts: once this many bytes of its events are staged, they are
    // written (synced, with the rows they change and a progress record, Store::unfinished_run),
    // so its memory stays bounded however large the ledger. A run cut short by a crash is ended
    // by the next writer's open, with the same events and invoices. 0: one batch.
    size_t billing_part_bytes = kBillingPartBytes;
    // With load_on_demand: a billing run reads what it bills from the rows instead of loading
    // the whole state first (`bill --bounded-memory`): the subscriptions due, in creation order,
    // and each partner's customers, each loaded as its turn comes and dropped once its part is
    // written (loaded_subscriptions_max). The same events either way. One month's run at 1M
    // subscriptions: 28.5 s and a peak of 519 MiB, against 11.3 s (3.5 of them loading the
    // state) and 1,308 MiB; at 3M, 98.6 s and 807 MiB against 44.2 s and 3,503 MiB. A subscription due is read alone (its customer loaded in part) unless a
    // promotion on renewal names its offer (which looks at the customer's others).
    bool bill_from_rows = false;
    std::function<int64_t()> clock;          // recorded-at micros; default: the system clock
    std::shared_ptr<spdlog::logger> logger;  // default: a null logger
  };

  // Opens the ledger in `dir` (see Options for which may create it): loads the projection rows
  // and applies the events after their checkpoint (all of them when there are no usable rows).
  // A writer first reads the whole log once with its block checksums checked and refuses a
  // damaged log, naming the first sequence number that cannot be read (Store::open); unreadable
  // rows are dropped and rebuilt from the log (a reader folds them in memory instead).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Ledger>> open(const std::string& dir,
                                                                    Options options);
  // The same over a store already open (read-only for preview).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Ledger>> open(std::unique_ptr<Store> store,
                                                                    Options options);
  // For tests and older callers: nullptr and `error` on failure.
  static std::unique_ptr<Ledger> open(const std::string& dir, Options options, std::string& error);

  // Rewrites every projection row from the log (`subledger rebuild`). REQUIRES: a writer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Ledger>> rebuild(const std::string& dir,
                                                                       Options options);

  // A read-only store whose projection rows (stored, plus in memory the rows of every event
  // after their checkpoint, or all of them when the stored ones cannot be read) are as of the
  // last durable event. `fold_everything`: ignore the stored rows and fold the whole log.
  // Events after the checkpoint (a writer beside the reader has not flushed its rows yet) are
  // folded into the customers they touch, loaded from their rows (LedgerState::subset); only
  // when that cannot be done (rows missing or unreadable) into the whole state.
  struct RowsCatchUp {
    uint64_t events = 0;     // folded after the stored checkpoint
    size_t customers = 0;    // loaded for them (with all their subscriptions)
    bool whole_state = false;  // the whole state was loaded (or the whole log folded)
  };
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> open_rows_for_reading(
      const std::string& dir, bool fold_everything = false, RowsCatchUp* report = nullptr,
      Store::Reads reads = Store::Reads::kMany);
  // Hands the store back (what open_rows_for_reading returns), ending this Ledger's use of it.
  std::unique_ptr<Store> release_store() { return std::move(store_); }

  // How the last open() got its state: events applied after the checkpoint, and whether rows
  // were loaded at all.
  struct OpenReport {
    bool from_checkpoint = false;
    bool rows_rebuilt = false;  // stored rows were unreadable or of an older format
    uint64_t checkpoint = 0, events_caught_up = 0;
    uint64_t index_caught_up = 0;  // events whose index entries and records were re-derived
    bool on_demand = false;        // only the catalog and the meta row were loaded
    // A billing run a crash had cut short, ended by this open ("": none): its request id, and
    // the invoices it issued in all.
    std::string ended_run;
    Date ended_run_through;
    uint32_t ended_run_invoices = 0;
  };
  const OpenReport& open_report() const { return open_report_; }

  // Issued invoices from their projection rows, by invoice date then id (the order `invoices`
  // prints); `customer_id` filters.
  [[nodiscard]] absl::StatusOr<std::vector<IssuedInvoice>> issued_invoices(
      const std::string& customer_id = "") const;

  // When the ledger cannot be read (an I/O error looking up the request id, or loading the
  // whole state failed), the command is neither decided nor staged, and io_failure() says why:
  // not a rejection, the caller stops (exit status 2) after committing and answering the
  // commands before it. (Loading the whole state first writes what was submitted before it; a
  // write error there is kept, so that commit fails too and answers nothing as done.)
  // `line_number` (1-based, 0 = unknown) locates a malformed line in its rejection message.
  CommandResult submit(std::string_view json_line, uint64_t line_number = 0);
  CommandResult submit(const Command& command);
  // The same for a line prepare_command() read (on any thread); takes its prefetched rows.
  CommandResult submit(PreparedCommand& prepared);
  // load_on_demand: reads the rows `prepared` names (its customer, with all its subscriptions)
  // into prepared.prefetch, so deciding it need not wait for them. Safe on any thread while
  // this Ledger lives, beside its own thread's work; does nothing once the whole state is loaded.
  // `recent`, one per calling thread: customers read for the last few commands are not read
  // again (the ledger has loaded them by then), nor customers of more than a few dozen
  // subscriptions (the ledger reads those once), so what waits in a queue of prepared commands
  // stays small.
  struct ReadAhead {
    size_t customers = 256;  // how many recent customers are not read again
    std::vector<std::string> recent;
    size_t next = 0;
  };
  void prefetch_rows(PreparedCommand& prepared, ReadAhead& recent) const;
  // A group of commands (an order's line items, a PATCH's fields) as one unit: each is decided
  // against the state the earlier ones leave, and if any is rejected nothing is staged.
  // REQUIRES: no kRunBilling in the group.
  struct GroupResult {
    std::vector<CommandResult> results;    // one per command when all were accepted
    std::optional<size_t> rejected_index;  // else the first rejected command...
    CommandResult rejection;               // ...and its result
  };
  GroupResult submit_group(const std::vector<Command>& commands);
  // Idempotency records kept beside the commands' own (the server's HTTP answers): looked up
  // through the staged, the in-flight and the durable records (NotFound: none; another error: the
  // store could not say); staged into the current batch. Keys must not be request ids of commands
  // (the server's contain a space, which the id grammar excludes).
  [[nodiscard]] absl::StatusOr<std::string> request_record(const std::string& key) const;
  void remember_record(const std::string& key, std::string record);
  // Writes everything submitted since the last commit as one synced batch. OK, or the store's
  // error (then the Ledger is unusable: see the durability contract above).
  [[nodiscard]] absl::Status commit();
  // Pipelined commit: starts writing everything submitted since the last commit and returns at
  // once (after waiting for the previous batch, whose error it returns). Nothing of this batch may
  // be acknowledged before wait_committed() returns OK for it.
  [[nodiscard]] absl::Status commit_async();
  [[nodiscard]] absl::Status wait_committed();
  size_t staged_events() const { return store_->staged_count(); }
  const std::string& io_failure() const { return io_failure_; }

  const BillingSummary& last_billing() const { return last_billing_; }
  // Whether commits since the last one with projection rows left them behind the log.
  bool rows_behind() const { return rows_behind_; }
  // Writes the projection rows and their checkpoint now (durably, after the batch in flight), so
  // a reader or the next open has nothing to catch up: when a writer goes idle or stops.
  [[nodiscard]] absl::Status write_rows();

  const LedgerState& state() const { return state_; }
  Store& store() { return *store_; }
  const Store& store() const { return *store_; }

 private:
  Ledger(std::unique_ptr<Store> store, Options options);
  // Open's state: the index caught up (writers), then the rows or the catalog, then the log.
  [[nodiscard]] absl::Status open_state(const std::optional<UnfinishedRun>& unfinished);
  // On demand: lets every customer and subscription go, to be read again from its row when next
  // needed. Only once the rows of every loaded one that changed are written.
  void drop_customers();
  // Decides the rest of a billing run a crash cut short, and commits it.
  [[nodiscard]] absl::Status end_unfinished_run(const UnfinishedRun& run);
  absl::Status load_or_reset_projections();
  // Loads the stored rows; an error says why they cannot be used (they are then rebuilt).
  [[nodiscard]] absl::Status load_projections();
  // Applies the events after the state's last one; DataLoss names the first that cannot follow.
  [[nodiscard]] absl::Status catch_up();
  // load_on_demand: the catalog and the meta row, when the stored rows reach the end of the log.
  // False (and nothing loaded) when they do not: the whole state is loaded instead.
  [[nodiscard]] absl::StatusOr<bool> load_catalog_only();
  // load_on_demand: loads what `command` is decided against (see Options::load_on_demand).
  // `prefetch`: what was read ahead for it (taken when still valid), or nullptr.
  [[nodiscard]] absl::Status load_for(const Command& command, RowPrefetch* prefetch = nullptr);
  // The customer whose rows hold the subscription ("" when it has none).
  [[nodiscard]] absl::StatusOr<std::string> customer_of(const std::string& subscription_id,
                                                        const RowPrefetch* prefetch) const;
  // The customer, with all its subscriptions, from its rows; NotFound when it has no row.
  [[nodiscard]] absl::Status load_customer(const std::string& customer_id,
                                           RowPrefetch* prefetch = nullptr);
  // From any thread, as prefetch_rows: the rows of each of `customer_ids` with at most
  // `subscriptions_max` subscriptions, read into `out` (what run_billing's invoicing reads ahead).
  // Nothing while the whole state is loaded.
  void prefetch_customers(const std::vector<const std::string*>& customer_ids,
                          size_t subscriptions_max, RowPrefetch& out) const;
  // Writes everything staged with the rows, then loads the whole state (on_demand_ ends).
  [[nodiscard]] absl::Status load_whole_state();
  CommandResult submit_hashed(const Command& command, const std::string& hash,
                              RowPrefetch* prefetch = nullptr);
  // `hash`: the command's payload hash. `resumed`: the parts of it already in the log.
  CommandResult run_billing(const Command& command, const std::string& hash,
                            const UnfinishedRun* resumed = nullptr);
  // submit_group for groups the state's undo log cannot cover (catalog commands): decided whole
  // on a copy of the state first.
  GroupResult submit_group_on_copy(const std::vector<Command>& commands);
  // Stamps, encodes, stages and folds one event. Returns its sequence number.
  uint64_t append(const Staged& staged, const Command& command, Invoice* prebuilt = nullptr);
  void remember(const Command& command, const std::string& hash, const CommandResult& result);
  void stage_projections();
  OpenReport open_report_;
  // state_ is a subset, loaded command by command. on_demand_ is changed only by this Ledger's
  // thread, with prefetch_mutex_ held: prefetch_rows reads it (and never state_) from other
  // threads under a shared lock, so no row is read while the whole state replaces the rows.
  bool on_demand_ = false;
  bool in_group_ = false;    // submit_group: its commands' customers are loaded
  absl::Status unusable_;    // loading the whole state failed: nothing more is decided
  absl::Status write_error_;  // the first failed write: every later commit returns it
  mutable std::shared_mutex prefetch_mutex_;
  std::atomic<uint64_t> generation_{0};  // customers were dropped this many times
  uint32_t commits_since_rows_ = 0;
  bool rows_behind_ = false;

  std::unique_ptr<Store> store_;
  Options options_;
  LedgerState state_;
  BillingSummary last_billing_;
  // Idempotency records staged but not yet committed: request id -> hash + result.
  std::unordered_map<std::string, std::string> pending_requests_;
  std::unordered_map<std::string, std::string> in_flight_requests_;  // of the batch being written
  bool in_flight_ = false;
  std::string io_failure_;
  std::string command_hash_;  // of the command being decided, until its first event takes it
};

}  // namespace subledger
