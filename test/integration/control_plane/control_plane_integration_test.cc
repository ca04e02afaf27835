// The control plane over real gRPC and real HTTP on 127.0.0.1 port 0: the ControlPlane runs
// in-process on its own dispatcher thread (as in the binary), clients are gRPC callback-API
// streams written here, the admin API is spoken to with the integration HttpClient (llhttp).
// The last tests run the control-plane-stub binary itself.

#include <dirent.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "control_plane_stub/control_plane.h"
#include "control_plane_stub/xds_server.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "test/integration/control_plane/child_process.h"
#include "test/integration/control_plane/xds_test_client.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"
#include "test/unit/control_plane/control_plane_test_util.h"

namespace Proxy::ControlPlane {
namespace {

using namespace std::chrono_literals;
using Integration::HttpRequest;
using Integration::HttpResponse;
using Integration::waitUntil;
using TestUtil::deltaRequest;
using TestUtil::snapshotYaml;
using TestUtil::sotwRequest;
using TestUtil::withError;
using TestUtil::XdsTestChannel;
using TestUtil::XdsTestStream;

constexpr auto kTimeout = 20s;
constexpr std::string_view kLdsMethod =
    "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners";
constexpr std::string_view kDeltaEdsMethod =
    "/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints";

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

size_t countOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    count++;
  }
  return count;
}

// Threads of this process, from /proc/self/task.
size_t threadCount() {
  size_t count = 0;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) {
    return 0;
  }
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') {
      count++;
    }
  }
  ::closedir(dir);
  return count;
}

void send(XdsTestStream& stream, const google::protobuf::Message& request) {
  stream.send(request.SerializeAsString());
}
// The next SotW response on `stream` as one line, or why there is none.
std::string next(XdsTestStream& stream) {
  std::optional<std::string> bytes = stream.next(kTimeout);
  if (!bytes.has_value()) {
    return "no response";
  }
  envoy::service::discovery::v3::DiscoveryResponse response;
  if (!response.ParseFromString(*bytes)) {
    return "undecodable response";
  }
  return TestUtil::describe(response);
}
std::string nextDelta(XdsTestStream& stream) {
  std::optional<std::string> bytes = stream.next(kTimeout);
  if (!bytes.has_value()) {
    return "no response";
  }
  envoy::service::discovery::v3::DeltaDiscoveryResponse response;
  if (!response.ParseFromString(*bytes)) {
    return "undecodable response";
  }
  return TestUtil::describe(response);
}

class ControlPlaneIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.xds_address = "127.0.0.1:0";
    options.admin_address = "127.0.0.1:0";
    dispatcher_ = std::make_unique<Event::DispatcherImpl>("main", time_source_);
    control_plane_ = std::make_unique<ControlPlane>(options, *dispatcher_);
    absl::Status started = control_plane_->start();
    ASSERT_TRUE(started.ok()) << started;
    thread_ = std::thread([this] { dispatcher_->run(Event::Dispatcher::RunType::RunUntilExit); });
    channel_ = std::make_unique<XdsTestChannel>(control_plane_->xdsAddress());
  }

  void TearDown() override {
    channel_.reset();
    if (thread_.joinable()) {
      dispatcher_->post([this] {
        control_plane_->shutdown();
        dispatcher_->exit();
      });
      thread_.join();
    }
    control_plane_.reset();
    dispatcher_.reset();
  }

  HttpResponse admin(const std::string& method, const std::string& path,
                     const std::string& body = "") {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.host = "127.0.0.1";
    request.body = body;
    absl::StatusOr<HttpResponse> response =
        Integration::httpRequest(control_plane_->adminPort(), request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse();
  }

  // GET /v1/status. (Read as text: google.protobuf.Struct cannot be used in TSAN builds, see
  // control_plane_stub/json_writer.h; the typed status is checked through the cache.)
  std::string status() {
    HttpResponse response = admin("GET", "/v1/status");
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(response.header("content-type"), "application/json");
    return response.body;
  }

  // The status of `node`'s first stream's `type` ("cds"...), from the cache (in-process).
  std::optional<TypeStatus> typeStatus(const std::string& node, ResourceKind kind) {
    for (const auto& stream : control_plane_->cache().streams()) {
      StreamStatus s = stream->status();
      if (s.node != node) {
        continue;
      }
      for (const TypeStatus& t : s.types) {
        if (t.type_url == typeUrl(kind)) {
          return t;
        }
      }
    }
    return std::nullopt;
  }

  testing::AssertionResult waitForAck(const std::string& node, ResourceKind kind,
                                      const std::string& version) {
    return waitUntil(
        [&] {
          auto t = typeStatus(node, kind);
          return t.has_value() && t->acked_version == version && t->pending_nonce.empty();
        },
        kTimeout,
        absl::StrCat(node, " to ACK ", std::string(shortName(kind)), " version ", version));
  }

  RealTimeSource time_source_;
  std::unique_ptr<Event::DispatcherImpl> dispatcher_;
  std::unique_ptr<ControlPlane> control_plane_;
  std::thread thread_;
  std::unique_ptr<XdsTestChannel> channel_;
};

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

  // Every ACK is recorded.
  for (ResourceKind kind : kAllResourceKinds) {
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
  send(ads, sotwRequest("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", "",
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
      "rds": "1"
    },
    "resource_counts": {
      "cds": 2,
      "eds": 2,
      "lds": 1,
      "rds": 1
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

// --- The binary ----------------------------------------------------------------------------

class ControlPlaneBinaryTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/control_plane_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void writeSnapshot(const std::string& text) {
    // Write then rename, as editors and deploy tools do.
    std::ofstream(dir_ + "/snapshot.yaml.tmp") << text;
    std::filesystem::rename(dir_ + "/snapshot.yaml.tmp", dir_ + "/snapshot.yaml");
  }
  std::string log() const { return readFile(dir_ + "/stderr.log"); }

  // Starts the binary with `args` after the address and port-file flags, and waits for its
  // port file; sets admin_port_. A failure ends the test.
  void startStub(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--xds-address", "127.0.0.1:0", "--admin-address",
                                    "127.0.0.1:0",   "--port-file", dir_ + "/ports"};
    all.insert(all.end(), args.begin(), args.end());
    stub_ = std::make_unique<TestUtil::ChildProcess>(CONTROL_PLANE_BINARY, all,
                                                     dir_ + "/stdout.log", dir_ + "/stderr.log");
    std::string ports;
    ASSERT_TRUE(waitUntil(
        [&] {
          ports = readFile(dir_ + "/ports");
          return !ports.empty() || !stub_->running();
        },
        kTimeout, "the port file"))
        << log();
    const size_t at = ports.find("admin=127.0.0.1:");
    ASSERT_NE(at, std::string::npos) << ports << log();
    admin_port_ = static_cast<uint32_t>(std::stoul(ports.substr(at + 16)));
  }

  // One request to the stub's admin API on a fresh connection; bodies are kept whole.
  HttpResponse admin(const std::string& method, const std::string& path,
                     const std::string& body = "",
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    absl::StatusOr<Integration::HttpClientPtr> client =
        Integration::HttpClient::connect(admin_port_);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) {
      return {};
    }
    (*client)->setTimeout(kTimeout);
    (*client)->setBodyKeepLimit(64 << 20);
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.host = "127.0.0.1";
    request.body = body;
    request.headers = std::move(headers);
    absl::StatusOr<HttpResponse> response = (*client)->request(request);
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status();
    return response.ok() ? *response : HttpResponse();
  }

  // Peak resident memory of the stub (VmHWM), in KiB.
  uint64_t stubPeakRssKb() const {
    const std::string status = readFile(absl::StrCat("/proc/", stub_->pid(), "/status"));
    const size_t at = status.find("VmHWM:");
    return at == std::string::npos ? 0 : std::stoull(status.substr(at + 6));
  }

  std::string dir_;
  std::unique_ptr<TestUtil::ChildProcess> stub_;
  uint32_t admin_port_ = 0;
};

// Under AddressSanitizer, freed memory sits in a quarantine and shadow memory counts towards
// RSS: memory bounds are only asserted in normal builds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif

// "Billion laughs": ten levels of anchors, each a list of ten aliases of the level below, in a
// field the schema accepts anything in (a cluster's metadata is a google.protobuf.Struct).
// 600 bytes of text that expand to 10^10 nodes.
std::string aliasBomb(const std::string& version) {
  std::string yaml = absl::StrCat("version: \"", version, R"("
resources:
  clusters:
  - name: bomb
    type: STATIC
    connect_timeout: 1s
    metadata:
      filter_metadata:
        laughs:
          l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
)");
  for (int level = 1; level <= 9; level++) {
    const std::string below = absl::StrCat("*l", level - 1);
    absl::StrAppend(&yaml, "          l", level, ": &l", level, " [", below);
    for (int i = 1; i < 10; i++) {
      absl::StrAppend(&yaml, ", ", below);
    }
    absl::StrAppend(&yaml, "]\n");
  }
  return yaml;
}

