// Resolving the xDS client config from a bootstrap written the way Envoy users write it.

#include "xds_client/config.h"

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "xds_client/resource_type.h"

namespace Proxy::Xds {
namespace {

envoy::config::bootstrap::v3::Bootstrap bootstrapFromJson(const std::string& json) {
  envoy::config::bootstrap::v3::Bootstrap bootstrap;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &bootstrap);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return bootstrap;
}

// A bootstrap with one static cluster `xds_cluster` at 127.0.0.1:18000; `cluster_extra` is
// spliced into the cluster, `dynamic` is the dynamic_resources object.
std::string bootstrapJson(const std::string& dynamic, const std::string& cluster_extra) {
  return R"({
    "node": {"id": "node-1", "cluster": "edge", "user_agent_name": "someone-else"},
    "static_resources": {"clusters": [{
      "name": "xds_cluster",
      "type": "STATIC",
      "connect_timeout": "1s",
      "load_assignment": {"cluster_name": "xds_cluster", "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                     "port_value": 18000}}}}]}]})" +
         cluster_extra + R"(
    }]},
    "dynamic_resources": )" +
         dynamic + "}";
}

// How Envoy users write HTTP/2 for a cluster today.
const std::string kHttp2 = R"(,
  "typed_extension_protocol_options": {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
      "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      "explicit_http_config": {"http2_protocol_options": {}}}})";

const std::string kAds = R"({
  "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                 "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]},
  "lds_config": {"ads": {}, "resource_api_version": "V3"},
  "cds_config": {"ads": {}, "resource_api_version": "V3", "initial_fetch_timeout": "3s"}})";

TEST(XdsConfigTest, AdsThroughAStaticHttp2Cluster) {
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(kAds, kHttp2)));
  ASSERT_TRUE(config.ok()) << config.status();

  // The management server's address comes from the cluster's first endpoint.
  ASSERT_TRUE(config->ads.has_value());
  EXPECT_EQ(config->ads->target, "ipv4:127.0.0.1:18000");
  EXPECT_FALSE(config->ads->delta);
  // No rate_limit_settings: no request rate limit, as in Envoy.
  EXPECT_FALSE(config->ads->rate_limit.enabled);

  // LDS and CDS over ADS; RDS, EDS and SDS follow on ADS with Envoy's default timeout. (SDS is
  // only where secrets would be fetched: the proxy asks for secrets by name once a TLS context
  // names one with sds_config, never as a wildcard, as Envoy.)
  ASSERT_EQ(config->types.size(), 5u);
  EXPECT_TRUE(config->types.at(std::string(kListenerTypeUrl)).ads);
  EXPECT_EQ(config->types.at(std::string(kListenerTypeUrl)).initial_fetch_timeout,
            std::chrono::seconds(15));
  EXPECT_EQ(config->types.at(std::string(kClusterTypeUrl)).initial_fetch_timeout,
            std::chrono::seconds(3));
  EXPECT_TRUE(config->types.at(std::string(kRouteConfigurationTypeUrl)).ads);
  EXPECT_TRUE(config->types.at(std::string(kClusterLoadAssignmentTypeUrl)).ads);
  EXPECT_TRUE(config->types.at(std::string(kSecretTypeUrl)).ads);

  // The node is the bootstrap's, with our own user agent.
  EXPECT_EQ(config->node.id(), "node-1");
  EXPECT_EQ(config->node.cluster(), "edge");
  EXPECT_EQ(config->node.user_agent_name(), "xds-proxy");
  EXPECT_EQ(config->node.user_agent_build_version().version().minor_number(), 1u);
  ASSERT_EQ(config->node.client_features_size(), 1);
  EXPECT_EQ(config->node.client_features(0), "xds.config.resource-in-sotw");
}

TEST(XdsConfigTest, OlderHttp2ProtocolOptionsFieldIsAccepted) {
  auto config = xdsConfigFromBootstrap(
      bootstrapFromJson(bootstrapJson(kAds, R"(, "http2_protocol_options": {})")));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ads->target, "ipv4:127.0.0.1:18000");
}

