// The xDS protocol as the client speaks it, against a fake transport and simulated time:
// each test is a conversation with a management server, told step by step.

#include "xds_client/xds_client_impl.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/xds_client/fake_transport.h"
#include "test/unit/xds_client/simulated_dispatcher.h"
#include "test/unit/xds_client/xds_test_util.h"

namespace Proxy::Xds {
namespace {

namespace fake = ::Proxy::Test;
using fake::deltaResource;
using fake::deltaResponse;
using fake::edsCluster;
using fake::endpoints;
using fake::listener;
using fake::packed;
using fake::protoEquals;
using fake::RecordingWatcher;
using fake::routeConfig;
using fake::sotwResponse;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

// What the first request of every stream carries.
constexpr char kNode[] = R"pb(
  node {
    id: "node-1"
    cluster: "edge"
    user_agent_name: "xds-proxy"
    user_agent_build_version { version { minor_number: 1 } }
    client_features: "xds.config.resource-in-sotw"
  }
)pb";

class XdsClientTest : public ::testing::Test {
 protected:
  XdsClientTest() {
    config_.node.set_id("node-1");
    config_.node.set_cluster("edge");
    fillNodeIdentity(config_.node);
    config_.ads = XdsStreamConfig{"ipv4:127.0.0.1:18000", /*delta=*/false, {}};
    for (auto type_url : {kListenerTypeUrl, kRouteConfigurationTypeUrl, kClusterTypeUrl,
                          kClusterLoadAssignmentTypeUrl}) {
      XdsTypeConfig type;
      type.ads = true;
      config_.types[std::string(type_url)] = type;
    }
    // Jitter off: every backoff delay is the low end, interval / 2.
    config_.random = [] { return 0; };
  }

  void createClient() {
    client_ = std::make_unique<XdsClientImpl>(
        dispatcher_, config_, std::make_unique<fake::FakeTransportFactory>(streams_),
        Stats::Scope(store_, ""));
  }

  WatchHandle watch(absl::string_view type_url, const std::vector<std::string>& names,
                    Watcher& watcher, WatchOptions options = {}) {
    auto handle = client_->watch(type_url, names, watcher, std::move(options));
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.ok() ? *std::move(handle) : nullptr;
  }

  fake::FakeStream& stream(size_t i) { return *streams_->all.at(i); }
  size_t streamCount() const { return streams_->all.size(); }
  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  int64_t gauge(const std::string& name) { return store_.gauge(name).value(); }
  std::string text(const std::string& name) { return store_.textReadout(name).value(); }

  Stats::Store store_;
  fake::SimulatedDispatcher dispatcher_;
  std::shared_ptr<fake::FakeTransportFactory::Streams> streams_ =
      std::make_shared<fake::FakeTransportFactory::Streams>();
  XdsClientConfig config_;
  std::unique_ptr<XdsClientImpl> client_;  // destroyed before the dispatcher
};

// ----- State of the World -----------------------------------------------------------------------

TEST_F(XdsClientTest, FirstRequestCarriesNodeAndWildcard) {
  createClient();
  // The owner watches every listener and every cluster in the same loop iteration.
  RecordingWatcher listeners, clusters;
  auto lds = watch(kListenerTypeUrl, /*resource_names=*/{}, listeners);
  auto cds = watch(kClusterTypeUrl, /*resource_names=*/{}, clusters);
  // Nothing goes out until the loop runs, so both watches leave together.
  EXPECT_EQ(streamCount(), 0u);
  dispatcher_.runUntilIdle();

  // One ADS stream to the configured server.
  ASSERT_EQ(streamCount(), 1u);
  EXPECT_EQ(stream(0).target, "ipv4:127.0.0.1:18000");
  EXPECT_EQ(stream(0).method,
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources");
  // CDS first (make before break); the node only on the stream's first request; no names
  // means every resource of the type.
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  )pb"));
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
  )pb"));
  EXPECT_EQ(stream(0).pendingRequests(), 0u);

  // Connected once the server answers the stream.
  EXPECT_EQ(gauge("control_plane.connected_state"), 0);
  stream(0).connect();
  EXPECT_EQ(gauge("control_plane.connected_state"), 1);
}

