#pragma once

// The ClientHello inspection of the envoy.filters.listener.tls_inspector listener filter: given
// the first bytes a client sent (peeked, not consumed), tell whether they are a TLS ClientHello
// and which server name (SNI) it asks for. OpenSSL parses the ClientHello (a throwaway SSL over
// a memory BIO whose client hello callback records what it saw and stops the handshake there),
// so no TLS record or handshake parsing is written by hand. Thread-safe (no shared mutable
// state beyond OpenSSL's own).

#include <cstddef>
#include <cstdint>
#include <string>

namespace Proxy::Tls {

// Envoy's tls_inspector gives up on a ClientHello larger than this.
inline constexpr size_t kMaxClientHelloSize = 16 * 1024;

struct ClientHelloInfo {
  enum class Result {
    NeedMoreData,  // a TLS record has begun but the ClientHello is not complete yet
    Tls,           // a ClientHello: transport protocol "tls"
    NotTls,        // anything else: transport protocol "raw_buffer"
  };
  Result result = Result::NeedMoreData;
  std::string server_name;  // SNI, empty when the client sent none
};

ClientHelloInfo inspectClientHello(const uint8_t* data, size_t length);

}  // namespace Proxy::Tls
