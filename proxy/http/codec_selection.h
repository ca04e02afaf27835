#pragma once

// Which codec serves a connection. Downstream (Envoy's HttpConnectionManager codec_type and
// ConnectionManagerUtility::determineNextProtocol): the one place that decides, from the codec
// type, the ALPN a TLS handshake negotiated before any byte arrived, and the first bytes.
// Upstream, for an auto_config cluster: from the ALPN its handshake negotiated.

#include <algorithm>
#include <optional>
#include <string_view>

#include "proxy/buffer/buffer.h"
#include "proxy/http/http2/server_connection_impl.h"
#include "proxy/http/protocol.h"

namespace Proxy::Http {

enum class CodecType { Http1, Http2, Auto };

// The protocol for a connection whose first bytes are `data` and whose TLS handshake negotiated
// `alpn` (empty: none, or no TLS). Fixed for HTTP1/HTTP2, whatever ALPN said (as Envoy 1.40: a
// client that negotiated the other protocol fails on the codec's first bytes). For AUTO, ALPN
// decides when there is one ("h2": HTTP/2, anything else HTTP/1.1, as Envoy's
// determineNextProtocol); without ALPN, HTTP/2 when the data starts with the client connection
// preface ("PRI * HTTP/2.0...", prior knowledge), else HTTP/1.1. nullopt while the bytes so far
// are a proper prefix of the preface: wait for more before deciding.
inline std::optional<Protocol> chooseServerProtocol(CodecType type, std::string_view alpn,
                                                    const Buffer::Instance& data) {
  switch (type) {
    case CodecType::Http1:
      return Protocol::Http11;
    case CodecType::Http2:
      return Protocol::Http2;
    case CodecType::Auto:
      break;
  }
  if (!alpn.empty()) {
    return alpn == "h2" ? Protocol::Http2 : Protocol::Http11;
  }
  const std::string_view preface = Http2::kClientPreface;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(data.length(), preface.size()));
  char head[24];
  static_assert(sizeof(head) == Http2::kClientPreface.size());
  data.copyOut(0, n, head);
  if (std::string_view(head, n) != preface.substr(0, n)) {
    return Protocol::Http11;
  }
  if (n < preface.size()) {
    return std::nullopt;
  }
  return Protocol::Http2;
}

// The protocol of an upstream connection of an auto_config cluster (Envoy's mixed pool,
// HttpConnPoolImplMixed::onConnected) once its TLS handshake negotiated `alpn`: "h2" is HTTP/2;
// "http/1.1", anything else or no ALPN (an old TLS stack that cannot do HTTP/2 either) HTTP/1.1.
inline Protocol chooseClientProtocol(std::string_view alpn) {
  return alpn == "h2" ? Protocol::Http2 : Protocol::Http11;
}

}  // namespace Proxy::Http
