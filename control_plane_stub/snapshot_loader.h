#pragma once

// Snapshot files: YAML or JSON text -> a validated SnapshotFile, the consistency check between
// its resources, and the way back to JSON (GET /v1/snapshot). Pure functions, any thread.
//
// Errors are one line each and name where the problem is, with the proxy's own wording (the
// resources go through proxy/config's YAML loader and validators):
//   resources.clusters[1].lb_policy: invalid value 'ROUND_ROBINN' for enum ...
//   resources.listeners[0].name: duplicate listener name 'ingress' (also resources.listeners[2])
// Parse and validation errors are InvalidArgument (HTTP 400); consistency errors are
// FailedPrecondition (HTTP 409) and list every missing reference.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control_plane_stub/snapshot_file.pb.h"

namespace Proxy::ControlPlane {

using SnapshotFile = proxy::control_plane::v1::SnapshotFile;

enum class ValidationMode {
  // Every resource must pass the proxy's own checks (proxy/config/validation.h): a snapshot
  // the proxy would reject for its contents is refused before any client sees it. API
  // listeners (used by gRPC's xDS clients, never by the proxy) get their HTTP connection
  // manager checked instead.
  Proxy,
  // Parsing, names and consistency only: for Envoy or gRPC clients that use features this
  // proxy does not have.
  Basic,
};

enum class SnapshotFormat { Yaml, Json };

// The default of --max-snapshot-bytes: the largest PUT body or snapshot file accepted.
inline constexpr uint64_t kDefaultMaxSnapshotBytes = 64 * 1024 * 1024;

// Parses and validates one snapshot document. An empty document is an empty snapshot. YAML
// aliases are checked before anything is built from the text (yaml_guard.h): a cycle, or
// aliases adding more than kMaxYamlAliasNodes nodes, is InvalidArgument.
absl::StatusOr<SnapshotFile> parseSnapshot(std::string_view text, SnapshotFormat format,
                                           ValidationMode mode);

// Reads `path` (YAML, or JSON when it ends in .json) and parses it as above. A file larger
// than `max_bytes` is not read:
//   the file is larger than the limit of 1048576 bytes (--max-snapshot-bytes)
absl::StatusOr<SnapshotFile> loadSnapshotFile(const std::string& path, ValidationMode mode,
                                              uint64_t max_bytes = kDefaultMaxSnapshotBytes);

// True when the snapshot has no resource of any type (an empty body, "{}", only a comment, a
// version alone). Served, it would take everything away from every client it serves, so the
// admin API and the file loader refuse it unless asked for it explicitly.
bool hasNoResources(const SnapshotFile& file);

// The references between resources hold: every route_config_name of a listener's HTTP
// connection manager (RDS) names a route configuration of the snapshot, and every EDS cluster
// has a ClusterLoadAssignment named by its eds_cluster_config.service_name (or, when empty, by
// the cluster's name). Otherwise FailedPrecondition naming every missing reference, e.g.
//   listener 'ingress' (resources.listeners[0]): route configuration 'local_route' is not in
//   resources.routes
absl::Status checkConsistency(const SnapshotFile& file);

// The snapshot as JSON in the input's shape (snake_case field names), so it can be PUT back.
std::string snapshotToJson(const SnapshotFile& file);

}  // namespace Proxy::ControlPlane
