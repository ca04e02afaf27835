#include "xds_client/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"
#include "google/protobuf/util/time_util.h"
#include "proxy/config/data_source.h"
#include "proxy/tls/san_matcher.h"
#include "xds_client/resource_type.h"

namespace Proxy::Xds {
namespace {

using envoy::config::core::v3::ApiConfigSource;
using envoy::config::core::v3::ApiVersion;
using envoy::config::core::v3::ConfigSource;

constexpr absl::string_view kHttpProtocolOptionsKey =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

absl::Status fieldError(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

bool isIp(const std::string& address, int family) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(family, address.c_str(), buf) == 1;
}

// Certificates and keys are small; a DataSource larger than this is a mistake.
constexpr size_t kMaxPemBytes = 1 << 20;

// The path of the first field set in `message` ("a.b[0].c"), "" when none is.
std::string firstSetField(const google::protobuf::Message& message) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  if (fields.empty()) {
    return "";
  }
  const google::protobuf::FieldDescriptor* field = fields.front();
  std::string path(field->name());
  if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
    return field->is_repeated() ? absl::StrCat(path, "[0]") : path;
  }
  const google::protobuf::Message& child =
      field->is_repeated() ? message.GetReflection()->GetRepeatedMessage(message, field, 0)
                           : message.GetReflection()->GetMessage(message, field);
  const std::string below = firstSetField(child);
  if (field->is_repeated()) {
    absl::StrAppend(&path, "[0]");
  }
  return below.empty() ? path : absl::StrCat(path, ".", below);
}

// The management server's cluster's transport_socket: Envoy's TLS socket with an
// UpstreamTlsContext, of which the channel does sni, one client certificate, trusted_ca and
// match_typed_subject_alt_names (ChannelTls::Rules::EnvoyUpstream); anything else is refused.
absl::StatusOr<ChannelTls> clusterTls(const envoy::config::core::v3::TransportSocket& socket,
                                      const std::string& field) {
  using envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
  if (!socket.has_typed_config() ||
      socket.typed_config().type_url() !=
          absl::StrCat("type.googleapis.com/", UpstreamTlsContext::descriptor()->full_name())) {
    return fieldError(absl::StrCat(field, ".typed_config"),
                      "only envoy.transport_sockets.tls with an UpstreamTlsContext is supported "
                      "for the management server's cluster");
  }
  UpstreamTlsContext context;
  if (!socket.typed_config().UnpackTo(&context)) {
    return fieldError(absl::StrCat(field, ".typed_config"), "cannot decode the UpstreamTlsContext");
  }
  const std::string context_field = absl::StrCat(field, ".typed_config");
  ChannelTls tls;
  tls.rules = ChannelTls::Rules::EnvoyUpstream;
  tls.sni = context.sni();
  const auto& common = context.common_tls_context();
  const std::string common_field = absl::StrCat(context_field, ".common_tls_context");
  if (common.tls_certificates_size() > 1) {
    return fieldError(absl::StrCat(common_field, ".tls_certificates"),
                      "at most one client certificate is supported");
  }
  struct Source {
    bool present;
    const envoy::config::core::v3::DataSource& source;
    std::string field;
    std::string* out;
  };
  std::vector<Source> sources;
  if (common.tls_certificates_size() == 1) {
    const auto& certificate = common.tls_certificates(0);
    const std::string certificate_field = absl::StrCat(common_field, ".tls_certificates[0]");
    if (!certificate.has_certificate_chain() || !certificate.has_private_key()) {
      return fieldError(certificate_field, "certificate_chain and private_key are both required");
    }
    sources.push_back({true, certificate.certificate_chain(),
                       absl::StrCat(certificate_field, ".certificate_chain"), &tls.cert_chain});
    sources.push_back({true, certificate.private_key(),
                       absl::StrCat(certificate_field, ".private_key"), &tls.private_key});
  }
  const auto& validation = common.validation_context();
  const std::string validation_field = absl::StrCat(common_field, ".validation_context");
  sources.push_back({validation.has_trusted_ca(), validation.trusted_ca(),
                     absl::StrCat(validation_field, ".trusted_ca"), &tls.root_certs});
  for (const Source& source : sources) {
    if (!source.present) {
      continue;
    }
    auto pem = Config::readDataSource(source.source, source.field, kMaxPemBytes);
    if (!pem.ok()) {
      return pem.status();
    }
    *source.out = *std::move(pem);
  }
  for (int i = 0; i < validation.match_typed_subject_alt_names_size(); ++i) {
    const auto& matcher = validation.match_typed_subject_alt_names(i);
    auto built = Tls::SanMatcher::create(
        matcher, absl::StrCat(validation_field, ".match_typed_subject_alt_names[", i, "]"));
    if (!built.ok()) {
      return built.status();
    }
    tls.san_matchers.push_back(matcher.SerializeAsString());
  }

  // What is left once the implemented fields are taken out is refused by its path.
  UpstreamTlsContext rest = context;
  rest.clear_sni();
  auto* rest_common = rest.mutable_common_tls_context();
  if (rest_common->tls_certificates_size() == 1) {
    auto* certificate = rest_common->mutable_tls_certificates(0);
    certificate->clear_certificate_chain();
    certificate->clear_private_key();
    if (certificate->ByteSizeLong() == 0) {
      rest_common->clear_tls_certificates();
    }
  }
  if (rest_common->has_validation_context()) {
    auto* rest_validation = rest_common->mutable_validation_context();
    rest_validation->clear_trusted_ca();
    rest_validation->clear_match_typed_subject_alt_names();
    if (rest_validation->ByteSizeLong() == 0) {
      rest_common->clear_validation_context();
    }
  }
  if (rest_common->ByteSizeLong() == 0) {
    rest.clear_common_tls_context();
  }
  if (const std::string unsupported = firstSetField(rest); !unsupported.empty()) {
    return fieldError(absl::StrCat(context_field, ".", unsupported),
                      "not supported for the management server's cluster");
  }
  return tls;
}

