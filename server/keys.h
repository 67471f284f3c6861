// API keys (SERVER.md "Running it"): a key is `<key_id>.<secret>`; the keys file holds one JSON
// object per line (key_id, partner_id or null for the operator, sha256 of the whole key as hex,
// created, revoked: false or the time of revocation), never a key itself. The file is created with
// mode 0600 and refused when group or others may read or write it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace subledger::server {

struct KeyRecord {
  std::string key_id;
  std::optional<std::string> partner_id;  // nullopt: the operator
  std::string sha256_hex;                 // of the whole key `<key_id>.<secret>`
  std::string created;                    // UTC, YYYY-MM-DDTHH:MM:SSZ
  std::string revoked;                    // "" while valid, else when it was revoked
};

// "" or why `partner_id` cannot be a key's partner (empty, outside the id grammar, with ':').
std::string partner_id_error(const std::string& partner_id);
// "" or why `path` must not be used: it is readable or writable by group or others.
std::string key_file_mode_error(const std::string& path);
// Reads every record; "" or what is wrong (naming the line).
std::string read_keys(const std::string& path, std::vector<KeyRecord>& out);
// Appends a new key for `partner_id` (nullopt: an operator key), creating the file (0600) when
// needed. The new key, from a CSPRNG, is returned in `key` and stored only as its hash.
std::string add_key(const std::string& path, const std::optional<std::string>& partner_id,
                    std::string& key, KeyRecord& record);
// Marks KEY_ID revoked (the file is rewritten atomically). "" or why not.
std::string revoke_key(const std::string& path, const std::string& key_id);
std::string key_record_json(const KeyRecord& record);

struct Principal {
  std::string key_id;
  std::string partner_id;  // "" for the operator
  bool operator_key() const { return partner_id.empty(); }
};

// The valid keys of a keys file, reloaded when the file changes (poll() compares its stat).
// Thread-safe: authenticate() from any thread, poll() from one.
class KeyRing {
 public:
  // "" or why the file cannot be used (mode, syntax).
  std::string load(const std::string& path);
  // Re-reads the file when its modification time, size or inode changed. A file that became
  // unreadable or too open keeps nothing valid: failing closed.
  void poll();
  // The principal of an `Authorization: Bearer` key, compared in constant time; nullopt when
  // unknown or revoked.
  std::optional<Principal> authenticate(std::string_view key) const;

 private:
  struct Entry {
    Principal principal;
    std::string sha256;  // raw 32 bytes
  };
  using Table = std::vector<Entry>;
  std::string read_table(Table& table) const;
  std::string path_;
  struct stat last_ {};
  mutable std::mutex mutex_;
  std::shared_ptr<const Table> table_;
};

}  // namespace subledger::server
