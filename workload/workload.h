// Workload: a deterministic generator of realistic command files (BILLING_RULES vocabulary).
//
// The same parameters and seed give the same bytes on every machine: it draws from
// std::mt19937_64's raw output (fully specified by the standard), never from a std::*_distribution
// (whose algorithms differ between standard libraries). Every command it writes is meant to be
// accepted by a correct ledger: each subscription's actions are planned on its own timeline
// (created, maybe resized, maybe cancelled inside or after 30 days, maybe reactivated), all dated
// before the month-end billing run that follows them.
#pragma once

#include <cstdint>
#include <ostream>

#include "events/date.h"

namespace subledger {

struct WorkloadParams {
  uint64_t subscriptions = 1000;  // planned subscriptions, add-ons and trials included
  uint64_t seed = 1;
  int months = 12;                // a run_billing at the end of each
  int partners = 0;               // 0: one per 20,000 subscriptions, at least 3
  Date start = Date::from_ymd(2025, 1, 1);
};

struct WorkloadStats {
  uint64_t commands = 0, subscriptions = 0, customers = 0, partners = 0, billing_runs = 0;
};

WorkloadStats write_workload(const WorkloadParams& params, std::ostream& out);

}  // namespace subledger
