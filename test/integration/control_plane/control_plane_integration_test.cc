// The control plane over real gRPC and real HTTP on 127.0.0.1 port 0: the ControlPlane runs
// in-process on its own dispatcher thread (as in the binary), clients are gRPC callback-API
// streams written here, the admin API is spoken to with the integration HttpClient (llhttp).
// The control-plane-stub binary itself: control_plane_binary_test.cc.

#include "test/integration/control_plane/control_plane_test_fixtures.h"

namespace Proxy::ControlPlane {
namespace {

TEST_F(ControlPlaneIntegrationTest, AdsSotwAckNackAndPushes) {
  // The operator PUTs the demo-shaped snapshot, version 1.
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("1")).status, 200u);

  // A proxy opens an ADS stream and subscribes the way Envoy does, ACKing each response:
  // every cluster, their endpoints by name, every listener, the route its listener names.
  XdsTestStream ads(*channel_, std::string(kAdsSotwMethod));
  send(ads, sotwRequest(kClusterTypeUrl, /*version_info=*/"", /*names=*/{}, /*nonce=*/"",
                        /*node=*/"proxy-1"));
  EXPECT_EQ(next(ads), "cds version='1' nonce='1' [service1, service2]");
  send(ads, sotwRequest(kClusterTypeUrl, "1", {}, "1"));
  send(ads, sotwRequest(kEndpointTypeUrl, "", {"service1", "service2"}, ""));
  EXPECT_EQ(next(ads), "eds version='1' nonce='2' [service1, service2]");
  send(ads, sotwRequest(kEndpointTypeUrl, "1", {"service1", "service2"}, "2"));
  send(ads, sotwRequest(kListenerTypeUrl, "", {}, ""));
  EXPECT_EQ(next(ads), "lds version='1' nonce='3' [ingress]");
  send(ads, sotwRequest(kListenerTypeUrl, "1", {}, "3"));
  send(ads, sotwRequest(kRouteTypeUrl, "", {"local_route"}, ""));
  EXPECT_EQ(next(ads), "rds version='1' nonce='4' [local_route]");
  send(ads, sotwRequest(kRouteTypeUrl, "1", {"local_route"}, "4"));

  // Every ACK is recorded (of the four types asked for: no secret was).
  for (ResourceKind kind : {ResourceKind::Cluster, ResourceKind::Endpoint, ResourceKind::Listener,
                            ResourceKind::Route}) {
    EXPECT_TRUE(waitForAck("proxy-1", kind, "1"));
  }

  // Version 2 moves service2's endpoint: only EDS is pushed to the open stream.
  ASSERT_EQ(
      admin("PUT", "/v1/snapshot", snapshotYaml("2", {{"service1", 8081}, {"service2", 9999}}))
          .status,
      200u);
  EXPECT_EQ(next(ads), "eds version='2' nonce='5' [service1, service2]");
  send(ads, sotwRequest(kEndpointTypeUrl, "2", {"service1", "service2"}, "5"));
  EXPECT_TRUE(waitForAck("proxy-1", ResourceKind::Endpoint, "2"));

  // Version 3 adds service3: clusters, the two subscribed assignments and the routes change.
  ASSERT_EQ(admin("PUT", "/v1/snapshot",
                  snapshotYaml("3", {{"service1", 8081}, {"service2", 9999}, {"service3", 8083}}))
                .status,
            200u);
  EXPECT_EQ(next(ads), "cds version='3' nonce='6' [service1, service2, service3]");
  EXPECT_EQ(next(ads), "eds version='3' nonce='7' [service1, service2]");
  // The proxy rejects the clusters (NACK: error_detail, the previous version) and ACKs the
  // rest; the routes follow once clusters and endpoints are answered (make before break).
  send(ads, withError(sotwRequest(kClusterTypeUrl, "1", {}, "6"), "cluster service3: bad"));
  send(ads, sotwRequest(kEndpointTypeUrl, "3", {"service1", "service2"}, "7"));
  EXPECT_EQ(next(ads), "rds version='3' nonce='8' [local_route]");
  send(ads, sotwRequest(kRouteTypeUrl, "3", {"local_route"}, "8"));
  EXPECT_TRUE(waitForAck("proxy-1", ResourceKind::Route, "3"));

