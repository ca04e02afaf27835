// The cluster manager with a real main dispatcher (this thread), two worker dispatchers on
// their own threads and ThreadLocal::InstanceImpl: clusters reach every worker as shared
// snapshots, host updates keep unchanged Host objects and their pools, removal and no-op
// updates, EDS warming, and config errors with exact strings.

#include "proxy/upstream/cluster_manager_impl.h"

#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/thread_local/thread_local_impl.h"
#include "test/unit/upstream/fake_upstream.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {
namespace {

using envoy::config::cluster::v3::Cluster;

constexpr int kWorkers = 2;
constexpr std::chrono::seconds kDeadline{30};

Cluster staticCluster(const std::string& name, const std::vector<EndpointSpec>& endpoints) {
  Cluster cluster;
  cluster.set_name(name);
  cluster.set_type(Cluster::STATIC);
  cluster.mutable_connect_timeout()->set_seconds(1);
  *cluster.mutable_load_assignment() = makeAssignment(name, endpoints);
  return cluster;
}

Cluster edsCluster(const std::string& name, const std::string& service_name) {
  Cluster cluster;
  cluster.set_name(name);
  cluster.set_type(Cluster::EDS);
  cluster.mutable_eds_cluster_config()->set_service_name(service_name);
  cluster.mutable_eds_cluster_config()->mutable_eds_config()->mutable_ads();
  return cluster;
}

class ClusterManagerTest : public testing::Test {
 protected:
  void SetUp() override {
    tls_.registerThread(main_, /*main_thread=*/true);
    for (int i = 0; i < kWorkers; i++) {
      workers_.push_back(
          std::make_unique<Event::DispatcherImpl>("worker_" + std::to_string(i), time_source_));
      tls_.registerThread(*workers_.back(), /*main_thread=*/false);
    }
    for (int i = 0; i < kWorkers; i++) {
      threads_.emplace_back(
          [this, i] { workers_[i]->run(Event::Dispatcher::RunType::RunUntilExit); });
    }
    cm_ = std::make_unique<ClusterManagerImpl>(main_, tls_, store_);
  }

  void TearDown() override {
    // The server's order: the cluster manager goes, threading shuts down, each worker destroys
    // its own thread-local objects and exits, main last.
    cm_.reset();
    tls_.shutdownGlobalThreading();
    for (auto& worker : workers_) {
      Event::Dispatcher* dispatcher = worker.get();
      dispatcher->post([this, dispatcher] {
        tls_.shutdownThread();
        dispatcher->exit();
      });
    }
    for (std::thread& thread : threads_) {
      thread.join();
    }
    tls_.shutdownThread();
    main_.clearDeferredDeleteList();
  }

  // Runs `fn` on worker `i` and returns its result. Posts from this (main) thread run in
  // order, so everything the cluster manager posted before has been applied by then.
  template <class Fn>
  auto onWorker(int i, Fn fn) -> decltype(fn()) {
    using Result = decltype(fn());
    auto promise = std::make_shared<std::promise<Result>>();
    std::future<Result> future = promise->get_future();
    workers_[i]->post([promise, fn]() mutable { promise->set_value(fn()); });
    EXPECT_EQ(std::future_status::ready, future.wait_for(kDeadline)) << "worker_" << i;
    return future.get();
  }

  // Polls `condition` on worker `i` until it holds or the deadline passes.
  template <class Fn>
  testing::AssertionResult waitOnWorker(int i, Fn condition) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (onWorker(i, condition)) {
        return testing::AssertionSuccess();
      }
      std::this_thread::yield();
    }
    return testing::AssertionFailure() << "condition not met on worker_" << i;
  }

  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  int64_t gauge(const std::string& name) { return store_.gauge(name).value(); }

  RealTimeSource time_source_;
  Stats::Store store_;
  ThreadLocal::InstanceImpl tls_;
  Event::DispatcherImpl main_{"main", time_source_};
  std::vector<std::unique_ptr<Event::DispatcherImpl>> workers_;
  std::vector<std::thread> threads_;
  std::unique_ptr<ClusterManagerImpl> cm_;
};

