# Writes OUTPUT, a C++ source defining subledger::server::openapi_document() as the bytes of
# INPUT (server/openapi.json): the document is compiled into the binary, so the server needs no
# file at run time. Run at build time: cmake -DINPUT=... -DOUTPUT=... -P embed_openapi.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR size "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(REGEX REPLACE "(('\\\\x[0-9a-f][0-9a-f]',){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
"// Generated from server/openapi.json by server/embed_openapi.cmake; do not edit.
#include \"server/openapi.h\"

namespace subledger::server {
namespace {
constexpr char kDocument[${size}] = {
    ${bytes}};
}  // namespace

std::string_view openapi_document() { return {kDocument, sizeof kDocument}; }

}  // namespace subledger::server
")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
