#pragma once

// JSON string literals (RFC 8259), for everything that writes JSON by hand: the admin
// endpoints, the YAML -> JSON loader, the control plane's status pages and test tools.

#include <string>
#include <string_view>

namespace Proxy::Json {

// Appends `s` as a JSON string literal, quotes included: '"' and '\' escaped, control
// characters as \n, \r, \t, \b, \f or \u00XX. Bytes >= 0x80 pass through as they are (a
// reader that needs UTF-8 checks it: protobuf's JSON parser does).
void appendString(std::string& out, std::string_view s);

// `s` as a JSON string literal, quotes included.
std::string quote(std::string_view s);

}  // namespace Proxy::Json
