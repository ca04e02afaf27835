#pragma once

// The cluster manager: clusters are applied on the main thread (CDS, EDS, bootstrap) and
// published to every thread as immutable snapshots through one thread-local slot. Each thread
// keeps, per cluster, a load balancer and its connection pools (ARCHITECTURE.md "Threads").
//
// Publishing: an update posts one small closure per thread carrying two shared_ptrs, the
// ClusterInfo and the HostSet; the snapshots are shared, never copied per worker.
//
// Lifetime of pools on a worker: a pool whose host left the cluster, or whose cluster was
// removed or replaced, is moved to that thread's draining list and retired: it finishes its
// active streams and queued requests, closes connections as they go idle, and is deleted
// (deferred) when empty. So pools always outlive their streams, and a ThreadLocalCluster can be
// destroyed at any time between events (callers use it only synchronously: pick a host, get a
// pool, start a stream).

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "proxy/common/time.h"
#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"
#include "proxy/thread_local/thread_local.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "proxy/upstream/health_checker_impl.h"
#include "proxy/upstream/http2_conn_pool_impl.h"
#include "proxy/upstream/http_conn_pool_impl.h"
#include "proxy/upstream/load_balancer_impl.h"
#include "proxy/upstream/outlier_detection_impl.h"
#include "proxy/upstream/strict_dns_cluster.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

class ThreadLocalClusterManagerImpl;

// One cluster as one thread sees it. Owned by that thread's ThreadLocalClusterManagerImpl.
class ThreadLocalClusterImpl : public ThreadLocalCluster {
 public:
  ThreadLocalClusterImpl(ThreadLocalClusterManagerImpl& parent, ClusterInfoConstSharedPtr info,
                         HostSetConstSharedPtr host_set);
  // Retires every pool into the thread's draining list.
  ~ThreadLocalClusterImpl() override;

  // ThreadLocalCluster
  const ClusterInfoConstSharedPtr& info() const override { return info_; }
  const HostSetConstSharedPtr& hostSet() const override { return host_set_; }
  // Built on first use after each snapshot: most of 10,000 clusters are never picked from on
  // most threads, and a balancer is ~400 bytes per cluster per thread (issue 14).
  LoadBalancer& loadBalancer() override;
  HttpConnPool* httpConnPool(const HostConstSharedPtr& host,
                             std::optional<Http::Protocol> downstream) override;
  Network::ClientConnectionPtr tcpConnection(const HostConstSharedPtr& host) override;

  // A new snapshot of this cluster's hosts: the load balancer goes (rebuilt on the next pick);
  // pools to hosts that stay are untouched (re-pointed at the new Host object when only its
  // attributes changed), pools to hosts that left are retired.
  void updateHosts(HostSetConstSharedPtr host_set);

  size_t poolCount() const { return pools_.size(); }

 private:
  ThreadLocalClusterManagerImpl& parent_;
  const ClusterInfoConstSharedPtr info_;
  HostSetConstSharedPtr host_set_;
  LoadBalancerPtr lb_;  // null until loadBalancer() after the last snapshot
  // Keyed by Host identity and protocol (a use_downstream_protocol_config cluster has an HTTP/1
  // and an HTTP/2 pool per host); each pool holds its host, so a key cannot be reused by a new
  // object while the pool exists.
  using PoolKey = std::pair<const Host*, UpstreamHttpProtocol>;
  absl::flat_hash_map<PoolKey, HttpConnPoolBasePtr> pools_;
};

// Everything one thread knows about clusters: the object in the cluster manager's slot.
class ThreadLocalClusterManagerImpl : public ThreadLocal::ThreadLocalObject {
 public:
  explicit ThreadLocalClusterManagerImpl(Event::Dispatcher& dispatcher);
  ~ThreadLocalClusterManagerImpl() override;

  ThreadLocalClusterImpl* find(std::string_view name);
  // A new or replaced cluster: the previous version (if any) is destroyed, its pools retired.
  void addOrUpdateCluster(ClusterInfoConstSharedPtr info, HostSetConstSharedPtr host_set);
  // `info` identifies the version the main thread updated (it is the current one: updates
  // reach a thread in the order they were made).
  void updateHosts(const ClusterInfoConstSharedPtr& info, HostSetConstSharedPtr host_set);
  void removeCluster(const ClusterInfoConstSharedPtr& info);

  // Take ownership of `pool` until it has drained.
  void retirePool(HttpConnPoolBasePtr pool);
  // A seed for a new load balancer: every LB on every thread starts somewhere else.
  uint64_t nextSeed() { return seed_rng_(); }

  Event::Dispatcher& dispatcher() { return dispatcher_; }
  size_t drainingPoolCount() const { return draining_pools_.size(); }

