// The xDS client over real gRPC: a management server on 127.0.0.1 port 0 built on our protos,
// the client built from a bootstrap the way the proxy builds it, its real gRPC transport, and
// the libevent dispatcher. The test thread runs the client's dispatcher while it waits.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "test/integration/xds_client/fake_xds_server.h"
#include "test/unit/xds_client/xds_test_util.h"
#include "xds_client/config.h"
#include "xds_client/grpc_transport_impl.h"
#include "xds_client/xds_client_impl.h"

namespace Proxy::Xds {
namespace {

namespace fake = ::Proxy::Test;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryRequest;
using fake::deltaResource;
using fake::deltaResponse;
using fake::edsCluster;
using fake::endpoints;
using fake::listener;
using fake::packed;
using fake::protoEquals;
using fake::RecordingWatcher;
using fake::sotwResponse;
using ::testing::ElementsAre;
using ::testing::Pair;

constexpr char kNode[] = R"pb(
  node {
    id: "node-1"
    cluster: "edge"
    user_agent_name: "xds-proxy"
    user_agent_build_version { version { minor_number: 1 } }
    client_features: "xds.config.resource-in-sotw"
  }
)pb";

// The bootstrap's dynamic_resources for ADS over the static cluster xds_cluster.
std::string adsDynamicResources(const std::string& api_type) {
  return R"({
    "ads_config": {"api_type": ")" +
         api_type + R"(", "transport_api_version": "V3",
                   "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]},
    "lds_config": {"ads": {}, "resource_api_version": "V3"},
    "cds_config": {"ads": {}, "resource_api_version": "V3"}})";
}

class XdsClientIntegrationTest : public ::testing::Test {
 protected:
  XdsClientIntegrationTest() {
    tick_ = dispatcher_.createTimer([this] { dispatcher_.exit(); });
  }

  ~XdsClientIntegrationTest() override {
    client_.reset();
    tick_.reset();
  }

