// What the subcommands share: opening the ledger the way a reader or a writer may, the one-line
// errors of INTERFACE.md, date arguments, -q/-v, and the ids a filter may name. Internal to app/;
// the CLI's main thread only.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/date.h"
#include "ledger/store.h"

namespace spdlog {
class logger;
}  // namespace spdlog

namespace subledger {
class Ledger;
class LedgerState;
}  // namespace subledger

namespace subledger::cli {

// -q: only errors on stderr; -v: timings and the ledger's own log too.
enum class Verbosity { kQuiet, kNormal, kVerbose };
void set_verbosity(Verbosity v);
Verbosity verbosity();
// Where notes for people go: stderr, or nowhere with -q.
std::ostream& note();
// Where the details of -v go: stderr with -v, else nowhere.
std::ostream& detail();
bool stderr_is_terminal();
// The ledger's log on stderr, at the level -q/-v asks (colour unless NO_COLOR).
std::shared_ptr<spdlog::logger> cli_logger();

enum class Mode {
  kRead,           // must exist; read-only, nothing in its directory changes
  kWrite,          // must exist
  kCreateOrWrite,  // apply, demo: may start a ledger
};
// `load_on_demand`, `expected_commands` (apply), `billing_part_bytes`, `bill_from_rows` (bill):
// Ledger::Options.
absl::StatusOr<std::unique_ptr<Ledger>> open_ledger(const std::string& db, Mode mode,
                                                    uint32_t rows_every_commits = 1,
                                                    bool load_on_demand = false,
                                                    uint64_t expected_commands = 0,
                                                    size_t billing_part_bytes = size_t{8} << 20,
                                                    bool bill_from_rows = false);

int fail_status(const absl::Status& status);

// Runs a query over the projection rows as of the last durable event. If a stored row cannot be
// read, the query runs again over rows folded in memory from the whole log (rows are derived).
// `query` returns its output text, so nothing is printed by an attempt that fails. `reads` says
// whether it reads a few keys (state, explain) or scans (summary).
int query_rows(const std::string& db, Store::Reads reads,
               const std::function<absl::StatusOr<std::string>(const Store&)>& query,
               std::ostream& out);

// A date argument ("" is none); on a bad one prints the error and sets `status`.
std::optional<Date> parse_date_arg(const std::string& text, const char* flag, int& status);

// The ids a filter or an argument may name, and whether each exists.
struct KnownIds {
  std::vector<std::string> partners;
  // kind: "customer", "partner", "subscription", "offer", "invoice"
  std::function<bool(std::string_view kind, const std::string& id)> exists;
};
KnownIds known_ids(const Store& store);
KnownIds known_ids(const LedgerState& state);
// OK for "" or an id that exists; else NotFound "no customer 'NOPE'", with "; did you mean
// CONTOSO:NOPE?" when the id exists in a partner's scope (ids the server wrote).
absl::Status require_known(const KnownIds& ids, std::string_view kind, const std::string& id);
// NotFound for an id known not to exist, with the same hint.
absl::Status no_such(const KnownIds& ids, std::string_view kind, const std::string& id);

}  // namespace subledger::cli