TEST_F(XdsClientTest, AckEchoesVersionAndNonce) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // The server sends two listeners at version 1.
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, /*version_info=*/"1", /*nonce=*/"A",
                   {packed(listener("listener_a", 10000)), packed(listener("listener_b", 10001))}));
  // The watcher gets both, typed, with the version.
  EXPECT_THAT(listeners.take(),
              ElementsAre("update version='1' added=[listener_a, listener_b] removed=[]"));
  const auto& a = listeners.last_resources.at(0);
  EXPECT_EQ(a.as<envoy::config::listener::v3::Listener>().address().socket_address().port_value(),
            10000u);
  EXPECT_EQ(a.hash, hashResourceBytes(listener("listener_a", 10000).SerializeAsString()));

  // The ACK: the response's version and nonce, the same subscription, no node, no error.
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "A"
  )pb"));
  EXPECT_EQ(counter("lds.update_attempt"), 1u);
  EXPECT_EQ(counter("lds.update_success"), 1u);
  EXPECT_EQ(text("lds.version_text"), "1");
  EXPECT_EQ(client_->acceptedVersion(kListenerTypeUrl), "1");
}

TEST_F(XdsClientTest, NackCarriesPreviousVersionAndEveryProblem) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  // Version 1 is good and ACKed.
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "1", "A", {packed(listener("listener_a", 10000))}));
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  listeners.take();

  // Version 2 carries a Cluster where a Listener belongs, and a listener whose body is cut
  // short (its name is still readable), next to a good listener.
  std::string cut = listener("listener_c", 10002).SerializeAsString();
  cut.pop_back();
  google::protobuf::Any cut_any;
  cut_any.set_type_url(std::string(kListenerTypeUrl));
  cut_any.set_value(cut);
  stream(0).respond(sotwResponse(
      kListenerTypeUrl, "2", "B",
      {packed(listener("listener_a", 10010)), packed(edsCluster("wrong_type")), cut_any}));

  // The good listener is applied; the bad ones keep their last good version.
  EXPECT_THAT(listeners.take(), ElementsAre("update version='2' added=[listener_a] removed=[]"));
  // The NACK keeps version 1, takes the new nonce, and names every problem.
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "B"
    error_detail {
      code: 3
      message: "resource index 1: wrong_type: resource type 'type.googleapis.com/envoy.config.cluster.v3.Cluster' does not match the response type 'type.googleapis.com/envoy.config.listener.v3.Listener'; resource index 2: listener_c: does not parse as envoy.config.listener.v3.Listener"
    }
  )pb"));
  EXPECT_EQ(counter("lds.update_rejected"), 1u);
  EXPECT_EQ(text("lds.version_text"), "1");
  EXPECT_EQ(client_->acceptedVersion(kListenerTypeUrl), "1");
  // The stream stays up.
  EXPECT_EQ(streamCount(), 1u);
  EXPECT_TRUE(stream(0).open());
}

TEST_F(XdsClientTest, WatcherRejectionIsNackedWithItsMessage) {
  createClient();
  RecordingWatcher listeners;
  // The owner rejects listeners on port 1 (say, a bind failure), with the NACK format.
  listeners.verdict = [](const std::vector<DecodedResource>& resources) {
    ResourceErrors errors;
    for (const auto& r : resources) {
      if (r.as<envoy::config::listener::v3::Listener>().address().socket_address().port_value() ==
          1) {
        errors.add(r, "cannot bind 127.0.0.1:1: permission denied");
      }
    }
    return errors.toStatus();
  };
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "1", "A",
                   {packed(listener("listener_a", 10000)), packed(listener("listener_low", 1))}));
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "A"
    error_detail {
      code: 3
      message: "resource index 1: listener_low: cannot bind 127.0.0.1:1: permission denied"
    }
  )pb"));
}

