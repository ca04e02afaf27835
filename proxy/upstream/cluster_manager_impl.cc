// The cluster manager: the main thread's ClusterManagerImpl (clusters added, updated, removed,
// their host sets published) and what each worker keeps of it (ThreadLocalClusterManagerImpl,
// ThreadLocalClusterImpl: load balancer and connection pools per cluster). ~865 lines in one
// file because the two halves are the two ends of one protocol (snapshots posted from one, taken
// by the other) and share its private types; the seam to split along, when it grows, is the
// worker half (thread_local_cluster_manager_impl.cc).

#include "proxy/upstream/cluster_manager_impl.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "proxy/common/assert.h"
#include "proxy/common/string_view.h"
#include "proxy/config/field_support.h"
#include "proxy/network/connection_impl.h"
#include "proxy/upstream/host_impl.h"
#include "proxy/upstream/mixed_conn_pool_impl.h"
#include "proxy/upstream/thread_aware_lb_impl.h"

namespace Proxy::Upstream {

namespace {

// Deterministic serialization (map fields sorted), so equal configs hash equally.
std::string configBytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  bytes.shrink_to_fit();  // kept as long as the cluster
  return bytes;
}

const HostSetConstSharedPtr& emptyHostSet() {
  static const HostSetConstSharedPtr empty = computeHostSet({}, /*panic_threshold=*/50);
  return empty;
}

bool sameHosts(const HostSet& a, const HostSet& b) {
  return a.hosts == b.hosts && a.priorities == b.priorities;
}

// RING_HASH / MAGLEV: the rings or tables, built here on the main thread once per snapshot and
// shared by every worker through it (thread_aware_lb_impl.h).
HostSetConstSharedPtr withHashing(std::shared_ptr<HostSet> set, const ClusterInfoImpl& info) {
  buildHashingLoadBalancers(*set, info.lbPolicy(), info.hashLbConfig(), info.hashingLbStats());
  return set;
}

// Whether `after` added or removed hosts (by address) compared with `before`: Envoy's
// membership_change. New weights or health are not membership changes.
bool membershipChanged(const HostSet& before, const HostSet& after) {
  const HostVector& a = before.hosts;
  const HostVector& b = after.hosts;
  if (a.size() != b.size()) {
    return true;
  }
  // The same multiset of addresses (hashed: no strings, no sort). An update usually keeps the
  // order and changes a few endpoints: only the positions whose addresses differ are counted,
  // +1 before and -1 after (a 10,000-endpoint cluster is no 10,000-entry map, issue 14).
  absl::flat_hash_map<Network::Address, int64_t, Network::Address::Hash> count;
  for (size_t i = 0; i < a.size(); i++) {
    if (a[i] == b[i] || a[i]->address() == b[i]->address()) {
      continue;
    }
    count[a[i]->address()]++;
    count[b[i]->address()]--;
  }
  for (const auto& [address, net] : count) {
    if (net != 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

// ---- ThreadLocalClusterImpl ----

ThreadLocalClusterImpl::ThreadLocalClusterImpl(ThreadLocalClusterManagerImpl& parent,
                                               ClusterInfoConstSharedPtr info,
                                               HostSetConstSharedPtr host_set)
    : parent_(parent), info_(std::move(info)), host_set_(std::move(host_set)) {}

LoadBalancer& ThreadLocalClusterImpl::loadBalancer() {
  if (lb_ == nullptr) {
    lb_ = createLoadBalancer(info_->lbPolicy(), info_->leastRequestChoiceCount(), host_set_,
                             parent_.nextSeed(), info_->stats().lb_healthy_panic());
  }
  return *lb_;
}

ThreadLocalClusterImpl::~ThreadLocalClusterImpl() {
  for (auto& [host, pool] : pools_) {
    parent_.retirePool(std::move(pool));
  }
}

HttpConnPool* ThreadLocalClusterImpl::httpConnPool(const HostConstSharedPtr& host,
                                                   std::optional<Http::Protocol> downstream) {
  if (host == nullptr) {
    return nullptr;
  }
  const UpstreamHttpProtocol protocol = info_->upstreamHttpProtocol(downstream);
  auto [it, inserted] = pools_.try_emplace(PoolKey{host.get(), protocol});
  if (inserted) {
    // The request's upstream protocol picks the kind of pool.
    if (protocol == UpstreamHttpProtocol::Http2) {
      it->second = std::make_unique<Http2ConnPoolImpl>(parent_.dispatcher(), host, info_);
    } else if (protocol == UpstreamHttpProtocol::Auto) {
      it->second = std::make_unique<MixedConnPoolImpl>(parent_.dispatcher(), host, info_);
    } else {
      it->second = std::make_unique<HttpConnPoolImpl>(parent_.dispatcher(), host, info_);
    }
  }
  return it->second.get();
}

Network::ClientConnectionPtr ThreadLocalClusterImpl::tcpConnection(const HostConstSharedPtr& host) {
  if (host == nullptr) {
    return nullptr;
  }
  auto connection = std::make_unique<Network::ClientConnectionImpl>(
      parent_.dispatcher(), host->address(), info_->createTransportSocket());
  connection->setBufferLimits(info_->perConnectionBufferLimitBytes());
  connection->noDelay(true);
  // Only the attempt is counted here; the caller owns the connection's later life.
  info_->stats().upstream_cx_total().inc();
  host->stats().cx_total++;
  return connection;
}

void ThreadLocalClusterImpl::updateHosts(HostSetConstSharedPtr host_set) {
  host_set_ = std::move(host_set);
  lb_.reset();
  if (pools_.empty()) {
    return;
  }

  absl::flat_hash_set<const Host*> current;
  current.reserve(host_set_->hosts.size());
  for (const HostConstSharedPtr& host : host_set_->hosts) {
    current.insert(host.get());
  }
  // Built only if some pool's host object was replaced.
  absl::flat_hash_map<std::string, HostConstSharedPtr> by_address;
  std::vector<std::pair<UpstreamHttpProtocol, HttpConnPoolBasePtr>> rekeyed;

  for (auto it = pools_.begin(); it != pools_.end();) {
    if (current.contains(it->first.first)) {
      ++it;
      continue;
    }
    const UpstreamHttpProtocol protocol = it->first.second;
    HttpConnPoolBasePtr pool = std::move(it->second);
    pools_.erase(it++);
    if (by_address.empty()) {
      for (const HostConstSharedPtr& host : host_set_->hosts) {
        by_address.emplace(host->address().asString(), host);
      }
    }
    auto replacement = by_address.find(pool->host()->address().asString());
    if (replacement != by_address.end()) {
      // Same endpoint, new weight or health: keep its warm connections.
      pool->updateHost(replacement->second);
      rekeyed.emplace_back(protocol, std::move(pool));
    } else {
      parent_.retirePool(std::move(pool));
    }
  }
  for (auto& [protocol, pool] : rekeyed) {
    auto [it, inserted] = pools_.try_emplace(PoolKey{pool->host().get(), protocol});
    if (inserted) {
      it->second = std::move(pool);
    } else {
      parent_.retirePool(std::move(pool));  // a duplicate address already has its pool
    }
  }
}

// ---- ThreadLocalClusterManagerImpl ----

ThreadLocalClusterManagerImpl::ThreadLocalClusterManagerImpl(Event::Dispatcher& dispatcher)
    : dispatcher_(dispatcher), seed_rng_(std::random_device()()) {}

ThreadLocalClusterManagerImpl::~ThreadLocalClusterManagerImpl() {
  // Thread shutdown: pools are destroyed quietly instead of draining.
  shutting_down_ = true;
  clusters_.clear();
  draining_pools_.clear();
}

ThreadLocalClusterImpl* ThreadLocalClusterManagerImpl::find(std::string_view name) {
  // absl::string_view for the heterogeneous lookup (proxy/common/string_view.h).
  auto it = clusters_.find(asAbsl(name));
  return it == clusters_.end() ? nullptr : it->second.get();
}

void ThreadLocalClusterManagerImpl::addOrUpdateCluster(ClusterInfoConstSharedPtr info,
                                                       HostSetConstSharedPtr host_set) {
  ASSERT(dispatcher_.isThreadSafe());
  // Replacing destroys the previous version, which retires its pools (Envoy drains them too).
  auto cluster = std::make_unique<ThreadLocalClusterImpl>(*this, info, std::move(host_set));
  clusters_[info->name()] = std::move(cluster);
}

void ThreadLocalClusterManagerImpl::updateHosts(const ClusterInfoConstSharedPtr& info,
                                                HostSetConstSharedPtr host_set) {
  ASSERT(dispatcher_.isThreadSafe());
  ThreadLocalClusterImpl* cluster = find(info->name());
  // Updates arrive in the order the main thread made them, so this is the same version.
  if (cluster != nullptr && cluster->info() == info) {
    cluster->updateHosts(std::move(host_set));
  }
}

void ThreadLocalClusterManagerImpl::removeCluster(const ClusterInfoConstSharedPtr& info) {
  ASSERT(dispatcher_.isThreadSafe());
  auto it = clusters_.find(info->name());
  if (it != clusters_.end() && it->second->info() == info) {
    clusters_.erase(it);
  }
}

void ThreadLocalClusterManagerImpl::retirePool(HttpConnPoolBasePtr pool) {
  if (shutting_down_) {
    return;  // destroyed here, quietly
  }
  draining_pools_.push_front(std::move(pool));
  auto it = draining_pools_.begin();
  (*it)->retire([this, it]() {
    // Called from inside the pool: delete it on a later loop iteration.
    dispatcher_.deferredDelete(std::move(*it));
    draining_pools_.erase(it);
  });
}

// ---- ClusterManagerImpl ----

ClusterManagerImpl::ClusterManagerImpl(Event::Dispatcher& main_dispatcher,
                                       ThreadLocal::Instance& tls, Stats::Store& store)
    : main_dispatcher_(main_dispatcher),
      store_(store),
      slot_(tls.allocateSlot()),
      cluster_added_(store.counter("cluster_manager.cluster_added")),
      cluster_modified_(store.counter("cluster_manager.cluster_modified")),
      cluster_removed_(store.counter("cluster_manager.cluster_removed")),
      active_clusters_(store.gauge("cluster_manager.active_clusters")),
      warming_clusters_(store.gauge("cluster_manager.warming_clusters")) {
  slot_->set([](Event::Dispatcher& dispatcher) -> ThreadLocal::ThreadLocalObjectSharedPtr {
    return std::make_shared<ThreadLocalClusterManagerImpl>(dispatcher);
  });
}

ClusterManagerImpl::~ClusterManagerImpl() = default;

absl::Status ClusterManagerImpl::addOrUpdateCluster(
    const envoy::config::cluster::v3::Cluster& config, const std::string& version_info,
    bool added_via_api) {
  ASSERT(main_dispatcher_.isThreadSafe());
  const std::string& name = config.name();
  std::string config_bytes = configBytes(config);
  auto active_it = active_.find(name);
  auto warming_it = warming_.find(name);
  const ClusterData* active = active_it != active_.end() ? active_it->second.get() : nullptr;
  const ClusterData* latest = warming_it != warming_.end() ? warming_it->second.get() : active;

  if (latest != nullptr && latest->config_bytes == config_bytes) {
    return absl::OkStatus();  // unchanged: nothing to do, nothing to count
  }
  if (active != nullptr && !active->added_via_api) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster '", name, "': a static cluster with this name exists and cannot be replaced"));
  }

  absl::StatusOr<ClusterInfoImplConstSharedPtr> info =
      ClusterInfoImpl::create(config, store_, secrets_);
  if (!info.ok()) {
    return info.status();
  }
  // Fields the proxy would parse and ignore are refused (field_support.h). Static clusters
  // were checked with the bootstrap, where a gRPC service's cluster may ask for HTTP/2.
  if (added_via_api) {
    if (absl::Status status = Config::checkSupportedFields(config); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("cluster '", name, "': ", status.message()));
    }
  }

  // Active health checking: Envoy runs one checker per cluster.
  std::optional<HealthCheckConfig> health_check;
  if (config.health_checks_size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster '", name, "': health_checks: Multiple health checks not supported"));
  }
  if (config.health_checks_size() == 1) {
    absl::StatusOr<HealthCheckConfig> parsed =
        HealthCheckConfig::create(config.health_checks(0), "health_checks[0]");
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster '", name, "': ", parsed.status().message()));
    }
    health_check = *std::move(parsed);
  }
  std::optional<Outlier::DetectorConfig> outlier;
  if (config.has_outlier_detection()) {
    absl::StatusOr<Outlier::DetectorConfig> parsed =
        Outlier::DetectorConfig::create(config.outlier_detection());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster '", name, "': ", parsed.status().message()));
    }
    outlier = *std::move(parsed);
  }

