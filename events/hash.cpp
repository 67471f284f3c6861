#include "events/hash.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>
#include <stdexcept>

namespace subledger {

static_assert(kSha256Bytes == SHA256_DIGEST_LENGTH);

namespace {

// OpenSSL 3's one-shot SHA256() looks the algorithm up on every call; fetch it once and keep one
// digest context per thread.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

}  // namespace

void sha256_into(std::string_view bytes, uint8_t (&digest)[kSha256Bytes]) {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  unsigned int size = 0;
  if (!ctx || !sha256_md() || EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1 || size != kSha256Bytes)
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
