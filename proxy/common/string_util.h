#pragma once

// String helpers the whole project shares, over std::string_view (C++17 has no starts_with,
// and Debian's absl::string_view is not std::string_view, so absl's versions would need a
// conversion at every call). ASCII only: bytes >= 0x80 are compared as they are, as HTTP and
// Envoy do. Inline: the route table and the codecs call them per request.

#include <string>
#include <string_view>

namespace Proxy::StringUtil {

constexpr char toLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = toLower(c);
  }
  return out;
}

inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); i++) {
    if (toLower(a[i]) != toLower(b[i])) {
      return false;
    }
  }
  return true;
}

// `lower_needle` is already lower-case.
inline bool containsIgnoreCase(std::string_view haystack, std::string_view lower_needle) {
  if (lower_needle.size() > haystack.size()) {
    return false;
  }
  for (size_t i = 0; i + lower_needle.size() <= haystack.size(); i++) {
    if (equalsIgnoreCase(haystack.substr(i, lower_needle.size()), lower_needle)) {
      return true;
    }
  }
  return false;
}

inline bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

inline bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace Proxy::StringUtil
