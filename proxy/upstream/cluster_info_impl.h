#pragma once

// A cluster's settings decoded and validated from its Cluster proto (main thread), immutable
// afterwards and shared by every worker.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "proxy/tls/context_impl.h"
#include "proxy/tls/context_provider.h"
#include "proxy/tls/secret_manager.h"
#include "proxy/upstream/thread_aware_lb_impl.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

class ClusterInfoImpl;
using ClusterInfoImplConstSharedPtr = std::shared_ptr<const ClusterInfoImpl>;

class ClusterInfoImpl : public ClusterInfo {
 public:
  // How the cluster learns its hosts (STRICT_DNS / LOGICAL_DNS: strict_dns_cluster.h).
  enum class DiscoveryType { Static, StrictDns, LogicalDns, Eds };

  // Validates `config`; errors read "cluster 'name': field: reason". Stats are registered in
  // `store` under "cluster.<name or alt_stat_name>.". `secrets`: the static secrets a TLS
  // context may name (null: none).
  static absl::StatusOr<ClusterInfoImplConstSharedPtr> create(
      const envoy::config::cluster::v3::Cluster& config, Stats::Store& store,
      Tls::SecretManager* secrets = nullptr);

  const std::string& name() const override { return name_; }
  std::chrono::milliseconds connectTimeout() const override { return connect_timeout_; }
  LbPolicy lbPolicy() const override { return lb_policy_; }
  uint32_t leastRequestChoiceCount() const override { return choice_count_; }
  // RING_HASH / MAGLEV settings (defaults for other policies).
  const HashLbConfig& hashLbConfig() const { return hash_lb_config_; }
  // Gauges of the rings / tables the cluster manager builds (null for other policies).
  HashingLbStats* hashingLbStats() const { return hashing_lb_stats_.get(); }
  uint32_t perConnectionBufferLimitBytes() const override { return buffer_limit_; }
  uint64_t maxRequestsPerConnection() const override { return max_requests_per_connection_; }
  uint32_t maxConnections() const override { return max_connections_; }
  uint32_t maxPendingRequests() const override { return max_pending_requests_; }
  uint32_t maxRequests() const override { return max_requests_; }
  uint32_t maxRetries() const override { return max_retries_; }
  std::chrono::milliseconds idleTimeout() const override { return idle_timeout_; }
  uint32_t healthyPanicThreshold() const override { return panic_threshold_; }
  bool localityWeightedLb() const override { return locality_weighted_; }
  ClusterResources& resources() const override { return resources_; }
  ClusterStats& stats() const override { return stats_; }
  UpstreamHttpProtocol upstreamHttpProtocol() const override { return protocol_; }
  UpstreamHttpProtocol upstreamHttpProtocol(
      std::optional<Http::Protocol> downstream) const override {
    if (use_downstream_protocol_ && downstream.has_value()) {
      return *downstream == Http::Protocol::Http2 ? UpstreamHttpProtocol::Http2
                                                  : UpstreamHttpProtocol::Http1;
    }
    return protocol_;
  }
  const Http::Http2::Http2Settings& http2Settings() const override { return http2_settings_; }
  Http::Http2::ClientCodecStats* http2CodecStats() const override {
    return http2_codec_stats_.get();
  }
  Network::TransportSocketPtr createTransportSocket(
      std::string_view alpn_fallback = {}) const override;
  // The TLS context's provider (null: raw socket); main thread, for warming on SDS.
  Tls::ContextProvider* tlsContextProvider() const { return tls_context_.get(); }

  // "cluster.<name or alt_stat_name>.", for the stats of the cluster's health checker and
  // outlier detector.
  Stats::Scope statsScope() const { return scope_; }

  DiscoveryType discoveryType() const { return type_; }
  // "STATIC", "EDS", ... as in the proto, for admin output.
  const char* discoveryTypeName() const;
  // The ClusterLoadAssignment resource an EDS cluster watches: eds_cluster_config.service_name,
  // or the cluster name when that is empty.
  const std::string& edsServiceName() const { return eds_service_name_; }

 private:
  ClusterInfoImpl(const envoy::config::cluster::v3::Cluster& config, Stats::Store& store,
                  const std::string& stat_name);

  const std::string name_;
  DiscoveryType type_ = DiscoveryType::Static;
  std::string eds_service_name_;
  std::chrono::milliseconds connect_timeout_{5000};
  LbPolicy lb_policy_ = LbPolicy::RoundRobin;
  uint32_t choice_count_ = 2;
  HashLbConfig hash_lb_config_;
  std::unique_ptr<HashingLbStats> hashing_lb_stats_;
  uint32_t buffer_limit_ = 1024 * 1024;
  uint64_t max_requests_per_connection_ = 0;
  uint32_t max_connections_ = 1024;
  uint32_t max_pending_requests_ = 1024;
  uint32_t max_requests_ = 1024;
  UpstreamHttpProtocol protocol_ = UpstreamHttpProtocol::Http1;
  bool use_downstream_protocol_ = false;  // use_downstream_protocol_config
  Http::Http2::Http2Settings http2_settings_;
  uint32_t max_retries_ = 3;  // Envoy's default
  std::chrono::milliseconds idle_timeout_{std::chrono::hours(1)};
  uint32_t panic_threshold_ = 50;
  bool locality_weighted_ = false;
  // Mutable: counters updated from every worker (atomics) on an otherwise immutable object.
  Stats::Scope scope_;
  mutable ClusterResources resources_;
  mutable ClusterStats stats_;
  std::unique_ptr<Http::Http2::ClientCodecStats> http2_codec_stats_;  // HTTP/2 clusters only
  std::shared_ptr<Tls::ContextProvider> tls_context_;  // transport_socket tls, else null
};

}  // namespace Proxy::Upstream
