// proxy_config: the YAML/JSON loader, the command line, and bootstrap validation.
// Error strings are asserted exactly: they are what an operator reads when the proxy refuses a
// config, so a change to one is a change to the product.

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/route/v3/route.pb.h"

#include "proxy/config/bootstrap.h"
#include "proxy/config/filter_config.h"
#include "proxy/config/message_util.h"
#include "proxy/config/options.h"
#include "proxy/config/validation.h"

#include "gtest/gtest.h"

namespace Proxy::Config {
namespace {

using envoy::config::bootstrap::v3::Bootstrap;

// Writes `contents` to a fresh file under the test's temp dir and returns its path.
std::string writeTempFile(const std::string& name, const std::string& contents) {
  static int counter = 0;
  const std::string path = ::testing::TempDir() + "/config_test_" + std::to_string(getpid()) + "_" +
                           std::to_string(counter++) + "_" + name;
  std::ofstream(path) << contents;
  return path;
}

// The message of loading `yaml` as a Bootstrap ("" when it loads).
std::string yamlError(const std::string& yaml) {
  Bootstrap bootstrap;
  absl::Status status = loadFromYaml(yaml, bootstrap);
  return std::string(status.message());
}

// The message of loading and validating `yaml` as the bootstrap ("" when it is accepted).
std::string bootstrapError(const std::string& yaml) {
  Options options;
  options.config_yaml = yaml;
  absl::StatusOr<Bootstrap> bootstrap = loadBootstrap(options);
  return std::string(bootstrap.status().message());
}

// `yaml` as a Bootstrap (the test fails if it does not parse).
Bootstrap parseBootstrap(const std::string& yaml) {
  Bootstrap bootstrap;
  absl::Status status = loadFromYaml(yaml, bootstrap);
  EXPECT_TRUE(status.ok()) << status;
  return bootstrap;
}

// A listener with an HTTP connection manager, an inline route and the router filter: the
// smallest thing validation accepts. `{filters}` / `{http_filters}` are substituted by tests.
constexpr char kHcmListener[] = R"(
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: backend}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";

// ---------------------------------------------------------------------------------------------
// The YAML loader

TEST(MessageUtilTest, UnknownFieldNamesItsPath) {
  // A typo deep inside a listener: the message walks the path to it.
  EXPECT_EQ(yamlError(R"(
static_resources:
  listeners:
  - name: l
    address:
      socket_address: {address: 127.0.0.1, prot: 80}
)"),
            "static_resources.listeners[0].address.socket_address: unknown field 'prot'");
}

TEST(MessageUtilTest, BadEnumValueNamesTheEnum) {
  EXPECT_EQ(yamlError(R"(
static_resources:
  clusters:
  - name: c
    lb_policy: ROUND_ROBINN
)"),
            "static_resources.clusters[0].lb_policy: invalid value 'ROUND_ROBINN' for enum "
            "envoy.config.cluster.v3.Cluster.LbPolicy");
}

TEST(MessageUtilTest, DurationsMustBeStringsLikeFiveSeconds) {
  EXPECT_EQ(yamlError("static_resources: {clusters: [{name: c, connect_timeout: abc}]}"),
            "static_resources.clusters[0].connect_timeout: invalid duration 'abc'");
  // A bare number is rejected as Envoy rejects it: a Duration is a string in JSON.
  EXPECT_EQ(yamlError("static_resources: {clusters: [{name: c, connect_timeout: 5}]}"),
            "static_resources.clusters[0].connect_timeout: invalid duration '5'");
  // Fractions are fine.
  Bootstrap bootstrap;
  ASSERT_TRUE(
      loadFromYaml("static_resources: {clusters: [{name: c, connect_timeout: 0.25s}]}", bootstrap)
          .ok());
  EXPECT_EQ(bootstrap.static_resources().clusters(0).connect_timeout().nanos(), 250000000);
}

TEST(MessageUtilTest, UnknownAnyTypeIsReported) {
  EXPECT_EQ(yamlError(R"(
static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: f
        typed_config: {"@type": type.googleapis.com/foo.Bar, x: 1}
)"),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config: unknown type "
            "'type.googleapis.com/foo.Bar'");
}

TEST(MessageUtilTest, FieldsInsideAnAnyAreCheckedAgainstItsType) {
  // The Any's fields are walked with the HttpConnectionManager schema.
  EXPECT_EQ(yamlError(R"(
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefx: x
)"),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config: unknown field "
            "'stat_prefx'");
}

TEST(MessageUtilTest, TwoMembersOfOneOneofAreRejected) {
  EXPECT_EQ(yamlError(R"(
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: 80, named_port: http}}
)"),
            "static_resources.listeners[0].address.socket_address: only one of 'port_value' and "
            "'named_port' may be set (oneof port_specifier)");
}

