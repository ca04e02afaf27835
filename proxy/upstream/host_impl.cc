#include "proxy/upstream/host_impl.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "envoy/config/core/v3/health_check.pb.h"
#include "proxy/upstream/locality_wrr.h"

namespace Proxy::Upstream {

namespace {

using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::endpoint::v3::LbEndpoint;

constexpr uint32_t kMaxPriority = 127;

}  // namespace

HealthStatus healthStatusFromProto(envoy::config::core::v3::HealthStatus status) {
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

namespace {

// `field_prefix()` + `field_suffix` names the field in errors (built only for an error).
template <class FieldPrefix>
absl::StatusOr<Network::Address> parseAddress(const envoy::config::core::v3::Address& address,
                                              const FieldPrefix& field_prefix,
                                              const char* field_suffix) {
  auto field = [&] { return absl::StrCat(field_prefix(), field_suffix); };
  if (!address.has_socket_address()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field(), ": only socket_address is supported for upstream endpoints"));
  }
  const auto& sa = address.socket_address();
  if (sa.protocol() != envoy::config::core::v3::SocketAddress::TCP) {
    return absl::InvalidArgumentError(
        absl::StrCat(field(), ".socket_address.protocol: only TCP is supported"));
  }
  if (sa.port_specifier_case() == envoy::config::core::v3::SocketAddress::kNamedPort) {
    return absl::InvalidArgumentError(
        absl::StrCat(field(), ".socket_address.named_port: named ports are not supported"));
  }
  if (sa.port_value() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        field(), ".socket_address.port_value: ", sa.port_value(), " is not a valid port"));
  }
  absl::StatusOr<Network::Address> parsed =
      Network::Address::fromIpPort(sa.address(), sa.port_value());
  if (!parsed.ok()) {
    // Hostnames would need DNS (STRICT_DNS/LOGICAL_DNS resolution), which we do not do yet.
    return absl::InvalidArgumentError(absl::StrCat(field(), ".socket_address.address: '",
                                                   sa.address(), "' is not an IP address"));
  }
  return parsed;
}

bool sameAttributes(const Host& host, const std::string& hostname, uint32_t weight,
                    uint32_t priority, HealthStatus health, const HostLocality& locality) {
  return host.hostname() == hostname && host.weight() == weight && host.priority() == priority &&
         host.health() == health && host.locality() == locality.key &&
         host.localityWeight() == locality.weight;
}

}  // namespace

HostImpl::HostImpl(Network::Address address, std::string hostname, std::string cluster_name,
                   uint32_t weight, uint32_t priority, HealthStatus health,
                   std::shared_ptr<HostStats> stats, std::shared_ptr<HostHealthState> health_state,
                   HostLocality locality)
    : HostImpl(address, std::move(hostname), weight, priority, health, std::move(stats),
               std::move(health_state), [&] {
                 locality.cluster_name =
                     std::make_shared<const std::string>(std::move(cluster_name));
                 return std::make_shared<const HostLocality>(std::move(locality));
               }()) {}

HostImpl::HostImpl(Network::Address address, std::string hostname, uint32_t weight,
                   uint32_t priority, HealthStatus health, std::shared_ptr<HostStats> stats,
                   std::shared_ptr<HostHealthState> health_state,
                   std::shared_ptr<const HostLocality> locality)
    : Host(address, std::move(hostname), weight, priority, health, std::move(stats),
           std::move(health_state), std::move(locality)) {}

Host::Host(Network::Address address, std::string hostname, uint32_t weight, uint32_t priority,
           HealthStatus health, std::shared_ptr<HostStats> stats,
           std::shared_ptr<HostHealthState> health_state,
           std::shared_ptr<const HostLocality> locality)
    : address_(address),
      weight_(weight),
      priority_(priority),
      health_(health),
      hostname_(hostname.empty() ? nullptr
                                 : std::make_unique<const std::string>(std::move(hostname))),
      locality_(std::move(locality)),
      stats_(std::move(stats)),
      health_state_(std::move(health_state)) {
  // A new endpoint gets its stats and health state in one allocation (two aliasing shared_ptrs
  // into it): 112 bytes per host instead of 144 in two (config memory, issue 14). A later Host
  // of the same endpoint shares either or both, as before; one that shares only the stats
  // (withFreshHealthState()) keeps the old health state's memory until the stats go.
  if (stats_ == nullptr && health_state_ == nullptr) {
    struct Both {
      HostStats stats;
      HostHealthState health_state;
    };
    auto both = std::make_shared<Both>();
    stats_ = std::shared_ptr<HostStats>(both, &both->stats);
    health_state_ = std::shared_ptr<HostHealthState>(both, &both->health_state);
  } else if (stats_ == nullptr) {
    stats_ = std::make_shared<HostStats>();
  } else if (health_state_ == nullptr) {
    health_state_ = std::make_shared<HostHealthState>();
  }
}

