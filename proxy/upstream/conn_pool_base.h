#pragma once

// What the cluster manager needs of one worker's connection pool to one host, whichever HTTP
// version the pool speaks upstream: the HTTP/1.1 pool (http_conn_pool_impl.*, one stream per
// connection) or the HTTP/2 pool (http2_conn_pool_impl.*, streams multiplexed). The cluster
// chooses which (ClusterInfo::upstreamHttpProtocol()). Dispatcher-thread only.

#include <functional>
#include <memory>

#include "proxy/event/dispatcher.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

class HttpConnPoolBase : public HttpConnPool, public Event::DeferredDeletable {
 public:
  // The host changed attributes (weight, health) but not its address: same connections.
  virtual void updateHost(HostConstSharedPtr host) = 0;
  virtual const HostConstSharedPtr& host() const = 0;
  // Stop taking part: drain, close every connection as soon as it has no stream, and call
  // `drained_cb` (once, possibly before this returns) when no connection and no queued request
  // remain. Nobody calls newStream() on a retired pool.
  virtual void retire(std::function<void()> drained_cb) = 0;
  virtual bool drained() const = 0;
};

using HttpConnPoolBasePtr = std::unique_ptr<HttpConnPoolBase>;

}  // namespace Proxy::Upstream
