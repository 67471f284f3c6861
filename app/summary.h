// `summary`: invoices, gross charges, credits and net per group and currency, with a total row
// per currency (the shape of hledger's `balance`). Built from issued invoices one at a time, so
// memory grows with the groups, not the invoices. Pure; one thread.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "app/output.h"
#include "projections/invoice.h"

namespace subledger::cli {

class InvoiceSummary {
 public:
  // How --by may group: month (of the invoice date), partner, customer, offer, charge-type.
  static std::vector<std::string> groupings();
  // REQUIRES: `by` is one of groupings().
  explicit InvoiceSummary(std::string by);

  void add(const Invoice& invoice);
  // One record per group and currency, in group then currency order, then a total record per
  // currency ({"total":true,...}). Amounts are decimal strings in the currency's digits.
  std::vector<Record> records() const;
  View view() const;

 private:
  struct Totals {
    uint64_t invoices = 0;
    __int128 gross_minor = 0, credits_minor = 0;
    std::string last_invoice_id;  // an invoice counts once in a group of its lines
    int digits = 2;
    void add(const Invoice& invoice, int64_t amount_minor);
  };
  std::string group_of(const Invoice& invoice, const ChargeLine& line) const;
  Record record_of(const Totals& totals) const;

  std::string by_;
  std::map<std::pair<std::string, std::string>, Totals> groups_;  // (group, currency)
  std::map<std::string, Totals> totals_;                          // currency
};

}  // namespace subledger::cli
