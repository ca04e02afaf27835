// A data plane and our control plane end to end: the real `control-plane-stub` binary drives a
// data plane whose bootstrap has only dynamic_resources — our `proxy`, or the real Envoy (the
// reference the proxy is measured against; deploy/install-peers.sh pins it) — in each xDS mode
// (ADS SotW, ADS Delta, per-type SotW streams), in front of real upstreams. Snapshots are PUT
// through the control plane's admin API, as a user would:
//  - every type is accepted and the data plane is connected (its own stats, and the ACKs in the
//    control plane's /v1/status); HTTP traffic is routed per snapshot, and follows a new one;
//  - snapshot changes (endpoints swapped, a route added, a cluster added and one removed; on
//    ADS SotW also a route moved to a cluster added in the same snapshot, and back) apply with
//    zero failed requests under a running keep-alive load loop;
//  - a snapshot the data plane NACKs (a listener on a port another socket holds) shows in the
//    control plane's /v1/status, is not resent, the previous config keeps serving, and the next
//    snapshot applies normally;
//  - a CDS change that keeps a cluster's endpoints, and a new cluster that shares another's
//    ClusterLoadAssignment, finish warming (Envoy waits for a fresh assignment);
//  - the control plane SIGKILLed and restarted on the same port: traffic keeps flowing on the
//    last good config, then the data plane reconnects and picks up the new snapshot;
//  - malformed (400) and inconsistent (409) snapshots are refused with the line/field or what
//    is missing, and nothing changes for the connected data plane.
// Every wait is on a condition (a response, an ACK in /v1/status, a stat) with a deadline.

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "test/integration/control_plane_e2e/control_plane_process.h"
#include "test/integration/control_plane_e2e/e2e_support.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::ControlPlaneE2e {
namespace {

using Integration::FakeUpstream;
using Integration::FakeUpstreamOptions;
using Integration::FakeUpstreamPtr;
using Integration::HttpResponse;
using XdsIntegration::ConfigDump;
using XdsIntegration::PortHolder;

struct E2eParam {
  DataPlane data_plane;
  XdsMode mode;
};

std::string paramName(const testing::TestParamInfo<E2eParam>& info) {
  return absl::StrCat(name(info.param.data_plane), "_", name(info.param.mode));
}

// What gtest (and so ctest's test list) prints for a parameter.
void PrintTo(const E2eParam& param, std::ostream* out) {
  *out << name(param.data_plane) << " " << name(param.mode);
}

class ControlPlaneE2eTest : public testing::TestWithParam<E2eParam> {
 protected:
  void SetUp() override {
    for (const char* upstream_name : {"upstream-a", "upstream-b", "upstream-c"}) {
      FakeUpstreamOptions options;
      options.name = upstream_name;
      absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
      ASSERT_TRUE(upstream.ok()) << upstream.status();
      upstreams_[upstream_name] = std::move(*upstream);
    }
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- control-plane-stub log ----\n" << control_plane_.log();
    }
    // The data plane first (its stream ends), then the control plane.
    data_plane_.reset();
    control_plane_.kill();
  }

  DataPlane dataPlane() const { return GetParam().data_plane; }
  XdsMode mode() const { return GetParam().mode; }
  bool envoy() const { return dataPlane() == DataPlane::Envoy; }
  // The node id each data plane announces (what /v1/status is keyed by).
  std::string node() const { return envoy() ? "e2e-envoy" : "e2e-proxy"; }

  uint32_t port(const std::string& upstream) { return upstreams_[upstream]->port(); }

  // The demo's shape: /service/1 -> service1, /service/2 -> service2.
  SnapshotSpec demo(const std::string& version, const std::string& service1_upstream,
                    const std::string& service2_upstream) {
    SnapshotSpec spec;
    spec.version = version;
    spec.mode = mode();
    spec.listener_port = listener_port_.port();
    spec.routes = {{"/service/1", "service1"}, {"/service/2", "service2"}};
    spec.clusters = {{"service1", {port(service1_upstream)}},
                     {"service2", {port(service2_upstream)}}};
    return spec;
  }

