#pragma once

// A listener as built from its config on the main thread: the listen sockets (one per worker,
// bound before any worker sees them, so a bind failure rejects the config), the filter chain
// and stats. Immutable once built; shared read-only by every worker.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "proxy/filters/http_connection_manager.h"
#include "proxy/filters/tcp_proxy.h"
#include "proxy/network/listen_socket.h"
#include "proxy/stats/stats.h"

namespace Proxy::Listener {

// "listener.<address>." stats with Envoy's names, plus one set per worker
// ("listener.<address>.worker_<N>.").
struct ListenerStats {
  ListenerStats(Stats::Scope scope, uint32_t workers);
  Stats::Counter& downstream_cx_total;
  Stats::Gauge& downstream_cx_active;
  Stats::Counter& downstream_cx_destroy;
  Stats::Counter& no_filter_chain_match;
  struct PerWorker {
    Stats::Counter* downstream_cx_total;
    Stats::Gauge* downstream_cx_active;
  };
  std::vector<PerWorker> per_worker;
};

// The terminal filter of the listener's filter chain, and what it needs.
struct FilterChain {
  std::string name;
  uint32_t destination_port = 0; // filter_chain_match.destination_port, 0 = any
  Filters::HcmConfigConstSharedPtr hcm;          // set for http_connection_manager
  Filters::TcpProxyConfigConstSharedPtr tcp_proxy; // set for tcp_proxy
};

class ListenerConfig {
public:
  // Validates `proto`, builds its filter chains and binds `workers` sockets (unless
  // `bind_sockets` is false: --mode validate checks a config without binding). Errors name the
  // field relative to the listener ("filter_chains[0].filters[0].typed_config: ...").
  static absl::StatusOr<std::shared_ptr<ListenerConfig>>
  create(const envoy::config::listener::v3::Listener& proto, uint32_t workers,
         Stats::Store& store, bool bind_sockets = true);

  const std::string& name() const { return name_; }
  const Network::Address& address() const { return address_; }
  uint32_t perConnectionBufferLimitBytes() const { return buffer_limit_; }
  ListenerStats& stats() const { return *stats_; }
  const envoy::config::listener::v3::Listener& proto() const { return proto_; }
  // The chain for a connection accepted on `local` (null: no chain matches; close it).
  const FilterChain* findFilterChain(const Network::Address& local) const;
  // The socket for worker `index`. The sockets are owned here and outlive every worker's
  // listener (the server stops workers before dropping configs).
  Network::ListenSocket& socket(uint32_t index) const { return *sockets_[index]; }

private:
  ListenerConfig() = default;

  std::string name_;
  Network::Address address_;
  uint32_t buffer_limit_ = 1024 * 1024;
  envoy::config::listener::v3::Listener proto_;
  std::vector<FilterChain> filter_chains_;
  std::unique_ptr<FilterChain> default_filter_chain_;
  std::vector<Network::ListenSocketPtr> sockets_;
  std::unique_ptr<ListenerStats> stats_;
};

using ListenerConfigSharedPtr = std::shared_ptr<ListenerConfig>;
using ListenerConfigConstSharedPtr = std::shared_ptr<const ListenerConfig>;

} // namespace Proxy::Listener
