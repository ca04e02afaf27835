#pragma once

// What the end-to-end tests of a data plane against a management server share: which data plane
// (our proxy, or the real Envoy) and which xDS mode (ADS SotW, ADS Delta, per-type SotW
// streams), the bootstrap each one gets (only dynamic_resources), snapshots in
// control-plane-stub's format (which go-control-plane's example reads too), a keep-alive load
// loop, and where deploy/install-peers.sh put the real peers.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "test/integration/proxy_process.h"

namespace Proxy::ControlPlaneE2e {

using namespace std::chrono_literals;

enum class DataPlane { Proxy, Envoy };
enum class XdsMode {
  AdsSotw,      // one ADS stream, state of the world
  AdsDelta,     // one ADS stream, DELTA_GRPC
  PerTypeSotw,  // lds_config / cds_config api_config_source GRPC; RDS and EDS likewise
};

std::string name(DataPlane data_plane);  // "Proxy", "Envoy"
std::string name(XdsMode mode);          // "AdsSotw", "AdsDelta", "PerTypeSotw"
// What gtest (and so ctest's test list) prints for a parameter.
void PrintTo(XdsMode mode, std::ostream* out);

// The pinned peers (deploy/install-peers.sh): $ENVOY_BINARY / $GO_CONTROL_PLANE_BINARY, else
// what the script wrote under $PEERS_DIR (default ${XDG_CACHE_HOME:-~/.cache}/xds-proxy-peers).
// An error says how to install them.
absl::StatusOr<std::string> envoyBinary();
absl::StatusOr<std::string> goControlPlaneBinary();

// A config source as a resource names it in `mode`: `{ ads: {} }`, or an api_config_source
// naming the bootstrap's xds_cluster (GRPC), as Envoy needs without ADS.
std::string configSourceYaml(XdsMode mode);

// The bootstrap of a data plane with node `node` whose only resources come from the management
// server on 127.0.0.1:`xds_port` in `mode` (the xds_cluster written the way Envoy users write
// it). The same text for our proxy and for Envoy.
std::string dataPlaneBootstrap(XdsMode mode, uint32_t xds_port, const std::string& node);

// A snapshot: the demo's shape. One HTTP listener `ingress` whose routes come from RDS
// `local_route`, a route per (prefix, cluster), every cluster EDS with one assignment of its
// endpoint ports (named by the cluster, or by `eds_service_names`), and extra listeners.
struct SnapshotSpec {
  std::string version;
  XdsMode mode = XdsMode::AdsSotw;
  uint32_t listener_port = 0;
  std::vector<std::pair<std::string, std::string>> routes;              // prefix -> cluster
  std::vector<std::pair<std::string, std::vector<uint32_t>>> clusters;  // name -> ports
  std::map<std::string, std::string> eds_service_names;  // cluster -> its assignment's name
  std::map<std::string, std::string> connect_timeouts;   // cluster -> "2s" (default "1s")
  std::vector<std::pair<std::string, uint32_t>> extra_listeners;  // name -> port
};
std::string snapshotYaml(const SnapshotSpec& spec);

// A data plane process (our proxy or Envoy, ProxyProcess runs either: both take Envoy's flags)
// and the names of its stats, which differ where our proxy does not yet use Envoy's.
class DataPlaneProcess {
 public:
  DataPlaneProcess(DataPlane kind, XdsMode mode, std::string node, uint32_t xds_port);
  // With this bootstrap instead of dataPlaneBootstrap()'s; start() returns once the admin
  // port is known, without waiting for /ready, when `wait_for_ready` is false.
  DataPlaneProcess(DataPlane kind, XdsMode mode, std::string node, std::string bootstrap_yaml,
                   bool wait_for_ready);

  // Starts it and waits for /ready (every xDS type answered, the listener active).
  testing::AssertionResult start(std::chrono::milliseconds timeout = 30s);
  DataPlane kind() const { return kind_; }
  const std::string& node() const { return node_; }
  Integration::ProxyProcess& process() { return *process_; }

  // A stat (counter or gauge); -1 when the process does not export it.
  int64_t stat(const std::string& name);
  testing::AssertionResult waitForStat(const std::string& name, int64_t at_least,
                                       std::chrono::milliseconds timeout = 20s);
  // The update_success counter of each type for `spec`'s listener, route configuration and
  // clusters: LDS and CDS are Envoy's names in both; Envoy counts RDS per HTTP connection
  // manager (http.<stat_prefix>.rds.<name>.) and EDS per cluster (cluster.<name>.), our proxy
  // per route configuration (http.rds.<name>.) and once for EDS (cluster_manager.eds.).
  std::vector<std::string> updateSuccessStats(const SnapshotSpec& spec) const;
  // The connected_state gauges: one per client in our proxy and in Envoy's ADS; Envoy's
  // per-type subscriptions each have their own (LDS's and CDS's are checked).
  std::vector<std::string> connectedStateStats() const;
  // Every connected_state gauge is `value`.
  testing::AssertionResult waitForConnectedState(int64_t value,
                                                 std::chrono::milliseconds timeout = 20s);

 private:
  const DataPlane kind_;
  const XdsMode mode_;
  const std::string node_;
  std::unique_ptr<Integration::ProxyProcess> process_;
};

// Keep-alive clients, each on its own thread, sending GETs round robin over `paths` until
// stopped. A socket error (reset, close mid-response, timeout) and a non-2xx response are
// failures; a connection the data plane closes cleanly between requests is not (the client
// reconnects). Tallies which upstream answered each path.
class LoadLoop {
 public:
  LoadLoop(uint32_t port, std::vector<std::string> paths, int clients);
  ~LoadLoop();

  void stop();
  uint64_t requests() const { return requests_.load(); }
  uint64_t failures() const { return failures_.load(); }
  // How many responses to `path` came from `upstream` so far.
  uint64_t answered(const std::string& path, const std::string& upstream);
  std::string failureSamples();
  // Waits until `count` more requests completed (failed or not): the loop is running.
  testing::AssertionResult waitForMoreRequests(uint64_t count);
  // Waits until the loop saw `path` answered by `upstream` after this call.
  testing::AssertionResult waitForAnswer(const std::string& path, const std::string& upstream);

 private:
  void fail(const std::string& what);
  void run(int client_index);

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

// Which upstream answered GET `path` on a fresh connection to 127.0.0.1:`port` (its
// x-upstream header), "HTTP <status>" for another status, or the error.
std::string upstreamFor(uint32_t port, const std::string& path);
// Polls upstreamFor() until it is `upstream`.
testing::AssertionResult waitForUpstream(uint32_t port, const std::string& path,
                                         const std::string& upstream,
                                         std::chrono::milliseconds timeout = 20s);

}  // namespace Proxy::ControlPlaneE2e
