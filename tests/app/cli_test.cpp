// The CLI for people (issue 19), through the real binary: tables on a terminal (a pseudo-terminal
// made by script(1)), JSON lines byte for byte when piped, totals, listings, and errors that say
// what would be accepted.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "events/codec.h"
#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "ledger/reports.h"
#include "projections/views.h"
#include "support/process.h"

namespace subledger {
namespace {

using testing::bin;
using testing::Both;
using testing::lines_of;
using testing::run;
using testing::run_both;
using testing::TempDir;
using testing::write_file;
using Json = nlohmann::json;

// Two customers of one partner: annual and monthly subscriptions, a seat change, a cancellation
// within 30 days (a credit), a trial, billed through 2025-04-30.
constexpr const char* kCommands =
    R"({"cmd":"register_partner","request_id":"p1","partner_id":"P1","country":"US","currency":"USD","billing_day":1}
{"cmd":"define_offer","request_id":"o1","offer_id":"E3","name":"Office 365 E3","trial_eligible":true}
{"cmd":"define_offer","request_id":"o2","offer_id":"E5","name":"Office 365 E5","trial_eligible":true}
{"cmd":"publish_price","request_id":"pr1","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2024-01-01"}
{"cmd":"publish_price","request_id":"pr2","offer_id":"E3","currency":"USD","monthly_price":"22.00","effective_from":"2025-03-01"}
{"cmd":"publish_price","request_id":"pr3","offer_id":"E5","currency":"USD","monthly_price":"35.00","effective_from":"2024-01-01"}
{"cmd":"create_customer","request_id":"c1","customer_id":"C1","partner_id":"P1","country":"US","currency":"USD","company_name":"Contoso"}
{"cmd":"create_customer","request_id":"c2","customer_id":"C2","partner_id":"P1","country":"US","currency":"USD","company_name":"Fabrikam"}
{"cmd":"create_subscription","request_id":"s1","subscription_id":"S1","customer_id":"C1","offer_id":"E3","seats":10,"billing_frequency":"annual","date":"2025-01-15"}
{"cmd":"create_subscription","request_id":"s2","subscription_id":"S2","customer_id":"C2","offer_id":"E5","seats":5,"billing_frequency":"monthly","date":"2025-01-20"}
{"cmd":"change_seats","request_id":"s2b","subscription_id":"S2","seats":8,"date":"2025-02-10"}
{"cmd":"create_subscription","request_id":"s3","subscription_id":"S3","customer_id":"C2","offer_id":"E3","seats":3,"billing_frequency":"annual","date":"2025-02-01"}
{"cmd":"cancel","request_id":"s3c","subscription_id":"S3","date":"2025-02-05"}
{"cmd":"start_trial","request_id":"t1","subscription_id":"T1","customer_id":"C1","offer_id":"E5","date":"2025-04-20"}
{"cmd":"run_billing","request_id":"b1","through":"2025-04-30"}
)";

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new TempDir("cli-people");
    write_file(*db_ / "commands.jsonl", kCommands);
    Both applied = run_both(bin() + " apply --db " + ledger() + " " + (*db_ / "commands.jsonl"));
    ASSERT_EQ(applied.status, 0) << applied.out << applied.err;
  }
  static void TearDownTestSuite() { delete db_; }
  static std::string ledger() { return *db_ / "db"; }
  static Both cli(const std::string& args) {
    return run_both(bin() + " " + args + " --db " + ledger());
  }
  // On a pseudo-terminal (stdout and stderr are the terminal), without NO_COLOR unless given.
  static std::string on_terminal(const std::string& args, const std::string& env = "") {
    std::string command = "env -u NO_COLOR " + env + " " + bin() + " " + args + " --db " + ledger();
    auto r = testing::run("script -qec '" + command + "' /dev/null");
    std::string text;
    for (char c : r.out)
      if (c != '\r') text += c;  // the terminal's CRLF
    return text;
  }
  static inline TempDir* db_ = nullptr;
};

// The lines the library renders for `query`: what the CLI printed before issue 19, unchanged.
std::string library_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return text;
}

