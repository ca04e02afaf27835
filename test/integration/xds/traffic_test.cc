// Traffic while the configuration changes, end to end: RDS updates under load, EDS clusters
// warming, endpoints coming and going, clusters removed under an in-flight request, routes to
// clusters that do not exist yet. The real proxy binary, an in-test ADS server the test drives,
// real upstreams; every wait is on an ACK, a stat or a response, with a deadline.

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "test/integration/dnsmasq_process.h"
#include "test/integration/fake_h2_upstream.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::XdsIntegration {
namespace {

class XdsTrafficTest : public XdsIntegrationTest {
 protected:
  void SetUp() override {
    XdsIntegrationTest::SetUp();
    upstream_a_ = makeUpstream("upstream-a");
    upstream_b_ = makeUpstream("upstream-b");
  }

  FakeUpstreamPtr upstream_a_;
  FakeUpstreamPtr upstream_b_;
};

// Clients that keep sending requests over keep-alive connections, each on its own thread, and
// count what went wrong. A socket error (reset, close mid-response, timeout) and any non-2xx
// response are failures; a connection the proxy closes cleanly between requests is not (the
// client reconnects), but it is counted too.
class LoadLoop {
 public:
  LoadLoop(uint32_t port, int threads) {
    for (int t = 0; t < threads; t++) {
      threads_.emplace_back([this, port, t] { run(port, t); });
    }
  }
  ~LoadLoop() { stop(); }

  void stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) {
        thread.join();
      }
    }
  }

  uint64_t requests() const { return requests_.load(); }
  uint64_t non2xx() const { return non2xx_.load(); }
  uint64_t socketErrors() const { return socket_errors_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  uint64_t servedBy(const std::string& upstream) {
    std::lock_guard<std::mutex> lock(mutex_);
    return served_by_[upstream];
  }
  std::string firstError() {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_error_;
  }

 private:
  void recordError(const std::string& error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (first_error_.empty()) {
      first_error_ = error;
    }
  }

  void run(uint32_t port, int t) {
    HttpClientPtr client;
    std::map<std::string, uint64_t> served;
    for (uint64_t i = 0; !stop_; i++) {
      if (client == nullptr) {
        absl::StatusOr<HttpClientPtr> connected = HttpClient::connect(port);
        if (!connected.ok()) {
          socket_errors_++;
          recordError(absl::StrCat("connect: ", connected.status().message()));
          continue;
        }
        client = *std::move(connected);
      }
      HttpRequest request;
      request.path = absl::StrCat("/load/", t, "/", i);
      absl::StatusOr<HttpResponse> response = client->request(request);
      if (!response.ok()) {
        socket_errors_++;
        recordError(std::string(response.status().message()));
        client = nullptr;
        continue;
      }
      requests_++;
      if (response->status < 200 || response->status >= 300) {
        non2xx_++;
        recordError(absl::StrCat("status ", response->status, ": ", response->body));
      }
      served[response->header("x-upstream")]++;
      if (!response->keep_alive) {
        reconnects_++;
        client = nullptr;
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, count] : served) {
      served_by_[name] += count;
    }
  }

  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> non2xx_{0};
  std::atomic<uint64_t> socket_errors_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::mutex mutex_;
  std::map<std::string, uint64_t> served_by_;
  std::string first_error_;
};