  // Starts the control plane serving `spec`, then the data plane against it, and waits until
  // the data plane is ready (/ready 200: every xDS type answered and the listener active).
  testing::AssertionResult startAll(const SnapshotSpec& spec, uint32_t xds_port = 0) {
    if (auto started = control_plane_.start(snapshotYaml(spec), xds_port); !started) {
      return started;
    }
    data_plane_ =
        std::make_unique<DataPlaneProcess>(dataPlane(), mode(), node(), control_plane_.xdsPort());
    return data_plane_->start(30s);
  }

  testing::AssertionResult put(const SnapshotSpec& spec) {
    absl::StatusOr<HttpResponse> response = control_plane_.putSnapshot(snapshotYaml(spec));
    if (!response.ok()) {
      return testing::AssertionFailure() << response.status();
    }
    if (response->status != 200) {
      return testing::AssertionFailure()
             << "PUT /v1/snapshot: " << response->status << " " << response->body;
    }
    return testing::AssertionSuccess();
  }

  testing::AssertionResult waitForAcks(const std::string& version,
                                       std::vector<std::string> types = {"cds", "eds", "lds",
                                                                         "rds"}) {
    for (const std::string& type : types) {
      if (auto acked = control_plane_.waitForAck(node(), type, version); !acked) {
        return acked;
      }
    }
    return testing::AssertionSuccess();
  }

  std::string upstreamFor(const std::string& path) {
    return ControlPlaneE2e::upstreamFor(listener_port_.port(), path);
  }

  testing::AssertionResult waitForUpstream(const std::string& path, const std::string& upstream) {
    return ControlPlaneE2e::waitForUpstream(listener_port_.port(), path, upstream);
  }

  // A stat of the data plane (counter or gauge), -1 when it does not export it.
  int64_t stat(const std::string& stat_name) { return data_plane_->stat(stat_name); }

  std::string typeField(const std::string& type, const std::string& field) {
    absl::StatusOr<google::protobuf::Struct> entry = control_plane_.typeStatus(node(), type);
    if (!entry.ok()) {
      return entry.status().ToString();
    }
    return XdsIntegration::stringField(*entry, {field});
  }

  std::map<std::string, FakeUpstreamPtr> upstreams_;
  // The port of the data plane's `ingress` listener: reserved (bound with SO_REUSEPORT, never
  // listening) so that no one else gets it, while the data plane's own SO_REUSEPORT sockets
  // bind it (Envoy's enable_reuse_port defaults to true on Linux, as ours does).
  PortHolder listener_port_{PortHolder::Mode::ReservedForReusePort};
  ControlPlaneProcess control_plane_;
  std::unique_ptr<DataPlaneProcess> data_plane_;
};