TEST_F(Cli, PipedQueriesPrintTheLibrarysJsonLinesByteForByte) {
  auto store = Ledger::open_rows_for_reading(ledger());
  ASSERT_TRUE(store.ok());
  auto issued = issued_invoices(**store);
  ASSERT_TRUE(issued.ok());
  ASSERT_GE(issued->size(), 4u);
  std::vector<std::string> invoices, explain;
  for (const auto& i : *issued) invoices.push_back(invoice_json(i.invoice));
  EXPECT_EQ(cli("invoices").out, library_lines(invoices));
  EXPECT_EQ(cli("invoices --format json").out, library_lines(invoices));

  auto lines = explain_lines(**store, issued->front());
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(cli("explain " + issued->front().invoice.invoice_id).out, library_lines(*lines));

  auto s1 = stored_subscription(**store, "S1");
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(cli("state S1").out, subscription_json(*s1) + "\n");

  std::vector<std::string> events, s2_events;
  EventDecoder decoder;
  absl::Status scanned = (*store)->scan_events(0, [&](uint64_t, std::string_view bytes) {
    Event e;
    EXPECT_TRUE(decoder.decode(bytes, e).ok());
    events.push_back(event_json(e));
    if (e.stream.id == "S2") s2_events.push_back(events.back());
    return true;
  });
  ASSERT_TRUE(scanned.ok()) << scanned;
  EXPECT_EQ(cli("log").out, library_lines(events));
  EXPECT_EQ(cli("history S2").out, library_lines(s2_events));

  Ledger::Options preview;
  preview.preview = true;
  auto state = Ledger::open(ledger(), std::move(preview));
  ASSERT_TRUE(state.ok());
  auto renewals = renewal_lines((*state)->state(), Date::parse("2025-01-01").value(),
                                Date::parse("2027-12-31").value());
  ASSERT_FALSE(renewals.empty());
  EXPECT_EQ(cli("renewals --from 2025-01-01 --to 2027-12-31").out, library_lines(renewals));
}

// A query ends with _Exit once its output is flushed (main.cpp, kQueryCommands): what it printed
// reaches a file (fully buffered, unlike a pipe read as it comes) whole, and its exit status is
// the command's, a failed query's included.
TEST_F(Cli, AQueryEndingWithoutDestructorsLeavesItsWholeOutputInAFileAndItsExitStatus) {
  TempDir out("cli-query-file");
  for (const std::string query : {"invoices", "reconcile --from 2025-01-01 --to 2025-12-31", "log", "state S1", "customers"}) {
    const std::string file = out / "out.txt";
    Both to_file = run_both(bin() + " " + query + " --db " + ledger() + " >" + file);
    EXPECT_EQ(to_file.status, 0) << query << ": " << to_file.err;
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const Both piped = cli(query);
    EXPECT_FALSE(piped.out.empty()) << query;
    EXPECT_EQ(text, piped.out) << query;
  }
  Both missing = cli("state NO-SUCH-SUBSCRIPTION");
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("NO-SUCH-SUBSCRIPTION"), std::string::npos) << missing.err;
}

TEST_F(Cli, InvoicesOnATerminalAreATableWithAmountsRightAlignedAndATotalsRow) {
  std::string table = on_terminal("invoices", "NO_COLOR=1");
  auto rows = lines_of(table);
  ASSERT_GE(rows.size(), 8u) << table;
  EXPECT_TRUE(
      std::regex_search(rows[0], std::regex("^invoice +date +partner +customer +lines +total$")))
      << rows[0];
  EXPECT_EQ(table.find('{'), std::string::npos) << "no JSON on a terminal";
  EXPECT_EQ(table.find("\x1b["), std::string::npos) << "no colour with NO_COLOR";
  // Right-aligned: every amount ends in the same column, with its currency.
  size_t end = rows[2].size();
  for (size_t i = 2; i < rows.size(); ++i) {
    if (rows[i].find(" USD") == std::string::npos) continue;
    EXPECT_EQ(rows[i].size(), end) << rows[i];
  }
  EXPECT_TRUE(std::regex_match(rows.back(), std::regex("^total +[0-9.]+ USD$"))) << rows.back();
  // The totals row is the sum of the invoices' totals.
  int64_t sum = 0;
  for (const auto& line : lines_of(cli("invoices").out)) {
    std::string t = Json::parse(line)["total"];
    sum += std::llround(std::stod(t) * 100);
  }
  std::smatch m;
  ASSERT_TRUE(std::regex_search(rows.back(), m, std::regex("([0-9.]+) USD")));
  EXPECT_EQ(std::llround(std::stod(m[1]) * 100), sum);
}

