#pragma once

// The transport under a Network::Connection (Envoy's Network::TransportSocket): the raw socket
// (RawBufferSocket, the connection's bytes as they are on the wire) or TLS (proxy/tls/). The
// connection owns the fd, the buffers, the file event and the watermarks; the transport socket
// only moves bytes between the fd and the buffers, and tells the connection when it needs a
// read or write pass it would not otherwise get (a TLS handshake that finished, plaintext that
// OpenSSL holds). Dispatcher-thread only, like the connection that owns it.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/buffer/buffer.h"
#include "proxy/network/connection.h"
#include "proxy/network/io_handle.h"

namespace Proxy::Network {

enum class PostIoAction {
  KeepOpen,
  Close,  // a fatal error (I/O error, failed handshake): the connection closes the socket
};

struct TransportIoResult {
  PostIoAction action = PostIoAction::KeepOpen;
  // Bytes moved between the socket and the buffer (plaintext bytes for TLS).
  uint64_t bytes_processed = 0;
  // doRead only: the peer finished sending (EOF, or a TLS close_notify).
  bool end_stream_read = false;
};

// What the connection offers its transport socket.
class TransportSocketCallbacks {
 public:
  virtual ~TransportSocketCallbacks() = default;
  virtual IoHandle& ioHandle() = 0;
  virtual Connection& connection() = 0;
  // Raise an event to the connection's callbacks (Connected once a handshake completes).
  virtual void raiseEvent(ConnectionEvent event) = 0;
  // Schedule a write pass even though no Write edge came (the handshake finished and buffered
  // bytes may now go out).
  virtual void flushWriteBuffer() = 0;
  // Schedule a read pass: the transport holds bytes the kernel will not signal again.
  virtual void setTransportSocketIsReadable() = 0;
  // Whether a read that returned fewer bytes than it asked for may end the read pass: the
  // connection reads level-triggered, so whatever is still unread (more bytes, a FIN, a reset
  // queued behind the bytes) wakes the loop again, and a further read only to learn EAGAIN is
  // a wasted syscall. False (edge-triggered: nothing would report it again) makes the
  // transport read until the socket would block.
  virtual bool shortReadDrainsSocket() const = 0;
};

class TransportSocket {
 public:
  virtual ~TransportSocket() = default;
  // Called once, by the connection's constructor.
  virtual void setTransportSocketCallbacks(TransportSocketCallbacks& callbacks) = 0;

  // Read into `buffer` until the socket would block (or, when the callbacks'
  // shortReadDrainsSocket() allows, until a read returns less than it asked for), the peer
  // finished, an error occurs, or `buffer` holds `max_buffer_length` bytes (0 = no limit).
  virtual TransportIoResult doRead(Buffer::Instance& buffer, uint64_t max_buffer_length) = 0;
  // Write (and drain) as much of `buffer` as the socket takes. Bytes left in `buffer` with
  // KeepOpen mean "wait for the next Write edge (or flushWriteBuffer())".
  virtual TransportIoResult doWrite(Buffer::Instance& buffer) = 0;
  // True while the transport has work of its own to do on a Write edge with nothing buffered
  // (a TLS handshake in progress); the raw socket never has.
  virtual bool wantsWriteEvents() const = 0;
  // An outgoing connect() completed. The raw socket raises Connected at once; TLS starts its
  // handshake and raises Connected when it completes.
  virtual void onConnected() = 0;
  // The connection is about to close the fd (a TLS close_notify goes out here).
  virtual void closeSocket(ConnectionEvent event) = 0;

  // The negotiated application protocol (ALPN), empty when none.
  virtual std::string_view protocol() const = 0;
  // True for TLS (Envoy's ssl() != nullptr): the scheme its requests arrive with is https.
  virtual bool secure() const = 0;
  // Why the transport failed (a TLS handshake error), empty when it did not.
  virtual std::string_view failureReason() const = 0;
};

using TransportSocketPtr = std::unique_ptr<TransportSocket>;

}  // namespace Proxy::Network
