#pragma once

// go-control-plane's example management server (examples/go-control-plane, built by
// deploy/install-peers.sh) as a child process of a test: started on 127.0.0.1 (port 0), its
// ports read from the two lines it prints, driven through its admin API (PUT /v1/snapshot with
// ?node=, GET /v1/status with the NACKs its callbacks recorded). kill() is SIGKILL of the one
// PID it spawned; the destructor does the same if it still runs. Test thread only.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "test/integration/control_plane/child_process.h"
#include "test/integration/http_client.h"

namespace Proxy::ControlPlaneE2e {

using namespace std::chrono_literals;

class GoControlPlaneProcess {
 public:
  GoControlPlaneProcess();
  ~GoControlPlaneProcess();
  GoControlPlaneProcess(const GoControlPlaneProcess&) = delete;
  GoControlPlaneProcess& operator=(const GoControlPlaneProcess&) = delete;

  // Spawns the server without a default snapshot (each node gets its own with
  // putSnapshot(yaml, node)) and waits until it printed both addresses.
  testing::AssertionResult start(std::chrono::milliseconds timeout = 20s);
  void kill();
  uint32_t xdsPort() const { return xds_port_; }
  // What the server logged (stderr: Go's log package).
  std::string log() const;

  // PUT /v1/snapshot?node=`node`: 200 expected.
  testing::AssertionResult putSnapshot(std::string_view yaml, std::string_view node);

  struct Nack {
    std::string node;
    std::string type_url;
    std::string error_detail;
    bool delta = false;
  };
  // The NACKs GET /v1/status lists, oldest first.
  absl::StatusOr<std::vector<Nack>> nacks();
  // Polls until `node` has NACKed `type_url`; the first such NACK.
  absl::StatusOr<Nack> waitForNack(std::string_view node, std::string_view type_url,
                                   std::chrono::milliseconds timeout = 20s);

 private:
  std::string dir_;
  std::string stdout_path_;
  std::string stderr_path_;
  std::unique_ptr<ControlPlane::TestUtil::ChildProcess> child_;
  uint32_t xds_port_ = 0;
  uint32_t admin_port_ = 0;
};

}  // namespace Proxy::ControlPlaneE2e
