#pragma once

// Clusters, hosts and load balancing. The main thread owns clusters and builds immutable host
// snapshots; each worker holds, per cluster, its own load balancer and connection pools, fed
// by those snapshots through a thread-local slot (ARCHITECTURE.md "Threads"). Nothing here takes a
// lock on the request path.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/http/codec.h"
#include "proxy/http/http2/client_connection_impl.h"
#include "proxy/network/address.h"
#include "proxy/network/connection.h"
#include "proxy/network/transport_socket.h"
#include "proxy/stats/stats.h"

namespace Proxy::Upstream {

// A host's health as EDS gave it (LbEndpoint.health_status).
enum class HealthStatus { Healthy, Unhealthy, Draining, Degraded, Unknown };

// Health flags set on the main thread by active health checking and outlier detection (Envoy's
// Host::HealthFlag bits that are not EDS's). EDS's own flags (/failed_eds_health, ...) come from
// Host::health().
enum class HealthFlag : uint32_t {
  FailedActiveHc = 0x1,      // /failed_active_hc
  FailedOutlierCheck = 0x2,  // /failed_outlier_check
  PendingActiveHc = 0x4,     // /pending_active_hc: no check has completed yet
  ActiveHcTimeout = 0x8,     // /active_hc_timeout: failed, and the last check timed out
};

namespace Outlier {
class DetectorHostMonitor;
}

// What can change about a host without changing the host: its active health check and outlier
// state. Shared by every Host object of one endpoint in one cluster version (as HostStats are),
// written on the main thread only, read anywhere (atomics). The load balancer never reads it: it
// reads the lists of the snapshot the main thread built from it, so a flag takes effect on a
// worker when the next snapshot arrives.
struct HostHealthState {
  bool get(HealthFlag flag) const {
    return (flags.load(std::memory_order_relaxed) & static_cast<uint32_t>(flag)) != 0;
  }
  void set(HealthFlag flag) { flags.fetch_or(static_cast<uint32_t>(flag)); }
  void clear(HealthFlag flag) { flags.fetch_and(~static_cast<uint32_t>(flag)); }

  std::atomic<uint32_t> flags{0};
  // Outlier detection's monitor of this host (null: the cluster has none). Set on the main
  // thread before the host is first published to workers, never changed afterwards.
  std::shared_ptr<Outlier::DetectorHostMonitor> outlier_monitor;
};

// Per-host counters shared by every worker (atomics; Envoy's host stats).
struct HostStats {
  std::atomic<uint64_t> rq_total{0};
  std::atomic<uint64_t> rq_error{0};
  std::atomic<uint64_t> rq_success{0};
  std::atomic<uint64_t> rq_timeout{0};
  std::atomic<int64_t> rq_active{0};
  std::atomic<uint64_t> cx_total{0};
  std::atomic<uint64_t> cx_connect_fail{0};
  std::atomic<int64_t> cx_active{0};
};

// An endpoint's LocalityLbEndpoints as its host keeps it (Host::locality(), localityWeight()),
// with its cluster's name (Host::clusterName()): one object shared by the hosts of one
// LocalityLbEndpoints, so a host holds one pointer for both (config memory, issue 14).
struct HostLocality {
  std::string key;      // region, zone, sub_zone joined by NULs; empty parts for none
  uint32_t weight = 0;  // load_balancing_weight; 0 when unset
  std::shared_ptr<const std::string> cluster_name;  // shared by every host of the cluster
  // The endpoint's attributes: the cluster name is not one.
  bool operator==(const HostLocality& other) const {
    return key == other.key && weight == other.weight;
  }
};

// One endpoint. Immutable after creation except for stats; shared across workers and across
// host-set snapshots, so an endpoint that stays in an update keeps its identity (and the
// workers keep their pooled connections to it). A concrete class without virtual functions:
// HostImpl (host_impl.h) is its only kind and only constructs it, so a host is 104 bytes with
// no vtable pointer (120 with make_shared's control block: one 128-byte malloc chunk instead
// of 144; config memory, issue 14) and the load balancers' reads are not virtual calls.
class Host {
 public:
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const Network::Address& address() const { return address_; }
  const std::string& hostname() const;
  const std::string& clusterName() const { return *locality_->cluster_name; }
  uint32_t weight() const { return weight_; }
  uint32_t priority() const { return priority_; }
  HealthStatus health() const { return health_; }  // from EDS
  // The endpoint's LocalityLbEndpoints: its locality (region, zone, sub_zone joined by NULs, so
  // that keys sort as Envoy orders localities) and load_balancing_weight (0 when unset), for
  // locality-weighted balancing.
  const std::string& locality() const { return locality_->key; }
  uint32_t localityWeight() const { return locality_->weight; }
  const HostLocality& hostLocality() const { return *locality_; }
  HostStats& stats() const { return *stats_; }
  HostHealthState& healthState() const { return *health_state_; }