TEST_F(XdsTrafficTest, RouteUpdatesMoveTrafficBetweenClustersWithZeroFailedRequests) {
  constexpr int kUpdates = 200;
  constexpr int kClientThreads = 4;
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()}),
                          staticCluster("cluster_b", {upstream_b_->port()})},
                         /*endpoints=*/{}, {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "cluster_a"}})}));

  // Four clients keep sending over keep-alive connections for the whole test.
  LoadLoop load(listenerPort("ingress"), kClientThreads);

  // 200 route updates alternating the cluster, each ACKed, with traffic between every two.
  for (int i = 1; i <= kUpdates; i++) {
    const uint64_t before = load.requests();
    ASSERT_TRUE(
        applyRoutes({routeConfig("routes", {{"/", i % 2 == 1 ? "cluster_b" : "cluster_a"}})}));
    ASSERT_TRUE(Integration::waitUntil([&] { return load.requests() >= before + kClientThreads; },
                                       10s, absl::StrCat("requests after update ", i)));
  }
  load.stop();

  // Not one request failed, and both clusters served.
  EXPECT_EQ(load.non2xx(), 0u) << load.firstError();
  EXPECT_EQ(load.socketErrors(), 0u) << load.firstError();
  EXPECT_EQ(load.reconnects(), 0u);
  EXPECT_GT(load.servedBy("upstream-a"), 0u);
  EXPECT_GT(load.servedBy("upstream-b"), 0u);
  EXPECT_EQ(load.servedBy("upstream-a") + load.servedBy("upstream-b"), load.requests());
  EXPECT_GE(load.requests(), static_cast<uint64_t>(kUpdates * kClientThreads));
  EXPECT_EQ(stat("http.rds.routes.update_success"), kUpdates + 1);
  EXPECT_EQ(stat("http.ingress.downstream_rq_5xx"), 0);
  EXPECT_EQ(stat("http.ingress.downstream_rq_2xx"), static_cast<int64_t>(load.requests()));
  // The last update (an even one) routes to cluster_a.
  absl::StatusOr<HttpResponse> last = get(listenerPort("ingress"), "/last");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->header("x-upstream"), "upstream-a");
  std::cout << "route updates: " << kUpdates << ", requests: " << load.requests() << " (upstream-a "
            << load.servedBy("upstream-a") << ", upstream-b " << load.servedBy("upstream-b")
            << ")\n";
}

TEST_F(XdsTrafficTest, InFlightRequestKeepsTheRouteTableItStartedWith) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()}),
                          staticCluster("cluster_b", {upstream_b_->port()})},
                         /*endpoints=*/{}, {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "cluster_a"}})}));
  const uint32_t port = listenerPort("ingress");

  // A slow request routed to cluster_a, upstream-a holding it for 500 ms.
  absl::StatusOr<HttpClientPtr> slow = HttpClient::connect(port);
  ASSERT_TRUE(slow.ok()) << slow.status();
  HttpRequest request;
  request.path = "/slow";
  request.headers = {{"x-fake-delay-ms", "500"}};
  ASSERT_TRUE((*slow)->sendRaw(HttpClient::serialize(request)).ok());
  ASSERT_TRUE(upstream_a_->waitForRequests(1));

  // The routes now send everything to cluster_b, and new requests go there...
  ASSERT_TRUE(applyRoutes({routeConfig("routes", {{"/", "cluster_b"}})}));
  absl::StatusOr<HttpResponse> fresh = get(port, "/fresh");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->header("x-upstream"), "upstream-b");

  // ...but the request in flight finishes on the table (and cluster) it started with, and its
  // keep-alive connection carries the next request with the new table.
  absl::StatusOr<HttpResponse> response = (*slow)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-a");
  request.headers.clear();
  request.path = "/next";
  response = (*slow)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->header("x-upstream"), "upstream-b");
}

TEST_F(XdsTrafficTest, EdsClusterIsInvisibleWhileWarmingAndServesOnceItsEndpointsArrive) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  const RouteConfiguration routes =
      routeConfig("routes", {{"/eds", "eds_cluster"}, {"/", "cluster_a"}});
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()})}, /*endpoints=*/{},
                         {rdsListener("ingress", "routes")}, {routes}));
  const uint32_t port = listenerPort("ingress");

  // CDS adds an EDS cluster. The proxy asks for its endpoints; the server holds them back.
  const std::string nonce =
      sendClusters({staticCluster("cluster_a", {upstream_a_->port()}), edsCluster("eds_cluster")});
  ASSERT_TRUE(ads_->waitForSubscription(kEndpointType, {"eds_cluster"}).ok());
  ASSERT_TRUE(waitForAck(kClusterType, nonce));
  EXPECT_EQ(stat("cluster_manager.warming_clusters"), 1);
  EXPECT_EQ(stat("cluster_manager.active_clusters"), 2);  // xds_cluster and cluster_a
  absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(*proxy_);
  ASSERT_TRUE(dump.ok()) << dump.status();
  EXPECT_EQ(dump->names("ClustersConfigDump", "dynamic_warming_clusters"),
            std::vector<std::string>{"eds_cluster"});

  // Warming, the cluster is invisible to routing: 503 with the NC flag (no cluster).
  absl::StatusOr<HttpResponse> response = get(port, "/eds/warming");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_TRUE(waitForAccessLog("\"GET /eds/warming HTTP/1.1\" 503 NC "));
  EXPECT_EQ(stat("http.ingress.no_cluster"), 1);

  // Its ClusterLoadAssignment arrives: the cluster is active and serves.
  ASSERT_TRUE(applyEndpoints({loadAssignment("eds_cluster", {upstream_b_->port()})}));
  EXPECT_EQ(stat("cluster_manager.warming_clusters"), 0);
  EXPECT_EQ(stat("cluster_manager.active_clusters"), 3);
  EXPECT_EQ(stat("cluster.eds_cluster.membership_total"), 1);
  EXPECT_EQ(stat("cluster.eds_cluster.membership_healthy"), 1);
  response = get(port, "/eds/warm");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-b");
  dump = ConfigDump::fetch(*proxy_);
  ASSERT_TRUE(dump.ok()) << dump.status();
  EXPECT_TRUE(dump->names("ClustersConfigDump", "dynamic_warming_clusters").empty());
}