const std::string& Host::hostname() const {
  static const std::string* const empty = new std::string();
  return hostname_ != nullptr ? *hostname_ : *empty;
}

std::string localityKey(const envoy::config::core::v3::Locality& locality) {
  return absl::StrCat(locality.region(), std::string(1, '\0'), locality.zone(),
                      std::string(1, '\0'), locality.sub_zone());
}

bool isHealthyForLb(HealthStatus health) {
  return health == HealthStatus::Healthy || health == HealthStatus::Degraded ||
         health == HealthStatus::Unknown;
}

CoarseHealth coarseHealth(const Host& host) {
  const HostHealthState& state = host.healthState();
  if (state.get(HealthFlag::FailedActiveHc) || state.get(HealthFlag::FailedOutlierCheck) ||
      host.health() == HealthStatus::Unhealthy || host.health() == HealthStatus::Draining) {
    return CoarseHealth::Unhealthy;
  }
  return host.health() == HealthStatus::Degraded ? CoarseHealth::Degraded : CoarseHealth::Healthy;
}

std::string healthFlagsString(const Host& host) {
  const HostHealthState& state = host.healthState();
  std::string out;
  if (state.get(HealthFlag::FailedActiveHc)) {
    out += "/failed_active_hc";
  }
  if (state.get(HealthFlag::FailedOutlierCheck)) {
    out += "/failed_outlier_check";
  }
  if (host.health() == HealthStatus::Unhealthy) {
    out += "/failed_eds_health";
  }
  if (host.health() == HealthStatus::Degraded) {
    out += "/degraded_eds_health";
  }
  if (state.get(HealthFlag::PendingActiveHc)) {
    out += "/pending_active_hc";
  }
  if (state.get(HealthFlag::ActiveHcTimeout)) {
    out += "/active_hc_timeout";
  }
  if (host.health() == HealthStatus::Draining) {
    out += "/eds_status_draining";
  }
  return out.empty() ? "healthy" : out;
}

namespace {

// Envoy's default overprovisioning factor, in percent.
constexpr uint64_t kOverprovisioningFactor = kDefaultOverprovisioningFactor;

// Envoy's per-priority locality lists and weights (HostsPerLocality, LocalityWrr): localities
// sorted by (region, zone, sub_zone); two LocalityLbEndpoints of one locality share it, the
// later's weight counting, as in Envoy's PriorityStateManager.
void computeLocalities(PriorityHosts& priority) {
  std::map<std::string, size_t> index;  // locality key -> position in `localities`
  std::vector<uint32_t> weights;
  std::vector<size_t> totals;
  for (const HostConstSharedPtr& host : priority.hosts) {
    index.emplace(host->locality(), 0);
  }
  size_t next = 0;
  for (auto& [key, position] : index) {
    position = next++;
  }
  priority.localities.assign(index.size(), {});
  weights.assign(index.size(), 0);
  totals.assign(index.size(), 0);
  for (const HostConstSharedPtr& host : priority.hosts) {
    const size_t i = index[host->locality()];
    weights[i] = host->localityWeight();
    totals[i]++;
    switch (coarseHealth(*host)) {
      case CoarseHealth::Healthy:
        priority.localities[i].healthy.push_back(host);
        break;
      case CoarseHealth::Degraded:
        priority.localities[i].degraded.push_back(host);
        break;
      case CoarseHealth::Unhealthy:
        break;
    }
  }
  for (size_t i = 0; i < priority.localities.size(); i++) {
    PriorityHosts::Locality& locality = priority.localities[i];
    locality.healthy_weight =
        effectiveLocalityWeight(weights[i], locality.healthy.size(), totals[i]);
    locality.degraded_weight =
        effectiveLocalityWeight(weights[i], locality.degraded.size(), totals[i]);
  }
}

// Envoy's distributeLoad(): as much of `total_load` as each priority's availability allows, in
// priority order. Returns the first priority with any availability (-1: none) and what is left.
std::pair<int, uint32_t> distributeLoad(std::vector<PriorityHosts>& priorities,
                                        const std::vector<uint32_t>& availability,
                                        uint32_t PriorityHosts::*load, uint32_t total_load,
                                        uint32_t normalized_total_availability) {
  int first_available = -1;
  for (size_t i = 0; i < priorities.size(); i++) {
    if (first_available < 0 && availability[i] > 0) {
      first_available = static_cast<int>(i);
    }
    priorities[i].*load =
        std::min<uint32_t>(total_load, availability[i] * 100 / normalized_total_availability);
    total_load -= priorities[i].*load;
  }
  return {first_available, total_load};
}

}  // namespace

