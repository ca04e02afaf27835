#pragma once

// Shared by control_plane_integration_test.cc (the control plane in-process) and
// control_plane_binary_test.cc (the control-plane-stub binary): helpers and both fixtures.

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

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

inline size_t countOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    count++;
  }
  return count;
}

// Threads of this process, from /proc/self/task.
inline size_t threadCount() {
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

inline void send(XdsTestStream& stream, const google::protobuf::Message& request) {
  stream.send(request.SerializeAsString());
}
// The next SotW response on `stream` as one line, or why there is none.
inline std::string next(XdsTestStream& stream) {
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
inline std::string nextDelta(XdsTestStream& stream) {
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

}  // namespace Proxy::ControlPlane