// The gRPC target for the first endpoint of a static cluster, and its TLS when it has a
// transport_socket. IP literals use gRPC's ipv4:/ipv6: schemes (no resolver involved), host
// names dns:///.
absl::StatusOr<std::string> clusterTarget(const envoy::config::cluster::v3::Cluster& cluster,
                                          absl::string_view field, std::optional<ChannelTls>& tls) {
  const std::string quoted = absl::StrCat("cluster '", cluster.name(), "'");
  if (cluster.has_cluster_type() ||
      (cluster.type() != envoy::config::cluster::v3::Cluster::STATIC &&
       cluster.type() != envoy::config::cluster::v3::Cluster::STRICT_DNS &&
       cluster.type() != envoy::config::cluster::v3::Cluster::LOGICAL_DNS)) {
    return fieldError(field, absl::StrCat(quoted,
                                          " must be a STATIC, STRICT_DNS or LOGICAL_DNS cluster "
                                          "(the management server's address cannot come from "
                                          "xDS itself)"));
  }

  // gRPC is HTTP/2: the cluster must say so, the way Envoy requires it.
  bool http2 = cluster.has_http2_protocol_options();
  auto it = cluster.typed_extension_protocol_options().find(std::string(kHttpProtocolOptionsKey));
  if (it != cluster.typed_extension_protocol_options().end()) {
    envoy::extensions::upstreams::http::v3::HttpProtocolOptions options;
    if (!it->second.UnpackTo(&options)) {
      return fieldError(field, absl::StrCat(quoted, ": typed_extension_protocol_options[\"",
                                            kHttpProtocolOptionsKey, "\"]: cannot decode '",
                                            it->second.type_url(), "'"));
    }
    http2 = http2 || (options.has_explicit_http_config() &&
                      options.explicit_http_config().has_http2_protocol_options());
  }
  if (!http2) {
    return fieldError(field,
                      absl::StrCat(quoted,
                                   " is not configured for HTTP/2, which gRPC requires: set "
                                   "typed_extension_protocol_options[\"",
                                   kHttpProtocolOptionsKey,
                                   "\"] to {explicit_http_config: {http2_protocol_options: {}}}"));
  }
  if (cluster.has_transport_socket()) {
    auto channel_tls =
        clusterTls(cluster.transport_socket(), absl::StrCat(quoted, ": transport_socket"));
    if (!channel_tls.ok()) {
      return fieldError(field, channel_tls.status().message());
    }
    tls = *std::move(channel_tls);
  }

  const auto& assignment = cluster.load_assignment();
  if (assignment.endpoints_size() == 0 || assignment.endpoints(0).lb_endpoints_size() == 0 ||
      !assignment.endpoints(0).lb_endpoints(0).has_endpoint()) {
    return fieldError(field, absl::StrCat(quoted,
                                          " has no endpoint "
                                          "(load_assignment.endpoints[0].lb_endpoints[0]."
                                          "endpoint)"));
  }
  const auto& address = assignment.endpoints(0).lb_endpoints(0).endpoint().address();
  if (address.has_pipe()) {
    return absl::StrCat("unix:", address.pipe().path());
  }
  if (!address.has_socket_address() || address.socket_address().address().empty() ||
      address.socket_address().port_value() == 0) {
    return fieldError(field, absl::StrCat(quoted,
                                          ": load_assignment.endpoints[0].lb_endpoints[0]."
                                          "endpoint.address must be a socket_address with an "
                                          "address and a port_value"));
  }
  const auto& socket = address.socket_address();
  const uint32_t port = socket.port_value();
  if (isIp(socket.address(), AF_INET)) {
    return absl::StrCat("ipv4:", socket.address(), ":", port);
  }
  if (isIp(socket.address(), AF_INET6)) {
    return absl::StrCat("ipv6:[", socket.address(), "]:", port);
  }
  return absl::StrCat("dns:///", socket.address(), ":", port);
}