TEST(MessageUtilTest, ScalarsAreTypedByTheirField) {
  EXPECT_EQ(yamlError("static_resources: {listeners: [{address: {socket_address: "
                      "{port_value: eighty}}}]}"),
            "static_resources.listeners[0].address.socket_address.port_value: invalid value "
            "'eighty' for uint32");
  EXPECT_EQ(yamlError("static_resources: {listeners: [{address: {socket_address: "
                      "{port_value: -1}}}]}"),
            "static_resources.listeners[0].address.socket_address.port_value: invalid value '-1' "
            "for uint32");
  EXPECT_EQ(yamlError("static_resources: {listeners: [{reuse_port: maybe}]}"),
            "static_resources.listeners[0].reuse_port: invalid value 'maybe' for bool");
  EXPECT_EQ(yamlError("static_resources: {listeners: {name: x}}"),
            "static_resources.listeners: expected a list, got a mapping");
  EXPECT_EQ(yamlError("static_resources: {listeners: [{name: [a, b]}]}"),
            "static_resources.listeners[0].name: expected a string, got a list");
  EXPECT_EQ(yamlError("node: 7"), "node: expected a mapping (envoy.config.core.v3.Node), got '7'");

  // A string field takes "true" and "80" as text, whatever YAML would guess.
  Bootstrap bootstrap;
  ASSERT_TRUE(loadFromYaml("node: {id: true, cluster: 80}", bootstrap).ok());
  EXPECT_EQ(bootstrap.node().id(), "true");
  EXPECT_EQ(bootstrap.node().cluster(), "80");
}

TEST(MessageUtilTest, YamlSyntaxErrorsCarryLineAndColumn) {
  EXPECT_EQ(yamlError("node:\n  id: a\n  cluster: [b\n"),
            "yaml parse error at line 4, column 1: end of sequence flow not found");
}

TEST(MessageUtilTest, BytesMustBeBase64) {
  EXPECT_EQ(yamlError(R"(
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          route_config:
            virtual_hosts:
            - routes:
              - direct_response: {status: 200, body: {inline_bytes: "!!!"}}
)"),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config."
            "virtual_hosts[0].routes[0].direct_response.body.inline_bytes: invalid base64 '!!!' "
            "for bytes");
}

TEST(MessageUtilTest, StringsMustBeUtf8) {
  EXPECT_EQ(yamlError("node: {id: \"a\xff\"}"), "node.id: invalid UTF-8 in a string");
  EXPECT_EQ(yamlError("node: {id: \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"), "");
  EXPECT_EQ(yamlError("node: {id: \"\xc0\xaf\"}"), "node.id: invalid UTF-8 in a string");
}

