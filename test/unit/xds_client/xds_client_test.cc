// The xDS protocol as the client speaks it, against a fake transport and simulated time:
// each test is a conversation with a management server, told step by step. Subscriptions,
// updates, removals, ACK/NACK and the cache; the stream itself (opening, reconnecting, backoff,
// rate limit) is in xds_stream_test.cc.
//
// ~840 lines on purpose: one concept, the client's side of one conversation; the SotW and Delta
// fixtures, RecordingWatcher and the resource builders are shared by every test, and a split
// would move them to a header for two files that read the same way.

#include "xds_client/xds_client_impl.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/xds_client/xds_client_test_base.h"
#include "test/unit/xds_client/xds_test_util.h"
#include "xds_client/decoder.h"

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

TEST_F(XdsClientTest, AWatchThatAddsANameGetsOnlyThatResourceFromTheCache) {
  createClient();
  RecordingWatcher first, second;
  auto watch_a = watch(kRouteConfigurationTypeUrl, {"route_a"}, first);
  auto watch_b = watch(kRouteConfigurationTypeUrl, {"route_b"}, second);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  stream(0).respond(sotwResponse(
      kRouteConfigurationTypeUrl, "1", "A",
      {packed(routeConfig("route_a", "cluster_a")), packed(routeConfig("route_b", "cluster_b"))}));
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  first.take();
  second.take();
  first.last_resources.clear();

  // The first watch now names route_b too: it gets route_b from the cache (kept as the bytes
  // received, decoded again), not route_a, which it has.
  watch_a->updateResourceNames({"route_a", "route_b"});
  dispatcher_.runUntilIdle();
  EXPECT_THAT(first.take(), ElementsAre("update version='1' added=[route_b] removed=[]"));
  ASSERT_EQ(first.last_resources.size(), 1u);
  EXPECT_EQ(first.last_resources[0].message->SerializeAsString(),
            routeConfig("route_b", "cluster_b").SerializeAsString());
  EXPECT_THAT(second.take(), IsEmpty());
}

TEST_F(XdsClientTest, CachedResourcesOfAPartlySupersededResponseKeepTheirBytesAndVersion) {
  createClient();
  RecordingWatcher first, late;
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"c_a", "c_b", "c_c"}, first);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();

  // Version 1 carries the three assignments: the cache keeps them in the response's buffer.
  stream(0).respond(sotwResponse(
      kClusterLoadAssignmentTypeUrl, /*version_info=*/"1", "A",
      {packed(endpoints("c_a", 1)), packed(endpoints("c_b", 2)), packed(endpoints("c_c", 3))}));
  // Version 2 changes two of them (EDS: c_c, absent, stays): most of version 1's buffer is
  // superseded, and c_c is copied out of it.
  stream(0).respond(sotwResponse(kClusterLoadAssignmentTypeUrl, "2", "B",
                                 {packed(endpoints("c_a", 11)), packed(endpoints("c_b", 12))}));
  // Version 3 changes c_b again.
  stream(0).respond(
      sotwResponse(kClusterLoadAssignmentTypeUrl, "3", "C", {packed(endpoints("c_b", 22))}));
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();  // the ACKs, as one request
  first.take();

  // A watch that arrives later gets each from the cache: its last bytes, with the version of
  // the response that brought it, and the hash of its bytes.
  auto eds_late = watch(kClusterLoadAssignmentTypeUrl, {"c_c", "c_b", "c_a"}, late);
  dispatcher_.runUntilIdle();
  EXPECT_THAT(late.take(), ElementsAre("update version='3' added=[c_a, c_b, c_c] removed=[]"));
  ASSERT_EQ(late.last_resources.size(), 3u);
  const std::pair<envoy::config::endpoint::v3::ClusterLoadAssignment, std::string> expected[] = {
      {endpoints("c_a", 11), "2"}, {endpoints("c_b", 22), "3"}, {endpoints("c_c", 3), "1"}};
  for (size_t i = 0; i < 3; ++i) {
    const DecodedResource& resource = late.last_resources[i];
    const std::string bytes = expected[i].first.SerializeAsString();
    EXPECT_EQ(resource.message->SerializeAsString(), bytes) << resource.name;
    EXPECT_EQ(*resource.bytes, bytes) << resource.name;
    EXPECT_EQ(resource.version, expected[i].second) << resource.name;
    EXPECT_EQ(resource.hash, hashResourceBytes(bytes)) << resource.name;
  }
  // c_c was copied out of version 1's buffer: it holds nothing else.
  EXPECT_EQ(late.last_resources[2].bytes.buffer()->size(),
            endpoints("c_c", 3).SerializeAsString().size());
  EXPECT_EQ(stream(0).pendingRequests(), 0u);
}

