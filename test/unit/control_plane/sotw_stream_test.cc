// The SotW protocol of one stream, without gRPC: requests in, responses out (decoded from the
// bytes that would go on the wire), against snapshots set by the test.

#include "control_plane_stub/sotw_stream.h"

#include "gtest/gtest.h"
#include "test/unit/control_plane/control_plane_test_util.h"

namespace Proxy::ControlPlane {
namespace {

using TestUtil::decodeSotw;
using TestUtil::describe;
using TestUtil::makeSnapshot;
using TestUtil::snapshotYaml;
using TestUtil::sotwRequest;
using TestUtil::withError;
using Kind = RequestOutcome::Kind;

class SotwStreamTest : public testing::Test {
 protected:
  // The next response the stream would write, as one line; "none" when nothing is due.
  std::string next() {
    std::optional<OutgoingResponse> response = stream_.nextResponse(snapshot_.get());
    if (!response.has_value()) {
      return "none";
    }
    return describe(decodeSotw(*response));
  }
  void setSnapshot(const std::string& yaml) { snapshot_ = makeSnapshot(yaml, snapshot_.get()); }
  RequestOutcome request(const envoy::service::discovery::v3::DiscoveryRequest& r) {
    return stream_.onRequest(r, snapshot_.get());
  }
  // As a proxy starts: every type subscribed, version 1 received (nonces 1 to 4) and ACKed.
  void subscribeToEverythingAndAck() {
    request(sotwRequest(kClusterTypeUrl, "", {}, "", "proxy-1"));
    request(sotwRequest(kEndpointTypeUrl, "", {"service1", "service2"}, ""));
    request(sotwRequest(kListenerTypeUrl, "", {}, ""));
    request(sotwRequest(kRouteTypeUrl, "", {"local_route"}, ""));
    for (int i = 0; i < 4; i++) {
      next();
    }
    request(sotwRequest(kClusterTypeUrl, "1", {}, "1"));
    request(sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2"}, "2"));
    request(sotwRequest(kListenerTypeUrl, "1", {}, "3"));
    request(sotwRequest(kRouteTypeUrl, "1", {"local_route"}, "4"));
  }

  TestUtil::FakeTimeSource time_;
  SotwStreamState stream_{time_, /*only=*/std::nullopt};
  SnapshotConstSharedPtr snapshot_ = makeSnapshot(snapshotYaml("1"));
};

TEST_F(SotwStreamTest, WildcardListenersAckAndPushOfANewVersion) {
  // The first request names the node and subscribes to every listener (no names).
  RequestOutcome outcome = request(sotwRequest(kListenerTypeUrl, /*version_info=*/"",
                                               /*names=*/{}, /*nonce=*/"", /*node=*/"proxy-1"));
  EXPECT_EQ(outcome.kind, Kind::Request);
  EXPECT_TRUE(outcome.learned_node);
  EXPECT_EQ(stream_.nodeId(), "proxy-1");

  // The whole state of the world at version 1, then nothing more.
  EXPECT_EQ(next(), "lds version='1' nonce='1' [ingress]");
  EXPECT_EQ(next(), "none");

  // The client ACKs: recorded, and nothing is resent.
  outcome = request(sotwRequest(kListenerTypeUrl, /*version_info=*/"1", {}, /*nonce=*/"1"));
  EXPECT_EQ(outcome.kind, Kind::Ack);
  EXPECT_EQ(outcome.version, "1");
  EXPECT_EQ(outcome.nonce, "1");
  EXPECT_EQ(next(), "none");
  std::vector<TypeStatus> status = stream_.status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].acked_version, "1");
  EXPECT_EQ(status[0].pending_nonce, "");
  EXPECT_TRUE(status[0].wildcard);