  // A bootstrap as users write it, pointing at the fake server.
  XdsClientConfig configFor(const std::string& dynamic_resources) {
    const std::string json = R"({
      "node": {"id": "node-1", "cluster": "edge"},
      "static_resources": {"clusters": [{
        "name": "xds_cluster", "type": "STATIC", "connect_timeout": "1s",
        "typed_extension_protocol_options": {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}},
        "load_assignment": {"cluster_name": "xds_cluster", "endpoints": [{"lb_endpoints": [
          {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                       "port_value": )" +
                             std::to_string(server_.port()) + R"(}}}}]}]}}]},
      "dynamic_resources": )" +
                             dynamic_resources + "}";
    envoy::config::bootstrap::v3::Bootstrap bootstrap;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &bootstrap).ok());
    auto config = xdsConfigFromBootstrap(bootstrap);
    EXPECT_TRUE(config.ok()) << config.status();
    // Short backoff keeps reconnect tests quick.
    config->backoff_base = std::chrono::milliseconds(100);
    config->backoff_max = std::chrono::milliseconds(1000);
    return *config;
  }

  void createClient(XdsClientConfig config) {
    client_ = std::make_unique<XdsClientImpl>(
        dispatcher_, std::move(config),
        std::make_unique<GrpcXdsTransportFactory>(
            dispatcher_,
            GrpcTransportOptions{std::chrono::milliseconds(100), std::chrono::milliseconds(1000),
                                 std::chrono::seconds(10)}),
        Stats::Scope(store_, ""));
  }

  WatchHandle watch(std::string_view type_url, const std::vector<std::string>& names,
                    Watcher& watcher) {
    auto handle = client_->watch(type_url, names, watcher);
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.ok() ? *std::move(handle) : nullptr;
  }

  // Run the client's loop until `done` holds; the loop wakes at least every 5 ms to check.
  ::testing::AssertionResult runUntil(
      const std::function<bool()>& done,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return ::testing::AssertionFailure()
               << "condition not met within " << timeout.count() << " ms";
      }
      tick_->enableTimer(std::chrono::milliseconds(5));
      dispatcher_.run(Event::Dispatcher::RunType::RunUntilExit);
    }
    return ::testing::AssertionSuccess();
  }

  void runFor(std::chrono::milliseconds duration) {
    const auto end = std::chrono::steady_clock::now() + duration;
    (void)runUntil([&] { return std::chrono::steady_clock::now() >= end; }, duration * 2);
  }

  std::shared_ptr<fake::SotwStream> sotwStream(size_t n) {
    EXPECT_TRUE(runUntil([&] { return server_.sotwStreamCount() > n; }));
    return server_.waitForSotwStream(n, std::chrono::milliseconds(0));
  }
  std::shared_ptr<fake::DeltaStream> deltaStream(size_t n) {
    EXPECT_TRUE(runUntil([&] { return server_.deltaStreamCount() > n; }));
    return server_.waitForDeltaStream(n, std::chrono::milliseconds(0));
  }

  template <class Stream, class Request>
  ::testing::AssertionResult nextRequest(Stream& stream, Request& request) {
    auto arrived = runUntil([&] { return stream.pendingRequests() > 0; });
    if (!arrived) {
      return arrived << " (waiting for a request on " << stream.method << ")";
    }
    return stream.waitForRequest(request, std::chrono::milliseconds(0));
  }

  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  int64_t gauge(const std::string& name) { return store_.gauge(name).value(); }

  RealTimeSource time_;
  Event::DispatcherImpl dispatcher_{"main", time_};
  Stats::Store store_;
  fake::FakeXdsServer server_;
  Event::TimerPtr tick_;
  std::unique_ptr<XdsClientImpl> client_;
};

TEST_F(XdsClientIntegrationTest, AdsStateOfTheWorldEndToEnd) {
  createClient(configFor(adsDynamicResources("GRPC")));
  RecordingWatcher clusters, listeners;
  auto cds = watch(kClusterTypeUrl, {}, clusters);
  auto lds = watch(kListenerTypeUrl, {}, listeners);

  // One ADS stream; CDS first, with the bootstrap's node and our user agent.
  auto stream = sotwStream(0);
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(stream->method, "StreamAggregatedResources");
  DiscoveryRequest request;
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  )pb"));
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
  )pb"));
  ASSERT_TRUE(runUntil([&] { return gauge("control_plane.connected_state") == 1; }));

  // Clusters at version 1: delivered and ACKed over the wire.
  ASSERT_TRUE(stream->send(
      sotwResponse(kClusterTypeUrl, /*version_info=*/"1", /*nonce=*/"c1",
                   {packed(edsCluster("cluster_a")), packed(edsCluster("cluster_b"))})));
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    response_nonce: "c1"
  )pb"));
  EXPECT_THAT(clusters.take(),
              ElementsAre("update version='1' added=[cluster_a, cluster_b] removed=[]"));

  // Listeners with a Cluster among them: the good one applies, the NACK names the bad one.
  ASSERT_TRUE(stream->send(
      sotwResponse(kListenerTypeUrl, "1", "l1",
                   {packed(listener("listener_a", 10000)), packed(edsCluster("oops"))})));
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "l1"
    error_detail {
      code: 3
      message: "resource index 1: oops: resource type 'type.googleapis.com/envoy.config.cluster.v3.Cluster' does not match the response type 'type.googleapis.com/envoy.config.listener.v3.Listener'"
    }
  )pb"));
  EXPECT_THAT(listeners.take(), ElementsAre("update version='1' added=[listener_a] removed=[]"));
  EXPECT_EQ(counter("lds.update_rejected"), 1u);
}