TEST_F(XdsTrafficTest, EndpointsAddedRemovedAndUnhealthyOverEds) {
  // One worker, so that one pooled upstream connection per host carries every request and
  // "connections to hosts that stay are untouched" can be counted.
  ASSERT_TRUE(startProxy(/*concurrency=*/1, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({edsCluster("svc")}, {loadAssignment("svc", {upstream_a_->port()})},
                         {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "svc"}})}));
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(listenerPort("ingress"));
  ASSERT_TRUE(client.ok()) << client.status();
  auto send = [&](const std::string& path) -> std::string {
    HttpRequest request;
    request.path = path;
    absl::StatusOr<HttpResponse> response = (*client)->request(request);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) {
      return "";
    }
    EXPECT_EQ(response->status, 200u) << response->body;
    return response->header("x-upstream");
  };
  EXPECT_EQ(send("/one"), "upstream-a");

  // An endpoint is added: traffic reaches it (round robin alternates between the two).
  ASSERT_TRUE(applyEndpoints({loadAssignment("svc", {upstream_a_->port(), upstream_b_->port()})}));
  EXPECT_EQ(stat("cluster.svc.membership_total"), 2);
  std::map<std::string, int> served;
  for (int i = 0; i < 10; i++) {
    served[send(absl::StrCat("/two/", i))]++;
  }
  EXPECT_EQ(served["upstream-a"], 5);
  EXPECT_EQ(served["upstream-b"], 5);
  const uint64_t b_connections = upstream_b_->connectionsAccepted();

  // upstream-a is removed: it gets no new request; upstream-b keeps its pooled connection.
  ASSERT_TRUE(applyEndpoints({loadAssignment("svc", {upstream_b_->port()})}));
  EXPECT_EQ(stat("cluster.svc.membership_total"), 1);
  const uint64_t a_requests = upstream_a_->requestsReceived();
  for (int i = 0; i < 10; i++) {
    EXPECT_EQ(send(absl::StrCat("/removed/", i)), "upstream-b");
  }
  EXPECT_EQ(upstream_a_->requestsReceived(), a_requests);
  EXPECT_EQ(upstream_b_->connectionsAccepted(), b_connections);
  // The removed host's idle pooled connection is closed.
  EXPECT_TRUE(upstream_a_->waitForActiveConnections(0));

  // upstream-a comes back UNHEALTHY: a member, but not a candidate.
  ASSERT_TRUE(applyEndpoints({loadAssignmentOf(
      "svc", {EndpointSpec{upstream_a_->port(), envoy::config::core::v3::UNHEALTHY},
              EndpointSpec{upstream_b_->port()}})}));
  EXPECT_EQ(stat("cluster.svc.membership_total"), 2);
  EXPECT_EQ(stat("cluster.svc.membership_healthy"), 1);
  for (int i = 0; i < 10; i++) {
    EXPECT_EQ(send(absl::StrCat("/unhealthy/", i)), "upstream-b");
  }
  EXPECT_EQ(upstream_a_->requestsReceived(), a_requests);

  // Admin shows both hosts with their EDS health: /clusters and /config_dump?include_eds.
  std::map<uint32_t, std::string> expected_health = {{upstream_a_->port(), "UNHEALTHY"},
                                                     {upstream_b_->port(), "HEALTHY"}};
  absl::StatusOr<HttpResponse> clusters = proxy_->adminGet("/clusters?format=json");
  ASSERT_TRUE(clusters.ok()) << clusters.status();
  google::protobuf::Struct clusters_json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(clusters->body, &clusters_json).ok())
      << clusters->body;
  std::map<uint32_t, std::string> clusters_health;
  for (const auto& cluster : field(clusters_json, {"cluster_statuses"})->list_value().values()) {
    if (stringField(cluster.struct_value(), {"name"}) != "svc") {
      continue;
    }
    for (const auto& host :
         field(cluster.struct_value(), {"host_statuses"})->list_value().values()) {
      const auto port = static_cast<uint32_t>(
          field(host.struct_value(), {"address", "socket_address", "port_value"})->number_value());
      clusters_health[port] =
          stringField(host.struct_value(), {"health_status", "eds_health_status"});
    }
  }
  EXPECT_EQ(clusters_health, expected_health) << clusters->body;
  // And the text form's health_flags, as Envoy prints them.
  clusters = proxy_->adminGet("/clusters");
  ASSERT_TRUE(clusters.ok()) << clusters.status();
  EXPECT_NE(clusters->body.find(absl::StrCat("svc::127.0.0.1:", upstream_a_->port(),
                                             "::health_flags::/failed_eds_health\n")),
            std::string::npos)
      << clusters->body;
  EXPECT_NE(clusters->body.find(
                absl::StrCat("svc::127.0.0.1:", upstream_b_->port(), "::health_flags::healthy\n")),
            std::string::npos)
      << clusters->body;

  absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(*proxy_, /*include_eds=*/true);
  ASSERT_TRUE(dump.ok()) << dump.status();
  const google::protobuf::Struct* endpoints = dump->section("EndpointsConfigDump");
  ASSERT_NE(endpoints, nullptr) << dump->json();
  std::map<uint32_t, std::string> dump_health;
  for (const auto& entry : field(*endpoints, {"dynamic_endpoint_configs"})->list_value().values()) {
    const google::protobuf::Struct& config = entry.struct_value();
    if (stringField(config, {"endpoint_config", "cluster_name"}) != "svc") {
      continue;
    }
    const auto& localities = field(config, {"endpoint_config", "endpoints"})->list_value();
    for (const auto& lb :
         localities.values(0).struct_value().fields().at("lb_endpoints").list_value().values()) {
      const auto port = static_cast<uint32_t>(
          field(lb.struct_value(), {"endpoint", "address", "socket_address", "port_value"})
              ->number_value());
      dump_health[port] = stringField(lb.struct_value(), {"health_status"});
    }
  }
  EXPECT_EQ(dump_health, expected_health) << dump->json();
}