TEST_F(ClusterManagerTest, AddedClusterIsVisibleOnEveryWorkerAsTheSameSnapshot) {
  // A static cluster with two endpoints.
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("backend", {{.port = 8001}, {.port = 8002}}),
                                      /*version_info=*/"1")
                  .ok());
  EXPECT_EQ(1u, counter("cluster_manager.cluster_added"));
  EXPECT_EQ(1, gauge("cluster_manager.active_clusters"));
  EXPECT_EQ(2, gauge("cluster.backend.membership_total"));
  EXPECT_EQ(2, gauge("cluster.backend.membership_healthy"));

  // Main sees it too (it is a registered thread).
  HostSetConstSharedPtr main_hosts = cm_->getHostSet("backend");
  ASSERT_NE(nullptr, main_hosts);
  ASSERT_NE(nullptr, cm_->getThreadLocalCluster("backend"));

  // Every worker holds the very same HostSet and ClusterInfo objects: shared, not copied.
  for (int i = 0; i < kWorkers; i++) {
    auto [hosts, info, picked] = onWorker(i, [this]() {
      ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
      EXPECT_NE(nullptr, cluster);
      return std::make_tuple(cluster->hostSet().get(), cluster->info().get(),
                             cluster->loadBalancer().chooseHost() != nullptr);
    });
    EXPECT_EQ(main_hosts.get(), hosts) << "worker_" << i;
    EXPECT_EQ(cm_->getClusterInfo("backend").get(), info) << "worker_" << i;
    EXPECT_TRUE(picked);
  }
  // An unknown cluster is null (the router answers 503 NC).
  EXPECT_EQ(nullptr, onWorker(0, [this]() { return cm_->getThreadLocalCluster("nope"); }));
}

TEST_F(ClusterManagerTest, UpdatedHostsReachWorkersAndUnchangedHostsKeepTheirObject) {
  // v1: endpoints a (8001) and b (8002).
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("backend", {{.port = 8001}, {.port = 8002}}),
                                      /*version_info=*/"1")
                  .ok());
  const Host* a_v1 = onWorker(
      0, [this]() { return cm_->getThreadLocalCluster("backend")->hostSet()->hosts[0].get(); });

  // v2: a unchanged, b replaced by c (8003).
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("backend", {{.port = 8001}, {.port = 8003}}),
                                      /*version_info=*/"2")
                  .ok());
  EXPECT_EQ(1u, counter("cluster_manager.cluster_modified"));

  for (int i = 0; i < kWorkers; i++) {
    auto [a_v2, second_port] = onWorker(i, [this]() {
      const HostVector& hosts = cm_->getThreadLocalCluster("backend")->hostSet()->hosts;
      return std::make_pair(hosts[0].get(), hosts[1]->address().port());
    });
    EXPECT_EQ(a_v1, a_v2) << "worker_" << i;
    EXPECT_EQ(8003u, second_port) << "worker_" << i;
  }
}

TEST_F(ClusterManagerTest, UnchangedClusterIsANoOp) {
  const Cluster cluster = staticCluster("backend", {{.port = 8001}});
  ASSERT_TRUE(cm_->addOrUpdateCluster(cluster, /*version_info=*/"1").ok());
  ThreadLocalCluster* before =
      onWorker(0, [this]() { return cm_->getThreadLocalCluster("backend"); });

  // The same config again, even with a new version_info: nothing changes anywhere.
  ASSERT_TRUE(cm_->addOrUpdateCluster(cluster, /*version_info=*/"2").ok());
  EXPECT_EQ(0u, counter("cluster_manager.cluster_modified"));
  EXPECT_EQ(1u, counter("cluster_manager.cluster_added"));
  EXPECT_EQ(before, onWorker(0, [this]() { return cm_->getThreadLocalCluster("backend"); }));
  // The cluster keeps its config serialized (issue 14); admin gets the same Cluster back.
  cm_->forEachCluster([&](const ClusterManagerImpl::ClusterView& view) {
    EXPECT_EQ("1", view.version_info);
    EXPECT_EQ(cluster.SerializeAsString(), view.config().SerializeAsString());
  });

  // A changed config is applied (and kept) in full.
  Cluster changed = cluster;
  changed.mutable_connect_timeout()->set_seconds(7);
  ASSERT_TRUE(cm_->addOrUpdateCluster(changed, /*version_info=*/"3").ok());
  EXPECT_EQ(1u, counter("cluster_manager.cluster_modified"));
  cm_->forEachCluster([&](const ClusterManagerImpl::ClusterView& view) {
    EXPECT_EQ("3", view.version_info);
    EXPECT_EQ(7, view.config().connect_timeout().seconds());
  });
}