// google_grpc.channel_credentials: only ssl_credentials (gRPC's SSL credentials).
absl::StatusOr<ChannelTls> sslChannelCredentials(
    const envoy::config::core::v3::GrpcService::GoogleGrpc::ChannelCredentials& credentials,
    const std::string& field) {
  using Credentials = envoy::config::core::v3::GrpcService::GoogleGrpc::ChannelCredentials;
  const std::string credentials_field = absl::StrCat(field, ".channel_credentials");
  switch (credentials.credential_specifier_case()) {
    case Credentials::kSslCredentials:
      break;
    case Credentials::kGoogleDefault:
      return fieldError(absl::StrCat(credentials_field, ".google_default"), "not supported");
    case Credentials::kLocalCredentials:
      return fieldError(absl::StrCat(credentials_field, ".local_credentials"), "not supported");
    default:
      return fieldError(credentials_field, "ssl_credentials is required");
  }
  const auto& ssl = credentials.ssl_credentials();
  const std::string ssl_field = absl::StrCat(credentials_field, ".ssl_credentials");
  ChannelTls tls;
  struct Source {
    bool present;
    const envoy::config::core::v3::DataSource& source;
    const char* name;
    std::string* out;
  };
  for (const Source& source :
       {Source{ssl.has_root_certs(), ssl.root_certs(), "root_certs", &tls.root_certs},
        Source{ssl.has_cert_chain(), ssl.cert_chain(), "cert_chain", &tls.cert_chain},
        Source{ssl.has_private_key(), ssl.private_key(), "private_key", &tls.private_key}}) {
    if (!source.present) {
      continue;
    }
    auto pem = Config::readDataSource(source.source, absl::StrCat(ssl_field, ".", source.name),
                                      kMaxPemBytes);
    if (!pem.ok()) {
      return pem.status();
    }
    *source.out = *std::move(pem);
  }
  if (tls.cert_chain.empty() != tls.private_key.empty()) {
    return fieldError(ssl_field, "cert_chain and private_key go together (a client certificate)");
  }
  return tls;
}

