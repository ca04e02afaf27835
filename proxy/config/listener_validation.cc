#include "proxy/config/validation.h"

// validateListener and what it checks: the address, filter chains and their network filters, the
// HTTP connection manager (its route_config through route_validation.cc) and tcp_proxy.

#include "absl/strings/str_cat.h"

#include "proxy/config/validation_util.h"

#include <google/protobuf/util/message_differencer.h>

namespace Proxy::Config {
namespace {

using envoy::config::listener::v3::FilterChain;
using envoy::config::listener::v3::Listener;

absl::Status validateHcmAt(const std::string& path, const HttpConnectionManager& hcm) {
  if (hcm.stat_prefix().empty()) {
    return error(join(path, "stat_prefix"), "required");
  }
  if (hcm.codec_type() != HttpConnectionManager::AUTO &&
      hcm.codec_type() != HttpConnectionManager::HTTP1 &&
      hcm.codec_type() != HttpConnectionManager::HTTP2) {
    return error(join(path, "codec_type"),
                 absl::StrCat("unsupported codec type '",
                              HttpConnectionManager::CodecType_Name(hcm.codec_type()),
                              "' (only AUTO, HTTP1 and HTTP2)"));
  }
  switch (hcm.route_specifier_case()) {
    case HttpConnectionManager::kRds:
      if (!hcm.rds().has_config_source()) {
        return error(join(path, "rds.config_source"), "required");
      }
      RETURN_IF_ERROR(validateResourceConfigSourceAt(join(path, "rds.config_source"),
                                                     hcm.rds().config_source()));
      if (hcm.rds().route_config_name().empty()) {
        return error(join(path, "rds.route_config_name"), "required");
      }
      break;
    case HttpConnectionManager::kRouteConfig:
      RETURN_IF_ERROR(validateRouteConfigurationAt(join(path, "route_config"), hcm.route_config()));
      break;
    default:
      return error(path, "one of rds or route_config is required");
  }

  const auto& filters = hcm.http_filters();
  if (filters.empty()) {
    return error(join(path, "http_filters"),
                 "the last HTTP filter must be envoy.filters.http.router; none is configured");
  }
  for (int i = 0; i < filters.size(); i++) {
    const HttpFilter& filter = filters.Get(i);
    const std::string fp = at(path, "http_filters", i);
    const bool last = i == filters.size() - 1;
    if (isRouterFilter(filter)) {
      if (!last) {
        return error(fp, absl::StrCat("terminal filter named '", filter.name(),
                                      "' must be the last filter in a http filter chain"));
      }
      continue;
    }
    // Envoy skips an optional filter it does not know; so do we.
    if (filter.is_optional() && !last) {
      continue;
    }
    if (filter.is_optional()) {
      return error(fp, absl::StrCat("non-terminal filter named '", filter.name(),
                                    "' is the last filter in a http filter chain"));
    }
    if (filter.has_config_discovery()) {
      return error(join(fp, "config_discovery"), "filter config discovery is not supported");
    }
    if (!filter.has_typed_config()) {
      return error(fp, absl::StrCat("unsupported HTTP filter '", filter.name(), "'"));
    }
    return error(join(fp, "typed_config"), absl::StrCat("unsupported HTTP filter type '",
                                                        filter.typed_config().type_url(), "'"));
  }
  return absl::OkStatus();
}

absl::Status validateTcpProxyAt(const std::string& path, const TcpProxy& tcp) {
  if (tcp.stat_prefix().empty()) {
    return error(join(path, "stat_prefix"), "required");
  }
  switch (tcp.cluster_specifier_case()) {
    case TcpProxy::kCluster:
      if (tcp.cluster().empty()) {
        return error(join(path, "cluster"), "must not be empty");
      }
      break;
    case TcpProxy::kWeightedClusters: {
      const auto& clusters = tcp.weighted_clusters().clusters();
      if (clusters.empty()) {
        return error(join(path, "weighted_clusters.clusters"), "at least one cluster is required");
      }
      for (int i = 0; i < clusters.size(); i++) {
        const std::string cp = at(path, "weighted_clusters.clusters", i);
        if (clusters.Get(i).name().empty()) {
          return error(join(cp, "name"), "required");
        }
        if (clusters.Get(i).weight() == 0) {
          return error(join(cp, "weight"), "must be at least 1");
        }
      }
      break;
    }
    default:
      return error(path, "one of cluster or weighted_clusters is required");
  }
  if (tcp.has_tunneling_config()) {
    return error(join(path, "tunneling_config"), "tunneling is not supported");
  }
  if (tcp.has_on_demand()) {
    return error(join(path, "on_demand"), "on-demand cluster discovery is not supported");
  }
  return absl::OkStatus();
}

absl::Status validateFilterChain(const std::string& path, const FilterChain& chain) {
  if (chain.has_transport_socket()) {
    const auto& ts = chain.transport_socket();
    if (!ts.has_typed_config() || (typeName(ts.typed_config()) != kRawBufferTypeName &&
                                   typeName(ts.typed_config()) != kDownstreamTlsContextTypeName)) {
      return error(
          join(path, "transport_socket"),
          absl::StrCat("unsupported transport socket type '",
                       ts.has_typed_config() ? ts.typed_config().type_url() : ts.name(), "'"));
    }
  }
  if (chain.use_proxy_proto().value()) {
    return error(join(path, "use_proxy_proto"), "the PROXY protocol is not supported");
  }
  const auto& filters = chain.filters();
  if (filters.empty()) {
    return error(join(path, "filters"), "at least one network filter is required");
  }
  for (int i = 0; i < filters.size(); i++) {
    const auto& filter = filters.Get(i);
    const std::string fp = at(path, "filters", i);
    const std::string tp = join(fp, "typed_config");
    if (filter.has_config_discovery()) {
      return error(join(fp, "config_discovery"), "filter config discovery is not supported");
    }
    if (!filter.has_typed_config()) {
      return error(tp, "required");
    }
    switch (networkFilterType(filter)) {
      case NetworkFilterType::HttpConnectionManager: {
        absl::StatusOr<HttpConnectionManager> hcm = unpackHcm(filter);
        if (!hcm.ok()) {
          return error(
              tp, absl::StrCat("unable to parse ", std::string(typeName(filter.typed_config()))));
        }
        RETURN_IF_ERROR(validateHcmAt(tp, *hcm));
        break;
      }
      case NetworkFilterType::TcpProxy: {
        absl::StatusOr<TcpProxy> tcp = unpackTcpProxy(filter);
        if (!tcp.ok()) {
          return error(
              tp, absl::StrCat("unable to parse ", std::string(typeName(filter.typed_config()))));
        }
        RETURN_IF_ERROR(validateTcpProxyAt(tp, *tcp));
        break;
      }
      case NetworkFilterType::Unsupported:
        return error(tp, absl::StrCat("unsupported network filter type '",
                                      filter.typed_config().type_url(), "'"));
    }
    // Both filters we support are terminal: nothing may follow them.
    if (i != filters.size() - 1) {
      return error(fp, absl::StrCat("terminal filter named '", filter.name(), "' of type '",
                                    std::string(typeName(filter.typed_config())),
                                    "' must be the last filter in a network filter chain"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

static absl::Status validateListenerValues(const Listener& listener, const std::string& path);

absl::Status validateListener(const Listener& listener, const std::string& path) {
  RETURN_IF_ERROR(validateListenerValues(listener, path));
  return checkSupportedFields(listener, path);
}

static absl::Status validateListenerValues(const Listener& listener, const std::string& path) {
  if (listener.has_api_listener()) {
    return error(join(path, "api_listener"), "not supported");
  }
  if (listener.has_internal_listener()) {
    return error(join(path, "internal_listener"), "not supported");
  }
  if (!listener.has_address()) {
    return error(join(path, "address"), "required");
  }
  RETURN_IF_ERROR(
      validateSocketAddress(join(path, "address"), listener.address(), /*is_endpoint=*/false));
  if (!listener.additional_addresses().empty()) {
    return error(join(path, "additional_addresses"), "not supported");
  }
  if (listener.filter_chains().empty() && !listener.has_default_filter_chain()) {
    return error(join(path, "filter_chains"), "no filter chains specified");
  }
  for (int i = 0; i < listener.filter_chains_size(); i++) {
    RETURN_IF_ERROR(validateFilterChain(at(path, "filter_chains", i), listener.filter_chains(i)));
    for (int j = 0; j < i; j++) {
      if (google::protobuf::util::MessageDifferencer::Equals(
              listener.filter_chains(i).filter_chain_match(),
              listener.filter_chains(j).filter_chain_match())) {
        return error(at(path, "filter_chains", i),
                     absl::StrCat("has the same filter_chain_match as filter_chains[", j, "]"));
      }
    }
  }
  if (listener.has_default_filter_chain()) {
    RETURN_IF_ERROR(
        validateFilterChain(join(path, "default_filter_chain"), listener.default_filter_chain()));
  }
  return absl::OkStatus();
}

absl::Status validateHttpConnectionManager(const HttpConnectionManager& hcm,
                                           const std::string& path) {
  return validateHcmAt(path, hcm);
}

absl::Status validateTcpProxy(const TcpProxy& tcp_proxy, const std::string& path) {
  return validateTcpProxyAt(path, tcp_proxy);
}

}  // namespace Proxy::Config