TEST_F(ControlPlaneBinaryTest, ServesReloadsAndStopsOnSigterm) {
  writeSnapshot(snapshotYaml("1"));
  TestUtil::ChildProcess process(
      CONTROL_PLANE_BINARY,
      {"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0", "--snapshot",
       dir_ + "/snapshot.yaml", "--port-file", dir_ + "/ports", "--watch-interval-ms", "50"},
      dir_ + "/stdout.log", dir_ + "/stderr.log");

  // The port file says where it listens, once it serves.
  std::string ports;
  ASSERT_TRUE(waitUntil(
      [&] {
        ports = readFile(dir_ + "/ports");
        return !ports.empty() || !process.running();
      },
      kTimeout, "the port file"));
  ASSERT_TRUE(absl::StartsWith(ports, "xds=127.0.0.1:")) << ports << log();
  const std::string xds = ports.substr(4, ports.find(' ') - 4);
  EXPECT_TRUE(absl::StrContains(log(), "control-plane-stub ready: xds=" + xds));

  XdsTestChannel channel(xds);
  XdsTestStream ads(channel, std::string(kAdsSotwMethod));
  send(ads, sotwRequest(kEndpointTypeUrl, "", {"service1"}, "", "proxy-b"));
  EXPECT_EQ(next(ads), "eds version='1' nonce='1' [service1]");

  // Editing the file pushes the change.
  writeSnapshot(snapshotYaml("2", {{"service1", 9001}, {"service2", 8082}}));
  EXPECT_EQ(next(ads), "eds version='2' nonce='2' [service1]");

  // A broken file is refused with its reason; the previous snapshot keeps serving.
  writeSnapshot("version: \"3\"\nresources:\n  clusters:\n  - name: x\n    typo: 1\n");
  ASSERT_TRUE(waitUntil(
      [&] {
        return absl::StrContains(
            log(),
            "rejected, still serving the previous snapshot: resources.clusters[0]: "
            "unknown field 'typo' (line 4, column 5)");
      },
      kTimeout, "the rejection in the log"));

  // One line per stream open and (after SIGTERM) close, and per ACK.
  send(ads, sotwRequest(kEndpointTypeUrl, "2", {"service1"}, "2"));
  ASSERT_TRUE(waitUntil(
      [&] {
        return absl::StrContains(log(),
                                 "xds ACK: stream=1 node='proxy-b' type=eds version='2' nonce='2'");
      },
      kTimeout, "the ACK in the log"));
  process.signal(SIGTERM);
  EXPECT_EQ(process.waitForExit(kTimeout), std::optional<int>(0));
  EXPECT_TRUE(absl::StrContains(log(), "xds stream 1 open: method=StreamAggregatedResources"));
  EXPECT_TRUE(absl::StrContains(log(), "xds stream 1 closed: node='proxy-b' requests=2"));
  EXPECT_TRUE(absl::StrContains(log(), "control-plane-stub stopped"));
}

TEST_F(ControlPlaneBinaryTest, BadStartsFailWithAMessage) {
  // A snapshot file that does not parse: exit 1, the reason on stderr.
  writeSnapshot("resources:\n  listeners: 7\n");
  TestUtil::ChildProcess bad_file(CONTROL_PLANE_BINARY,
                                  {"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
                                   "--snapshot", dir_ + "/snapshot.yaml"},
                                  dir_ + "/stdout.log", dir_ + "/stderr.log");
  EXPECT_EQ(bad_file.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_TRUE(absl::StrContains(log(), "error: --snapshot '" + dir_ + "/snapshot.yaml': "))
      << log();

  // An unknown flag.
  TestUtil::ChildProcess bad_flag(CONTROL_PLANE_BINARY, {"--no-such-flag"}, dir_ + "/stdout.log",
                                  dir_ + "/stderr.log");
  EXPECT_EQ(bad_flag.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_EQ(log(), "error: unknown or incomplete option '--no-such-flag' (see --help)\n");
}

}  // namespace
}  // namespace Proxy::ControlPlane

namespace Proxy::ControlPlane {
namespace {

TEST_F(ControlPlaneBinaryTest, AliasBombIsRefusedAtOnceAndCostsNoMemory) {
  startStub({});
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("1")).status, 200u);

