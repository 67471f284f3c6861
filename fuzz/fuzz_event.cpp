// libFuzzer target: the event decoder (events/codec.h), which reads every stored event.
//
// The input is the message part of a stored value; the target appends its SHA-256 trailer so
// that mutations get past the hash check into the Cap'n Proto reading and the field validation
// (a mutated value with a stale trailer is tried too, and must be refused). Any input must decode
// to an event or to an error, never crash; an event that decodes must survive a round trip
// through encode_event unchanged (the decoder accepts only what the encoder could have written).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "events/codec.h"
#include "events/hash.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace subledger;
  static EventDecoder decoder;
  std::string body(reinterpret_cast<const char*>(data), size);
  Event stale;
  (void)decoder.decode(body, stale);  // almost always "does not match its hash"

  std::string stored = body + sha256(body);
  Event event;
  if (!decoder.decode(stored, event).ok()) return 0;

  Event again;
  if (!decoder.decode(encode_event(event), again).ok()) std::abort();
  again.hash = event.hash;  // the re-encoded message may differ in layout, not in content
  if (!(again == event)) std::abort();
  return 0;
}