  const std::shared_ptr<HostStats>& sharedStats() const { return stats_; }
  const std::shared_ptr<HostHealthState>& sharedHealthState() const { return health_state_; }
  const std::shared_ptr<const HostLocality>& sharedLocality() const { return locality_; }

 protected:
  // host_impl.cc. Null `stats` / `health_state`: new ones (see HostImpl).
  Host(Network::Address address, std::string hostname, uint32_t weight, uint32_t priority,
       HealthStatus health, std::shared_ptr<HostStats> stats,
       std::shared_ptr<HostHealthState> health_state, std::shared_ptr<const HostLocality> locality);
  // Not virtual: a host is owned through a shared_ptr made for its HostImpl.
  ~Host() = default;

 private:
  const Network::Address address_;
  const uint32_t weight_;
  const uint32_t priority_;
  const HealthStatus health_;
  const std::unique_ptr<const std::string> hostname_;  // null when empty (most endpoints)
  const std::shared_ptr<const HostLocality> locality_;
  std::shared_ptr<HostStats> stats_;               // set once, in the constructor
  std::shared_ptr<HostHealthState> health_state_;  // set once, in the constructor
};

using HostConstSharedPtr = std::shared_ptr<const Host>;
using HostVector = std::vector<HostConstSharedPtr>;

// An immutable list of hosts that snapshots and lists holding the same hosts share: a cluster
// of one priority with every host healthy has one list behind HostSet::hosts and its
// priority's `hosts` and `healthy`, not three copies (config memory: 32 B per endpoint, and
// no reference count touched three times per host per update; issue 14). Reads as a
// `const HostVector&`.
class HostList {
 public:
  HostList() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): a built vector becomes the list.
  HostList(HostVector hosts)
      : hosts_(hosts.empty() ? nullptr : std::make_shared<const HostVector>(std::move(hosts))) {}

  const HostVector& vector() const { return hosts_ != nullptr ? *hosts_ : none(); }
  // NOLINTNEXTLINE(google-explicit-constructor)
  operator const HostVector&() const { return vector(); }
  HostVector::const_iterator begin() const { return vector().begin(); }
  HostVector::const_iterator end() const { return vector().end(); }
  size_t size() const { return hosts_ != nullptr ? hosts_->size() : 0; }
  bool empty() const { return size() == 0; }
  const HostConstSharedPtr& operator[](size_t i) const { return (*hosts_)[i]; }
  // Whether both are the same list object (then equal without comparing hosts).
  bool sharedWith(const HostList& other) const { return hosts_ == other.hosts_; }
  bool operator==(const HostList& other) const {
    return sharedWith(other) || vector() == other.vector();
  }
  bool operator!=(const HostList& other) const { return !(*this == other); }

 private:
  static const HostVector& none() {
    static const HostVector none;
    return none;
  }
  std::shared_ptr<const HostVector> hosts_;
};