absl::StatusOr<XdsStreamConfig> resolveApiConfigSource(
    const ApiConfigSource& source, const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
    absl::string_view field) {
  XdsStreamConfig stream;
  switch (source.api_type()) {
    case ApiConfigSource::GRPC:
    case ApiConfigSource::AGGREGATED_GRPC:
      stream.delta = false;
      break;
    case ApiConfigSource::DELTA_GRPC:
    case ApiConfigSource::AGGREGATED_DELTA_GRPC:
      stream.delta = true;
      break;
    default:
      return fieldError(absl::StrCat(field, ".api_type"),
                        absl::StrCat(ApiConfigSource::ApiType_Name(source.api_type()),
                                     " is not supported (use GRPC or DELTA_GRPC)"));
  }
  if (source.transport_api_version() != envoy::config::core::v3::V3) {
    return fieldError(
        absl::StrCat(field, ".transport_api_version"),
        absl::StrCat("V3 is required (got ",
                     envoy::config::core::v3::ApiVersion_Name(source.transport_api_version()),
                     ")"));
  }
  if (source.cluster_names_size() > 0) {
    return fieldError(absl::StrCat(field, ".cluster_names"),
                      "not used by gRPC sources (use grpc_services)");
  }
  if (source.grpc_services_size() != 1) {
    return fieldError(absl::StrCat(field, ".grpc_services"),
                      absl::StrCat("exactly one gRPC service is required (got ",
                                   source.grpc_services_size(), ")"));
  }

  const auto& service = source.grpc_services(0);
  const std::string service_field = absl::StrCat(field, ".grpc_services[0]");
  if (service.has_envoy_grpc()) {
    const std::string cluster_field = absl::StrCat(service_field, ".envoy_grpc.cluster_name");
    const std::string& name = service.envoy_grpc().cluster_name();
    const auto& clusters = bootstrap.static_resources().clusters();
    auto cluster = std::find_if(clusters.begin(), clusters.end(),
                                [&](const auto& c) { return c.name() == name; });
    if (cluster == clusters.end()) {
      return fieldError(cluster_field, absl::StrCat("unknown cluster '", name, "'"));
    }
    auto target = clusterTarget(*cluster, cluster_field, stream.tls);
    if (!target.ok()) {
      return target.status();
    }
    stream.target = *std::move(target);
  } else if (service.has_google_grpc()) {
    const auto& google = service.google_grpc();
    if (google.target_uri().empty()) {
      return fieldError(absl::StrCat(service_field, ".google_grpc.target_uri"), "is empty");
    }
    if (google.call_credentials_size() > 0) {
      return fieldError(absl::StrCat(service_field, ".google_grpc.call_credentials"),
                        "not supported");
    }
    if (google.has_channel_credentials()) {
      auto tls = sslChannelCredentials(google.channel_credentials(),
                                       absl::StrCat(service_field, ".google_grpc"));
      if (!tls.ok()) {
        return tls.status();
      }
      stream.tls = *std::move(tls);
    }
    stream.target = google.target_uri();
    stream.stat_prefix = google.stat_prefix();
  } else {
    return fieldError(service_field, "one of envoy_grpc or google_grpc is required");
  }

  if (source.has_rate_limit_settings()) {
    const auto& settings = source.rate_limit_settings();
    stream.rate_limit.enabled = true;
    if (settings.has_max_tokens()) {
      if (settings.max_tokens().value() == 0) {
        return fieldError(absl::StrCat(field, ".rate_limit_settings.max_tokens"),
                          "must be greater than 0");
      }
      stream.rate_limit.max_tokens = settings.max_tokens().value();
    }
    if (settings.has_fill_rate()) {
      const double rate = settings.fill_rate().value();
      if (!(rate > 0) || !std::isfinite(rate)) {
        return fieldError(absl::StrCat(field, ".rate_limit_settings.fill_rate"),
                          "must be greater than 0");
      }
      stream.rate_limit.fill_rate = rate;
    }
  }
  return stream;
}