// A control plane that pushes endpoint changes back to back: 150 EDS updates, each sent once
// the previous one was ACKed. The xDS client limits its requests only when the config source
// sets rate_limit_settings, as Envoy's GrpcMux: without it no ACK waits for a token (with
// Envoy's defaults, 100 tokens then 10/s, the last 50 would each wait ~100 ms); with it the
// storm is held to its rate. Either way every update is applied and ACKed, and the last one
// serves.
class XdsEdsStormTest : public XdsTrafficTest, public testing::WithParamInterface<std::string> {};

TEST_P(XdsEdsStormTest, EveryUpdateIsAckedAndTheClientLimitsOnlyWhenConfiguredTo) {
  const std::string& rate_limit_settings = GetParam();
  ASSERT_TRUE(startProxy(/*concurrency=*/1, /*drain_time_s=*/2, rate_limit_settings));
  ASSERT_TRUE(initialize({edsCluster("svc")}, {loadAssignment("svc", {upstream_a_->port()})},
                         {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "svc"}})}));
  for (int i = 1; i <= 150; i++) {
    FakeUpstream& upstream = i % 2 == 0 ? *upstream_a_ : *upstream_b_;
    ASSERT_TRUE(applyEndpoints({loadAssignment("svc", {upstream.port()})})) << "update " << i;
  }
  absl::StatusOr<HttpResponse> response = get(listenerPort("ingress"), "/after-the-storm");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->header("x-upstream"), "upstream-a");
  if (rate_limit_settings.empty()) {
    EXPECT_EQ(stat("control_plane.rate_limit_enforced"), 0);
  } else {
    EXPECT_GT(stat("control_plane.rate_limit_enforced"), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(RateLimitSettings, XdsEdsStormTest,
                         testing::Values("", "{max_tokens: 20, fill_rate: 200}"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param.empty() ? std::string("None")
                                                     : std::string("Configured");
                         });

TEST_F(XdsTrafficTest, UpdatedClusterKeepsServingUntilItsReplacementIsWarm) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({edsCluster("svc", /*service_name=*/"svc_v1")},
                         {loadAssignment("svc_v1", {upstream_a_->port()})},
                         {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "svc"}})}));
  const uint32_t port = listenerPort("ingress");

  // CDS changes the cluster to another ClusterLoadAssignment: the new version warms on it
  // while the old one keeps serving.
  const std::string nonce = sendClusters({edsCluster("svc", /*service_name=*/"svc_v2")});
  ASSERT_TRUE(ads_->waitForRequest(kEndpointType,
                                   [](const DiscoveryRequest& r) {
                                     return std::find(r.resource_names().begin(),
                                                      r.resource_names().end(),
                                                      "svc_v2") != r.resource_names().end();
                                   })
                  .ok());
  ASSERT_TRUE(waitForAck(kClusterType, nonce));
  EXPECT_EQ(stat("cluster_manager.warming_clusters"), 1);
  EXPECT_EQ(stat("cluster_manager.cluster_modified"), 1);
  absl::StatusOr<HttpResponse> response = get(port, "/while-warming");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-a");

  // Its endpoints arrive: the new version replaces the old one.
  ASSERT_TRUE(applyEndpoints({loadAssignment("svc_v2", {upstream_b_->port()})}));
  EXPECT_EQ(stat("cluster_manager.warming_clusters"), 0);
  response = get(port, "/warm");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-b");
}

