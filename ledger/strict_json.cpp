#include "ledger/strict_json.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace subledger {
namespace {

// The offset of the first byte that does not belong to a well-formed UTF-8 sequence (overlongs,
// surrogates and code points past U+10FFFF included), or npos.
size_t invalid_utf8_at(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > text.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += len;
  }
  return std::string_view::npos;
}

// The offset where arrays and objects nest deeper than kJsonNestingMax (outside strings), or
// npos. Checked before parsing: a parsed value that nests deeply is destroyed recursively.
size_t too_deep_at(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > kJsonNestingMax) return i;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

// Thrown from the parser callback: the first key an object repeats.
struct DuplicateKey {
  std::string key;
};

// nlohmann's what(): "[json.exception.parse_error.101] parse error at line 1, column 7: <why>"
// or "[json.exception.out_of_range.406] number overflow parsing '1e999'": the part after the tag.
std::string reason_of(const std::string& what) {
  size_t tag_end = what.find("] ");
  std::string reason = tag_end == std::string::npos ? what : what.substr(tag_end + 2);
  if (size_t column = reason.find("column"); column != std::string::npos)
    if (size_t why = reason.find(": ", column); why != std::string::npos)
      reason = reason.substr(why + 2);
  return reason;
}

}  // namespace

template <class Json>
std::optional<Json> parse_json_strictly(std::string_view text, std::string& error) {
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    error = "a NUL byte at column " + std::to_string(nul + 1) +
            "; the text must be one JSON object and nothing else";
    return std::nullopt;
  }
  if (size_t bad = invalid_utf8_at(text); bad != std::string_view::npos) {
    error = "a byte that is not UTF-8 at column " + std::to_string(bad + 1) +
            "; the text must be UTF-8";
    return std::nullopt;
  }
  if (size_t deep = too_deep_at(text); deep != std::string_view::npos) {
    error = "nesting deeper than " + std::to_string(kJsonNestingMax) + " levels at column " +
            std::to_string(deep + 1) + "; commands and request bodies are flat objects";
    return std::nullopt;
  }
  std::vector<std::vector<std::string>> keys;  // per open object, the keys seen so far
  auto callback = [&keys](int /*depth*/, typename Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end) keys.pop_back();
    if (event == Json::parse_event_t::key) {
      const auto& key = parsed.template get_ref<const std::string&>();
      if (std::find(keys.back().begin(), keys.back().end(), key) != keys.back().end())
        throw DuplicateKey{key};
      keys.back().push_back(key);
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback);
  } catch (const DuplicateKey& d) {
    error = "the key " + Json(d.key).dump(-1, ' ', false, Json::error_handler_t::replace) +
            " appears twice; each field may be given once";
  } catch (const typename Json::parse_error& e) {
    error = "not valid JSON at column " + std::to_string(e.byte) + ": " + reason_of(e.what()) +
            "; the text must be one JSON object";
  } catch (const typename Json::exception& e) {
    // out_of_range.406: a number beyond a double's range ("1e999"); the parser says no column.
    error = "not valid JSON: " + reason_of(e.what()) +
            "; numbers must be within the range of their field";
  }
  return std::nullopt;
}

template std::optional<nlohmann::json> parse_json_strictly<nlohmann::json>(std::string_view,
                                                                            std::string&);
template std::optional<nlohmann::ordered_json> parse_json_strictly<nlohmann::ordered_json>(
    std::string_view, std::string&);

}  // namespace subledger