TEST_F(XdsClientTest, AbsenceFromListenerResponseMeansRemovedUnlessInvalid) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();

  // Version 1: two listeners.
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "1", "A",
                   {packed(listener("listener_a", 10000)), packed(listener("listener_b", 10001))}));
  // Version 2 still has listener_b, but broken: it is not removed, its last version stays.
  google::protobuf::Any broken;
  broken.set_type_url(std::string(kListenerTypeUrl));
  broken.set_value(listener("listener_b", 10001).SerializeAsString() + "\xff");
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "2", "B", {packed(listener("listener_a", 10000)), broken}));
  // Version 3 no longer has listener_b: removed.
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "3", "C", {packed(listener("listener_a", 10000))}));
  // An empty response removes everything.
  stream(0).respond(sotwResponse(kListenerTypeUrl, "4", "D", {}));

  EXPECT_THAT(listeners.take(),
              ElementsAre("update version='1' added=[listener_a, listener_b] removed=[]",
                          "update version='2' added=[listener_a] removed=[]",
                          "update version='3' added=[listener_a] removed=[listener_b]",
                          "update version='4' added=[] removed=[listener_a]"));
}

TEST_F(XdsClientTest, DuplicateNameIsNackedAndNeitherCopyApplied) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "1", "A",
                   {packed(listener("listener_a", 10000)), packed(listener("listener_a", 10001)),
                    packed(listener("listener_b", 10002))}));
  EXPECT_THAT(listeners.take(), ElementsAre("update version='1' added=[listener_b] removed=[]"));
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "A"
    error_detail {
      code: 3
      message: "resource index 1: listener_a: duplicate resource name (first at index 0)"
    }
  )pb"));
}

TEST_F(XdsClientTest, ResponseThatDoesNotParseIsNackedAndStreamStaysUp) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // type_url and nonce, then a resource whose length runs past the end of the message.
  auto field = [](int number, const std::string& value) {
    return std::string(1, static_cast<char>(number << 3 | 2)) +
           std::string(1, static_cast<char>(value.size())) + value;
  };
  const std::string bytes = field(4, std::string(kListenerTypeUrl)) + field(5, "C") +
                            std::string(
                                "\x12\x64"
                                "abc");
  stream(0).respondBytes(bytes);

  EXPECT_THAT(listeners.take(), IsEmpty());
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "C"
    error_detail { code: 3 message: "DiscoveryResponse does not parse (63 bytes)" }
  )pb"));
  EXPECT_TRUE(stream(0).open());
}

TEST_F(XdsClientTest, RouteNameSetFollowsTheWatches) {
  createClient();
  RecordingWatcher first, second;
  // A listener refers to route_a.
  auto watch_a = watch(kRouteConfigurationTypeUrl, {"route_a"}, first);
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    resource_names: "route_a"
  )pb"));

  // Another listener refers to route_b and route_a: the request carries the union, sorted.
  auto watch_b = watch(kRouteConfigurationTypeUrl, {"route_b", "route_a"}, second);
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    resource_names: "route_a"
    resource_names: "route_b"
  )pb"));

  // The server answers; each watch gets what it asked for.
  stream(0).respond(sotwResponse(
      kRouteConfigurationTypeUrl, "1", "A",
      {packed(routeConfig("route_a", "cluster_a")), packed(routeConfig("route_b", "cluster_b"))}));
  EXPECT_THAT(first.take(), ElementsAre("update version='1' added=[route_a] removed=[]"));
  EXPECT_THAT(second.take(), ElementsAre("update version='1' added=[route_a, route_b] removed=[]"));
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    resource_names: "route_a"
    resource_names: "route_b"
    response_nonce: "A"
  )pb"));

  // The first listener goes away: the second still wants both, nothing to tell the server.
  watch_a.reset();
  dispatcher_.runUntilIdle();
  EXPECT_EQ(stream(0).pendingRequests(), 0u);

  // The second listener now only needs route_b.
  watch_b->updateResourceNames({"route_b"});
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    resource_names: "route_b"
    response_nonce: "A"
  )pb"));

  // Nobody needs routes any more: an empty list unsubscribes from all of them.
  watch_b.reset();
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    response_nonce: "A"
  )pb"));
}