TEST_P(ControlPlaneE2eTest, RoutesTrafficPerSnapshotAndFollowsANewOne) {
  // v1, the demo: /service/1 -> service1 (upstream-a), /service/2 -> service2 (upstream-b).
  const SnapshotSpec v1 = demo(/*version=*/"1", /*service1=*/"upstream-a",
                               /*service2=*/"upstream-b");
  ASSERT_TRUE(startAll(v1));
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");
  EXPECT_EQ(upstreamFor("/service/2"), "upstream-b");
  EXPECT_EQ(upstreamFor("/nothing"), "HTTP 404");

  // The control plane's view: the data plane subscribed Envoy's way and ACKed version 1 of
  // each type.
  ASSERT_TRUE(waitForAcks(/*version=*/"1"));
  absl::StatusOr<google::protobuf::Struct> lds = control_plane_.typeStatus(node(), "lds");
  ASSERT_TRUE(lds.ok()) << lds.status();
  EXPECT_TRUE(XdsIntegration::field(*lds, {"wildcard"})->bool_value());
  absl::StatusOr<std::vector<std::string>> eds_names =
      control_plane_.subscribedNames(node(), "eds");
  ASSERT_TRUE(eds_names.ok()) << eds_names.status();
  EXPECT_EQ(*eds_names, (std::vector<std::string>{"service1", "service2"}));

  // The data plane's own view: every type accepted, connected to the control plane.
  for (const std::string& counter : data_plane_->updateSuccessStats(v1)) {
    EXPECT_GE(stat(counter), 1) << counter;
  }
  ASSERT_TRUE(data_plane_->waitForConnectedState(1));
  // And its /config_dump (Envoy's sections; ours has the same shape): the listener active at
  // version 1, the route configuration and both clusters from xDS.
  absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(data_plane_->process());
  ASSERT_TRUE(dump.ok()) << dump.status();
  const google::protobuf::Struct* ingress = dump->dynamicListener("ingress");
  ASSERT_NE(ingress, nullptr) << dump->json();
  // Over Delta, Envoy shows the listener's own resource version (the control plane's content
  // hash, 16 hex digits); our proxy shows the response's system_version_info: a difference
  // left to the listener manager.
  const std::string listener_version =
      XdsIntegration::stringField(*ingress, {"active_state", "version_info"});
  if (envoy() && mode() == XdsMode::AdsDelta) {
    EXPECT_TRUE(std::regex_match(listener_version, std::regex("[0-9a-f]{16}"))) << listener_version;
  } else {
    EXPECT_EQ(listener_version, "1");
  }
  EXPECT_EQ(dump->names("RoutesConfigDump", "dynamic_route_configs"),
            std::vector<std::string>{"local_route"});
  std::vector<std::string> clusters = dump->names("ClustersConfigDump", "dynamic_active_clusters");
  std::sort(clusters.begin(), clusters.end());
  EXPECT_EQ(clusters, (std::vector<std::string>{"service1", "service2"}));

  // v2 swaps the endpoints: the data plane follows without a restart.
  ASSERT_TRUE(put(demo(/*version=*/"2", /*service1=*/"upstream-b", /*service2=*/"upstream-a")));
  // (Envoy's per-type EDS streams, one per cluster, may apply them one after the other.)
  ASSERT_TRUE(waitForUpstream("/service/1", "upstream-b"));
  ASSERT_TRUE(waitForUpstream("/service/2", "upstream-a"));
  ASSERT_TRUE(waitForAcks(/*version=*/"2", {"eds"}));
  // Only EDS changed: the other types keep version 1 and were not resent.
  EXPECT_EQ(typeField("lds", "acked_version"), "1");
  EXPECT_EQ(typeField("rds", "acked_version"), "1");
  EXPECT_EQ(typeField("cds", "acked_version"), "1");
}

