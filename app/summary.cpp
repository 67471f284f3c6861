#include "app/summary.h"

#include "app/tables.h"
#include "events/money.h"

namespace subledger::cli {

namespace {

// The record member and table header of each grouping.
struct Grouping {
  const char* by;
  const char* member;
  const char* header;
};
constexpr Grouping kGroupings[] = {{"month", "month", "month"},
                                   {"partner", "partner_id", "partner"},
                                   {"customer", "customer_id", "customer"},
                                   {"offer", "offer_id", "offer"},
                                   {"charge-type", "charge_type", "charge type"}};

const Grouping& grouping(const std::string& by) {
  for (const Grouping& g : kGroupings)
    if (by == g.by) return g;
  return kGroupings[0];
}

std::string amount_text(__int128 minor, int digits) {
  return format_exact(ExactAmount{minor, 1}, digits, digits);
}

}  // namespace

std::vector<std::string> InvoiceSummary::groupings() {
  std::vector<std::string> out;
  for (const Grouping& g : kGroupings) out.push_back(g.by);
  return out;
}

InvoiceSummary::InvoiceSummary(std::string by) : by_(std::move(by)) {}

void InvoiceSummary::Totals::add(const Invoice& invoice, int64_t amount_minor) {
  if (last_invoice_id != invoice.invoice_id) {
    ++invoices;
    last_invoice_id = invoice.invoice_id;
  }
  digits = invoice.currency_digits;
  (amount_minor < 0 ? credits_minor : gross_minor) += amount_minor;
}

std::string InvoiceSummary::group_of(const Invoice& invoice, const ChargeLine& line) const {
  if (by_ == "partner") return invoice.partner_id;
  if (by_ == "customer") return invoice.customer_id;
  if (by_ == "offer") return line.offer_id;
  if (by_ == "charge-type") return std::string(to_string(line.type));
  return invoice.invoice_date.iso().substr(0, 7);
}

void InvoiceSummary::add(const Invoice& invoice) {
  for (const ChargeLine& line : invoice.lines) {
    groups_[{group_of(invoice, line), invoice.currency}].add(invoice, line.amount_minor);
    totals_[invoice.currency].add(invoice, line.amount_minor);
  }
}

Record InvoiceSummary::record_of(const Totals& t) const {
  return Record{{"invoices", t.invoices},
                {"gross", amount_text(t.gross_minor, t.digits)},
                {"credits", amount_text(t.credits_minor, t.digits)},
                {"net", amount_text(t.gross_minor + t.credits_minor, t.digits)}};
}

std::vector<Record> InvoiceSummary::records() const {
  std::vector<Record> out;
  auto put = [&](Record head, const Totals& t) {
    head.update(record_of(t));
    out.push_back(std::move(head));
  };
  for (const auto& [key, t] : groups_)
    put(Record{{grouping(by_).member, key.first}, {"currency", key.second}}, t);
  for (const auto& [currency, t] : totals_) put(Record{{"total", true}, {"currency", currency}}, t);
  return out;
}

View InvoiceSummary::view() const {
  return summary_view(grouping(by_).member, grouping(by_).header);
}

}  // namespace subledger::cli