TEST_F(XdsClientTest, ResourcesOfOneResponseShareOneBuffer) {
  const std::string a = routeConfig("route_a", "cluster_a").SerializeAsString();
  const std::string b = routeConfig("route_b", "cluster_b").SerializeAsString();
  DecodedResponsePtr response =
      decodeResponse(sotwResponse(kRouteConfigurationTypeUrl, "1", "A",
                                  {packed(routeConfig("route_a", "cluster_a")),
                                   packed(routeConfig("route_b", "cluster_b"))})
                         .SerializeAsString(),
                     /*delta=*/false);
  ASSERT_EQ(response->resources.size(), 2u);
  const ResourceBytes& bytes_a = response->resources[0].bytes;
  const ResourceBytes& bytes_b = response->resources[1].bytes;
  EXPECT_EQ(*bytes_a, a);
  EXPECT_EQ(*bytes_b, b);
  // One buffer, holding exactly the resources' bytes.
  EXPECT_EQ(bytes_a.buffer(), bytes_b.buffer());
  EXPECT_EQ(*bytes_a.buffer(), a + b);
}

// A watcher that applies its resources one at a time and frees each once applied: it notes
// how many references each message had when it got it (1: its own, nobody else keeps the
// decoded message alive), then drops it.
class ReleasingWatcher : public RecordingWatcher {
 public:
  absl::Status onConfigUpdateReleasing(std::vector<DecodedResource>& added,
                                       const std::vector<std::string>& removed,
                                       const std::string& version) override {
    for (DecodedResource& resource : added) {
      holders.push_back(absl::StrCat(resource.name, ":", resource.message.use_count()));
      resource.message.reset();
    }
    return RecordingWatcher::onConfigUpdate(added, removed, version);
  }
  std::vector<std::string> holders;
};

TEST_F(XdsClientTest, NamedWatchesMayFreeEachResourceAsTheyApplyIt) {
  createClient();
  ReleasingWatcher first, second;
  auto watch_a = watch(kRouteConfigurationTypeUrl, {"route_a"}, first);
  auto watch_b = watch(kRouteConfigurationTypeUrl, {"route_b"}, second);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  stream(0).respond(sotwResponse(
      kRouteConfigurationTypeUrl, "1", "A",
      {packed(routeConfig("route_a", "cluster_a")), packed(routeConfig("route_b", "cluster_b"))}));
  dispatcher_.runUntilIdle();

  // Each watch holds the only reference to its resource's message (the cache keeps the bytes),
  // so a large EDS response is freed assignment by assignment (issue 14).
  EXPECT_THAT(first.holders, ElementsAre("route_a:1"));
  EXPECT_THAT(second.holders, ElementsAre("route_b:1"));
  EXPECT_THAT(first.take(), ElementsAre("update version='1' added=[route_a] removed=[]"));
  EXPECT_THAT(second.take(), ElementsAre("update version='1' added=[route_b] removed=[]"));
  // The ACK follows as before.
  auto ack = stream(0).takeRequest();
  EXPECT_EQ(ack.version_info(), "1");
  EXPECT_FALSE(ack.has_error_detail());

  // A later watch still gets route_a, decoded again from the cached bytes.
  RecordingWatcher later;
  auto watch_c = watch(kRouteConfigurationTypeUrl, {"route_a"}, later);
  dispatcher_.runUntilIdle();
  EXPECT_THAT(later.take(), ElementsAre("update version='1' added=[route_a] removed=[]"));
  ASSERT_EQ(later.last_resources.size(), 1u);
  EXPECT_EQ(later.last_resources[0].message->SerializeAsString(),
            routeConfig("route_a", "cluster_a").SerializeAsString());
}

TEST_F(XdsClientTest, AWildcardWatchKeepsTheMessagesForEveryWatch) {
  createClient();
  RecordingWatcher all;
  ReleasingWatcher named;
  auto wildcard = watch(kClusterTypeUrl, {}, all);
  auto one = watch(kClusterTypeUrl, {"c1"}, named);
  dispatcher_.runUntilIdle();
  stream(0).takeRequest();
  stream(0).respond(sotwResponse(kClusterTypeUrl, "1", "A",
                                 {packed(edsCluster("c1")), packed(edsCluster("c2"))}));
  dispatcher_.runUntilIdle();

  // The response is shared with the wildcard watch: the named one is not offered to free it.
  EXPECT_THAT(named.holders, IsEmpty());
  EXPECT_THAT(named.take(), ElementsAre("update version='1' added=[c1] removed=[]"));
  EXPECT_THAT(all.take(), ElementsAre("update version='1' added=[c1, c2] removed=[]"));
  ASSERT_EQ(named.last_resources.size(), 1u);
  EXPECT_NE(named.last_resources[0].message, nullptr);
}

