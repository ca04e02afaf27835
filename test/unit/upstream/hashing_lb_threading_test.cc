// RING_HASH / MAGLEV across threads: the cluster manager builds a cluster's ring (or table) on
// the main thread once per host set, and every worker's balancer reads that same object from
// its host-set snapshot, so a hash key picks the same host on every worker, and a host update
// publishes one new ring to all of them. Runs under TSan in CI (LABELS threading).

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/common/hash_util.h"
#include "test/unit/upstream/cluster_manager_health_fixture.h"

namespace Proxy::Upstream {
namespace {

using envoy::config::cluster::v3::Cluster;
using HashingLbThreadingTest = ClusterManagerHealthTest;

class KeyContext : public LoadBalancerContext {
 public:
  explicit KeyContext(uint64_t hash) : hash_(hash) {}
  std::optional<uint64_t> computeHashKey() override { return hash_; }

 private:
  uint64_t hash_;
};

Cluster hashingCluster(Cluster::LbPolicy policy, const std::vector<uint32_t>& ports) {
  Cluster cluster;
  cluster.set_name("backend");
  cluster.set_type(Cluster::STATIC);
  cluster.set_lb_policy(policy);
  cluster.mutable_connect_timeout()->set_seconds(1);
  std::vector<EndpointSpec> endpoints;
  for (uint32_t port : ports) {
    endpoints.push_back({.port = port});
  }
  *cluster.mutable_load_assignment() = makeAssignment("backend", endpoints);
  return cluster;
}

// What one worker sees: the ring object of its snapshot and the port each key picks.
struct WorkerView {
  const HashingLoadBalancer* structure = nullptr;
  std::vector<uint32_t> ports;
};

WorkerView viewOn(Event::Dispatcher& worker, ClusterManagerImpl& cm, int keys) {
  auto promise = std::make_shared<std::promise<WorkerView>>();
  std::future<WorkerView> future = promise->get_future();
  // Posted after the cluster manager's own posts from this thread: they ran first.
  worker.post([&cm, promise, keys] {
    WorkerView view;
    ThreadLocalCluster* cluster = cm.getThreadLocalCluster("backend");
    if (cluster != nullptr && !cluster->hostSet()->hashing.empty()) {
      view.structure = cluster->hostSet()->hashing[0].get();
      for (int k = 0; k < keys; k++) {
        KeyContext context(HashUtil::xxHash64("key-" + std::to_string(k)));
        HostConstSharedPtr host = cluster->loadBalancer().chooseHostFor(context, 0);
        view.ports.push_back(host == nullptr ? 0 : host->address().port());
      }
    }
    promise->set_value(std::move(view));
  });
  EXPECT_EQ(std::future_status::ready, future.wait_for(kDeadline));
  return future.get();
}

TEST_F(HashingLbThreadingTest, EveryWorkerSharesOneRingAndPicksTheSameHosts) {
  for (Cluster::LbPolicy policy : {Cluster::RING_HASH, Cluster::MAGLEV}) {
    SCOPED_TRACE(Cluster::LbPolicy_Name(policy));
    // Four endpoints: the ring is built once, on this thread.
    ASSERT_TRUE(
        cm_->addOrUpdateCluster(hashingCluster(policy, {9101, 9102, 9103, 9104}), "1").ok());
    WorkerView first = viewOn(*workers_[0], *cm_, 200);
    WorkerView second = viewOn(*workers_[1], *cm_, 200);
    ASSERT_NE(nullptr, first.structure);
    // The same object on both workers (shared, not rebuilt per worker), the same picks.
    EXPECT_EQ(first.structure, second.structure);
    EXPECT_EQ(first.ports, second.ports);

    // One endpoint goes: one new ring for everybody, and the keys of the others stay put.
    ASSERT_TRUE(cm_->addOrUpdateCluster(hashingCluster(policy, {9101, 9102, 9104}), "2").ok());
    WorkerView after0 = viewOn(*workers_[0], *cm_, 200);
    WorkerView after1 = viewOn(*workers_[1], *cm_, 200);
    EXPECT_NE(first.structure, after0.structure);
    EXPECT_EQ(after0.structure, after1.structure);
    EXPECT_EQ(after0.ports, after1.ports);
    int stayed = 0;
    for (size_t k = 0; k < first.ports.size(); k++) {
      EXPECT_NE(9103u, after0.ports[k]);
      if (first.ports[k] != 9103 && first.ports[k] == after0.ports[k]) {
        stayed++;
      }
    }
    int not_on_removed = 0;
    for (uint32_t port : first.ports) {
      not_on_removed += port != 9103 ? 1 : 0;
    }
    // Nearly all of them (Envoy's ring rescales a little: each survivor gains entries).
    EXPECT_GE(stayed * 100, not_on_removed * 85);
    ASSERT_TRUE(cm_->removeCluster("backend"));
  }
}

}  // namespace
}  // namespace Proxy::Upstream
