#include "app/shell.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <ostream>
#include <streambuf>

#include "app/subcommands.h"
#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "projections/projection_rows.h"

namespace subledger::cli {

namespace {

Verbosity g_verbosity = Verbosity::kNormal;

std::ostream& nowhere() {
  struct NullBuffer : std::streambuf {
    int overflow(int c) override { return c; }
  };
  static NullBuffer buffer;
  static std::ostream stream(&buffer);
  return stream;
}

}  // namespace

std::shared_ptr<spdlog::logger> cli_logger() {
  static auto logger = [] {
    const char* no_colour = std::getenv("NO_COLOR");
    auto l = spdlog::stderr_color_mt("subledger", no_colour && *no_colour
                                                      ? spdlog::color_mode::never
                                                      : spdlog::color_mode::automatic);
    l->set_level(g_verbosity == Verbosity::kQuiet     ? spdlog::level::err
                 : g_verbosity == Verbosity::kVerbose ? spdlog::level::debug
                                                      : spdlog::level::warn);
    return l;
  }();
  return logger;
}

void set_verbosity(Verbosity v) { g_verbosity = v; }
Verbosity verbosity() { return g_verbosity; }
std::ostream& note() { return g_verbosity == Verbosity::kQuiet ? nowhere() : std::cerr; }
std::ostream& detail() { return g_verbosity == Verbosity::kVerbose ? std::cerr : nowhere(); }
bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1 && g_verbosity != Verbosity::kQuiet; }

// Readers (kRead) open the ledger read-only: it must exist, nothing in its directory changes, and
// rows that lag the log are caught up in memory. Only apply and demo may create a ledger here.
// `rows_every_commits`: Ledger::Options::projection_every_commits.
static_assert(kBillingPartBytes == size_t{8} << 20, "open_ledger's default in shell.h");

absl::StatusOr<std::unique_ptr<Ledger>> open_ledger(const std::string& db, Mode mode,
                                                    uint32_t rows_every_commits,
                                                    bool load_on_demand,
                                                    uint64_t expected_commands,
                                                    size_t billing_part_bytes,
                                                    bool bill_from_rows) {
  Ledger::Options options;
  options.bill_from_rows = bill_from_rows;
  options.billing_part_bytes = billing_part_bytes;
  options.projection_every_commits = rows_every_commits;
  options.load_on_demand = load_on_demand && mode != Mode::kRead;
  options.expected_commands = expected_commands;
  options.preview = mode == Mode::kRead;
  options.create_if_missing = mode == Mode::kCreateOrWrite;
  options.logger = cli_logger();
  if (mode != Mode::kRead) Store::run_compactions_at_low_priority();
  return Ledger::open(db, std::move(options));
}

int fail_status(const absl::Status& status) { return fail(std::string(status.message())); }

int query_rows(const std::string& db, Store::Reads reads,
               const std::function<absl::StatusOr<std::string>(const Store&)>& query,
               std::ostream& out) {
  for (bool fold_everything : {false, true}) {
    auto store = Ledger::open_rows_for_reading(db, fold_everything, nullptr, reads);
    if (!store.ok()) return fail_status(store.status());
    auto text = query(**store);
    if (text.ok()) {
      out << *text;
      return kExitOk;
    }
    if (!absl::IsDataLoss(text.status()) || fold_everything) return fail_status(text.status());
  }
  return kExitError;
}

std::optional<Date> parse_date_arg(const std::string& text, const char* flag, int& status) {
  if (text.empty()) return std::nullopt;
  auto d = Date::parse(text);
  if (!d) status = fail(std::string(flag) + " must be a date YYYY-MM-DD; got '" + text + "'");
  return d;
}

KnownIds known_ids(const Store& store) {
  auto catalog = catalog_only(store);  // absent before the first catalog event
  auto state = std::make_shared<LedgerState>(catalog.ok() ? std::move(*catalog) : LedgerState());
  KnownIds ids;
  for (const auto& [partner_id, partner] : state->catalog().partners())
    ids.partners.push_back(partner_id);
  ids.exists = [&store, state](std::string_view kind, const std::string& id) {
    if (kind == "partner") return state->catalog().partner(id) != nullptr;
    if (kind == "offer") return state->catalog().offer(id) != nullptr;
    const std::string key = kind == "customer"       ? customer_row_key(id)
                            : kind == "subscription" ? subscription_row_key(id)
                                                     : invoice_row_key(id);
    // A row that exists but cannot be read is the query's to report, not "no such id".
    return !absl::IsNotFound(store.projection(key).status());
  };
  return ids;
}

KnownIds known_ids(const LedgerState& state) {
  KnownIds ids;
  for (const auto& [partner_id, partner] : state.catalog().partners())
    ids.partners.push_back(partner_id);
  ids.exists = [&state](std::string_view kind, const std::string& id) {
    if (kind == "partner") return state.catalog().partner(id) != nullptr;
    if (kind == "offer") return state.catalog().offer(id) != nullptr;
    if (kind == "customer") return state.catalog().customer(id) != nullptr;
    return state.subscription(id) != nullptr;
  };
  return ids;
}

absl::Status require_known(const KnownIds& ids, std::string_view kind, const std::string& id) {
  if (id.empty() || ids.exists(kind, id)) return absl::OkStatus();
  return no_such(ids, kind, id);
}

absl::Status no_such(const KnownIds& ids, std::string_view kind, const std::string& id) {
  std::string message = "no " + std::string(kind) + " '" + id + "'";
  std::vector<std::string> scoped;
  if (kind != "partner")
    for (const std::string& partner : ids.partners)
      if (ids.exists(kind, partner + ":" + id)) scoped.push_back(partner + ":" + id);
  for (size_t i = 0; i < scoped.size(); ++i)
    message += (i == 0 ? "; did you mean " : i + 1 == scoped.size() ? " or " : ", ") + scoped[i];
  if (!scoped.empty()) message += "? (ids the server wrote carry their partner's scope)";
  return absl::NotFoundError(message);
}

}  // namespace subledger::cli