TEST_F(ClusterManagerTest, RemovedClusterIsGoneFromEveryWorker) {
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("backend", {{.port = 8001}}),
                                      /*version_info=*/"1")
                  .ok());
  // A pool exists on worker 0 (created on first use; it has no connection yet).
  EXPECT_TRUE(onWorker(0, [this]() {
    ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
    return cluster->httpConnPool(cluster->loadBalancer().chooseHost(), std::nullopt) != nullptr;
  }));

  EXPECT_TRUE(cm_->removeCluster("backend"));
  EXPECT_EQ(1u, counter("cluster_manager.cluster_removed"));
  EXPECT_EQ(0, gauge("cluster_manager.active_clusters"));
  EXPECT_EQ(nullptr, cm_->getClusterInfo("backend"));
  for (int i = 0; i < kWorkers; i++) {
    EXPECT_EQ(nullptr, onWorker(i, [this]() { return cm_->getThreadLocalCluster("backend"); }));
  }
  // Removing it again, or something never added, does nothing.
  EXPECT_FALSE(cm_->removeCluster("backend"));
  EXPECT_EQ(1u, counter("cluster_manager.cluster_removed"));
}

TEST_F(ClusterManagerTest, ClusterStatsPersistByNameAcrossUpdateRemovalAndReAdd) {
  // A cluster counts a connection through its stats (one block of cells in the Store).
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("backend", {{.port = 8001}}),
                                      /*version_info=*/"1")
                  .ok());
  ClusterInfoImplConstSharedPtr first = cm_->getClusterInfo("backend");
  first->stats().upstream_cx_total().add(3);
  EXPECT_EQ(3u, counter("cluster.backend.upstream_cx_total"));

  // An update builds a new ClusterInfo: it counts on in the same stats, and so does the old one
  // (a request still holding it).
  Cluster changed = staticCluster("backend", {{.port = 8001}});
  changed.mutable_connect_timeout()->set_seconds(7);
  ASSERT_TRUE(cm_->addOrUpdateCluster(changed, /*version_info=*/"2").ok());
  ClusterInfoImplConstSharedPtr second = cm_->getClusterInfo("backend");
  ASSERT_NE(first, second);
  EXPECT_EQ(3u, second->stats().upstream_cx_total().value());
  first->stats().upstream_cx_total().inc();
  second->stats().upstream_cx_total().inc();
  EXPECT_EQ(5u, counter("cluster.backend.upstream_cx_total"));

  // Removed, its stats stay listed with their values; added again, it counts on from there.
  EXPECT_TRUE(cm_->removeCluster("backend"));
  EXPECT_NE(std::string::npos, store_.renderText().find("cluster.backend.upstream_cx_total: 5\n"));
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("backend", {{.port = 8001}}),
                                      /*version_info=*/"3")
                  .ok());
  ClusterInfoImplConstSharedPtr again = cm_->getClusterInfo("backend");
  EXPECT_EQ(5u, again->stats().upstream_cx_total().value());
  again->stats().upstream_cx_total().inc();
  EXPECT_EQ(6u, counter("cluster.backend.upstream_cx_total"));
  EXPECT_EQ(1, gauge("cluster.backend.membership_total"));
  // Listed once, under its one name.
  int listed = 0;
  store_.forEachCounter([&](const Stats::Counter& c) {
    listed += c.name() == "cluster.backend.upstream_cx_total" ? 1 : 0;
  });
  EXPECT_EQ(1, listed);
}

TEST_F(ClusterManagerTest, StaticClustersCannotBeReplacedOrRemovedByTheApi) {
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("bootstrap", {{.port = 8001}}),
                                      /*version_info=*/"", /*added_via_api=*/false)
                  .ok());
  EXPECT_EQ("cluster 'bootstrap': a static cluster with this name exists and cannot be replaced",
            cm_->addOrUpdateCluster(staticCluster("bootstrap", {{.port = 8002}}), "1").message());
  EXPECT_FALSE(cm_->removeCluster("bootstrap"));
  EXPECT_NE(nullptr, cm_->getClusterInfo("bootstrap"));
}

