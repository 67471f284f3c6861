// What-if regeneration: the tool a billing team uses before issuing a correction.
//
// The commands that produced the log are recovered from its events (the first non-system event of
// each request names its command; system transitions and the invoices of a billing run are
// re-derived, not replayed). The commands of the what-if file are merged in by date (each goes
// after every original command dated on or before it), and the whole history is decided again
// into a scratch ledger: the real ledger is only read. The result compares, per invoice, the issued
// totals and lines with the regenerated ones.
// One thread; the scratch directory is removed afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ledger/command.h"
#include "ledger/ledger.h"

namespace subledger {

// The commands recovered from the log, in log order. OK, or why the log cannot be read (DataLoss
// naming the first undecodable event, or the store's error).
[[nodiscard]] absl::Status recover_commands(const Store& store, std::vector<Command>& out);

struct InvoiceDiff {
  std::string invoice_id, currency;
  bool issued = false, regenerated = false;  // present before / after
  int64_t old_total_minor = 0, new_total_minor = 0;
  int currency_digits = 2;
  // Canonical line JSON without event_seq (later sequence numbers shift in the new history).
  std::vector<std::string> lines_removed, lines_added;
  std::string to_json() const;
};

struct WhatIfReport {
  uint64_t original_commands = 0, what_if_commands = 0, invoices_compared = 0;
  std::vector<CommandResult> rejected;  // commands the changed history no longer accepts
  std::vector<InvoiceDiff> changed;     // in invoice id order
  std::map<std::string, std::pair<int64_t, int64_t>> totals_minor;  // currency -> old, new
  std::string summary_json(const std::string& file) const;
};

// Reads the ledger's log and issued invoices, re-decides the history with `extra` merged in, in a
// scratch ledger under `scratch_dir` (created and removed). OK or the error.
[[nodiscard]] absl::Status what_if(const Ledger& ledger, const std::vector<Command>& extra,
                                   const std::string& scratch_dir, WhatIfReport& report);

}  // namespace subledger