TEST_F(Cli, ColourOnlyOnATerminalAndNeverWithNoColor) {
  EXPECT_NE(on_terminal("invoices").find("\x1b[1m"), std::string::npos) << "bold header";
  EXPECT_EQ(on_terminal("invoices", "NO_COLOR=1").find("\x1b["), std::string::npos);
  EXPECT_EQ(cli("invoices --format table").out.find("\x1b["), std::string::npos) << "piped";
}

TEST_F(Cli, EveryRecordQueryPrintsATableOnATerminal) {
  for (const char* args :
       {"renewals --from 2025-01-01 --to 2027-12-31", "log", "history S2", "explain C2-20250201",
        "state S1", "customers", "subscriptions", "offers", "prices", "trials",
        "summary --from 2025-01-01 --to 2025-12-31"}) {
    std::string table = on_terminal(args, "NO_COLOR=1");
    auto rows = lines_of(table);
    ASSERT_GE(rows.size(), 3u) << args << ":\n" << table;
    EXPECT_TRUE(std::regex_match(rows[1], std::regex("^[- ]+$"))) << args << ": " << rows[1];
    EXPECT_EQ(table.find("{\""), std::string::npos) << args << ":\n" << table;
  }
}

TEST_F(Cli, InvoicesCsvIsOneRowPerInvoiceBesideTheLineLevelReconcile) {
  Both csv = cli("invoices --format csv");
  ASSERT_EQ(csv.status, 0) << csv.err;
  auto rows = lines_of(csv.out);
  ASSERT_EQ(rows[0], "InvoiceId,InvoiceDate,PartnerId,CustomerId,Currency,Total,LineCount\r");
  auto invoices = lines_of(cli("invoices").out);
  ASSERT_EQ(rows.size(), invoices.size() + 1);
  for (size_t i = 0; i < invoices.size(); ++i) {
    Json inv = Json::parse(invoices[i]);
    EXPECT_EQ(rows[i + 1], inv["invoice_id"].get<std::string>() + "," +
                               inv["invoice_date"].get<std::string>() + ",P1," +
                               inv["customer_id"].get<std::string>() + ",USD," +
                               inv["total"].get<std::string>() + "," +
                               std::to_string(inv["lines"].size()) + "\r");
  }
  Both reconcile = cli("reconcile --from 2025-01-01 --to 2025-12-31");
  EXPECT_EQ(lines_of(reconcile.out)[0].rfind("InvoiceId,InvoiceDate,PartnerId,CustomerId,"
                                             "SubscriptionId",
                                             0),
            0u);
}

TEST_F(Cli, SummaryGivesGrossCreditsAndNetPerGroupWithATotalRow) {
  Both by_month = cli("summary --from 2025-01-01 --to 2025-12-31 --format json");
  ASSERT_EQ(by_month.status, 0) << by_month.err;
  auto rows = lines_of(by_month.out);
  ASSERT_GE(rows.size(), 2u);
  Json total = Json::parse(rows.back());
  EXPECT_EQ(total["total"], true);
  // The net of every invoice is the sum of their totals; the credit is S3's cancellation.
  int64_t sum = 0;
  size_t invoices = 0;
  for (const auto& line : lines_of(cli("invoices").out)) {
    sum += std::llround(std::stod(Json::parse(line)["total"].get<std::string>()) * 100);
    ++invoices;
  }
  EXPECT_EQ(std::llround(std::stod(total["net"].get<std::string>()) * 100), sum);
  EXPECT_EQ(total["invoices"], invoices);
  EXPECT_LT(std::stod(total["credits"].get<std::string>()), 0);
  EXPECT_EQ(Json::parse(rows[0])["month"], "2025-02");  // the first invoice date

  auto by_offer = lines_of(cli("summary --from 2025-01-01 --to 2025-12-31 --by offer "
                               "--currency USD --format json")
                               .out);
  ASSERT_EQ(by_offer.size(), 3u) << "E3, E5, total";
  EXPECT_EQ(Json::parse(by_offer[0])["offer_id"], "E3");
  EXPECT_EQ(Json::parse(by_offer[2])["net"], total["net"]);

  Both table = cli("summary --from 2025-01-01 --to 2025-12-31 --format table");
  EXPECT_TRUE(std::regex_search(table.out, std::regex("month +invoices +gross +credits +net\n")))
      << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex("\ntotal +[0-9]+ +[0-9.]+ USD")))
      << table.out;
}

