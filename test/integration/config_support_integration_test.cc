// The real `proxy` binary against static bootstraps that ask for something it does not do: a
// field it does not implement (one per resource type), or a route to a cluster that does not
// exist. `--mode validate` and serving both refuse, exit non-zero, and say why in one line.

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "test/integration/proxy_process.h"

#include "gtest/gtest.h"

namespace Proxy::Integration {
namespace {

// A bootstrap with one HTTP listener whose inline routes send /a to `service1` and everything
// else to $ROUTE_CLUSTER, the cluster `service1`, and admin. $-placeholders are replaced by
// each test: $LISTENER_EXTRA (fields of the listener), $HCM_EXTRA (of the connection manager),
// $ROUTES_EXTRA (of the route configuration), $CLUSTER_EXTRA (of the cluster),
// $ENDPOINT_EXTRA (of the endpoint), $BOOTSTRAP_EXTRA (of the bootstrap).
constexpr char kBootstrap[] = R"(
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    $LISTENER_EXTRA
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          $HCM_EXTRA
          route_config:
            name: local_route
            $ROUTES_EXTRA
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: "/a"}, route: {cluster: service1}}
              - {match: {prefix: "/"}, route: {cluster: $ROUTE_CLUSTER}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: service1
    type: STATIC
    $CLUSTER_EXTRA
    load_assignment:
      cluster_name: service1
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}
          $ENDPOINT_EXTRA
$BOOTSTRAP_EXTRA
)";

struct Extra {
  std::string listener, hcm, routes, cluster, endpoint, bootstrap;
  std::string route_cluster = "service1";
};

// `base` with one more field set.
Extra with(std::string Extra::*field, std::string value, Extra base = {}) {
  base.*field = std::move(value);
  return base;
}

std::string bootstrap(const Extra& extra) {
  return absl::StrReplaceAll(kBootstrap, {{"$LISTENER_EXTRA", extra.listener},
                                          {"$HCM_EXTRA", extra.hcm},
                                          {"$ROUTES_EXTRA", extra.routes},
                                          {"$CLUSTER_EXTRA", extra.cluster},
                                          {"$ENDPOINT_EXTRA", extra.endpoint},
                                          {"$BOOTSTRAP_EXTRA", extra.bootstrap},
                                          {"$ROUTE_CLUSTER", extra.route_cluster}});
}

std::vector<std::string> lines(const std::string& text) {
  return absl::StrSplit(absl::StripAsciiWhitespace(text), '\n', absl::SkipEmpty());
}

// Runs the proxy on `yaml` with `args` and returns its one line of error; "" (and a test
// failure) when it succeeded or said more.
std::string refusal(const std::string& yaml, const std::vector<std::string>& args) {
  ProxyOptions options;
  options.bootstrap_yaml = yaml;
  ProxyProcess proxy(options);
  absl::StatusOr<ProcessResult> result = proxy.runToCompletion(args);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) {
    return "";
  }
  EXPECT_NE(result->exit_code, 0) << "accepted:\n" << yaml;
  const std::vector<std::string> error = lines(result->stderr_text);
  EXPECT_EQ(error.size(), 1u) << result->stderr_text;
  return error.size() == 1 ? error[0] : "";
}

std::string validateRefusal(const Extra& extra) {
  return refusal(bootstrap(extra), {"--mode", "validate"});
}

TEST(ConfigSupportIntegrationTest, TheBaseBootstrapIsValid) {
  // Every refusal below is the one field each test adds.
  ProxyOptions options;
  options.bootstrap_yaml = bootstrap({});
  ProxyProcess proxy(options);
  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
}