  // A snapshot that changes the listener's type version is pushed with a new nonce.
  SnapshotFile v2 = TestUtil::parseOrDie(snapshotYaml("2"));
  v2.mutable_resources()->mutable_listeners(0)->set_stat_prefix("changed");
  snapshot_ = Snapshot::create(v2, snapshot_.get());
  EXPECT_EQ(next(), "lds version='2' nonce='2' [ingress]");
  EXPECT_EQ(stream_.status()[0].pending_nonce, "2");
}

TEST_F(SotwStreamTest, UnchangedTypesAreNotResent) {
  // Subscribed to everything, all ACKed at version 1.
  request(sotwRequest(kClusterTypeUrl, "", {}, "", "proxy-1"));
  request(sotwRequest(kEndpointTypeUrl, "", {"service1", "service2"}, ""));
  request(sotwRequest(kListenerTypeUrl, "", {}, ""));
  request(sotwRequest(kRouteTypeUrl, "", {"local_route"}, ""));
  // Make before break: clusters, endpoints, listeners, routes.
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2]");
  EXPECT_EQ(next(), "eds version='1' nonce='2' [service1, service2]");
  EXPECT_EQ(next(), "lds version='1' nonce='3' [ingress]");
  EXPECT_EQ(next(), "rds version='1' nonce='4' [local_route]");
  EXPECT_EQ(next(), "none");