TEST_F(Cli, ListingsShowCustomersSubscriptionsOffersPricesAndTrials) {
  EXPECT_EQ(lines_of(cli("customers").out).size(), 2u);
  EXPECT_EQ(lines_of(cli("customers --partner P1").out).size(), 2u);
  auto c2 = lines_of(cli("subscriptions --customer C2").out);
  ASSERT_EQ(c2.size(), 2u);
  EXPECT_EQ(Json::parse(c2[0])["subscription_id"], "S2");
  auto cancelled = lines_of(cli("subscriptions --status cancelled").out);
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(Json::parse(cancelled[0])["subscription_id"], "S3");
  EXPECT_EQ(lines_of(cli("subscriptions --offer E3").out).size(), 2u);
  EXPECT_EQ(lines_of(cli("offers").out).size(), 2u);
  EXPECT_EQ(lines_of(cli("prices").out).size(), 3u);
  auto in_force = lines_of(cli("prices --offer E3 --as-of 2025-02-28").out);
  ASSERT_EQ(in_force.size(), 1u);
  EXPECT_EQ(Json::parse(in_force[0])["monthly_price"], "20.00");
  auto trials = lines_of(cli("trials --expiring-before 2025-06-01").out);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(Json::parse(trials[0])["trial_end"], "2025-05-20");
  EXPECT_EQ(cli("trials --expiring-before 2025-05-20").out, "");
}

TEST_F(Cli, AFilterNamingAnIdThatDoesNotExistIsExitTwo) {
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"invoices --customer NOPE", "subledger: no customer 'NOPE'\n"},
           {"invoices --partner NOPE", "subledger: no partner 'NOPE'\n"},
           {"log --customer NOPE", "subledger: no customer 'NOPE'\n"},
           {"subscriptions --offer NOPE", "subledger: no offer 'NOPE'\n"},
           {"customers --partner NOPE", "subledger: no partner 'NOPE'\n"},
           {"prices --offer NOPE", "subledger: no offer 'NOPE'\n"},
           {"state NOPE", "subledger: no subscription 'NOPE'\n"},
           {"explain NOPE", "subledger: no invoice 'NOPE'\n"}}) {
    Both r = cli(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(r.err, message) << args;
    EXPECT_EQ(r.out, "") << args;
  }
}

TEST(CliScope, AnIdThatExistsOnlyUnderAPartnerScopeGetsDidYouMean) {
  TempDir dir("cli-scope");
  write_file(
      dir / "c.jsonl",
      R"({"cmd":"register_partner","request_id":"p","partner_id":"CONTOSO","country":"US","currency":"USD","billing_day":1}
{"cmd":"define_offer","request_id":"o","offer_id":"E3","name":"E3"}
{"cmd":"publish_price","request_id":"pr","offer_id":"E3","currency":"USD","monthly_price":"20.00","effective_from":"2024-01-01"}
{"cmd":"create_customer","request_id":"c","customer_id":"CONTOSO:C1","partner_id":"CONTOSO","country":"US","currency":"USD"}
{"cmd":"create_subscription","request_id":"s","subscription_id":"CONTOSO:S1","customer_id":"CONTOSO:C1","offer_id":"E3","seats":1,"billing_frequency":"monthly","date":"2025-01-10"}
)");
  Both applied = run_both(bin() + " apply --db " + (dir / "db") + " " + (dir / "c.jsonl"));
  ASSERT_EQ(applied.status, 0) << applied.out;
  const std::string db = " --db " + (dir / "db");
  Both state = run_both(bin() + " state S1" + db);
  EXPECT_EQ(state.status, 2);
  EXPECT_EQ(state.err.rfind("subledger: no subscription 'S1'; did you mean CONTOSO:S1?", 0), 0u)
      << state.err;
  Both history = run_both(bin() + " history S1" + db);
  EXPECT_NE(history.err.find("did you mean CONTOSO:S1?"), std::string::npos) << history.err;
  Both subs = run_both(bin() + " subscriptions --customer C1" + db);
  EXPECT_EQ(subs.status, 2);
  EXPECT_NE(subs.err.find("no customer 'C1'; did you mean CONTOSO:C1?"), std::string::npos)
      << subs.err;
  Both invoices = run_both(bin() + " invoices --customer C1" + db);
  EXPECT_NE(invoices.err.find("did you mean CONTOSO:C1?"), std::string::npos) << invoices.err;
}

