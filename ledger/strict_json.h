// Strict JSON: the one reader of untrusted JSON text (`apply` lines, server request bodies).
//
// nlohmann's parser is permissive where a ledger must not be: it keeps the last of two equal keys,
// stops at a NUL byte, accepts bytes that are not UTF-8 (and later throws while printing them),
// nests without bound (and destroys deep values recursively), and throws a different exception
// for a number too large for a double. parse_json_strictly() rejects all of these with a message
// that says what was wrong and at which column, and never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace subledger {

// Arrays and objects may nest this deep: a command or a body is an object holding at most a list
// or an object.
inline constexpr int kJsonNestingMax = 8;

// Exactly one JSON value: no NUL byte, valid UTF-8, nesting of at most kJsonNestingMax, no key
// twice in one object, every number representable. On failure returns nullopt and sets `error`
// to what was wrong, where ("at column N", 1-based) and what is accepted.
// Instantiated for nlohmann::json and nlohmann::ordered_json.
template <class Json>
std::optional<Json> parse_json_strictly(std::string_view text, std::string& error);

}  // namespace subledger
