#pragma once

// Where the client fetches each resource type from, resolved from the bootstrap the way Envoy
// users write it (dynamic_resources.ads_config / lds_config / cds_config, an envoy_grpc
// cluster_name naming a static HTTP/2 cluster, or google_grpc.target_uri).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"

namespace Proxy::Xds {

// Envoy's rate_limit_settings: a token bucket on the requests of one stream. As in Envoy
// (Utility::parseRateLimitSettings), it is on only when the ApiConfigSource sets
// rate_limit_settings (then max_tokens defaults to 100 and fill_rate to 10/s): without it, ACKs
// and NACKs go out as fast as responses come, so an update storm is never ACKed late.
struct RateLimitSettings {
  bool enabled = false;
  uint32_t max_tokens = 100;
  double fill_rate = 10;  // tokens per second
};

// TLS on the channel to the management server, PEM text read from the bootstrap's DataSources
// when it is loaded. Two sets of rules, as Envoy's two gRPC clients:
//  - GrpcSsl (google_grpc channel_credentials.ssl_credentials): gRPC's SSL credentials check the
//    server's chain against `root_certs` (gRPC's default roots when empty) and its name against
//    the target's host, as Envoy's Google gRPC client does.
//  - EnvoyUpstream (an envoy_grpc cluster's UpstreamTlsContext): Envoy's TLS transport socket
//    rules — the chain is checked against `root_certs` (trusted_ca) only when given, the names
//    only against `san_matchers`, and SNI is sent only when `sni` is set.
struct ChannelTls {
  enum class Rules { GrpcSsl, EnvoyUpstream };
  Rules rules = Rules::GrpcSsl;
  std::string root_certs;
  std::string cert_chain;  // client certificate (mTLS), with private_key
  std::string private_key;
  std::string sni;  // EnvoyUpstream only
  // EnvoyUpstream only: match_typed_subject_alt_names, each a serialized (and validated)
  // envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher.
  std::vector<std::string> san_matchers;

  bool operator==(const ChannelTls& other) const {
    return rules == other.rules && root_certs == other.root_certs &&
           cert_chain == other.cert_chain && private_key == other.private_key && sni == other.sni &&
           san_matchers == other.san_matchers;
  }
};

// One gRPC stream's setup: an api_config_source.
struct XdsStreamConfig {
  // A gRPC target: "127.0.0.1:18000", "[::1]:18000", "dns:///xds.internal:18000",
  // "unix:/run/xds.sock". Plaintext unless `tls` is set.
  std::string target;
  bool delta = false;
  RateLimitSettings rate_limit;
  std::optional<ChannelTls> tls;
  // google_grpc.stat_prefix: the stream counts grpc.<stat_prefix>.streams_total and
  // .streams_closed_<code>, as Envoy's Google gRPC client does. Empty for envoy_grpc.
  std::string stat_prefix;
};

// Envoy's initial_fetch_timeout when a ConfigSource sets none.
inline constexpr std::chrono::milliseconds kDefaultInitialFetchTimeout{15000};

// A ConfigSource's initial_fetch_timeout: kDefaultInitialFetchTimeout when unset, 0 = wait
// forever. The one rule for the bootstrap's sources (here) and for those inside resources (an
// HCM's rds.config_source, an EDS cluster's eds_config: server/xds_config.cc). Validation
// refuses negative values; should one get here, it counts as 0.
std::chrono::milliseconds initialFetchTimeout(const envoy::config::core::v3::ConfigSource& source);

// Where one resource type comes from.
struct XdsTypeConfig {
  // Served on the ADS stream (XdsClientConfig::ads); otherwise on its own stream (`stream`).
  bool ads = false;
  XdsStreamConfig stream;
  // Envoy's default; 0 = wait forever.
  std::chrono::milliseconds initial_fetch_timeout = kDefaultInitialFetchTimeout;
};

inline constexpr char kUserAgentName[] = "xds-proxy";
inline constexpr uint32_t kVersionMajor = 0;
inline constexpr uint32_t kVersionMinor = 1;
inline constexpr uint32_t kVersionPatch = 0;

struct XdsClientConfig {
  // Sent on the first request of every stream. user_agent_name and user_agent_build_version
  // are ours (filled by xdsConfigFromBootstrap and by XdsClientImpl when empty).
  envoy::config::core::v3::Node node;
  std::optional<XdsStreamConfig> ads;
  // By type URL. xdsConfigFromBootstrap fills Listener/Cluster from lds_config/cds_config and
  // RouteConfiguration/ClusterLoadAssignment from ADS when configured, else from the LDS/CDS
  // server respectively (RDS/EDS config sources inside resources are the owner's business).
  std::map<std::string, XdsTypeConfig, std::less<>> types;

  // Reconnect backoff: the n-th consecutive failure waits a random time in
  // [interval/2, interval], interval = min(base * 2^(n-1), max). Reset once a stream has
  // received a response.
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds backoff_max{30000};
  // Random numbers for jitter; default: a per-client std::mt19937_64 seeded randomly. Tests
  // inject a fixed sequence.
  std::function<uint64_t()> random;
};

// Resolves the client config from a bootstrap. Errors name the field:
// "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown cluster
// 'xds'". Returns a config with no types when dynamic_resources sets none of them.
absl::StatusOr<XdsClientConfig> xdsConfigFromBootstrap(
    const envoy::config::bootstrap::v3::Bootstrap& bootstrap);

// The api_config_source the client fetches secrets (SDS) from: dynamic_resources.ads_config
// when set (then on the ADS stream); else the first sds_config.api_config_source of a TLS
// context in static_resources; else lds_config's, else cds_config's api_config_source. Null:
// none (sds_config is then refused). `field` is set to where it was found.
std::optional<envoy::config::core::v3::ApiConfigSource> sdsApiConfigSource(
    const envoy::config::bootstrap::v3::Bootstrap& bootstrap, std::string* field);

// Sets node.user_agent_name / user_agent_build_version to ours and adds the client features
// we implement ("xds.config.resource-in-sotw").
void fillNodeIdentity(envoy::config::core::v3::Node& node);

}  // namespace Proxy::Xds