 private:
  Event::Dispatcher& dispatcher_;
  std::mt19937_64 seed_rng_;
  absl::flat_hash_map<std::string, std::unique_ptr<ThreadLocalClusterImpl>> clusters_;
  std::list<HttpConnPoolBasePtr> draining_pools_;
  bool shutting_down_ = false;
};

class ClusterManagerImpl : public ClusterManager {
 public:
  // What admin (/clusters, /config_dump) and the xDS layers see of one cluster.
  struct ClusterView {
    // The Cluster as applied, serialized deterministically: ~30 bytes for an EDS cluster whose
    // decoded message is ~1 KB (issue 14). config() decodes it.
    const std::string& config_bytes;
    const ClusterInfoImpl& info;
    const HostSet& hosts;
    const std::string& version_info;
    SystemTime last_updated;
    bool warming;  // waiting for its first ClusterLoadAssignment, DNS answer or health check round
    bool added_via_api;                             // false: bootstrap static_resources
    const Outlier::DetectorImpl* outlier_detector;  // null: no outlier_detection

    envoy::config::cluster::v3::Cluster config() const;
  };

  // Main thread. `tls` must have every thread registered; the slot is set here.
  ClusterManagerImpl(Event::Dispatcher& main_dispatcher, ThreadLocal::Instance& tls,
                     Stats::Store& store);
  ~ClusterManagerImpl() override;

  // Add a cluster or replace the one with the same name (main thread). An update whose
  // serialized config equals the current one is a no-op. STATIC clusters take their hosts from
  // load_assignment and are active at once; STRICT_DNS / LOGICAL_DNS clusters resolve their
  // load_assignment's names (strict_dns_cluster.h) and warm until the first answer; an EDS
  // cluster warms (invisible to workers) until updateClusterLoadAssignment() gives it
  // hosts, except that an update of an active EDS cluster with the same service name keeps
  // its current hosts, and one whose service name another cluster already watches takes the
  // assignment that cluster has (the xDS subscription does not change: nobody sends it again).
  // Errors: "cluster 'x': lb_policy: unsupported load balancing policy 'RING_HASH'". A static
  // (bootstrap, added_via_api=false) cluster cannot be replaced by an API update.
  // A cluster with health_checks also warms until every host had its first check (Envoy's
  // rule), its hosts failed until then; a new version's hosts start over (fresh health state)
  // while the version it replaces keeps serving with its own.
  absl::Status addOrUpdateCluster(const envoy::config::cluster::v3::Cluster& config,
                                  const std::string& version_info, bool added_via_api = true);
  // Remove an API-added cluster (active or warming). False when there is none by that name or
  // it is a static one. In-flight streams finish on the workers' retired pools.
  bool removeCluster(std::string_view name);
  // Apply a ClusterLoadAssignment to every EDS cluster whose edsServiceName() is
  // `eds_service_name`: a warming cluster becomes active, an active one gets the new hosts.
  // Errors: "cluster_load_assignment 'svc': endpoints[0].lb_endpoints[1].endpoint.address: ..."
  // and NotFound when no EDS cluster watches that name. All or nothing. `cla_bytes`, when
  // given, are the bytes `cla` was parsed from (the field check reads them, issue 14).
  absl::Status updateClusterLoadAssignment(
      std::string_view eds_service_name,
      const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
      std::string_view cla_bytes = {});

  // Main thread, before the first cluster: the secrets TLS contexts may name.
  void setSecretManager(Tls::SecretManager* secrets) { secrets_ = secrets; }

  // Called whenever the last warming cluster becomes active (for the initial warm-up wait).
  void setWarmingDoneCallback(std::function<void()> cb) { warming_done_cb_ = std::move(cb); }

  // ClusterManager: any registered thread, lock-free (reads the calling thread's copy).
  ThreadLocalCluster* getThreadLocalCluster(std::string_view name) override;

  // Main-thread lookups.
  ClusterInfoImplConstSharedPtr getClusterInfo(std::string_view name) const;  // active only
  HostSetConstSharedPtr getHostSet(std::string_view name) const;              // active only
  bool isWarming(std::string_view name) const;
  // Whether an EDS cluster watching `eds_service_name` is still waiting for its first
  // ClusterLoadAssignment (not: for its first health check round).
  bool isEdsServiceWarming(std::string_view eds_service_name) const;
  size_t activeClusterCount() const { return active_.size(); }
  size_t warmingClusterCount() const { return warming_.size(); }
  // The ClusterLoadAssignment names the EDS clusters (active and warming) watch, sorted, unique.
  std::vector<std::string> edsServiceNames() const;
  // Every cluster, active ones then warming ones, each sorted by name.
  void forEachCluster(const std::function<void(const ClusterView&)>& cb) const;

