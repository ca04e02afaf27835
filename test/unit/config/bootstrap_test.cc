// proxy_config's bootstrap loading and validation (bootstrap.h, validation.h): what loads, what is
// refused and with which message. Error strings are asserted exactly (config_test_util.h).

#include "test/unit/config/config_test_util.h"

namespace Proxy::Config {
namespace {

// ---------------------------------------------------------------------------------------------
// The bootstrap

// What a full Envoy bootstrap for an xDS-managed edge proxy looks like; it must load as is.
constexpr char kFullBootstrap[] = R"(
node:
  id: edge-1
  cluster: edge
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 9901}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds_cluster}}]
  lds_config: {ads: {}, resource_api_version: V3}
  cds_config: {ads: {}, resource_api_version: V3}
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 0.0.0.0, port_value: 10000}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          codec_type: AUTO
          route_config:
            name: local_route
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: service_a, timeout: 5s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: tcp
    address: {socket_address: {address: "::", port_value: 10001}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: service_a
  clusters:
  - name: service_a
    type: STATIC
    connect_timeout: 0.25s
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: service_a
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8080}}}
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8081}}}
  - name: service_b
    type: EDS
    eds_cluster_config: {eds_config: {ads: {}, resource_api_version: V3}}
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18000}}}
)";

TEST(BootstrapTest, FullEnvoyBootstrapLoads) {
  // Step 1: the file, with the node id overridden from the command line as Envoy does.
  Options options;
  options.config_path = writeTempFile("envoy.yaml", kFullBootstrap);
  options.service_node = "edge-2";
  options.service_zone = "zone-a";
  absl::StatusOr<Bootstrap> bootstrap = loadBootstrap(options);
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();

  // Step 2: what the other components will read.
  EXPECT_EQ(bootstrap->node().id(), "edge-2");
  EXPECT_EQ(bootstrap->node().cluster(), "edge");
  EXPECT_EQ(bootstrap->node().locality().zone(), "zone-a");
  EXPECT_EQ(bootstrap->admin().address().socket_address().port_value(), 9901u);
  EXPECT_TRUE(bootstrap->dynamic_resources().lds_config().has_ads());
  ASSERT_EQ(bootstrap->static_resources().listeners_size(), 2);
  const auto& http = bootstrap->static_resources().listeners(0);
  ASSERT_EQ(networkFilterType(http.filter_chains(0).filters(0)),
            NetworkFilterType::HttpConnectionManager);
  absl::StatusOr<HttpConnectionManager> hcm = unpackHcm(http.filter_chains(0).filters(0));
  ASSERT_TRUE(hcm.ok());
  EXPECT_EQ(hcm->route_config().virtual_hosts(0).routes(0).route().cluster(), "service_a");
  const auto& tcp = bootstrap->static_resources().listeners(1);
  absl::StatusOr<TcpProxy> tcp_proxy = unpackTcpProxy(tcp.filter_chains(0).filters(0));
  ASSERT_TRUE(tcp_proxy.ok());
  EXPECT_EQ(tcp_proxy->cluster(), "service_a");
  EXPECT_EQ(
      bootstrap->static_resources().clusters(0).load_assignment().endpoints(0).lb_endpoints_size(),
      2);
  HttpProtocolOptions protocol_options;
  ASSERT_TRUE(bootstrap->static_resources()
                  .clusters(2)
                  .typed_extension_protocol_options()
                  .at(std::string(kHttpProtocolOptionsName))
                  .UnpackTo(&protocol_options));
  EXPECT_TRUE(protocol_options.explicit_http_config().has_http2_protocol_options());
}

TEST(BootstrapTest, ConfigYamlIsMergedOverTheFile) {
  // The file says edge-1; --config-yaml adds a listener-free override of the node.
  Options options;
  options.config_path = writeTempFile("envoy.yaml", kFullBootstrap);
  options.config_yaml = "node: {id: from-flag}";
  absl::StatusOr<Bootstrap> bootstrap = loadBootstrap(options);
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  EXPECT_EQ(bootstrap->node().id(), "from-flag");
  EXPECT_EQ(bootstrap->node().cluster(), "edge");
  EXPECT_EQ(bootstrap->static_resources().clusters_size(), 3);

  // A broken --config-yaml says so.
  options.config_yaml = "node: {idd: x}";
  EXPECT_EQ(loadBootstrap(options).status().message(), "--config-yaml: node: unknown field 'idd'");

  // And without either, there is nothing to run.
  EXPECT_EQ(loadBootstrap(Options{}).status().message(),
            "no configuration: at least one of --config-path or --config-yaml is required");
}