  std::optional<DnsClusterConfig> dns_config;
  if ((*info)->discoveryType() == ClusterInfoImpl::DiscoveryType::StrictDns ||
      (*info)->discoveryType() == ClusterInfoImpl::DiscoveryType::LogicalDns) {
    absl::StatusOr<DnsClusterConfig> parsed = DnsClusterConfig::create(config);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster '", name, "': ", parsed.status().message()));
    }
    dns_config = *std::move(parsed);
  }

  auto data = std::make_unique<ClusterData>();
  bool warm = true;
  // The service names the replaced versions watched: forgotten below if nobody watches them now.
  std::vector<std::string> previous_services;
  for (const ClusterData* previous : {active, latest}) {
    if (previous != nullptr &&
        previous->info->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds) {
      previous_services.push_back(previous->info->edsServiceName());
    }
  }
  if ((*info)->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds) {
    const std::string& service = (*info)->edsServiceName();
    eds_index_[service].insert(name);
    const HostVector* watched = nullptr;
    if (active != nullptr && active->info->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds &&
        active->info->edsServiceName() == service) {
      // Same ClusterLoadAssignment: its hosts stay valid, no need to warm again.
      data->hosts = active->hosts;
    } else if ((watched = watchedHosts(service, name)) != nullptr) {
      // Another cluster watches this assignment: the xDS subscription does not change, so it
      // is not sent again. This cluster takes the endpoints the other has, as its own hosts.
      data->hosts = computeHostSet(copyHostsForCluster(*watched, name), /*panic_threshold=*/50);
    } else {
      data->hosts = emptyHostSet();
      warm = false;
    }
  } else if (dns_config.has_value()) {
    data->hosts = emptyHostSet();  // warming until the first answer
    warm = false;
  } else {
    absl::StatusOr<HostSetConstSharedPtr> hosts = buildHostSet(
        config.load_assignment(), active != nullptr ? active->hosts.get() : nullptr, name);
    if (!hosts.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster '", name, "': load_assignment.", hosts.status().message()));
    }
    data->hosts = std::move(*hosts);
  }
  data->config_bytes = std::move(config_bytes);
  data->version_info = version_info;
  data->last_updated = main_dispatcher_.timeSource().systemTime();
  data->info = std::move(*info);
  data->added_via_api = added_via_api;
  ClusterData* raw = data.get();
  if (outlier.has_value()) {
    data->outlier_detector = Outlier::DetectorImpl::create(
        main_dispatcher_, *outlier, data->info, [this, raw] { onHostHealthChanged(*raw); });
  }
  if (health_check.has_value()) {
    data->health_checker = createHealthChecker(
        main_dispatcher_, *health_check, data->info, [this, raw] { onHostHealthChanged(*raw); },
        [this, raw] { onInitialHealthCheckRound(*raw); });
    if (data->outlier_detector != nullptr) {
      // Envoy's successful_active_health_check_uneject_host.
      Outlier::DetectorImpl* detector = data->outlier_detector.get();
      data->health_checker->setCheckSuccessCallback(
          [detector](const Host& host) { detector->onActiveHealthCheckSuccess(host); });
    }
  }
  if (warm) {
    // Hosts taken over from the version being replaced start over when either version checks
    // health: the replaced one keeps checking (and flagging) its own until it goes.
    const bool fresh = active != nullptr &&
                       (data->health_checker != nullptr || active->health_checker != nullptr ||
                        data->outlier_detector != nullptr || active->outlier_detector != nullptr);
    data->hosts = prepareHosts(
        *data, fresh ? withFreshHealthState(data->hosts->hosts) : data->hosts->hosts.vector());
  }

  (latest != nullptr ? cluster_modified_ : cluster_added_).inc();
  const bool was_warming = !warming_.empty();
  if (warm) {
    if (warming_it != warming_.end()) {
      warming_.erase(warming_it);
    }
    activateOrAwaitHealthChecks(std::move(data));
  } else {
    // An older active version, if any, keeps serving until this one has hosts.
    warming_[name] = std::move(data);
  }
  for (const std::string& service : previous_services) {
    forgetUnwatchedAssignment(service);
  }
  updateGauges(was_warming);
  if (dns_config.has_value()) {
    // Started once the version is in warming_ and counted: an IP literal answers inside
    // start(), which may activate it then.
    raw->dns = std::make_unique<DnsClusterImpl>(
        main_dispatcher_, store_, config, *std::move(dns_config), raw->info,
        [this, raw](HostVector hosts) { onDnsHosts(*raw, std::move(hosts)); },
        [this, raw] { onDnsInitialized(*raw); });
    raw->dns->start();
  }
  return absl::OkStatus();
}