// A response of 1,000 resources or more is decoded on arenas of its own, shared by neighbouring
// small resources (issue 14): each message lives as long as anyone holds it, whatever the order
// its neighbours and the response go in.
TEST(DecoderTest, ALargeResponsesResourcesOutliveItAndEachOtherInAnyOrder) {
  std::vector<google::protobuf::Any> resources;
  for (uint32_t i = 0; i < 1200; i++) {
    resources.push_back(packed(endpoints(absl::StrCat("c", i), 1000 + i)));
  }
  // One of 4 KB or more: an arena of its own.
  envoy::config::endpoint::v3::ClusterLoadAssignment big = endpoints("big", 1);
  for (uint32_t i = 0; i < 400; i++) {
    *big.mutable_endpoints(0)->add_lb_endpoints() = big.endpoints(0).lb_endpoints(0);
  }
  ASSERT_GE(big.ByteSizeLong(), 4096u);
  resources.push_back(packed(big));
  const std::string bytes =
      sotwResponse(kClusterLoadAssignmentTypeUrl, "1", "A", resources).SerializeAsString();

  DecodedResponsePtr response = decodeResponse(bytes, /*delta=*/false);
  ASSERT_TRUE(response->status.ok());
  ASSERT_EQ(response->resources.size(), 1201u);
  // Keep every third message; the response and everything else go.
  std::vector<std::shared_ptr<const google::protobuf::Message>> kept;
  for (size_t i = 0; i < response->resources.size(); i += 3) {
    kept.push_back(response->resources[i].message);
  }
  response.reset();
  // Release them from the back, checking the others each time.
  while (!kept.empty()) {
    for (size_t k = 0; k < kept.size(); k += 50) {
      const auto& cla =
          static_cast<const envoy::config::endpoint::v3::ClusterLoadAssignment&>(*kept[k]);
      const size_t i = k * 3;
      if (i == 1200) {
        EXPECT_EQ(cla.SerializeAsString(), big.SerializeAsString());
      } else {
        EXPECT_EQ(
            cla.SerializeAsString(),
            endpoints(absl::StrCat("c", i), 1000 + static_cast<uint32_t>(i)).SerializeAsString());
      }
    }
    kept.pop_back();
  }
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

TEST_F(XdsClientDeltaTest, LateWatchAndReconnectGetEachResourcesOwnVersion) {
  createClient();
  RecordingWatcher first, late;
  auto eds = watch(kClusterLoadAssignmentTypeUrl, {"c_a", "c_b", "c_c"}, first);
  dispatcher_.runUntilIdle();
  stream(0).takeDeltaRequest();

  // One response, three versions; then c_a and c_c change (the first buffer is now mostly
  // superseded: c_b is copied out of it), and c_c changes again.
  stream(0).respond(deltaResponse(kClusterLoadAssignmentTypeUrl, "n1",
                                  {deltaResource("c_a", "e1", endpoints("c_a", 1)),
                                   deltaResource("c_b", "e1", endpoints("c_b", 2)),
                                   deltaResource("c_c", "e2", endpoints("c_c", 3))},
                                  {}));
  stream(0).respond(deltaResponse(kClusterLoadAssignmentTypeUrl, "n2",
                                  {deltaResource("c_a", "e5", endpoints("c_a", 11)),
                                   deltaResource("c_c", "e5", endpoints("c_c", 13))},
                                  {}));
  stream(0).respond(deltaResponse(kClusterLoadAssignmentTypeUrl, "n3",
                                  {deltaResource("c_c", "e7", endpoints("c_c", 23))}, {}));
  dispatcher_.runUntilIdle();
  first.take();

  // A later watch gets each resource with its own version and last bytes.
  auto eds_late = watch(kClusterLoadAssignmentTypeUrl, {"c_a", "c_b", "c_c"}, late);
  dispatcher_.runUntilIdle();
  EXPECT_THAT(late.take(), ElementsAre("update version='' added=[c_a, c_b, c_c] removed=[]"));
  ASSERT_EQ(late.last_resources.size(), 3u);
  EXPECT_EQ(late.last_resources[0].version, "e5");
  EXPECT_EQ(*late.last_resources[0].bytes, endpoints("c_a", 11).SerializeAsString());
  EXPECT_EQ(late.last_resources[1].version, "e1");
  EXPECT_EQ(*late.last_resources[1].bytes, endpoints("c_b", 2).SerializeAsString());
  EXPECT_EQ(late.last_resources[2].version, "e7");
  EXPECT_EQ(*late.last_resources[2].bytes, endpoints("c_c", 23).SerializeAsString());

  // After a reconnect the server hears the same versions.
  stream(0).close(absl::UnavailableError("connection reset"));
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(250));
  ASSERT_EQ(streamCount(), 2u);
  auto request = stream(1).takeDeltaRequest();
  EXPECT_THAT(fake::takeInitialResourceVersions(request),
              ElementsAre(Pair("c_a", "e5"), Pair("c_b", "e1"), Pair("c_c", "e7")));
}

}  // namespace
}  // namespace Proxy::Xds