  // The NACK is visible in GET /v1/status: on the stream's type and on the node.
  ASSERT_TRUE(waitUntil(
      [&] {
        auto t = typeStatus("proxy-1", ResourceKind::Cluster);
        return t.has_value() && t->last_nack.has_value();
      },
      kTimeout, "the NACK to be recorded"));
  std::optional<TypeStatus> cds = typeStatus("proxy-1", ResourceKind::Cluster);
  EXPECT_EQ(cds->acked_version, "1");
  EXPECT_EQ(cds->sent_version, "3");
  EXPECT_EQ(cds->pending_nonce, "");
  EXPECT_EQ(cds->last_nack->version, "3");
  EXPECT_EQ(cds->last_nack->nonce, "6");
  EXPECT_EQ(cds->last_nack->message, "cluster service3: bad");
  std::vector<NackRecord> nacks = control_plane_->cache().nacks();
  ASSERT_EQ(nacks.size(), 1u);
  EXPECT_EQ(nacks[0].node, "proxy-1");
  EXPECT_EQ(nacks[0].type_url, kClusterTypeUrl);
  // The same, as JSON: once on the stream's type, once in the node's last NACKs.
  const std::string json = status();
  EXPECT_EQ(countOf(json, "\"message\": \"cluster service3: bad\""), 2u) << json;
  EXPECT_EQ(countOf(json, "\"node\": \"proxy-1\""), 1u) << json;
  EXPECT_NE(json.find("\"control_plane.nacks_total\": 1"), std::string::npos) << json;

  // Version 3 is not sent again. Version 4 is the next thing the stream sees.
  ASSERT_EQ(
      admin("PUT", "/v1/snapshot", snapshotYaml("4", {{"service1", 8081}, {"service2", 7777}}))
          .status,
      200u);
  EXPECT_EQ(next(ads), "cds version='4' nonce='9' [service1, service2]");
}

TEST_F(ControlPlaneIntegrationTest, DeltaSubscribeUnsubscribeAndRemovals) {
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("1")).status, 200u);
  XdsTestStream delta(*channel_, std::string(kAdsDeltaMethod));

  // Subscribe to one assignment: it comes with its content version.
  send(delta, deltaRequest(kEndpointTypeUrl, /*subscribe=*/{"service1"}, /*unsubscribe=*/{},
                           /*nonce=*/"", /*initial_versions=*/{}, /*node=*/"proxy-d"));
  EXPECT_EQ(nextDelta(delta), "eds version='1' nonce='1' [service1] removed=[]");
  // ACK and subscribe to the second one in the same request: only the new one is sent.
  send(delta, deltaRequest(kEndpointTypeUrl, {"service2"}, {}, "1"));
  EXPECT_EQ(nextDelta(delta), "eds version='1' nonce='2' [service2] removed=[]");
  // Unsubscribe from service1 (and ACK).
  send(delta, deltaRequest(kEndpointTypeUrl, {}, {"service1"}, "2"));
  EXPECT_TRUE(waitForAck("proxy-d", ResourceKind::Endpoint, "1"));

  // Version 2 changes service1 (no longer of interest) and drops service2: one removal.
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("2", {{"service1", 1111}})).status, 200u);
  EXPECT_EQ(nextDelta(delta), "eds version='2' nonce='3' [] removed=[service2]");

  // The per-type Delta service works the same way.
  XdsTestStream eds(*channel_, std::string(kDeltaEdsMethod));
  send(eds, deltaRequest("", {"service1"}, {}, "", {}, "proxy-e"));
  EXPECT_EQ(nextDelta(eds), "eds version='2' nonce='1' [service1] removed=[]");
}

TEST_F(ControlPlaneIntegrationTest, PerTypeStreamServesOnlyItsType) {
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("1")).status, 200u);
  XdsTestStream lds(*channel_, std::string(kLdsMethod));
  // The type URL may be left out on a per-type stream.
  send(lds, sotwRequest("", "", {}, "", "proxy-l"));
  EXPECT_EQ(next(lds), "lds version='1' nonce='1' [ingress]");
  // Another type ends the stream with INVALID_ARGUMENT.
  send(lds, sotwRequest(kClusterTypeUrl, "", {}, ""));
  std::optional<TestUtil::StreamEnd> end = lds.waitForEnd(kTimeout);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->code, 3);
  EXPECT_EQ(end->message,
            "type_url 'type.googleapis.com/envoy.config.cluster.v3.Cluster' on a stream for "
            "'type.googleapis.com/envoy.config.listener.v3.Listener'");
}

