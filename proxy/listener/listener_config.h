#pragma once

// A listener as built from its config on the main thread: the listen sockets (one per worker,
// bound before any worker sees them, so a bind failure rejects the config), the filter chain
// and stats. Immutable once built; shared read-only by every worker.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "proxy/filters/http_connection_manager.h"
#include "proxy/filters/tcp_proxy.h"
#include "proxy/network/connection_limit.h"
#include "proxy/network/listen_socket.h"
#include "proxy/router/rds_impl.h"
#include "proxy/stats/stats.h"
#include "proxy/tls/context_impl.h"
#include "proxy/tls/context_provider.h"
#include "proxy/tls/secret_manager.h"

namespace Proxy::Listener {

// "listener.<address>." stats with Envoy's names, plus one set per worker
// ("listener.<address>.worker_<N>.").
struct ListenerStats {
  ListenerStats(Stats::Scope scope, uint32_t workers);
  Stats::Counter& downstream_cx_total;
  Stats::Gauge& downstream_cx_active;
  Stats::Counter& downstream_cx_destroy;
  Stats::Counter& no_filter_chain_match;
  Stats::Counter& downstream_cx_transport_socket_connect_timeout;
  Stats::Counter& downstream_pre_cx_timeout;
  Stats::Gauge& downstream_pre_cx_active;
  // Closed at accept: over the overload manager's global downstream connection limit.
  Stats::Counter& downstream_global_cx_overflow;
  struct PerWorker {
    Stats::Counter* downstream_cx_total;
    Stats::Gauge* downstream_cx_active;
  };
  std::vector<PerWorker> per_worker;
};

// The terminal filter of one filter chain, and what it needs. Shared (and kept alive) by the
// connections that use it, and by the next version of the listener when the chain did not
// change: that is what lets an in-place update leave those connections alone.
struct FilterChain {
  std::string name;
  uint64_t hash = 0;              // of the FilterChain proto
  uint32_t destination_port = 0;  // filter_chain_match.destination_port, 0 = any
  // filter_chain_match.server_names ("example.com", "*.example.com"), empty = any SNI.
  std::vector<std::string> server_names;
  // filter_chain_match.transport_protocol ("tls", "raw_buffer"), empty = any.
  std::string transport_protocol;
  Filters::HcmConfigConstSharedPtr hcm;             // set for http_connection_manager
  Filters::TcpProxyConfigConstSharedPtr tcp_proxy;  // set for tcp_proxy
  // transport_socket envoy.transport_sockets.tls (null: plaintext). Its stats scope is the
  // listener's, bound once the listener's stat prefix is known (ListenerConfig::create).
  // The context follows the secrets it names (SDS): each connection takes the current one.
  std::shared_ptr<Tls::ContextProvider> tls;
  // transport_socket_connect_timeout: a TLS handshake not done by then closes the connection.
  std::chrono::milliseconds transport_socket_connect_timeout{0};
};

using FilterChainConstSharedPtr = std::shared_ptr<const FilterChain>;

// One listen socket per worker, shared between the versions of a listener whose address did
// not change (the new version takes over the same sockets: no window where connects fail).
using ListenSocketSet = std::vector<Network::ListenSocketPtr>;
using ListenSocketSetSharedPtr = std::shared_ptr<ListenSocketSet>;

class ListenerConfig;

struct ListenerBuildContext {
  uint32_t workers = 1;
  Stats::Store* store = nullptr;
  // RDS providers for HCMs with `rds` (null: only inline route_config is accepted).
  Router::RouteConfigProviderManager* rds = nullptr;
  // Whether a cluster of that name exists (active or warming): Envoy's validate_clusters for
  // route configurations inline in the listener. Null: not checked.
  std::function<bool(std::string_view)> cluster_exists;
  // False for --mode validate: check everything but bind nothing.
  bool bind_sockets = true;
  // static_resources.secrets, which TLS contexts may name (null: none).
  Tls::SecretManager* secrets = nullptr;
  // The version this one replaces (same name), if any: its sockets are reused when the
  // address is unchanged, and its unchanged filter chains are shared.
  const ListenerConfig* previous = nullptr;
  // The overload manager's global downstream connection limit (null: none configured).
  Network::GlobalConnectionLimit* global_connection_limit = nullptr;
};

class ListenerConfig {
 public:
  // Validates `proto`, builds its filter chains and binds one socket per worker. Errors name
  // the field relative to the listener ("filter_chains[0].filters[0].typed_config: ...").
  static absl::StatusOr<std::shared_ptr<ListenerConfig>> create(
      const envoy::config::listener::v3::Listener& proto, const ListenerBuildContext& context);

