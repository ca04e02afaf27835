#pragma once

// A non-blocking TCP connection owned by one dispatcher: bytes in through a read buffer handed
// to a single ReadFilter, bytes out through a write buffer flushed with writev. Watermarks on
// the write buffer tell the producer to stop (backpressure); readDisable() stops reading.
// Every method is dispatcher-thread only.

#include <cstdint>
#include <memory>
#include <string_view>

#include "proxy/buffer/buffer.h"
#include "proxy/event/dispatcher.h"
#include "proxy/network/address.h"

namespace Proxy::Network {

enum class ConnectionEvent {
  RemoteClose,  // the peer closed or reset, or an I/O error occurred
  LocalClose,   // close() was called on this side
  Connected,    // an outgoing connect() completed
};

enum class ConnectionCloseType {
  FlushWrite,  // send what is buffered, then close
  NoFlush,     // close now, dropping buffered bytes
};

class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  virtual void onEvent(ConnectionEvent event) = 0;
  // The write buffer crossed the high watermark: stop producing until the low one.
  virtual void onAboveWriteBufferHighWatermark() {}
  virtual void onBelowWriteBufferLowWatermark() {}
};

// The one consumer of a connection's bytes (the HTTP connection manager, tcp_proxy, an
// upstream codec). onData() drains what it consumed; bytes it leaves stay in the buffer and
// are offered again with the next read, or when reading is re-enabled.
class ReadFilter {
 public:
  virtual ~ReadFilter() = default;
  virtual void onData(Buffer::Instance& data, bool end_stream) = 0;
};

class Connection : public Event::DeferredDeletable {
 public:
  enum class State { Open, Closing, Closed };

  virtual void addConnectionCallbacks(ConnectionCallbacks& callbacks) = 0;
  virtual void removeConnectionCallbacks(ConnectionCallbacks& callbacks) = 0;
  virtual void setReadFilter(ReadFilter* filter) = 0;

  // FlushWrite with a non-empty write buffer moves to Closing until the buffer drains (or
  // fails); callbacks get LocalClose when the socket is finally closed. Idempotent.
  virtual void close(ConnectionCloseType type) = 0;
  virtual State state() const = 0;

  // Counted: each readDisable(true) needs a matching readDisable(false).
  virtual void readDisable(bool disable) = 0;
  virtual bool readEnabled() const = 0;

  // Move `data` into the write buffer (data ends up empty); end_stream half-closes (shutdown
  // SHUT_WR) after the buffer is flushed, when half-close is enabled.
  virtual void write(Buffer::Instance& data, bool end_stream) = 0;
  // High watermark of the write buffer (low = half) and the most bytes read per event.
  virtual void setBufferLimits(uint32_t limit) = 0;
  virtual uint32_t bufferLimit() const = 0;
  virtual bool aboveHighWatermark() const = 0;
  // With half-close enabled, a peer FIN is delivered as onData(end_stream=true) and the
  // connection stays open for writing; otherwise a FIN closes the connection.
  virtual void enableHalfClose(bool enabled) = 0;
  virtual void noDelay(bool enable) = 0;

  virtual uint64_t id() const = 0;
  virtual Event::Dispatcher& dispatcher() = 0;
  virtual const Address& remoteAddress() const = 0;
  virtual const Address& localAddress() const = 0;
  virtual uint64_t bytesReceived() const = 0;
  virtual uint64_t bytesSent() const = 0;
  // The application protocol the transport negotiated (TLS ALPN: "h2", "http/1.1"), empty
  // when none was (plaintext, or no ALPN): what chooses the HTTP codec.
  virtual std::string_view nextProtocol() const { return {}; }
  // True when the transport is TLS (Envoy's Connection::ssl() != nullptr).
  virtual bool secure() const { return false; }
  // Why the transport failed (a TLS handshake error), empty otherwise.
  virtual std::string_view transportFailureReason() const { return {}; }
};

// An outgoing connection: connect() starts a non-blocking connect; Connected or RemoteClose
// follows. The connect timeout belongs to the caller (a Timer). Virtual base, so that
// ClientConnectionImpl can reuse ConnectionImpl's implementation of Connection.
class ClientConnection : public virtual Connection {
 public:
  virtual void connect() = 0;
};

using ConnectionPtr = std::unique_ptr<Connection>;
using ClientConnectionPtr = std::unique_ptr<ClientConnection>;

}  // namespace Proxy::Network