TEST_F(XdsClientTest, ResourcesNotRequestedAreIgnored) {
  createClient();
  RecordingWatcher cluster_a;
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, cluster_a);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // The server also sends endpoints of a cluster nobody asked for, and a broken one of it.
  google::protobuf::Any broken;
  broken.set_type_url(std::string(kClusterLoadAssignmentTypeUrl));
  broken.set_value(endpoints("cluster_x", 2).SerializeAsString() + "\xff");
  stream(0).respond(sotwResponse(
      kClusterLoadAssignmentTypeUrl, "1", "A",
      {packed(endpoints("cluster_a", 8080)), packed(endpoints("cluster_x", 8081)), broken}));
  EXPECT_THAT(cluster_a.take(), ElementsAre("update version='1' added=[cluster_a] removed=[]"));
  // ACKed: what was not requested does not count, broken or not.
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names: "cluster_a"
    response_nonce: "A"
  )pb"));
}

TEST_F(XdsClientTest, OnlyTheLatestNonceIsEchoed) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // Two responses arrive before the client gets to answer: the first one's nonce is stale.
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "1", "A", {packed(listener("listener_a", 10000))}));
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "2", "B", {packed(listener("listener_a", 10001))}));
  EXPECT_THAT(listeners.take(), ElementsAre("update version='1' added=[listener_a] removed=[]",
                                            "update version='2' added=[listener_a] removed=[]"));
  // One request answers both: the newest supersedes.
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "2"
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "B"
  )pb"));
  EXPECT_EQ(stream(0).pendingRequests(), 0u);
}

TEST_F(XdsClientTest, ReconnectResendsSubscriptionsWithAcceptedVersions) {
  createClient();
  RecordingWatcher listeners, routes;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  auto rds = watch(kRouteConfigurationTypeUrl, {"route_a"}, routes);
  dispatcher_.runUntilIdle();
  stream(0).connect();
  stream(0).takeRequest();
  stream(0).takeRequest();
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "1", "A", {packed(listener("listener_a", 10000))}));
  stream(0).respond(sotwResponse(kRouteConfigurationTypeUrl, "7", "R",
                                 {packed(routeConfig("route_a", "cluster_a"))}));
  dispatcher_.runUntilIdle();
  listeners.take();
  routes.take();
  EXPECT_EQ(gauge("control_plane.connected_state"), 1);

  // The connection drops.
  stream(0).close(absl::UnavailableError("connection reset"));
  // Watchers hear about it; the config they have stays valid.
  EXPECT_THAT(listeners.take(), ElementsAre("failed ConnectionFailure"));
  EXPECT_THAT(routes.take(), ElementsAre("failed ConnectionFailure"));
  EXPECT_EQ(counter("lds.update_failure"), 1u);
  EXPECT_EQ(gauge("control_plane.connected_state"), 0);

  // The stream had received responses, so the backoff starts over: 250 ms (no jitter here).
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(249));
  EXPECT_EQ(streamCount(), 1u);
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  ASSERT_EQ(streamCount(), 2u);

  // The new stream restates everything with the accepted versions and no nonce.
  EXPECT_TRUE(protoEquals(stream(1).takeRequest(), std::string(kNode) + R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
  )pb"));
  EXPECT_TRUE(protoEquals(stream(1).takeRequest(), R"pb(
    version_info: "7"
    type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    resource_names: "route_a"
  )pb"));
}

TEST_F(XdsClientTest, BackoffDoublesUpToTheCapAndResetsAfterAHealthyStream) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();

  // The server refuses every stream: the delays double (low end of the jitter range) up to
  // the 30 s cap's 15 s.
  std::vector<int64_t> delays;
  for (int i = 0; i < 8; ++i) {
    const size_t count = streamCount();
    stream(count - 1).close(absl::UnavailableError("connection refused"));
    const MonotonicTime closed = dispatcher_.now();
    while (streamCount() == count) {
      dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
    }
    delays.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(dispatcher_.now() - closed).count());
  }
  EXPECT_THAT(delays, ElementsAre(250, 500, 1000, 2000, 4000, 8000, 15000, 15000));
  EXPECT_EQ(counter("lds.update_failure"), 8u);

  // A stream that gets a response is healthy: after it fails, the backoff starts over.
  const size_t count = streamCount();
  stream(count - 1).respond(sotwResponse(kListenerTypeUrl, "1", "A", {}));
  stream(count - 1).close(absl::UnavailableError("connection reset"));
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(250));
  EXPECT_EQ(streamCount(), count + 1);
}