// The hosts of one priority and the share of requests they get (Envoy's priority load,
// computed on the main thread: see computeHostSet() in host_impl.h).
struct PriorityHosts {
  HostList hosts;              // every host of this priority but EDS DRAINING ones (excluded)
  HostList healthy;            // not failed by EDS, active health checks or outlier detection
  HostList degraded;           // EDS DEGRADED
  bool panic = false;          // too few healthy hosts: balance across `hosts`
  uint32_t healthy_load = 0;   // percent of requests for `healthy` (or `hosts` in panic)
  uint32_t degraded_load = 0;  // percent of requests for `degraded`

  // With locality_weighted_lb_config only: the priority's localities in Envoy's order (sorted),
  // each with its healthy and degraded hosts and their effective weights (locality_wrr.h).
  // A list (healthy or degraded) chosen for a request is narrowed to one locality, picked by
  // weight; a priority in panic balances over all its hosts, as Envoy.
  struct Locality {
    HostVector healthy;
    HostVector degraded;
    double healthy_weight = 0;
    double degraded_weight = 0;
    bool operator==(const Locality& other) const {
      return healthy == other.healthy && degraded == other.degraded &&
             healthy_weight == other.healthy_weight && degraded_weight == other.degraded_weight;
    }
  };
  std::vector<Locality> localities;

  bool operator==(const PriorityHosts& other) const {
    return hosts == other.hosts && healthy == other.healthy && degraded == other.degraded &&
           panic == other.panic && healthy_load == other.healthy_load &&
           degraded_load == other.degraded_load && localities == other.localities;
  }
};

// A consistent-hashing structure over one list of hosts (a RING_HASH ring, a MAGLEV table),
// immutable once built: built on the main thread, read by every worker.
class HashingLoadBalancer {
 public:
  virtual ~HashingLoadBalancer() = default;
  // The host for `hash`; `attempt` > 0 asks for another one (retry host predicates), as
  // Envoy's chooseHost(hash, attempt). Null when the structure has no host.
  virtual HostConstSharedPtr chooseHost(uint64_t hash, uint32_t attempt) const = 0;
};
using HashingLoadBalancerConstSharedPtr = std::shared_ptr<const HashingLoadBalancer>;

// An immutable snapshot of a cluster's hosts.
struct HostSet {
  HostList hosts;                         // every host, all priorities
  size_t healthy_host_count = 0;          // healthy hosts, all priorities (membership_healthy)
  std::vector<PriorityHosts> priorities;  // index = priority; loads sum to 100
  // RING_HASH / MAGLEV clusters: per priority, the ring or table over its healthy hosts (all
  // its hosts in panic), built once per snapshot by the cluster manager on the main thread
  // (thread_aware_lb_impl.h). Every worker's balancer reads the same one: no rebuild per
  // worker, no lock. Empty for the other policies.
  std::vector<HashingLoadBalancerConstSharedPtr> hashing;
};
using HostSetConstSharedPtr = std::shared_ptr<const HostSet>;

enum class LbPolicy { RoundRobin, LeastRequest, Random, RingHash, Maglev };

// RING_HASH and MAGLEV settings (Cluster.ring_hash_lb_config, maglev_lb_config), Envoy's
// defaults.
struct HashLbConfig {
  enum class HashFunction { XxHash, MurmurHash2 };
  uint64_t min_ring_size = 1024;
  uint64_t max_ring_size = 8 * 1024 * 1024;
  HashFunction hash_function = HashFunction::XxHash;
  uint64_t maglev_table_size = 65537;
};

// The HTTP version a cluster speaks upstream (HttpProtocolOptions' explicit_http_config, or the
// deprecated Cluster.http2_protocol_options); it picks the kind of connection pool. Auto
// (auto_config): ALPN offers h2 and http/1.1 and the negotiated protocol picks the codec
// (mixed_conn_pool_impl.h).
enum class UpstreamHttpProtocol { Http1, Http2, Auto };

