#include "app/output.h"

#include <fmt/color.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <ostream>
#include <utility>

#include "events/money.h"
#include "projections/invoice.h"

namespace subledger::cli {

namespace {

using Pointer = Record::json_pointer;

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

// https://no-color.org: set and not empty means no colour.
bool colour_wanted() {
  const char* no_colour = std::getenv("NO_COLOR");
  return stdout_is_terminal() && !(no_colour && *no_colour);
}

const Record* member(const Record& record, const std::string& path) {
  Pointer pointer(path);
  return record.contains(pointer) ? &record.at(pointer) : nullptr;
}

int digits_of(const std::string& currency) {
  return find_currency(currency) ? minor_digits(currency) : 2;
}

std::string currency_of(const Record& record, const View& view) {
  if (!view.currency.empty()) return view.currency;
  const Record* c = member(record, view.currency_path);
  return c && c->is_string() ? c->get<std::string>() : "";
}

// A JSON value as a cell: "" for null or absent (tables show "-"), strings unquoted.
std::string cell_text(const Record* value, Column::Kind kind, bool table) {
  if (!value || value->is_null()) return table ? "-" : "";
  if (kind == Column::Kind::kCount && value->is_array()) return std::to_string(value->size());
  if (value->is_string()) return value->get<std::string>();
  if (value->is_boolean()) return table ? (value->get<bool>() ? "yes" : "no") : value->dump();
  if (value->is_array()) {
    std::string joined;
    for (const auto& e : *value) joined += (joined.empty() ? "" : " ") + cell_text(&e, kind, table);
    return joined;
  }
  return value->dump();
}

// A totals row says `"total": true` (an invoice's "total" is its amount, a string).
bool is_total(const Record& record) {
  auto it = record.find("total");
  return it != record.end() && it->is_boolean() && it->get<bool>();
}

std::string csv_header_of(const Column& c) {
  return c.csv_header.empty() ? c.path.substr(c.path.rfind('/') + 1) : c.csv_header;
}

// Totals rows per currency for the summed money columns (tables only: a CSV reader sums).
std::vector<Record> totals_of(const std::vector<Record>& records, const View& view) {
  std::map<std::string, std::map<std::string, __int128>> sums;  // currency -> path -> minor
  for (const Record& r : records) {
    if (is_total(r)) continue;
    const std::string currency = currency_of(r, view);
    for (const Column& c : view.columns) {
      if (!c.summed) continue;
      const Record* v = member(r, c.path);
      auto minor = v && v->is_string() ? parse_minor(v->get<std::string>(), digits_of(currency))
                                       : std::nullopt;
      sums[currency][c.path] += minor.value_or(0);
    }
  }
  std::vector<Record> out;
  for (const auto& [currency, by_path] : sums) {
    Record total = Record::object();
    total["total"] = true;
    total[Pointer(view.currency_path)] = currency;
    const int digits = digits_of(currency);
    for (const auto& [path, minor] : by_path)
      total[Pointer(path)] = format_exact(ExactAmount{minor, 1}, digits, digits);
    out.push_back(std::move(total));
  }
  return out;
}

// Code points, which is what fmt pads by for the text a ledger holds.
size_t display_width(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

struct Cell {
  std::string text;
  bool right = false, negative = false;
};
using Row = std::vector<Cell>;

// `total`: a totals row (its label in the first column, blanks where it has no value).
Row table_row(const Record& r, const View& view, const std::vector<const Column*>& columns,
              bool total) {
  Row row;
  const std::string currency = currency_of(r, view);
  for (const Column* c : columns) {
    Cell cell{cell_text(member(r, c->path), c->kind, true), c->kind != Column::Kind::kText};
    if (c->kind == Column::Kind::kMoney && cell.text != "-") {
      cell.negative = cell.text.front() == '-';
      if (!currency.empty()) cell.text += " " + currency;
    }
    if (total && cell.text == "-") cell.text = row.empty() ? "total" : "";
    row.push_back(std::move(cell));
  }
  return row;
}

class TableWriter {
 public:
  TableWriter(std::ostream& out, std::vector<size_t> widths)
      : out_(out), widths_(std::move(widths)), colour_(colour_wanted()) {}

  void row(const Row& cells, bool bold) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      const Cell& c = cells[i];
      const bool last = i + 1 == cells.size();
      std::string padded = c.right ? fmt::format("{:>{}}", c.text, widths_[i])
                           : last  ? c.text
                                   : fmt::format("{:<{}}", c.text, widths_[i]);
      if (colour_ && c.negative) padded = fmt::format(fg(fmt::terminal_color::red), "{}", padded);
      line += padded;
      if (!last) line += "  ";
    }
    out_ << (colour_ && bold ? fmt::format(fmt::emphasis::bold, "{}", line) : line) << '\n';
  }
  void rule() {
    std::string line;
    for (size_t i = 0; i < widths_.size(); ++i)
      line += fmt::format("{:-<{}}{}", "", widths_[i], i + 1 < widths_.size() ? "  " : "");
    out_ << line << '\n';
  }

