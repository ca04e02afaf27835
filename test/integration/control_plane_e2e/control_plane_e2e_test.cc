// The proxy and our control plane end to end: the real `proxy` binary, whose bootstrap has only
// dynamic_resources (ADS), against the real `control-plane-stub` binary, in front of real
// upstreams. Snapshots are PUT through the control plane's admin API, as a user would:
//  - HTTP traffic is routed per snapshot, and follows a new one;
//  - snapshot changes (EDS, RDS, CDS additions and removals) apply with zero failed requests
//    under a running keep-alive load loop;
//  - a snapshot the proxy NACKs (a listener on a port another socket holds) shows in the control
//    plane's /v1/status and in the proxy's /config_dump error_state, the previous config keeps
//    serving, and the next snapshot applies normally;
//  - the control plane SIGKILLed and restarted on the same port: traffic keeps flowing on the
//    last good config, then the proxy reconnects and picks up the new snapshot;
//  - malformed (400) and inconsistent (409) snapshots are refused with the line/field or what
//    is missing, and nothing changes for the connected proxy.
// Every wait is on a condition (a response, an ACK in /v1/status, a stat) with a deadline.

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "test/integration/control_plane_e2e/control_plane_process.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::ControlPlaneE2e {
namespace {

using Integration::FakeUpstream;
using Integration::FakeUpstreamOptions;
using Integration::FakeUpstreamPtr;
using Integration::HttpClient;
using Integration::HttpClientPtr;
using Integration::HttpRequest;
using Integration::HttpResponse;
using Integration::ProxyOptions;
using Integration::ProxyProcess;
using XdsIntegration::ConfigDump;
using XdsIntegration::PortHolder;

constexpr char kNode[] = "e2e-proxy";

// The proxy's bootstrap: only dynamic_resources, ADS to the control plane (the xds_cluster
// written the way Envoy users write it).
std::string proxyBootstrap(uint32_t xds_port) {
  return absl::StrCat(R"(node: {id: )", kNode, R"(, cluster: e2e}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds_cluster}
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
                      xds_port, "}}}\n");
}

// A snapshot in the control plane's YAML (Envoy's resource format): the demo's shape. One HTTP
// listener `ingress` whose routes come from RDS `local_route`, a route per (prefix, cluster),
// every cluster EDS with one assignment of its endpoint ports, and extra listeners.
struct SnapshotSpec {
  std::string version;
  uint32_t listener_port = 0;
  std::vector<std::pair<std::string, std::string>> routes;              // prefix -> cluster
  std::vector<std::pair<std::string, std::vector<uint32_t>>> clusters;  // name -> ports
  std::vector<std::pair<std::string, uint32_t>> extra_listeners;        // name -> port
};

std::string listenerYaml(const std::string& name, uint32_t port) {
  return absl::StrCat(R"(
  - name: )",
                      name, R"(
    address: { socket_address: { address: 127.0.0.1, port_value: )",
                      port, R"( } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: )",
                      name, R"(
          rds:
            route_config_name: local_route
            config_source: { ads: {}, resource_api_version: V3 }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router)");
}

std::string snapshotYaml(const SnapshotSpec& spec) {
  std::string yaml =
      absl::StrCat("version: \"", spec.version,
                   "\"\nresources:\n  listeners:", listenerYaml("ingress", spec.listener_port));
  for (const auto& [name, port] : spec.extra_listeners) {
    absl::StrAppend(&yaml, listenerYaml(name, port));
  }
  absl::StrAppend(&yaml, R"(
  routes:
  - name: local_route
    virtual_hosts:
    - name: e2e
      domains: ["*"]
      routes:)");
  for (const auto& [prefix, cluster] : spec.routes) {
    absl::StrAppend(&yaml, "\n      - match: { prefix: \"", prefix, "\" }\n        route: { ",
                    "cluster: ", cluster, " }");
  }
  absl::StrAppend(&yaml, "\n  clusters:");
  for (const auto& [name, ports] : spec.clusters) {
    absl::StrAppend(&yaml, "\n  - name: ", name, R"(
    type: EDS
    connect_timeout: 1s
    lb_policy: ROUND_ROBIN
    eds_cluster_config:
      eds_config: { ads: {}, resource_api_version: V3 })");
  }
  absl::StrAppend(&yaml, "\n  endpoints:");
  for (const auto& [name, ports] : spec.clusters) {
    absl::StrAppend(&yaml, "\n  - cluster_name: ", name, "\n    endpoints:\n    - lb_endpoints:");
    for (uint32_t port : ports) {
      absl::StrAppend(&yaml, "\n      - endpoint: { address: { socket_address: ",
                      "{ address: 127.0.0.1, port_value: ", port, " } } }");
    }
  }
  absl::StrAppend(&yaml, "\n");
  return yaml;
}

// Keep-alive clients, each on its own thread, sending GETs round robin over `paths` until
// stopped. A socket error (reset, close mid-response, timeout) and a non-2xx response are
// failures; a connection the proxy closes cleanly between requests is not (the client
// reconnects). Tallies which upstream answered each path.
class LoadLoop {
 public:
  LoadLoop(uint32_t port, std::vector<std::string> paths, int clients)
      : port_(port), paths_(std::move(paths)) {
    for (int i = 0; i < clients; i++) {
      threads_.emplace_back([this, i] { run(i); });
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
  uint64_t failures() const { return failures_.load(); }
  // How many responses to `path` came from `upstream` so far.
  uint64_t answered(const std::string& path, const std::string& upstream) {
    std::lock_guard<std::mutex> lock(mutex_);
    return answered_[{path, upstream}];
  }
  std::string failureSamples() {
    std::lock_guard<std::mutex> lock(mutex_);
    return absl::StrJoin(failure_samples_, "\n");
  }
  // Waits until `count` more requests completed (failed or not): the loop is running.
  testing::AssertionResult waitForMoreRequests(uint64_t count) {
    const uint64_t target = requests() + count;
    return Integration::waitUntil([&] { return requests() >= target; }, 20s,
                                  absl::StrCat(count, " more requests of the load loop"));
  }
  // Waits until the loop saw `path` answered by `upstream` after this call.
  testing::AssertionResult waitForAnswer(const std::string& path, const std::string& upstream) {
    const uint64_t before = answered(path, upstream);
    return Integration::waitUntil(
        [&] { return answered(path, upstream) > before; }, 20s,
        absl::StrCat("the load loop to see ", path, " answered by ", upstream));
  }

 private:
  void fail(const std::string& what) {
    failures_++;
    std::lock_guard<std::mutex> lock(mutex_);
    if (failure_samples_.size() < 10) {
      failure_samples_.push_back(what);
    }
  }

  void run(int client_index) {
    HttpClientPtr client;
    for (size_t i = client_index; !stop_; i++) {
      if (client == nullptr) {
        absl::StatusOr<HttpClientPtr> connected = HttpClient::connect(port_);
        if (!connected.ok()) {
          fail(absl::StrCat("connect: ", connected.status().ToString()));
          continue;
        }
        client = std::move(*connected);
      }
      HttpRequest request;
      request.path = paths_[i % paths_.size()];
      absl::StatusOr<HttpResponse> response = client->request(request);
      requests_++;
      if (!response.ok()) {
        fail(absl::StrCat(request.path, ": ", response.status().ToString()));
        client.reset();
        continue;
      }
      if (response->status < 200 || response->status >= 300) {
        fail(absl::StrCat(request.path, ": HTTP ", response->status, " ", response->body));
      } else {
        std::lock_guard<std::mutex> lock(mutex_);
        answered_[{request.path, response->header("x-upstream")}]++;
      }
      if (!response->keep_alive) {
        client.reset();
      }
    }
  }

  const uint32_t port_;
  const std::vector<std::string> paths_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> failures_{0};
  std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, uint64_t> answered_;
  std::vector<std::string> failure_samples_;
  std::vector<std::thread> threads_;
};

class ControlPlaneE2eTest : public testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"upstream-a", "upstream-b", "upstream-c"}) {
      FakeUpstreamOptions options;
      options.name = name;
      absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
      ASSERT_TRUE(upstream.ok()) << upstream.status();
      upstreams_[name] = std::move(*upstream);
    }
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- control-plane-stub log ----\n" << control_plane_.log();
    }
    // The proxy first (its stream ends), then the control plane.
    proxy_.reset();
    control_plane_.kill();
  }

  uint32_t port(const std::string& upstream) { return upstreams_[upstream]->port(); }

  // The demo's shape: /service/1 -> service1, /service/2 -> service2.
  SnapshotSpec demo(const std::string& version, const std::string& service1_upstream,
                    const std::string& service2_upstream) {
    SnapshotSpec spec;
    spec.version = version;
    spec.listener_port = listener_port_.port();
    spec.routes = {{"/service/1", "service1"}, {"/service/2", "service2"}};
    spec.clusters = {{"service1", {port(service1_upstream)}},
                     {"service2", {port(service2_upstream)}}};
    return spec;
  }

  // Starts the control plane serving `spec`, then the proxy against it, and waits until the
  // proxy is ready (/ready 200: every xDS type answered and the listener active).
  testing::AssertionResult startAll(const SnapshotSpec& spec) {
    if (auto started = control_plane_.start(snapshotYaml(spec)); !started) {
      return started;
    }
    ProxyOptions options;
    options.bootstrap_yaml = proxyBootstrap(control_plane_.xdsPort());
    options.concurrency = 2;
    options.drain_time_s = 2;
    proxy_ = std::make_unique<ProxyProcess>(options);
    return proxy_->start(30s);
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

  absl::StatusOr<HttpResponse> get(const std::string& path) {
    HttpRequest request;
    request.path = path;
    return Integration::httpRequest(listener_port_.port(), request, 10s);
  }

  // Which upstream answered `path` on a fresh connection ("HTTP <status>" otherwise).
  std::string upstreamFor(const std::string& path) {
    absl::StatusOr<HttpResponse> response = get(path);
    if (!response.ok()) {
      return response.status().ToString();
    }
    if (response->status != 200) {
      return absl::StrCat("HTTP ", response->status);
    }
    return response->header("x-upstream");
  }

  testing::AssertionResult waitForUpstream(const std::string& path, const std::string& upstream,
                                           std::chrono::milliseconds timeout = 20s) {
    std::string last;
    testing::AssertionResult routed =
        Integration::waitUntil([&] { return (last = upstreamFor(path)) == upstream; }, timeout,
                               absl::StrCat(path, " to be answered by ", upstream));
    if (!routed) {
      routed << " (last: " << last << ")";
    }
    return routed;
  }

  // A stat of the proxy (counter or gauge), -1 when it does not export it.
  int64_t stat(const std::string& name) {
    absl::StatusOr<int64_t> value = proxy_->counter(name);
    return value.ok() ? *value : -1;
  }

  std::string typeField(const std::string& type, const std::string& field) {
    absl::StatusOr<google::protobuf::Struct> entry = control_plane_.typeStatus(kNode, type);
    if (!entry.ok()) {
      return entry.status().ToString();
    }
    return XdsIntegration::stringField(*entry, {field});
  }

  std::map<std::string, FakeUpstreamPtr> upstreams_;
  // The port of the proxy's `ingress` listener: reserved (bound with SO_REUSEPORT, never
  // listening) so that no one else gets it, while the proxy's own SO_REUSEPORT sockets bind it.
  PortHolder listener_port_{PortHolder::Mode::ReservedForReusePort};
  ControlPlaneProcess control_plane_;
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(ControlPlaneE2eTest, RoutesTrafficPerSnapshotAndFollowsANewOne) {
  // v1, the demo: /service/1 -> service1 (upstream-a), /service/2 -> service2 (upstream-b).
  ASSERT_TRUE(
      startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b")));
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");
  EXPECT_EQ(upstreamFor("/service/2"), "upstream-b");
  EXPECT_EQ(upstreamFor("/nothing"), "HTTP 404");

  // The control plane's view: the proxy subscribed Envoy's way and ACKed version 1 of each type.
  for (const char* type : {"cds", "eds", "lds", "rds"}) {
    ASSERT_TRUE(control_plane_.waitForAck(kNode, type, /*version=*/"1"));
  }
  absl::StatusOr<google::protobuf::Struct> lds = control_plane_.typeStatus(kNode, "lds");
  ASSERT_TRUE(lds.ok()) << lds.status();
  EXPECT_TRUE(XdsIntegration::field(*lds, {"wildcard"})->bool_value());
  absl::StatusOr<google::protobuf::Struct> eds = control_plane_.typeStatus(kNode, "eds");
  ASSERT_TRUE(eds.ok()) << eds.status();
  const auto& eds_names = XdsIntegration::field(*eds, {"names"})->list_value().values();
  ASSERT_EQ(eds_names.size(), 2);
  EXPECT_EQ(eds_names[0].string_value(), "service1");
  EXPECT_EQ(eds_names[1].string_value(), "service2");

  // v2 swaps the endpoints: the proxy follows without a restart.
  ASSERT_TRUE(put(demo(/*version=*/"2", /*service1=*/"upstream-b", /*service2=*/"upstream-a")));
  ASSERT_TRUE(waitForUpstream("/service/1", "upstream-b"));
  EXPECT_EQ(upstreamFor("/service/2"), "upstream-a");
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "eds", /*version=*/"2"));
  // Only EDS changed: the other types keep version 1 and were not resent.
  EXPECT_EQ(typeField("lds", "acked_version"), "1");
  EXPECT_EQ(typeField("rds", "acked_version"), "1");
  EXPECT_EQ(typeField("cds", "acked_version"), "1");
}