// What an auto_config cluster offers in its ClientHello when its TLS context names no
// alpn_protocols (Envoy's mixed pool: HTTP/2 first), as ClusterInfo::createTransportSocket's
// comma-separated `alpn_fallback`.
inline constexpr std::string_view kAutoAlpnFallback = "h2,http/1.1";

// Cluster stats with Envoy's names, under "cluster.<name>.". Who maintains what (as in Envoy):
// the HTTP pool keeps upstream_cx_*, upstream_rq_total/active (and the host's rq_total/active/
// success/error), upstream_rq_pending_*, upstream_rq_cancelled and upstream_rq_rx_reset/
// tx_reset; the cluster manager keeps membership_*; the router keeps upstream_rq_<N>xx,
// upstream_rq_timeout and upstream_cx_none_healthy.
#define PROXY_ALL_CLUSTER_STATS(COUNTER, GAUGE)                                                \
  COUNTER(upstream_cx_total)                                                                   \
  GAUGE(upstream_cx_active)                                                                    \
  COUNTER(upstream_cx_connect_fail)                                                            \
  COUNTER(upstream_cx_connect_timeout)                                                         \
  COUNTER(upstream_cx_destroy)                                                                 \
  COUNTER(upstream_cx_destroy_remote)                                                          \
  COUNTER(upstream_cx_destroy_local)                                                           \
  COUNTER(upstream_rq_total)                                                                   \
  GAUGE(upstream_rq_active)                                                                    \
  COUNTER(upstream_rq_pending_total)                                                           \
  GAUGE(upstream_rq_pending_active)                                                            \
  COUNTER(upstream_rq_pending_overflow)                                                        \
  COUNTER(upstream_rq_timeout)                                                                 \
  COUNTER(upstream_rq_rx_reset)                                                                \
  COUNTER(upstream_rq_tx_reset)                                                                \
  COUNTER(upstream_rq_2xx)                                                                     \
  COUNTER(upstream_rq_3xx)                                                                     \
  COUNTER(upstream_rq_4xx)                                                                     \
  COUNTER(upstream_rq_5xx)                                                                     \
  COUNTER(upstream_cx_none_healthy)                                                            \
  GAUGE(membership_total)                                                                      \
  GAUGE(membership_healthy)                                                                    \
  GAUGE(membership_degraded)                                                                   \
  COUNTER(membership_change) /* a published host set added or removed hosts */                 \
  COUNTER(lb_healthy_panic)  /* a host was picked from all hosts: too few healthy ones */      \
  /* Added by the upstream component (Envoy names). */                                         \
  COUNTER(upstream_cx_overflow)     /* a new connection was refused by max_connections */      \
  COUNTER(upstream_rq_cancelled)    /* a pending request was cancelled before a connection */  \
  COUNTER(upstream_cx_max_requests) /* closed after max_requests_per_connection */             \
  COUNTER(upstream_cx_http1_total)  /* HTTP/1.1 connections opened */                          \
  COUNTER(upstream_cx_http2_total)  /* HTTP/2 connections opened */                            \
  COUNTER(upstream_cx_close_notify) /* the upstream said it closes (HTTP/2 GOAWAY) */          \
  /* Added for timeouts and retries (Envoy names). The pool keeps upstream_cx_idle_timeout; */ \
  /* the router the rest. */                                                                   \
  COUNTER(upstream_cx_idle_timeout) /* an idle pooled connection closed */                     \
  COUNTER(upstream_rq_per_try_timeout)                                                         \
  COUNTER(upstream_rq_retry)                /* a retry was started */                          \
  COUNTER(upstream_rq_retry_success)        /* a retried request ended with a good response */ \
  COUNTER(upstream_rq_retry_overflow)       /* not retried: circuit breaker max_retries */     \
  COUNTER(upstream_rq_retry_limit_exceeded) /* not retried: num_retries used up */             \
  COUNTER(upstream_rq_retry_backoff_exponential)                                               \
  COUNTER(retry_or_shadow_abandoned) /* not retried: the body outgrew the buffer limit */