TEST_F(ClusterManagerTest, EdsClusterWarmsUntilItsFirstAssignment) {
  int warming_done = 0;
  cm_->setWarmingDoneCallback([&]() { warming_done++; });

  // An EDS cluster watching "backend-svc": warming, and not on the workers yet.
  ASSERT_TRUE(cm_->addOrUpdateCluster(edsCluster("backend", "backend-svc"), "1").ok());
  EXPECT_TRUE(cm_->isWarming("backend"));
  EXPECT_EQ(1, gauge("cluster_manager.warming_clusters"));
  EXPECT_EQ(0, gauge("cluster_manager.active_clusters"));
  EXPECT_EQ(std::vector<std::string>{"backend-svc"}, cm_->edsServiceNames());
  EXPECT_EQ(nullptr, onWorker(0, [this]() { return cm_->getThreadLocalCluster("backend"); }));

  // An assignment for a name nobody watches is NotFound.
  absl::Status status =
      cm_->updateClusterLoadAssignment("other-svc", makeAssignment("other-svc", {{.port = 8001}}));
  EXPECT_EQ(absl::StatusCode::kNotFound, status.code());
  EXPECT_EQ("cluster_load_assignment 'other-svc': no EDS cluster uses it", status.message());

  // A bad assignment is rejected with the field, and the cluster keeps warming.
  status = cm_->updateClusterLoadAssignment(
      "backend-svc", makeAssignment("backend-svc", {{.port = 8001}, {.ip = "nope", .port = 1}}));
  EXPECT_EQ(
      "cluster_load_assignment 'backend-svc': endpoints[0].lb_endpoints[1].endpoint.address."
      "socket_address.address: 'nope' is not an IP address",
      status.message());
  EXPECT_TRUE(cm_->isWarming("backend"));

  // The first good assignment activates it everywhere.
  ASSERT_TRUE(cm_->updateClusterLoadAssignment(
                     "backend-svc", makeAssignment("backend-svc", {{.port = 8001}, {.port = 8002}}))
                  .ok());
  EXPECT_FALSE(cm_->isWarming("backend"));
  EXPECT_EQ(1, warming_done);
  EXPECT_EQ(0, gauge("cluster_manager.warming_clusters"));
  EXPECT_EQ(1, gauge("cluster_manager.active_clusters"));
  for (int i = 0; i < kWorkers; i++) {
    EXPECT_EQ(2u, onWorker(i, [this]() {
                return cm_->getThreadLocalCluster("backend")->hostSet()->hosts.size();
              }));
  }
}

TEST_F(ClusterManagerTest, NewEdsClusterTakesTheAssignmentItsServiceNameAlreadyHas) {
  // "backend" watches "shared-svc" and has its assignment.
  ASSERT_TRUE(cm_->addOrUpdateCluster(edsCluster("backend", "shared-svc"), "1").ok());
  ASSERT_TRUE(cm_->updateClusterLoadAssignment(
                     "shared-svc", makeAssignment("shared-svc", {{.port = 8001}, {.port = 8002}}))
                  .ok());

  // A second cluster on the same assignment: the xDS subscription does not change, so nothing
  // will send the assignment again. It takes the one the first cluster has, and is active.
  ASSERT_TRUE(cm_->addOrUpdateCluster(edsCluster("mirror", "shared-svc"), "2").ok());
  EXPECT_FALSE(cm_->isWarming("mirror"));
  EXPECT_EQ(0, gauge("cluster_manager.warming_clusters"));
  EXPECT_EQ(2u, onWorker(0, [this]() {
              return cm_->getThreadLocalCluster("mirror")->hostSet()->hosts.size();
            }));
  EXPECT_EQ("mirror", onWorker(1, [this]() {
              return cm_->getThreadLocalCluster("mirror")->hostSet()->hosts[0]->clusterName();
            }));

  // A later assignment updates both.
  ASSERT_TRUE(
      cm_->updateClusterLoadAssignment("shared-svc", makeAssignment("shared-svc", {{.port = 8003}}))
          .ok());
  EXPECT_EQ(1u, cm_->getHostSet("backend")->hosts.size());
  EXPECT_EQ(1u, cm_->getHostSet("mirror")->hosts.size());

  // Once no cluster watches the name, its assignment is forgotten: a new cluster on it warms
  // until the (new) subscription brings the current one.
  ASSERT_TRUE(cm_->removeCluster("backend"));
  ASSERT_TRUE(cm_->removeCluster("mirror"));
  ASSERT_TRUE(cm_->addOrUpdateCluster(edsCluster("late", "shared-svc"), "3").ok());
  EXPECT_TRUE(cm_->isWarming("late"));
}

