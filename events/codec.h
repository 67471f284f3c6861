// Codec: the one place that turns events into stored bytes (Cap'n Proto) and back.
//
// Encoding checks the event's invariants before writing; decoding checks them after reading
// (paired assertions at the storage boundary) and reports a corrupt or foreign value as an error,
// never by crashing. An EventDecoder owns a reusable word-aligned buffer, because Cap'n Proto 0.9
// reads only from 8-byte-aligned memory and stored values come back unaligned; use one decoder
// per thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"

namespace subledger {

// Serialized Cap'n Proto message (unpacked flat array) of the event.
std::string encode_event(const Event& event);

// An empty string when the event is well formed, otherwise what is wrong with it.
std::string check_event(const Event& event);

class EventDecoder {
 public:
  // Decodes `bytes` into `out`. Returns an empty string on success, otherwise why the bytes are
  // not a valid event (out is then unspecified).
  std::string decode(std::string_view bytes, Event& out);

 private:
  std::vector<uint64_t> aligned_;  // reused across calls: no per-event allocation once grown
};

}  // namespace subledger
