// Snapshot files (YAML/JSON -> validated SnapshotFile), the consistency check, the immutable
// Snapshot (versions, hashes, the shared SotW body) and the cache (per node, default, 409s,
// notifications, NACK records).

#include <fstream>
#include <sstream>

#include "absl/strings/str_replace.h"
#include "control_plane_stub/snapshot.h"
#include "control_plane_stub/snapshot_cache_impl.h"
#include "control_plane_stub/snapshot_loader.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/control_plane/control_plane_test_util.h"

namespace Proxy::ControlPlane {
namespace {

using testing::ElementsAre;
using TestUtil::describe;
using TestUtil::makeSnapshot;
using TestUtil::parseOrDie;
using TestUtil::snapshotYaml;

absl::Status parseError(const std::string& yaml, ValidationMode mode = ValidationMode::Proxy) {
  absl::StatusOr<SnapshotFile> file = parseSnapshot(yaml, SnapshotFormat::Yaml, mode);
  return file.status();
}

std::vector<std::string> names(const Snapshot& snapshot, ResourceKind kind) {
  std::vector<std::string> out;
  for (const Resource& resource : snapshot.resources(kind)) {
    out.push_back(resource.name);
  }
  return out;
}

// --- Parsing and validation ------------------------------------------------------------------

TEST(SnapshotLoaderTest, ShippedDemoSnapshotParsesAndIsConsistent) {
  // The example the README's demo serves: one listener with RDS, one route configuration, two
  // EDS clusters with one endpoint each.
  absl::StatusOr<SnapshotFile> file =
      loadSnapshotFile(std::string(CONTROL_PLANE_SOURCE_DIR) + "/examples/demo-snapshot.yaml",
                       ValidationMode::Proxy);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->version(), "1");
  EXPECT_EQ(file->node(), "");
  EXPECT_TRUE(checkConsistency(*file).ok());

  SnapshotConstSharedPtr snapshot = Snapshot::create(*file, /*previous=*/nullptr);
  EXPECT_THAT(names(*snapshot, ResourceKind::Listener), ElementsAre("ingress"));
  EXPECT_THAT(names(*snapshot, ResourceKind::Route), ElementsAre("local_route"));
  EXPECT_THAT(names(*snapshot, ResourceKind::Cluster), ElementsAre("service1", "service2"));
  EXPECT_THAT(names(*snapshot, ResourceKind::Endpoint), ElementsAre("service1", "service2"));
  const auto* cla = static_cast<const envoy::config::endpoint::v3::ClusterLoadAssignment*>(
      snapshot->find(ResourceKind::Endpoint, "service2")->message);
  EXPECT_EQ(cla->endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value(),
            8082u);
}

TEST(SnapshotLoaderTest, ShippedGrpcSnapshotParsesAndIsConsistent) {
  // The example for gRPC's xDS clients: an API listener and its RDS, CDS and EDS resources.
  absl::StatusOr<SnapshotFile> file =
      loadSnapshotFile(std::string(CONTROL_PLANE_SOURCE_DIR) + "/examples/grpc-xds-snapshot.yaml",
                       ValidationMode::Proxy);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(checkConsistency(*file).ok());
  EXPECT_TRUE(file->resources().listeners(0).has_api_listener());
}

TEST(SnapshotLoaderTest, FieldErrorsNameThePathAndTheLine) {
  // A misspelt enum value: the loader's message, the resource's path, and where it is.
  EXPECT_EQ(parseError(R"(version: "1"
resources:
  clusters:
  - name: a
    type: STATIC
    lb_policy: ROUND_ROBINN
)"),
            absl::InvalidArgumentError(
                "resources.clusters[0].lb_policy: invalid value 'ROUND_ROBINN' for enum "
                "envoy.config.cluster.v3.Cluster.LbPolicy (line 6, column 16)"));

  // An unknown field.
  EXPECT_EQ(parseError("resources:\n  listeners:\n  - name: l\n    adress: {}\n"),
            absl::InvalidArgumentError(
                "resources.listeners[0]: unknown field 'adress' (line 3, column 5)"));

  // A field of the snapshot file itself.
  EXPECT_EQ(parseError("versoin: \"1\"\n"), absl::InvalidArgumentError("unknown field 'versoin'"));

  // YAML that does not parse: the YAML parser's own line and column.
  EXPECT_EQ(parseError("version: [1\n"),
            absl::InvalidArgumentError(
                "yaml parse error at line 2, column 1: end of sequence flow not found"));
}

TEST(SnapshotLoaderTest, ResourcesGoThroughTheProxysOwnValidation) {
  // The proxy's validator's words, under the snapshot's path.
  EXPECT_EQ(parseError(R"(resources:
  clusters:
  - name: dns
    type: ORIGINAL_DST
)"),
            absl::InvalidArgumentError(
                "resources.clusters[0].type: unsupported cluster type 'ORIGINAL_DST' (only STATIC, "
                "STRICT_DNS, LOGICAL_DNS and EDS are supported) (line 4, column 11)"));
  // The same snapshot is fine for clients other than this proxy (--validation basic).
  EXPECT_TRUE(parseError(R"(resources:
  clusters:
  - name: dns
    type: ORIGINAL_DST
)",
                         ValidationMode::Basic)
                  .ok());
}