TEST_F(ClusterManagerTest, EdsHostUpdateKeepsPoolsOfRemainingHostsAndRetiresTheOthers) {
  ASSERT_TRUE(cm_->addOrUpdateCluster(edsCluster("backend", ""), "1").ok());
  // service_name empty: the cluster name is the resource name.
  ASSERT_TRUE(cm_->updateClusterLoadAssignment(
                     "backend", makeAssignment("backend", {{.port = 8001}, {.port = 8002}}))
                  .ok());

  // Worker 0 creates pools to both hosts.
  struct Pools {
    HttpConnPool* a;
    HttpConnPool* b;
    ThreadLocalCluster* cluster;
  };
  Pools before = onWorker(0, [this]() {
    ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
    const HostVector& hosts = cluster->hostSet()->hosts;
    return Pools{cluster->httpConnPool(hosts[0], std::nullopt),
                 cluster->httpConnPool(hosts[1], std::nullopt), cluster};
  });

  // New assignment: 8001 stays, 8002 leaves, 8003 arrives.
  ASSERT_TRUE(cm_->updateClusterLoadAssignment(
                     "backend", makeAssignment("backend", {{.port = 8001}, {.port = 8003}}))
                  .ok());
  EXPECT_EQ(0u, counter("cluster_manager.cluster_modified"));  // hosts only

  // Same ThreadLocalCluster, same pool for 8001; 8002's pool was retired (and, having no
  // connection, is already gone); the balancer only picks 8001 and 8003.
  auto [cluster, pool_a, pool_count, ports] = onWorker(0, [this]() {
    ThreadLocalClusterImpl* cluster =
        static_cast<ThreadLocalClusterImpl*>(cm_->getThreadLocalCluster("backend"));
    std::set<uint32_t> ports;
    for (int i = 0; i < 10; i++) {
      ports.insert(cluster->loadBalancer().chooseHost()->address().port());
    }
    HttpConnPool* pool_a = cluster->httpConnPool(cluster->hostSet()->hosts[0], std::nullopt);
    return std::make_tuple(static_cast<ThreadLocalCluster*>(cluster), pool_a, cluster->poolCount(),
                           ports);
  });
  EXPECT_EQ(before.cluster, cluster);
  EXPECT_EQ(before.a, pool_a);
  EXPECT_EQ(1u, pool_count);
  EXPECT_EQ((std::set<uint32_t>{8001, 8003}), ports);
  EXPECT_EQ(2, gauge("cluster.backend.membership_total"));

  // The same assignment again changes nothing on the workers.
  ASSERT_TRUE(cm_->updateClusterLoadAssignment(
                     "backend", makeAssignment("backend", {{.port = 8001}, {.port = 8003}}))
                  .ok());
  EXPECT_EQ(before.a, onWorker(0, [this]() {
              ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
              return cluster->httpConnPool(cluster->hostSet()->hosts[0], std::nullopt);
            }));

  // A new weight for 8001 makes a new Host object, but its pool (and connections) carry over.
  ASSERT_TRUE(
      cm_->updateClusterLoadAssignment(
             "backend", makeAssignment("backend", {{.port = 8001, .weight = 5}, {.port = 8003}}))
          .ok());
  auto [weight, same_pool] = onWorker(0, [this, &before]() {
    ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
    const HostConstSharedPtr& a = cluster->hostSet()->hosts[0];
    HttpConnPoolImpl* pool = static_cast<HttpConnPoolImpl*>(cluster->httpConnPool(a, std::nullopt));
    return std::make_pair(a->weight(), pool == before.a && pool->host() == a);
  });
  EXPECT_EQ(5u, weight);
  EXPECT_TRUE(same_pool);
}