std::shared_ptr<HostSet> computeHostSet(HostVector hosts, uint32_t panic_threshold,
                                        bool locality_weighted) {
  auto set = std::make_shared<HostSet>();
  uint32_t max_priority = 0;
  for (const HostConstSharedPtr& host : hosts) {
    max_priority = std::max(max_priority, host->priority());
  }
  std::vector<PriorityHosts>& priorities = set->priorities;
  priorities.resize(hosts.empty() ? 1 : max_priority + 1);
  // Each host's coarse health, once. The lists live as long as the snapshot: sized exactly,
  // not grown by doubling, and a list equal to another is that list (HostList): one priority
  // with no DRAINING host has `hosts` = set->hosts, and an all-healthy priority has `healthy` =
  // `hosts` (config memory and update cost, issue 14).
  constexpr uint8_t kExcluded = 0xff;
  std::vector<uint8_t> coarse_health(hosts.size());
  struct Lists {
    size_t hosts = 0, healthy = 0, degraded = 0;  // counts
    bool share_hosts = false, share_healthy = false, share_degraded = false;
    HostVector hosts_list, healthy_list, degraded_list;  // built only when not shared
  };
  std::vector<Lists> lists(priorities.size());
  for (size_t i = 0; i < hosts.size(); i++) {
    const Host& host = *hosts[i];
    if (host.health() == HealthStatus::Draining) {
      coarse_health[i] = kExcluded;
      continue;
    }
    Lists& list = lists[host.priority()];
    list.hosts++;
    const CoarseHealth coarse = coarseHealth(host);
    coarse_health[i] = static_cast<uint8_t>(coarse);
    list.healthy += coarse == CoarseHealth::Healthy ? 1 : 0;
    list.degraded += coarse == CoarseHealth::Degraded ? 1 : 0;
  }
  for (Lists& list : lists) {
    list.share_hosts = lists.size() == 1 && list.hosts == hosts.size();
    list.share_healthy = list.healthy == list.hosts;
    list.share_degraded = list.degraded == list.hosts;
    if (!list.share_hosts) {
      list.hosts_list.reserve(list.hosts);
    }
    if (!list.share_healthy) {
      list.healthy_list.reserve(list.healthy);
    }
    if (!list.share_degraded) {
      list.degraded_list.reserve(list.degraded);
    }
  }
  for (size_t i = 0; i < hosts.size(); i++) {
    if (coarse_health[i] == kExcluded) {
      continue;  // excluded (Envoy's EDS_STATUS_DRAINING): no new requests, not even in panic
    }
    const HostConstSharedPtr& host = hosts[i];
    Lists& list = lists[host->priority()];
    if (!list.share_hosts) {
      list.hosts_list.push_back(host);
    }
    switch (static_cast<CoarseHealth>(coarse_health[i])) {
      case CoarseHealth::Healthy:
        if (!list.share_healthy) {
          list.healthy_list.push_back(host);
        }
        set->healthy_host_count++;
        break;
      case CoarseHealth::Degraded:
        if (!list.share_degraded) {
          list.degraded_list.push_back(host);
        }
        break;
      case CoarseHealth::Unhealthy:
        break;
    }
  }
  set->hosts = HostList(std::move(hosts));
  for (size_t i = 0; i < priorities.size(); i++) {
    Lists& list = lists[i];
    PriorityHosts& priority = priorities[i];
    priority.hosts = list.share_hosts ? set->hosts : HostList(std::move(list.hosts_list));
    priority.healthy = list.share_healthy ? priority.hosts : HostList(std::move(list.healthy_list));
    priority.degraded =
        list.share_degraded ? priority.hosts : HostList(std::move(list.degraded_list));
  }
  if (locality_weighted) {
    for (PriorityHosts& priority : priorities) {
      computeLocalities(priority);
    }
  }

  // Availability per priority: 1.4 x the healthy (degraded) share, capped at 100.
  std::vector<uint32_t> health(priorities.size(), 0);
  std::vector<uint32_t> degraded(priorities.size(), 0);
  uint32_t total_availability = 0;
  for (size_t i = 0; i < priorities.size(); i++) {
    const uint64_t count = priorities[i].hosts.size();
    if (count > 0) {
      health[i] = static_cast<uint32_t>(
          std::min<uint64_t>(100, kOverprovisioningFactor * priorities[i].healthy.size() / count));
      degraded[i] = static_cast<uint32_t>(
          std::min<uint64_t>(100, kOverprovisioningFactor * priorities[i].degraded.size() / count));
    }
    total_availability += health[i] + degraded[i];
  }
  const uint32_t normalized_total_availability = std::min<uint32_t>(100, total_availability);

  if (normalized_total_availability == 0 && panic_threshold == 0) {
    // Nothing available and panic disabled: no host at all (503).
    priorities[0].healthy_load = 100;
    return set;
  }
  if (normalized_total_availability > 0) {
    const auto [first_healthy, left] = distributeLoad(
        priorities, health, &PriorityHosts::healthy_load, 100, normalized_total_availability);
    const auto [first_degraded, remainder] = distributeLoad(
        priorities, degraded, &PriorityHosts::degraded_load, left, normalized_total_availability);
    // Rounding leftovers go to the first available priority, healthy before degraded.
    if (remainder != 0) {
      if (first_healthy >= 0) {
        priorities[first_healthy].healthy_load += remainder;
      } else {
        priorities[first_degraded].degraded_load += remainder;
      }
    }
  }

  // Panic: never when the priorities together are fully available.
  bool all_panic = true;
  for (PriorityHosts& priority : priorities) {
    const size_t count = priority.hosts.size();
    const double available =
        count == 0
            ? 0.0
            : 100.0 * static_cast<double>(priority.healthy.size() + priority.degraded.size()) /
                  static_cast<double>(count);
    priority.panic = normalized_total_availability != 100 && available < panic_threshold;
    all_panic = all_panic && priority.panic;
  }
  if (all_panic) {
    // Load by host count; the rounding leftover to the first non-empty priority.
    size_t total_hosts = 0;
    for (const PriorityHosts& priority : priorities) {
      total_hosts += priority.hosts.size();
    }
    if (total_hosts == 0) {
      priorities[0].healthy_load = 100;
      return set;
    }
    uint32_t left = 100;
    int first_non_empty = -1;
    for (size_t i = 0; i < priorities.size(); i++) {
      if (first_non_empty < 0 && !priorities[i].hosts.empty()) {
        first_non_empty = static_cast<int>(i);
      }
      priorities[i].healthy_load =
          static_cast<uint32_t>(100 * priorities[i].hosts.size() / total_hosts);
      priorities[i].degraded_load = 0;
      left -= priorities[i].healthy_load;
    }
    priorities[first_non_empty].healthy_load += left;
  }
  return set;
}