TEST_P(ControlPlaneE2eTest, SnapshotChangesUnderLoadFailNoRequest) {
  // v1: the demo, plus a cluster no route uses (`spare`).
  SnapshotSpec v1 = demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b");
  v1.clusters.push_back({"spare", {port("upstream-c")}});
  ASSERT_TRUE(startAll(v1));
  // Four keep-alive clients alternate between /service/1 and /service/2.
  LoadLoop load(listener_port_.port(), {"/service/1", "/service/2"}, /*clients=*/4);
  ASSERT_TRUE(load.waitForMoreRequests(200));

  // v2 changes every type but the listener at once: the endpoints swap (EDS), a route to a new
  // cluster appears (RDS + CDS + EDS) and `spare` goes (CDS). Nothing the load uses depends on
  // the order the types arrive in, so this holds in every mode.
  SnapshotSpec v2 = demo(/*version=*/"2", /*service1=*/"upstream-b", /*service2=*/"upstream-a");
  v2.routes.push_back({"/service/3", "service3"});
  v2.clusters.push_back({"service3", {port("upstream-c")}});
  ASSERT_TRUE(put(v2));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-b"));
  ASSERT_TRUE(load.waitForAnswer("/service/2", "upstream-a"));
  ASSERT_TRUE(waitForUpstream("/service/3", "upstream-c"));
  ASSERT_TRUE(waitForAcks("2", {"cds", "eds", "rds"}));
  EXPECT_EQ(load.failures(), 0) << "after v2:\n" << load.failureSamples();

  if (mode() == XdsMode::AdsSotw) {
    // v3, CDS + EDS + RDS at once: a new cluster service4 (upstream-c) and /service/1 routed to
    // it. Make before break: the control plane sends the route only once the data plane ACKed
    // the cluster and its endpoints (routes are not warmed; sent earlier, they 503 while it
    // warms). Only the ADS SotW stream orders types (control_plane_stub/README.md).
    SnapshotSpec v3 = v2;
    v3.version = "3";
    v3.routes[0] = {"/service/1", "service4"};
    v3.clusters.push_back({"service4", {port("upstream-c")}});
    ASSERT_TRUE(put(v3));
    ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-c"));
    ASSERT_TRUE(waitForAcks("3", {"rds"}));
    EXPECT_EQ(load.failures(), 0) << "after v3:\n" << load.failureSamples();

    // v4, RDS + CDS removal: /service/1 back to service1, service4 removed. The control plane
    // keeps service4 until the data plane ACKed the route that stopped using it.
    SnapshotSpec v4 = v2;
    v4.version = "4";
    ASSERT_TRUE(put(v4));
    ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-b"));
    ASSERT_TRUE(waitForAcks("4", {"cds", "rds"}));
    EXPECT_EQ(load.failures(), 0) << "after v4:\n" << load.failureSamples();
  }

  // v5, EDS scale-out: service2 on two upstreams; both answer.
  SnapshotSpec v5 = v2;
  v5.version = "5";
  v5.clusters[1].second.push_back(port("upstream-c"));
  ASSERT_TRUE(put(v5));
  ASSERT_TRUE(load.waitForAnswer("/service/2", "upstream-c"));
  ASSERT_TRUE(load.waitForAnswer("/service/2", "upstream-a"));

  // Some more traffic after the last change, then the verdict over the whole run.
  ASSERT_TRUE(load.waitForMoreRequests(200));
  load.stop();
  EXPECT_EQ(load.failures(), 0) << "of " << load.requests() << " requests:\n"
                                << load.failureSamples();
}