absl::StatusOr<XdsTypeConfig> resolveConfigSource(
    const ConfigSource& source, const envoy::config::bootstrap::v3::Bootstrap& bootstrap,
    bool have_ads, absl::string_view field) {
  XdsTypeConfig type;
  if (source.resource_api_version() == envoy::config::core::v3::V2) {
    return fieldError(absl::StrCat(field, ".resource_api_version"), "V3 is required (got V2)");
  }
  if (source.has_initial_fetch_timeout()) {
    const auto& timeout = source.initial_fetch_timeout();
    if (timeout.seconds() < 0 || timeout.nanos() < 0) {
      return fieldError(absl::StrCat(field, ".initial_fetch_timeout"), "must not be negative");
    }
  }
  type.initial_fetch_timeout = initialFetchTimeout(source);
  switch (source.config_source_specifier_case()) {
    case ConfigSource::kAds:
      if (!have_ads) {
        return fieldError(absl::StrCat(field, ".ads"), "dynamic_resources.ads_config is not set");
      }
      type.ads = true;
      return type;
    case ConfigSource::kApiConfigSource: {
      auto stream = resolveApiConfigSource(source.api_config_source(), bootstrap,
                                           absl::StrCat(field, ".api_config_source"));
      if (!stream.ok()) {
        return stream.status();
      }
      type.stream = *std::move(stream);
      return type;
    }
    case ConfigSource::kPath:
    case ConfigSource::kPathConfigSource:
      return fieldError(field, "file-based config sources are not supported by the xDS client");
    case ConfigSource::kSelf:
      return fieldError(absl::StrCat(field, ".self"), "not supported in the bootstrap");
    default:
      return fieldError(field, "one of ads or api_config_source is required");
  }
}

}  // namespace

std::chrono::milliseconds initialFetchTimeout(const ConfigSource& source) {
  if (!source.has_initial_fetch_timeout()) {
    return kDefaultInitialFetchTimeout;
  }
  return std::chrono::milliseconds(std::max<int64_t>(
      0, google::protobuf::util::TimeUtil::DurationToMilliseconds(source.initial_fetch_timeout())));
}

void fillNodeIdentity(envoy::config::core::v3::Node& node) {
  node.set_user_agent_name(std::string(kUserAgentName));
  auto* version = node.mutable_user_agent_build_version()->mutable_version();
  version->set_major_number(kVersionMajor);
  version->set_minor_number(kVersionMinor);
  version->set_patch(kVersionPatch);
  // We accept resources wrapped in envoy.service.discovery.v3.Resource in SotW responses.
  constexpr absl::string_view kResourceInSotw = "xds.config.resource-in-sotw";
  const auto& features = node.client_features();
  if (std::find(features.begin(), features.end(), kResourceInSotw) == features.end()) {
    node.add_client_features(std::string(kResourceInSotw));
  }
}

namespace {

// The first sds_config.api_config_source of `common`, or null.
const ApiConfigSource* sdsApiIn(
    const envoy::extensions::transport_sockets::tls::v3::CommonTlsContext& common) {
  for (const auto& ref : common.tls_certificate_sds_secret_configs()) {
    if (ref.sds_config().has_api_config_source()) {
      return &ref.sds_config().api_config_source();
    }
  }
  if (common.validation_context_sds_secret_config().sds_config().has_api_config_source()) {
    return &common.validation_context_sds_secret_config().sds_config().api_config_source();
  }
  return nullptr;
}

}  // namespace