class ClusterStats {
 public:
  // The block of "cluster.<name>." (the scope's prefix) in the scope's Store: a cluster
  // updated or re-added under the same stat name gets the same block and keeps counting.
  explicit ClusterStats(Stats::Scope scope);
  // The names and kinds, in PROXY_ALL_CLUSTER_STATS order: one table for every cluster.
  static const Stats::StatTable& table();

  PROXY_ALL_CLUSTER_STATS(PROXY_STAT_COUNTER_ACCESSOR, PROXY_STAT_GAUGE_ACCESSOR)

 private:
  enum : size_t { PROXY_ALL_CLUSTER_STATS(PROXY_STAT_INDEX, PROXY_STAT_INDEX) };
  // The Store's block: 8 bytes here and one cell per stat there, instead of a reference here
  // and a 32-byte Store object per stat (issue 14). Hot paths update a cell, no lookup.
  Stats::StatCell* const cells_;
};

// Circuit-breaker accounting, cluster-wide across every worker's pools (Envoy's semantics:
// the thresholds bound the whole cluster, not one pool). Relaxed atomics, never a lock.
struct ClusterResources {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> pending_requests{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> retries{0};  // retries in flight (max_retries)
};

// A cluster's settings, immutable; a cluster update builds a new one.
class ClusterInfo {
 public:
  virtual ~ClusterInfo() = default;
  virtual const std::string& name() const = 0;
  virtual std::chrono::milliseconds connectTimeout() const = 0;
  virtual LbPolicy lbPolicy() const = 0;
  virtual uint32_t leastRequestChoiceCount() const = 0;
  virtual uint32_t perConnectionBufferLimitBytes() const = 0;
  virtual uint64_t maxRequestsPerConnection() const = 0;  // 0 = unlimited
  // Circuit breakers (DEFAULT priority thresholds), counted cluster-wide in resources().
  virtual uint32_t maxConnections() const = 0;
  virtual uint32_t maxPendingRequests() const = 0;
  virtual uint32_t maxRequests() const = 0;
  virtual uint32_t maxRetries() const = 0;
  // common_http_protocol_options.idle_timeout: a pooled connection without a stream this long
  // is closed (default 1 h; 0 disables).
  virtual std::chrono::milliseconds idleTimeout() const = 0;
  // common_lb_config.healthy_panic_threshold, in percent (default 50).
  virtual uint32_t healthyPanicThreshold() const = 0;
  // common_lb_config.locality_weighted_lb_config is set.
  virtual bool localityWeightedLb() const = 0;
  virtual ClusterResources& resources() const = 0;
  virtual ClusterStats& stats() const = 0;
  virtual UpstreamHttpProtocol upstreamHttpProtocol() const = 0;
  // The protocol for a request that arrived as `downstream`: with use_downstream_protocol_config
  // the request's own (HTTP/2 stays HTTP/2, HTTP/1.0 and 1.1 go as HTTP/1.1), as Envoy's
  // ClusterInfo::upstreamHttpProtocol; otherwise upstreamHttpProtocol().
  virtual UpstreamHttpProtocol upstreamHttpProtocol(
      std::optional<Http::Protocol> downstream) const {
    (void)downstream;
    return upstreamHttpProtocol();
  }
  // For HTTP/2 clusters: the codec's settings (Http2ProtocolOptions) and its http2.* stats
  // (null for HTTP/1 clusters).
  virtual const Http::Http2::Http2Settings& http2Settings() const = 0;
  virtual Http::Http2::ClientCodecStats* http2CodecStats() const = 0;
  // The transport of a new upstream connection: TLS (UpstreamTlsContext) or null for the raw
  // socket. Any thread (the TLS context is immutable and shared). `alpn_fallback` (e.g. "h2"
  // for a connection that will speak HTTP/2) is offered in the ClientHello when the context
  // configures no alpn_protocols, as Envoy's pools do; several are comma-separated, in order of
  // preference ("h2,http/1.1" for auto_config).
  virtual Network::TransportSocketPtr createTransportSocket(
      std::string_view alpn_fallback = {}) const {
    (void)alpn_fallback;
    return nullptr;
  }
};
using ClusterInfoConstSharedPtr = std::shared_ptr<const ClusterInfo>;

// What a hashing balancer asks of the request (Envoy's LoadBalancerContext, reduced to it).
class LoadBalancerContext {
 public:
  virtual ~LoadBalancerContext() = default;
  // The request's hash (the route's hash_policy), computed on first call; nullopt when the
  // route has no hash policy or none of its policies found its input.
  virtual std::optional<uint64_t> computeHashKey() = 0;
};

// Picks a host. Per worker, per cluster; rebuilt (cheaply) when the host set changes.
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // Null when no healthy host exists.
  virtual HostConstSharedPtr chooseHost() = 0;
  // For a request: hashing balancers use `context`'s hash key and `attempt` (the n-th pick for
  // this request when a retry host predicate asks for another host); the others ignore both.
  virtual HostConstSharedPtr chooseHostFor(LoadBalancerContext& context, uint32_t attempt) {
    return chooseHost();
  }
};

