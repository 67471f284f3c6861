// Hashing shared by the log's hash chain and the invoices: SHA-256 (OpenSSL) and hex.
// Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace subledger {

inline constexpr size_t kSha256Bytes = 32;

// 32 raw bytes.
std::string sha256(std::string_view bytes);
void sha256_into(std::string_view bytes, uint8_t (&digest)[kSha256Bytes]);
std::string to_hex(std::string_view bytes);

}  // namespace subledger