std::optional<ApiConfigSource> sdsApiConfigSource(
    const envoy::config::bootstrap::v3::Bootstrap& bootstrap, std::string* field) {
  const auto& dynamic = bootstrap.dynamic_resources();
  if (dynamic.has_ads_config()) {
    *field = "dynamic_resources.ads_config";
    return dynamic.ads_config();
  }
  // Static TLS contexts (the bootstrap holds them as Any).
  const auto& resources = bootstrap.static_resources();
  for (int i = 0; i < resources.listeners_size(); i++) {
    const auto& listener = resources.listeners(i);
    for (int c = 0; c < listener.filter_chains_size(); c++) {
      envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext tls;
      const auto& ts = listener.filter_chains(c).transport_socket();
      if (ts.has_typed_config() && ts.typed_config().UnpackTo(&tls)) {
        if (const ApiConfigSource* api = sdsApiIn(tls.common_tls_context()); api != nullptr) {
          *field = absl::StrCat("static_resources.listeners[", i, "].filter_chains[", c,
                                "].transport_socket (sds_config.api_config_source)");
          return *api;
        }
      }
    }
  }
  for (int i = 0; i < resources.clusters_size(); i++) {
    envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
    const auto& ts = resources.clusters(i).transport_socket();
    if (ts.has_typed_config() && ts.typed_config().UnpackTo(&tls)) {
      if (const ApiConfigSource* api = sdsApiIn(tls.common_tls_context()); api != nullptr) {
        *field = absl::StrCat("static_resources.clusters[", i,
                              "].transport_socket (sds_config.api_config_source)");
        return *api;
      }
    }
  }
  if (dynamic.lds_config().has_api_config_source()) {
    *field = "dynamic_resources.lds_config.api_config_source";
    return dynamic.lds_config().api_config_source();
  }
  if (dynamic.cds_config().has_api_config_source()) {
    *field = "dynamic_resources.cds_config.api_config_source";
    return dynamic.cds_config().api_config_source();
  }
  return std::nullopt;
}

absl::StatusOr<XdsClientConfig> xdsConfigFromBootstrap(
    const envoy::config::bootstrap::v3::Bootstrap& bootstrap) {
  XdsClientConfig config;
  config.node = bootstrap.node();
  fillNodeIdentity(config.node);
  // (Without dynamic_resources, static TLS contexts may still fetch secrets: SDS below.)
  const auto& dynamic = bootstrap.dynamic_resources();

  if (dynamic.has_ads_config()) {
    auto ads =
        resolveApiConfigSource(dynamic.ads_config(), bootstrap, "dynamic_resources.ads_config");
    if (!ads.ok()) {
      return ads.status();
    }
    config.ads = *std::move(ads);
  }

  struct Source {
    bool set;
    const ConfigSource& source;
    absl::string_view field;
    absl::string_view type_url;
    absl::string_view child_type_url;  // RDS for LDS, EDS for CDS
  };
  const Source sources[] = {
      {dynamic.has_lds_config(), dynamic.lds_config(), "dynamic_resources.lds_config",
       kListenerTypeUrl, kRouteConfigurationTypeUrl},
      {dynamic.has_cds_config(), dynamic.cds_config(), "dynamic_resources.cds_config",
       kClusterTypeUrl, kClusterLoadAssignmentTypeUrl},
  };
  for (const Source& s : sources) {
    if (!s.set) {
      continue;
    }
    auto type = resolveConfigSource(s.source, bootstrap, config.ads.has_value(), s.field);
    if (!type.ok()) {
      return type.status();
    }
    // RDS/EDS default to ADS when there is one, else to the same server as LDS/CDS with
    // Envoy's default timeout; resources normally say `ads: {}` for them.
    XdsTypeConfig child;
    child.ads = config.ads.has_value();
    if (!child.ads) {
      child.stream = type->stream;
    }
    config.types.emplace(std::string(s.type_url), *std::move(type));
    config.types.emplace(std::string(s.child_type_url), child);
  }
  // Secrets (SDS): on ADS when there is one, else on the stream of sdsApiConfigSource().
  std::string sds_field;
  if (const auto sds = sdsApiConfigSource(bootstrap, &sds_field); sds.has_value()) {
    XdsTypeConfig secrets;
    secrets.ads = config.ads.has_value();
    if (!secrets.ads) {
      auto stream = resolveApiConfigSource(*sds, bootstrap, sds_field);
      if (!stream.ok()) {
        return stream.status();
      }
      secrets.stream = *std::move(stream);
    }
    config.types.emplace(kSecretTypeUrl, std::move(secrets));
  }
  return config;
}

}  // namespace Proxy::Xds
