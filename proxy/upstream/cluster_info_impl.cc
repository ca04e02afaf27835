#include "proxy/upstream/cluster_info_impl.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "envoy/extensions/load_balancing_policies/maglev/v3/maglev.pb.h"
#include "envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"
#include "proxy/common/status.h"
#include "proxy/tls/ssl_socket.h"
#include "proxy/upstream/maglev_lb.h"

namespace Proxy::Upstream {

namespace {

using envoy::config::cluster::v3::Cluster;

constexpr absl::string_view kRawBufferName = "envoy.transport_sockets.raw_buffer";
constexpr absl::string_view kRawBufferType =
    "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
constexpr absl::string_view kPolicyTypePrefix =
    "type.googleapis.com/envoy.extensions.load_balancing_policies.";

// absl::string_view: Debian's abseil has its own string_view type, not std::string_view.
absl::Status clusterError(const std::string& name, absl::string_view field,
                          absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("cluster '", name, "': ", field, ": ", reason));
}

std::chrono::milliseconds toMilliseconds(const google::protobuf::Duration& d) {
  const int64_t ms = d.seconds() * 1000 + d.nanos() / 1000000;
  // A positive sub-millisecond timeout must not become "no time at all".
  if (ms == 0 && (d.seconds() > 0 || d.nanos() > 0)) {
    return std::chrono::milliseconds(1);
  }
  return std::chrono::milliseconds(ms);
}

constexpr uint64_t kMaxRingSize = 8 * 1024 * 1024;  // the protos' lte
constexpr uint64_t kMaxMaglevTableSize = 5000011;   // the protos' lte

// ring_hash_lb_config's / RingHash's ring sizes, with Envoy's limits and messages; `field` is
// the path of the message.
absl::Status ringSizes(const std::string& name, const std::string& field,
                       const google::protobuf::UInt64Value* minimum,
                       const google::protobuf::UInt64Value* maximum, HashLbConfig& out) {
  if (minimum != nullptr) {
    out.min_ring_size = minimum->value();
    if (out.min_ring_size > kMaxRingSize) {
      return clusterError(name, absl::StrCat(field, ".minimum_ring_size"),
                          "must be less than or equal to 8388608");
    }
  }
  if (maximum != nullptr) {
    out.max_ring_size = maximum->value();
    if (out.max_ring_size > kMaxRingSize) {
      return clusterError(name, absl::StrCat(field, ".maximum_ring_size"),
                          "must be less than or equal to 8388608");
    }
  }
  if (out.min_ring_size > out.max_ring_size) {
    return clusterError(name, field,
                        absl::StrCat("ring hash: minimum_ring_size (", out.min_ring_size,
                                     ") > maximum_ring_size (", out.max_ring_size, ")"));
  }
  return absl::OkStatus();
}

absl::Status maglevTableSize(const std::string& name, const std::string& field, uint64_t size,
                             HashLbConfig& out) {
  out.maglev_table_size = size;
  if (size > kMaxMaglevTableSize) {
    return clusterError(name, field, "must be less than or equal to 5000011");
  }
  if (!isPrime(size)) {
    return clusterError(name, field, "The table size of maglev must be prime number");
  }
  return absl::OkStatus();
}

// The typed load_balancing_policy list: the first policy we implement wins (Envoy's rule).
// Sets `found` when one is; the typed ring hash and Maglev configs fill `hash_config`.
absl::Status policyFromExtensions(const std::string& name,
                                  const envoy::config::cluster::v3::LoadBalancingPolicy& config,
                                  LbPolicy& out, HashLbConfig& hash_config, bool& found) {
  found = false;
  for (int i = 0; i < config.policies_size(); i++) {
    const auto& any = config.policies(i).typed_extension_config().typed_config();
    const std::string& type_url = any.type_url();
    if (!absl::StartsWith(type_url, kPolicyTypePrefix)) {
      continue;
    }
    const std::string field =
        absl::StrCat("load_balancing_policy.policies[", i, "].typed_extension_config.typed_config");
    const absl::string_view rest = absl::string_view(type_url).substr(kPolicyTypePrefix.size());
    if (rest == "round_robin.v3.RoundRobin") {
      out = LbPolicy::RoundRobin;
    } else if (rest == "least_request.v3.LeastRequest") {
      out = LbPolicy::LeastRequest;
    } else if (rest == "random.v3.Random") {
      out = LbPolicy::Random;
    } else if (rest == "ring_hash.v3.RingHash") {
      envoy::extensions::load_balancing_policies::ring_hash::v3::RingHash ring;
      if (!any.UnpackTo(&ring)) {
        return clusterError(name, field, "cannot decode RingHash");
      }
      if (ring.has_minimum_ring_size() && ring.minimum_ring_size().value() < 1) {
        return clusterError(name, absl::StrCat(field, ".minimum_ring_size"),
                            "must be greater than or equal to 1");
      }
      RETURN_IF_ERROR(ringSizes(
          name, field, ring.has_minimum_ring_size() ? &ring.minimum_ring_size() : nullptr,
          ring.has_maximum_ring_size() ? &ring.maximum_ring_size() : nullptr, hash_config));
      if (ring.hash_function() ==
          envoy::extensions::load_balancing_policies::ring_hash::v3::RingHash::MURMUR_HASH_2) {
        hash_config.hash_function = HashLbConfig::HashFunction::MurmurHash2;
      }
      out = LbPolicy::RingHash;
    } else if (rest == "maglev.v3.Maglev") {
      envoy::extensions::load_balancing_policies::maglev::v3::Maglev maglev;
      if (!any.UnpackTo(&maglev)) {
        return clusterError(name, field, "cannot decode Maglev");
      }
      if (maglev.has_table_size()) {
        RETURN_IF_ERROR(maglevTableSize(name, absl::StrCat(field, ".table_size"),
                                        maglev.table_size().value(), hash_config));
      }
      out = LbPolicy::Maglev;
    } else {
      continue;
    }
    found = true;
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

namespace {
constexpr Stats::StatSpec kClusterStatSpecs[] = {
    PROXY_ALL_CLUSTER_STATS(PROXY_STAT_SPEC_COUNTER, PROXY_STAT_SPEC_GAUGE)};
constexpr Stats::StatTable kClusterStatTable{kClusterStatSpecs, std::size(kClusterStatSpecs)};
}  // namespace

const Stats::StatTable& ClusterStats::table() {
  return kClusterStatTable;
}

ClusterStats::ClusterStats(Stats::Scope scope) : cells_(scope.block(kClusterStatTable)) {}

ClusterInfoImpl::ClusterInfoImpl(const Cluster& config, Stats::Store& store,
                                 const std::string& stat_name)
    : name_(config.name()),
      scope_(store, absl::StrCat("cluster.", stat_name, ".")),
      stats_(scope_) {}

namespace {

// Http2ProtocolOptions -> the codec's settings, with Envoy's ranges.
absl::Status http2SettingsFrom(const std::string& name, absl::string_view field,
                               const envoy::config::core::v3::Http2ProtocolOptions& options,
                               Http::Http2::Http2Settings& settings) {
  if (options.has_max_concurrent_streams()) {
    const uint32_t value = options.max_concurrent_streams().value();
    if (value < 1 || value > Http::Http2::kMaxWindowSize) {
      return clusterError(name, absl::StrCat(field, ".max_concurrent_streams"),
                          "must be between 1 and 2147483647");
    }
    settings.max_concurrent_streams = value;
  }
  if (options.has_initial_stream_window_size()) {
    const uint32_t value = options.initial_stream_window_size().value();
    if (value < Http::Http2::kMinWindowSize || value > Http::Http2::kMaxWindowSize) {
      return clusterError(name, absl::StrCat(field, ".initial_stream_window_size"),
                          "must be between 65535 and 2147483647");
    }
    settings.initial_stream_window_size = value;
  }
  if (options.has_initial_connection_window_size()) {
    const uint32_t value = options.initial_connection_window_size().value();
    if (value < Http::Http2::kMinWindowSize || value > Http::Http2::kMaxWindowSize) {
      return clusterError(name, absl::StrCat(field, ".initial_connection_window_size"),
                          "must be between 65535 and 2147483647");
    }
    settings.initial_connection_window_size = value;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClusterInfoImplConstSharedPtr> ClusterInfoImpl::create(const Cluster& config,
                                                                      Stats::Store& store,
                                                                      Tls::SecretManager* secrets) {
  const std::string& name = config.name();
  if (name.empty()) {
    return clusterError(name, "name", "must not be empty");
  }

  // Discovery type.
  if (config.cluster_discovery_type_case() == Cluster::kClusterType) {
    return clusterError(
        name, "cluster_type",
        absl::StrCat("custom cluster type '", config.cluster_type().name(), "' is not supported"));
  }
  DiscoveryType type;
  switch (config.type()) {
    case Cluster::STATIC:
      type = DiscoveryType::Static;
      break;
    case Cluster::STRICT_DNS:
      type = DiscoveryType::StrictDns;
      break;
    case Cluster::LOGICAL_DNS:
      type = DiscoveryType::LogicalDns;
      break;
    case Cluster::EDS:
      type = DiscoveryType::Eds;
      break;
    default:
      return clusterError(name, "type",
                          absl::StrCat("unsupported cluster type '",
                                       Cluster::DiscoveryType_Name(config.type()), "'"));
  }

  std::chrono::milliseconds connect_timeout{5000};
  if (config.has_connect_timeout()) {
    const auto& d = config.connect_timeout();
    if (d.seconds() < 0 || d.nanos() < 0 || (d.seconds() == 0 && d.nanos() == 0)) {
      return clusterError(name, "connect_timeout", "must be greater than 0");
    }
    connect_timeout = toMilliseconds(d);
  }

  // Load balancing policy: the typed list, when given, takes precedence (as in Envoy).
  LbPolicy lb_policy = LbPolicy::RoundRobin;
  HashLbConfig hash_lb_config;
  if (config.has_load_balancing_policy()) {
    bool found = false;
    RETURN_IF_ERROR(policyFromExtensions(name, config.load_balancing_policy(), lb_policy,
                                         hash_lb_config, found));
    if (!found) {
      return clusterError(name, "load_balancing_policy",
                          "none of the policies is supported (round_robin, least_request, "
                          "random, ring_hash, maglev)");
    }
  } else {
    switch (config.lb_policy()) {
      case Cluster::ROUND_ROBIN:
        lb_policy = LbPolicy::RoundRobin;
        break;
      case Cluster::LEAST_REQUEST:
        lb_policy = LbPolicy::LeastRequest;
        break;
      case Cluster::RANDOM:
        lb_policy = LbPolicy::Random;
        break;
      case Cluster::RING_HASH:
        lb_policy = LbPolicy::RingHash;
        break;
      case Cluster::MAGLEV:
        lb_policy = LbPolicy::Maglev;
        break;
      default:
        return clusterError(name, "lb_policy",
                            absl::StrCat("unsupported load balancing policy '",
                                         Cluster::LbPolicy_Name(config.lb_policy()), "'"));
    }
    // ring_hash_lb_config / maglev_lb_config, read whatever the policy (Envoy validates them
    // then too, and ignores them).
    if (config.has_ring_hash_lb_config()) {
      const auto& ring = config.ring_hash_lb_config();
      RETURN_IF_ERROR(ringSizes(name, "ring_hash_lb_config",
                                ring.has_minimum_ring_size() ? &ring.minimum_ring_size() : nullptr,
                                ring.has_maximum_ring_size() ? &ring.maximum_ring_size() : nullptr,
                                hash_lb_config));
      if (ring.hash_function() == Cluster::RingHashLbConfig::MURMUR_HASH_2) {
        hash_lb_config.hash_function = HashLbConfig::HashFunction::MurmurHash2;
      }
    }
    if (config.has_maglev_lb_config() && config.maglev_lb_config().has_table_size()) {
      RETURN_IF_ERROR(maglevTableSize(name, "maglev_lb_config.table_size",
                                      config.maglev_lb_config().table_size().value(),
                                      hash_lb_config));
    }
  }
  uint32_t choice_count = 2;
  if (config.has_least_request_lb_config() && config.least_request_lb_config().has_choice_count()) {
    choice_count = config.least_request_lb_config().choice_count().value();
    if (choice_count < 2) {
      return clusterError(name, "least_request_lb_config.choice_count", "must be at least 2");
    }
  }

  // The raw socket, or TLS (UpstreamTlsContext); anything else is refused rather than sending
  // cleartext where something else was asked for.
  std::shared_ptr<Tls::ContextProvider> tls_context;
  if (config.has_transport_socket()) {
    const auto& ts = config.transport_socket();
    const bool raw = ts.has_typed_config() ? ts.typed_config().type_url() == kRawBufferType
                                           : ts.name() == kRawBufferName;
    envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
    if (ts.has_typed_config() && ts.typed_config().Is<decltype(tls)>()) {
      if (!ts.typed_config().UnpackTo(&tls)) {
        return clusterError(name, "transport_socket.typed_config",
                            "cannot decode UpstreamTlsContext");
      }
      auto context = Tls::ContextProvider::createClient(tls, secrets);
      if (!context.ok()) {
        return clusterError(name, "transport_socket.typed_config",
                            std::string(context.status().message()));
      }
      tls_context = *std::move(context);
    } else if (!raw) {
      return clusterError(
          name, "transport_socket",
          absl::StrCat("transport socket '",
                       ts.has_typed_config() ? ts.typed_config().type_url() : ts.name(),
                       "' is not supported"));
    }
  }

  // Envoy rounds the percentage to an integer; 0 disables panic mode.
  uint32_t panic_threshold = 50;
  if (config.common_lb_config().has_healthy_panic_threshold()) {
    const double value = config.common_lb_config().healthy_panic_threshold().value();
    if (!(value >= 0.0 && value <= 100.0)) {
      return clusterError(name, "common_lb_config.healthy_panic_threshold.value",
                          "must be between 0 and 100");
    }
    panic_threshold = static_cast<uint32_t>(std::lround(value));
  }

  // Locality-weighted balancing picks a locality, then a host in it with the cluster's policy.
  // Envoy's RING_HASH and MAGLEV fold locality weights into their host weights instead, which
  // these do not do yet: refused there.
  const bool locality_weighted = config.common_lb_config().has_locality_weighted_lb_config();
  if (locality_weighted && (lb_policy == LbPolicy::RingHash || lb_policy == LbPolicy::Maglev)) {
    return clusterError(name, "common_lb_config.locality_weighted_lb_config",
                        "not supported with RING_HASH or MAGLEV");
  }

  const std::string& stat_name = config.alt_stat_name().empty() ? name : config.alt_stat_name();
  auto info = std::shared_ptr<ClusterInfoImpl>(new ClusterInfoImpl(config, store, stat_name));
  if (tls_context != nullptr) {
    tls_context->initStats(Stats::Scope(store, absl::StrCat("cluster.", stat_name, ".")));
    info->tls_context_ = std::move(tls_context);
  }
  info->type_ = type;
  info->eds_service_name_ = config.eds_cluster_config().service_name().empty()
                                ? name
                                : config.eds_cluster_config().service_name();
  info->connect_timeout_ = connect_timeout;
  info->lb_policy_ = lb_policy;
  info->choice_count_ = choice_count;
  info->hash_lb_config_ = hash_lb_config;
  if (lb_policy == LbPolicy::RingHash || lb_policy == LbPolicy::Maglev) {
    info->hashing_lb_stats_ = std::make_unique<HashingLbStats>(info->scope_, lb_policy);
  }
  info->panic_threshold_ = panic_threshold;
  info->locality_weighted_ = locality_weighted;
  if (config.has_per_connection_buffer_limit_bytes()) {
    info->buffer_limit_ = config.per_connection_buffer_limit_bytes().value();
  }
  // The newer common_http_protocol_options field wins over the deprecated top-level one.
  // typed_extension_protocol_options' HttpProtocolOptions first (Envoy's current place),
  // then the cluster's own (deprecated upstream) fields.
  envoy::extensions::upstreams::http::v3::HttpProtocolOptions typed_options;
  auto typed = config.typed_extension_protocol_options().find(
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
  const bool has_typed = typed != config.typed_extension_protocol_options().end() &&
                         typed->second.UnpackTo(&typed_options);
  // The upstream protocol, as Envoy 1.40 decides it: the typed HttpProtocolOptions when present
  // (the deprecated fields are then ignored), else the deprecated http2_protocol_options.
  // use_downstream_protocol_config follows each request (upstreamHttpProtocol(downstream)):
  // HTTP/2 requests go upstream as HTTP/2 with its http2_protocol_options (or the defaults).
  info->http2_settings_.stream_buffer_limit = info->buffer_limit_;
  if (has_typed) {
    if (typed_options.has_use_downstream_protocol_config()) {
      info->use_downstream_protocol_ = true;
      RETURN_IF_ERROR(http2SettingsFrom(
          name,
          "typed_extension_protocol_options['envoy.extensions.upstreams.http.v3."
          "HttpProtocolOptions'].use_downstream_protocol_config.http2_protocol_options",
          typed_options.use_downstream_protocol_config().http2_protocol_options(),
          info->http2_settings_));
    } else if (typed_options.has_auto_config()) {
      // Envoy's mixed pool: ALPN over TLS decides, so a transport without ALPN is refused, with
      // Envoy's words (it adds the cluster's debug string).
      if (info->tls_context_ == nullptr) {
        return clusterError(name,
                            "typed_extension_protocol_options['envoy.extensions.upstreams.http.v3."
                            "HttpProtocolOptions'].auto_config",
                            absl::StrCat("ALPN configured for cluster ", name,
                                         " which has a non-ALPN transport socket"));
      }
      info->protocol_ = UpstreamHttpProtocol::Auto;
      RETURN_IF_ERROR(http2SettingsFrom(
          name,
          "typed_extension_protocol_options['envoy.extensions.upstreams.http.v3."
          "HttpProtocolOptions'].auto_config.http2_protocol_options",
          typed_options.auto_config().http2_protocol_options(), info->http2_settings_));
    } else if (typed_options.has_explicit_http_config() &&
               typed_options.explicit_http_config().has_http2_protocol_options()) {
      info->protocol_ = UpstreamHttpProtocol::Http2;
      RETURN_IF_ERROR(http2SettingsFrom(
          name,
          "typed_extension_protocol_options['envoy.extensions.upstreams.http.v3."
          "HttpProtocolOptions'].explicit_http_config.http2_protocol_options",
          typed_options.explicit_http_config().http2_protocol_options(), info->http2_settings_));
    }
  } else if (config.has_http2_protocol_options()) {
    if (config.has_http_protocol_options() &&
        config.protocol_selection() == Cluster::USE_CONFIGURED_PROTOCOL) {
      // Envoy's words, with the resource and field named.
      return clusterError(name, "http2_protocol_options",
                          "Both HTTP1 and HTTP2 options may only be configured with non-default "
                          "'protocol_selection' values");
    }
    if (config.protocol_selection() == Cluster::USE_CONFIGURED_PROTOCOL) {
      info->protocol_ = UpstreamHttpProtocol::Http2;
    }
    RETURN_IF_ERROR(http2SettingsFrom(name, "http2_protocol_options",
                                      config.http2_protocol_options(), info->http2_settings_));
  }
  if (info->protocol_ != UpstreamHttpProtocol::Http1 || info->use_downstream_protocol_) {
    info->http2_codec_stats_ = std::make_unique<Http::Http2::ClientCodecStats>(
        Stats::Scope(store, absl::StrCat("cluster.", stat_name, ".")));
  }
  if (has_typed && typed_options.common_http_protocol_options().has_max_requests_per_connection()) {
    info->max_requests_per_connection_ =
        typed_options.common_http_protocol_options().max_requests_per_connection().value();
  } else if (config.common_http_protocol_options().has_max_requests_per_connection()) {
    info->max_requests_per_connection_ =
        config.common_http_protocol_options().max_requests_per_connection().value();
  } else if (config.has_max_requests_per_connection()) {
    info->max_requests_per_connection_ = config.max_requests_per_connection().value();
  }
  // idle_timeout, from the same places in the same order.
  const envoy::config::core::v3::HttpProtocolOptions& common =
      typed_options.has_common_http_protocol_options()
          ? typed_options.common_http_protocol_options()
          : config.common_http_protocol_options();
  if (common.has_idle_timeout()) {
    if (common.idle_timeout().seconds() < 0 || common.idle_timeout().nanos() < 0) {
      return clusterError(name, "common_http_protocol_options.idle_timeout",
                          "must not be negative");
    }
    info->idle_timeout_ = toMilliseconds(common.idle_timeout());
  }
  // Only the DEFAULT priority's thresholds apply: we do not route by priority.
  for (const auto& threshold : config.circuit_breakers().thresholds()) {
    if (threshold.priority() != envoy::config::core::v3::DEFAULT) {
      continue;
    }
    if (threshold.has_max_connections()) {
      info->max_connections_ = threshold.max_connections().value();
    }
    if (threshold.has_max_pending_requests()) {
      info->max_pending_requests_ = threshold.max_pending_requests().value();
    }
    if (threshold.has_max_requests()) {
      info->max_requests_ = threshold.max_requests().value();
    }
    if (threshold.has_max_retries()) {
      info->max_retries_ = threshold.max_retries().value();
    }
  }
  return ClusterInfoImplConstSharedPtr(std::move(info));
}

const char* ClusterInfoImpl::discoveryTypeName() const {
  switch (type_) {
    case DiscoveryType::Static:
      return "STATIC";
    case DiscoveryType::StrictDns:
      return "STRICT_DNS";
    case DiscoveryType::LogicalDns:
      return "LOGICAL_DNS";
    case DiscoveryType::Eds:
      return "EDS";
  }
  return "STATIC";
}

Network::TransportSocketPtr ClusterInfoImpl::createTransportSocket(
    std::string_view alpn_fallback) const {
  if (tls_context_ == nullptr) {
    return nullptr;
  }
  return std::make_unique<Tls::SslSocket>(tls_context_->current(), alpn_fallback);
}

}  // namespace Proxy::Upstream
