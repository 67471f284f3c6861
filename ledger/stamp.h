// Stamping: the one place that turns a decided payload into the next event of the log, with its
// envelope (sequence, stream version, chain link) and its stored bytes. The ledger appends with
// it; test and benchmark harnesses that fold events without a database use it too, so they build
// exactly the events the ledger would.
// Pure function of the state; safe from any thread that may read the state.
#pragma once

#include <cstdint>
#include <string>

#include "events/event.h"
#include "projections/ledger_state.h"

namespace subledger {

struct StampedEvent {
  Event event;        // with hash set
  std::string bytes;  // the stored value (encode_event)
};

// The event that would follow `state`: seq = last_seq + 1, the stream's next version, prev_hash =
// the chain head (also recorded in an InvoiceIssued payload), then encoded and hashed.
// `command_hash`: the command's payload_hash on its first event, "" on the others.
// Throws std::logic_error if the envelope is invalid (a decider bug, never user input).
StampedEvent stamp_event(const LedgerState& state, EventPayload payload, Date effective_date,
                         std::string actor, std::string request_id, int64_t recorded_at_micros,
                         std::string command_hash = {});

}  // namespace subledger