// Envoy's membership_change counts updates that add or remove an address; a reorder, a new
// weight or a new health status is not one. (The comparison looks only at the positions whose
// addresses differ.)
TEST_F(ClusterManagerTest, MembershipChangeCountsAddedOrRemovedAddressesOnly) {
  ASSERT_TRUE(cm_->addOrUpdateCluster(edsCluster("backend", ""), "1").ok());
  auto assign = [this](const std::vector<EndpointSpec>& endpoints) {
    return cm_->updateClusterLoadAssignment("backend", makeAssignment("backend", endpoints)).ok();
  };
  ASSERT_TRUE(assign({{.port = 8001}, {.port = 8002}, {.port = 8003}}));
  const uint64_t first = counter("cluster.backend.membership_change");

  ASSERT_TRUE(assign({{.port = 8003}, {.port = 8001}, {.port = 8002}}));  // reordered
  ASSERT_TRUE(assign({{.port = 8003}, {.port = 8001, .weight = 4}, {.port = 8002}}));
  ASSERT_TRUE(assign({{.port = 8003},
                      {.port = 8001, .weight = 4},
                      {.port = 8002, .health = envoy::config::core::v3::UNHEALTHY}}));
  EXPECT_EQ(first, counter("cluster.backend.membership_change"));

  // One address swapped for another at the same position, then a duplicate in place of one.
  ASSERT_TRUE(assign({{.port = 8003}, {.port = 8004}, {.port = 8002}}));
  EXPECT_EQ(first + 1, counter("cluster.backend.membership_change"));
  ASSERT_TRUE(assign({{.port = 8003}, {.port = 8003}, {.port = 8002}}));
  EXPECT_EQ(first + 2, counter("cluster.backend.membership_change"));
  // Two positions trading addresses keep the same multiset.
  ASSERT_TRUE(assign({{.port = 8002}, {.port = 8003}, {.port = 8003}}));
  EXPECT_EQ(first + 2, counter("cluster.backend.membership_change"));
  EXPECT_EQ(3, gauge("cluster.backend.membership_total"));
}

TEST_F(ClusterManagerTest, RemovedClusterLetsInFlightStreamsFinishOnTheWorker) {
  // Worker 0 runs an upstream that holds each request until told to answer. Everything in
  // `state` is created, used and destroyed on worker 0.
  struct WorkerState {
    std::unique_ptr<FakeUpstream> upstream;
    FakeUpstream::ServerConnection* server = nullptr;
    TestStream stream;
  };
  auto state = std::make_shared<WorkerState>();
  WorkerState* s = state.get();
  const uint32_t port = onWorker(0, [this, s]() {
    s->upstream = std::make_unique<FakeUpstream>(*workers_[0]);
    s->upstream->respond_ = [s](FakeUpstream::ServerConnection& c) { s->server = &c; };
    return s->upstream->port();
  });
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("backend", {{.port = port}}), "1").ok());

  // A request goes out on worker 0 and reaches the upstream.
  onWorker(0, [this, s]() {
    ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
    cluster->httpConnPool(cluster->loadBalancer().chooseHost(), std::nullopt)
        ->newStream(s->stream, s->stream);
    return true;
  });
  ASSERT_TRUE(waitOnWorker(0, [s]() { return s->server != nullptr; }));

  // The cluster is removed with the request in flight: workers no longer see it...
  ASSERT_TRUE(cm_->removeCluster("backend"));
  EXPECT_EQ(nullptr, onWorker(0, [this]() { return cm_->getThreadLocalCluster("backend"); }));

  // ...but its retired pool still delivers the response, then closes the connection.
  onWorker(0, [s]() {
    s->server->send(kOkResponse);
    return true;
  });
  ASSERT_TRUE(waitOnWorker(0, [this, s]() {
    return s->stream.complete && gauge("cluster.backend.upstream_cx_active") == 0;
  }));
  EXPECT_EQ("ok", onWorker(0, [s]() { return s->stream.body; }));
  EXPECT_FALSE(onWorker(0, [s]() { return s->stream.reset; }));
  EXPECT_EQ(1u, counter("cluster.backend.upstream_cx_destroy_local"));

  onWorker(0, [s]() {
    s->upstream.reset();
    return true;
  });
}