TEST_P(ControlPlaneE2eTest, NackedSnapshotIsVisibleAndThePreviousConfigKeepsServing) {
  ASSERT_TRUE(
      startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b")));
  ASSERT_TRUE(control_plane_.waitForAck(node(), "lds", "1"));
  const int64_t rejected = stat("listener_manager.lds.update_rejected");
  ASSERT_EQ(rejected, 0);

  // v2 adds a listener on a port another socket of this test listens on (without
  // SO_REUSEPORT): the control plane cannot know, the data plane cannot bind it and NACKs.
  PortHolder taken(PortHolder::Mode::Listening);
  SnapshotSpec v2 = demo(/*version=*/"2", /*service1=*/"upstream-a", /*service2=*/"upstream-b");
  v2.extra_listeners = {{"blocked", taken.port()}};
  ASSERT_TRUE(put(v2));

  // /v1/status: the NACK of LDS version 2 with the data plane's message; version 1 stays ACKed.
  std::string nack_message;
  ASSERT_TRUE(Integration::waitUntil(
      [&] {
        absl::StatusOr<google::protobuf::Struct> lds = control_plane_.typeStatus(node(), "lds");
        if (!lds.ok() || XdsIntegration::stringField(*lds, {"last_nack", "version"}) != "2") {
          return false;
        }
        nack_message = XdsIntegration::stringField(*lds, {"last_nack", "message"});
        return true;
      },
      20s, "the LDS NACK of version 2 in /v1/status"));
  if (envoy()) {
    // Envoy's wording.
    EXPECT_EQ(nack_message, absl::StrCat("Error adding/updating listener(s) blocked: cannot bind "
                                         "'127.0.0.1:",
                                         taken.port(), "': Address already in use\n"));
  } else {
    // (The control plane sends a type's resources sorted by name, and Delta only what
    // changed: `blocked` is index 0 either way.)
    EXPECT_EQ(nack_message,
              absl::StrCat("resource index 0: blocked: address: cannot bind '127.0.0.1:",
                           taken.port(), "': Address already in use"));
  }
  EXPECT_EQ(typeField("lds", "acked_version"), "1");
  EXPECT_EQ(typeField("lds", "pending_nonce"), "");
  // The control plane logged it in one line; the data plane counted it. (The log line and the
  // counter may trail the status the control plane already shows: wait for them.)
  EXPECT_TRUE(
      Integration::waitUntil([&] { return absl::StrContains(control_plane_.log(), "NACK"); },
                             std::chrono::seconds(10), "the control plane logs the NACK"))
      << control_plane_.log();
  EXPECT_TRUE(data_plane_->waitForStat("listener_manager.lds.update_rejected", rejected + 1));
  EXPECT_EQ(stat("listener_manager.lds.update_rejected"), rejected + 1);

  // Our proxy's /config_dump: `blocked` has an error_state with the reason; `ingress` is still
  // active at version 1. (Envoy keeps no listener it could not create.)
  if (!envoy()) {
    absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(data_plane_->process());
    ASSERT_TRUE(dump.ok()) << dump.status();
    const google::protobuf::Struct* blocked = dump->dynamicListener("blocked");
    ASSERT_NE(blocked, nullptr) << dump->json();
    EXPECT_EQ(XdsIntegration::stringField(*blocked, {"error_state", "details"}),
              absl::StrCat("address: cannot bind '127.0.0.1:", taken.port(),
                           "': Address already in use"));
    const google::protobuf::Struct* ingress = dump->dynamicListener("ingress");
    ASSERT_NE(ingress, nullptr) << dump->json();
    EXPECT_EQ(XdsIntegration::stringField(*ingress, {"active_state", "version_info"}), "1");
  }

  // The previous config keeps serving.
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");
  EXPECT_EQ(upstreamFor("/service/2"), "upstream-b");

  // The rejected version is not resent: nothing more went out on the stream.
  const std::string responses = typeField("lds", "responses");
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");
  EXPECT_EQ(typeField("lds", "responses"), responses);
  EXPECT_EQ(stat("listener_manager.lds.update_rejected"), rejected + 1);

  // v3 drops the listener and swaps the endpoints: it is sent and applied normally.
  ASSERT_TRUE(put(demo(/*version=*/"3", /*service1=*/"upstream-b", /*service2=*/"upstream-a")));
  ASSERT_TRUE(waitForUpstream("/service/1", "upstream-b"));
  ASSERT_TRUE(waitForAcks("3", {"lds", "eds"}));
}

TEST_P(ControlPlaneE2eTest, ClusterChangesThatKeepTheirEndpointsFinishWarming) {
  const SnapshotSpec v1 = demo(/*version=*/"1", /*service1=*/"upstream-a",
                               /*service2=*/"upstream-b");
  ASSERT_TRUE(startAll(v1));
  ASSERT_TRUE(waitForAcks("1"));

  // v2 changes service1's cluster (connect_timeout) but not its ClusterLoadAssignment: the EDS
  // type version stays 1. Envoy warms the new service1 until a ClusterLoadAssignment arrives,
  // even an unchanged one (its "warming of Cluster is completed only when a new
  // ClusterLoadAssignment response is supplied"), so the control plane sends it again; without
  // it the cluster would warm until its initial fetch timeout (15 s) gave up on it.
  SnapshotSpec v2 = v1;
  v2.version = "2";
  v2.connect_timeouts["service1"] = "2s";
  ASSERT_TRUE(put(v2));
  ASSERT_TRUE(waitForAcks("2", {"cds"}));
  ASSERT_TRUE(Integration::waitUntil([&] { return stat("cluster_manager.warming_clusters") == 0; },
                                     20s, "no warming cluster"));
  if (envoy()) {
    // Warm by an assignment, not by giving up on one. (The replaced service1 may count the
    // resent assignment too: both versions share the cluster's stats.)
    EXPECT_EQ(stat("cluster.service1.init_fetch_timeout"), 0);
    EXPECT_GE(stat("cluster.service1.update_success"), 2);
  }
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");

  // v3 adds a cluster that takes its endpoints from service1's ClusterLoadAssignment
  // (eds_cluster_config.service_name), which the data plane already watches: nothing new to
  // subscribe to, so the data plane must use the assignment it has, or be sent it again.
  SnapshotSpec v3 = v2;
  v3.version = "3";
  v3.routes.push_back({"/mirror", "service1-mirror"});
  v3.clusters.push_back({"service1-mirror", {port("upstream-a")}});
  v3.eds_service_names["service1-mirror"] = "service1";
  ASSERT_TRUE(put(v3));
  ASSERT_TRUE(waitForUpstream("/mirror", "upstream-a"));
  ASSERT_TRUE(waitForAcks("3", {"cds", "rds"}));
  EXPECT_EQ(stat("cluster_manager.warming_clusters"), 0);
  if (envoy()) {
    EXPECT_EQ(stat("cluster.service1-mirror.init_fetch_timeout"), 0);
  }
}

TEST_P(ControlPlaneE2eTest, ControlPlaneKilledAndRestartedWhileTrafficFlows) {
  // The control plane's xDS port, held by this test for its whole life (bound with
  // SO_REUSEPORT, as gRPC binds its own, never listening): between the kill and the restart no
  // other socket can take it (a freed port is soon someone's ephemeral port under ctest -j2).
  PortHolder xds_port(PortHolder::Mode::ReservedForReusePort);
  ASSERT_TRUE(startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b"),
                       xds_port.port()));
  ASSERT_TRUE(data_plane_->waitForConnectedState(1));
  LoadLoop load(listener_port_.port(), {"/service/1", "/service/2"}, /*clients=*/2);
  ASSERT_TRUE(load.waitForMoreRequests(100));

  // SIGKILL: the data plane sees its streams fail and keeps serving its last good config.
  control_plane_.kill();
  ASSERT_TRUE(data_plane_->waitForConnectedState(0));
  ASSERT_TRUE(load.waitForMoreRequests(200));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-a"));

  // Restarted on the same port with a new snapshot (v2, endpoints swapped): the data plane
  // reconnects (with its backoff) and picks it up.
  ASSERT_TRUE(control_plane_.start(
      snapshotYaml(demo(/*version=*/"2", /*service1=*/"upstream-b", /*service2=*/"upstream-a")),
      xds_port.port()));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-b"));
  ASSERT_TRUE(waitForAcks("2", {"eds"}));
  ASSERT_TRUE(data_plane_->waitForConnectedState(1));

  ASSERT_TRUE(load.waitForMoreRequests(100));
  load.stop();
  EXPECT_EQ(load.failures(), 0) << load.failureSamples();
}

