#include "events/hash.h"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but they are still part
// of its API and run the same assembly. EVP's first fetch initializes the library (its
// configuration file, every provider and algorithm name): 0.7-0.9 ms, which every `explain` or
// `invoices` process paid before its first hash, against 0.01 ms for the low-level calls, and each
// call through EVP looks the context's method up again.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <stdexcept>

namespace subledger {

static_assert(kSha256Bytes == SHA256_DIGEST_LENGTH);

void sha256_into(std::string_view bytes, uint8_t (&digest)[kSha256Bytes]) {
  SHA256_CTX ctx;
  if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, bytes.data(), bytes.size()) != 1 ||
      SHA256_Final(digest, &ctx) != 1)
    throw std::runtime_error("OpenSSL SHA-256 failed");
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