HostVector withFreshHealthState(const HostVector& hosts) {
  HostVector out;
  out.reserve(hosts.size());
  for (const HostConstSharedPtr& host : hosts) {
    const auto& impl = static_cast<const HostImpl&>(*host);
    out.push_back(std::make_shared<HostImpl>(impl.address(), impl.hostname(), impl.weight(),
                                             impl.priority(), impl.health(), impl.sharedStats(),
                                             /*health_state=*/nullptr, impl.sharedLocality()));
  }
  return out;
}

HostVector copyHostsForCluster(const HostVector& hosts, const std::string& cluster_name) {
  auto name = std::make_shared<const std::string>(cluster_name);
  // Each locality again, with this cluster's name, shared as before.
  absl::flat_hash_map<const HostLocality*, std::shared_ptr<const HostLocality>> localities;
  HostVector out;
  out.reserve(hosts.size());
  for (const HostConstSharedPtr& host : hosts) {
    const auto& impl = static_cast<const HostImpl&>(*host);
    std::shared_ptr<const HostLocality>& locality = localities[&impl.hostLocality()];
    if (locality == nullptr) {
      HostLocality copy = impl.hostLocality();
      copy.cluster_name = name;
      locality = std::make_shared<const HostLocality>(std::move(copy));
    }
    out.push_back(std::make_shared<HostImpl>(impl.address(), impl.hostname(), impl.weight(),
                                             impl.priority(), impl.health(), /*stats=*/nullptr,
                                             /*health_state=*/nullptr, locality));
  }
  return out;
}