  // Ten levels of aliases in a PUT: 400 at once, naming the reason and where it happened.
  const std::string bomb = aliasBomb("2");
  ASSERT_LT(bomb.size(), 1024u);
  HttpResponse response = admin("PUT", "/v1/snapshot", bomb);
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(response.body,
            "yaml aliases would add more than 1000000 nodes to the document (limit reached at "
            "line 15, column 55)\n");

  // An alias inside the node it names would be a cycle: refused too.
  // (Not a raw string literal: field_support_test loads those with the proxy's own YAML
  // loader, which has no such guard.)
  response = admin("PUT", "/v1/snapshot",
                   "version: \"3\"\n"
                   "resources:\n"
                   "  clusters:\n"
                   "  - name: loop\n"
                   "    type: STATIC\n"
                   "    connect_timeout: 1s\n"
                   "    metadata: {filter_metadata: {x: {self: &self [*self]}}}\n");
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(response.body,
            "yaml alias at line 7, column 51 names a node that contains it (a cycle)\n");

  // The server answers at once and still serves version 1; the bomb cost no memory.
  response = admin("GET", "/healthz");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.body, "ok\n");
  EXPECT_NE(admin("GET", "/v1/snapshot").body.find("\"version\": \"1\""), std::string::npos);
  if (kRssIsMeaningful) {
    EXPECT_LT(stubPeakRssKb(), 200u * 1024);
  }

  // Aliases that add a few nodes (one cluster's eds_cluster_config shared by the other) are
  // fine.
  std::string shared = snapshotYaml("4");
  const std::string eds = "eds_cluster_config: { eds_config: { ads: {} } }";
  const size_t first = shared.find(eds);
  const size_t second = shared.find(eds, first + 1);
  ASSERT_NE(second, std::string::npos);
  shared.replace(second, eds.size(), "eds_cluster_config: *eds");
  shared.replace(first, eds.size(), "eds_cluster_config: &eds { eds_config: { ads: {} } }");
  response = admin("PUT", "/v1/snapshot", shared);
  EXPECT_EQ(response.status, 200u) << response.body;
}

TEST_F(ControlPlaneBinaryTest, AliasBombInTheSnapshotFileFailsTheStartAndIsNotReloaded) {
  // At start: exit 1 with the reason.
  writeSnapshot(aliasBomb("1"));
  TestUtil::ChildProcess bad_start(CONTROL_PLANE_BINARY,
                                   {"--xds-address", "127.0.0.1:0", "--admin-address",
                                    "127.0.0.1:0", "--snapshot", dir_ + "/snapshot.yaml"},
                                   dir_ + "/stdout.log", dir_ + "/stderr.log");
  EXPECT_EQ(bad_start.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_EQ(log(), absl::StrCat("error: --snapshot '", dir_,
                                "/snapshot.yaml': yaml aliases would add more than 1000000 "
                                "nodes to the document (limit reached at line 15, column 55)\n"));

  // On reload: refused, the previous snapshot keeps serving.
  writeSnapshot(snapshotYaml("1"));
  startStub({"--snapshot", dir_ + "/snapshot.yaml", "--watch-interval-ms", "50"});
  writeSnapshot(aliasBomb("2"));
  ASSERT_TRUE(waitUntil(
      [&] {
        return absl::StrContains(log(),
                                 "rejected, still serving the previous snapshot: yaml aliases "
                                 "would add more than 1000000 nodes to the document");
      },
      kTimeout, "the rejection in the log"))
      << log();
  EXPECT_NE(admin("GET", "/v1/snapshot").body.find("\"version\": \"1\""), std::string::npos);
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);
}

// A snapshot of about `bytes` bytes: one EDS cluster whose ClusterLoadAssignment has as many
// endpoints as it takes, each with a hostname naming its index (padded to about 1 KB) and a
// port derived from it, so any endpoint lost or spliced in shows.
struct BigSnapshot {
  std::string yaml;
  size_t endpoints = 0;
};
BigSnapshot bigSnapshot(const std::string& version, size_t bytes) {
  BigSnapshot big;
  big.yaml = absl::StrCat("version: \"", version, R"("
resources:
  clusters:
  - {name: big, type: EDS, connect_timeout: 1s, eds_cluster_config: {eds_config: {ads: {}}}}
  endpoints:
  - cluster_name: big
    endpoints:
    - lb_endpoints:
)");
  const std::string padding(960, 'x');
  while (big.yaml.size() < bytes) {
    absl::StrAppend(&big.yaml, "      - endpoint: {hostname: endpoint-", big.endpoints, "-",
                    padding, ", address: {socket_address: {address: 127.0.0.1, port_value: ",
                    1 + big.endpoints % 65535, "}}}\n");
    big.endpoints++;
  }
  return big;
}