TEST_F(XdsClientTest, InitialFetchTimeoutTellsTheWatcherToStopWaiting) {
  createClient();
  RecordingWatcher routes, patient;
  // Default timeout (15 s), and a watch that waits forever.
  auto rds = watch(kRouteConfigurationTypeUrl, {"route_a"}, routes);
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, patient,
                   WatchOptions{/*initial_fetch_timeout=*/std::chrono::milliseconds(0), {}});
  dispatcher_.runUntilIdle();

  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(14999));
  EXPECT_THAT(routes.take(), IsEmpty());
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_THAT(routes.take(), ElementsAre("failed FetchTimedOut"));
  EXPECT_EQ(counter("rds.init_fetch_timeout"), 1u);

  // The resource may still come later.
  stream(0).respond(sotwResponse(kRouteConfigurationTypeUrl, "1", "A",
                                 {packed(routeConfig("route_a", "cluster_a"))}));
  EXPECT_THAT(routes.take(), ElementsAre("update version='1' added=[route_a] removed=[]"));

  dispatcher_.advanceTimeAndRun(std::chrono::hours(1));
  EXPECT_THAT(patient.take(), IsEmpty());
  EXPECT_THAT(routes.take(), IsEmpty());
}

TEST_F(XdsClientTest, RateLimiterHoldsANackStormToTheConfiguredRate) {
  config_.ads->rate_limit = RateLimitSettings{/*enabled=*/true, /*max_tokens=*/5,
                                              /*fill_rate=*/1};
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();

  // A server that answers every request with the same broken config, as go-control-plane
  // does after a NACK. For 10 s of simulated time, it answers whatever arrives.
  google::protobuf::Any broken;
  broken.set_type_url(std::string(kListenerTypeUrl));
  broken.set_value("\xff");
  int nonce = 0;
  const MonotonicTime end = dispatcher_.now() + std::chrono::seconds(10);
  while (dispatcher_.now() < end) {
    while (stream(0).pendingRequests() > 0) {
      stream(0).takeRequest();
      stream(0).respond(sotwResponse(kListenerTypeUrl, "bad", std::to_string(++nonce), {broken}));
    }
    dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(10));
  }
  // The bucket's 5 tokens, then one per second: the first request and 14 NACKs.
  EXPECT_EQ(stream(0).totalRequests(), 15u);
  EXPECT_GE(counter("control_plane.rate_limit_enforced"), 10u);
}

TEST_F(XdsClientTest, LaterWatchGetsCachedResourcesWithoutAskingTheServer) {
  createClient();
  RecordingWatcher first, second;
  auto watch_a = watch(kRouteConfigurationTypeUrl, {"route_a"}, first);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  stream(0).respond(sotwResponse(kRouteConfigurationTypeUrl, "1", "A",
                                 {packed(routeConfig("route_a", "cluster_a"))}));
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  first.take();

  // A second listener refers to the same route: it gets it on the next loop iteration, and
  // the subscription is unchanged, so nothing is sent.
  auto watch_b = watch(kRouteConfigurationTypeUrl, {"route_a"}, second);
  EXPECT_THAT(second.take(), IsEmpty());
  dispatcher_.runUntilIdle();
  EXPECT_THAT(second.take(), ElementsAre("update version='1' added=[route_a] removed=[]"));
  EXPECT_EQ(stream(0).pendingRequests(), 0u);
}

TEST_F(XdsClientTest, WatchersMayDropWatchesFromTheirCallbacks) {
  createClient();
  RecordingWatcher first, second;
  WatchHandle watch_a, watch_b;
  // The first watcher drops both watches when it hears about cluster_a.
  first.verdict = [&](const std::vector<DecodedResource>&) {
    watch_a.reset();
    watch_b.reset();
    return absl::OkStatus();
  };
  watch_a = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, first);
  watch_b = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, second);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  stream(0).respond(sotwResponse(kClusterLoadAssignmentTypeUrl, "1", "A",
                                 {packed(endpoints("cluster_a", 8080))}));
  EXPECT_THAT(first.take(), ElementsAre("update version='1' added=[cluster_a] removed=[]"));
  EXPECT_THAT(second.take(), IsEmpty());
  // The ACK goes with the now empty subscription.
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    response_nonce: "A"
  )pb"));
}

