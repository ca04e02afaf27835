#pragma once

// The gRPC xDS server: AggregatedDiscoveryService (SotW and Delta) and the per-type services
// (LDS, RDS, CDS, EDS; Stream* and Delta*), all served from one snapshot cache. Built on gRPC's
// callback API, so an open stream costs memory but no thread: ten thousand streams run on
// gRPC's small pool of threads.
//
// Threads: start() and shutdown() on the owner's thread; everything else runs on gRPC's
// threads and reaches shared state only through the (locked) SnapshotCache.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "control_plane_stub/grpc_server_shim.h"
#include "control_plane_stub/snapshot_cache.h"
#include "proxy/common/time.h"
#include "proxy/stats/stats.h"

namespace Proxy::ControlPlane {

// The gRPC methods served.
inline constexpr std::string_view kAdsSotwMethod =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
inline constexpr std::string_view kAdsDeltaMethod =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

class XdsServer {
 public:
  virtual ~XdsServer() = default;
  // The bound address, port 0 resolved: "127.0.0.1:18000".
  virtual const std::string& address() const = 0;
  virtual uint32_t port() const = 0;
  // Streams open now.
  virtual uint64_t activeStreams() const = 0;
  // Cancels every stream and stops serving; returns once every stream has finished (or after
  // a bounded wait). Idempotent; the destructor calls it.
  virtual void shutdown() = 0;
};

using XdsServerPtr = std::unique_ptr<XdsServer>;

// Binds `address` ("127.0.0.1:0" picks a port) and starts serving. `cache`, `time_source` and
// `stats` must outlive the server. Counters: control_plane.streams_total, .requests_total,
// .responses_total, .acks_total, .nacks_total, .stale_nonces_total, .unknown_types_total,
// .bad_requests_total; gauge control_plane.streams_active.
// Plaintext, or TLS (mTLS with tls->client_ca) when `tls` is set.
absl::StatusOr<XdsServerPtr> createXdsServer(const std::string& address, SnapshotCache& cache,
                                             TimeSource& time_source, Stats::Store& stats,
                                             const std::optional<ServerTls>& tls = std::nullopt);

}  // namespace Proxy::ControlPlane
