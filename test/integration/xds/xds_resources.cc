#include "test/integration/xds/xds_resources.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace Proxy::XdsIntegration {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

std::string adsBootstrap(uint32_t ads_port, const std::string& rate_limit_settings) {
  return absl::StrCat(R"(node: {id: xds-e2e, cluster: xds-e2e}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds_cluster}
)",
                      rate_limit_settings.empty()
                          ? ""
                          : absl::StrCat("    rate_limit_settings: ", rate_limit_settings, "\n"),
                      R"(  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
                      ads_port, "}}}\n");
}

envoy::config::listener::v3::FilterChain rdsFilterChain(const std::string& route_config_name,
                                                        const std::string& stat_prefix) {
  HttpConnectionManager hcm;
  hcm.set_stat_prefix(stat_prefix);
  hcm.mutable_rds()->set_route_config_name(route_config_name);
  hcm.mutable_rds()->mutable_config_source()->mutable_ads();
  hcm.mutable_rds()->mutable_config_source()->set_resource_api_version(envoy::config::core::v3::V3);
  auto* router = hcm.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
  auto* log = hcm.add_access_log();
  log->set_name("envoy.access_loggers.stdout");
  log->mutable_typed_config()->PackFrom(
      envoy::extensions::access_loggers::stream::v3::StdoutAccessLog());

  envoy::config::listener::v3::FilterChain chain;
  auto* filter = chain.add_filters();
  filter->set_name("envoy.filters.network.http_connection_manager");
  filter->mutable_typed_config()->PackFrom(hcm);
  return chain;
}

envoy::config::listener::v3::Listener rdsListener(const std::string& name,
                                                  const std::string& route_config_name,
                                                  uint32_t port) {
  envoy::config::listener::v3::Listener listener;
  listener.set_name(name);
  auto* address = listener.mutable_address()->mutable_socket_address();
  address->set_address("127.0.0.1");
  address->set_port_value(port);
  *listener.add_filter_chains() = rdsFilterChain(route_config_name, name);
  return listener;
}

envoy::config::route::v3::RouteConfiguration routeConfig(
    const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& prefix_to_cluster) {
  envoy::config::route::v3::RouteConfiguration config;
  config.set_name(name);
  auto* vhost = config.add_virtual_hosts();
  vhost->set_name("all");
  vhost->add_domains("*");
  for (const auto& [prefix, cluster] : prefix_to_cluster) {
    auto* route = vhost->add_routes();
    route->mutable_match()->set_prefix(prefix);
    route->mutable_route()->set_cluster(cluster);
  }
  return config;
}

envoy::config::route::v3::RouteConfiguration directResponseRoutes(const std::string& name,
                                                                  const std::string& body,
                                                                  uint32_t status) {
  envoy::config::route::v3::RouteConfiguration config;
  config.set_name(name);
  auto* vhost = config.add_virtual_hosts();
  vhost->set_name("all");
  vhost->add_domains("*");
  auto* route = vhost->add_routes();
  route->mutable_match()->set_prefix("/");
  route->mutable_direct_response()->set_status(status);
  route->mutable_direct_response()->mutable_body()->set_inline_string(body);
  return config;
}

envoy::config::cluster::v3::Cluster staticCluster(const std::string& name,
                                                  const std::vector<uint32_t>& ports) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name(name);
  cluster.set_type(envoy::config::cluster::v3::Cluster::STATIC);
  cluster.mutable_connect_timeout()->set_seconds(1);
  *cluster.mutable_load_assignment() = loadAssignment(name, ports);
  return cluster;
}

envoy::config::cluster::v3::Cluster edsCluster(const std::string& name,
                                               const std::string& service_name) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name(name);
  cluster.set_type(envoy::config::cluster::v3::Cluster::EDS);
  cluster.mutable_connect_timeout()->set_seconds(1);
  auto* eds = cluster.mutable_eds_cluster_config();
  eds->mutable_eds_config()->mutable_ads();
  eds->mutable_eds_config()->set_resource_api_version(envoy::config::core::v3::V3);
  if (!service_name.empty()) {
    eds->set_service_name(service_name);
  }
  return cluster;
}

envoy::config::endpoint::v3::ClusterLoadAssignment loadAssignmentOf(
    const std::string& name, const std::vector<EndpointSpec>& endpoints) {
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  cla.set_cluster_name(name);
  auto* locality = cla.add_endpoints();
  for (const EndpointSpec& spec : endpoints) {
    auto* lb_endpoint = locality->add_lb_endpoints();
    auto* address = lb_endpoint->mutable_endpoint()->mutable_address()->mutable_socket_address();
    address->set_address(spec.address);
    address->set_port_value(spec.port);
    lb_endpoint->set_health_status(spec.health);
  }
  return cla;
}

envoy::config::endpoint::v3::ClusterLoadAssignment loadAssignment(
    const std::string& name, const std::vector<uint32_t>& ports) {
  std::vector<EndpointSpec> specs;
  for (uint32_t port : ports) {
    specs.push_back(EndpointSpec{port});
  }
  return loadAssignmentOf(name, specs);
}

}  // namespace Proxy::XdsIntegration