TEST_F(Cli, LogTypeAcceptsAnyCase) {
  Both exact = cli("log --type SeatsChanged");
  ASSERT_EQ(exact.status, 0) << exact.err;
  ASSERT_EQ(lines_of(exact.out).size(), 1u);
  EXPECT_EQ(cli("log --type seatschanged").out, exact.out);
  EXPECT_EQ(cli("log --type SEATSCHANGED").out, exact.out);
  Both wrong = cli("log --type SeatChange");
  EXPECT_EQ(wrong.status, 2);
  EXPECT_NE(wrong.err.find("SeatsChanged"), std::string::npos) << "lists what is accepted";
}

TEST(CliErrors, AnUnknownCommandOrOptionGetsDidYouMean) {
  Both command = run_both(bin() + " invoice");
  EXPECT_EQ(command.status, 2);
  EXPECT_EQ(command.err.rfind("subledger: unknown command 'invoice'; did you mean 'invoices'?", 0),
            0u)
      << command.err;
  Both option = run_both(bin() + " invoices --custmer X");
  EXPECT_EQ(option.status, 2);
  EXPECT_EQ(option.err.rfind("subledger: unknown option of invoices '--custmer'; did you mean "
                             "'--customer'?",
                             0),
            0u)
      << option.err;
  Both none = run_both(bin());
  EXPECT_EQ(none.status, 2);
  EXPECT_EQ(none.err.rfind("subledger: a command is required: apply, bill, ", 0), 0u) << none.err;
  for (const char* args : {" bill", " invoices --format xml", " log --limit", " state",
                           " summary --from 2025-01-01 --to 2025-02-01 --by week"}) {
    Both r = run_both(bin() + args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(r.err.rfind("subledger: ", 0), 0u) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
  Both format = run_both(bin() + " invoices --format xml");
  EXPECT_NE(format.err.find("table"), std::string::npos) << "says what is accepted: " << format.err;
}

TEST(CliHelp, EverySubcommandsHelpDescribesEachOptionAndEndsWithExamplesAndExitStatus) {
  Both top = run_both(bin() + " --help");
  ASSERT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("writes nothing"), std::string::npos) << "replay";
  EXPECT_NE(top.out.find("bill fourteen months"), std::string::npos) << "demo";
  std::smatch m;
  std::string rest = top.out.substr(top.out.find("Subcommands:"));
  rest = rest.substr(0, rest.find("Examples:"));
  std::vector<std::string> names;
  for (const auto& line : lines_of(rest))
    if (std::regex_match(line, m, std::regex("^  ([a-z]+) .*"))) names.push_back(m[1]);
  ASSERT_GE(names.size(), 25u) << rest;
  for (const auto& name : names) {
    Both help = run_both(bin() + " " + name + " --help");
    EXPECT_EQ(help.status, 0) << name;
    EXPECT_NE(help.out.find("\n\nExamples:\n  subledger "), std::string::npos) << name;
    EXPECT_NE(help.out.find("\nExit status: 0 success"), std::string::npos) << name;
    EXPECT_NE(help.out.find("-q,--quiet"), std::string::npos) << name;
    EXPECT_NE(help.out.find("-v,--verbose"), std::string::npos) << name;
    // Every option line carries a description after its name (or, wrapped, on the next line).
    auto rows = lines_of(help.out);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!std::regex_match(rows[i], std::regex("^  -.*"))) continue;
      EXPECT_TRUE(
          std::regex_match(rows[i], std::regex("^  -\\S+( \\S+)* {2,}\\S.*")) ||
          (i + 1 < rows.size() && std::regex_match(rows[i + 1], std::regex("^ {20,}\\S.*"))))
          << name << ": " << rows[i];
    }
  }
  // A command line that names a command builds only its group of subcommands (main.cpp): named
  // after a leading --db, each still finds its help; a line without one still lists every one.
  for (const auto& name : names) {
    Both help = run_both(bin() + " --db /nonexistent " + name + " --help");
    EXPECT_EQ(help.status, 0) << name;
    EXPECT_NE(help.out.find("Usage: "), std::string::npos) << name;
    EXPECT_NE(help.out.find(" " + name + " [OPTIONS]"), std::string::npos) << name << help.out;
  }
  // --db at the end of the line has no directory: said, never read past the arguments.
  Both bare = run_both(bin() + " --db");
  EXPECT_EQ(bare.status, 2);
  EXPECT_EQ(bare.err, "subledger: --db needs the ledger's directory after it: subledger --db DIR "
                      "COMMAND\n");
  EXPECT_EQ(run_both(bin() + " --db /x --db").err, bare.err);
  Both none = run_both(bin() + " --db=/nonexistent");
  EXPECT_EQ(none.status, 2);
  for (const auto& name : names) EXPECT_NE(none.err.find(name), std::string::npos) << name;
  Both invoices = run_both(bin() + " invoices --help");
  EXPECT_TRUE(std::regex_search(invoices.out, std::regex("--from DATE +first invoice date to "
                                                         "include \\(a date, YYYY-MM-DD\\)")))
      << invoices.out;
}