bool ClusterManagerImpl::watchedByAnother(std::string_view service, std::string_view except) const {
  // The index lists every cluster that may watch `service` (a superset: see eds_index_).
  auto indexed = eds_index_.find(service);
  if (indexed == eds_index_.end()) {
    return false;
  }
  for (const std::string& other : indexed->second) {
    if (other == except) {
      continue;
    }
    for (const ClusterMap* map : {&active_, &warming_}) {
      auto it = map->find(other);
      if (it != map->end() &&
          it->second->info->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds &&
          it->second->info->edsServiceName() == service) {
        return true;
      }
    }
  }
  return false;
}

const HostVector* ClusterManagerImpl::watchedHosts(std::string_view service,
                                                   std::string_view except) const {
  if (eds_assigned_.find(service) == eds_assigned_.end()) {
    return nullptr;
  }
  auto indexed = eds_index_.find(service);
  if (indexed == eds_index_.end()) {
    return nullptr;
  }
  for (const std::string& other : indexed->second) {
    if (other == except) {
      continue;
    }
    // Every version watching `service` got the last assignment: an active one, or a warming
    // one that has its hosts and waits for its health checks or secrets (a warming one that
    // waits for its assignment has none).
    for (const ClusterMap* map : {&active_, &warming_}) {
      auto it = map->find(other);
      if (it == map->end()) {
        continue;
      }
      const ClusterData& data = *it->second;
      if (data.info->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds &&
          data.info->edsServiceName() == service &&
          (map == &active_ || data.awaiting_health_checks || data.awaiting_secrets)) {
        return &data.hosts->hosts.vector();
      }
    }
  }
  return nullptr;
}