TEST_F(XdsTrafficTest, RemovedClusterLetsItsInFlightRequestFinish) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()}),
                          staticCluster("cluster_b", {upstream_b_->port()})},
                         /*endpoints=*/{}, {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "cluster_a"}})}));
  const uint32_t port = listenerPort("ingress");

  // A request in flight on cluster_a (upstream-a answers after 500 ms).
  absl::StatusOr<HttpClientPtr> slow = HttpClient::connect(port);
  ASSERT_TRUE(slow.ok()) << slow.status();
  HttpRequest request;
  request.path = "/slow";
  request.headers = {{"x-fake-delay-ms", "500"}};
  ASSERT_TRUE((*slow)->sendRaw(HttpClient::serialize(request)).ok());
  ASSERT_TRUE(upstream_a_->waitForRequests(1));

  // CDS drops cluster_a.
  ASSERT_TRUE(applyClusters({staticCluster("cluster_b", {upstream_b_->port()})}));
  EXPECT_EQ(stat("cluster_manager.cluster_removed"), 1);

  // The request finishes normally.
  absl::StatusOr<HttpResponse> response = (*slow)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-a");
  EXPECT_EQ(stat("cluster.cluster_a.upstream_rq_2xx"), 1);

  // New requests find no cluster.
  response = get(port, "/after");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_TRUE(waitForAccessLog("\"GET /after HTTP/1.1\" 503 NC "));
}

// An HTTP/2 cluster ("h2") to `port`, with a stream limit (which the update below changes).
Cluster http2Cluster(uint32_t port, uint32_t max_concurrent_streams) {
  Cluster cluster = staticCluster("h2", {port});
  envoy::extensions::upstreams::http::v3::HttpProtocolOptions options;
  options.mutable_explicit_http_config()
      ->mutable_http2_protocol_options()
      ->mutable_max_concurrent_streams()
      ->set_value(max_concurrent_streams);
  (*cluster.mutable_typed_extension_protocol_options())
      ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
          .PackFrom(options);
  return cluster;
}

TEST_F(XdsTrafficTest, Http2ClusterUpdatedWhileStreamsRunDrainsItsOldConnection) {
  absl::StatusOr<Integration::FakeH2UpstreamPtr> h2 = Integration::FakeH2Upstream::create({});
  ASSERT_TRUE(h2.ok()) << h2.status();
  Integration::FakeH2Upstream& upstream = **h2;
  ASSERT_TRUE(startProxy(/*concurrency=*/1, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({http2Cluster(upstream.port(), 100)}, /*endpoints=*/{},
                         {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "h2"}})}));
  const uint32_t port = listenerPort("ingress");

  // Five streams in flight on one HTTP/2 connection (the upstream answers after 500 ms).
  std::vector<HttpClientPtr> slow;
  for (int i = 0; i < 5; i++) {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port);
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = absl::StrCat("/slow/", i);
    request.headers = {{"x-fake-delay-ms", "500"}};
    ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(request)).ok());
    slow.push_back(std::move(*client));
  }
  ASSERT_TRUE(upstream.waitForRequests(5));
  EXPECT_EQ(upstream.connectionsAccepted(), 1u);

  // CDS changes the cluster: its old pool drains, new requests open a new connection.
  ASSERT_TRUE(applyClusters({http2Cluster(upstream.port(), 50)}));
  EXPECT_EQ(stat("cluster_manager.cluster_modified"), 1);
  absl::StatusOr<HttpResponse> response = get(port, "/after-update");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(upstream.connectionsAccepted(), 2u);

  // The streams that were running finish normally on the old connection, which then closes.
  for (HttpClientPtr& client : slow) {
    response = client->readResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u);
  }
  EXPECT_TRUE(Integration::waitUntil([&] { return upstream.activeConnections() == 1; }, 10s,
                                     "the old pool's connection closed"));
  EXPECT_EQ(stat("cluster.h2.upstream_rq_2xx"), 6);
  EXPECT_EQ(stat("cluster.h2.upstream_rq_rx_reset"), 0);
  EXPECT_EQ(stat("cluster.h2.upstream_cx_http2_total"), 2);
}

