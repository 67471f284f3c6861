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

// Bytes that decode re-encode to bytes that decode and re-encode to the same bytes.
template <typename Decode, typename Encode>
void round_trip(std::string_view bytes, Decode decode, Encode encode) {
  auto row = decode(bytes);
  if (!row) return;
  std::string once = encode(*row);
  auto again = decode(once);
  if (!again || encode(*again) != once) std::abort();
}

std::string encode_customer_row(const CustomerRow& row) {
  return encode_customer(row.customer, row.version, row.subscription_count, row.pending_count,
                         row.next_line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  round_trip(bytes, decode_subscription, encode_subscription);
  round_trip(bytes, decode_customer, encode_customer_row);
  round_trip(bytes, decode_charge_line, encode_charge_line);
  round_trip(bytes, decode_issued_invoice, encode_issued_invoice);
  return 0;
}
