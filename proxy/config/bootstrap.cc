#include "proxy/config/bootstrap.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

#include <google/protobuf/util/message_differencer.h>

#include "proxy/common/status.h"
#include "proxy/config/field_path.h"
#include "proxy/config/field_support.h"
#include "proxy/config/filter_config.h"
#include "proxy/config/message_util.h"
#include "proxy/config/validation.h"

namespace Proxy::Config {
namespace {

using envoy::config::core::v3::ApiConfigSource;
using envoy::config::core::v3::ConfigSource;

// Checks that what an xDS config source refers to exists in this bootstrap.
class ConfigSourceChecker {
 public:
  ConfigSourceChecker(const Bootstrap& bootstrap, const absl::flat_hash_set<std::string>& clusters)
      : bootstrap_(bootstrap), clusters_(clusters) {}

  absl::Status check(const ConfigSource& source, const std::string& path) const {
    if (source.has_ads() && !bootstrap_.dynamic_resources().has_ads_config()) {
      return error(path + ".ads", "ads is used but dynamic_resources.ads_config is not set");
    }
    if (source.has_api_config_source()) {
      return checkApi(source.api_config_source(), path + ".api_config_source");
    }
    return absl::OkStatus();
  }

  absl::Status checkApi(const ApiConfigSource& api, const std::string& path) const {
    for (int i = 0; i < api.grpc_services_size(); i++) {
      const auto& service = api.grpc_services(i);
      if (service.has_envoy_grpc() && !clusters_.contains(service.envoy_grpc().cluster_name())) {
        return error(absl::StrCat(path, ".grpc_services[", i, "].envoy_grpc.cluster_name"),
                     absl::StrCat("unknown cluster '", service.envoy_grpc().cluster_name(),
                                  "' (it must be a static cluster)"));
      }
    }
    return absl::OkStatus();
  }

