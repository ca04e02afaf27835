// The client's streams (XdsStream) against a fake transport and simulated time: what the first
// request carries, per-type streams, reconnecting with backoff and the accepted versions, the
// request rate limit; and the backoff and token bucket on their own.

#include "xds_client/xds_stream.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "test/unit/xds_client/xds_client_test_base.h"
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

// A DiscoveryRequest as protobuf serializes it, from its text form.
std::string serializedRequest(const std::string& text) {
  envoy::service::discovery::v3::DiscoveryRequest request;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &request)) << text;
  return request.SerializeAsString();
}

TEST_F(XdsClientTest, SubscriptionNamesAreReusedAcrossAcksAndFollowEveryChange) {
  createClient();
  RecordingWatcher assignments;
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"c_b", "c_a"}, assignments);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // Version 1 is good. The ACK restates the names (serialized once for this subscription and
  // reused by every request until it changes): byte for byte the DiscoveryRequest protobuf
  // would serialize.
  stream(0).respond(sotwResponse(kClusterLoadAssignmentTypeUrl, "1", "A",
                                 {packed(endpoints("c_a", 8001)), packed(endpoints("c_b", 8002))}));
  dispatcher_.runUntilIdle();
  EXPECT_EQ(stream(0).takeRequestBytes(), serializedRequest(R"pb(
              version_info: "1"
              resource_names: "c_a"
              resource_names: "c_b"
              type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
              response_nonce: "A"
            )pb"));
  assignments.take();

  // A third cluster: the list changes and the next request says so.
  eds->updateResourceNames({"c_a", "c_b", "c_c"});
  dispatcher_.runUntilIdle();
  EXPECT_EQ(stream(0).takeRequestBytes(), serializedRequest(R"pb(
              version_info: "1"
              resource_names: "c_a"
              resource_names: "c_b"
              resource_names: "c_c"
              type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
              response_nonce: "A"
            )pb"));

  // Version 2 brings c_c cut short (its name still readable): NACKed with the last good
  // version and the subscription as it is now; c_a and c_b keep serving version 1's.
  std::string cut = endpoints("c_c", 8003).SerializeAsString();
  cut.pop_back();
  google::protobuf::Any cut_any;
  cut_any.set_type_url(std::string(kClusterLoadAssignmentTypeUrl));
  cut_any.set_value(cut);
  stream(0).respond(sotwResponse(kClusterLoadAssignmentTypeUrl, "2", "B", {cut_any}));
  dispatcher_.runUntilIdle();
  EXPECT_EQ(
      stream(0).takeRequestBytes(), serializedRequest(R"pb(
        version_info: "1"
        resource_names: "c_a"
        resource_names: "c_b"
        resource_names: "c_c"
        type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
        response_nonce: "B"
        error_detail {
          code: 3
          message: "resource index 0: c_c: does not parse as envoy.config.endpoint.v3.ClusterLoadAssignment"
        }
      )pb"));
  EXPECT_EQ(client_->acceptedVersion(kClusterLoadAssignmentTypeUrl), "1");
  assignments.take();

  // c_c is dropped and named again within one loop iteration: the subscription is what the
  // server was told, so nothing is sent.
  eds->updateResourceNames({"c_a", "c_b"});
  eds->updateResourceNames({"c_a", "c_b", "c_c"});
  dispatcher_.runUntilIdle();
  EXPECT_EQ(stream(0).pendingRequests(), 0u);

  // c_b is dropped: it leaves the request and the cache, so naming it again later delivers
  // nothing until the server sends it (it is fetched afresh); c_a is still cached.
  eds->updateResourceNames({"c_a", "c_c"});
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    resource_names: "c_a"
    resource_names: "c_c"
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    response_nonce: "B"
  )pb"));
  RecordingWatcher second;
  auto again = watch(kClusterLoadAssignmentTypeUrl, {"c_a", "c_b"}, second);
  dispatcher_.runUntilIdle();
  EXPECT_THAT(second.take(), ElementsAre("update version='1' added=[c_a] removed=[]"));
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    resource_names: "c_a"
    resource_names: "c_b"
    resource_names: "c_c"
    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    response_nonce: "B"
  )pb"));
}

TEST_F(XdsClientTest, WhenTheLastWildcardWatchLeavesOnlyNamedResourcesStayCached) {
  createClient();
  // Every cluster, and one by name.
  RecordingWatcher all, named;
  auto wildcard = watch(kClusterTypeUrl, {}, all);
  auto by_name = watch(kClusterTypeUrl, {"cluster_a"}, named);
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), std::string(kNode) + R"pb(
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    resource_names: "*"
    resource_names: "cluster_a"
  )pb"));
  stream(0).respond(
      sotwResponse(kClusterTypeUrl, "1", "A",
                   {packed(edsCluster("cluster_a")), packed(edsCluster("cluster_b"))}));
  dispatcher_.runUntilIdle();
  EXPECT_EQ(stream(0).takeRequestBytes(), serializedRequest(R"pb(
              version_info: "1"
              resource_names: "*"
              resource_names: "cluster_a"
              type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
              response_nonce: "A"
            )pb"));
  all.take();
  named.take();

  // The wildcard watch goes: cluster_b was only its, and leaves the cache with it.
  wildcard.reset();
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(protoEquals(stream(0).takeRequest(), R"pb(
    version_info: "1"
    resource_names: "cluster_a"
    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    response_nonce: "A"
  )pb"));
  RecordingWatcher later;
  auto both = watch(kClusterTypeUrl, {"cluster_a", "cluster_b"}, later);
  dispatcher_.runUntilIdle();
  EXPECT_THAT(later.take(), ElementsAre("update version='1' added=[cluster_a] removed=[]"));
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

TEST_F(XdsClientTest, WithoutRateLimitSettingsEveryUpdateOfAStormIsAckedAtOnce) {
  // The ADS config as the bootstrap gives it without rate_limit_settings (config_test.cc).
  ASSERT_FALSE(config_.ads->rate_limit.enabled);
  createClient();
  RecordingWatcher assignments;
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"c"}, assignments);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // 500 updates of one assignment, each answered as soon as the proxy's loop ran once: no
  // simulated time passes, so a token bucket (Envoy's default 100 tokens, 10/s) would hold
  // the 101st ACK back for 100 ms and the rest longer.
  for (int i = 1; i <= 500; i++) {
    stream(0).respond(sotwResponse(kClusterLoadAssignmentTypeUrl, std::to_string(i),
                                   "n" + std::to_string(i),
                                   {packed(endpoints("c", 8000 + static_cast<uint32_t>(i)))}));
    dispatcher_.runUntilIdle();
    ASSERT_EQ(stream(0).pendingRequests(), 1u) << "update " << i << " was not ACKed";
    EXPECT_TRUE(protoEquals(
        stream(0).takeRequest(),
        absl::StrCat(
            R"pb(
              version_info: ")pb",
            i, R"pb("
                    resource_names: "c"
                    type_url: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
                    response_nonce: "n)pb",
            i, R"pb("
            )pb")));
  }
  EXPECT_EQ(assignments.take().size(), 500u);
  EXPECT_EQ(counter("control_plane.rate_limit_enforced"), 0u);
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

// ----- Delta ------------------------------------------------------------------------------------

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

// ----- Helpers ----------------------------------------------------------------------------------

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
