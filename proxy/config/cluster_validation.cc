#include "proxy/config/validation.h"

// validateCluster and validateClusterLoadAssignment: the cluster's discovery type, load
// assignment (endpoints), timeouts, load balancing policy, transport socket and protocol options.

#include <string>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.pb.h"

#include "proxy/config/validation_util.h"

namespace Proxy::Config {
namespace {

using envoy::config::cluster::v3::Cluster;

// `dns`: the load_assignment of a STRICT_DNS / LOGICAL_DNS cluster, whose addresses are names.
absl::Status validateClusterLoadAssignmentAt(
    const std::string& path, const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
    bool dns = false) {
  using envoy::config::endpoint::v3::LbEndpoint;
  using envoy::config::endpoint::v3::LocalityLbEndpoints;
  for (int i = 0; i < cla.endpoints_size(); i++) {
    const LocalityLbEndpoints& locality = cla.endpoints(i);
    const std::string lp = at(path, "endpoints", i);
    if (locality.lb_config_case() != LocalityLbEndpoints::LB_CONFIG_NOT_SET) {
      return error(lp,
                   "load_balancer_endpoints and leds_cluster_locality_config are not "
                   "supported (use lb_endpoints)");
    }
    if (locality.has_load_balancing_weight() && locality.load_balancing_weight().value() == 0) {
      return error(join(lp, "load_balancing_weight"), "must be at least 1");
    }
    for (int j = 0; j < locality.lb_endpoints_size(); j++) {
      const LbEndpoint& lb = locality.lb_endpoints(j);
      const std::string ep = at(lp, "lb_endpoints", j);
      switch (lb.host_identifier_case()) {
        case LbEndpoint::kEndpoint:
          if (!lb.endpoint().has_address()) {
            return error(join(ep, "endpoint.address"), "required");
          }
          RETURN_IF_ERROR(validateSocketAddress(join(ep, "endpoint.address"),
                                                lb.endpoint().address(),
                                                /*is_endpoint=*/true, /*allow_hostname=*/dns));
          break;
        case LbEndpoint::kEndpointName:
          return error(join(ep, "endpoint_name"), "named endpoints are not supported");
        default:
          return error(join(ep, "endpoint"), "required");
      }
      if (lb.has_load_balancing_weight() && lb.load_balancing_weight().value() == 0) {
        return error(join(ep, "load_balancing_weight"), "must be at least 1");
      }
    }
  }
  return absl::OkStatus();
}

bool atLeastOneMs(const google::protobuf::Duration& d) {
  return d.seconds() > 0 || (d.seconds() == 0 && d.nanos() >= 1000000);
}

int64_t toMs(const google::protobuf::Duration& d) {
  return d.seconds() * 1000 + d.nanos() / 1000000;
}

// The DNS settings' values (proxy/upstream/strict_dns_cluster.cc parses them again, with the
// same words). The field table refuses them on clusters of other types.
absl::Status validateDnsFields(const Cluster& cluster, const std::string& path) {
  if (cluster.has_dns_refresh_rate() && !atLeastOneMs(cluster.dns_refresh_rate())) {
    return error(join(path, "dns_refresh_rate"), "must be at least 1ms");
  }
  if (cluster.has_dns_failure_refresh_rate()) {
    const auto& rate = cluster.dns_failure_refresh_rate();
    const std::string rp = join(path, "dns_failure_refresh_rate");
    if (!rate.has_base_interval() || !atLeastOneMs(rate.base_interval())) {
      return error(join(rp, "base_interval"), "must be at least 1ms");
    }
    if (rate.has_max_interval() && !atLeastOneMs(rate.max_interval())) {
      return error(join(rp, "max_interval"), "must be at least 1ms");
    }
    if (rate.has_max_interval() && toMs(rate.max_interval()) < toMs(rate.base_interval())) {
      return error(rp,
                   "dns_failure_refresh_rate must have max_interval greater than or equal to the "
                   "base_interval");
    }
  }
  if (cluster.has_typed_dns_resolver_config()) {
    const auto& typed = cluster.typed_dns_resolver_config();
    const std::string tp = join(path, "typed_dns_resolver_config");
    envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig cares;
    if (!typed.has_typed_config() || !typed.typed_config().Is<decltype(cares)>() ||
        !typed.typed_config().UnpackTo(&cares)) {
      return error(tp, absl::StrCat("unsupported DNS resolver '",
                                    typed.has_typed_config() ? typed.typed_config().type_url()
                                                             : typed.name(),
                                    "' (only envoy.network.dns_resolver.cares is supported)"));
    }
    if (cares.resolvers().empty()) {
      return error(join(tp, "typed_config.resolvers"), "at least one resolver is required");
    }
    for (int i = 0; i < cares.resolvers_size(); i++) {
      RETURN_IF_ERROR(validateSocketAddress(at(join(tp, "typed_config"), "resolvers", i),
                                            cares.resolvers(i), /*is_endpoint=*/false));
    }
  }
  return absl::OkStatus();
}

}  // namespace

static absl::Status validateClusterValues(const Cluster& cluster, const std::string& path);

absl::Status validateCluster(const Cluster& cluster, const std::string& path,
                             const FieldCheckContext& context) {
  RETURN_IF_ERROR(validateClusterValues(cluster, path));
  return checkSupportedFields(cluster, path, context);
}

static absl::Status validateClusterValues(const Cluster& cluster, const std::string& path) {
  if (cluster.name().empty()) {
    return error(join(path, "name"), "required");
  }
  if (cluster.has_cluster_type()) {
    return error(join(path, "cluster_type"), "custom cluster types are not supported");
  }
  switch (cluster.type()) {
    case Cluster::STATIC:
      if (!cluster.has_load_assignment()) {
        return error(join(path, "load_assignment"), "required for a STATIC cluster");
      }
      break;
    case Cluster::EDS:
      if (!cluster.has_eds_cluster_config() || !cluster.eds_cluster_config().has_eds_config()) {
        return error(join(path, "eds_cluster_config"),
                     "cannot create an EDS cluster without an EDS config");
      }
      RETURN_IF_ERROR(validateResourceConfigSourceAt(join(path, "eds_cluster_config.eds_config"),
                                                     cluster.eds_cluster_config().eds_config()));
      break;
    case Cluster::STRICT_DNS:
      break;
    case Cluster::LOGICAL_DNS:
      // Envoy's words (DnsClusterImpl): the logical host is one name.
      if (cluster.load_assignment().endpoints_size() != 1 ||
          cluster.load_assignment().endpoints(0).lb_endpoints_size() != 1) {
        return error(join(path, "load_assignment"),
                     cluster.has_load_assignment()
                         ? "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a "
                           "single lb_endpoint"
                         : "LOGICAL_DNS clusters must have a single host");
      }
      break;
    default:
      return error(
          join(path, "type"),
          absl::StrCat("unsupported cluster type '", Cluster::DiscoveryType_Name(cluster.type()),
                       "' (only STATIC, STRICT_DNS, LOGICAL_DNS and EDS are supported)"));
  }
  const bool dns = cluster.type() == Cluster::STRICT_DNS || cluster.type() == Cluster::LOGICAL_DNS;
  if (cluster.has_load_assignment()) {
    RETURN_IF_ERROR(validateClusterLoadAssignmentAt(join(path, "load_assignment"),
                                                    cluster.load_assignment(), dns));
  }
  RETURN_IF_ERROR(validateDnsFields(cluster, path));
  if (cluster.has_connect_timeout() && !isPositive(cluster.connect_timeout())) {
    return error(join(path, "connect_timeout"), "must be greater than 0s");
  }
  switch (cluster.lb_policy()) {
    case Cluster::ROUND_ROBIN:
    case Cluster::LEAST_REQUEST:
    case Cluster::RANDOM:
    case Cluster::RING_HASH:
    case Cluster::MAGLEV:
      break;
    default: {
      const std::string& name = Cluster::LbPolicy_Name(cluster.lb_policy());
      return error(join(path, "lb_policy"),
                   absl::StrCat("unsupported load balancing policy '",
                                name.empty() ? std::to_string(cluster.lb_policy()) : name, "'"));
    }
  }
  if (cluster.has_transport_socket()) {
    const auto& ts = cluster.transport_socket();
    if (!ts.has_typed_config() || (typeName(ts.typed_config()) != kRawBufferTypeName &&
                                   typeName(ts.typed_config()) != kUpstreamTlsContextTypeName)) {
      return error(
          join(path, "transport_socket"),
          absl::StrCat("unsupported transport socket type '",
                       ts.has_typed_config() ? ts.typed_config().type_url() : ts.name(), "'"));
    }
  }
  if (!cluster.transport_socket_matches().empty()) {
    return error(join(path, "transport_socket_matches"), "not supported");
  }
  for (const auto& [name, options] : cluster.typed_extension_protocol_options()) {
    const std::string op =
        absl::StrCat(join(path, "typed_extension_protocol_options"), "['", name, "']");
    if (name != kHttpProtocolOptionsName) {
      return error(op, "unsupported protocol options");
    }
    HttpProtocolOptions http_options;
    if (!options.Is<HttpProtocolOptions>() || !options.UnpackTo(&http_options)) {
      return error(op, absl::StrCat("expected type '", typeUrl<HttpProtocolOptions>(), "', got '",
                                    options.type_url(), "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status validateClusterLoadAssignment(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla, const std::string& path) {
  RETURN_IF_ERROR(validateClusterLoadAssignmentAt(path, cla));
  return checkSupportedFields(cla, path);
}

}  // namespace Proxy::Config
