// The OpenAPI 3.1 description of SERVER.md's API (server/openapi.json), compiled into the binary
// and served at GET /openapi.json. The server tests check every response against it.
#pragma once

#include <string_view>

namespace subledger::server {

std::string_view openapi_document();

}  // namespace subledger::server
