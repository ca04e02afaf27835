#pragma once

// envoy.filters.network.http_connection_manager with its one HTTP filter, the router: parses
// HTTP/1.1 or HTTP/2 requests from a downstream connection (codec_type, or the connection preface
// for AUTO: Http::chooseServerProtocol), picks a route, and proxies each request to
// a host of the route's cluster over the worker's connection pool, streaming bodies both ways
// with backpressure. Its config (HcmConfig, shared read-only by every connection on every
// worker) is built in http_connection_manager_config.h. The implementation is split by what
// Envoy keeps per connection and per stream: http_connection_manager_impl.h says which file has
// which part.

#include <cstdint>

#include "proxy/filters/http_connection_manager_config.h"
#include "proxy/filters/network_filter.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Filters {

// Per-worker context the connection manager needs besides its config.
struct HcmContext {
  Upstream::ClusterManager& cluster_manager;
  uint32_t per_connection_buffer_limit = 1024 * 1024;
};

// Creates the filter for one accepted connection (worker thread).
NetworkFilterPtr createHttpConnectionManager(HcmConfigConstSharedPtr config, HcmContext context,
                                             Network::Connection& connection);

}  // namespace Proxy::Filters