TEST_F(ControlPlaneE2eTest, SnapshotChangesUnderLoadFailNoRequest) {
  ASSERT_TRUE(
      startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b")));
  // Four keep-alive clients alternate between /service/1 and /service/2.
  LoadLoop load(listener_port_.port(), {"/service/1", "/service/2"}, /*clients=*/4);
  ASSERT_TRUE(load.waitForMoreRequests(200));

  // v2, EDS: the endpoints swap.
  ASSERT_TRUE(put(demo(/*version=*/"2", /*service1=*/"upstream-b", /*service2=*/"upstream-a")));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-b"));
  ASSERT_TRUE(load.waitForAnswer("/service/2", "upstream-a"));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "eds", "2"));
  EXPECT_EQ(load.failures(), 0) << "after v2:\n" << load.failureSamples();

  // v3, CDS + EDS + RDS at once: a new cluster service3 (upstream-c) and /service/1 routed to
  // it. Make before break: the control plane sends the route only once the proxy ACKed the
  // cluster and its endpoints (routes are not warmed; sent earlier, they 503 while it warms).
  SnapshotSpec v3 = demo(/*version=*/"3", /*service1=*/"upstream-b", /*service2=*/"upstream-a");
  v3.routes = {{"/service/1", "service3"}, {"/service/2", "service2"}};
  v3.clusters.push_back({"service3", {port("upstream-c")}});
  ASSERT_TRUE(put(v3));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-c"));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "rds", "3"));
  EXPECT_EQ(load.failures(), 0) << "after v3:\n" << load.failureSamples();

  // v4, RDS + CDS removal: /service/1 back to service1, service3 removed. The control plane
  // keeps service3 until the proxy ACKed the route that stopped using it.
  ASSERT_TRUE(put(demo(/*version=*/"4", /*service1=*/"upstream-b", /*service2=*/"upstream-a")));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-b"));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "cds", "4"));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "rds", "4"));
  EXPECT_EQ(load.failures(), 0) << "after v4:\n" << load.failureSamples();

  // v5, EDS scale-out: service2 on two upstreams; both answer.
  SnapshotSpec v5 = demo(/*version=*/"5", /*service1=*/"upstream-b", /*service2=*/"upstream-a");
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

