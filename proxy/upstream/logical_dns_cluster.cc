#include "proxy/upstream/logical_dns_cluster.h"

#include <memory>

#include "proxy/upstream/host_impl.h"

namespace Proxy::Upstream {

absl::Status validateLogicalDnsLoadAssignment(const envoy::config::cluster::v3::Cluster& config) {
  const auto& endpoints = config.load_assignment().endpoints();
  if (endpoints.size() != 1 || endpoints[0].lb_endpoints_size() != 1) {
    return absl::InvalidArgumentError(
        config.has_load_assignment()
            ? "load_assignment: LOGICAL_DNS clusters must have a single locality_lb_endpoint and "
              "a single lb_endpoint"
            : "load_assignment: LOGICAL_DNS clusters must have a single host");
  }
  return absl::OkStatus();
}

bool updateLogicalDnsHost(const std::list<Network::DnsResponse>& response, uint32_t port,
                          const std::string& hostname, const std::string& cluster_name,
                          uint32_t weight, HealthStatus health, LogicalDnsHostState& current) {
  std::vector<std::string> addresses;
  addresses.reserve(response.size());
  for (const Network::DnsResponse& answer : response) {
    addresses.push_back(answer.address.ip());
  }
  if (current.host != nullptr && addresses == current.addresses) {
    return false;
  }
  absl::StatusOr<Network::Address> primary =
      Network::Address::fromIpPort(response.front().address.ip(), port);
  // Priority 0 whatever the config says (Envoy rewrites it: one host, one priority).
  current.host = std::make_shared<HostImpl>(*primary, hostname, cluster_name, weight,
                                            /*priority=*/0, health);
  current.addresses = std::move(addresses);
  return true;
}

}  // namespace Proxy::Upstream
