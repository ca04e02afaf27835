#include "proxy/upstream/host_impl.h"

#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "envoy/config/core/v3/health_check.pb.h"

namespace Proxy::Upstream {

namespace {

using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::endpoint::v3::LbEndpoint;

HealthStatus healthFromProto(envoy::config::core::v3::HealthStatus status) {
  switch (status) {
    case envoy::config::core::v3::HEALTHY:
      return HealthStatus::Healthy;
    case envoy::config::core::v3::UNHEALTHY:
    case envoy::config::core::v3::TIMEOUT:  // Envoy treats an EDS TIMEOUT as unhealthy
      return HealthStatus::Unhealthy;
    case envoy::config::core::v3::DRAINING:
      return HealthStatus::Draining;
    case envoy::config::core::v3::DEGRADED:
      return HealthStatus::Degraded;
    default:
      return HealthStatus::Unknown;
  }
}

absl::StatusOr<Network::Address> parseAddress(const envoy::config::core::v3::Address& address,
                                              const std::string& field) {
  if (!address.has_socket_address()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": only socket_address is supported for upstream endpoints"));
  }
  const auto& sa = address.socket_address();
  if (sa.protocol() != envoy::config::core::v3::SocketAddress::TCP) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".socket_address.protocol: only TCP is supported"));
  }
  if (sa.port_specifier_case() == envoy::config::core::v3::SocketAddress::kNamedPort) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".socket_address.named_port: named ports are not supported"));
  }
  if (sa.port_value() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".socket_address.port_value: ", sa.port_value(), " is not a valid port"));
  }
  absl::StatusOr<Network::Address> parsed =
      Network::Address::fromIpPort(sa.address(), sa.port_value());
  if (!parsed.ok()) {
    // Hostnames would need DNS (STRICT_DNS/LOGICAL_DNS resolution), which we do not do yet.
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".socket_address.address: '", sa.address(), "' is not an IP address"));
  }
  return parsed;
}

bool sameAttributes(const Host& host, const std::string& hostname, uint32_t weight,
                    uint32_t priority, HealthStatus health) {
  return host.hostname() == hostname && host.weight() == weight && host.priority() == priority &&
         host.health() == health;
}

}  // namespace

HostImpl::HostImpl(Network::Address address, std::string hostname, std::string cluster_name,
                   uint32_t weight, uint32_t priority, HealthStatus health,
                   std::shared_ptr<HostStats> stats)
    : address_(address),
      hostname_(std::move(hostname)),
      cluster_name_(std::move(cluster_name)),
      weight_(weight),
      priority_(priority),
      health_(health),
      stats_(stats != nullptr ? std::move(stats) : std::make_shared<HostStats>()) {}

bool isHealthyForLb(HealthStatus health) {
  return health == HealthStatus::Healthy || health == HealthStatus::Degraded ||
         health == HealthStatus::Unknown;
}

std::string healthFlagsString(HealthStatus health) {
  switch (health) {
    case HealthStatus::Healthy:
    case HealthStatus::Unknown:
      return "healthy";
    case HealthStatus::Degraded:
      return "/degraded_eds_health";
    case HealthStatus::Draining:
      return "/eds_status_draining";
    case HealthStatus::Unhealthy:
      return "/failed_eds_health";
  }
  return "healthy";
}

absl::StatusOr<HostSetConstSharedPtr> buildHostSet(const ClusterLoadAssignment& cla,
                                                   const HostSet* previous,
                                                   const std::string& cluster_name) {
  // Index the previous snapshot by address so a rebuild finds the object to reuse in O(1).
  // Duplicate addresses are allowed (Envoy accepts them); each previous host is reused once.
  std::unordered_multimap<std::string, HostConstSharedPtr> previous_hosts;
  if (previous != nullptr) {
    previous_hosts.reserve(previous->hosts.size());
    for (const HostConstSharedPtr& host : previous->hosts) {
      previous_hosts.emplace(host->address().asString(), host);
    }
  }

  auto host_set = std::make_shared<HostSet>();
  uint32_t lowest_healthy_priority = UINT32_MAX;

  for (int i = 0; i < cla.endpoints_size(); i++) {
    const auto& locality = cla.endpoints(i);
    const std::string locality_field = absl::StrCat("endpoints[", i, "]");
    if (locality.has_leds_cluster_locality_config()) {
      return absl::InvalidArgumentError(
          absl::StrCat(locality_field, ".leds_cluster_locality_config: LEDS is not supported"));
    }
    // lb_endpoints and the load_balancer_endpoints list are alternatives; accept either.
    const bool use_list = locality.has_load_balancer_endpoints();
    const auto& lb_endpoints =
        use_list ? locality.load_balancer_endpoints().lb_endpoints() : locality.lb_endpoints();
    const std::string list_field =
        absl::StrCat(locality_field, use_list ? ".load_balancer_endpoints" : "", ".lb_endpoints");

    for (int j = 0; j < lb_endpoints.size(); j++) {
      const LbEndpoint& lb_endpoint = lb_endpoints.Get(j);
      const std::string field = absl::StrCat(list_field, "[", j, "]");

      const envoy::config::endpoint::v3::Endpoint* endpoint = &lb_endpoint.endpoint();
      if (lb_endpoint.host_identifier_case() == LbEndpoint::kEndpointName) {
        auto named = cla.named_endpoints().find(lb_endpoint.endpoint_name());
        if (named == cla.named_endpoints().end()) {
          return absl::InvalidArgumentError(absl::StrCat(field, ".endpoint_name: '",
                                                         lb_endpoint.endpoint_name(),
                                                         "' is not in named_endpoints"));
        }
        endpoint = &named->second;
      }

      absl::StatusOr<Network::Address> address =
          parseAddress(endpoint->address(), absl::StrCat(field, ".endpoint.address"));
      if (!address.ok()) {
        return address.status();
      }
      uint32_t weight = 1;
      if (lb_endpoint.has_load_balancing_weight()) {
        weight = lb_endpoint.load_balancing_weight().value();
        if (weight == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(field, ".load_balancing_weight: must be at least 1"));
        }
      }
      const HealthStatus health = healthFromProto(lb_endpoint.health_status());
      const uint32_t priority = locality.priority();

      // Reuse the identical host, or at least its stats when only attributes changed.
      HostConstSharedPtr host;
      std::shared_ptr<HostStats> stats;
      auto range = previous_hosts.equal_range(address->asString());
      for (auto it = range.first; it != range.second; ++it) {
        if (sameAttributes(*it->second, endpoint->hostname(), weight, priority, health)) {
          host = it->second;
          previous_hosts.erase(it);
          break;
        }
      }
      if (host == nullptr) {
        if (range.first != range.second) {
          stats = static_cast<const HostImpl&>(*range.first->second).sharedStats();
        }
        host = std::make_shared<HostImpl>(*address, endpoint->hostname(), cluster_name, weight,
                                          priority, health, std::move(stats));
      }

      if (isHealthyForLb(health) && priority < lowest_healthy_priority) {
        lowest_healthy_priority = priority;
      }
      host_set->hosts.push_back(std::move(host));
    }
  }

  for (const HostConstSharedPtr& host : host_set->hosts) {
    if (isHealthyForLb(host->health()) && host->priority() == lowest_healthy_priority) {
      host_set->healthy_hosts.push_back(host);
    }
  }
  return HostSetConstSharedPtr(std::move(host_set));
}

}  // namespace Proxy::Upstream
