#pragma once

// The real `control-plane-stub` binary as a child process of a test, next to the real proxy
// (ProxyProcess): started with a snapshot file on 127.0.0.1 (port 0, or a given xDS port to
// restart on the same address), its ports read back from --port-file, driven through its
// admin API (PUT/GET /v1/snapshot, GET /v1/status). kill() is SIGKILL of the one PID it
// spawned; the destructor does the same if it still runs. Not thread-safe: the test thread only.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"
#include "test/integration/control_plane/child_process.h"
#include "test/integration/http_client.h"

namespace Proxy::ControlPlaneE2e {

using namespace std::chrono_literals;

class ControlPlaneProcess {
 public:
  ControlPlaneProcess();
  ~ControlPlaneProcess();
  ControlPlaneProcess(const ControlPlaneProcess&) = delete;
  ControlPlaneProcess& operator=(const ControlPlaneProcess&) = delete;

  // The binary under test: $CONTROL_PLANE_BINARY if set, else the build's.
  static std::string binaryPath();

  // Writes `snapshot_yaml` to the snapshot file, spawns the binary serving it (xDS on
  // 127.0.0.1:`xds_port`, 0 = any; admin on a free port) and waits for the port file.
  testing::AssertionResult start(const std::string& snapshot_yaml, uint32_t xds_port = 0,
                                 std::chrono::milliseconds timeout = 20s);
  // Flags added to the command line of the next start() (e.g. --tls-cert ...).
  void setExtraArgs(std::vector<std::string> args) { extra_args_ = std::move(args); }
  // SIGKILL and reap: the process gets no chance to say goodbye to its streams.
  void kill();
  // SIGTERM; succeeds when the process exits 0.
  testing::AssertionResult stop(std::chrono::milliseconds timeout = 20s);
  bool running() const { return child_ != nullptr && child_->running(); }

  uint32_t xdsPort() const { return xds_port_; }
  uint32_t adminPort() const { return admin_port_; }
  // What the process logged (stderr) since its last start.
  std::string log() const;

  // The admin API.
  // PUT /v1/snapshot, with `query` (e.g. "allow_empty=true") when given.
  absl::StatusOr<Integration::HttpResponse> putSnapshot(std::string_view yaml,
                                                        std::string_view query = "");
  absl::StatusOr<Integration::HttpResponse> getSnapshot();
  // GET /v1/status, parsed.
  absl::StatusOr<google::protobuf::Struct> status();
  // The entry of type `type` ("lds", "rds", "cds", "eds") of `node`'s open stream in
  // /v1/status ({type, names, sent_version, pending_nonce, acked_version, last_nack, ...}, plus
  // the stream's "requests" and "responses" counts), or NotFound.
  absl::StatusOr<google::protobuf::Struct> typeStatus(std::string_view node, std::string_view type);
  // Every such entry: a client with per-type streams may open several streams of one type
  // (Envoy opens one EDS stream per cluster). Empty when none.
  absl::StatusOr<std::vector<google::protobuf::Struct>> typeStatuses(std::string_view node,
                                                                     std::string_view type);
  // The union of the names those entries subscribe to, sorted.
  absl::StatusOr<std::vector<std::string>> subscribedNames(std::string_view node,
                                                           std::string_view type);
  // Polls /v1/status until `node` has ACKed `version` of `type` (on every stream of the type).
  testing::AssertionResult waitForAck(std::string_view node, std::string_view type,
                                      std::string_view version,
                                      std::chrono::milliseconds timeout = 20s);

 private:
  absl::StatusOr<Integration::HttpResponse> admin(std::string_view method, std::string_view path,
                                                  std::string_view body);

  std::string dir_;
  std::string snapshot_path_;
  std::string port_file_;
  std::string stderr_path_;
  std::unique_ptr<ControlPlane::TestUtil::ChildProcess> child_;
  uint32_t xds_port_ = 0;
  uint32_t admin_port_ = 0;
  std::vector<std::string> extra_args_;
};

}  // namespace Proxy::ControlPlaneE2e