void ClusterManagerImpl::forgetUnwatchedAssignment(const std::string& service) {
  if (eds_assigned_.count(service) != 0 && !watchedByAnother(service, /*except=*/"")) {
    eds_assigned_.erase(service);
  }
}

bool ClusterManagerImpl::removeCluster(std::string_view name) {
  ASSERT(main_dispatcher_.isThreadSafe());
  auto active_it = active_.find(name);
  auto warming_it = warming_.find(name);
  if (active_it == active_.end() && warming_it == warming_.end()) {
    return false;
  }
  if (active_it != active_.end() && !active_it->second->added_via_api) {
    return false;
  }
  const bool was_warming = !warming_.empty();
  std::vector<std::string> services;
  auto unindex = [this, &services](const ClusterData& data) {
    if (data.info->discoveryType() != ClusterInfoImpl::DiscoveryType::Eds) {
      return;
    }
    services.push_back(data.info->edsServiceName());
    auto indexed = eds_index_.find(data.info->edsServiceName());
    if (indexed != eds_index_.end()) {
      indexed->second.erase(data.info->name());
      if (indexed->second.empty()) {
        eds_index_.erase(indexed);
      }
    }
  };
  if (warming_it != warming_.end()) {
    unindex(*warming_it->second);
  }
  if (active_it != active_.end()) {
    unindex(*active_it->second);
  }
  if (warming_it != warming_.end()) {
    warming_.erase(warming_it);
  }
  if (active_it != active_.end()) {
    ClusterInfoConstSharedPtr info = active_it->second->info;
    info->stats().membership_total().set(0);
    info->stats().membership_healthy().set(0);
    slot_->runOnAllThreads([info](ThreadLocal::ThreadLocalObjectSharedPtr& object) {
      static_cast<ThreadLocalClusterManagerImpl&>(*object).removeCluster(info);
    });
    active_.erase(active_it);
  }
  for (const std::string& service : services) {
    forgetUnwatchedAssignment(service);
  }
  cluster_removed_.inc();
  updateGauges(was_warming);
  return true;
}