TEST(SnapshotLoaderTest, NamesAreRequiredAndUnique) {
  EXPECT_EQ(parseError("resources:\n  endpoints:\n  - endpoints: []\n"),
            absl::InvalidArgumentError("resources.endpoints[0].cluster_name: required"));
  EXPECT_EQ(parseError(R"(resources:
  routes:
  - name: r
  - name: s
  - name: r
)"),
            absl::InvalidArgumentError("resources.routes[2].name: duplicate route configuration "
                                       "name 'r' (also resources.routes[0]) (line 5, column 11)"));
}

TEST(SnapshotLoaderTest, ApiListenersAreCheckedAsHttpConnectionManagers) {
  // gRPC's xDS clients resolve "xds:///name" through an API listener: accepted, and its HTTP
  // connection manager is validated like the proxy's own.
  const std::string api_listener = R"(resources:
  listeners:
  - name: greeter
    api_listener:
      api_listener:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        rds: { route_config_name: greeter_route, config_source: { ads: {} } }
        http_filters:
        - name: envoy.filters.http.router
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
  absl::StatusOr<SnapshotFile> file =
      parseSnapshot(api_listener, SnapshotFormat::Yaml, ValidationMode::Proxy);
  ASSERT_TRUE(file.ok()) << file.status();
  // Its RDS reference is checked like any other.
  EXPECT_EQ(checkConsistency(*file),
            absl::FailedPreconditionError(
                "listener 'greeter' (resources.listeners[0]): route configuration "
                "'greeter_route' is not in resources.routes"));

  // Any other API listener type is refused.
  EXPECT_EQ(parseError(R"(resources:
  listeners:
  - name: weird
    api_listener:
      api_listener:
        "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)"),
            absl::InvalidArgumentError(
                "resources.listeners[0].api_listener.api_listener: unsupported API listener "
                "type 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' (only "
                "HttpConnectionManager is supported) (line 6, column 9)"));
}

TEST(SnapshotLoaderTest, JsonParsesLikeYamlAndRoundTrips) {
  // GET /v1/snapshot's JSON is accepted by PUT: the round trip keeps every resource.
  SnapshotFile original = parseOrDie(snapshotYaml(/*version=*/"7"));
  const std::string json = snapshotToJson(original);
  absl::StatusOr<SnapshotFile> again =
      parseSnapshot(json, SnapshotFormat::Json, ValidationMode::Proxy);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), original.SerializeAsString());
  EXPECT_THAT(json, testing::HasSubstr("\"route_config_name\": \"local_route\""));
}

