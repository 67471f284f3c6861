// Codec: the one place that turns events into stored bytes (Cap'n Proto) and back.
//
// Encoding checks the event's invariants before writing; decoding checks them after reading
// (paired assertions at the storage boundary) and reports a corrupt or foreign value as an error,
// never by crashing. An EventDecoder owns a reusable word-aligned buffer, because Cap'n Proto 0.9
// reads only from 8-byte-aligned memory and stored values come back unaligned; use one decoder
// per thread.
#pragma once

#include <absl/status/status.h>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"

namespace subledger {

// The stored value of an event: its Cap'n Proto message (unpacked flat array), then the 32-byte
// SHA-256 of that message. The message holds prev_hash, the previous event's trailer, so the
// trailers chain every event to all before it: changing, removing or reordering any stored event
// breaks the chain at that event. (event.hash is ignored: it is what this computes.)
inline constexpr size_t kEventHashBytes = 32;
std::string encode_event(const Event& event);
// The trailer of a stored value: the event's hash (empty if the value is too short).
std::string_view stored_event_hash(std::string_view stored);

// OK when the event is well formed, otherwise InvalidArgument saying what is wrong with it.
[[nodiscard]] absl::Status check_event(const Event& event);

class EventDecoder {
 public:
  // Decodes a stored value into `out` (with out.hash = its trailer) after checking the trailer is
  // the hash of the message. Returns OK, or DataLoss saying why the bytes are not a valid event
  // (out is then unspecified). The chain link (prev_hash) is the reader's to check.
  [[nodiscard]] absl::Status decode(std::string_view bytes, Event& out);

 private:
  std::vector<uint64_t> aligned_;  // reused across calls: no per-event allocation once grown
};

// `status` (not OK) with the stored event it concerns named first: "event <seq>: <message>".
[[nodiscard]] absl::Status at_event(uint64_t seq, const absl::Status& status);

}  // namespace subledger
