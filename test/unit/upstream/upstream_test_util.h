#pragma once

// Builders shared by the upstream tests: hosts, host sets and ClusterLoadAssignments.

#include <memory>
#include <string>
#include <vector>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "gtest/gtest.h"
#include "proxy/upstream/host_impl.h"

namespace Proxy::Upstream {

inline Network::Address loopback(uint32_t port) {
  absl::StatusOr<Network::Address> address = Network::Address::fromIpPort("127.0.0.1", port);
  EXPECT_TRUE(address.ok());
  return *address;
}

inline HostConstSharedPtr makeHost(uint32_t port, uint32_t weight = 1,
                                   HealthStatus health = HealthStatus::Healthy,
                                   uint32_t priority = 0) {
  return std::make_shared<HostImpl>(loopback(port), /*hostname=*/"", /*cluster_name=*/"test",
                                    weight, priority, health);
}

// The snapshot of `hosts` as the cluster manager builds it (lists, loads, panic).
inline HostSetConstSharedPtr makeHostSet(const HostVector& hosts, uint32_t panic_threshold = 50) {
  return computeHostSet(hosts, panic_threshold);
}

struct EndpointSpec {
  std::string ip = "127.0.0.1";
  uint32_t port = 0;
  uint32_t weight = 0;  // 0: leave load_balancing_weight unset
  envoy::config::core::v3::HealthStatus health = envoy::config::core::v3::UNKNOWN;
  uint32_t priority = 0;
};

// One locality per distinct priority, endpoints in the given order.
inline envoy::config::endpoint::v3::ClusterLoadAssignment makeAssignment(
    const std::string& cluster_name, const std::vector<EndpointSpec>& endpoints) {
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  cla.set_cluster_name(cluster_name);
  for (const EndpointSpec& spec : endpoints) {
    envoy::config::endpoint::v3::LocalityLbEndpoints* locality = nullptr;
    for (auto& existing : *cla.mutable_endpoints()) {
      if (existing.priority() == spec.priority) {
        locality = &existing;
      }
    }
    if (locality == nullptr) {
      locality = cla.add_endpoints();
      locality->set_priority(spec.priority);
    }
    auto* lb_endpoint = locality->add_lb_endpoints();
    auto* socket_address =
        lb_endpoint->mutable_endpoint()->mutable_address()->mutable_socket_address();
    socket_address->set_address(spec.ip);
    socket_address->set_port_value(spec.port);
    if (spec.weight != 0) {
      lb_endpoint->mutable_load_balancing_weight()->set_value(spec.weight);
    }
    lb_endpoint->set_health_status(spec.health);
  }
  return cla;
}

}  // namespace Proxy::Upstream