  // Version 2 moves one endpoint: only EDS is sent.
  setSnapshot(snapshotYaml("2", {{"service1", 8081}, {"service2", 9999}}));
  EXPECT_EQ(next(), "eds version='2' nonce='5' [service1, service2]");
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, RouteUpdatesWaitForTheirClustersToBeAcked) {
  subscribeToEverythingAndAck();

  // Version 2 adds service3 and a route to it. Clusters and endpoints go out; the route waits:
  // sent now, it would point at a cluster the client is still warming.
  setSnapshot(snapshotYaml("2", {{"service1", 8081}, {"service2", 8082}, {"service3", 8083}}));
  EXPECT_EQ(next(), "cds version='2' nonce='5' [service1, service2, service3]");
  EXPECT_EQ(next(), "eds version='2' nonce='6' [service1, service2]");
  EXPECT_EQ(next(), "none");
  request(sotwRequest(kClusterTypeUrl, "2", {}, "5"));
  EXPECT_EQ(next(), "none");
  // The EDS ACK subscribes to the new cluster's endpoints: they go out, the route still waits.
  request(sotwRequest(kEndpointTypeUrl, "2", {"service1", "service2", "service3"}, "6"));
  EXPECT_EQ(next(), "eds version='2' nonce='7' [service1, service2, service3]");
  EXPECT_EQ(next(), "none");
  // service3 is warm: now the route.
  request(sotwRequest(kEndpointTypeUrl, "2", {"service1", "service2", "service3"}, "7"));
  EXPECT_EQ(next(), "rds version='2' nonce='8' [local_route]");
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, ClustersAreRemovedOnlyOnceRoutesMovedOn) {
  subscribeToEverythingAndAck();

  // Version 2 drops service2 and its route. The first CDS response keeps service2 (the route
  // using it is still in place), then the route goes out once CDS and EDS are ACKed...
  setSnapshot(snapshotYaml("2", {{"service1", 8081}}));
  EXPECT_EQ(next(), "cds version='2' nonce='5' [service1, service2]");
  EXPECT_EQ(next(), "eds version='2' nonce='6' [service1]");
  EXPECT_EQ(next(), "none");
  request(sotwRequest(kClusterTypeUrl, "2", {}, "5"));
  request(sotwRequest(kEndpointTypeUrl, "2", {"service1", "service2"}, "6"));
  EXPECT_EQ(next(), "rds version='2' nonce='7' [local_route]");
  EXPECT_EQ(next(), "none");
  // ...and service2 is removed once the route is ACKed.
  request(sotwRequest(kRouteTypeUrl, "2", {"local_route"}, "7"));
  EXPECT_EQ(next(), "cds version='2' nonce='8' [service1]");
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, NamedSubscriptionsGetWhatExistsAtOnce) {
  // EDS for one cluster: only that assignment.
  request(sotwRequest(kEndpointTypeUrl, "", {"service2"}, "", "proxy-1"));
  EXPECT_EQ(next(), "eds version='1' nonce='1' [service2]");
  request(sotwRequest(kEndpointTypeUrl, "1", {"service2"}, "1"));
  EXPECT_EQ(next(), "none");

  // The client adds a name at the same version: answered at once, with both.
  EXPECT_EQ(request(sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2"}, "1")).kind,
            Kind::Request);
  EXPECT_EQ(next(), "eds version='1' nonce='2' [service1, service2]");

  // A name the snapshot lacks is left out, and the response is not held back for it
  // (go-control-plane would wait until every requested name exists).
  request(sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2", "service3"}, "2"));
  EXPECT_EQ(next(), "eds version='1' nonce='3' [service1, service2]");

  // Removing names needs no answer.
  request(sotwRequest(kEndpointTypeUrl, "1", {"service1"}, "3"));
  EXPECT_EQ(next(), "none");

  // Asking only for missing names gets an empty response: the client learns they are absent.
  request(sotwRequest(kRouteTypeUrl, "", {"other_route"}, ""));
  EXPECT_EQ(next(), "rds version='1' nonce='4' []");

  // An empty list for a named type is no interest: nothing is sent, even on a new version.
  request(sotwRequest(kRouteTypeUrl, "1", {}, "4"));
  setSnapshot(snapshotYaml("2", {{"service1", 8081}}));
  EXPECT_EQ(next(), "eds version='2' nonce='5' [service1]");
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, NackIsRecordedAndTheRejectedVersionIsNeverResent) {
  request(sotwRequest(kClusterTypeUrl, "", {}, "", "proxy-1"));
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2]");
  request(sotwRequest(kClusterTypeUrl, "1", {}, "1"));

  // Version 2 (a third cluster) is sent and rejected.
  setSnapshot(snapshotYaml("2", {{"service1", 8081}, {"service2", 8082}, {"service3", 8083}}));
  EXPECT_EQ(next(), "cds version='2' nonce='2' [service1, service2, service3]");
  time_.advance(std::chrono::seconds(5));
  RequestOutcome outcome = request(withError(
      sotwRequest(kClusterTypeUrl, /*version_info=*/"1", {}, /*nonce=*/"2"), "bad cluster"));
  EXPECT_EQ(outcome.kind, Kind::Nack);
  EXPECT_EQ(outcome.version, "2");
  EXPECT_EQ(outcome.message, "bad cluster");
  std::vector<TypeStatus> status = stream_.status();
  ASSERT_TRUE(status[0].last_nack.has_value());
  EXPECT_EQ(status[0].last_nack->version, "2");
  EXPECT_EQ(status[0].last_nack->node, "proxy-1");
  EXPECT_EQ(status[0].last_nack->message, "bad cluster");
  EXPECT_EQ(status[0].last_nack->time, time_.systemTime());
  EXPECT_EQ(status[0].acked_version, "1");

  // The NACK's request (version_info 1 differs from 2) is not answered with version 2 again,
  // nor is any later request of the client (go-control-plane loops here).
  EXPECT_EQ(next(), "none");
  request(sotwRequest(kClusterTypeUrl, "1", {}, "2"));
  EXPECT_EQ(next(), "none");

  // The next different snapshot goes out normally.
  setSnapshot(snapshotYaml("3", {{"service1", 8081}}));
  EXPECT_EQ(next(), "cds version='3' nonce='3' [service1]");
}

TEST_F(SotwStreamTest, NackedVersionIsNotResentWhenNamesAreAdded) {
  request(sotwRequest(kEndpointTypeUrl, "", {"service1"}, "", "proxy-1"));
  EXPECT_EQ(next(), "eds version='1' nonce='1' [service1]");
  request(withError(sotwRequest(kEndpointTypeUrl, "", {"service1"}, "1"), "no"));
  // Adding a name would normally be answered at the same version; not a rejected one.
  request(sotwRequest(kEndpointTypeUrl, "", {"service1", "service2"}, "1"));
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, StaleNoncesAreIgnored) {
  request(sotwRequest(kListenerTypeUrl, "", {}, "", "proxy-1"));
  EXPECT_EQ(next(), "lds version='1' nonce='1' [ingress]");
  // A newer version goes out before the client answered the first.
  SnapshotFile v2 = TestUtil::parseOrDie(snapshotYaml("2"));
  v2.mutable_resources()->mutable_listeners(0)->set_stat_prefix("v2");
  snapshot_ = Snapshot::create(v2, snapshot_.get());
  EXPECT_EQ(next(), "lds version='2' nonce='2' [ingress]");

  // The answer to nonce 1 is stale: not an ACK, nothing happens (even if it is a NACK).
  RequestOutcome outcome = request(withError(sotwRequest(kListenerTypeUrl, "", {}, "1"), "x"));
  EXPECT_EQ(outcome.kind, Kind::StaleNonce);
  EXPECT_EQ(stream_.status()[0].pending_nonce, "2");
  EXPECT_FALSE(stream_.status()[0].last_nack.has_value());
  EXPECT_EQ(next(), "none");

  // The answer to nonce 2 is the ACK.
  EXPECT_EQ(request(sotwRequest(kListenerTypeUrl, "2", {}, "2")).kind, Kind::Ack);
}

TEST_F(SotwStreamTest, OnlyTheNewestSnapshotIsSentWhenSeveralArriveBetweenWrites) {
  request(sotwRequest(kEndpointTypeUrl, "", {"service1"}, "", "proxy-1"));
  // Three snapshots arrive before the stream could write: it writes the last one only.
  setSnapshot(snapshotYaml("2", {{"service1", 2}}));
  setSnapshot(snapshotYaml("3", {{"service1", 3}}));
  setSnapshot(snapshotYaml("4", {{"service1", 4}}));
  EXPECT_EQ(next(), "eds version='4' nonce='1' [service1]");
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, ReconnectingClientWithTheCurrentVersionIsNotResent) {
  // A new stream whose client already holds version 1 (from an earlier stream).
  request(sotwRequest(kClusterTypeUrl, /*version_info=*/"1", {}, "", "proxy-1"));
  EXPECT_EQ(next(), "none");
  EXPECT_EQ(stream_.status()[0].acked_version, "1");
  // One holding an older version gets the current one.
  request(sotwRequest(kListenerTypeUrl, /*version_info=*/"0", {}, ""));
  EXPECT_EQ(next(), "lds version='1' nonce='1' [ingress]");
}

TEST_F(SotwStreamTest, NewStreamAnswersNamesItNeverSentWhateverTheVersion) {
  // A reconnecting client reports EDS version 1, the current one. But it may have subscribed to
  // a name on its last stream that never arrived there: this stream sent it nothing, so the
  // names are answered (go-control-plane compares them with what the stream returned too).
  request(
      sotwRequest(kEndpointTypeUrl, /*version_info=*/"1", {"service1", "service2"}, "", "proxy-1"));
  EXPECT_EQ(next(), "eds version='1' nonce='1' [service1, service2]");
  EXPECT_EQ(next(), "none");
  request(sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2"}, "1"));
  EXPECT_EQ(next(), "none");

  // A name dropped and asked for again on this stream is answered again (the xDS spec: newly
  // requested resources are sent even if they were sent before).
  request(sotwRequest(kEndpointTypeUrl, "1", {"service1"}, "1"));
  EXPECT_EQ(next(), "none");
  request(sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2"}, "1"));
  EXPECT_EQ(next(), "eds version='1' nonce='2' [service1, service2]");
}

TEST_F(SotwStreamTest, ClusterChangeThatKeepsItsAssignmentIsFollowedByItAgain) {
  subscribeToEverythingAndAck();

  // Version 2 changes service1's cluster but not its ClusterLoadAssignment (EDS stays at
  // version 1). Envoy warms the new service1 until an assignment arrives and asks for nothing
  // new: EDS follows the clusters, unchanged.
  SnapshotFile v2 = TestUtil::parseOrDie(snapshotYaml("2"));
  v2.mutable_resources()->mutable_clusters(0)->mutable_connect_timeout()->set_seconds(2);
  snapshot_ = Snapshot::create(v2, snapshot_.get());
  EXPECT_EQ(next(), "cds version='2' nonce='5' [service1, service2]");
  EXPECT_EQ(next(), "eds version='1' nonce='6' [service1, service2]");
  EXPECT_EQ(next(), "none");
  request(sotwRequest(kClusterTypeUrl, "2", {}, "5"));
  request(sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2"}, "6"));
  EXPECT_EQ(next(), "none");

  // Version 3 adds a cluster that takes service1's assignment: the same.
  SnapshotFile v3 = v2;
  v3.set_version("3");
  auto* mirror = v3.mutable_resources()->add_clusters();
  *mirror = v2.resources().clusters(0);
  mirror->set_name("mirror");
  mirror->mutable_eds_cluster_config()->set_service_name("service1");
  snapshot_ = Snapshot::create(v3, snapshot_.get());
  EXPECT_EQ(next(), "cds version='3' nonce='7' [mirror, service1, service2]");
  EXPECT_EQ(next(), "eds version='1' nonce='8' [service1, service2]");
  EXPECT_EQ(next(), "none");

  // A cluster that moves to an assignment the client does not watch yet: the client asks for
  // it (a new name), nothing is sent unasked.
  request(sotwRequest(kClusterTypeUrl, "3", {}, "7"));
  request(sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2"}, "8"));
  SnapshotFile v4 = v3;
  v4.set_version("4");
  v4.mutable_resources()->mutable_clusters(1)->mutable_eds_cluster_config()->set_service_name(
      "elsewhere");
  snapshot_ = Snapshot::create(v4, snapshot_.get());
  EXPECT_EQ(next(), "cds version='4' nonce='9' [mirror, service1, service2]");
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, SameVersionStringWithOtherContentsIsResent) {
  // The stream got version 1 of the default snapshot...
  request(sotwRequest(kClusterTypeUrl, "", {}, "", "proxy-1"));
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2]");
  // ...then its node gets its own snapshot, also called version 1, with other clusters: the
  // contents differ, so it is sent although the version string is the same.
  snapshot_ = makeSnapshot(snapshotYaml("1", {{"only", 1}}, "proxy-1"));
  EXPECT_EQ(next(), "cds version='1' nonce='2' [only]");
}

TEST_F(SotwStreamTest, LegacyWildcardStarAndNamedListeners) {
  // "*" is a wildcard on any type.
  request(sotwRequest(kRouteTypeUrl, "", {"*"}, "", "proxy-1"));
  EXPECT_EQ(next(), "rds version='1' nonce='1' [local_route]");
  // gRPC clients ask for listeners by name.
  request(sotwRequest(kListenerTypeUrl, "", {"ingress", "other"}, ""));
  EXPECT_EQ(next(), "lds version='1' nonce='2' [ingress]");
  EXPECT_FALSE(stream_.status()[0].wildcard);
  // After names, an empty list is not a wildcard any more: no interest.
  request(sotwRequest(kListenerTypeUrl, "1", {}, "2"));
  EXPECT_FALSE(stream_.status()[0].wildcard);
  SnapshotFile v2 = TestUtil::parseOrDie(snapshotYaml("2"));
  v2.mutable_resources()->mutable_listeners(0)->set_stat_prefix("v2");
  snapshot_ = Snapshot::create(v2, snapshot_.get());
  EXPECT_EQ(next(), "none");
}

TEST_F(SotwStreamTest, UnknownTypesAreIgnored) {
  // A type the stub does not serve (Envoy's scoped RDS).
  RequestOutcome outcome = request(sotwRequest(
      "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration", "", {}, "", "p"));
  EXPECT_EQ(outcome.kind, Kind::UnknownType);
  EXPECT_EQ(outcome.message,
            "unknown type_url 'type.googleapis.com/envoy.config.route.v3."
            "ScopedRouteConfiguration'");
  EXPECT_EQ(request(sotwRequest("", "", {}, "")).message, "unknown type_url ''");
  EXPECT_EQ(next(), "none");
  EXPECT_TRUE(stream_.status().empty());
}

TEST_F(SotwStreamTest, NoSnapshotMeansNoResponseUntilOneIsSet) {
  snapshot_ = nullptr;
  request(sotwRequest(kClusterTypeUrl, "", {}, "", "proxy-1"));
  EXPECT_EQ(next(), "none");
  setSnapshot(snapshotYaml("1"));
  EXPECT_EQ(next(), "cds version='1' nonce='1' [service1, service2]");
}

TEST(SotwPerTypeStreamTest, ServesOnlyItsOwnType) {
  TestUtil::FakeTimeSource time;
  SotwStreamState stream(time, /*only=*/ResourceKind::Endpoint);
  SnapshotConstSharedPtr snapshot = makeSnapshot(snapshotYaml("1"));
  // An empty type_url is the service's type.
  EXPECT_EQ(stream.onRequest(sotwRequest("", "", {"service1"}, "", "proxy-1"), snapshot.get()).kind,
            Kind::Request);
  std::optional<OutgoingResponse> response = stream.nextResponse(snapshot.get());
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(describe(decodeSotw(*response)), "eds version='1' nonce='1' [service1]");
  // Another type ends the stream.
  RequestOutcome outcome =
      stream.onRequest(sotwRequest(kClusterTypeUrl, "", {}, ""), snapshot.get());
  EXPECT_EQ(outcome.kind, Kind::WrongType);
  EXPECT_EQ(outcome.message,
            "type_url 'type.googleapis.com/envoy.config.cluster.v3.Cluster' on a stream for "
            "'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'");
}

}  // namespace
}  // namespace Proxy::ControlPlane
