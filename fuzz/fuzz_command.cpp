// libFuzzer target: the command parser (ledger/command.h), which reads every `apply` line.
//
// Any input must give either a command or a rejection with a code, and never crash, assert or
// trip a sanitizer. An accepted command must have what the rest of the ledger relies on.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ledger/command.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  subledger::ParsedCommand parsed = subledger::parse_command(line);
  if (!parsed.command) {
    if (parsed.rejection.code.empty()) std::abort();  // a rejection always names its code
    return 0;
  }
  const subledger::Command& c = *parsed.command;
  if (c.request_id.empty()) std::abort();
  // Idempotency hashes the canonical payload of every accepted command: it must be stable.
  if (subledger::payload_hash(c) != subledger::payload_hash(c)) std::abort();
  (void)c.date.iso();
  return 0;
}