  // Unique per built version: workers tell versions of the same listener apart by it.
  uint64_t tag() const { return tag_; }
  const std::string& name() const { return name_; }
  const Network::Address& address() const { return address_; }
  uint64_t hash() const { return hash_; }
  uint32_t perConnectionBufferLimitBytes() const { return buffer_limit_; }
  bool drainOnShutdown() const { return drain_on_shutdown_; }
  ListenerStats& stats() const { return *stats_; }
  const envoy::config::listener::v3::Listener& proto() const { return proto_; }
  // The chain for a connection accepted on `local` with the SNI and transport protocol the
  // listener filters found ("raw_buffer" when none ran), by Envoy's rules: the most specific
  // destination port, then server name (exact, then the longest wildcard suffix, then chains
  // without server_names), then transport protocol. Null: no chain matches; close it.
  const FilterChainConstSharedPtr* findFilterChain(
      const Network::Address& local, std::string_view server_name = {},
      std::string_view transport_protocol = "raw_buffer") const;
  // envoy.filters.listener.tls_inspector is configured: peek at the ClientHello first.
  bool tlsInspector() const { return tls_inspector_; }
  // listener_filters_timeout (0: none) and continue_on_listener_filters_timeout.
  std::chrono::milliseconds listenerFiltersTimeout() const { return listener_filters_timeout_; }
  bool continueOnListenerFiltersTimeout() const { return continue_on_listener_filters_timeout_; }
  // The global downstream connection limit this listener's connections count against; null
  // when none is configured or the listener sets ignore_global_conn_limit.
  Network::GlobalConnectionLimit* globalConnectionLimit() const { return global_limit_; }
  // True when `chain` (by identity) is one of this version's chains.
  bool hasFilterChain(const FilterChain* chain) const;
  // RDS providers this listener's chains use (it is warm when all are ready).
  std::vector<std::shared_ptr<Router::RdsRouteConfigProvider>> rdsProviders() const;
  // TLS contexts of its chains waiting for secrets (SDS): it warms until they are ready.
  std::vector<std::shared_ptr<Tls::ContextProvider>> pendingTlsProviders() const;
  // True when `other` differs from this listener only in its filter chains (Envoy's condition
  // for an in-place filter chain update).
  bool onlyFilterChainsDiffer(const ListenerConfig& other) const;

  // The socket for worker `index`. The sockets outlive every worker's listener on them (the
  // listener manager releases a version only after every worker dropped it).
  Network::ListenSocket& socket(uint32_t index) const { return *(*sockets_)[index]; }
  const ListenSocketSetSharedPtr& sockets() const { return sockets_; }
  // Main thread: let go of the sockets (they close once no other version shares them).
  void releaseSockets() { sockets_.reset(); }

 private:
  ListenerConfig() = default;
  void bindTlsStats(const Stats::Scope& scope);

  uint64_t tag_ = 0;
  std::string name_;
  Network::Address address_;
  uint64_t hash_ = 0;
  uint32_t buffer_limit_ = 1024 * 1024;
  bool drain_on_shutdown_ = true;
  bool tls_inspector_ = false;
  Network::GlobalConnectionLimit* global_limit_ = nullptr;
  std::chrono::milliseconds listener_filters_timeout_{15000};
  bool continue_on_listener_filters_timeout_ = false;
  envoy::config::listener::v3::Listener proto_;
  std::vector<FilterChainConstSharedPtr> filter_chains_;
  FilterChainConstSharedPtr default_filter_chain_;
  ListenSocketSetSharedPtr sockets_;
  std::unique_ptr<ListenerStats> stats_;
};

using ListenerConfigSharedPtr = std::shared_ptr<ListenerConfig>;
using ListenerConfigConstSharedPtr = std::shared_ptr<const ListenerConfig>;

// Deterministic hash of a message's serialized bytes (what "unchanged" means for xDS).
uint64_t messageHash(const google::protobuf::Message& message);

}  // namespace Proxy::Listener