 private:
  struct ClusterData {
    // The config, serialized deterministically (ClusterView::config_bytes); an update with the
    // same bytes changes nothing.
    std::string config_bytes;
    std::string version_info;
    SystemTime last_updated;
    ClusterInfoImplConstSharedPtr info;
    HostSetConstSharedPtr hosts;
    bool added_via_api;
    // Outlier detection (null: none); the monitors' posts reach it through weak pointers.
    // Declared before the health checker, which calls it, so that it is destroyed after it.
    std::shared_ptr<Outlier::DetectorImpl> outlier_detector;
    // Active health checking (null: none). Owned here, so its callbacks (which name this
    // ClusterData) never outlive it.
    HealthCheckerPtr health_checker;
    // In warming_ with its hosts, waiting for the health checker's first round.
    bool awaiting_health_checks = false;
    // In warming_ with its hosts, waiting for the secrets of its TLS context (SDS); the
    // handle keeps the context's ready callback.
    bool awaiting_secrets = false;
    std::shared_ptr<void> secrets_ready_handle;
    // STRICT_DNS / LOGICAL_DNS: the resolution (null otherwise). Last: destroyed first, so
    // none of its callbacks (which name this ClusterData) can run once it goes.
    std::unique_ptr<DnsClusterImpl> dns;
  };
  using ClusterMap = std::map<std::string, std::unique_ptr<ClusterData>, std::less<>>;

  // Make `data` the active version and publish it to every thread.
  void activate(std::unique_ptr<ClusterData> data);
  // A cluster other than `except` (active or warming) watches EDS service `service`.
  bool watchedByAnother(std::string_view service, std::string_view except) const;
  // The hosts of the last assignment applied to EDS service `service`, as a cluster other than
  // `except` (active, or warming with its hosts) has them; null when there is none.
  const HostVector* watchedHosts(std::string_view service, std::string_view except) const;
  // Forgets the assignment of `service` once no cluster watches it (its subscription ends; a
  // later one brings the current assignment).
  void forgetUnwatchedAssignment(const std::string& service);
  void updateMembershipStats(const ClusterData& data);
  // `hosts` (from EDS or load_assignment) for `data`: its health checker learns them (new ones
  // start failed), its outlier detector gives new ones a monitor, then the snapshot is
  // computed with the cluster's panic threshold.
  HostSetConstSharedPtr prepareHosts(ClusterData& data, HostVector hosts);
  // A version whose hosts are known: active now, or warming until its first health check round.
  // Returns whether it became active.
  bool activateOrAwaitHealthChecks(std::unique_ptr<ClusterData> data);
  // The DNS cluster of `data` has new hosts: stored while it warms, published when active.
  void onDnsHosts(ClusterData& data, HostVector hosts);
  // The DNS cluster of `data` had its first answer: a warming version becomes active (or waits
  // for its health checks).
  void onDnsInitialized(ClusterData& data);
  // Publish `data`'s current hosts to the workers (an active cluster's hosts changed).
  void publishHosts(ClusterData& data);
  // The health checker of `data` changed a host's health: a new snapshot for the workers.
  void onHostHealthChanged(ClusterData& data);
  // The health checker of `data` completed its first round: a warming version becomes active.
  void onInitialHealthCheckRound(ClusterData& data);
  // The secrets of a warming cluster's TLS context arrived (or were given up on).
  void onSecretsReady(ClusterData& data);
  // Refresh the gauges; run the warming-done callback if warming just ended.
  void updateGauges(bool was_warming);

  Event::Dispatcher& main_dispatcher_;
  Stats::Store& store_;
  Tls::SecretManager* secrets_ = nullptr;
  ThreadLocal::SlotPtr slot_;
  ClusterMap active_;
  ClusterMap warming_;
  // EDS service name -> names of the clusters with a version (warming or active) watching it.
  // updateClusterLoadAssignment() re-checks each candidate and drops names that no longer
  // match, so entries are only added on update and erased on removal. Without it every
  // ClusterLoadAssignment scanned every cluster: 10,000 clusters' assignments in one response
  // cost O(n^2) (found by xds_cluster_scale_bench: 20 s instead of well under one).
  std::map<std::string, std::set<std::string>, std::less<>> eds_index_;
  // EDS service names an assignment was applied to, while a cluster watches them: a new cluster
  // on such a name takes the hosts another cluster has (watchedHosts()). The assignment itself
  // is not kept: a decoded ClusterLoadAssignment is ~450 bytes per endpoint (issue 14).
  std::set<std::string, std::less<>> eds_assigned_;
  std::function<void()> warming_done_cb_;

  Stats::Counter& cluster_added_;
  Stats::Counter& cluster_modified_;
  Stats::Counter& cluster_removed_;
  Stats::Gauge& active_clusters_;
  Stats::Gauge& warming_clusters_;
};

}  // namespace Proxy::Upstream