INSTANTIATE_TEST_SUITE_P(DataPlanesAndModes, ControlPlaneE2eTest,
                         testing::Values(E2eParam{DataPlane::Proxy, XdsMode::AdsSotw},
                                         E2eParam{DataPlane::Proxy, XdsMode::AdsDelta},
                                         E2eParam{DataPlane::Proxy, XdsMode::PerTypeSotw},
                                         E2eParam{DataPlane::Envoy, XdsMode::AdsSotw},
                                         E2eParam{DataPlane::Envoy, XdsMode::AdsDelta},
                                         E2eParam{DataPlane::Envoy, XdsMode::PerTypeSotw}),
                         paramName);

// The admin API's refusals concern the control plane, not the xDS mode: one mode per data plane.
class ControlPlaneAdminE2eTest : public ControlPlaneE2eTest {};

TEST_P(ControlPlaneAdminE2eTest, BadSnapshotsAreRefusedAndChangeNothingForTheDataPlane) {
  ASSERT_TRUE(
      startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b")));
  ASSERT_TRUE(waitForAcks("1"));
  const std::string responses_before = typeField("lds", "responses");
  const int64_t cds_attempts = stat("cluster_manager.cds.update_attempt");
  const int64_t lds_attempts = stat("listener_manager.lds.update_attempt");
  ASSERT_GE(cds_attempts, 1);
  ASSERT_GE(lds_attempts, 1);

  // Malformed: a bad enum value. 400, naming the field and its line.
  absl::StatusOr<HttpResponse> response = control_plane_.putSnapshot(R"(version: "2"
resources:
  clusters:
  - name: service1
    type: EDS
    lb_policy: ROUND_ROBINN
)");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->body,
            "resources.clusters[0].lb_policy: invalid value 'ROUND_ROBINN' for enum "
            "envoy.config.cluster.v3.Cluster.LbPolicy (line 6, column 16)\n");

  // Malformed: not YAML at all. 400, with the line.
  response = control_plane_.putSnapshot("version: \"2\"\nresources: [\n");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400);
  EXPECT_TRUE(absl::StrContains(response->body, "line 3")) << response->body;

  // Inconsistent: the listener's RDS names a route configuration the snapshot lacks, and an
  // EDS cluster has no assignment. 409, naming both.
  SnapshotSpec broken = demo(/*version=*/"2", /*service1=*/"upstream-b", /*service2=*/"upstream-a");
  std::string yaml = snapshotYaml(broken);
  yaml = absl::StrReplaceAll(yaml, {{"route_config_name: local_route", "route_config_name: lost"}});
  yaml = absl::StrReplaceAll(yaml, {{"- cluster_name: service2\n", "- cluster_name: elsewhere\n"}});
  response = control_plane_.putSnapshot(yaml);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 409);
  EXPECT_EQ(response->body,
            "listener 'ingress' (resources.listeners[0]): route configuration 'lost' is not in "
            "resources.routes; cluster 'service2' (resources.clusters[1]): EDS service "
            "'service2' has no ClusterLoadAssignment in resources.endpoints\n");

  // Empty: no body, "{}", only a comment, or a version without resources. Served, it would
  // take every listener, route, cluster and endpoint away from the data plane. 400, saying how
  // to ask for that on purpose.
  for (const char* empty : {"", "{}", "# nothing to see\n", "version: \"2\"\n"}) {
    response = control_plane_.putSnapshot(empty);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 400) << "body: '" << empty << "'";
    EXPECT_EQ(response->body,
              "the snapshot has no resources: serving it would remove every listener, route, "
              "cluster and endpoint from the clients it serves (PUT with ?allow_empty=true to "
              "do that on purpose)\n");
  }

  // Nothing changed: the served snapshot is still version 1, nothing was sent to the data
  // plane, the data plane saw no update, and traffic goes where it went.
  absl::StatusOr<HttpResponse> served = control_plane_.getSnapshot();
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_TRUE(absl::StrContains(served->body, "\"version\": \"1\"")) << served->body;
  EXPECT_EQ(typeField("lds", "responses"), responses_before);
  EXPECT_EQ(stat("cluster_manager.cds.update_attempt"), cds_attempts);
  EXPECT_EQ(stat("listener_manager.lds.update_attempt"), lds_attempts);
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");
  EXPECT_EQ(upstreamFor("/service/2"), "upstream-b");
  for (const char* type : {"cds", "eds", "lds", "rds"}) {
    EXPECT_EQ(typeField(type, "acked_version"), "1") << type;
  }

  // Asked for explicitly, the empty snapshot is served: the data plane lets its listener go.
  response = control_plane_.putSnapshot("version: \"3\"\n", "allow_empty=true");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200) << response->body;
  ASSERT_TRUE(control_plane_.waitForAck(node(), "lds", /*version=*/"3"));
  EXPECT_TRUE(
      Integration::waitUntil([&] { return stat("listener_manager.total_listeners_active") == 0; },
                             20s, "the data plane to remove its listener"));
}

INSTANTIATE_TEST_SUITE_P(DataPlanes, ControlPlaneAdminE2eTest,
                         testing::Values(E2eParam{DataPlane::Proxy, XdsMode::AdsSotw},
                                         E2eParam{DataPlane::Envoy, XdsMode::AdsSotw}),
                         paramName);

}  // namespace
}  // namespace Proxy::ControlPlaneE2e