TEST(MessageUtilTest, WellKnownTypesAndJsonNames) {
  Bootstrap bootstrap;
  absl::Status status = loadFromYaml(R"(
node:
  id: n1
  metadata: {team: edge, replicas: 3, canary: true, tags: [a, b], nothing: null}
static_resources:
  listeners:
  - name: l
    perConnectionBufferLimitBytes: 1024      # JSON name, UInt32Value wrapper
    enable_reuse_port: false                 # BoolValue
stats_flush_interval: 1.5s
)",
                                     bootstrap);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(bootstrap.node().metadata().fields().at("team").string_value(), "edge");
  EXPECT_EQ(bootstrap.node().metadata().fields().at("replicas").number_value(), 3);
  EXPECT_TRUE(bootstrap.node().metadata().fields().at("canary").bool_value());
  EXPECT_EQ(bootstrap.node().metadata().fields().at("tags").list_value().values_size(), 2);
  EXPECT_TRUE(bootstrap.node().metadata().fields().at("nothing").has_null_value());
  EXPECT_EQ(bootstrap.static_resources().listeners(0).per_connection_buffer_limit_bytes().value(),
            1024u);
  EXPECT_TRUE(bootstrap.static_resources().listeners(0).has_enable_reuse_port());
  EXPECT_EQ(bootstrap.stats_flush_interval().seconds(), 1);
  EXPECT_EQ(bootstrap.stats_flush_interval().nanos(), 500000000);
}

TEST(MessageUtilTest, AnyResolvesEveryTypeOfOurProtos) {
  // An access logger is never referenced by our code, yet its "@type" must resolve: the
  // descriptor pool has to hold every message of xds_protos, not only the ones the linker kept.
  Bootstrap bootstrap;
  absl::Status status = loadFromYaml(R"(
static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
)",
                                     bootstrap);
  EXPECT_TRUE(status.ok()) << status;
}

TEST(MessageUtilTest, AnchorsAndMergeKeys) {
  // YAML anchors are common in hand-written Envoy configs; merge keys ("<<") too.
  Bootstrap bootstrap;
  absl::Status status = loadFromYaml(R"(
static_resources:
  clusters:
  - &base
    name: a
    connect_timeout: 1s
    lb_policy: RANDOM
  - <<: *base
    name: b
)",
                                     bootstrap);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(bootstrap.static_resources().clusters_size(), 2);
  EXPECT_EQ(bootstrap.static_resources().clusters(1).name(), "b");
  EXPECT_EQ(bootstrap.static_resources().clusters(1).lb_policy(),
            envoy::config::cluster::v3::Cluster::RANDOM);
  EXPECT_EQ(bootstrap.static_resources().clusters(1).connect_timeout().seconds(), 1);
}

TEST(MessageUtilTest, FieldGivenTwiceIsRejected) {
  // Once by its proto name and once by its JSON name.
  EXPECT_EQ(yamlError("node: {user_agent_name: a, userAgentName: b}"),
            "node: field 'user_agent_name' is set more than once");
}

TEST(MessageUtilTest, LoadFromFilePicksTheFormatByExtension) {
  // JSON: the same walk, so errors read the same.
  Bootstrap bootstrap;
  const std::string json = writeTempFile("b.json", R"({"node": {"id": "from-json"}})");
  ASSERT_TRUE(loadFromFile(json, bootstrap).ok());
  EXPECT_EQ(bootstrap.node().id(), "from-json");

  const std::string bad_json = writeTempFile("bad.json", R"({"node": {"idd": "x"}})");
  EXPECT_EQ(loadFromFile(bad_json, bootstrap).message(), "node: unknown field 'idd'");

  // .yaml, .yml and anything else: YAML.
  const std::string yaml = writeTempFile("b.conf", "node: {id: from-yaml}\n");
  ASSERT_TRUE(loadFromFile(yaml, bootstrap).ok());
  EXPECT_EQ(bootstrap.node().id(), "from-yaml");

  EXPECT_EQ(loadFromFile("/nonexistent/envoy.yaml", bootstrap).message(),
            "unable to read file '/nonexistent/envoy.yaml': No such file or directory");
}

// ---------------------------------------------------------------------------------------------
// The command line

// Parses a command line given as words (argv[0] included).
absl::StatusOr<Options> parse(std::vector<std::string> words) {
  std::vector<char*> argv;
  for (std::string& w : words) {
    argv.push_back(w.data());
  }
  argv.push_back(nullptr);
  return parseOptions(static_cast<int>(words.size()), argv.data());
}