// ---- Connection pools (per worker, per host) ----

enum class PoolFailureReason { ConnectionFailure, Timeout, Overflow };

class Cancellable {
 public:
  virtual ~Cancellable() = default;
  virtual void cancel() = 0;
};

class HttpPoolCallbacks {
 public:
  virtual ~HttpPoolCallbacks() = default;
  // A connection is ready: send the request on `encoder`. The response goes to the decoder
  // given to newStream(). `encoder` (and its getStream()) belongs to this request only until
  // the response completed (end_stream) or the stream was reset: after that the pool may hand
  // the same connection to another request, so drop the pointer then.
  virtual void onPoolReady(Http::RequestEncoder& encoder, const HostConstSharedPtr& host) = 0;
  virtual void onPoolFailure(PoolFailureReason reason, std::string_view details,
                             const HostConstSharedPtr& host) = 0;
};

class HttpConnPool {
 public:
  virtual ~HttpConnPool() = default;
  // Either calls a callback inline (an idle connection was ready, or overflow) and returns
  // null, or returns a handle to cancel the pending request.
  virtual Cancellable* newStream(Http::ResponseDecoder& decoder, HttpPoolCallbacks& callbacks) = 0;
  virtual bool hasActiveConnections() const = 0;
  // Close idle connections and stop reusing busy ones (host removed, cluster removed, drain).
  virtual void drainConnections() = 0;
};

// What a worker sees of one cluster.
class ThreadLocalCluster {
 public:
  virtual ~ThreadLocalCluster() = default;
  virtual const ClusterInfoConstSharedPtr& info() const = 0;
  virtual const HostSetConstSharedPtr& hostSet() const = 0;
  virtual LoadBalancer& loadBalancer() = 0;
  // The pool to `host` on this worker for a request that arrived as `downstream` (HTTP/1 or
  // HTTP/2, as ClusterInfo::upstreamHttpProtocol(downstream) says; created on first use). Null
  // when no host is available (the caller answers 503 with the UH flag).
  virtual HttpConnPool* httpConnPool(const HostConstSharedPtr& host,
                                     std::optional<Http::Protocol> downstream) = 0;
  // A new outgoing TCP connection to `host` for tcp_proxy (not pooled).
  virtual Network::ClientConnectionPtr tcpConnection(const HostConstSharedPtr& host) = 0;
};

// The cluster manager. Main-thread methods apply config; getThreadLocalCluster() is called on
// workers (and main) and only reads the calling thread's copy.
class ClusterManager {
 public:
  virtual ~ClusterManager() = default;
  // Null when the cluster does not exist (yet) on this thread: the router answers 503 (NC).
  virtual ThreadLocalCluster* getThreadLocalCluster(std::string_view name) = 0;
};

}  // namespace Proxy::Upstream
