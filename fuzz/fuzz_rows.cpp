// libFuzzer target: the projection-row decoders (projections/row_codec.h), which read every
// stored subscription, customer, pending-line and invoice row. Each input is tried as all four.
//
// Any input must decode to a row or to nullopt, never crash; a row that decodes must re-encode to
// bytes that decode to the same row (compared through their canonical encoding).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "projections/row_codec.h"

namespace {

using namespace subledger;

void subscription(std::string_view bytes) {
  auto row = decode_subscription(bytes);
  if (!row) return;
  std::string once = encode_subscription(*row);
  auto again = decode_subscription(once);
  if (!again || encode_subscription(*again) != once) std::abort();
}

std::string encode(const CustomerRow& row) {
  return encode_customer(row.customer, row.version, row.subscription_count, row.pending_count,
                         row.next_line);
}

void customer(std::string_view bytes) {
  auto row = decode_customer(bytes);
  if (!row) return;
  std::string once = encode(*row);
  auto again = decode_customer(once);
  if (!again || encode(*again) != once) std::abort();
}

void charge_line(std::string_view bytes) {
  auto line = decode_charge_line(bytes);
  if (!line) return;
  std::string once = encode_charge_line(*line);
  auto again = decode_charge_line(once);
  if (!again || encode_charge_line(*again) != once) std::abort();
}

void invoice(std::string_view bytes) {
  auto row = decode_issued_invoice(bytes);
  if (!row) return;
  std::string once = encode_issued_invoice(*row);
  auto again = decode_issued_invoice(once);
  if (!again || encode_issued_invoice(*again) != once) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  subscription(bytes);
  customer(bytes);
  charge_line(bytes);
  invoice(bytes);
  return 0;
}