TEST_F(XdsTrafficTest, RouteToAnUnknownClusterAnswers503UntilCdsAddsIt) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()})}, /*endpoints=*/{},
                         {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/late", "late"}, {"/", "cluster_a"}})}));
  const uint32_t port = listenerPort("ingress");

  // No cluster "late" yet: 503, flag NC; the process carries on.
  absl::StatusOr<HttpResponse> response = get(port, "/late/1");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_TRUE(waitForAccessLog("\"GET /late/1 HTTP/1.1\" 503 NC "));

  // CDS adds it: the same route works from the next request on.
  ASSERT_TRUE(applyClusters({staticCluster("cluster_a", {upstream_a_->port()}),
                             staticCluster("late", {upstream_b_->port()})}));
  EXPECT_EQ(stat("cluster_manager.cluster_added"), 3);  // xds_cluster, cluster_a, late
  response = get(port, "/late/2");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-b");
}

TEST_F(XdsTrafficTest, StrictDnsClusterOverCdsServesOnceItsNameResolves) {
  // An upstream on 127.0.0.2, the name dns.test for it in a DNS server of the test's own.
  FakeUpstreamOptions options;
  options.name = "upstream-dns";
  options.address = "127.0.0.2";
  absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  absl::StatusOr<std::unique_ptr<Integration::DnsmasqProcess>> dns =
      Integration::DnsmasqProcess::start({{"127.0.0.2", "dns.test"}});
  ASSERT_TRUE(dns.ok()) << dns.status();

  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  const RouteConfiguration routes =
      routeConfig("routes", {{"/dns", "dns_cluster"}, {"/", "cluster_a"}});
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()})}, /*endpoints=*/{},
                         {rdsListener("ingress", "routes")}, {routes}));
  const uint32_t port = listenerPort("ingress");

  // CDS adds a STRICT_DNS cluster of that name, resolved through the test's server.
  Cluster dns_cluster = staticCluster("dns_cluster", {(*upstream)->port()});
  dns_cluster.set_type(Cluster::STRICT_DNS);
  dns_cluster.mutable_load_assignment()
      ->mutable_endpoints(0)
      ->mutable_lb_endpoints(0)
      ->mutable_endpoint()
      ->mutable_address()
      ->mutable_socket_address()
      ->set_address("dns.test");
  dns_cluster.mutable_dns_refresh_rate()->set_nanos(100 * 1000 * 1000);
  envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig cares;
  auto* resolver = cares.add_resolvers()->mutable_socket_address();
  resolver->set_address("127.0.0.1");
  resolver->set_port_value((*dns)->port());
  dns_cluster.mutable_typed_dns_resolver_config()->set_name("envoy.network.dns_resolver.cares");
  dns_cluster.mutable_typed_dns_resolver_config()->mutable_typed_config()->PackFrom(cares);
  ASSERT_TRUE(applyClusters({staticCluster("cluster_a", {upstream_a_->port()}), dns_cluster}));

  // It warms until its first answer, then serves from the address the name has.
  ASSERT_TRUE(waitForStat("cluster_manager.warming_clusters", 0));
  EXPECT_EQ(stat("cluster.dns_cluster.membership_total"), 1);
  absl::StatusOr<HttpResponse> response = get(port, "/dns/1");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-dns");
  EXPECT_GE(stat("cluster.dns_cluster.update_success"), 1);

  // Removed over CDS: its resolution stops with it, its route has no cluster.
  ASSERT_TRUE(applyClusters({staticCluster("cluster_a", {upstream_a_->port()})}));
  response = get(port, "/dns/2");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
}

}  // namespace
}  // namespace Proxy::XdsIntegration