// Where the build links tcmalloc, `subledger` runs its long commands in subledger-bulk (main.cpp,
// kBulkCommands): by exec, so the process, its streams and its exit status are the caller's.
TEST(CliBulk, ALongCommandRunsInTheBulkBinaryAsTheSameProcess) {
#ifndef SUBLEDGER_BULK_BIN
  GTEST_SKIP() << "this build has no subledger-bulk (glibc's malloc only)";
#else
  const std::filesystem::path bulk = std::filesystem::canonical(SUBLEDGER_BULK_BIN);
  TempDir dir("cli-bulk");
  const std::string db = dir / "db", program = bin();
  int input[2];
  ASSERT_EQ(::pipe(input), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(input[0], 0);
    ::close(input[0]);
    ::close(input[1]);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(program.c_str(), "subledger", "apply", "-q", "--db", db.c_str(), "-", nullptr);
    ::_exit(127);
  }
  ::close(input[0]);
  // `apply -` waits for its standard input, in whichever binary it runs.
  // Its name is set once the bulk binary's main() runs, a little after the exec.
  const std::string proc = "/proc/" + std::to_string(pid);
  std::filesystem::path exe;
  std::string name;
  for (int i = 0; i < 1000 && (exe != bulk || name != "subledger"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::error_code ec;
    exe = std::filesystem::read_symlink(proc + "/exe", ec);
    std::ifstream comm(proc + "/comm");
    std::getline(comm, name);
  }
  EXPECT_EQ(exe, bulk);
  EXPECT_EQ(name, "subledger") << "ps and pgrep see the process under its own name";
  const std::string line =
      R"({"cmd":"register_partner","request_id":"p","partner_id":"P","country":"US",)"
      R"("currency":"USD","billing_day":1})"
      "\n";
  // A child that exited early must fail this test, not kill the test process with SIGPIPE.
  const auto old_handler = ::signal(SIGPIPE, SIG_IGN);
  EXPECT_EQ(::write(input[1], line.data(), line.size()), static_cast<ssize_t>(line.size()));
  ::signal(SIGPIPE, old_handler);
  ::close(input[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(run(bin() + " log --db " + db).out.find("PartnerRegistered"), std::string::npos);
#endif
}

// A `subledger` without its subledger-bulk beside it still runs every command, in its own process.
// (A hard link in another directory: /proc/self/exe names the link's path, and no copy of the
// binary is made.)
TEST(CliBulk, WithoutTheBulkBinaryLongCommandsRunInPlace) {
  TempDir dir("cli-bulk-alone");
  const std::filesystem::path alone_dir = std::filesystem::path(bin()).parent_path().parent_path() /
                                          ("cli-bulk-alone-" + std::to_string(::getpid()));
  std::filesystem::remove_all(alone_dir);
  std::filesystem::create_directories(alone_dir);
  const std::string alone = (alone_dir / "subledger").string(), db = dir / "db";
  std::error_code ec;
  std::filesystem::create_hard_link(bin(), alone, ec);
  if (ec) std::filesystem::copy_file(bin(), alone);
  write_file(dir / "c.jsonl", kCommands);
  Both applied = run_both(alone + " apply -q --db " + db + " " + (dir / "c.jsonl"));
  EXPECT_EQ(applied.status, 0) << applied.err;
  EXPECT_EQ(run(alone + " invoices --db " + db).out, run(bin() + " invoices --db " + db).out);
  EXPECT_EQ(run_both(alone + " replay --verify --db " + db).status, 0);
  std::filesystem::remove_all(alone_dir);
}

class CliWrites : public ::testing::Test {
 protected:
  TempDir dir_{"cli-writes"};
  std::string db() const { return dir_ / "db"; }
};

TEST_F(CliWrites, ApplySaysHowManyWereAppliedRejectedAndDuplicates) {
  write_file(
      dir_ / "c.jsonl",
      R"({"cmd":"register_partner","request_id":"p","partner_id":"P","country":"US","currency":"USD","billing_day":1}
{"cmd":"define_offer","request_id":"o","offer_id":"E3","name":"E3"}
{"cmd":"define_offer","request_id":"o2","offer_id":"E3","name":"E3 again"}

{"cmd":"nonsense","request_id":"x"}
)");
  Both first = run_both(bin() + " apply --db " + db() + " " + (dir_ / "c.jsonl"));
  EXPECT_EQ(first.status, 1);
  EXPECT_TRUE(std::regex_match(first.err, std::regex("4 commands: 2 applied, 2 rejected, 0 "
                                                     "duplicates in [0-9]+ ms\n")))
      << first.err;
  Both again = run_both(bin() + " apply --db " + db() + " " + (dir_ / "c.jsonl"));
  EXPECT_TRUE(std::regex_match(again.err, std::regex("4 commands: 0 applied, 2 rejected, 2 "
                                                     "duplicates in [0-9]+ ms\n")))
      << again.err;
  Both quiet = run_both(bin() + " apply -q --db " + db() + " " + (dir_ / "c.jsonl"));
  EXPECT_EQ(quiet.err, "");
  EXPECT_EQ(quiet.out, again.out);
  Both verbose = run_both(bin() + " apply -v --db " + db() + " " + (dir_ / "c.jsonl"));
  EXPECT_NE(verbose.err.find("opening the ledger took"), std::string::npos) << verbose.err;
}

TEST_F(CliWrites, BillSaysWhatItIssuedOrWouldIssue) {
  write_file(dir_ / "c.jsonl", std::string(kCommands).substr(
                                   0, std::string(kCommands).find("{\"cmd\":\"run_billing\"")));
  ASSERT_EQ(run_both(bin() + " apply --db " + db() + " " + (dir_ / "c.jsonl")).status, 0);
  Both dry = run_both(bin() + " bill --dry-run --through 2025-02-01 --db " + db());
  EXPECT_EQ(dry.status, 0) << dry.err;
  EXPECT_TRUE(std::regex_match(dry.err, std::regex("dry run: would issue 2 invoices through "
                                                   "2025-02-01 \\([0-9.]+ USD\\); nothing was "
                                                   "recorded in [0-9]+ ms\n")))
      << dry.err;
  Both real = run_both(bin() + " bill --through 2025-02-01 --db " + db());
  EXPECT_TRUE(std::regex_match(real.err, std::regex("issued 2 invoices through 2025-02-01 "
                                                    "\\([0-9.]+ USD\\) in [0-9]+ ms\n")))
      << real.err;
  Both nothing = run_both(bin() + " bill --through 2025-02-01 --request-id again2 --db " + db());
  EXPECT_EQ(nothing.err.rfind("nothing to bill through 2025-02-01: no invoice issued", 0), 0u)
      << nothing.err;
  Both nothing_dry = run_both(bin() + " bill --dry-run --through 2025-02-01 --db " + db());
  EXPECT_EQ(nothing_dry.err.rfind("dry run: nothing to bill through 2025-02-01; nothing was "
                                  "recorded",
                                  0),
            0u)
      << nothing_dry.err;
}

// `bill --bounded-memory` reads the customers from disk as their turn comes: the same run, the
// same invoices, byte for byte (tests/ledger/billing_parts_test.cpp compares every stored row).
TEST_F(CliWrites, BillWithBoundedMemoryIssuesTheSameInvoices) {
  const std::string commands = dir_ / "g.jsonl";
  ASSERT_EQ(run(bin() + " gen --subscriptions 600 --seed 5 --months 3 -o " + commands).status, 0);
  std::string text;
  {
    std::ifstream in(commands);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t last_run = text.rfind("{\"cmd\":\"run_billing\"");
  ASSERT_NE(last_run, std::string::npos);
  std::smatch through;
  const std::string run_line = text.substr(last_run, text.find('\n', last_run) - last_run);
  ASSERT_TRUE(std::regex_search(run_line, through, std::regex("\"through\":\"([0-9-]+)\"")));
  write_file(dir_ / "before.jsonl", text.substr(0, last_run));
  const std::string whole = dir_ / "whole", bounded = dir_ / "bounded";
  ASSERT_EQ(run(bin() + " apply -q --db " + whole + " " + (dir_ / "before.jsonl")).status, 0);
  std::filesystem::copy(whole, bounded, std::filesystem::copy_options::recursive);
  const std::string bill = " bill --request-id last --through " + through[1].str() + " --db ";
  Both by_whole = run_both(bin() + bill + whole);
  Both by_rows = run_both(bin() + bill + bounded + " --bounded-memory");
  ASSERT_EQ(by_whole.status, 0) << by_whole.err;
  ASSERT_EQ(by_rows.status, 0) << by_rows.err;
  EXPECT_NE(by_whole.out.find("\"invoices_issued\""), std::string::npos);
  EXPECT_EQ(by_rows.out, by_whole.out);
  EXPECT_EQ(run(bin() + " invoices --format json --db " + bounded).out,
            run(bin() + " invoices --format json --db " + whole).out);
  EXPECT_EQ(run_both(bin() + " replay --verify --db " + bounded).status, 0);
  Both no_parts = run_both(bin() + bill + bounded + " --bounded-memory --part-mb 0");
  EXPECT_EQ(no_parts.status, 2);
  EXPECT_NE(no_parts.err.find("--bounded-memory needs parts"), std::string::npos) << no_parts.err;
  // A retry is answered as a duplicate either way.
  EXPECT_NE(run_both(bin() + bill + bounded + " --bounded-memory").out.find("\"duplicate\":true"),
            std::string::npos);
}

TEST_F(CliWrites, OnlyTheCommandsThatMayCreateALedgerDoSo) {
  for (const char* args : {"bill --through 2025-01-31", "bill --dry-run --through 2025-01-31",
                           "rebuild", "migrate", "invoices", "customers",
                           "summary --from "
                           "2025-01-01 --to 2025-01-31",
                           "replay", "log"}) {
    Both r = run_both(bin() + " " + args + " --db " + db());
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(r.err, "subledger: no ledger at " + db() + "\n") << args;
    EXPECT_FALSE(std::filesystem::exists(db())) << args << " created " << db();
  }
}

TEST_F(CliWrites, WhatIfExitsOneWhenACommandWouldBeRejected) {
  write_file(dir_ / "c.jsonl", kCommands);
  ASSERT_EQ(run_both(bin() + " apply --db " + db() + " " + (dir_ / "c.jsonl")).status, 0);
  write_file(
      dir_ / "w.jsonl",
      R"({"cmd":"change_seats","request_id":"w1","subscription_id":"S1","seats":12,"date":"2025-03-01"}
)");
  Both accepted = run_both(bin() + " replay --what-if " + (dir_ / "w.jsonl") + " --db " + db());
  EXPECT_EQ(accepted.status, 0) << accepted.err;
  // S2 cancelled before its seat change: the change is no longer accepted.
  write_file(dir_ / "r.jsonl",
             R"({"cmd":"cancel","request_id":"w2","subscription_id":"S2","date":"2025-01-25"}
)");
  Both rejected = run_both(bin() + " replay --what-if " + (dir_ / "r.jsonl") + " --db " + db());
  EXPECT_EQ(rejected.status, 1) << rejected.out << rejected.err;
}

}  // namespace
}  // namespace subledger