TEST_F(ControlPlaneIntegrationTest, GarbageDoesNotTakeTheServerDown) {
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("1")).status, 200u);

  // Bytes that are not a DiscoveryRequest end that stream, and only that stream.
  XdsTestStream garbage(*channel_, std::string(kAdsSotwMethod));
  garbage.send(std::string("\xff\xff\xff\xff garbage", 12));
  std::optional<TestUtil::StreamEnd> end = garbage.waitForEnd(kTimeout);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->code, 3);
  EXPECT_EQ(end->message, "request does not decode");

  // A method the server does not have: UNIMPLEMENTED.
  XdsTestStream unknown(*channel_, "/no.such.Service/Method");
  end = unknown.waitForEnd(kTimeout);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->code, 12);
  EXPECT_EQ(end->message, "method '/no.such.Service/Method' is not served");

  // A type the server does not serve is ignored; the stream goes on.
  XdsTestStream ads(*channel_, std::string(kAdsSotwMethod));
  send(ads, sotwRequest("type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration", "",
                        {}, "", "proxy-g"));
  send(ads, sotwRequest(kListenerTypeUrl, "", {}, ""));
  EXPECT_EQ(next(ads), "lds version='1' nonce='1' [ingress]");
  // A request sent before any response with a made-up nonce is not an ACK of anything.
  send(ads, sotwRequest(kRouteTypeUrl, "", {"local_route"}, "made-up"));
  EXPECT_EQ(next(ads), "rds version='1' nonce='2' [local_route]");

  // Counted.
  const std::string json = status();
  EXPECT_NE(json.find("\"control_plane.bad_requests_total\": 2"), std::string::npos) << json;
  EXPECT_NE(json.find("\"control_plane.unknown_types_total\": 1"), std::string::npos) << json;
}