 private:
  std::ostream& out_;
  std::vector<size_t> widths_;
  bool colour_;
};

void print_table(const std::vector<Row>& body, const std::vector<bool>& totals, Row header,
                 std::ostream& out) {
  std::vector<size_t> widths(header.size(), 0);
  auto widen = [&widths](const Row& row) {
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i].text));
  };
  widen(header);
  for (const Row& r : body) widen(r);
  TableWriter writer(out, widths);
  writer.row(header, true);
  writer.rule();
  bool ruled = false;
  for (size_t i = 0; i < body.size(); ++i) {
    if (totals[i] && !std::exchange(ruled, true)) writer.rule();
    writer.row(body[i], totals[i]);
  }
}

}  // namespace

Format resolve_format(const std::string& flag) {
  if (flag == "table") return Format::kTable;
  if (flag == "csv") return Format::kCsv;
  if (flag == "json") return Format::kJson;
  return stdout_is_terminal() ? Format::kTable : Format::kJson;
}

std::vector<std::string> format_names() { return {"table", "json", "csv"}; }

void append_csv_row(std::string& out, const std::vector<std::string>& cells) {
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i) out += ',';
    out += cells[i];
  }
  out += "\r\n";
}

RecordPrinter::RecordPrinter(View view, Format format, std::ostream& out)
    : view_(std::move(view)), format_(format), out_(out) {}

void RecordPrinter::add_json_line(const std::string& line) {
  if (format_ == Format::kJson)
    out_ << line << '\n';
  else
    add(Record::parse(line));
}

void RecordPrinter::add(Record record) {
  if (format_ == Format::kJson)
    out_ << record.dump() << '\n';
  else if (format_ == Format::kCsv)
    add_csv(record);
  else
    table_.push_back(std::move(record));
}

void RecordPrinter::write_csv_header() {
  header_done_ = true;
  std::string text;
  std::vector<std::string> cells;
  for (const Column& c : view_.columns)
    if (c.in_csv) cells.push_back(csv_cell(csv_header_of(c), true));
  append_csv_row(text, cells);
  out_ << text;
}

void RecordPrinter::add_csv(const Record& r) {
  if (!header_done_) write_csv_header();
  std::string text;
  std::vector<std::string> cells;
  for (const Column& c : view_.columns) {
    if (!c.in_csv) continue;
    std::string cell = cell_text(member(r, c.path), c.kind, false);
    if (cells.empty() && is_total(r) && cell.empty()) cell = "total";
    cells.push_back(csv_cell(cell, c.kind == Column::Kind::kText));
  }
  append_csv_row(text, cells);
  out_ << text;
}

void RecordPrinter::finish() {
  if (format_ == Format::kCsv && !header_done_) write_csv_header();
  if (format_ != Format::kTable) return;
  std::vector<const Column*> columns;
  for (const Column& c : view_.columns)
    if (c.in_table) columns.push_back(&c);
  Row header;
  for (const Column* c : columns) header.push_back({c->header, c->kind != Column::Kind::kText});
  std::vector<Row> body;
  std::vector<bool> totals;
  auto put = [&](const Record& r, bool total) {
    body.push_back(table_row(r, view_, columns, total));
    totals.push_back(total);
  };
  for (const Record& r : table_) put(r, is_total(r));
  if (!table_.empty())
    for (const Record& t : totals_of(table_, view_)) put(t, true);
  print_table(body, totals, std::move(header), out_);
}

void print_records(const std::vector<Record>& records, const View& view, Format format,
                   std::ostream& out) {
  RecordPrinter printer(view, format, out);
  for (const Record& r : records) printer.add(r);
  printer.finish();
}

void print_record_fields(const Record& record, Format format, std::ostream& out) {
  if (format == Format::kJson) {
    out << record.dump() << '\n';
    return;
  }
  View view;
  for (const auto& [key, value] : record.items())
    view.columns.push_back(
        Column{key, "/" + key, value.is_number() ? Column::Kind::kNumber : Column::Kind::kText});
  if (format == Format::kCsv) return print_records({record}, view, format, out);
  std::vector<Row> body;
  for (const Column& c : view.columns)
    body.push_back({{c.header}, {cell_text(member(record, c.path), c.kind, true)}});
  print_table(body, std::vector<bool>(body.size(), false), {{"field"}, {"value"}}, out);
}

}  // namespace subledger::cli
