// The Delta protocol of one stream, without gRPC: subscriptions, per-resource versions,
// removals, reconnects with initial_resource_versions, ACK/NACK.

#include "control_plane_stub/delta_stream.h"

#include "gtest/gtest.h"
#include "test/unit/control_plane/control_plane_test_util.h"

namespace Proxy::ControlPlane {
namespace {

using TestUtil::decodeDelta;
using TestUtil::deltaRequest;
using TestUtil::describe;
using TestUtil::makeSnapshot;
using TestUtil::snapshotYaml;
using Kind = RequestOutcome::Kind;

class DeltaStreamTest : public testing::Test {
 protected:
  std::string next() {
    std::optional<OutgoingResponse> response = stream_.nextResponse(snapshot_.get());
    if (!response.has_value()) {
      return "none";
    }
    last_ = decodeDelta(*response);
    return describe(last_);
  }
  void setSnapshot(const std::string& yaml) { snapshot_ = makeSnapshot(yaml, snapshot_.get()); }
  std::string versionOf(ResourceKind kind, const std::string& name) {
    return snapshot_->find(kind, name)->version;
  }

  TestUtil::FakeTimeSource time_;
  DeltaStreamState stream_{time_, /*only=*/std::nullopt};
  SnapshotConstSharedPtr snapshot_ = makeSnapshot(snapshotYaml("1"));
  envoy::service::discovery::v3::DeltaDiscoveryResponse last_;
};

TEST_F(DeltaStreamTest, WildcardThenOnlyWhatChanges) {
  // The first CDS request subscribes to nothing: a (legacy) wildcard subscription.
  RequestOutcome outcome = stream_.onRequest(
      deltaRequest(kClusterTypeUrl, /*subscribe=*/{}, /*unsubscribe=*/{}, /*nonce=*/"",
                   /*initial_versions=*/{}, /*node=*/"proxy-1"));
  EXPECT_TRUE(outcome.learned_node);
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2] removed=[]");
  // Each resource carries its content version.
  EXPECT_EQ(last_.resources(0).version(), versionOf(ResourceKind::Cluster, "service1"));
  EXPECT_EQ(next(), "none");

  // ACK.
  outcome = stream_.onRequest(deltaRequest(kClusterTypeUrl, {}, {}, /*nonce=*/"1"));
  EXPECT_EQ(outcome.kind, Kind::Ack);
  EXPECT_EQ(outcome.version, "1");
  EXPECT_EQ(stream_.status()[0].acked_version, "1");
  EXPECT_EQ(stream_.status()[0].client_resources, 2u);

  // Version 2 adds service3 and drops service2: one added, one removed, service1 not resent.
  setSnapshot(snapshotYaml("2", {{"service1", 8081}, {"service3", 8083}}));
  EXPECT_EQ(next(), "cds version='2' nonce='2' [service3] removed=[service2]");
  EXPECT_EQ(next(), "none");
}

TEST_F(DeltaStreamTest, NamedSubscribeUnsubscribeAndMissingNames) {
  // EDS for service1 and a name the snapshot lacks: service1 is sent, "ghost" is reported as
  // removed (it does not exist) once.
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service1", "ghost"}, {}, "", {}, "p"));
  EXPECT_EQ(next(), "eds version='1' nonce='1' [service1] removed=[ghost]");
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {}, {}, "1"));
  EXPECT_EQ(next(), "none");

  // Subscribing to service2 later sends just service2.
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service2"}, {}, "1"));
  EXPECT_EQ(next(), "eds version='1' nonce='2' [service2] removed=[]");

  // Unsubscribing from service1: its changes are no longer sent.
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {}, {"service1"}, "2"));
  setSnapshot(snapshotYaml("2", {{"service1", 1}, {"service2", 8082}}));
  EXPECT_EQ(next(), "none");

  // "ghost" appears: sent. Then it disappears again: removed.
  setSnapshot(snapshotYaml("3", {{"service1", 1}, {"service2", 8082}, {"ghost", 7}}));
  EXPECT_EQ(next(), "eds version='3' nonce='3' [ghost] removed=[]");
  setSnapshot(snapshotYaml("4", {{"service1", 1}, {"service2", 8082}}));
  EXPECT_EQ(next(), "eds version='4' nonce='4' [] removed=[ghost]");
  EXPECT_EQ(next(), "none");
}