TEST(XdsConfigTest, ClusterWithoutHttp2IsRejectedLikeEnvoyDoes) {
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(kAds, "")));
  EXPECT_EQ(config.status().message(),
            "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: cluster "
            "'xds_cluster' is not configured for HTTP/2, which gRPC requires: set "
            "typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3."
            "HttpProtocolOptions\"] to {explicit_http_config: {http2_protocol_options: {}}}");
}

TEST(XdsConfigTest, UnknownClusterIsNamed) {
  const std::string dynamic = R"({
    "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                   "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}]}})";
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(dynamic, kHttp2)));
  EXPECT_EQ(config.status().message(),
            "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown "
            "cluster 'xds'");
}

TEST(XdsConfigTest, TransportApiVersionV3IsRequired) {
  const std::string dynamic = R"({
    "ads_config": {"api_type": "GRPC",
                   "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}})";
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(dynamic, kHttp2)));
  EXPECT_EQ(config.status().message(),
            "dynamic_resources.ads_config.transport_api_version: V3 is required (got AUTO)");
}

TEST(XdsConfigTest, RestIsNotSupported) {
  const std::string dynamic = R"({
    "lds_config": {"api_config_source": {"api_type": "REST", "transport_api_version": "V3",
                                         "cluster_names": ["xds_cluster"]}}})";
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(dynamic, kHttp2)));
  EXPECT_EQ(config.status().message(),
            "dynamic_resources.lds_config.api_config_source.api_type: REST is not supported (use "
            "GRPC or DELTA_GRPC)");
}

TEST(XdsConfigTest, AdsSourceWithoutAdsConfig) {
  const std::string dynamic = R"({"lds_config": {"ads": {}}})";
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(dynamic, kHttp2)));
  EXPECT_EQ(config.status().message(),
            "dynamic_resources.lds_config.ads: dynamic_resources.ads_config is not set");
}

TEST(XdsConfigTest, PerTypeDeltaStreamsWithRateLimitAndGoogleGrpc) {
  const std::string dynamic = R"({
    "lds_config": {"initial_fetch_timeout": "0s", "api_config_source": {
      "api_type": "DELTA_GRPC", "transport_api_version": "V3",
      "grpc_services": [{"google_grpc": {"target_uri": "dns:///xds.internal:18000",
                                         "stat_prefix": "xds"}}],
      "rate_limit_settings": {"max_tokens": 5, "fill_rate": 0.5}}},
    "cds_config": {"api_config_source": {
      "api_type": "GRPC", "transport_api_version": "V3",
      "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}}})";
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(dynamic, kHttp2)));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->ads.has_value());

  const auto& lds = config->types.at(std::string(kListenerTypeUrl));
  EXPECT_FALSE(lds.ads);
  EXPECT_EQ(lds.stream.target, "dns:///xds.internal:18000");
  EXPECT_TRUE(lds.stream.delta);
  EXPECT_TRUE(lds.stream.rate_limit.enabled);
  EXPECT_EQ(lds.stream.rate_limit.max_tokens, 5u);
  EXPECT_EQ(lds.stream.rate_limit.fill_rate, 0.5);
  EXPECT_EQ(lds.initial_fetch_timeout, std::chrono::milliseconds(0));
  // RDS follows LDS's server (its own per-type stream).
  const auto& rds = config->types.at(std::string(kRouteConfigurationTypeUrl));
  EXPECT_FALSE(rds.ads);
  EXPECT_EQ(rds.stream.target, "dns:///xds.internal:18000");
  EXPECT_TRUE(rds.stream.delta);

  const auto& cds = config->types.at(std::string(kClusterTypeUrl));
  EXPECT_EQ(cds.stream.target, "ipv4:127.0.0.1:18000");
  EXPECT_FALSE(cds.stream.delta);
  // CDS's api_config_source sets no rate_limit_settings: its stream is not limited.
  EXPECT_FALSE(cds.stream.rate_limit.enabled);
}

