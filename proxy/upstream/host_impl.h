#pragma once

// Hosts and host-set snapshots built from a ClusterLoadAssignment on the main thread. A rebuild
// reuses the Host objects of endpoints that did not change, so workers keep their pools to them.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

class HostImpl : public Host {
 public:
  // `stats` may be shared with an earlier Host for the same address (see buildHostSet()), so
  // that an endpoint whose weight or health changed keeps its counters and its rq_active.
  HostImpl(Network::Address address, std::string hostname, std::string cluster_name,
           uint32_t weight, uint32_t priority, HealthStatus health,
           std::shared_ptr<HostStats> stats = nullptr);

  const Network::Address& address() const override { return address_; }
  const std::string& hostname() const override { return hostname_; }
  const std::string& clusterName() const override { return cluster_name_; }
  uint32_t weight() const override { return weight_; }
  uint32_t priority() const override { return priority_; }
  HealthStatus health() const override { return health_; }
  HostStats& stats() const override { return *stats_; }

  const std::shared_ptr<HostStats>& sharedStats() const { return stats_; }

 private:
  const Network::Address address_;
  const std::string hostname_;
  const std::string cluster_name_;
  const uint32_t weight_;
  const uint32_t priority_;
  const HealthStatus health_;
  const std::shared_ptr<HostStats> stats_;
};

// True for the statuses the load balancer may pick (Healthy, Degraded, Unknown), as Envoy's
// EDS health: UNHEALTHY, DRAINING and TIMEOUT hosts take no new requests.
bool isHealthyForLb(HealthStatus health);

// Envoy's /clusters health_flags: "healthy", "/failed_eds_health", "/degraded_eds_health",
// "/eds_status_draining".
std::string healthFlagsString(HealthStatus health);

// Builds the snapshot of `cla` for cluster `cluster_name`. A host whose address, hostname,
// weight, priority and health all equal one in `previous` is that same object; a host whose
// address exists in `previous` but whose attributes changed is a new object sharing the old
// one's stats. healthy_hosts holds the LB candidates of the lowest priority that has any (a
// simplification of Envoy's priority spill-over: lower priorities serve only as failover).
// Errors name the field, relative to the ClusterLoadAssignment:
// "endpoints[0].lb_endpoints[1].endpoint.address: ...".
absl::StatusOr<HostSetConstSharedPtr> buildHostSet(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla, const HostSet* previous,
    const std::string& cluster_name);

}  // namespace Proxy::Upstream