TEST(OptionsTest, EnvoyStyleFlags) {
  absl::StatusOr<Options> options = parse({"proxy",
                                           "-c",
                                           "/etc/proxy.yaml",
                                           "--concurrency",
                                           "3",
                                           "-l",
                                           "debug",
                                           "--service-node",
                                           "node-1",
                                           "--service-cluster",
                                           "edge",
                                           "--service-zone",
                                           "z1",
                                           "--drain-time-s",
                                           "5",
                                           "--mode",
                                           "validate",
                                           "--admin-address-path",
                                           "/tmp/a",
                                           "--base-id",
                                           "7",
                                           "--disable-hot-restart",
                                           "--parent-shutdown-time-s",
                                           "10",
                                           "--config-yaml",
                                           "node: {id: x}"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->config_path, "/etc/proxy.yaml");
  EXPECT_EQ(options->concurrency, 3u);
  EXPECT_EQ(options->log_level, LogLevel::Debug);
  EXPECT_EQ(options->service_node, "node-1");
  EXPECT_EQ(options->service_cluster, "edge");
  EXPECT_EQ(options->service_zone, "z1");
  EXPECT_EQ(options->drain_time, std::chrono::seconds(5));
  EXPECT_EQ(options->mode, Mode::Validate);
  EXPECT_EQ(options->admin_address_path, "/tmp/a");
  EXPECT_EQ(options->base_id, 7u);
  EXPECT_TRUE(options->disable_hot_restart);
  EXPECT_EQ(options->config_yaml, "node: {id: x}");
}

TEST(OptionsTest, Defaults) {
  absl::StatusOr<Options> options = parse({"proxy"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->mode, Mode::Serve);
  EXPECT_EQ(options->drain_time, std::chrono::seconds(600));
  EXPECT_EQ(options->log_level, LogLevel::Info);
  EXPECT_GE(options->concurrency, 1u);
  EXPECT_FALSE(options->help);
}

TEST(OptionsTest, LongFormsAndEqualsSigns) {
  absl::StatusOr<Options> options =
      parse({"proxy", "--config-path=/x.json", "--log-level=warn", "--concurrency=1"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->config_path, "/x.json");
  EXPECT_EQ(options->log_level, LogLevel::Warn);
  EXPECT_EQ(options->concurrency, 1u);
  EXPECT_TRUE(parse({"proxy", "--help"})->help);
  EXPECT_TRUE(parse({"proxy", "--version"})->version);
}

TEST(OptionsTest, BadFlagsAreNamed) {
  EXPECT_EQ(parse({"proxy", "--foo"}).status().message(), "unknown option '--foo'");
  EXPECT_EQ(parse({"proxy", "--foo=1"}).status().message(), "unknown option '--foo'");
  EXPECT_EQ(parse({"proxy", "-x"}).status().message(), "unknown option '-x'");
  EXPECT_EQ(parse({"proxy", "--concurrency", "x"}).status().message(),
            "--concurrency: expected a positive integer, got 'x'");
  EXPECT_EQ(parse({"proxy", "--concurrency", "0"}).status().message(),
            "--concurrency: expected a positive integer, got '0'");
  EXPECT_EQ(parse({"proxy", "--drain-time-s", "-1"}).status().message(),
            "--drain-time-s: expected a non-negative integer, got '-1'");
  EXPECT_EQ(parse({"proxy", "--mode", "init_only"}).status().message(),
            "--mode: expected 'serve' or 'validate', got 'init_only'");
  EXPECT_EQ(parse({"proxy", "-l", "loud"}).status().message(),
            "--log-level: invalid log level 'loud' (expected trace, debug, info, warning, error, "
            "critical or off)");
  EXPECT_EQ(parse({"proxy", "--config-path"}).status().message(),
            "option '--config-path' requires a value");
  EXPECT_EQ(parse({"proxy", "envoy.yaml"}).status().message(), "unexpected argument 'envoy.yaml'");
}

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
  EXPECT_EQ(
      cluster("lb_policy: RING_HASH, load_assignment: {}"),
      "static_resources.clusters[0].lb_policy: unsupported load balancing policy 'RING_HASH'");
  EXPECT_EQ(cluster("type: STRICT_DNS"),
            "static_resources.clusters[0].type: unsupported cluster type 'STRICT_DNS' (only STATIC "
            "and EDS are supported)");
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