TEST(XdsConfigTest, EmptyRateLimitSettingsTurnTheLimitOnWithEnvoysDefaults) {
  const std::string dynamic = R"({
    "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                   "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}],
                   "rate_limit_settings": {}},
    "lds_config": {"ads": {}, "resource_api_version": "V3"}})";
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(dynamic, kHttp2)));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->ads.has_value());
  // Envoy's Utility::parseRateLimitSettings: 100 tokens, 10 per second.
  EXPECT_TRUE(config->ads->rate_limit.enabled);
  EXPECT_EQ(config->ads->rate_limit.max_tokens, 100u);
  EXPECT_EQ(config->ads->rate_limit.fill_rate, 10);
}

// An ADS config whose only gRPC service is google_grpc with these fields added (JSON, starting
// with a comma).
std::string googleGrpcAds(const std::string& credentials) {
  return R"({"ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
      "grpc_services": [{"google_grpc": {"target_uri": "xds.internal:18000", "stat_prefix": "xds"
                                         )" +
         credentials + R"(}}]},
    "lds_config": {"ads": {}}})";
}

TEST(XdsConfigTest, GoogleGrpcSslCredentialsAreReadFromTheirDataSources) {
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(googleGrpcAds(R"(,
      "channel_credentials": {"ssl_credentials": {
        "root_certs": {"inline_string": "CA PEM"},
        "cert_chain": {"inline_bytes": "Q0VSVA=="},
        "private_key": {"inline_string": "KEY PEM"}}})"),
                                                                       kHttp2)));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->ads.has_value());
  EXPECT_EQ(config->ads->target, "xds.internal:18000");
  EXPECT_EQ(config->ads->stat_prefix, "xds");
  ASSERT_TRUE(config->ads->tls.has_value());
  EXPECT_EQ(config->ads->tls->root_certs, "CA PEM");
  EXPECT_EQ(config->ads->tls->cert_chain, "CERT");
  EXPECT_EQ(config->ads->tls->private_key, "KEY PEM");

  // Without channel_credentials the channel is plaintext.
  auto plain = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(googleGrpcAds(""), kHttp2)));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->ads->tls.has_value());
}

TEST(XdsConfigTest, GoogleGrpcCredentialsThatCannotBeHonouredAreRefused) {
  const std::string field = "dynamic_resources.ads_config.grpc_services[0].google_grpc";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(, "channel_credentials": {"ssl_credentials": {
            "cert_chain": {"inline_string": "CERT"}}})",
       field + ".channel_credentials.ssl_credentials: cert_chain and private_key go together (a "
               "client certificate)"},
      {R"(, "channel_credentials": {"ssl_credentials": {
            "root_certs": {"filename": "/nonexistent/ca.pem"}}})",
       field + ".channel_credentials.ssl_credentials.root_certs.filename: unable to read file "
               "'/nonexistent/ca.pem': No such file or directory"},
      {R"(, "channel_credentials": {"google_default": {}})",
       field + ".channel_credentials.google_default: not supported"},
      {R"(, "channel_credentials": {"local_credentials": {}})",
       field + ".channel_credentials.local_credentials: not supported"},
      {R"(, "call_credentials": [{"access_token": "secret"}])",
       field + ".call_credentials: not supported"},
  };
  for (const auto& [credentials, error] : cases) {
    auto config = xdsConfigFromBootstrap(
        bootstrapFromJson(bootstrapJson(googleGrpcAds(credentials), kHttp2)));
    ASSERT_FALSE(config.ok()) << credentials;
    EXPECT_EQ(config.status().message(), error);
  }
}

// kHttp2 plus a transport_socket with an UpstreamTlsContext made of `context` (JSON members).
std::string tlsCluster(const std::string& context) {
  return kHttp2 + R"(,
  "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    )" + context +
         "}}";
}

