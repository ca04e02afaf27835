#pragma once

// envoy.filters.network.tcp_proxy: connects each downstream connection to a host of a cluster
// and moves bytes both ways without looking at them, with backpressure in both directions and
// half-close passed through.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "proxy/filters/network_filter.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Filters {

// "tcp.<stat_prefix>." stats with Envoy's names.
struct TcpProxyStats {
  explicit TcpProxyStats(Stats::Scope scope);
  Stats::Counter& downstream_cx_total;
  Stats::Counter& downstream_cx_no_route;
  Stats::Counter& downstream_cx_rx_bytes_total;
  Stats::Counter& downstream_cx_tx_bytes_total;
  Stats::Counter& idle_timeout;
  Stats::Counter& upstream_flush_total;
};

struct TcpProxyConfig {
  static absl::StatusOr<std::shared_ptr<const TcpProxyConfig>> create(
      const envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy& proto,
      Stats::Store& store);

  // Picks the cluster for a new connection (weighted_clusters by `random`).
  const std::string& clusterName(uint64_t random) const;

  struct WeightedCluster {
    std::string name;
    uint64_t weight;
  };
  std::vector<WeightedCluster> clusters;  // one entry with weight 1 for `cluster`
  uint64_t total_weight = 0;
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};  // 0 = disabled
  std::unique_ptr<TcpProxyStats> stats;
};

using TcpProxyConfigConstSharedPtr = std::shared_ptr<const TcpProxyConfig>;

NetworkFilterPtr createTcpProxy(TcpProxyConfigConstSharedPtr config,
                                Upstream::ClusterManager& cluster_manager,
                                Network::Connection& downstream);

}  // namespace Proxy::Filters
