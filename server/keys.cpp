#include "server/keys.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "events/hash.h"
#include "ledger/command.h"

namespace subledger::server {

using Json = nlohmann::ordered_json;

namespace {

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string random_hex(size_t bytes, std::string& error) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    error = "the system's random generator failed (OpenSSL RAND_bytes)";
  return to_hex(raw);
}

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  if (hex.size() % 2) return "";
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return "";
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// Writes `text` to `path` through a 0600 temporary file renamed over it, so a reader (the server
// polling) sees the old file or the new one, never half of one.
std::string write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string e = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot write " + tmp + ": " + e;
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return "cannot write " + tmp + ": " + std::strerror(errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return "cannot replace " + path + ": " + std::strerror(errno);
  }
  return "";
}

std::string render(const std::vector<KeyRecord>& records) {
  std::string text;
  for (const auto& r : records) text += key_record_json(r) + "\n";
  return text;
}

}  // namespace

std::string key_record_json(const KeyRecord& r) {
  Json j;
  j["key_id"] = r.key_id;
  j["partner_id"] = r.partner_id ? Json(*r.partner_id) : Json(nullptr);
  j["sha256"] = r.sha256_hex;
  j["created"] = r.created;
  j["revoked"] = r.revoked.empty() ? Json(false) : Json(r.revoked);
  return j.dump();
}

std::string partner_id_error(const std::string& partner_id) {
  const std::string accepted = "a partner id is an id (" + id_grammar_text() +
                               ") without ':' (it separates a partner's scope from its ids); the "
                               "operator's key has partner_id null";
  if (partner_id.empty() || !id_error("partner_id", partner_id).empty() ||
      partner_id.find(':') != std::string::npos)
    return "partner_id '" + partner_id + "' is not accepted: " + accepted;
  return "";
}

std::string key_file_mode_error(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "cannot read " + path + ": " + std::strerror(errno);
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "the keys file " + path + " has mode " + mode +
           ": group or others may read or write it; run chmod 600 " + path;
  }
  return "";
}

std::string read_keys(const std::string& path, std::vector<KeyRecord>& out) {
  std::ifstream in(path);
  if (!in) return "cannot read " + path + ": " + std::strerror(errno);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (is_blank_line(line)) continue;
    std::string where = path + " line " + std::to_string(n) + ": ";
    try {
      Json j = Json::parse(line);
      KeyRecord r;
      r.key_id = j.at("key_id").get<std::string>();
      if (!j.at("partner_id").is_null()) {
        r.partner_id = j.at("partner_id").get<std::string>();
        // An empty or malformed partner id must never read as the operator, nor as a scope.
        if (std::string e = partner_id_error(*r.partner_id); !e.empty()) return where + e;
      }
      r.sha256_hex = j.at("sha256").get<std::string>();
      r.created = j.at("created").get<std::string>();
      const Json& revoked = j.at("revoked");
      if (revoked.is_string()) {
        r.revoked = revoked.get<std::string>();
      } else if (!revoked.is_boolean() || revoked.get<bool>()) {
        return where + "revoked must be false or the time of revocation";
      }
      if (from_hex(r.sha256_hex).size() != kSha256Bytes)
        return where + "sha256 must be 64 lowercase hex digits";
      out.push_back(std::move(r));
    } catch (const Json::exception& e) {
      return where + "not a key record (" + e.what() + ")";
    }
  }
  return "";
}

std::string add_key(const std::string& path, const std::optional<std::string>& partner_id,
                    std::string& key, KeyRecord& record) {
  if (partner_id)
    if (std::string e = partner_id_error(*partner_id); !e.empty()) return "--partner: " + e;
  std::vector<KeyRecord> records;
  if (::access(path.c_str(), F_OK) == 0) {
    if (std::string e = key_file_mode_error(path); !e.empty()) return e;
    if (std::string e = read_keys(path, records); !e.empty()) return e;
  }
  std::string error;
  std::string id = "k" + random_hex(8, error);
  std::string secret = random_hex(32, error);
  if (!error.empty()) return error;
  key = id + "." + secret;
  record = KeyRecord{id, partner_id, to_hex(sha256(key)), now_utc(), ""};
  records.push_back(record);
  return write_atomically(path, render(records));
}

std::string revoke_key(const std::string& path, const std::string& key_id) {
  if (std::string e = key_file_mode_error(path); !e.empty()) return e;
  std::vector<KeyRecord> records;
  if (std::string e = read_keys(path, records); !e.empty()) return e;
  for (auto& r : records) {
    if (r.key_id != key_id) continue;
    if (r.revoked.empty()) r.revoked = now_utc();
    return write_atomically(path, render(records));
  }
  return "no key '" + key_id + "' in " + path;
}

std::string KeyRing::read_table(Table& table) const {
  if (std::string e = key_file_mode_error(path_); !e.empty()) return e;
  std::vector<KeyRecord> records;
  if (std::string e = read_keys(path_, records); !e.empty()) return e;
  for (auto& r : records) {
    if (!r.revoked.empty()) continue;
    table.push_back(Entry{Principal{r.key_id, r.partner_id.value_or("")}, from_hex(r.sha256_hex)});
  }
  return "";
}

std::string KeyRing::load(const std::string& path) {
  path_ = path;
  ::stat(path.c_str(), &last_);
  auto table = std::make_shared<Table>();
  if (std::string e = read_table(*table); !e.empty()) return e;
  std::lock_guard lock(mutex_);
  table_ = std::move(table);
  return "";
}

void KeyRing::poll() {
  struct stat st {};
  bool gone = ::stat(path_.c_str(), &st) != 0;
  if (!gone && st.st_mtim.tv_sec == last_.st_mtim.tv_sec &&
      st.st_mtim.tv_nsec == last_.st_mtim.tv_nsec && st.st_size == last_.st_size &&
      st.st_ino == last_.st_ino && st.st_mode == last_.st_mode)
    return;
  last_ = st;
  auto table = std::make_shared<Table>();
  if (gone || !read_table(*table).empty()) table->clear();  // fail closed
  std::lock_guard lock(mutex_);
  table_ = std::move(table);
}

std::optional<Principal> KeyRing::authenticate(std::string_view key) const {
  size_t dot = key.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  std::string_view id = key.substr(0, dot);
  std::shared_ptr<const Table> table;
  {
    std::lock_guard lock(mutex_);
    table = table_;
  }
  if (!table) return std::nullopt;
  const std::string digest = sha256(key);
  for (const auto& entry : *table) {
    if (entry.principal.key_id != id) continue;  // the id is public; the secret is what counts
    if (entry.sha256.size() == digest.size() &&
        CRYPTO_memcmp(entry.sha256.data(), digest.data(), digest.size()) == 0)
      return entry.principal;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace subledger::server
