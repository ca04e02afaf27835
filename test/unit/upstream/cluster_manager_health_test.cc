// Health state crossing threads: the cluster manager on this (main) thread with two worker
// threads, a STATIC cluster with a TCP health check against real sockets on 127.0.0.1. The
// checker runs on the main thread only; what it decides reaches each worker's load balancer as
// a new host-set snapshot through the thread-local slot (the EDS path). Runs under TSan in CI.

#include "test/unit/upstream/cluster_manager_health_fixture.h"

namespace Proxy::Upstream {
namespace {

using envoy::config::cluster::v3::Cluster;

TEST_F(ClusterManagerHealthTest, CheckResultsReachEveryWorkersLoadBalancer) {
  // Three endpoints: two listen, one refuses. A connect-only TCP check every 50 ms (the
  // no-traffic interval too: nothing sends traffic here), one result flips a host.
  Port up1, up2, down;
  up1.listen();
  up2.listen();
  Cluster cluster;
  cluster.set_name("backend");
  cluster.set_type(Cluster::STATIC);
  cluster.mutable_connect_timeout()->set_seconds(1);
  *cluster.mutable_load_assignment() = makeAssignment(
      "backend", {{.port = up1.port()}, {.port = up2.port()}, {.port = down.port()}});
  auto* check = cluster.add_health_checks();
  check->mutable_timeout()->set_seconds(5);
  check->mutable_interval()->set_nanos(50'000'000);
  check->mutable_no_traffic_interval()->set_nanos(50'000'000);
  check->mutable_unhealthy_threshold()->set_value(1);
  check->mutable_healthy_threshold()->set_value(1);
  check->mutable_tcp_health_check();
  ASSERT_TRUE(cm_->addOrUpdateCluster(cluster, /*version_info=*/"1").ok());

  // The cluster warms until every host had its first check: no worker sees it yet.
  EXPECT_TRUE(cm_->isWarming("backend"));
  EXPECT_EQ(1, store_.gauge("cluster_manager.warming_clusters").value());
  EXPECT_TRUE(picksOnWorker(0, 1).empty());

  // After the first round it is active; the refusing host is failed.
  ASSERT_TRUE(runMainUntil([&] { return !cm_->isWarming("backend"); }, "the first round"));
  HostSetConstSharedPtr hosts = cm_->getHostSet("backend");
  ASSERT_EQ(3u, hosts->hosts.size());
  EXPECT_EQ("healthy", healthFlagsString(*hosts->hosts[0]));
  EXPECT_EQ("/failed_active_hc", healthFlagsString(*hosts->hosts[2]));
  EXPECT_EQ(2, store_.gauge("cluster.backend.membership_healthy").value());
  EXPECT_EQ(2, store_.gauge("cluster.backend.health_check.healthy").value());

  // Every worker balances over the two healthy hosts only.
  for (int i = 0; i < kWorkers; i++) {
    std::multiset<uint32_t> picks = picksOnWorker(i, 10);
    EXPECT_EQ(5u, picks.count(up1.port())) << "worker_" << i;
    EXPECT_EQ(5u, picks.count(up2.port())) << "worker_" << i;
    EXPECT_EQ(0u, picks.count(down.port())) << "worker_" << i;
  }

  // The endpoint comes up: the next check passes and every worker's balancer gets it back.
  down.listen();
  ASSERT_TRUE(runMainUntil([&] { return cm_->getHostSet("backend")->healthy_host_count == 3; },
                           "recovery"));
  for (int i = 0; i < kWorkers; i++) {
    std::multiset<uint32_t> picks = picksOnWorker(i, 30);
    EXPECT_EQ(10u, picks.count(down.port())) << "worker_" << i;
  }
  EXPECT_EQ(3, store_.gauge("cluster.backend.membership_healthy").value());
  EXPECT_GE(store_.counter("cluster.backend.health_check.attempt").value(), 4u);
  EXPECT_GE(store_.counter("cluster.backend.health_check.network_failure").value(), 1u);
}

}  // namespace
}  // namespace Proxy::Upstream