TEST_F(XdsClientTest, HandleMayOutliveTheClient) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  client_.reset();
  lds->updateResourceNames({"listener_a"});
  lds.reset();
  dispatcher_.advanceTimeAndRun(std::chrono::minutes(1));
  EXPECT_THAT(listeners.take(), IsEmpty());
}

TEST_F(XdsClientTest, ResourceWrappersAndHeartbeatsInSotw) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).respond(
      sotwResponse(kListenerTypeUrl, "1", "A",
                   {packed(listener("listener_a", 10000)), packed(listener("listener_b", 10001))}));

  // Version 2 wraps listener_a in a Resource (as servers do for a ttl) and only refreshes
  // listener_b's ttl: listener_b is still there.
  envoy::service::discovery::v3::Resource wrapped;
  wrapped.set_name("listener_a");
  wrapped.mutable_resource()->PackFrom(listener("listener_a", 10005));
  envoy::service::discovery::v3::Resource heartbeat;
  heartbeat.set_name("listener_b");
  heartbeat.mutable_ttl()->set_seconds(30);
  stream(0).respond(sotwResponse(kListenerTypeUrl, "2", "B", {packed(wrapped), packed(heartbeat)}));
  EXPECT_THAT(listeners.take(),
              ElementsAre("update version='1' added=[listener_a, listener_b] removed=[]",
                          "update version='2' added=[listener_a] removed=[]"));
}

TEST_F(XdsClientTest, AdsIgnoresATypeNobodySubscribed) {
  createClient();
  RecordingWatcher listeners;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // Answering with a NACK would read as a wildcard subscription to clusters.
  stream(0).respond(sotwResponse(kClusterTypeUrl, "1", "A", {packed(edsCluster("c"))}));
  dispatcher_.runUntilIdle();
  EXPECT_EQ(stream(0).pendingRequests(), 0u);
  EXPECT_TRUE(stream(0).open());
}

TEST_F(XdsClientTest, PerTypeStreamsAndWrongTypeUrl) {
  // LDS and CDS each on their own stream (api_config_source without ADS).
  config_.ads.reset();
  config_.types[std::string(kListenerTypeUrl)] = XdsTypeConfig{
      /*ads=*/false, XdsStreamConfig{"ipv4:127.0.0.1:18001", false, {}}, std::chrono::seconds(15)};
  config_.types[std::string(kClusterTypeUrl)] = XdsTypeConfig{
      /*ads=*/false, XdsStreamConfig{"ipv4:127.0.0.1:18001", false, {}}, std::chrono::seconds(15)};
  createClient();
  RecordingWatcher listeners, clusters;
  auto lds = watch(kListenerTypeUrl, {}, listeners);
  auto cds = watch(kClusterTypeUrl, {}, clusters);
  dispatcher_.runUntilIdle();

  ASSERT_EQ(streamCount(), 2u);
  EXPECT_EQ(stream(0).method, "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters");
  EXPECT_EQ(stream(1).method,
            "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners");
  // Each stream's first request carries the node.
  EXPECT_TRUE(protoEquals(stream(1).takeRequest(), std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
  )pb"));

  // Clusters on the listener stream: NACKed on that stream.
  stream(1).respond(sotwResponse(kClusterTypeUrl, "1", "X", {packed(edsCluster("c"))}));
  dispatcher_.runUntilIdle();
  EXPECT_THAT(listeners.take(), IsEmpty());
  EXPECT_THAT(clusters.take(), IsEmpty());
  EXPECT_TRUE(protoEquals(stream(1).takeRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.listener.v3.Listener"
    response_nonce: "X"
    error_detail {
      code: 3
      message: "response type_url 'type.googleapis.com/envoy.config.cluster.v3.Cluster' does not match the stream's type 'type.googleapis.com/envoy.config.listener.v3.Listener'"
    }
  )pb"));
}

TEST_F(XdsClientTest, WatchFailsForUnknownOrUnconfiguredTypes) {
  config_.types.erase(std::string(kClusterLoadAssignmentTypeUrl));
  createClient();
  RecordingWatcher watcher;
  EXPECT_EQ(client_->watch("type.googleapis.com/nope.Nothing", {}, watcher).status().message(),
            "unknown xDS resource type 'type.googleapis.com/nope.Nothing'");
  EXPECT_EQ(client_->watch(kClusterLoadAssignmentTypeUrl, {"c"}, watcher).status().message(),
            "no xDS config source for "
            "'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'");
}

// ----- Delta ------------------------------------------------------------------------------------

class XdsClientDeltaTest : public XdsClientTest {
 protected:
  XdsClientDeltaTest() { config_.ads->delta = true; }
};

TEST_F(XdsClientDeltaTest, SubscribeAddRemoveAndAck) {
  createClient();
  RecordingWatcher clusters, cluster_a;
  auto cds = watch(kClusterTypeUrl, {}, clusters);
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, cluster_a);
  dispatcher_.runUntilIdle();

  ASSERT_EQ(streamCount(), 1u);
  EXPECT_EQ(stream(0).method,
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources");
  // Wildcard: no names on the first request. Named: subscribe.
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  )pb"));
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names_subscribe: "cluster_a"
  )pb"));

  // Two clusters arrive, each with its own version.
  auto response =
      deltaResponse(kClusterTypeUrl, /*nonce=*/"n1",
                    {deltaResource("cluster_a", /*version=*/"v1", edsCluster("cluster_a")),
                     deltaResource("cluster_b", "v1", edsCluster("cluster_b"))},
                    /*removed=*/{});
  response.set_system_version_info("s1");
  stream(0).respond(response);
  EXPECT_THAT(clusters.take(),
              ElementsAre("update version='s1' added=[cluster_a, cluster_b] removed=[]"));
  EXPECT_EQ(clusters.last_resources.at(0).version, "v1");
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    response_nonce: "n1"
  )pb"));

  // Only what changed comes next: cluster_b is removed.
  stream(0).respond(deltaResponse(kClusterTypeUrl, "n2", {}, {"cluster_b"}));
  EXPECT_THAT(clusters.take(), ElementsAre("update version='' added=[] removed=[cluster_b]"));
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    response_nonce: "n2"
  )pb"));
}

