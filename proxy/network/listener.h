#pragma once

// Accepting connections on a worker: a Listener watches one ListenSocket on its dispatcher and
// hands every accepted socket to its TcpListenerCallbacks (the worker's connection handler).
// Dispatcher-thread only.

#include <memory>

#include "proxy/network/address.h"
#include "proxy/network/io_handle.h"

namespace Proxy::Network {

class TcpListenerCallbacks {
 public:
  virtual ~TcpListenerCallbacks() = default;
  // A new non-blocking, close-on-exec socket; the callee owns it. `local` is the address the
  // peer connected to (resolved per connection for wildcard listeners). The callee may
  // disable() the listener but must not destroy it here (the accept loop is on the stack).
  virtual void onAccept(IoHandle socket, const Address& remote, const Address& local) = 0;
};

class Listener {
 public:
  virtual ~Listener() = default;
  // Start / stop accepting without closing the socket (used while a listener drains: the
  // kernel keeps queueing connections for other workers' or the next listener's sockets).
  virtual void enable() = 0;
  virtual void disable() = 0;
};

using ListenerPtr = std::unique_ptr<Listener>;

}  // namespace Proxy::Network