TEST_F(XdsClientIntegrationTest, ReconnectsAfterTheServerEndsTheStream) {
  createClient(configFor(adsDynamicResources("GRPC")));
  RecordingWatcher clusters;
  auto cds = watch(kClusterTypeUrl, {}, clusters);
  auto stream = sotwStream(0);
  ASSERT_NE(stream, nullptr);
  DiscoveryRequest request;
  ASSERT_TRUE(nextRequest(*stream, request));
  ASSERT_TRUE(stream->send(sotwResponse(kClusterTypeUrl, "1", "c1", {packed(edsCluster("a"))})));
  ASSERT_TRUE(nextRequest(*stream, request));
  clusters.take();

  // The server ends the stream: the watcher hears of it, the client backs off and reconnects.
  stream->close();
  ASSERT_TRUE(runUntil([&] { return !clusters.events.empty(); }));
  EXPECT_THAT(clusters.take(), ElementsAre("failed ConnectionFailure"));
  auto second = sotwStream(1);
  ASSERT_NE(second, nullptr);
  // The new stream restates the subscription with the accepted version.
  ASSERT_TRUE(nextRequest(*second, request));
  EXPECT_TRUE(protoEquals(request, std::string(kNode) + R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  )pb"));
  ASSERT_TRUE(runUntil([&] { return gauge("control_plane.connected_state") == 1; }));
}

TEST_F(XdsClientIntegrationTest, RefusedConnectionsBackOffWithoutSpinning) {
  auto config = configFor(adsDynamicResources("GRPC"));
  server_.shutdown();  // nothing listens on the port any more
  createClient(config);
  RecordingWatcher clusters;
  auto cds = watch(kClusterTypeUrl, {}, clusters);

  // Each refused attempt is a failure the watcher hears of.
  ASSERT_TRUE(runUntil([&] { return counter("cds.update_failure") >= 3; }));
  EXPECT_EQ(gauge("control_plane.connected_state"), 0);
  // Backoff (100 ms base, 1 s cap here) keeps attempts rare: a busy loop would make
  // thousands in a second.
  const uint64_t before = counter("cds.update_failure");
  runFor(std::chrono::seconds(1));
  EXPECT_LE(counter("cds.update_failure") - before, 6u);
}

TEST_F(XdsClientIntegrationTest, AdsDeltaEndToEnd) {
  createClient(configFor(adsDynamicResources("DELTA_GRPC")));
  RecordingWatcher clusters, cluster_a;
  auto cds = watch(kClusterTypeUrl, {}, clusters);
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, cluster_a);

  auto stream = deltaStream(0);
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(stream->method, "DeltaAggregatedResources");
  DeltaDiscoveryRequest request;
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  )pb"));
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names_subscribe: "cluster_a"
  )pb"));

  // A cluster and its endpoints, each ACKed by nonce.
  ASSERT_TRUE(stream->send(deltaResponse(
      kClusterTypeUrl, "n1", {deltaResource("cluster_a", "v1", edsCluster("cluster_a"))}, {})));
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    response_nonce: "n1"
  )pb"));
  ASSERT_TRUE(stream->send(
      deltaResponse(kClusterLoadAssignmentTypeUrl, "n2",
                    {deltaResource("cluster_a", "e1", endpoints("cluster_a", 80))}, {})));
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    response_nonce: "n2"
  )pb"));
  EXPECT_THAT(clusters.take(), ElementsAre("update version='' added=[cluster_a] removed=[]"));
  EXPECT_THAT(cluster_a.take(), ElementsAre("update version='' added=[cluster_a] removed=[]"));

  // After a reconnect the client tells the server which versions it holds.
  stream->close();
  auto second = deltaStream(1);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(nextRequest(*second, request));
  EXPECT_THAT(fake::takeInitialResourceVersions(request), ElementsAre(Pair("cluster_a", "v1")));
  EXPECT_TRUE(protoEquals(request, std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  )pb"));
  ASSERT_TRUE(nextRequest(*second, request));
  EXPECT_THAT(fake::takeInitialResourceVersions(request), ElementsAre(Pair("cluster_a", "e1")));
  EXPECT_TRUE(protoEquals(request, R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names_subscribe: "cluster_a"
  )pb"));
}

TEST_F(XdsClientIntegrationTest, ListenersOnTheirOwnStream) {
  createClient(configFor(R"({
    "lds_config": {"resource_api_version": "V3", "api_config_source": {
      "api_type": "GRPC", "transport_api_version": "V3",
      "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}}})"));
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);

  auto stream = sotwStream(0);
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(stream->method, "StreamListeners");
  DiscoveryRequest request;
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
  )pb"));
  ASSERT_TRUE(stream->send(
      sotwResponse(kListenerTypeUrl, "7", "l7", {packed(listener("listener_a", 10000))})));
  ASSERT_TRUE(nextRequest(*stream, request));
  EXPECT_TRUE(protoEquals(request, R"pb(
    version_info: "7"
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "l7"
  )pb"));
  EXPECT_THAT(listeners.take(), ElementsAre("update version='7' added=[listener_a] removed=[]"));
}

// Shutdown ordering: the client goes away while gRPC threads are delivering responses, and
// while streams are still connecting. Run under TSAN and ASAN (label `threading`).
TEST_F(XdsClientIntegrationTest, ClientDestroyedWhileStreamsAreBusy) {
  createClient(configFor(adsDynamicResources("GRPC")));
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  auto stream = sotwStream(0);
  ASSERT_NE(stream, nullptr);

  // A server thread pushes responses as fast as the stream takes them.
  std::atomic<bool> stop{false};
  std::thread pusher([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (!stream->send(sotwResponse(kListenerTypeUrl, std::to_string(i), std::to_string(i),
                                     {packed(listener("listener_a", 10000 + i % 100))}))) {
        break;
      }
    }
  });
  ASSERT_TRUE(runUntil([&] { return listeners.events.size() >= 3; }));
  lds.reset();
  client_.reset();  // cancels the stream and waits for gRPC to let go of it
  stop = true;
  pusher.join();

  // Clients that go away before their stream even connected.
  for (int i = 0; i < 20; ++i) {
    createClient(configFor(adsDynamicResources(i % 2 == 0 ? "GRPC" : "DELTA_GRPC")));
    RecordingWatcher watcher;
    auto handle = watch(kClusterTypeUrl, {}, watcher);
    dispatcher_.run(Event::Dispatcher::RunType::NonBlock);  // the stream starts connecting
    runFor(std::chrono::milliseconds(i % 3));
    handle.reset();
    client_.reset();
  }
  // Posted events of the destroyed clients find nobody and do nothing.
  runFor(std::chrono::milliseconds(50));
}

TEST_F(XdsClientIntegrationTest, AServerFasterThanTheMainThreadIsHeldBackByFlowControl) {
  createClient(configFor(adsDynamicResources("GRPC")));
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  auto stream = sotwStream(0);
  ASSERT_NE(stream, nullptr);

  // The server pushes 200 responses of 256 KiB (50 MiB) while the main thread is busy
  // elsewhere (its loop does not run). The client reads one response ahead of the main thread,
  // so the stream's HTTP/2 window (a few MiB at most, however gRPC sizes it) fills and the
  // server's writes block after a few; a client that kept reading would queue all of them in
  // memory and let the server finish at once.
  constexpr int kResponses = 200;
  const std::string padding(256 * 1024, 'v');
  std::atomic<int> sent{0};
  std::thread pusher([&] {
    for (int i = 0; i < kResponses; ++i) {
      if (!stream->send(sotwResponse(kListenerTypeUrl, padding + std::to_string(i),
                                     std::to_string(i),
                                     {packed(listener("listener_a", 10000 + i % 100))}))) {
        return;
      }
      sent++;
    }
  });
  // Wait without running the loop: up to a second, or until the server sent everything.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (sent.load() < kResponses && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LT(sent.load(), kResponses / 2) << "of " << kResponses << " responses sent";

  // The main thread comes back: the updates flow again.
  ASSERT_TRUE(runUntil([&] { return listeners.events.size() >= 3; }));
  lds.reset();
  client_.reset();  // cancels the stream: the server's blocked write fails
  pusher.join();
}

}  // namespace
}  // namespace Proxy::Xds
