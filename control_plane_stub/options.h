#pragma once

// The command line of `control-plane-stub`.

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "control_plane_stub/snapshot_loader.h"

namespace Proxy::ControlPlane {

struct Options {
  std::string xds_address = "127.0.0.1:18000";    // --xds-address (port 0: pick one)
  std::string admin_address = "127.0.0.1:18001";  // --admin-address (port 0: pick one)
  std::string snapshot_path;                      // --snapshot: loaded at start, then watched
  std::string node_id;    // --node-id: the node the --snapshot file is for when it names none
  std::string port_file;  // --port-file: "xds=HOST:PORT admin=HOST:PORT\n" once ready
  ValidationMode validation = ValidationMode::Proxy;  // --validation proxy|basic
  std::chrono::milliseconds watch_interval{1000};     // --watch-interval-ms (0: no reload)
  std::string log_level = "info";                     // --log-level
  // --max-snapshot-bytes: the largest PUT /v1/snapshot body (413 beyond) and --snapshot file.
  uint64_t max_snapshot_bytes = kDefaultMaxSnapshotBytes;
  // --tls-cert / --tls-key: serve xDS over TLS with this certificate chain and key (PEM
  // files); --tls-client-ca: and require client certificates that chain to this CA (mTLS).
  std::string tls_cert_path;
  std::string tls_key_path;
  std::string tls_client_ca_path;
  bool help = false;
};

absl::StatusOr<Options> parseOptions(int argc, char** argv);
std::string usage(const char* argv0);

// "127.0.0.1:18000" or "[::1]:18000" -> ("127.0.0.1", 18000). The port may be 0.
absl::StatusOr<std::pair<std::string, uint32_t>> splitHostPort(const std::string& address);

}  // namespace Proxy::ControlPlane
