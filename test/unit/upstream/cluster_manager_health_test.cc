// Health state crossing threads: the cluster manager on this (main) thread with two worker
// threads, a STATIC cluster with a TCP health check against real sockets on 127.0.0.1. The
// checker runs on the main thread only; what it decides reaches each worker's load balancer as
// a new host-set snapshot through the thread-local slot (the EDS path). Runs under TSan in CI.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/thread_local/thread_local_impl.h"
#include "proxy/upstream/cluster_manager_impl.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {
namespace {

using envoy::config::cluster::v3::Cluster;
using namespace std::chrono_literals;

constexpr int kWorkers = 2;
constexpr std::chrono::seconds kDeadline{30};

// A socket bound to 127.0.0.1:0: connections are refused until listen() is called (then the
// kernel completes them without anyone accepting, which is all a connect-only check needs).
class Port {
 public:
  Port() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(0, ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Port() { ::close(fd_); }
  void listen() { EXPECT_EQ(0, ::listen(fd_, 64)); }
  uint32_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint32_t port_ = 0;
};

class ClusterManagerHealthTest : public testing::Test {
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

  // Runs the main loop (the checker's timers and connections) until `condition` holds.
  testing::AssertionResult runMainUntil(const std::function<bool()>& condition,
                                        const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      main_.run(Event::Dispatcher::RunType::NonBlock);
      if (condition()) {
        return testing::AssertionSuccess();
      }
      std::this_thread::sleep_for(1ms);  // the poll interval, not a synchronisation
    }
    return testing::AssertionFailure() << "timed out waiting for " << what;
  }

  // The ports worker `i`'s load balancer picks for `backend` in `picks` picks.
  std::multiset<uint32_t> picksOnWorker(int i, int picks) {
    auto promise = std::make_shared<std::promise<std::multiset<uint32_t>>>();
    std::future<std::multiset<uint32_t>> future = promise->get_future();
    workers_[i]->post([this, promise, picks] {
      std::multiset<uint32_t> ports;
      ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
      for (int n = 0; cluster != nullptr && n < picks; n++) {
        HostConstSharedPtr host = cluster->loadBalancer().chooseHost();
        ports.insert(host == nullptr ? 0 : host->address().port());
      }
      promise->set_value(ports);
    });
    EXPECT_EQ(std::future_status::ready, future.wait_for(kDeadline));
    return future.get();
  }

  RealTimeSource time_source_;
  Stats::Store store_;
  ThreadLocal::InstanceImpl tls_;
  Event::DispatcherImpl main_{"main", time_source_};
  std::vector<std::unique_ptr<Event::DispatcherImpl>> workers_;
  std::vector<std::thread> threads_;
  std::unique_ptr<ClusterManagerImpl> cm_;
};

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
  ASSERT_TRUE(runMainUntil([&] { return cm_->getHostSet("backend")->healthy_hosts.size() == 3; },
                           "recovery"));
  for (int i = 0; i < kWorkers; i++) {
    std::multiset<uint32_t> picks = picksOnWorker(i, 30);
    EXPECT_EQ(10u, picks.count(down.port())) << "worker_" << i;
  }
  EXPECT_EQ(3, store_.gauge("cluster.backend.membership_healthy").value());
  EXPECT_GE(store_.counter("cluster.backend.health_check.attempt").value(), 4u);
  EXPECT_GE(store_.counter("cluster.backend.health_check.network_failure").value(), 1u);
}

TEST_F(ClusterManagerHealthTest, GrpcHealthCheckFollowsTheServingStatus) {
  // A real gRPC server with gRPC's own grpc.health.v1 service; "backend.svc" is NOT_SERVING.
  // (gRPC serves its health service synchronously only beside a synchronous service: any will
  // do, here an ADS service that implements nothing.)
  grpc::EnableDefaultHealthCheckService(true);
  envoy::service::discovery::v3::AggregatedDiscoveryService::Service unimplemented;
  grpc::ServerBuilder builder;
  builder.RegisterService(&unimplemented);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(nullptr, server);
  ASSERT_GT(port, 0);
  server->GetHealthCheckService()->SetServingStatus("backend.svc", false);

  Cluster cluster;
  cluster.set_name("backend");
  cluster.set_type(Cluster::STATIC);
  cluster.mutable_connect_timeout()->set_seconds(1);
  *cluster.mutable_load_assignment() =
      makeAssignment("backend", {{.port = static_cast<uint32_t>(port)}});
  auto* check = cluster.add_health_checks();
  check->mutable_timeout()->set_seconds(5);
  check->mutable_interval()->set_nanos(50'000'000);
  check->mutable_no_traffic_interval()->set_nanos(50'000'000);
  check->mutable_unhealthy_threshold()->set_value(1);
  check->mutable_healthy_threshold()->set_value(1);
  check->mutable_grpc_health_check()->set_service_name("backend.svc");
  // One host: failed, it would be balanced to anyway in panic mode (Envoy's default 50%).
  cluster.mutable_common_lb_config()->mutable_healthy_panic_threshold()->set_value(0);
  ASSERT_TRUE(cm_->addOrUpdateCluster(cluster, /*version_info=*/"1").ok());

  // NOT_SERVING fails the host at its first check.
  ASSERT_TRUE(runMainUntil([&] { return !cm_->isWarming("backend"); }, "the first round"));
  EXPECT_EQ("/failed_active_hc", healthFlagsString(*cm_->getHostSet("backend")->hosts[0]));
  EXPECT_EQ(0u, picksOnWorker(0, 1).count(static_cast<uint32_t>(port)));

  // SERVING: the next check passes and the workers pick it.
  server->GetHealthCheckService()->SetServingStatus("backend.svc", true);
  ASSERT_TRUE(runMainUntil([&] { return cm_->getHostSet("backend")->healthy_hosts.size() == 1; },
                           "SERVING"));
  for (int i = 0; i < kWorkers; i++) {
    EXPECT_EQ(3u, picksOnWorker(i, 3).count(static_cast<uint32_t>(port))) << "worker_" << i;
  }
  EXPECT_EQ(0u, store_.counter("cluster.backend.health_check.network_failure").value());

  // The server goes away: the reused HTTP/2 connection fails, and so does the host.
  server->Shutdown(std::chrono::system_clock::now());  // this thread runs the main loop
  ASSERT_TRUE(runMainUntil([&] { return cm_->getHostSet("backend")->healthy_hosts.empty(); },
                           "server gone"));
  cm_.reset();  // before the server object: no connection outlives it
}

}  // namespace
}  // namespace Proxy::Upstream