TEST_F(ClusterManagerTest, ConfigErrorsNameClusterAndField) {
  auto error = [this](const Cluster& cluster) {
    return std::string(cm_->addOrUpdateCluster(cluster, /*version_info=*/"1").message());
  };

  Cluster cluster = staticCluster("x", {{.port = 8001}});
  cluster.set_lb_policy(Cluster::CLUSTER_PROVIDED);
  EXPECT_EQ("cluster 'x': lb_policy: unsupported load balancing policy 'CLUSTER_PROVIDED'",
            error(cluster));

  cluster = staticCluster("x", {{.port = 8001}});
  cluster.set_type(Cluster::ORIGINAL_DST);
  EXPECT_EQ("cluster 'x': type: unsupported cluster type 'ORIGINAL_DST'", error(cluster));

  cluster = staticCluster("x", {{.port = 8001}});
  cluster.mutable_connect_timeout()->set_seconds(0);
  EXPECT_EQ("cluster 'x': connect_timeout: must be greater than 0", error(cluster));

  cluster = staticCluster("x", {{.port = 8001}});
  cluster.set_lb_policy(Cluster::LEAST_REQUEST);
  cluster.mutable_least_request_lb_config()->mutable_choice_count()->set_value(1);
  EXPECT_EQ("cluster 'x': least_request_lb_config.choice_count: must be at least 2",
            error(cluster));

  cluster = staticCluster("x", {{.port = 8001}});
  cluster.mutable_transport_socket()->set_name("envoy.transport_sockets.tls");
  EXPECT_EQ(
      "cluster 'x': transport_socket: transport socket 'envoy.transport_sockets.tls' is "
      "not supported",
      error(cluster));

  cluster = staticCluster("x", {{.port = 8001}, {.ip = "backend.local", .port = 80}});
  EXPECT_EQ(
      "cluster 'x': load_assignment.endpoints[0].lb_endpoints[1].endpoint.address."
      "socket_address.address: 'backend.local' is not an IP address",
      error(cluster));

  cluster = staticCluster("", {{.port = 8001}});
  EXPECT_EQ("cluster '': name: must not be empty", error(cluster));

  // None of them was added or counted.
  EXPECT_EQ(0u, counter("cluster_manager.cluster_added"));
  EXPECT_EQ(0, gauge("cluster_manager.active_clusters"));
}

TEST_F(ClusterManagerTest, ClusterSettingsComeFromTheProto) {
  Cluster cluster = staticCluster("x", {{.port = 8001}});
  cluster.mutable_connect_timeout()->set_nanos(250000000);
  cluster.mutable_connect_timeout()->set_seconds(0);
  cluster.set_lb_policy(Cluster::LEAST_REQUEST);
  cluster.mutable_least_request_lb_config()->mutable_choice_count()->set_value(3);
  cluster.mutable_per_connection_buffer_limit_bytes()->set_value(32768);
  cluster.mutable_common_http_protocol_options()->mutable_max_requests_per_connection()->set_value(
      100);
  auto* thresholds = cluster.mutable_circuit_breakers()->add_thresholds();
  thresholds->mutable_max_connections()->set_value(7);
  thresholds->mutable_max_pending_requests()->set_value(8);
  thresholds->mutable_max_requests()->set_value(9);
  ASSERT_TRUE(cm_->addOrUpdateCluster(cluster, "1").ok());

  ClusterInfoImplConstSharedPtr info = cm_->getClusterInfo("x");
  ASSERT_NE(nullptr, info);
  EXPECT_EQ(std::chrono::milliseconds(250), info->connectTimeout());
  EXPECT_EQ(LbPolicy::LeastRequest, info->lbPolicy());
  EXPECT_EQ(3u, info->leastRequestChoiceCount());
  EXPECT_EQ(32768u, info->perConnectionBufferLimitBytes());
  EXPECT_EQ(100u, info->maxRequestsPerConnection());
  EXPECT_EQ(7u, info->maxConnections());
  EXPECT_EQ(8u, info->maxPendingRequests());
  EXPECT_EQ(9u, info->maxRequests());
  EXPECT_STREQ("STATIC", info->discoveryTypeName());

  // Defaults as Envoy's.
  ASSERT_TRUE(cm_->addOrUpdateCluster(staticCluster("y", {}), "1").ok());
  info = cm_->getClusterInfo("y");
  EXPECT_EQ(LbPolicy::RoundRobin, info->lbPolicy());
  EXPECT_EQ(1024u * 1024u, info->perConnectionBufferLimitBytes());
  EXPECT_EQ(0u, info->maxRequestsPerConnection());
  EXPECT_EQ(1024u, info->maxConnections());
  EXPECT_EQ(1024u, info->maxPendingRequests());
  EXPECT_EQ(1024u, info->maxRequests());
}

}  // namespace
}  // namespace Proxy::Upstream
