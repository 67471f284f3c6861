// How queries print records for people and for machines: `--format table|json|csv`.
//
// A query hands over its records as the JSON objects it prints today (INTERFACE.md) and a view:
// the columns a table and a CSV file show. JSON lines stay byte for byte what each query prints
// (the query prints them itself); a table is aligned with fmt, amounts right-aligned with their
// currency, and ends with a totals row per currency where amounts are summed; a CSV file is
// RFC 4180 with a header row. Colour only when stdout is a terminal and NO_COLOR is unset.
// Single-threaded (the CLI's main thread).
#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace subledger::cli {

using Record = nlohmann::ordered_json;

enum class Format { kTable, kJson, kCsv };
// The value of --format: "table", "json", "csv"; "" chooses table on a terminal, JSON otherwise.
Format resolve_format(const std::string& flag);
// The accepted names, for CLI11's check and the help text.
std::vector<std::string> format_names();
// What --format says in every query's help.
inline constexpr const char* kFormatHelp =
    "table, json or csv (default: table when stdout is a terminal, JSON lines otherwise)";

struct Column {
  enum class Kind {
    kText,  // CSV text cells are protected against spreadsheet formulas
    kNumber,
    kMoney,  // a decimal string: right-aligned with the record's currency in tables
    kCount,  // the size of an array member
  };
  Column(std::string header_, std::string path_, Kind kind_ = Kind::kText, bool summed_ = false)
      : header(std::move(header_)), path(std::move(path_)), kind(kind_), summed(summed_) {}

  std::string header;  // in tables
  std::string path;    // a JSON pointer into the record, e.g. "/data/subscription_id"
  Kind kind = Kind::kText;
  bool summed = false;     // money summed into the totals rows (one per currency)
  std::string csv_header;  // default: the last part of the path
  bool in_table = true, in_csv = true;
};

// The columns of one kind of record, and where a record's currency is (for money columns).
struct View {
  View() = default;
  explicit View(std::vector<Column> columns_) : columns(std::move(columns_)) {}

  std::vector<Column> columns;
  std::string currency_path = "/currency";
  std::string currency;  // when the records do not carry it (explain: the invoice's)
};

// Prints records as they come: JSON lines verbatim, CSV rows at once (header first), table rows
// once all are in (finish()), since their widths depend on every row. A record with
// `"total": true` is a totals row of its own (after a rule in tables); when a column is summed,
// tables get a totals row per currency.
class RecordPrinter {
 public:
  RecordPrinter(View view, Format format, std::ostream& out);
  // A record as its query prints it in JSON (one line, no newline): printed byte for byte.
  void add_json_line(const std::string& line);
  void add(Record record);
  void finish();

 private:
  void add_csv(const Record& record);
  void write_csv_header();
  View view_;
  Format format_;
  std::ostream& out_;
  bool header_done_ = false;
  std::vector<Record> table_;
};

// Prints `records` (RecordPrinter over all of them).
void print_records(const std::vector<Record>& records, const View& view, Format format,
                   std::ostream& out);
// One record as a two-column table (field, value), or a one-row CSV of every member.
void print_record_fields(const Record& record, Format format, std::ostream& out);

// A CSV row of `cells` (quoted where RFC 4180 asks) with CRLF.
void append_csv_row(std::string& out, const std::vector<std::string>& cells);

}  // namespace subledger::cli
