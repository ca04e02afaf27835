// The gRPC health checker against a real gRPC server (gRPC's own grpc.health.v1 service), with
// the cluster manager and two workers. Not labelled "threading": TSan reports races inside the
// uninstrumented libgrpc server; the thread crossing is the one cluster_manager_health_test.cc
// covers under TSan.

#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "test/unit/upstream/cluster_manager_health_fixture.h"

namespace Proxy::Upstream {
namespace {

using envoy::config::cluster::v3::Cluster;

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
  ASSERT_TRUE(
      runMainUntil([&] { return cm_->getHostSet("backend")->healthy_host_count == 1; }, "SERVING"));
  for (int i = 0; i < kWorkers; i++) {
    EXPECT_EQ(3u, picksOnWorker(i, 3).count(static_cast<uint32_t>(port))) << "worker_" << i;
  }
  EXPECT_EQ(0u, store_.counter("cluster.backend.health_check.network_failure").value());

  // The server goes away: the reused HTTP/2 connection fails, and so does the host.
  server->Shutdown(std::chrono::system_clock::now());  // this thread runs the main loop
  ASSERT_TRUE(runMainUntil([&] { return cm_->getHostSet("backend")->healthy_host_count == 0; },
                           "server gone"));
  cm_.reset();  // before the server object: no connection outlives it
}

}  // namespace
}  // namespace Proxy::Upstream