TEST_F(XdsClientDeltaTest, NameChangesAreSentAsDiffs) {
  createClient();
  RecordingWatcher watcher;
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, watcher);
  dispatcher_.runUntilIdle();
  stream(0).takeDeltaRequest();

  eds->updateResourceNames({"cluster_a", "cluster_b"});
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names_subscribe: "cluster_b"
  )pb"));

  eds->updateResourceNames({"cluster_b"});
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names_unsubscribe: "cluster_a"
  )pb"));

  eds.reset();
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names_unsubscribe: "cluster_b"
  )pb"));
}

TEST_F(XdsClientDeltaTest, ReconnectSendsInitialResourceVersions) {
  createClient();
  RecordingWatcher clusters, cluster_a;
  auto cds = watch(kClusterTypeUrl, {}, clusters);
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"cluster_a"}, cluster_a);
  dispatcher_.runUntilIdle();
  stream(0).respond(deltaResponse(kClusterTypeUrl, "n1",
                                  {deltaResource("cluster_a", "v1", edsCluster("cluster_a")),
                                   deltaResource("cluster_b", "v2", edsCluster("cluster_b"))},
                                  {}));
  stream(0).respond(deltaResponse(kClusterLoadAssignmentTypeUrl, "n2",
                                  {deltaResource("cluster_a", "e3", endpoints("cluster_a", 80))},
                                  {}));
  // A third response is rejected: its versions are not recorded.
  stream(0).respond(deltaResponse(kClusterTypeUrl, "n3",
                                  {deltaResource("cluster_c", "v9", edsCluster("cluster_c")),
                                   deltaResource("cluster_d", "v9", endpoints("cluster_d", 1))},
                                  {}));
  dispatcher_.runUntilIdle();
  EXPECT_EQ(stream(0).pendingRequests(), 5u);  // 2 subscriptions + 3 ACK/NACKs

  stream(0).close(absl::UnavailableError("connection reset"));
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(250));
  ASSERT_EQ(streamCount(), 2u);
  // Everything again, with the versions the client holds, so the server sends only changes.
  auto cds_request = stream(1).takeDeltaRequest();
  EXPECT_THAT(fake::takeInitialResourceVersions(cds_request),
              ElementsAre(Pair("cluster_a", "v1"), Pair("cluster_b", "v2")));
  EXPECT_TRUE(protoEquals(cds_request, std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  )pb"));
  auto eds_request = stream(1).takeDeltaRequest();
  EXPECT_THAT(fake::takeInitialResourceVersions(eds_request), ElementsAre(Pair("cluster_a", "e3")));
  EXPECT_TRUE(protoEquals(eds_request, R"pb(
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    resource_names_subscribe: "cluster_a"
  )pb"));
}

TEST_F(XdsClientDeltaTest, NackNamesTheBadResource) {
  createClient();
  RecordingWatcher clusters;
  auto cds = watch(kClusterTypeUrl, {}, clusters);
  dispatcher_.runUntilIdle();
  stream(0).takeDeltaRequest();

  stream(0).respond(deltaResponse(kClusterTypeUrl, "n1",
                                  {deltaResource("cluster_c", "v1", edsCluster("cluster_c")),
                                   deltaResource("cluster_d", "v1", endpoints("cluster_d", 1))},
                                  {}));
  EXPECT_THAT(clusters.take(), ElementsAre("update version='' added=[cluster_c] removed=[]"));
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeDeltaRequest(), R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    response_nonce: "n1"
    error_detail {
      code: 3
      message: "resource index 1: cluster_d: resource type 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment' does not match the response type 'type.googleapis.com/envoy.config.cluster.v3.Cluster'"
    }
  )pb"));
}

