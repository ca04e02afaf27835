#pragma once

// Hosts and host-set snapshots built from a ClusterLoadAssignment on the main thread. A rebuild
// reuses the Host objects of endpoints that did not change, so workers keep their pools to them.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

// The key of an envoy.config.core.v3.Locality.
std::string localityKey(const envoy::config::core::v3::Locality& locality);

// How hosts are made (Host has no other kind).
class HostImpl final : public Host {
 public:
  // `stats` may be shared with an earlier Host for the same address (see buildHostSet()), so
  // that an endpoint whose weight or health changed keeps its counters and its rq_active.
  // `health_state` likewise: the endpoint keeps its active health check and outlier state.
  HostImpl(Network::Address address, std::string hostname, std::string cluster_name,
           uint32_t weight, uint32_t priority, HealthStatus health,
           std::shared_ptr<HostStats> stats = nullptr,
           std::shared_ptr<HostHealthState> health_state = nullptr, HostLocality locality = {});
  // The compact form buildHostSet() uses: the locality, with the cluster name (set), is shared
  // by every host of one LocalityLbEndpoints (config memory: a host is 104 bytes plus its
  // stats, issue 14).
  HostImpl(Network::Address address, std::string hostname, uint32_t weight, uint32_t priority,
           HealthStatus health, std::shared_ptr<HostStats> stats,
           std::shared_ptr<HostHealthState> health_state,
           std::shared_ptr<const HostLocality> locality);
};

// An endpoint's LbEndpoint.health_status as the proxy keeps it (TIMEOUT is UNHEALTHY, as Envoy).
HealthStatus healthStatusFromProto(envoy::config::core::v3::HealthStatus status);

// True for the statuses the load balancer may pick (Healthy, Degraded, Unknown), as Envoy's
// EDS health: UNHEALTHY, DRAINING and TIMEOUT hosts take no new requests.
bool isHealthyForLb(HealthStatus health);

// What the load balancer makes of a host (Envoy's Host::coarseHealth()): Unhealthy when EDS,
// active health checking or outlier detection failed it (or EDS drains it), Degraded when EDS
// says DEGRADED, Healthy otherwise.
enum class CoarseHealth { Healthy, Degraded, Unhealthy };
CoarseHealth coarseHealth(const Host& host);

// Envoy's /clusters health_flags, in Envoy's order: "healthy", or the set flags among
// "/failed_active_hc", "/failed_outlier_check", "/failed_eds_health", "/degraded_eds_health",
// "/pending_active_hc", "/active_hc_timeout", "/eds_status_draining".
std::string healthFlagsString(const Host& host);

// The snapshot of `hosts` as the load balancers need it (Envoy's priority load and panic mode,
// LoadBalancerBase::recalculatePerPriorityState): per priority, the healthy and degraded hosts
// from each host's coarseHealth() now; each priority's availability is 1.4 x its healthy share
// (the overprovisioning factor), capped at 100%, and load goes to priority 0 up to its
// availability, the rest to the next ones; a priority whose healthy + degraded share is below
// `panic_threshold` percent is in panic (balanced over all its hosts) unless the priorities
// together are fully available; when every priority is in panic, load follows host counts.
// EDS DRAINING hosts are excluded (Envoy's excluded hosts): counted nowhere, picked never.
// `locality_weighted`: each priority's localities and their effective weights are computed too
// (PriorityHosts::localities).
std::shared_ptr<HostSet> computeHostSet(HostVector hosts, uint32_t panic_threshold,
                                        bool locality_weighted = false);

// New Host objects for the same endpoints (same attributes, same stats) with fresh health state,
// for a new version of the cluster: its health checks and outlier detection start over, while
// the version still serving keeps its own.
HostVector withFreshHealthState(const HostVector& hosts);

// New Host objects for the same endpoints in cluster `cluster_name`, with their own stats and
// health state: a cluster that watches an assignment another cluster already has takes its
// endpoints from that cluster's hosts (the assignment itself is not kept).
HostVector copyHostsForCluster(const HostVector& hosts, const std::string& cluster_name);

// Builds the snapshot of `cla` for cluster `cluster_name`. A host whose address, hostname,
// weight, priority and health all equal one in `previous` is that same object; a host whose
// address exists in `previous` but whose attributes changed is a new object sharing the old
// one's stats and health state. The lists and loads are computeHostSet()'s with a 50% panic
// threshold (the cluster manager recomputes them with the cluster's). Errors name the field,
// relative to the ClusterLoadAssignment: "endpoints[0].lb_endpoints[1].endpoint.address: ...".
absl::StatusOr<HostSetConstSharedPtr> buildHostSet(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla, const HostSet* previous,
    const std::string& cluster_name);
// buildHostSet()'s hosts alone, in endpoint order, for a caller that computes the lists with
// its own settings (the cluster manager: computeHostSet() once per update, not twice).
absl::StatusOr<HostVector> buildHosts(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
                                      const HostSet* previous, const std::string& cluster_name);

}  // namespace Proxy::Upstream