absl::StatusOr<HostVector> buildHosts(const ClusterLoadAssignment& cla, const HostSet* previous,
                                      const std::string& cluster_name) {
  // The previous host at the same position is tried first: an update usually changes a few
  // endpoints of a list in the same order. The endpoints that miss are resolved afterwards
  // against an index of only the previous hosts nobody took (a one-endpoint change of a
  // 10,000-endpoint cluster indexed all 10,000 before, issue 14). Duplicate addresses are
  // allowed (Envoy accepts them); each previous host is reused once.
  const HostVector empty;
  const HostVector& previous_hosts = previous != nullptr ? previous->hosts.vector() : empty;
  std::vector<bool> reused(previous_hosts.size(), false);
  // An endpoint whose host is decided after the positional pass; its slot in `hosts` waits.
  struct Miss {
    size_t slot;
    Network::Address address;
    const std::string* hostname;
    uint32_t weight;
    uint32_t priority;
    HealthStatus health;
    size_t locality;  // index into `localities`
  };
  std::vector<Miss> misses;
  // Per LocalityLbEndpoints: its locality, shared by the new hosts made for it.
  struct LocalityHosts {
    HostLocality value;
    std::shared_ptr<const HostLocality> shared;
  };
  std::vector<LocalityHosts> localities;
  localities.reserve(cla.endpoints_size());
  // One cluster name for every host of the cluster (the previous hosts' when it is the same).
  std::shared_ptr<const std::string> shared_name;
  if (!previous_hosts.empty() && previous_hosts[0]->clusterName() == cluster_name) {
    shared_name = static_cast<const HostImpl&>(*previous_hosts[0]).hostLocality().cluster_name;
  }
  if (shared_name == nullptr) {
    shared_name = std::make_shared<const std::string>(cluster_name);
  }

  HostVector hosts;
  size_t endpoint_count = 0;
  for (const auto& locality : cla.endpoints()) {
    endpoint_count += static_cast<size_t>(locality.lb_endpoints_size()) +
                      static_cast<size_t>(locality.load_balancer_endpoints().lb_endpoints_size());
  }
  hosts.reserve(endpoint_count);

  for (int i = 0; i < cla.endpoints_size(); i++) {
    const auto& locality = cla.endpoints(i);
    const std::string locality_field = absl::StrCat("endpoints[", i, "]");
    if (locality.priority() > kMaxPriority) {
      // Each priority up to the highest one gets its (possibly empty) slot in every snapshot.
      return absl::InvalidArgumentError(
          absl::StrCat(locality_field, ".priority: ", locality.priority(),
                       " is above the supported maximum ", kMaxPriority));
    }
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
    // Shared by the hosts of this LocalityLbEndpoints that are new objects.
    localities.push_back(LocalityHosts{
        HostLocality{
            localityKey(locality.locality()),
            locality.has_load_balancing_weight() ? locality.load_balancing_weight().value() : 0},
        nullptr});
    const HostLocality& host_locality = localities.back().value;

    for (int j = 0; j < lb_endpoints.size(); j++) {
      const LbEndpoint& lb_endpoint = lb_endpoints.Get(j);
      // Field paths are built only for an error: a 10,000-endpoint assignment is no 10,000
      // StrCats.
      auto field = [&] { return absl::StrCat(list_field, "[", j, "]"); };

      const envoy::config::endpoint::v3::Endpoint* endpoint = &lb_endpoint.endpoint();
      if (lb_endpoint.host_identifier_case() == LbEndpoint::kEndpointName) {
        auto named = cla.named_endpoints().find(lb_endpoint.endpoint_name());
        if (named == cla.named_endpoints().end()) {
          return absl::InvalidArgumentError(absl::StrCat(field(), ".endpoint_name: '",
                                                         lb_endpoint.endpoint_name(),
                                                         "' is not in named_endpoints"));
        }
        endpoint = &named->second;
      }

      absl::StatusOr<Network::Address> address =
          parseAddress(endpoint->address(), field, ".endpoint.address");
      if (!address.ok()) {
        return address.status();
      }
      uint32_t weight = 1;
      if (lb_endpoint.has_load_balancing_weight()) {
        weight = lb_endpoint.load_balancing_weight().value();
        if (weight == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(field(), ".load_balancing_weight: must be at least 1"));
        }
      }
      const HealthStatus health = healthStatusFromProto(lb_endpoint.health_status());
      const uint32_t priority = locality.priority();

      // The identical host at the same position is reused; anything else is a miss.
      const size_t here = hosts.size();
      if (here < previous_hosts.size() && !reused[here] &&
          previous_hosts[here]->address() == *address &&
          sameAttributes(*previous_hosts[here], endpoint->hostname(), weight, priority, health,
                         host_locality)) {
        reused[here] = true;
        hosts.push_back(previous_hosts[here]);
        continue;
      }
      misses.push_back(Miss{here, *address, &endpoint->hostname(), weight, priority, health,
                            localities.size() - 1});
      hosts.push_back(nullptr);
    }
  }

  // The misses, in order: an identical previous host not taken yet is reused; else a new host,
  // which keeps the stats and health state of a previous host at its address, if any.
  std::unordered_multimap<Network::Address, size_t, Network::Address::Hash> by_address;
  if (!misses.empty()) {
    for (size_t k = 0; k < previous_hosts.size(); k++) {
      if (!reused[k]) {
        by_address.emplace(previous_hosts[k]->address(), k);
      }
    }
  }
  for (const Miss& miss : misses) {
    LocalityHosts& locality = localities[miss.locality];
    HostConstSharedPtr host;
    const HostImpl* same_address = nullptr;
    auto range = by_address.equal_range(miss.address);
    for (auto it = range.first; it != range.second; ++it) {
      if (reused[it->second]) {
        continue;
      }
      const HostConstSharedPtr& candidate = previous_hosts[it->second];
      if (sameAttributes(*candidate, *miss.hostname, miss.weight, miss.priority, miss.health,
                         locality.value)) {
        host = candidate;
        reused[it->second] = true;
        break;
      }
      if (same_address == nullptr) {
        same_address = static_cast<const HostImpl*>(candidate.get());
      }
    }
    if (host == nullptr) {
      if (locality.shared == nullptr) {
        HostLocality value = locality.value;
        value.cluster_name = shared_name;
        locality.shared = std::make_shared<const HostLocality>(std::move(value));
      }
      host = std::make_shared<HostImpl>(
          miss.address, *miss.hostname, miss.weight, miss.priority, miss.health,
          same_address != nullptr ? same_address->sharedStats() : nullptr,
          same_address != nullptr ? same_address->sharedHealthState() : nullptr, locality.shared);
    }
    hosts[miss.slot] = std::move(host);
  }
  return hosts;
}

absl::StatusOr<HostSetConstSharedPtr> buildHostSet(const ClusterLoadAssignment& cla,
                                                   const HostSet* previous,
                                                   const std::string& cluster_name) {
  absl::StatusOr<HostVector> hosts = buildHosts(cla, previous, cluster_name);
  if (!hosts.ok()) {
    return hosts.status();
  }
  return computeHostSet(*std::move(hosts), /*panic_threshold=*/50);
}

}  // namespace Proxy::Upstream
