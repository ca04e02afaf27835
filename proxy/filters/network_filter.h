#pragma once

// The terminal network filters a listener's filter chain can run (ARCHITECTURE.md, convention 3: we
// have two — the HTTP connection manager and tcp_proxy — so they are constructed directly).

#include <chrono>
#include <memory>

#include "proxy/network/connection.h"

namespace Proxy::Filters {

// One per downstream connection, owned next to it by the worker's connection handler.
// Dispatcher (worker) thread only.
class NetworkFilter : public Network::ReadFilter {
 public:
  // The listener is draining: finish what is in flight, then close (HTTP: "connection: close"
  // on the next response and close when idle; TCP: nothing until the drain deadline). With a
  // non-zero `spread` the connection starts draining at a random moment within it, so that
  // thousands of clients do not all reconnect at once.
  virtual void startDrain(std::chrono::milliseconds spread) = 0;
};

using NetworkFilterPtr = std::unique_ptr<NetworkFilter>;

}  // namespace Proxy::Filters
