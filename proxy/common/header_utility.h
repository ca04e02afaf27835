#pragma once

// What makes an HTTP header name or value valid, for the codecs (on the wire) and for config
// validation (header names and values in route configurations). Inline: the codecs check every
// header byte.

#include <array>
#include <cstdint>
#include <string_view>

namespace Proxy::HeaderUtility {

// RFC 9110 5.6.2 token characters (tchar): what a header name is made of.
constexpr bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

namespace Detail {
constexpr std::array<char, 256> makeLowerTokenTable() {
  std::array<char, 256> table{};
  for (int i = 0; i < 256; i++) {
    const char c = static_cast<char>(i);
    if (isTokenChar(c)) {
      table[static_cast<size_t>(i)] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  return table;
}
inline constexpr std::array<char, 256> kLowerTokenTable = makeLowerTokenTable();
}  // namespace Detail

// The lower-case form of a token character, or '\0' for a byte that is not one: the HTTP/1
// codec checks and lower-cases every header name byte with one table load.
constexpr char lowerTokenChar(char c) {
  return Detail::kLowerTokenTable[static_cast<uint8_t>(c)];
}

// A header name: one or more token characters. With `allow_pseudo`, an HTTP/2 pseudo-header
// (":path") is a name too.
constexpr bool isValidHeaderName(std::string_view name, bool allow_pseudo = false) {
  if (allow_pseudo && !name.empty() && name.front() == ':') {
    name.remove_prefix(1);
  }
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (!isTokenChar(c)) {
      return false;
    }
  }
  return true;
}

// A value must not smuggle a second header or line into a request: no NUL, CR or LF (what
// Envoy's header validation rejects).
constexpr bool isValidHeaderValue(std::string_view value) {
  for (char c : value) {
    if (c == '\0' || c == '\r' || c == '\n') {
      return false;
    }
  }
  return true;
}

}  // namespace Proxy::HeaderUtility