TEST(BootstrapTest, MinimalHcmListenerIsValidAndUnnamedListenersGetNames) {
  std::string yaml = kHcmListener;
  EXPECT_EQ(bootstrapError(yaml + R"(
  clusters:
  - name: backend
    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]}
)"),
            "");
  Options options;
  options.config_yaml = R"(
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains: [{filters: [{typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
)";
  absl::StatusOr<Bootstrap> bootstrap = loadBootstrap(options);
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  EXPECT_EQ(bootstrap->static_resources().listeners(0).name(), "listener_0");
}

TEST(BootstrapTest, DuplicateListenerName) {
  EXPECT_EQ(bootstrapError(R"(
static_resources:
  listeners:
  - name: x
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains: [{filters: [{typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
  - name: x
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains: [{filters: [{typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
)"),
            "static_resources.listeners[1]: duplicate listener name 'x'");
}

TEST(BootstrapTest, DuplicateListenerAddress) {
  EXPECT_EQ(bootstrapError(R"(
static_resources:
  listeners:
  - name: a
    address: {socket_address: {address: 127.0.0.1, port_value: 8000}}
    filter_chains: [{filters: [{typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
  - name: b
    address: {socket_address: {address: 127.0.0.1, port_value: 8000}}
    filter_chains: [{filters: [{typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
)"),
            "static_resources.listeners[1]: listener 'b' has duplicate address '127.0.0.1:8000' as "
            "existing listener 'a'");
}

TEST(BootstrapTest, UnsupportedNetworkFilter) {
  // Known to protobuf (it is in our protos) but not a network filter.
  EXPECT_EQ(
      bootstrapError(R"(
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.echo
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)"),
      "static_resources.listeners[0].filter_chains[0].filters[0].typed_config: unsupported "
      "network filter type 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'");
}

TEST(BootstrapTest, TerminalFilterMustBeLast) {
  constexpr char kTcp[] =
      R"({name: envoy.filters.network.tcp_proxy, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}})";
  EXPECT_EQ(bootstrapError(std::string(R"(
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains: [{filters: [)") +
                           kTcp + ", " + kTcp + "]}]\n"),
            "static_resources.listeners[0].filter_chains[0].filters[0]: terminal filter named "
            "'envoy.filters.network.tcp_proxy' of type "
            "'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy' must be the last filter in a "
            "network filter chain");
}

TEST(BootstrapTest, HttpFiltersMustEndWithTheRouter) {
  std::string yaml = kHcmListener;
  // No HTTP filters at all.
  std::string no_filters = yaml.substr(0, yaml.find("          http_filters:"));
  EXPECT_EQ(bootstrapError(no_filters),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters: "
            "the last HTTP filter must be envoy.filters.http.router; none is configured");

  // An HTTP filter we do not implement.
  EXPECT_EQ(bootstrapError(no_filters + R"(
          http_filters:
          - name: envoy.filters.http.health_check
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy}
          - name: envoy.filters.http.router
)"),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]"
            ".typed_config: unsupported HTTP filter type "
            "'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy'");

  // The router in the middle.
  EXPECT_EQ(
      bootstrapError(no_filters + R"(
          http_filters:
          - name: envoy.filters.http.router
          - name: envoy.filters.http.router
)"),
      "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]: "
      "terminal filter named 'envoy.filters.http.router' must be the last filter in a http "
      "filter chain");

  // An unknown optional filter is skipped, as Envoy does.
  EXPECT_EQ(bootstrapError(no_filters + R"(
          http_filters:
          - name: envoy.filters.http.grpc_stats
            is_optional: true
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy}
          - name: envoy.filters.http.router
)"),
            "");
}

TEST(BootstrapTest, HcmNeedsARouteTable) {
  std::string yaml = kHcmListener;
  const size_t from = yaml.find("          route_config:");
  const size_t to = yaml.find("          http_filters:");
  EXPECT_EQ(bootstrapError(yaml.substr(0, from) + yaml.substr(to)),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config: one of rds or "
            "route_config is required");
  // rds over ads needs ads_config.
  EXPECT_EQ(bootstrapError(yaml.substr(0, from) +
                           "          rds: {route_config_name: r, config_source: {ads: {}}}\n" +
                           yaml.substr(to)),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.rds."
            "config_source.ads: ads is used but dynamic_resources.ads_config is not set");
}

TEST(BootstrapTest, ClusterChecks) {
  auto cluster = [](const std::string& fields) {
    return bootstrapError("static_resources: {clusters: [{name: c, " + fields + "}]}");
  };
  EXPECT_EQ(cluster("lb_policy: CLUSTER_PROVIDED, load_assignment: {}"),
            "static_resources.clusters[0].lb_policy: unsupported load balancing policy "
            "'CLUSTER_PROVIDED'");
  EXPECT_EQ(cluster("type: ORIGINAL_DST"),
            "static_resources.clusters[0].type: unsupported cluster type 'ORIGINAL_DST' (only "
            "STATIC, STRICT_DNS, LOGICAL_DNS and EDS are supported)");
  EXPECT_EQ(cluster("type: STATIC"),
            "static_resources.clusters[0].load_assignment: required for a STATIC cluster");
  EXPECT_EQ(cluster("type: EDS"),
            "static_resources.clusters[0].eds_cluster_config: cannot create an EDS cluster without "
            "an EDS config");
  EXPECT_EQ(cluster("connect_timeout: 0s, load_assignment: {}"),
            "static_resources.clusters[0].connect_timeout: must be greater than 0s");
  EXPECT_EQ(cluster("load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
                    "{socket_address: {address: backend.local, port_value: 80}}}}]}]}"),
            "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint."
            "address.socket_address.address: malformed IP address: backend.local");
  EXPECT_EQ(cluster("load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
                    "{socket_address: {address: 10.0.0.1, port_value: 70000}}}}]}]}"),
            "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint."
            "address.socket_address.port_value: 70000 is out of range (0-65535)");
  EXPECT_EQ(bootstrapError("static_resources: {clusters: [{name: c, load_assignment: {}}, "
                           "{name: c, load_assignment: {}}]}"),
            "static_resources.clusters[1]: duplicate cluster name 'c'");
  EXPECT_EQ(cluster("load_assignment: {}, typed_extension_protocol_options: {foo: {}}"),
            "static_resources.clusters[0].typed_extension_protocol_options['foo']: unsupported "
            "protocol options");
}

TEST(BootstrapTest, DnsClusterChecks) {
  auto cluster = [](const std::string& fields) {
    return bootstrapError("static_resources: {clusters: [{name: c, " + fields + "}]}");
  };
  const std::string named =
      "load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
      "{address: backend.test, port_value: 80}}}}]}]}";
  const std::string cares =
      "typed_dns_resolver_config: {name: envoy.network.dns_resolver.cares, typed_config: "
      "{\"@type\": type.googleapis.com/"
      "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig, ";
  // Names are what DNS clusters resolve; every implemented field together is fine.
  EXPECT_EQ(cluster("type: STRICT_DNS, " + named + ", dns_refresh_rate: 1s, respect_dns_ttl: " +
                    "true, dns_lookup_family: V4_PREFERRED, dns_failure_refresh_rate: " +
                    "{base_interval: 1s, max_interval: 5s}, " + cares +
                    "resolvers: [{socket_address: {address: 127.0.0.1, port_value: 53}}], " +
                    "dns_resolver_options: {use_tcp_for_dns_lookups: true, " +
                    "no_default_search_domain: true}}}"),
            "");
  EXPECT_EQ(cluster("type: LOGICAL_DNS, " + named), "");
  EXPECT_EQ(cluster("type: LOGICAL_DNS, load_assignment: {endpoints: [{lb_endpoints: [{endpoint: "
                    "{address: {socket_address: {address: a.test, port_value: 80}}}}, {endpoint: "
                    "{address: {socket_address: {address: b.test, port_value: 80}}}}]}]}"),
            "static_resources.clusters[0].load_assignment: LOGICAL_DNS clusters must have a single "
            "locality_lb_endpoint and a single lb_endpoint");
  EXPECT_EQ(cluster("type: STRICT_DNS, dns_refresh_rate: 0s, " + named),
            "static_resources.clusters[0].dns_refresh_rate: must be at least 1ms");
  EXPECT_EQ(cluster("type: STRICT_DNS, dns_failure_refresh_rate: {base_interval: 2s, "
                    "max_interval: 1s}, " +
                    named),
            "static_resources.clusters[0].dns_failure_refresh_rate: dns_failure_refresh_rate "
            "must have max_interval greater than or equal to the base_interval");
  EXPECT_EQ(cluster("type: STRICT_DNS, " + named + ", " + cares + "resolvers: []}}"),
            "static_resources.clusters[0].typed_dns_resolver_config.typed_config.resolvers: at "
            "least one resolver is required");
  EXPECT_EQ(cluster("type: STRICT_DNS, " + named +
                    ", typed_dns_resolver_config: {name: envoy.network.dns_resolver.apple, "
                    "typed_config: {\"@type\": type.googleapis.com/google.protobuf.Struct}}"),
            "static_resources.clusters[0].typed_dns_resolver_config: unsupported DNS resolver "
            "'type.googleapis.com/google.protobuf.Struct' (only envoy.network.dns_resolver.cares "
            "is supported)");
  // What c-ares could do but the proxy does not (yet): refused by path.
  EXPECT_EQ(cluster("type: STRICT_DNS, " + named + ", " + cares +
                    "resolvers: [{socket_address: {address: 127.0.0.1, port_value: 53}}], " +
                    "use_resolvers_as_fallback: true}}"),
            "static_resources.clusters[0].typed_dns_resolver_config.typed_config."
            "use_resolvers_as_fallback: not supported");
  EXPECT_EQ(cluster("type: STRICT_DNS, " + named +
                    ", dns_resolvers: [{socket_address: {address: "
                    "127.0.0.1, port_value: 53}}]"),
            "static_resources.clusters[0].dns_resolvers: not supported");
  // DNS settings mean nothing on other cluster types: refused there, not ignored.
  EXPECT_EQ(cluster("type: STATIC, dns_refresh_rate: 1s, load_assignment: {}"),
            "static_resources.clusters[0].dns_refresh_rate: not supported (only for "
            "STRICT_DNS/LOGICAL_DNS)");
}

TEST(BootstrapTest, ListenerChecks) {
  auto listener = [](const std::string& fields) {
    return bootstrapError("static_resources: {listeners: [{name: l, " + fields + "}]}");
  };
  EXPECT_EQ(listener("filter_chains: []"), "static_resources.listeners[0].address: required");
  EXPECT_EQ(listener("address: {socket_address: {address: 127.0.0.1, port_value: 65536}}"),
            "static_resources.listeners[0].address.socket_address.port_value: 65536 is out of "
            "range (0-65535)");
  EXPECT_EQ(listener("address: {socket_address: {address: 127.0.0.1, port_value: 80}}"),
            "static_resources.listeners[0].filter_chains: no filter chains specified");
  EXPECT_EQ(listener("address: {pipe: {path: /tmp/sock}}"),
            "static_resources.listeners[0].address: only socket_address is supported");
}

TEST(BootstrapTest, AdsNeedsAKnownCluster) {
  EXPECT_EQ(bootstrapError(R"(
dynamic_resources:
  ads_config: {api_type: GRPC, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}
)"),
            "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown "
            "cluster 'xds' (it must be a static cluster)");
  EXPECT_EQ(bootstrapError(R"(
dynamic_resources:
  ads_config: {api_type: REST, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}
)"),
            "dynamic_resources.ads_config.api_type: unsupported api type 'REST' (expected GRPC or "
            "DELTA_GRPC)");
  EXPECT_EQ(bootstrapError("dynamic_resources: {lds_config: {path: /etc/lds.yaml}}"),
            "dynamic_resources.lds_config: file-based config sources are not supported (use ads or "
            "api_config_source)");
}

// A config source inside a resource names where its RDS/EDS comes from: the proxy has one
// stream per type (ADS, else the LDS/CDS server's), so an api_config_source must be that
// stream (per-type mode in Envoy's configs writes them so), and anything else is refused.
TEST(BootstrapTest, ResourceConfigSourcesMustNameTheStreamThatServesTheirType) {
  const Bootstrap per_type = parseBootstrap(R"(
dynamic_resources:
  lds_config: {api_config_source: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}}
  cds_config: {api_config_source: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}}
)");
  const auto cluster = [](const std::string& eds_config) {
    envoy::config::cluster::v3::Cluster c;
    EXPECT_TRUE(
        loadFromYaml("name: c\ntype: EDS\neds_cluster_config: {eds_config: " + eds_config + "}", c)
            .ok());
    return c;
  };
  const auto check = [](const envoy::config::cluster::v3::Cluster& c, const Bootstrap& b) {
    return std::string(checkResourceConfigSources(c, b.dynamic_resources()).message());
  };
  // The CDS server's own stream: served by it.
  const std::string same =
      "{api_config_source: {api_type: GRPC, transport_api_version: V3, grpc_services: "
      "[{envoy_grpc: {cluster_name: xds}}]}}";
  EXPECT_EQ(check(cluster(same), per_type), "");
  // Another server, another protocol, an own rate limit, a V2 transport: refused.
  EXPECT_EQ(check(cluster("{api_config_source: {api_type: GRPC, transport_api_version: V3, "
                          "grpc_services: [{envoy_grpc: {cluster_name: other}}]}}"),
                  per_type),
            "eds_cluster_config.eds_config.api_config_source.grpc_services: cluster 'other': a "
            "management server other than cluster 'xds' "
            "(dynamic_resources.cds_config.api_config_source), which the proxy fetches EDS from, "
            "is not supported");
  EXPECT_EQ(check(cluster("{api_config_source: {api_type: DELTA_GRPC, transport_api_version: "
                          "V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}}"),
                  per_type),
            "eds_cluster_config.eds_config.api_config_source.api_type: DELTA_GRPC on the "
            "state-of-the-world stream of dynamic_resources.cds_config.api_config_source is not "
            "supported");
  EXPECT_EQ(check(cluster("{api_config_source: {api_type: GRPC, transport_api_version: V3, "
                          "grpc_services: [{envoy_grpc: {cluster_name: xds}}], "
                          "rate_limit_settings: {max_tokens: 5}}}"),
                  per_type),
            "eds_cluster_config.eds_config.api_config_source.rate_limit_settings: not "
            "supported: EDS shares the stream of dynamic_resources.cds_config.api_config_source "
            "and its rate limit");
  EXPECT_EQ(check(cluster("{api_config_source: {api_type: GRPC, grpc_services: [{envoy_grpc: "
                          "{cluster_name: xds}}]}}"),
                  per_type),
            "eds_cluster_config.eds_config.api_config_source.transport_api_version: V3 is "
            "required (got AUTO)");
  // `ads` without ADS would be fetched from the CDS server instead: refused, as Envoy does.
  EXPECT_EQ(check(cluster("{ads: {}}"), per_type),
            "eds_cluster_config.eds_config.ads: ads is used but dynamic_resources.ads_config is "
            "not set");

  // With ADS, RDS and EDS come over it: an api_config_source naming the ADS server (SotW on a
  // SotW stream) is that stream.
  const Bootstrap ads = parseBootstrap(R"(
dynamic_resources:
  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}
  lds_config: {ads: {}}
  cds_config: {ads: {}}
)");
  EXPECT_EQ(check(cluster(same), ads), "");
  EXPECT_EQ(check(cluster("{ads: {}}"), ads), "");
  // Without dynamic_resources there is no stream at all.
  EXPECT_EQ(check(cluster(same), Bootstrap()),
            "eds_cluster_config.eds_config.api_config_source: not supported: the proxy fetches "
            "EDS on the ADS stream or on the stream of dynamic_resources.cds_config, and "
            "dynamic_resources configures neither");

  // A listener's RDS, and the same checks on a whole bootstrap (static resources by path).
  EXPECT_EQ(bootstrapError(R"(
static_resources:
  clusters:
  - name: xds
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment: {cluster_name: xds, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18000}}}}]}]}
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          rds:
            route_config_name: local_route
            config_source: {api_config_source: {api_type: GRPC, transport_api_version: V3, grpc_services: [{google_grpc: {target_uri: "127.0.0.1:18001"}}]}}
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
dynamic_resources:
  lds_config: {api_config_source: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}}
)"),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.rds."
            "config_source.api_config_source.grpc_services: target '127.0.0.1:18001': a "
            "management server other than cluster 'xds' "
            "(dynamic_resources.lds_config.api_config_source), which the proxy fetches RDS from, "
            "is not supported");
}

}  // namespace
}  // namespace Proxy::Config
