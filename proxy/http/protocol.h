#pragma once

// The HTTP version a stream or connection speaks (Envoy's envoy/http/protocol.h), for stats, the
// access log's %PROTOCOL% and codec choices. Header-only: StreamInfo carries it without linking
// the HTTP library.

#include <cstdint>
#include <string_view>

namespace Proxy::Http {

enum class Protocol : uint8_t { Http10, Http11, Http2 };

// As Envoy prints it (%PROTOCOL%, Utility::getProtocolString).
inline std::string_view protocolString(Protocol protocol) {
  switch (protocol) {
    case Protocol::Http10:
      return "HTTP/1.0";
    case Protocol::Http11:
      return "HTTP/1.1";
    case Protocol::Http2:
      return "HTTP/2";
  }
  return "-";
}

}  // namespace Proxy::Http