TEST_F(ControlPlaneE2eTest, NackedSnapshotIsVisibleAndThePreviousConfigKeepsServing) {
  ASSERT_TRUE(
      startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b")));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "lds", "1"));

  // v2 adds a listener on a port another socket of this test listens on (without
  // SO_REUSEPORT): the control plane cannot know, the proxy cannot bind it and NACKs.
  PortHolder taken(PortHolder::Mode::Listening);
  SnapshotSpec v2 = demo(/*version=*/"2", /*service1=*/"upstream-a", /*service2=*/"upstream-b");
  v2.extra_listeners = {{"blocked", taken.port()}};
  ASSERT_TRUE(put(v2));

  // /v1/status: the NACK of LDS version 2 with the proxy's message; version 1 stays ACKed.
  std::string nack_message;
  ASSERT_TRUE(Integration::waitUntil(
      [&] {
        absl::StatusOr<google::protobuf::Struct> lds = control_plane_.typeStatus(kNode, "lds");
        if (!lds.ok() || XdsIntegration::stringField(*lds, {"last_nack", "version"}) != "2") {
          return false;
        }
        nack_message = XdsIntegration::stringField(*lds, {"last_nack", "message"});
        return true;
      },
      20s, "the LDS NACK of version 2 in /v1/status"));
  const std::string bind_error =
      absl::StrCat("address: cannot bind '127.0.0.1:", taken.port(), "': Address already in use");
  // (The control plane sends a type's resources sorted by name: `blocked` is index 0.)
  EXPECT_EQ(nack_message, absl::StrCat("resource index 0: blocked: ", bind_error));
  EXPECT_EQ(typeField("lds", "acked_version"), "1");
  EXPECT_EQ(typeField("lds", "pending_nonce"), "");
  // The control plane logged it in one line.
  EXPECT_TRUE(absl::StrContains(control_plane_.log(), "NACK")) << control_plane_.log();

  // The proxy's /config_dump: `blocked` has an error_state with the same reason; `ingress`
  // is still active.
  absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(*proxy_);
  ASSERT_TRUE(dump.ok()) << dump.status();
  const google::protobuf::Struct* blocked = dump->dynamicListener("blocked");
  ASSERT_NE(blocked, nullptr) << dump->json();
  EXPECT_EQ(XdsIntegration::stringField(*blocked, {"error_state", "details"}), bind_error);
  EXPECT_EQ(XdsIntegration::stringField(*blocked, {"error_state", "failed_configuration", "name"}),
            "blocked");
  const google::protobuf::Struct* ingress = dump->dynamicListener("ingress");
  ASSERT_NE(ingress, nullptr) << dump->json();
  EXPECT_EQ(XdsIntegration::stringField(*ingress, {"active_state", "version_info"}), "1");

  // The previous config keeps serving.
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");
  EXPECT_EQ(upstreamFor("/service/2"), "upstream-b");

  // The rejected version is not resent: nothing more went out on the stream.
  const std::string responses = typeField("lds", "responses");
  EXPECT_EQ(upstreamFor("/service/1"), "upstream-a");
  EXPECT_EQ(typeField("lds", "responses"), responses);

  // v3 drops the listener and swaps the endpoints: it is sent and applied normally.
  ASSERT_TRUE(put(demo(/*version=*/"3", /*service1=*/"upstream-b", /*service2=*/"upstream-a")));
  ASSERT_TRUE(waitForUpstream("/service/1", "upstream-b"));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "lds", "3"));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "eds", "3"));
}