absl::Status ClusterManagerImpl::updateClusterLoadAssignment(
    std::string_view eds_service_name,
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla, std::string_view cla_bytes) {
  ASSERT(main_dispatcher_.isThreadSafe());
  struct Target {
    ClusterMap* map;
    ClusterMap::iterator it;
    HostVector hosts;
  };
  std::vector<Target> targets;
  // Only the clusters the index names (see eds_index_), each checked again.
  auto indexed = eds_index_.find(eds_service_name);
  if (indexed != eds_index_.end()) {
    std::set<std::string>& names = indexed->second;
    for (auto name = names.begin(); name != names.end();) {
      bool uses = false;
      for (ClusterMap* map : {&warming_, &active_}) {
        auto it = map->find(*name);
        if (it != map->end() &&
            it->second->info->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds &&
            it->second->info->edsServiceName() == eds_service_name) {
          targets.push_back(Target{map, it, {}});
          uses = true;
        }
      }
      name = uses ? std::next(name) : names.erase(name);
    }
    if (names.empty()) {
      eds_index_.erase(indexed);
    }
  }
  if (targets.empty()) {
    if (auto assigned = eds_assigned_.find(eds_service_name); assigned != eds_assigned_.end()) {
      eds_assigned_.erase(assigned);
    }
    return absl::NotFoundError(absl::StrCat(
        "cluster_load_assignment '", std::string(eds_service_name), "': no EDS cluster uses it"));
  }
  absl::Status fields = cla_bytes.empty() ? Config::checkSupportedFields(cla)
                                          : Config::checkSupportedFieldsAsReceived(cla, cla_bytes);
  if (absl::Status status = std::move(fields); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster_load_assignment '", std::string(eds_service_name), "': ", status.message()));
  }
  // Validate for every target before changing any: all or nothing.
  for (Target& target : targets) {
    const ClusterData& data = *target.it->second;
    absl::StatusOr<HostVector> hosts = buildHosts(cla, data.hosts.get(), data.info->name());
    if (!hosts.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("cluster_load_assignment '",
                                                     std::string(eds_service_name),
                                                     "': ", hosts.status().message()));
    }
    target.hosts = std::move(*hosts);
  }

  if (eds_assigned_.find(eds_service_name) == eds_assigned_.end()) {
    eds_assigned_.emplace(eds_service_name);
  }
  const bool was_warming = !warming_.empty();
  for (Target& target : targets) {
    if (target.map == &warming_) {
      ClusterData& data = *target.it->second;
      data.hosts = prepareHosts(data, std::move(target.hosts));
      if (data.awaiting_health_checks || data.awaiting_secrets) {
        continue;  // still warming: its health checker's first round (secrets) activates it
      }
      std::unique_ptr<ClusterData> owned = std::move(target.it->second);
      warming_.erase(target.it);
      activateOrAwaitHealthChecks(std::move(owned));
      continue;
    }
    ClusterData& data = *target.it->second;
    HostSetConstSharedPtr prepared = prepareHosts(data, std::move(target.hosts));
    if (sameHosts(*data.hosts, *prepared)) {
      continue;  // a resend: workers have it already
    }
    if (membershipChanged(*data.hosts, *prepared)) {
      data.info->stats().membership_change().inc();
    }
    data.hosts = std::move(prepared);
    updateMembershipStats(data);
    ClusterInfoConstSharedPtr info = data.info;
    HostSetConstSharedPtr hosts = data.hosts;
    slot_->runOnAllThreads([info, hosts](ThreadLocal::ThreadLocalObjectSharedPtr& object) {
      static_cast<ThreadLocalClusterManagerImpl&>(*object).updateHosts(info, hosts);
    });
  }
  updateGauges(was_warming);
  return absl::OkStatus();
}

