// libFuzzer target: the projection-row decoders (projections/row_codec.h), which read every
// stored subscription, customer and invoice row. Each input is tried as all three kinds.
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

void customer(std::string_view bytes) {
  auto row = decode_customer(bytes);
  if (!row) return;
  std::string once = encode_customer(row->customer, row->version, &row->pending);
  auto again = decode_customer(once);
  if (!again || encode_customer(again->customer, again->version, &again->pending) != once)
    std::abort();
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
  invoice(bytes);
  return 0;
}
