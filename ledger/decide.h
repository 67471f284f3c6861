// Decisions: the "decide" half of the decider. One pure function per command: given the command
// and the current projections, either the events to append or a rejection with a stable code and
// a message that says what would be accepted (BILLING_RULES 1, 2, 5, 7, 9, 10).
//
// No RocksDB, no clock, no logging: a rule is tested with values in, values out. Transitions that
// time brings for the command's own subscription (trial expiry, renewal, term expiry) come first
// in the decision, as system events, and only when the command is accepted (BILLING_RULES 5).
#pragma once

#include <optional>
#include <vector>

#include "events/event.h"
#include "ledger/command.h"
#include "projections/ledger_state.h"

namespace subledger {

// An event decided but not yet stamped with its envelope (sequence, version, time).
struct Staged {
  EventPayload payload;
  Date date;
  bool by_system = false;  // materialized by time: actor "system"
};

struct Decision {
  std::vector<Staged> events;
  std::optional<Rejection> rejection;
  // Only a member of the closed set (ledger/rejection.h).
  static Decision reject(RejectionCode code, std::string message) {
    return Decision{{}, subledger::rejection(code, std::move(message))};
  }
};

// SERVER.md "Partners own their ids": an id "P:x" belongs to partner P. A command whose scoped ids
// (request, customer, subscription) name another partner than the one it acts for, or a scoped
// partner or offer id, is INVALID_ARGUMENT. Checked before idempotency, so a request id of another
// partner's scope is never looked up.
std::optional<Rejection> check_scopes(const Command& command, const LedgerState& state);

// REQUIRES: command.type != kRunBilling (the billing run is executed by the ledger).
Decision decide(const Command& command, const LedgerState& state);

// What time brings to `sub` on or before `d`, in date order (BILLING_RULES 5): trial expiry at
// trial_end; at term_end an automatic renewal (price from the list as it stands now, promotion
// chosen against `state` as it stands now: BILLING_RULES 12) or expiry.
std::vector<Staged> due_transitions(const Subscription& sub, Date d, const LedgerState& state);
// The same for a preview that has only the catalog: a renewal gets no promotion.
std::vector<Staged> due_transitions(const Subscription& sub, Date d, const Catalog& catalog);

// Applies staged events to a copy of a subscription, without emitting lines anywhere.
void evolve_copy(Subscription& sub, const std::vector<Staged>& events);

// BILLING_RULES 9: registration_number_lengths() is in ledger/countries.h, beside the countries.

}  // namespace subledger