void ClusterManagerImpl::onDnsHosts(ClusterData& data, HostVector hosts) {
  ASSERT(main_dispatcher_.isThreadSafe());
  HostSetConstSharedPtr prepared = prepareHosts(data, std::move(hosts));
  auto it = active_.find(data.info->name());
  if (it == active_.end() || it->second.get() != &data) {
    data.hosts = std::move(prepared);  // warming: published when it becomes active
    return;
  }
  if (sameHosts(*data.hosts, *prepared)) {
    return;
  }
  if (membershipChanged(*data.hosts, *prepared)) {
    data.info->stats().membership_change().inc();
  }
  data.hosts = std::move(prepared);
  publishHosts(data);
}

void ClusterManagerImpl::onDnsInitialized(ClusterData& data) {
  ASSERT(main_dispatcher_.isThreadSafe());
  auto it = warming_.find(data.info->name());
  if (it == warming_.end() || it->second.get() != &data || data.awaiting_health_checks) {
    return;
  }
  const bool was_warming = !warming_.empty();
  std::unique_ptr<ClusterData> owned = std::move(it->second);
  warming_.erase(it);
  activateOrAwaitHealthChecks(std::move(owned));
  updateGauges(was_warming);
}

void ClusterManagerImpl::publishHosts(ClusterData& data) {
  updateMembershipStats(data);
  ClusterInfoConstSharedPtr info = data.info;
  HostSetConstSharedPtr hosts = data.hosts;
  slot_->runOnAllThreads([info, hosts](ThreadLocal::ThreadLocalObjectSharedPtr& object) {
    static_cast<ThreadLocalClusterManagerImpl&>(*object).updateHosts(info, hosts);
  });
}

