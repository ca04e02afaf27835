#pragma once

// The TLS transport socket (envoy.transport_sockets.tls): OpenSSL's SSL over the connection's
// fd. The handshake is driven from both the read and the write pass (whichever edge comes);
// once it completes Connected is raised and buffered writes are flushed. A failed handshake
// closes the connection (never a plaintext fallback) and is counted in ssl.connection_error.
// Dispatcher-thread only, as the connection that owns it.

#include <openssl/ssl.h>

#include <string>

#include "proxy/network/transport_socket.h"
#include "proxy/tls/context_impl.h"

namespace Proxy::Tls {

class SslSocket : public Network::TransportSocket {
 public:
  // `alpn_fallback`: a client's protocols to offer when the context configures none ("h2" from
  // an HTTP/2 pool, "h2,http/1.1" from an auto_config one: comma-separated, preferred first). A
  // null `context` (its secrets not there yet) fails the connection at its first I/O.
  explicit SslSocket(ContextConstSharedPtr context, std::string_view alpn_fallback = {});
  ~SslSocket() override;

  // Network::TransportSocket
  void setTransportSocketCallbacks(Network::TransportSocketCallbacks& callbacks) override;
  Network::TransportIoResult doRead(Buffer::Instance& buffer, uint64_t max_buffer_length) override;
  Network::TransportIoResult doWrite(Buffer::Instance& buffer) override;
  // The client's handshake starts on the write pass after connect(); after that a handshake
  // waits for a Write event only when OpenSSL could not write (WANT_WRITE), so the connection
  // reads level-triggered while the peer's handshake messages are awaited.
  bool wantsWriteEvents() const override {
    return state_ == State::Handshaking && handshake_wants_write_;
  }
  void onConnected() override;
  void closeSocket(Network::ConnectionEvent event) override;
  std::string_view protocol() const override;
  bool secure() const override { return true; }
  std::string_view failureReason() const override { return failure_reason_; }

 private:
  enum class State { Handshaking, Connected, Failed, ShutdownSent };
  // Advance the handshake; KeepOpen with state_ still Handshaking means "wait for I/O".
  Network::PostIoAction doHandshake();
  // Record why the connection failed (OpenSSL's error queue and the verify result).
  void fail(const char* where, int ssl_error);

  ContextConstSharedPtr context_;
  std::string alpn_fallback_;
  SSL* ssl_ = nullptr;
  Network::TransportSocketCallbacks* callbacks_ = nullptr;
  State state_ = State::Handshaking;
  // The handshake must be advanced from a write pass: not started yet on a client, or the last
  // step returned SSL_ERROR_WANT_WRITE.
  bool handshake_wants_write_ = false;
  // SSL_write that would block must be retried with the same length.
  uint64_t bytes_to_retry_ = 0;
  std::string failure_reason_;
};

}  // namespace Proxy::Tls
