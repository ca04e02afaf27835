#pragma once

// DNS clusters: STRICT_DNS and LOGICAL_DNS, as Envoy 1.40's merged DnsClusterImpl
// (source/extensions/clusters/dns/dns_cluster.cc; the strict/logical split of older Envoys is in
// the host lists each target makes, logical_dns_cluster.cc for LOGICAL_DNS).
//
// Every lb_endpoint of the load_assignment is a resolve target: its socket address is a name
// (or an IP literal, resolved at once) re-resolved on the main thread every dns_refresh_rate
// (or the answer's TTL with respect_dns_ttl; after a failure, dns_failure_refresh_rate's
// jittered back-off, else dns_refresh_rate). The cluster's hosts are every target's hosts in
// config order:
//   STRICT_DNS: one host per address of the answer, with the endpoint's port, weight, priority
//     and health; an address already there keeps its Host object (so its health state and the
//     workers' pools to it), a new one is a new host, a missing one is removed. An empty answer
//     (no such name) is a success with no hosts; a failure (no answer) keeps the last hosts.
//   LOGICAL_DNS: one host, the first address of the answer, priority 0; replaced by a new host
//     when the answer changes (Envoy 1.40), so new connections go to the new address while
//     those to the old one finish. An empty answer is a failure.
// The cluster counts as initialized after the first resolution of any target, success or not
// (Envoy's rule), or at once when it has no target.
//
// Stats (cluster.<name>.): update_attempt per resolution started, update_success /
// update_failure per answer, update_no_rebuild when an answer changed nothing.

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "proxy/event/dispatcher.h"
#include "proxy/network/dns_impl.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

// The DNS settings of a STRICT_DNS / LOGICAL_DNS Cluster, validated.
struct DnsClusterConfig {
  // Errors name the field: "dns_refresh_rate: must be at least 1ms".
  static absl::StatusOr<DnsClusterConfig> create(const envoy::config::cluster::v3::Cluster& config);

  bool logical = false;  // LOGICAL_DNS
  std::chrono::milliseconds refresh_rate{5000};
  // dns_failure_refresh_rate: Envoy's jittered exponential back-off; unset: refresh_rate.
  std::optional<std::chrono::milliseconds> failure_base_interval;
  std::chrono::milliseconds failure_max_interval{0};
  bool respect_dns_ttl = false;
  Network::DnsLookupFamily lookup_family = Network::DnsLookupFamily::Auto;
  Network::DnsResolverOptions resolver;
};

struct DnsClusterStats {
  explicit DnsClusterStats(Stats::Scope scope);
  Stats::Counter& update_attempt;
  Stats::Counter& update_success;
  Stats::Counter& update_failure;
  Stats::Counter& update_no_rebuild;
};

// Main thread only. Owns its resolver; destroying it cancels every query and timer.
class DnsClusterImpl {
 public:
  // `on_hosts` gets the cluster's new host list whenever an answer changed it; `on_initialized`
  // runs once, after the first resolution (both may run inside start()).
  DnsClusterImpl(Event::Dispatcher& dispatcher, Stats::Store& store,
                 const envoy::config::cluster::v3::Cluster& config, DnsClusterConfig dns_config,
                 ClusterInfoImplConstSharedPtr info, std::function<void(HostVector)> on_hosts,
                 std::function<void()> on_initialized);
  ~DnsClusterImpl();

  void start();

 private:
  class ResolveTarget;

  HostVector allHosts() const;
  void onTargetHostsChanged();
  void onTargetResolved();
  std::chrono::milliseconds nextFailureBackOff();
  void resetFailureBackOff();

  Event::Dispatcher& dispatcher_;
  const DnsClusterConfig config_;
  const ClusterInfoImplConstSharedPtr info_;
  DnsClusterStats stats_;
  std::function<void(HostVector)> on_hosts_;
  std::function<void()> on_initialized_;
  std::mt19937_64 random_;
  uint64_t next_failure_ms_ = 0;
  // Declared before the targets: their queries are cancelled before it goes.
  std::unique_ptr<Network::DnsResolverImpl> resolver_;
  std::list<std::unique_ptr<ResolveTarget>> targets_;
  bool initialized_ = false;
};

}  // namespace Proxy::Upstream