ThreadLocalCluster* ClusterManagerImpl::getThreadLocalCluster(std::string_view name) {
  ThreadLocal::ThreadLocalObjectSharedPtr object = slot_->get();
  if (object == nullptr) {
    return nullptr;
  }
  return static_cast<ThreadLocalClusterManagerImpl&>(*object).find(name);
}

ClusterInfoImplConstSharedPtr ClusterManagerImpl::getClusterInfo(std::string_view name) const {
  auto it = active_.find(name);
  return it == active_.end() ? nullptr : it->second->info;
}

HostSetConstSharedPtr ClusterManagerImpl::getHostSet(std::string_view name) const {
  auto it = active_.find(name);
  return it == active_.end() ? nullptr : it->second->hosts;
}

bool ClusterManagerImpl::isWarming(std::string_view name) const {
  return warming_.find(name) != warming_.end();
}

bool ClusterManagerImpl::isEdsServiceWarming(std::string_view eds_service_name) const {
  // The index may name clusters that moved to another service name: check each again.
  auto indexed = eds_index_.find(eds_service_name);
  if (indexed == eds_index_.end()) {
    return false;
  }
  for (const std::string& name : indexed->second) {
    auto it = warming_.find(name);
    if (it != warming_.end() && !it->second->awaiting_health_checks &&
        !it->second->awaiting_secrets &&
        it->second->info->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds &&
        it->second->info->edsServiceName() == eds_service_name) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> ClusterManagerImpl::edsServiceNames() const {
  std::set<std::string> names;
  for (const ClusterMap* map : {&active_, &warming_}) {
    for (const auto& [name, data] : *map) {
      if (data->info->discoveryType() == ClusterInfoImpl::DiscoveryType::Eds) {
        names.insert(data->info->edsServiceName());
      }
    }
  }
  return std::vector<std::string>(names.begin(), names.end());
}

envoy::config::cluster::v3::Cluster ClusterManagerImpl::ClusterView::config() const {
  envoy::config::cluster::v3::Cluster config;
  const bool parsed = config.ParseFromString(config_bytes);
  ASSERT(parsed);  // our own serialization
  (void)parsed;
  return config;
}

void ClusterManagerImpl::forEachCluster(const std::function<void(const ClusterView&)>& cb) const {
  for (const ClusterMap* map : {&active_, &warming_}) {
    for (const auto& [name, data] : *map) {
      cb(ClusterView{data->config_bytes, *data->info, *data->hosts, data->version_info,
                     data->last_updated, map == &warming_, data->added_via_api,
                     data->outlier_detector.get()});
    }
  }
}

void ClusterManagerImpl::activate(std::unique_ptr<ClusterData> data) {
  // A new version is a new cluster to Envoy: its first hosts are a membership change.
  if (!data->hosts->hosts.empty()) {
    data->info->stats().membership_change().inc();
  }
  updateMembershipStats(*data);
  ClusterInfoConstSharedPtr info = data->info;
  HostSetConstSharedPtr hosts = data->hosts;
  slot_->runOnAllThreads([info, hosts](ThreadLocal::ThreadLocalObjectSharedPtr& object) {
    static_cast<ThreadLocalClusterManagerImpl&>(*object).addOrUpdateCluster(info, hosts);
  });
  const std::string name = data->info->name();
  active_[name] = std::move(data);
}

void ClusterManagerImpl::updateMembershipStats(const ClusterData& data) {
  ClusterStats& stats = data.info->stats();
  stats.membership_total().set(static_cast<int64_t>(data.hosts->hosts.size()));
  stats.membership_healthy().set(static_cast<int64_t>(data.hosts->healthy_host_count));
  int64_t degraded = 0;
  for (const PriorityHosts& priority : data.hosts->priorities) {
    degraded += static_cast<int64_t>(priority.degraded.size());
  }
  stats.membership_degraded().set(degraded);
}

HostSetConstSharedPtr ClusterManagerImpl::prepareHosts(ClusterData& data, HostVector hosts) {
  if (data.health_checker != nullptr) {
    data.health_checker->setHosts(hosts);
  }
  if (data.outlier_detector != nullptr) {
    data.outlier_detector->setHosts(hosts);
  }
  return withHashing(computeHostSet(std::move(hosts), data.info->healthyPanicThreshold(),
                                    data.info->localityWeightedLb()),
                     *data.info);
}

bool ClusterManagerImpl::activateOrAwaitHealthChecks(std::unique_ptr<ClusterData> data) {
  // Envoy's cluster init waits for the secrets of its transport socket first (SDS).
  if (Tls::ContextProvider* tls = data->info->tlsContextProvider();
      tls != nullptr && !tls->ready()) {
    data->awaiting_secrets = true;
    ClusterData* raw = data.get();
    data->secrets_ready_handle = tls->addReadyCallback([this, raw] { onSecretsReady(*raw); });
    const std::string name = data->info->name();
    warming_[name] = std::move(data);
    return false;
  }
  data->awaiting_secrets = false;
  if (data->health_checker != nullptr && !data->health_checker->initialRoundDone()) {
    data->awaiting_health_checks = true;
    const std::string name = data->info->name();
    warming_[name] = std::move(data);
    return false;
  }
  data->awaiting_health_checks = false;
  activate(std::move(data));
  return true;
}

void ClusterManagerImpl::onHostHealthChanged(ClusterData& data) {
  ASSERT(main_dispatcher_.isThreadSafe());
  std::shared_ptr<HostSet> hosts = computeHostSet(
      data.hosts->hosts, data.info->healthyPanicThreshold(), data.info->localityWeightedLb());
  if (sameHosts(*data.hosts, *hosts)) {
    return;
  }
  data.hosts = withHashing(std::move(hosts), *data.info);
  auto it = active_.find(data.info->name());
  if (it == active_.end() || it->second.get() != &data) {
    return;  // warming: published when it becomes active
  }
  // The same path as an EDS update: the new lists reach each worker's load balancer.
  updateMembershipStats(data);
  ClusterInfoConstSharedPtr info = data.info;
  HostSetConstSharedPtr snapshot = data.hosts;
  slot_->runOnAllThreads([info, snapshot](ThreadLocal::ThreadLocalObjectSharedPtr& object) {
    static_cast<ThreadLocalClusterManagerImpl&>(*object).updateHosts(info, snapshot);
  });
}

void ClusterManagerImpl::onInitialHealthCheckRound(ClusterData& data) {
  ASSERT(main_dispatcher_.isThreadSafe());
  auto it = warming_.find(data.info->name());
  if (it == warming_.end() || it->second.get() != &data || !data.awaiting_health_checks) {
    return;
  }
  const bool was_warming = !warming_.empty();
  std::unique_ptr<ClusterData> owned = std::move(it->second);
  warming_.erase(it);
  owned->awaiting_health_checks = false;
  activate(std::move(owned));
  updateGauges(was_warming);
}

void ClusterManagerImpl::onSecretsReady(ClusterData& data) {
  ASSERT(main_dispatcher_.isThreadSafe());
  auto it = warming_.find(data.info->name());
  if (it == warming_.end() || it->second.get() != &data || !data.awaiting_secrets) {
    return;
  }
  const bool was_warming = !warming_.empty();
  std::unique_ptr<ClusterData> owned = std::move(it->second);
  warming_.erase(it);
  owned->awaiting_secrets = false;
  activateOrAwaitHealthChecks(std::move(owned));
  updateGauges(was_warming);
}

void ClusterManagerImpl::updateGauges(bool was_warming) {
  active_clusters_.set(static_cast<int64_t>(active_.size()));
  warming_clusters_.set(static_cast<int64_t>(warming_.size()));
  if (was_warming && warming_.empty() && warming_done_cb_ != nullptr) {
    warming_done_cb_();
  }
}

}  // namespace Proxy::Upstream