TEST_F(ControlPlaneE2eTest, ControlPlaneKilledAndRestartedWhileTrafficFlows) {
  ASSERT_TRUE(
      startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b")));
  ASSERT_TRUE(proxy_->waitForCounterGe("control_plane.connected_state", 1));
  LoadLoop load(listener_port_.port(), {"/service/1", "/service/2"}, /*clients=*/2);
  ASSERT_TRUE(load.waitForMoreRequests(100));

  // SIGKILL: the proxy sees its stream fail and keeps serving its last good config.
  const uint32_t xds_port = control_plane_.xdsPort();
  control_plane_.kill();
  ASSERT_TRUE(Integration::waitUntil([&] { return stat("control_plane.connected_state") == 0; },
                                     20s, "control_plane.connected_state to drop to 0"));
  ASSERT_TRUE(load.waitForMoreRequests(200));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-a"));

  // Restarted on the same port with a new snapshot (v2, endpoints swapped): the proxy
  // reconnects (with its backoff) and picks it up.
  ASSERT_TRUE(control_plane_.start(
      snapshotYaml(demo(/*version=*/"2", /*service1=*/"upstream-b", /*service2=*/"upstream-a")),
      xds_port));
  ASSERT_TRUE(load.waitForAnswer("/service/1", "upstream-b"));
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "eds", "2"));
  ASSERT_TRUE(proxy_->waitForCounterGe("control_plane.connected_state", 1));

  ASSERT_TRUE(load.waitForMoreRequests(100));
  load.stop();
  EXPECT_EQ(load.failures(), 0) << load.failureSamples();
}