TEST(ConfigSupportIntegrationTest, ValidateRefusesAnUnimplementedFieldOfEachPartInOneLine) {
  const std::string listener = "error: static_resources.listeners[0].";
  const std::string hcm = listener + "filter_chains[0].filters[0].typed_config.";
  const std::string routes = hcm + "route_config.";
  // Listener.
  EXPECT_EQ(validateRefusal(with(&Extra::listener, "traffic_direction: OUTBOUND")),
            listener + "traffic_direction: not supported");
  // HTTP connection manager: fields not implemented.
  EXPECT_EQ(validateRefusal(with(&Extra::hcm, "delayed_close_timeout: 10s")),
            hcm + "delayed_close_timeout: not supported");
  EXPECT_EQ(validateRefusal(with(&Extra::hcm, "xff_num_trusted_hops: 1")),
            hcm + "xff_num_trusted_hops: not supported");
  EXPECT_EQ(validateRefusal(with(&Extra::hcm, "proxy_100_continue: true")),
            hcm + "proxy_100_continue: not supported");
  // Its access log.
  EXPECT_EQ(
      validateRefusal(with(
          &Extra::hcm,
          R"(access_log: [{name: out, filter: {not_health_check_filter: {}}, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}}])")),
      hcm + "access_log[0].filter: not supported");
  // Route configuration.
  EXPECT_EQ(validateRefusal(with(&Extra::routes, "internal_only_headers: [x-internal]")),
            routes + "internal_only_headers: not supported");
  // Cluster: an HTTP/2 setting the upstream codec does not implement.
  const std::string cluster = "error: static_resources.clusters[0].";
  EXPECT_EQ(validateRefusal(with(&Extra::cluster, "http2_protocol_options: {allow_connect: true}")),
            cluster + "http2_protocol_options.allow_connect: not supported");
  EXPECT_EQ(validateRefusal(with(&Extra::cluster, "ignore_health_on_host_removal: true")),
            cluster + "ignore_health_on_host_removal: not supported");
  // Its endpoints (ClusterLoadAssignment).
  EXPECT_EQ(validateRefusal(
                with(&Extra::endpoint, "metadata: {filter_metadata: {envoy.lb: {canary: true}}}")),
            cluster + "load_assignment.endpoints[0].lb_endpoints[0].metadata: not supported");
  // The bootstrap's own fields, admin and dynamic_resources.
  EXPECT_EQ(validateRefusal(with(&Extra::bootstrap,
                                 "layered_runtime: {layers: [{name: static, static_layer: {}}]}")),
            "error: layered_runtime: not supported");
  // The overload manager's global connection limit is implemented; its other parts are not.
  EXPECT_EQ(validateRefusal(with(&Extra::bootstrap, "overload_manager: {refresh_interval: 0.25s}")),
            "error: overload_manager.refresh_interval: not supported");
  EXPECT_EQ(validateRefusal(with(&Extra::bootstrap,
                                 "overload_manager: {resource_monitors: [{name: "
                                 "envoy.resource_monitors.fixed_heap}]}")),
            "error: overload_manager.resource_monitors[0].name: resource monitor "
            "'envoy.resource_monitors.fixed_heap' not supported");
}

TEST(ConfigSupportIntegrationTest, ServingRefusesTheSameFieldAsValidate) {
  // Not only --mode validate: the server does not start on such a config.
  EXPECT_EQ(refusal(bootstrap(with(&Extra::hcm, "delayed_close_timeout: 10s")), {}),
            "error: static_resources.listeners[0].filter_chains[0].filters[0].typed_config."
            "delayed_close_timeout: not supported");
}

// --- validate_clusters ----------------------------------------------------------------------

TEST(ConfigSupportIntegrationTest, AnInlineRouteToAnUnknownClusterIsRefused) {
  // Envoy: validate_clusters defaults to true for a route_config inline in a listener.
  const std::string expected =
      "error: static_resources.listeners[0] ('ingress'): filter_chains[0].filters[0]."
      "typed_config.route_config.virtual_hosts[0].routes[1].route.cluster: route: unknown "
      "cluster 'nosuch' (route configuration 'local_route')";
  EXPECT_EQ(validateRefusal(with(&Extra::route_cluster, "nosuch")), expected);
  // Explicitly true: the same.
  EXPECT_EQ(validateRefusal(with(&Extra::routes, "validate_clusters: true",
                                 with(&Extra::route_cluster, "nosuch"))),
            expected);
  // Serving refuses to start too.
  EXPECT_EQ(refusal(bootstrap(with(&Extra::route_cluster, "nosuch")), {}), expected);
}

TEST(ConfigSupportIntegrationTest, ValidateClustersFalseAcceptsAnUnknownCluster) {
  // The way out Envoy offers (for clusters that CDS will bring later).
  ProxyOptions options;
  options.bootstrap_yaml = bootstrap(
      with(&Extra::routes, "validate_clusters: false", with(&Extra::route_cluster, "nosuch")));
  ProxyProcess proxy(options);
  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
}

}  // namespace
}  // namespace Proxy::Integration