// What the stub serves (GET /v1/snapshot) is exactly `big`: every endpoint, in order.
testing::AssertionResult servesExactly(const std::string& json, const std::string& version,
                                       const BigSnapshot& big) {
  SnapshotFile served;
  if (!google::protobuf::util::JsonStringToMessage(json, &served).ok()) {
    return testing::AssertionFailure()
           << "GET /v1/snapshot is not a snapshot: " << json.substr(0, 200);
  }
  if (served.version() != version) {
    return testing::AssertionFailure() << "serves version '" << served.version() << "'";
  }
  if (served.resources().endpoints_size() != 1 ||
      served.resources().endpoints(0).endpoints_size() != 1) {
    return testing::AssertionFailure() << "not one locality of one assignment";
  }
  const auto& lb_endpoints = served.resources().endpoints(0).endpoints(0).lb_endpoints();
  if (static_cast<size_t>(lb_endpoints.size()) != big.endpoints) {
    return testing::AssertionFailure()
           << "serves " << lb_endpoints.size() << " endpoints of " << big.endpoints;
  }
  const std::string padding(960, 'x');
  for (int i = 0; i < lb_endpoints.size(); i++) {
    const auto& endpoint = lb_endpoints[i].endpoint();
    if (endpoint.hostname() != absl::StrCat("endpoint-", i, "-", padding) ||
        endpoint.address().socket_address().port_value() != 1u + i % 65535) {
      return testing::AssertionFailure()
             << "endpoint " << i << " is '" << endpoint.hostname().substr(0, 20) << "'";
    }
  }
  return testing::AssertionSuccess();
}

TEST_F(ControlPlaneBinaryTest, BigSnapshotsAreAppliedWholeOrRefusedWith413) {
  constexpr uint64_t kMB = 1000 * 1000;
  constexpr uint64_t kLimit = 16 * 1024 * 1024;
  startStub({"--max-snapshot-bytes", std::to_string(kLimit)});
  const std::string too_big =
      absl::StrCat("request body exceeds the limit of ", kLimit, " bytes (--max-snapshot-bytes)\n");
  const std::string url = absl::StrCat("http://127.0.0.1:", admin_port_, "/v1/snapshot");

  for (uint64_t size : {1 * kMB, 4 * kMB, 8 * kMB, 20 * kMB}) {
    SCOPED_TRACE(absl::StrCat(size / kMB, " MB"));

    // curl sends "Expect: 100-continue" and waits for the interim response before the body
    // (asked for explicitly, whatever this curl's own threshold is).
    const std::string curl_version = absl::StrCat("curl-", size / kMB);
    const BigSnapshot by_curl = bigSnapshot(curl_version, size);
    std::ofstream(dir_ + "/body.yaml") << by_curl.yaml;
    TestUtil::ChildProcess curl(
        "/usr/bin/curl",
        {"-sS", "-X", "PUT", "--data-binary", "@" + dir_ + "/body.yaml", "-H",
         "Expect: 100-continue", "-H", "Content-Type: application/yaml", "-o", dir_ + "/curl-body",
         "-w", "%{http_code}", "--max-time", "60", url},
        dir_ + "/curl-status", dir_ + "/curl-stderr");
    ASSERT_EQ(curl.waitForExit(90s), std::optional<int>(0)) << readFile(dir_ + "/curl-stderr");
    if (size <= kLimit) {
      EXPECT_EQ(readFile(dir_ + "/curl-status"), "200") << readFile(dir_ + "/curl-body");
      EXPECT_TRUE(servesExactly(admin("GET", "/v1/snapshot").body, curl_version, by_curl));
    } else {
      EXPECT_EQ(readFile(dir_ + "/curl-status"), "413");
      EXPECT_EQ(readFile(dir_ + "/curl-body"), too_big);
    }

    // A plain client: no Expect, the whole body written before it reads anything.
    const std::string raw_version = absl::StrCat("raw-", size / kMB);
    const BigSnapshot by_raw = bigSnapshot(raw_version, size);
    HttpResponse response = admin("PUT", "/v1/snapshot", by_raw.yaml);
    if (size <= kLimit) {
      EXPECT_EQ(response.status, 200u) << response.body;
      EXPECT_TRUE(servesExactly(admin("GET", "/v1/snapshot").body, raw_version, by_raw));
    } else {
      EXPECT_EQ(response.status, 413u);
      EXPECT_EQ(response.body, too_big);
      // Refused whole: what served before still serves.
      EXPECT_TRUE(
          servesExactly(admin("GET", "/v1/snapshot").body, "raw-8", bigSnapshot("raw-8", 8 * kMB)));
    }
  }

  // A chunked body (no length announced) over the limit: 413 once the limit is crossed.
  absl::StatusOr<Integration::HttpClientPtr> client = Integration::HttpClient::connect(admin_port_);
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->setTimeout(kTimeout);
  HttpRequest put;
  put.method = "PUT";
  put.path = "/v1/snapshot";
  put.host = "127.0.0.1";
  absl::StatusOr<HttpResponse> chunked = (*client)->chunkedUpload(put, 20 * kMB);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  EXPECT_EQ(chunked->status, 413u);
  EXPECT_EQ(chunked->body, too_big);
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);
}