TEST_F(ControlPlaneE2eTest, BadSnapshotsAreRefusedAndChangeNothingForTheProxy) {
  ASSERT_TRUE(
      startAll(demo(/*version=*/"1", /*service1=*/"upstream-a", /*service2=*/"upstream-b")));
  for (const char* type : {"cds", "eds", "lds", "rds"}) {
    ASSERT_TRUE(control_plane_.waitForAck(kNode, type, /*version=*/"1"));
  }
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
  // take every listener, route, cluster and endpoint away from the proxy. 400, saying how to
  // ask for that on purpose.
  for (const char* empty : {"", "{}", "# nothing to see\n", "version: \"2\"\n"}) {
    response = control_plane_.putSnapshot(empty);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 400) << "body: '" << empty << "'";
    EXPECT_EQ(response->body,
              "the snapshot has no resources: serving it would remove every listener, route, "
              "cluster and endpoint from the clients it serves (PUT with ?allow_empty=true to "
              "do that on purpose)\n");
  }

  // Nothing changed: the served snapshot is still version 1, nothing was sent to the proxy,
  // the proxy saw no update, and traffic goes where it went.
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

  // Asked for explicitly, the empty snapshot is served: the proxy lets its listener go.
  response = control_plane_.putSnapshot("version: \"3\"\n", "allow_empty=true");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200) << response->body;
  ASSERT_TRUE(control_plane_.waitForAck(kNode, "lds", /*version=*/"3"));
  EXPECT_TRUE(
      Integration::waitUntil([&] { return stat("listener_manager.total_listeners_active") == 0; },
                             20s, "the proxy to remove its listener"));
}

}  // namespace
}  // namespace Proxy::ControlPlaneE2e
