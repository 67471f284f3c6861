// Conversions between std::string and Cap'n Proto Text/Data, shared by the event codec and the
// projection-row codec (the only two places that touch generated Cap'n Proto types).
#pragma once

#include <capnp/blob.h>

#include <string>

namespace subledger::capnp_values {

inline capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}
inline std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
inline capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
inline std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

}  // namespace subledger::capnp_values
