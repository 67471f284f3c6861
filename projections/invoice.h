// Invoice: the lines of one customer on one invoice date, with their canonical form and hash.
//
// The canonical form of an invoice's lines is the JSON array printed by `invoices` (INTERFACE.md),
// byte for byte; its SHA-256 is recorded in the InvoiceIssued event, so anyone can regenerate an
// issued invoice from the log and prove it unchanged. Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "events/date.h"
#include "events/hash.h"
#include "projections/charge_line.h"

namespace subledger {

struct Invoice {
  std::string invoice_id, partner_id, customer_id;
  Date invoice_date;
  std::string currency;
  int currency_digits = 2;
  int64_t total_minor = 0;
  uint32_t line_count = 0;
  std::vector<ChargeLine> lines;  // in invoice order; may be dropped once hashed
  std::string lines_sha256;       // 32 raw bytes
};

// BILLING_RULES 8: "<customer_id>-<YYYYMMDD>".
std::string invoice_id_for(const std::string& customer_id, Date invoice_date);

// Sorts the lines into invoice order, then fills total, count and hash.
void seal_invoice(Invoice& invoice);

// The canonical JSON array of the lines (hashed), and one invoice as one JSON line.
std::string canonical_lines(const std::vector<ChargeLine>& lines, int currency_digits);
std::string invoice_json(const Invoice& invoice);

// The reconciliation file (INTERFACE.md): RFC 4180 CSV, one row per invoice line.
std::string reconciliation_header();
void append_reconciliation_rows(std::string& out, const Invoice& invoice);
// One RFC 4180 cell (quoted when it must be); a `text` cell that a spreadsheet would take for a
// formula is protected as the reconciliation file's are.
std::string csv_cell(const std::string& value, bool text);

// Minimal JSON string escaping for the hand-written canonical form.
void append_json_string(std::string& out, const std::string& value);

}  // namespace subledger