TEST_F(ControlPlaneBinaryTest, SighupReloadsTheSnapshotFileAndUsrSignalsAreIgnored) {
  // The file is not watched (interval 0): only a signal makes the stub look at it again.
  writeSnapshot(snapshotYaml("1"));
  startStub({"--snapshot", dir_ + "/snapshot.yaml", "--watch-interval-ms", "0"});

  // SIGUSR1 and SIGUSR2 are ignored, each with a line in the log.
  stub_->signal(SIGUSR1);
  ASSERT_TRUE(waitUntil([&] { return absl::StrContains(log(), "caught SIGUSR1: ignored"); },
                        kTimeout, "SIGUSR1 in the log"))
      << log();
  stub_->signal(SIGUSR2);
  ASSERT_TRUE(waitUntil([&] { return absl::StrContains(log(), "caught SIGUSR2: ignored"); },
                        kTimeout, "SIGUSR2 in the log"))
      << log();
  EXPECT_TRUE(stub_->running());
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);

  // SIGHUP reads the snapshot file now.
  writeSnapshot(snapshotYaml("2", {{"service1", 9001}, {"service2", 8082}}));
  stub_->signal(SIGHUP);
  ASSERT_TRUE(waitUntil(
      [&] {
        return admin("GET", "/v1/snapshot").body.find("\"version\": \"2\"") != std::string::npos;
      },
      kTimeout, "version 2 to be served"))
      << log();
  EXPECT_TRUE(absl::StrContains(
      log(), "caught SIGHUP: reloading the snapshot file '" + dir_ + "/snapshot.yaml'"));
  // A bad file on SIGHUP is refused like any reload; the stub keeps serving.
  writeSnapshot("resources:\n  listeners: 7\n");
  stub_->signal(SIGHUP);
  ASSERT_TRUE(waitUntil(
      [&] { return absl::StrContains(log(), "rejected, still serving the previous snapshot"); },
      kTimeout, "the rejection in the log"))
      << log();
  EXPECT_TRUE(stub_->running());
  EXPECT_NE(admin("GET", "/v1/snapshot").body.find("\"version\": \"2\""), std::string::npos);

  // SIGTERM still stops it cleanly.
  stub_->signal(SIGTERM);
  EXPECT_EQ(stub_->waitForExit(kTimeout), std::optional<int>(0));
}

TEST_F(ControlPlaneBinaryTest, SighupWithoutASnapshotFileIsIgnored) {
  startStub({});
  stub_->signal(SIGHUP);
  ASSERT_TRUE(waitUntil(
      [&] { return absl::StrContains(log(), "caught SIGHUP: no --snapshot file, ignored"); },
      kTimeout, "SIGHUP in the log"))
      << log();
  EXPECT_TRUE(stub_->running());
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);
}

TEST_F(ControlPlaneBinaryTest, SnapshotFileOverTheLimitFailsTheStart) {
  writeSnapshot(bigSnapshot("1", 2 * 1024 * 1024).yaml);
  TestUtil::ChildProcess process(
      CONTROL_PLANE_BINARY,
      {"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0", "--snapshot",
       dir_ + "/snapshot.yaml", "--max-snapshot-bytes", "1048576"},
      dir_ + "/stdout.log", dir_ + "/stderr.log");
  EXPECT_EQ(process.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_TRUE(absl::StrContains(log(),
                                "snapshot.yaml': the file is larger than the limit of "
                                "1048576 bytes (--max-snapshot-bytes)\n"))
      << log();
}

}  // namespace
}  // namespace Proxy::ControlPlane