TEST(SnapshotLoaderTest, EmptyDocumentIsAnEmptySnapshot) {
  SnapshotFile file = parseOrDie("");
  EXPECT_EQ(file.resources().listeners_size(), 0);
  EXPECT_TRUE(checkConsistency(file).ok());
  // The admin API and the file loader refuse it unless asked: they tell it by this.
  EXPECT_TRUE(hasNoResources(file));
  EXPECT_TRUE(hasNoResources(parseOrDie("version: \"3\"\n# nothing else\n")));
  EXPECT_FALSE(hasNoResources(parseOrDie(snapshotYaml("1"))));
}

// --- YAML aliases ----------------------------------------------------------------------------

TEST(SnapshotLoaderTest, AnAliasCycleIsRefusedBeforeTheConversion) {
  // The loader's alias guard (proxy/config/yaml_guard.h) refuses it before the conversion
  // would recurse forever.
  absl::StatusOr<SnapshotFile> file =
      parseSnapshot("resources: &r {clusters: [{name: c, metadata: {filter_metadata: {x: *r}}}]}",
                    SnapshotFormat::Yaml, ValidationMode::Proxy);
  EXPECT_EQ(file.status(),
            absl::InvalidArgumentError(
                "yaml alias at line 1, column 69 names a node that contains it (a cycle)"));
}

// --- Consistency ---------------------------------------------------------------------------

TEST(SnapshotConsistencyTest, EveryMissingReferenceIsNamed) {
  // A listener whose route configuration is missing and two EDS clusters without assignments
  // (one named by its service_name): one message naming all three.
  SnapshotFile file = parseOrDie(snapshotYaml("1"));
  file.mutable_resources()->clear_routes();
  file.mutable_resources()->mutable_endpoints()->RemoveLast();
  file.mutable_resources()->mutable_clusters(0)->mutable_eds_cluster_config()->set_service_name(
      "svc-one");
  EXPECT_EQ(checkConsistency(file),
            absl::FailedPreconditionError(
                "listener 'ingress' (resources.listeners[0]): route configuration "
                "'local_route' is not in resources.routes; cluster 'service1' "
                "(resources.clusters[0]): EDS service 'svc-one' has no ClusterLoadAssignment in "
                "resources.endpoints; cluster 'service2' (resources.clusters[1]): EDS service "
                "'service2' has no ClusterLoadAssignment in resources.endpoints"));
}

// --- Snapshot ------------------------------------------------------------------------------

TEST(SnapshotTest, ResourceVersionsAreStableHashesOfTheContents) {
  SnapshotConstSharedPtr a = makeSnapshot(snapshotYaml("1"));
  SnapshotConstSharedPtr b =
      makeSnapshot(snapshotYaml("2", {{"service1", 8081}, {"service2", 9999}}));
  // Same contents, same version, whatever the snapshot version; 16 hex digits.
  EXPECT_EQ(a->find(ResourceKind::Endpoint, "service1")->version,
            b->find(ResourceKind::Endpoint, "service1")->version);
  EXPECT_NE(a->find(ResourceKind::Endpoint, "service2")->version,
            b->find(ResourceKind::Endpoint, "service2")->version);
  EXPECT_EQ(a->find(ResourceKind::Endpoint, "service1")->version.size(), 16u);
  EXPECT_EQ(a->find(ResourceKind::Endpoint, "missing"), nullptr);
}

TEST(SnapshotTest, UnchangedTypesKeepTheirVersion) {
  // Version 2 changes one endpoint and nothing else: only EDS moves to version 2, so clients
  // are not sent listeners, routes and clusters that did not change.
  SnapshotConstSharedPtr v1 = makeSnapshot(snapshotYaml("1"));
  SnapshotConstSharedPtr v2 =
      makeSnapshot(snapshotYaml("2", {{"service1", 8081}, {"service2", 9999}}), v1.get());
  EXPECT_EQ(v2->version(), "2");
  EXPECT_EQ(v2->typeVersion(ResourceKind::Endpoint), "2");
  EXPECT_EQ(v2->typeVersion(ResourceKind::Cluster), "1");
  EXPECT_EQ(v2->typeVersion(ResourceKind::Listener), "1");
  EXPECT_EQ(v2->typeVersion(ResourceKind::Route), "1");
  EXPECT_FALSE(v2->sameContents(*v1));

  // Without a previous snapshot every type has the snapshot's version.
  EXPECT_EQ(makeSnapshot(snapshotYaml("2"))->typeVersion(ResourceKind::Route), "2");
}

