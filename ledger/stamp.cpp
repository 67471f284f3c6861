#include "ledger/stamp.h"

#include <stdexcept>

#include "events/codec.h"

namespace subledger {

StampedEvent stamp_event(const LedgerState& state, EventPayload payload, Date effective_date,
                         std::string actor, std::string request_id, int64_t recorded_at_micros,
                         std::string command_hash) {
  StampedEvent out;
  Event& event = out.event;
  event.seq = state.last_seq() + 1;
  event.stream = stream_of(payload);
  event.stream_version = state.stream_version(event.stream) + 1;
  event.effective_date = effective_date;
  event.recorded_at_micros = recorded_at_micros;
  event.actor = std::move(actor);
  event.request_id = std::move(request_id);
  event.payload = std::move(payload);
  event.prev_hash = state.chain_head();
  event.command_hash = std::move(command_hash);
  if (auto* issued = std::get_if<InvoiceIssued>(&event.payload))
    issued->chain_head = event.prev_hash;
  if (absl::Status bad = check_event(event); !bad.ok())
    throw std::logic_error("decided an invalid event: " + std::string(bad.message()));
  out.bytes = encode_event(event);
  event.hash = stored_event_hash(out.bytes);
  return out;
}

}  // namespace subledger