TEST_F(DeltaStreamTest, ReconnectWithInitialResourceVersionsGetsOnlyTheDifference) {
  // The client held both clusters' current versions and one cluster that no longer exists.
  stream_.onRequest(deltaRequest(kClusterTypeUrl, {"*"}, {}, "",
                                 /*initial_versions=*/
                                 {{"service1", versionOf(ResourceKind::Cluster, "service1")},
                                  {"service2", "stale-version"},
                                  {"old", "0123456789abcdef"}},
                                 "proxy-1"));
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service2] removed=[old]");
  EXPECT_EQ(next(), "none");
}

TEST_F(DeltaStreamTest, FirstRequestIsAnsweredEvenWhenTheClientIsCurrent) {
  stream_.onRequest(deltaRequest(kListenerTypeUrl, {}, {}, "",
                                 {{"ingress", versionOf(ResourceKind::Listener, "ingress")}},
                                 "proxy-1"));
  EXPECT_EQ(next(), "lds version='1' nonce='1' [] removed=[]");
  EXPECT_EQ(next(), "none");
}

TEST_F(DeltaStreamTest, NackedResourcesAreNotResentUntilTheyChange) {
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service1"}, {}, "", {}, "proxy-1"));
  EXPECT_EQ(next(), "eds version='1' nonce='1' [service1] removed=[]");
  auto nack = deltaRequest(kEndpointTypeUrl, {}, {}, "1");
  nack.mutable_error_detail()->set_message("endpoint rejected");
  RequestOutcome outcome = stream_.onRequest(nack);
  EXPECT_EQ(outcome.kind, Kind::Nack);
  EXPECT_EQ(outcome.version, "1");
  EXPECT_EQ(outcome.message, "endpoint rejected");
  ASSERT_TRUE(stream_.status()[0].last_nack.has_value());
  EXPECT_EQ(stream_.status()[0].last_nack->message, "endpoint rejected");
  EXPECT_EQ(next(), "none");

  // The same contents under a new snapshot version: still not resent.
  setSnapshot(snapshotYaml("2", {{"service1", 8081}}));
  EXPECT_EQ(next(), "none");
  // Changed contents: sent.
  setSnapshot(snapshotYaml("3", {{"service1", 9}}));
  EXPECT_EQ(next(), "eds version='3' nonce='2' [service1] removed=[]");
}

TEST_F(DeltaStreamTest, SubscriptionChangesApplyWhateverTheNonce) {
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service1"}, {}, "", {}, "proxy-1"));
  EXPECT_EQ(next(), "eds version='1' nonce='1' [service1] removed=[]");
  EXPECT_EQ(next(), "none");
  // A request with an old nonce is not an ACK, but its subscription counts.
  RequestOutcome outcome =
      stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service2"}, {}, /*nonce=*/"0"));
  EXPECT_EQ(outcome.kind, Kind::Request);
  EXPECT_EQ(next(), "eds version='1' nonce='2' [service2] removed=[]");
}

TEST_F(DeltaStreamTest, UnsubscribingTheWildcard) {
  stream_.onRequest(deltaRequest(kClusterTypeUrl, {"*", "service1"}, {}, "", {}, "proxy-1"));
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2] removed=[]");
  // Without the wildcard only service1 is of interest: service2's changes are not sent.
  stream_.onRequest(deltaRequest(kClusterTypeUrl, {}, {"*"}, "1"));
  SnapshotFile v2 = TestUtil::parseOrDie(snapshotYaml("2"));
  v2.mutable_resources()->mutable_clusters(1)->mutable_connect_timeout()->set_seconds(9);
  snapshot_ = Snapshot::create(v2, snapshot_.get());
  EXPECT_EQ(next(), "none");
  EXPECT_FALSE(stream_.status()[0].wildcard);
}

