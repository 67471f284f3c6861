#include "events/hash.h"

#include <openssl/sha.h>

namespace subledger {

static_assert(kSha256Bytes == SHA256_DIGEST_LENGTH);

void sha256_into(std::string_view bytes, uint8_t (&digest)[kSha256Bytes]) {
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
}

std::string sha256(std::string_view bytes) {
  uint8_t digest[kSha256Bytes];
  sha256_into(bytes, digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

std::string to_hex(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace subledger
