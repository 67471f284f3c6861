#include "projections/invoice.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace subledger {

std::string invoice_id_for(const std::string& customer_id, Date invoice_date) {
  return customer_id + "-" + invoice_date.compact();
}

void append_json_string(std::string& out, const std::string& value) {
  out.push_back('"');
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

namespace {

void append_field(std::string& out, const char* key, const std::string& value) {
  out += '"';
  out += key;
  out += "\":";
  append_json_string(out, value);
}

void append_line(std::string& out, const ChargeLine& l, int digits) {
  out += '{';
  append_field(out, "subscription_id", l.subscription_id);
  out += ',';
  append_field(out, "offer_id", l.offer_id);
  out += ",\"charge_type\":\"";
  out += to_string(l.type);
  out += "\",\"period_start\":\"";
  out += l.period_start.iso();
  out += "\",\"period_end\":\"";
  out += l.period_end.iso();
  out += "\",\"seats\":";
  out += std::to_string(l.seats);
  out += ",\"unit_price\":\"";
  out += format_price(l.unit_price_micros);
  out += "\",\"amount\":\"";
  out += format_minor(l.amount_minor, digits);
  out += "\",\"billing_frequency\":\"";
  out += to_string(l.frequency);
  out += "\",\"charge_date\":\"";
  out += l.charge_date.iso();
  out += "\",\"event_seq\":";
  out += std::to_string(l.event_seq);
  if (!l.promotion_id.empty()) {  // INTERFACE.md: only on lines of a promoted term
    out += ',';
    append_field(out, "promotion_id", l.promotion_id);
  }
  out += '}';
}

}  // namespace

std::string canonical_lines(const std::vector<ChargeLine>& lines, int currency_digits) {
  std::string out = "[";
  out.reserve(lines.size() * 300 + 2);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += ',';
    append_line(out, lines[i], currency_digits);
  }
  out += ']';
  return out;
}

void seal_invoice(Invoice& invoice) {
  std::sort(invoice.lines.begin(), invoice.lines.end(), invoice_order);
  __int128 total = 0;
  for (const auto& l : invoice.lines) total += l.amount_minor;
  // Decisions keep every customer's charges in range (AMOUNT_OUT_OF_RANGE); a fold never meets
  // a total outside it.
  if (total > std::numeric_limits<int64_t>::max() || total < -std::numeric_limits<int64_t>::max())
    throw std::overflow_error("invoice " + invoice.invoice_id + " total out of range");
  invoice.total_minor = static_cast<int64_t>(total);
  invoice.line_count = static_cast<uint32_t>(invoice.lines.size());
  invoice.lines_sha256 = sha256(canonical_lines(invoice.lines, invoice.currency_digits));
}

std::string invoice_json(const Invoice& inv) {
  std::string out = "{";
  append_field(out, "invoice_id", inv.invoice_id);
  out += ',';
  append_field(out, "partner_id", inv.partner_id);
  out += ',';
  append_field(out, "customer_id", inv.customer_id);
  out += ",\"invoice_date\":\"" + inv.invoice_date.iso() + "\",";
  append_field(out, "currency", inv.currency);
  out += ",\"total\":\"" + format_minor(inv.total_minor, inv.currency_digits) + "\",\"lines\":";
  out += canonical_lines(inv.lines, inv.currency_digits);
  out += '}';
  return out;
}

}  // namespace subledger

namespace subledger {

namespace {

// OWASP CSV injection: a text cell a spreadsheet would evaluate as a formula gets a leading
// apostrophe. Ids cannot start so (the id grammar), but a ledger can hold older data; numeric
// columns are written as numbers and never pass through here.
std::string neutralised(const std::string& text) {
  if (!text.empty() && std::string_view("=+-@\t\r").find(text.front()) != std::string_view::npos)
    return "'" + text;
  return text;
}

void csv_field(std::string& out, const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) {
    out += value;
    return;
  }
  out.push_back('"');
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

std::string reconciliation_header() {
  return "InvoiceId,InvoiceDate,PartnerId,CustomerId,SubscriptionId,OfferId,ChargeType,"
         "ChargeStartDate,ChargeEndDate,Quantity,UnitPrice,Amount,Currency,BillingFrequency,"
         "ChargeDate,EventSeq,PromotionId\r\n";
}

void append_reconciliation_rows(std::string& out, const Invoice& inv) {
  for (const auto& l : inv.lines) {
    const std::string fields[] = {neutralised(inv.invoice_id),
                                  inv.invoice_date.iso(),
                                  neutralised(inv.partner_id),
                                  neutralised(inv.customer_id),
                                  neutralised(l.subscription_id),
                                  neutralised(l.offer_id),
                                  std::string(to_string(l.type)),
                                  l.period_start.iso(),
                                  l.period_end.iso(),
                                  std::to_string(l.seats),
                                  format_price(l.unit_price_micros),
                                  format_minor(l.amount_minor, inv.currency_digits),
                                  inv.currency,
                                  std::string(to_string(l.frequency)),
                                  l.charge_date.iso(),
                                  std::to_string(l.event_seq),
                                  neutralised(l.promotion_id)};
    for (size_t i = 0; i < std::size(fields); ++i) {
      if (i) out.push_back(',');
      csv_field(out, fields[i]);
    }
    out += "\r\n";
  }
}

std::string csv_cell(const std::string& value, bool text) {
  std::string out;
  csv_field(out, text ? neutralised(value) : value);
  return out;
}

}  // namespace subledger