TEST(SnapshotTest, KeyOrderInsideTypedConfigDoesNotChangeVersions) {
  // The same listener with its HTTP connection manager's keys in another order (and a zero
  // written out): the Any is packed canonically, so nothing changed for clients.
  SnapshotConstSharedPtr v1 = makeSnapshot(snapshotYaml("1"));
  std::string reordered = absl::StrReplaceAll(
      snapshotYaml("2"),
      {{"          stat_prefix: ingress_http\n"
        "          rds: { route_config_name: local_route, config_source: { ads: {} } }\n",
        "          rds: { config_source: { ads: {} }, route_config_name: local_route }\n"
        "          codec_type: AUTO\n"
        "          stat_prefix: ingress_http\n"}});
  ASSERT_NE(reordered, snapshotYaml("2"));
  SnapshotConstSharedPtr v2 = makeSnapshot(reordered, v1.get());
  EXPECT_EQ(v2->find(ResourceKind::Listener, "ingress")->version,
            v1->find(ResourceKind::Listener, "ingress")->version);
  EXPECT_EQ(v2->typeVersion(ResourceKind::Listener), "1");
  EXPECT_TRUE(v2->sameContents(*v1));
}

TEST(SnapshotTest, VersionDerivedFromContentsWhenTheFileHasNone) {
  SnapshotConstSharedPtr a = makeSnapshot(snapshotYaml(""));
  SnapshotConstSharedPtr b = makeSnapshot(snapshotYaml(""));
  SnapshotConstSharedPtr c = makeSnapshot(snapshotYaml("", {{"service1", 1}}));
  EXPECT_EQ(a->version().rfind("auto-", 0), 0u);
  EXPECT_EQ(a->version().size(), 5u + 16u);
  EXPECT_EQ(a->version(), b->version());
  EXPECT_NE(a->version(), c->version());
}

TEST(SnapshotTest, SharedSotwBodyDecodesAsADiscoveryResponse) {
  // The body every wildcard stream shares, plus a nonce field, is a valid DiscoveryResponse.
  SnapshotConstSharedPtr snapshot = makeSnapshot(snapshotYaml("3"));
  std::string bytes = *snapshot->sotwBodyAll(ResourceKind::Cluster);
  bytes += std::string(
      "\x2a\x01"
      "9",
      3);  // field 5 (nonce), length 1, "9"
  envoy::service::discovery::v3::DiscoveryResponse response;
  ASSERT_TRUE(response.ParseFromString(bytes));
  EXPECT_EQ(describe(response), "cds version='3' nonce='9' [service1, service2]");
}

// --- Cache ---------------------------------------------------------------------------------

class CountingWatcher : public StreamWatcher {
 public:
  explicit CountingWatcher(uint64_t id) : id_(id) {}
  uint64_t id() const override { return id_; }
  void onSnapshotChanged() override { notified++; }
  StreamStatus status() const override {
    StreamStatus s;
    s.id = id_;
    return s;
  }
  int notified = 0;

 private:
  uint64_t id_;
};

TEST(SnapshotCacheTest, NodesFallBackToTheDefaultSnapshot) {
  SnapshotCacheImpl cache;
  // Nothing set: nobody is served.
  EXPECT_EQ(cache.snapshotFor("proxy-1"), nullptr);

  // A default snapshot serves every node.
  ASSERT_TRUE(cache.setSnapshot(parseOrDie(snapshotYaml("d1"))).ok());
  EXPECT_EQ(cache.snapshotFor("proxy-1")->version(), "d1");
  EXPECT_EQ(cache.snapshotFor("")->version(), "d1");

  // A node's own snapshot serves only that node.
  ASSERT_TRUE(cache.setSnapshot(parseOrDie(snapshotYaml("n1", {{"service1", 1}}, "proxy-1"))).ok());
  EXPECT_EQ(cache.snapshotFor("proxy-1")->version(), "n1");
  EXPECT_EQ(cache.snapshotFor("proxy-2")->version(), "d1");

  // Removing it falls back to the default; the default itself cannot be removed.
  EXPECT_TRUE(cache.removeSnapshot("proxy-1").ok());
  EXPECT_EQ(cache.snapshotFor("proxy-1")->version(), "d1");
  EXPECT_EQ(cache.removeSnapshot("proxy-1"), absl::NotFoundError("no snapshot for node 'proxy-1'"));
  EXPECT_EQ(cache.removeSnapshot(""),
            absl::InvalidArgumentError("the default snapshot cannot be removed, only replaced"));
}