TEST_F(ControlPlaneIntegrationTest, AdminApi) {
  // Liveness, and no snapshot yet.
  HttpResponse response = admin("GET", "/healthz");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.body, "ok\n");
  response = admin("GET", "/v1/snapshot");
  EXPECT_EQ(response.status, 404u);
  EXPECT_EQ(response.body, "no snapshot serves node ''\n");

  // A proxy is connected and waiting for configuration.
  XdsTestStream ads(*channel_, std::string(kAdsSotwMethod));
  send(ads, sotwRequest(kClusterTypeUrl, "", {}, "", "proxy-a"));

  // Malformed: 400 with the field, its path and its line.
  std::string bad = snapshotYaml("1");
  bad.replace(bad.find("connect_timeout: 1s"), 19, "connect_timeout: 1x");
  response = admin("PUT", "/v1/snapshot", bad);
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(response.body,
            "resources.clusters[0].connect_timeout: invalid duration '1x' (line 30, column 22)\n");

  // Inconsistent: 409 naming what is missing.
  SnapshotFile inconsistent = TestUtil::parseOrDie(snapshotYaml("1"));
  inconsistent.mutable_resources()->mutable_endpoints()->RemoveLast();
  response = admin("PUT", "/v1/snapshot", snapshotToJson(inconsistent));
  EXPECT_EQ(response.status, 409u);
  EXPECT_EQ(response.body,
            "cluster 'service2' (resources.clusters[1]): EDS service 'service2' has no "
            "ClusterLoadAssignment in resources.endpoints\n");
  // Neither was installed, and nothing was sent to the proxy.
  EXPECT_EQ(admin("GET", "/v1/snapshot").status, 404u);
  EXPECT_EQ(ads.receivedCount(), 0u);

  // A good one (JSON works as well as YAML): 200 with a summary; the proxy gets it.
  response = admin("PUT", "/v1/snapshot", snapshotToJson(TestUtil::parseOrDie(snapshotYaml("1"))));
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_EQ(response.body, R"({
  "changed": true,
  "snapshot": {
    "node": "",
    "version": "1",
    "type_versions": {
      "cds": "1",
      "eds": "1",
      "lds": "1",
      "rds": "1",
      "sds": "1"
    },
    "resource_counts": {
      "cds": 2,
      "eds": 2,
      "lds": 1,
      "rds": 1,
      "sds": 0
    }
  }
}
)");
  EXPECT_EQ(next(ads), "cds version='1' nonce='1' [service1, service2]");

  // GET returns it as JSON that parses back to the same snapshot...
  response = admin("GET", "/v1/snapshot");
  EXPECT_EQ(response.status, 200u);
  absl::StatusOr<SnapshotFile> fetched =
      parseSnapshot(response.body, SnapshotFormat::Json, ValidationMode::Proxy);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equivalent(
      *fetched, TestUtil::parseOrDie(snapshotYaml("1"))));
  // ...and PUT back, it is the same snapshot (typed_config bytes are canonicalised, whatever
  // order the keys came in): nothing changes.
  response = admin("PUT", "/v1/snapshot", admin("GET", "/v1/snapshot").body);
  EXPECT_EQ(response.status, 200u);
  EXPECT_NE(response.body.find("\"changed\": false"), std::string::npos) << response.body;

  // A node's own snapshot: ?node= must agree with the body's node.
  response = admin("PUT", "/v1/snapshot?node=proxy-9", snapshotYaml("n1", {{"a", 1}}, "other"));
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(response.body, "node 'other' in the body differs from ?node=proxy-9\n");
  EXPECT_EQ(admin("PUT", "/v1/snapshot?node=proxy-9", snapshotYaml("n1", {{"a", 1}})).status, 200u);
  EXPECT_NE(admin("GET", "/v1/snapshot?node=proxy-9").body.find("\"version\": \"n1\""),
            std::string::npos);
  // Other nodes still get the default.
  EXPECT_NE(admin("GET", "/v1/snapshot?node=proxy-8").body.find("\"version\": \"1\""),
            std::string::npos);
  // Removing it: once 200, then 404.
  EXPECT_EQ(admin("DELETE", "/v1/snapshot?node=proxy-9").status, 200u);
  response = admin("DELETE", "/v1/snapshot?node=proxy-9");
  EXPECT_EQ(response.status, 404u);
  EXPECT_EQ(response.body, "no snapshot for node 'proxy-9'\n");
  EXPECT_EQ(admin("PATCH", "/v1/snapshot").status, 405u);
}

TEST_F(ControlPlaneIntegrationTest, ThousandStreamsShareAFewThreads) {
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("1")).status, 200u);
  const size_t threads_before = threadCount();

  // 1,000 ADS streams over 10 connections, each subscribed to every cluster.
  constexpr size_t kStreams = 1000;
  std::vector<std::unique_ptr<XdsTestChannel>> channels;
  for (int i = 0; i < 10; i++) {
    channels.push_back(std::make_unique<XdsTestChannel>(control_plane_->xdsAddress()));
  }
  std::vector<std::unique_ptr<XdsTestStream>> streams;
  for (size_t i = 0; i < kStreams; i++) {
    streams.push_back(std::make_unique<XdsTestStream>(*channels[i % channels.size()],
                                                      std::string(kAdsSotwMethod)));
    send(*streams.back(), sotwRequest(kClusterTypeUrl, "", {}, "", absl::StrCat("node-", i)));
  }
  auto all_have = [&](size_t n) {
    for (const auto& stream : streams) {
      if (stream->receivedCount() < n) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(waitUntil([&] { return all_have(1); }, 60s, "every stream's first response"));
  EXPECT_EQ(control_plane_->xdsServer().activeStreams(), kStreams);

  // One snapshot reaches all of them.
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("2", {{"service1", 8081}})).status, 200u);
  ASSERT_TRUE(waitUntil([&] { return all_have(2); }, 60s, "every stream's second response"));

  // Streams cost no thread each (both ends here are on gRPC's callback API).
  const size_t threads_after = threadCount();
  EXPECT_LT(threads_after, threads_before + 64)
      << "threads before: " << threads_before << ", after: " << threads_after;

  streams.clear();
  ASSERT_TRUE(waitUntil([&] { return control_plane_->xdsServer().activeStreams() == 0; }, 60s,
                        "every stream to close"));
}

}  // namespace
}  // namespace Proxy::ControlPlane