TEST_F(XdsClientDeltaTest, ResourceThatDoesNotExistIsReportedRemoved) {
  createClient();
  RecordingWatcher watcher;
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"cluster_gone"}, watcher);
  dispatcher_.runUntilIdle();

  // "The server will send a Resource whose name matches and whose resource is unset."
  envoy::service::discovery::v3::Resource missing;
  missing.set_name("cluster_gone");
  stream(0).respond(deltaResponse(kClusterLoadAssignmentTypeUrl, "n1", {missing}, {}));
  EXPECT_THAT(watcher.take(), ElementsAre("update version='' added=[] removed=[cluster_gone]"));
  // It counts as an answer: no initial fetch timeout later.
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(20));
  EXPECT_THAT(watcher.take(), IsEmpty());
}

// ----- Helpers
// ------------------------------------------------------------------------------------

TEST(TokenBucketTest, StartsFullAndRefillsAtTheFillRate) {
  fake::SimulatedTimeSource time;
  TokenBucket bucket(/*max_tokens=*/2, /*fill_rate=*/4, time);
  EXPECT_TRUE(bucket.consume());
  EXPECT_TRUE(bucket.consume());
  EXPECT_FALSE(bucket.consume());
  EXPECT_EQ(bucket.nextTokenIn(), std::chrono::milliseconds(250));
  time.setMonotonicTime(time.monotonicTime() + std::chrono::milliseconds(250));
  EXPECT_TRUE(bucket.consume());
  // Never more than max_tokens, however long it waits.
  time.setMonotonicTime(time.monotonicTime() + std::chrono::hours(1));
  EXPECT_TRUE(bucket.consume());
  EXPECT_TRUE(bucket.consume());
  EXPECT_FALSE(bucket.consume());
}

TEST(JitteredBackoffTest, StaysWithinTheUpperHalfOfTheInterval) {
  uint64_t next = 0;
  JitteredBackoff backoff(std::chrono::milliseconds(500), std::chrono::milliseconds(30000),
                          [&] { return next; });
  next = 250;  // the top of [250, 500]
  EXPECT_EQ(backoff.next(), std::chrono::milliseconds(500));
  next = 0;
  EXPECT_EQ(backoff.next(), std::chrono::milliseconds(500));  // [500, 1000]
  backoff.reset();
  next = 1000;  // wraps: 1000 % 251
  EXPECT_EQ(backoff.next(), std::chrono::milliseconds(250 + 1000 % 251));
}

}  // namespace
}  // namespace Proxy::Xds
