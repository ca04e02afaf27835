// proxy_config's YAML/JSON loader (message_util.h): field paths, types, Any, anchors, files.
// Error strings are asserted exactly (config_test_util.h).

#include "test/unit/config/config_test_util.h"

namespace Proxy::Config {
namespace {

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

}  // namespace
}  // namespace Proxy::Config