TEST(XdsConfigTest, EnvoyGrpcClusterTlsFollowsEnvoysRules) {
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(kAds, tlsCluster(R"(
      "sni": "xds.internal",
      "common_tls_context": {
        "tls_certificates": [{"certificate_chain": {"inline_string": "CERT"},
                              "private_key": {"inline_string": "KEY"}}],
        "validation_context": {
          "trusted_ca": {"inline_string": "CA"},
          "match_typed_subject_alt_names": [
            {"san_type": "DNS", "matcher": {"suffix": ".internal"}}]}})"))));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->ads->tls.has_value());
  const ChannelTls& tls = *config->ads->tls;
  EXPECT_EQ(tls.rules, ChannelTls::Rules::EnvoyUpstream);
  EXPECT_EQ(tls.sni, "xds.internal");
  EXPECT_EQ(tls.cert_chain, "CERT");
  EXPECT_EQ(tls.private_key, "KEY");
  EXPECT_EQ(tls.root_certs, "CA");
  EXPECT_EQ(tls.san_matchers.size(), 1u);

  // An empty context is TLS that verifies nothing, as Envoy's.
  auto bare =
      xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(kAds, tlsCluster("\"sni\": \"\""))));
  ASSERT_TRUE(bare.ok()) << bare.status();
  ASSERT_TRUE(bare->ads->tls.has_value());
  EXPECT_TRUE(bare->ads->tls->root_certs.empty());
  EXPECT_TRUE(bare->ads->tls->san_matchers.empty());
}

TEST(XdsConfigTest, EnvoyGrpcClusterTlsFieldsTheChannelCannotHonourAreRefused) {
  const std::string prefix =
      "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: cluster "
      "'xds_cluster': transport_socket.typed_config";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("common_tls_context": {"tls_params": {"tls_minimum_protocol_version": "TLSv1_3"}})",
       prefix + ".common_tls_context.tls_params.tls_minimum_protocol_version: not supported for "
                "the management server's cluster"},
      {R"("common_tls_context": {"alpn_protocols": ["h2"]})",
       prefix + ".common_tls_context.alpn_protocols[0]: not supported for the management "
                "server's cluster"},
      {R"("common_tls_context": {"validation_context": {"crl": {"inline_string": "CRL"}}})",
       prefix + ".common_tls_context.validation_context.crl.inline_string: not supported for the "
                "management server's cluster"},
      {R"("allow_renegotiation": true)",
       prefix + ".allow_renegotiation: not supported for the management server's cluster"},
      {R"("common_tls_context": {"tls_certificates": [{"certificate_chain": {"inline_string": "C"}}]})",
       prefix + ".common_tls_context.tls_certificates[0]: certificate_chain and private_key are "
                "both required"},
      {R"("common_tls_context": {"validation_context": {"match_typed_subject_alt_names": [
            {"san_type": "DNS", "matcher": {"safe_regex": {"regex": "("}}}]}})",
       prefix + ".common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher."
                "safe_regex.regex: missing ): ("},
  };
  for (const auto& [context, error] : cases) {
    auto config =
        xdsConfigFromBootstrap(bootstrapFromJson(bootstrapJson(kAds, tlsCluster(context))));
    ASSERT_FALSE(config.ok()) << context;
    EXPECT_EQ(config.status().message(), error);
  }
}

TEST(XdsConfigTest, ClusterWithoutEndpoint) {
  const std::string bootstrap = R"({
    "static_resources": {"clusters": [{"name": "xds_cluster", "type": "STRICT_DNS",
                                       "http2_protocol_options": {}}]},
    "dynamic_resources": {"ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
        "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}}})";
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(bootstrap));
  EXPECT_EQ(config.status().message(),
            "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: cluster "
            "'xds_cluster' has no endpoint "
            "(load_assignment.endpoints[0].lb_endpoints[0].endpoint)");
}

TEST(XdsConfigTest, NoDynamicResourcesMeansNoTypes) {
  auto config = xdsConfigFromBootstrap(bootstrapFromJson(R"({"node": {"id": "n"}})"));
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->ads.has_value());
  EXPECT_TRUE(config->types.empty());
}

}  // namespace
}  // namespace Proxy::Xds
