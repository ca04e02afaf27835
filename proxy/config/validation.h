#pragma once

// Checks on xDS resources that their protos cannot express (required fields, supported
// features, references between fields), shared by the bootstrap loader and the xDS update path.
//
// Every message is one line and names the field by its path within the resource:
//   filter_chains[0].filters[0].typed_config: unsupported network filter type '...'
//   virtual_hosts[0].routes[2].match.safe_regex: invalid regex '(': missing ): (
// The xDS layer prefixes the resource ("listener 'ingress': "); the bootstrap loader passes the
// resource's own path instead, so that its messages read like the YAML loader's:
//   static_resources.listeners[0].filter_chains[0].filters[0].typed_config: ...
// The first problem found is reported. Pure functions: safe from any thread.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/config/data_source.h"

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"

#include "proxy/config/field_support.h"
#include "proxy/config/filter_config.h"

namespace Proxy::Config {

// Envoy's default limit on a direct_response body
// (RouteConfiguration.max_direct_response_body_size_bytes).
inline constexpr size_t kDefaultMaxDirectResponseBodySize = 4096;

// `path` is where the resource sits, prepended to every field path: "" for an xDS resource
// (messages relative to it), "static_resources.listeners[0]" in a bootstrap.
// Each of the four also refuses every field the proxy does not implement (field_support.h),
// after the checks of its values.
absl::Status validateListener(const envoy::config::listener::v3::Listener& listener,
                              const std::string& path = "");
absl::Status validateCluster(const envoy::config::cluster::v3::Cluster& cluster,
                             const std::string& path = "", const FieldCheckContext& context = {});
absl::Status validateRouteConfiguration(const envoy::config::route::v3::RouteConfiguration& rc,
                                        const std::string& path = "");
absl::Status validateClusterLoadAssignment(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla, const std::string& path = "");

// The parts of resources, for callers that hold them on their own.
absl::Status validateHttpConnectionManager(const HttpConnectionManager& hcm,
                                           const std::string& path = "");
absl::Status validateTcpProxy(const TcpProxy& tcp_proxy, const std::string& path = "");
// ads, self or api_config_source with GRPC/DELTA_GRPC; file-based sources are not supported.
absl::Status validateConfigSource(const envoy::config::core::v3::ConfigSource& source,
                                  const std::string& path = "");
absl::Status validateApiConfigSource(const envoy::config::core::v3::ApiConfigSource& source,
                                     const std::string& path = "");
// Envoy's validate_clusters: every cluster that a route of `rc` names (route.cluster and the
// names of weighted_clusters; cluster_header is only known per request) must be one that
// `cluster_exists` knows, or the route configuration is rejected, with Envoy's message:
//   virtual_hosts[0].routes[1].route.cluster: route: unknown cluster 'nosuch'
//   (route configuration 'local_route')
// Envoy's default is true for a route_config inline in a listener and false for RDS
// (validateClustersByDefault); `path` as above.
absl::Status validateRouteClusters(const envoy::config::route::v3::RouteConfiguration& rc,
                                   const std::function<bool(std::string_view)>& cluster_exists,
                                   const std::string& path = "");
// rc.validate_clusters when set, else `inline_default` (true inline, false over RDS).
bool validatesClusters(const envoy::config::route::v3::RouteConfiguration& rc, bool inline_default);

// A TCP socket_address with an IP literal (no name resolution) and a port <= 65535.
absl::Status validateAddress(const envoy::config::core::v3::Address& address,
                             const std::string& path = "");

}  // namespace Proxy::Config