TEST_F(DeltaStreamTest, NameSubscribedAgainIsSentAgain) {
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service1"}, {}, "", {}, "proxy-1"));
  EXPECT_EQ(next(), "eds version='1' nonce='1' [service1] removed=[]");
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {}, {}, "1"));
  EXPECT_EQ(next(), "none");

  // Envoy unsubscribes and subscribes again between two requests (a cluster replaced by one
  // with the same assignment): the request only subscribes, to a name it already had. It may
  // have dropped its copy: sent again.
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service1"}, {}, "1"));
  EXPECT_EQ(next(), "eds version='1' nonce='2' [service1] removed=[]");
  EXPECT_EQ(next(), "none");

  // Unsubscribed, then subscribed again before the stream looked for a response: sent again.
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {}, {"service1"}, "2"));
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service1"}, {}, "2"));
  EXPECT_EQ(next(), "eds version='1' nonce='3' [service1] removed=[]");
  EXPECT_EQ(next(), "none");
}

TEST_F(DeltaStreamTest, UnsubscribingANameTheWildcardStillCoversIsAnswered) {
  stream_.onRequest(deltaRequest(kClusterTypeUrl, {"*", "service1"}, {}, "", {}, "proxy-1"));
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2] removed=[]");
  stream_.onRequest(deltaRequest(kClusterTypeUrl, {}, {}, "1"));
  EXPECT_EQ(next(), "none");

  // service1 is unsubscribed, but the wildcard still covers it. The client cannot know that
  // (Envoy keeps it as "ambiguous" and waits for the server): it is sent again.
  stream_.onRequest(deltaRequest(kClusterTypeUrl, {}, {"service1"}, "1"));
  EXPECT_EQ(next(), "cds version='1' nonce='2' [service1] removed=[]");
  EXPECT_EQ(next(), "none");
}

TEST_F(DeltaStreamTest, ClusterChangeThatKeepsItsAssignmentIsFollowedByItAgain) {
  stream_.onRequest(deltaRequest(kClusterTypeUrl, {}, {}, "", {}, "proxy-1"));
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2] removed=[]");
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {"service1", "service2"}, {}, "1"));
  EXPECT_EQ(next(), "eds version='1' nonce='2' [service1, service2] removed=[]");
  stream_.onRequest(deltaRequest(kEndpointTypeUrl, {}, {}, "2"));
  EXPECT_EQ(next(), "none");

  // Version 2 changes service1's cluster, not its assignment. Envoy warms the new cluster until
  // an assignment arrives and subscribes to nothing new: service1's follows, unchanged.
  SnapshotFile v2 = TestUtil::parseOrDie(snapshotYaml("2"));
  v2.mutable_resources()->mutable_clusters(0)->mutable_connect_timeout()->set_seconds(2);
  snapshot_ = Snapshot::create(v2, snapshot_.get());
  EXPECT_EQ(next(), "cds version='2' nonce='3' [service1] removed=[]");
  EXPECT_EQ(next(), "eds version='1' nonce='4' [service1] removed=[]");
  EXPECT_EQ(next(), "none");
}

TEST(DeltaPerTypeStreamTest, WrongTypeEndsTheStream) {
  TestUtil::FakeTimeSource time;
  DeltaStreamState stream(time, /*only=*/ResourceKind::Listener);
  RequestOutcome outcome = stream.onRequest(deltaRequest(kRouteTypeUrl, {}, {}, "", {}, "p"));
  EXPECT_EQ(outcome.kind, Kind::WrongType);
  EXPECT_EQ(outcome.message,
            "type_url 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration' on a "
            "stream for 'type.googleapis.com/envoy.config.listener.v3.Listener'");
}

}  // namespace
}  // namespace Proxy::ControlPlane
