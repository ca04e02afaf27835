#pragma once

// Builders for the xDS resources the end-to-end tests and benchmarks send, and the bootstrap
// that points the proxy at the in-test ADS server. Each builder makes the smallest resource a
// test needs and nothing else, so a test reads as the configuration it exercises.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/health_check.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"

namespace Proxy::XdsIntegration {

// The bootstrap of every test: admin on 127.0.0.1:0, nothing static but the management
// server's cluster `xds_cluster` (HTTP/2, as gRPC needs), and CDS and LDS over ADS (GRPC, V3).
// `rate_limit_settings` (a YAML flow mapping, e.g. "{max_tokens: 1000000, fill_rate: 1e6}")
// goes into ads_config when not empty; by default the client's own token bucket applies
// (100 requests, then 10 per second: it delays ACKs of long bursts of updates).
std::string adsBootstrap(uint32_t ads_port, const std::string& rate_limit_settings = "");

// A filter chain with an http_connection_manager (stat_prefix `stat_prefix`) whose routes come
// from RDS `route_config_name` over ADS, the router, and Envoy's default access log on stdout
// (so response flags such as NC can be asserted).
envoy::config::listener::v3::FilterChain rdsFilterChain(const std::string& route_config_name,
                                                        const std::string& stat_prefix);

// A listener on 127.0.0.1:`port` (0: any free port) with one rdsFilterChain().
envoy::config::listener::v3::Listener rdsListener(const std::string& name,
                                                  const std::string& route_config_name,
                                                  uint32_t port = 0);

// A route configuration with one virtual host (domains "*") routing each prefix to a cluster,
// in order: {{"/a", "cluster_a"}, {"/", "cluster_b"}}.
envoy::config::route::v3::RouteConfiguration routeConfig(
    const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& prefix_to_cluster);

// A route configuration whose every request gets `status` with `body` (direct_response).
envoy::config::route::v3::RouteConfiguration directResponseRoutes(const std::string& name,
                                                                  const std::string& body,
                                                                  uint32_t status = 200);

// A STATIC cluster with endpoints 127.0.0.1:<port> for each port.
envoy::config::cluster::v3::Cluster staticCluster(const std::string& name,
                                                  const std::vector<uint32_t>& ports);

// An EDS cluster whose endpoints come over ADS as ClusterLoadAssignment `service_name`
// (empty: the cluster's own name).
envoy::config::cluster::v3::Cluster edsCluster(const std::string& name,
                                               const std::string& service_name = "");

struct EndpointSpec {
  uint32_t port;
  envoy::config::core::v3::HealthStatus health = envoy::config::core::v3::HEALTHY;
  std::string address = "127.0.0.1";
};

// A ClusterLoadAssignment named `name` with one locality holding the endpoints (health
// status per endpoint), or 127.0.0.1:<port> for each port, all HEALTHY.
envoy::config::endpoint::v3::ClusterLoadAssignment loadAssignmentOf(
    const std::string& name, const std::vector<EndpointSpec>& endpoints);
envoy::config::endpoint::v3::ClusterLoadAssignment loadAssignment(
    const std::string& name, const std::vector<uint32_t>& ports);

}  // namespace Proxy::XdsIntegration