TEST(SnapshotCacheTest, RejectedSnapshotsLeaveTheOldOneServing) {
  SnapshotCacheImpl cache;
  auto watcher = std::make_shared<CountingWatcher>(1);
  cache.addStream(watcher);
  ASSERT_TRUE(cache.setSnapshot(parseOrDie(snapshotYaml("1"))).ok());
  EXPECT_EQ(watcher->notified, 1);

  // Inconsistent: 409 material, nothing changes, nobody is told.
  SnapshotFile inconsistent = parseOrDie(snapshotYaml("2"));
  inconsistent.mutable_resources()->clear_routes();
  EXPECT_EQ(cache.setSnapshot(inconsistent).status(),
            absl::FailedPreconditionError("listener 'ingress' (resources.listeners[0]): route "
                                          "configuration 'local_route' is not in "
                                          "resources.routes"));
  // The same version with different resources: clients comparing versions would miss it.
  EXPECT_EQ(cache.setSnapshot(parseOrDie(snapshotYaml("1", {{"service1", 1}}))).status(),
            absl::FailedPreconditionError(
                "version '1' is already served with different resources; change the version so "
                "that clients see the update"));
  EXPECT_EQ(cache.snapshotFor("")->version(), "1");
  EXPECT_EQ(watcher->notified, 1);

  // The same version with the same resources: accepted as a no-op.
  absl::StatusOr<SetSnapshotResult> same = cache.setSnapshot(parseOrDie(snapshotYaml("1")));
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(watcher->notified, 1);

  // A new version is installed and every stream is told.
  absl::StatusOr<SetSnapshotResult> next =
      cache.setSnapshot(parseOrDie(snapshotYaml("2", {{"service1", 1}})));
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->changed);
  EXPECT_EQ(watcher->notified, 2);
}

TEST(SnapshotCacheTest, StreamsAreWeakAndNacksAreKeptPerNodeAndType) {
  SnapshotCacheImpl cache;
  auto a = std::make_shared<CountingWatcher>(1);
  auto b = std::make_shared<CountingWatcher>(2);
  cache.addStream(a);
  cache.addStream(b);
  EXPECT_EQ(cache.streams().size(), 2u);
  // A stream that is gone (destroyed without removeStream) is skipped, not called.
  b.reset();
  EXPECT_EQ(cache.streams().size(), 1u);
  cache.removeStream(1);
  EXPECT_EQ(cache.streams().size(), 0u);

  // The last NACK per (node, type) is kept, oldest first.
  const SystemTime t0(std::chrono::seconds(100));
  cache.recordNack({"p1", std::string(kListenerTypeUrl), "2", "5", "port in use", t0});
  cache.recordNack(
      {"p2", std::string(kListenerTypeUrl), "2", "3", "bad", t0 + std::chrono::seconds(1)});
  cache.recordNack({"p1", std::string(kListenerTypeUrl), "3", "7", "still in use",
                    t0 + std::chrono::seconds(2)});
  std::vector<NackRecord> nacks = cache.nacks();
  ASSERT_EQ(nacks.size(), 2u);
  EXPECT_EQ(nacks[0].node, "p2");
  EXPECT_EQ(nacks[1].node, "p1");
  EXPECT_EQ(nacks[1].version, "3");
  EXPECT_EQ(nacks[1].message, "still in use");
}

}  // namespace
}  // namespace Proxy::ControlPlane
