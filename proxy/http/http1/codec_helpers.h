#pragma once

// Small helpers the HTTP/1 connection base and the server and client codecs share
// (proxy/http/http1 only; not an API).

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http/header_map.h"

namespace Proxy::Http::Http1Helpers {

inline constexpr std::string_view kCrlf = "\r\n";

// Most messages carry fewer headers than this; one allocation covers them.
inline constexpr size_t kReservedHeaders = 16;

// Details for the errors llhttp finds itself (anything not from the codec's own checks).
inline constexpr std::string_view kCodecError = "http1.codec_error";

// Connection-scoped headers the codec owns: it writes its own framing and Connection header.
inline bool isHopByHop(std::string_view name) {
  return name == Headers::Connection || name == Headers::KeepAlive ||
         name == Headers::ProxyConnection || name == Headers::TransferEncoding ||
         name == Headers::Upgrade;
}

inline void appendNumber(std::string& out, uint64_t value, int base) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), value, base);
  out.append(digits, static_cast<size_t>(result.ptr - digits));
}

}  // namespace Proxy::Http::Http1Helpers