 private:
  const Bootstrap& bootstrap_;
  const absl::flat_hash_set<std::string>& clusters_;
};

bool isDelta(ApiConfigSource::ApiType type) {
  return type == ApiConfigSource::DELTA_GRPC || type == ApiConfigSource::AGGREGATED_DELTA_GRPC;
}

std::string describeService(const ApiConfigSource& api) {
  if (api.grpc_services_size() != 1) {
    return absl::StrCat(api.grpc_services_size(), " gRPC services");
  }
  const auto& service = api.grpc_services(0);
  if (service.has_envoy_grpc()) {
    return absl::StrCat("cluster '", service.envoy_grpc().cluster_name(), "'");
  }
  return absl::StrCat("target '", service.google_grpc().target_uri(), "'");
}

// One config source inside a resource; `rds`: RDS (else EDS). See checkResourceConfigSources.
absl::Status checkResourceConfigSource(const ConfigSource& source,
                                       const Bootstrap::DynamicResources& dynamic, bool rds,
                                       const std::string& path) {
  if (source.has_ads()) {
    if (!dynamic.has_ads_config()) {
      return error(path + ".ads", "ads is used but dynamic_resources.ads_config is not set");
    }
    return absl::OkStatus();
  }
  if (!source.has_api_config_source()) {
    return absl::OkStatus();
  }
  const char* type = rds ? "RDS" : "EDS";
  const ConfigSource& parent = rds ? dynamic.lds_config() : dynamic.cds_config();
  const std::string parent_field =
      rds ? "dynamic_resources.lds_config" : "dynamic_resources.cds_config";
  const std::string api_path = path + ".api_config_source";
  // The stream the xDS client fetches the type on (xds_client/config.cc).
  const ApiConfigSource* stream = nullptr;
  std::string stream_field;
  if (dynamic.has_ads_config()) {
    stream = &dynamic.ads_config();
    stream_field = "dynamic_resources.ads_config";
  } else if (parent.has_api_config_source()) {
    stream = &parent.api_config_source();
    stream_field = parent_field + ".api_config_source";
  }
  if (stream == nullptr) {
    return error(api_path, absl::StrCat("not supported: the proxy fetches ", type,
                                        " on the ADS stream or on the stream of ", parent_field,
                                        ", and dynamic_resources configures neither"));
  }
  const ApiConfigSource& api = source.api_config_source();
  if (api.grpc_services_size() != 1 || stream->grpc_services_size() != 1 ||
      !google::protobuf::util::MessageDifferencer::Equals(api.grpc_services(0),
                                                          stream->grpc_services(0))) {
    return error(api_path + ".grpc_services",
                 absl::StrCat(describeService(api), ": a management server other than ",
                              describeService(*stream), " (", stream_field, "), which the proxy ",
                              "fetches ", type, " from, is not supported"));
  }
  if (isDelta(api.api_type()) != isDelta(stream->api_type())) {
    return error(api_path + ".api_type",
                 absl::StrCat(ApiConfigSource::ApiType_Name(api.api_type()), " on the ",
                              isDelta(stream->api_type()) ? "Delta" : "state-of-the-world",
                              " stream of ", stream_field, " is not supported"));
  }
  if (api.transport_api_version() != envoy::config::core::v3::V3) {
    return error(
        api_path + ".transport_api_version",
        absl::StrCat("V3 is required (got ",
                     envoy::config::core::v3::ApiVersion_Name(api.transport_api_version()), ")"));
  }
  if (api.has_rate_limit_settings() &&
      !google::protobuf::util::MessageDifferencer::Equals(api.rate_limit_settings(),
                                                          stream->rate_limit_settings())) {
    return error(api_path + ".rate_limit_settings",
                 absl::StrCat("not supported: ", type, " shares the stream of ", stream_field,
                              " and its rate limit"));
  }
  return absl::OkStatus();
}

std::string joinPath(const std::string& path, absl::string_view field) {
  return path.empty() ? std::string(field) : absl::StrCat(path, ".", field);
}

std::string addressKey(const envoy::config::core::v3::Address& address) {
  const auto& sa = address.socket_address();
  return sa.address().find(':') == std::string::npos
             ? absl::StrCat(sa.address(), ":", sa.port_value())
             : absl::StrCat("[", sa.address(), "]:", sa.port_value());
}

}  // namespace

absl::Status checkResourceConfigSources(const envoy::config::listener::v3::Listener& listener,
                                        const Bootstrap::DynamicResources& dynamic,
                                        const std::string& path) {
  auto check_chain = [&](const envoy::config::listener::v3::FilterChain& chain,
                         const std::string& chain_path) -> absl::Status {
    for (int f = 0; f < chain.filters_size(); f++) {
      if (networkFilterType(chain.filters(f)) != NetworkFilterType::HttpConnectionManager) {
        continue;
      }
      absl::StatusOr<HttpConnectionManager> hcm = unpackHcm(chain.filters(f));
      if (hcm.ok() && hcm->has_rds()) {
        RETURN_IF_ERROR(checkResourceConfigSource(
            hcm->rds().config_source(), dynamic, /*rds=*/true,
            absl::StrCat(chain_path, ".filters[", f, "].typed_config.rds.config_source")));
      }
    }
    return absl::OkStatus();
  };
  for (int c = 0; c < listener.filter_chains_size(); c++) {
    RETURN_IF_ERROR(check_chain(listener.filter_chains(c),
                                joinPath(path, absl::StrCat("filter_chains[", c, "]"))));
  }
  if (listener.has_default_filter_chain()) {
    RETURN_IF_ERROR(
        check_chain(listener.default_filter_chain(), joinPath(path, "default_filter_chain")));
  }
  return absl::OkStatus();
}

absl::Status checkResourceConfigSources(const envoy::config::cluster::v3::Cluster& cluster,
                                        const Bootstrap::DynamicResources& dynamic,
                                        const std::string& path) {
  if (!cluster.has_eds_cluster_config()) {
    return absl::OkStatus();
  }
  return checkResourceConfigSource(cluster.eds_cluster_config().eds_config(), dynamic,
                                   /*rds=*/false, joinPath(path, "eds_cluster_config.eds_config"));
}

absl::Status validateBootstrap(const Bootstrap& bootstrap) {
  const auto& resources = bootstrap.static_resources();

  absl::flat_hash_set<std::string> cluster_names;
  for (int i = 0; i < resources.clusters_size(); i++) {
    const auto& cluster = resources.clusters(i);
    const std::string path = absl::StrCat("static_resources.clusters[", i, "]");
    RETURN_IF_ERROR(validateCluster(cluster, path));
    RETURN_IF_ERROR(checkResourceConfigSources(cluster, bootstrap.dynamic_resources(), path));
    if (!cluster_names.insert(cluster.name()).second) {
      return error(path, absl::StrCat("duplicate cluster name '", cluster.name(), "'"));
    }
  }
  const ConfigSourceChecker sources(bootstrap, cluster_names);

  absl::flat_hash_set<std::string> listener_names;
  absl::flat_hash_map<std::string, std::string> listener_addresses;  // address -> name
  for (int i = 0; i < resources.listeners_size(); i++) {
    const auto& listener = resources.listeners(i);
    const std::string path = absl::StrCat("static_resources.listeners[", i, "]");
    if (listener.name().empty()) {
      return error(path + ".name", "required");
    }
    RETURN_IF_ERROR(validateListener(listener, path));
    RETURN_IF_ERROR(checkResourceConfigSources(listener, bootstrap.dynamic_resources(), path));
    if (!listener_names.insert(listener.name()).second) {
      return error(path, absl::StrCat("duplicate listener name '", listener.name(), "'"));
    }
    // Port 0 asks the kernel for a fresh port each time, so those never collide.
    if (listener.address().socket_address().port_value() != 0) {
      const std::string key = addressKey(listener.address());
      auto [it, inserted] = listener_addresses.emplace(key, listener.name());
      if (!inserted) {
        return error(path, absl::StrCat("listener '", listener.name(), "' has duplicate address '",
                                        key, "' as existing listener '", it->second, "'"));
      }
    }
    // RDS config sources inside HTTP connection managers.
    for (int c = 0; c < listener.filter_chains_size(); c++) {
      const auto& filters = listener.filter_chains(c).filters();
      for (int f = 0; f < filters.size(); f++) {
        if (networkFilterType(filters.Get(f)) != NetworkFilterType::HttpConnectionManager) {
          continue;
        }
        absl::StatusOr<HttpConnectionManager> hcm = unpackHcm(filters.Get(f));
        if (hcm.ok() && hcm->has_rds()) {
          RETURN_IF_ERROR(sources.check(hcm->rds().config_source(),
                                        absl::StrCat(path, ".filter_chains[", c, "].filters[", f,
                                                     "].typed_config.rds.config_source")));
        }
      }
    }
  }

  for (int i = 0; i < resources.clusters_size(); i++) {
    const auto& cluster = resources.clusters(i);
    if (cluster.has_eds_cluster_config()) {
      RETURN_IF_ERROR(sources.check(
          cluster.eds_cluster_config().eds_config(),
          absl::StrCat("static_resources.clusters[", i, "].eds_cluster_config.eds_config")));
    }
  }

  if (bootstrap.has_dynamic_resources()) {
    const auto& dynamic = bootstrap.dynamic_resources();
    if (dynamic.has_ads_config()) {
      RETURN_IF_ERROR(
          validateApiConfigSource(dynamic.ads_config(), "dynamic_resources.ads_config"));
      RETURN_IF_ERROR(sources.checkApi(dynamic.ads_config(), "dynamic_resources.ads_config"));
    }
    if (dynamic.has_lds_config()) {
      RETURN_IF_ERROR(validateConfigSource(dynamic.lds_config(), "dynamic_resources.lds_config"));
      RETURN_IF_ERROR(sources.check(dynamic.lds_config(), "dynamic_resources.lds_config"));
    }
    if (dynamic.has_cds_config()) {
      RETURN_IF_ERROR(validateConfigSource(dynamic.cds_config(), "dynamic_resources.cds_config"));
      RETURN_IF_ERROR(sources.check(dynamic.cds_config(), "dynamic_resources.cds_config"));
    }
  }

  if (bootstrap.has_admin() && bootstrap.admin().has_address()) {
    RETURN_IF_ERROR(validateAddress(bootstrap.admin().address(), "admin.address"));
  }
  // Everything but the static resources (checked above, each in its own context): admin,
  // node, dynamic_resources and the bootstrap's own fields (stats, runtime, watchdogs, ...).
  Bootstrap rest = bootstrap;
  rest.mutable_static_resources()->clear_listeners();
  rest.mutable_static_resources()->clear_clusters();
  return checkSupportedFields(rest);
}

std::vector<UnsupportedField> findUnsupportedBootstrapFields(const Bootstrap& bootstrap) {
  std::vector<UnsupportedField> out;
  auto append = [&out](std::vector<UnsupportedField> more) {
    out.insert(out.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
  };
  const auto& resources = bootstrap.static_resources();
  for (int i = 0; i < resources.clusters_size(); i++) {
    append(findUnsupportedFields(resources.clusters(i),
                                 absl::StrCat("static_resources.clusters[", i, "]")));
  }
  for (int i = 0; i < resources.listeners_size(); i++) {
    append(findUnsupportedFields(resources.listeners(i),
                                 absl::StrCat("static_resources.listeners[", i, "]")));
  }
  Bootstrap rest = bootstrap;
  rest.mutable_static_resources()->clear_listeners();
  rest.mutable_static_resources()->clear_clusters();
  append(findUnsupportedFields(rest));
  return out;
}

absl::StatusOr<Bootstrap> loadBootstrap(const Options& options) {
  if (options.config_path.empty() && options.config_yaml.empty()) {
    return absl::InvalidArgumentError(
        "no configuration: at least one of --config-path or --config-yaml is required");
  }
  Bootstrap bootstrap;
  if (!options.config_path.empty()) {
    RETURN_IF_ERROR(loadFromFile(options.config_path, bootstrap));
  }
  if (!options.config_yaml.empty()) {
    // Like Envoy: parsed on its own, then merged (repeated fields append, scalars override).
    Bootstrap overlay;
    absl::Status status = loadFromYaml(options.config_yaml, overlay);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--config-yaml: ", status.message()));
    }
    bootstrap.MergeFrom(overlay);
  }

  if (!options.service_node.empty()) {
    bootstrap.mutable_node()->set_id(options.service_node);
  }
  if (!options.service_cluster.empty()) {
    bootstrap.mutable_node()->set_cluster(options.service_cluster);
  }
  if (!options.service_zone.empty()) {
    bootstrap.mutable_node()->mutable_locality()->set_zone(options.service_zone);
  }

  auto* listeners = bootstrap.mutable_static_resources()->mutable_listeners();
  for (int i = 0; i < listeners->size(); i++) {
    if (listeners->Get(i).name().empty()) {
      listeners->Mutable(i)->set_name(absl::StrCat("listener_", i));
    }
  }

  RETURN_IF_ERROR(validateBootstrap(bootstrap));
  return bootstrap;
}

}  // namespace Proxy::Config
