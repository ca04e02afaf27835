#pragma once

// The snapshot cache: the snapshot per node id (plus a default for nodes without one), the
// open streams that serve them, and the NACKs clients sent. Setting a snapshot tells every
// open stream, which then sends whatever its client has not got yet.
//
// Threads: every method is safe from any thread (the admin API and the file watcher call it on
// the main thread, the streams on gRPC's threads). The cache never calls a stream while holding
// its own lock; a stream may call the cache while holding the stream's lock (lock order:
// stream, then cache).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane_stub/resource_kind.h"
#include "control_plane_stub/snapshot.h"
#include "control_plane_stub/snapshot_file.pb.h"
#include "proxy/common/time.h"

namespace Proxy::ControlPlane {

// The node key of the default snapshot.
inline constexpr std::string_view kDefaultNode = "";

// A client rejected a response.
struct NackRecord {
  std::string node;
  std::string type_url;
  std::string version;  // the version that was rejected
  std::string nonce;
  std::string message;  // error_detail.message
  SystemTime time;
};

// One resource type on one stream.
struct TypeStatus {
  std::string type_url;
  bool wildcard = false;
  std::vector<std::string> names;  // explicitly subscribed names, sorted
  std::string sent_version;        // of the last response (SotW version_info / Delta system)
  std::string pending_nonce;       // the last response's nonce until it is ACKed or NACKed
  std::string acked_version;
  std::optional<SystemTime> acked_at;
  std::optional<NackRecord> last_nack;
  // Delta: how many resources the client is known to hold.
  size_t client_resources = 0;
};

struct StreamStatus {
  uint64_t id = 0;
  std::string node;    // from the first request; "" before it
  std::string method;  // the gRPC method, e.g. ".../StreamAggregatedResources"
  std::string peer;
  bool delta = false;
  SystemTime opened;
  uint64_t requests = 0;
  uint64_t responses = 0;
  std::vector<TypeStatus> types;  // types the client asked for, in send order
};

// An open stream, as the cache sees it. Implemented by the gRPC layer.
class StreamWatcher {
 public:
  virtual ~StreamWatcher() = default;
  virtual uint64_t id() const = 0;
  // The snapshot serving this stream may have changed. Called on the thread that set the
  // snapshot, never under the cache's lock.
  virtual void onSnapshotChanged() = 0;
  virtual StreamStatus status() const = 0;
};

struct SetSnapshotResult {
  // False when the snapshot equals the current one for its node (same version and contents):
  // nothing was sent.
  bool changed = false;
  SnapshotConstSharedPtr snapshot;
};

class SnapshotCache {
 public:
  virtual ~SnapshotCache() = default;

  // Installs `file` for `file.node()` ("" = the default) and tells every stream. The file must
  // be parsed and validated (snapshot_loader.h); the cache itself runs checkConsistency() so
  // that no inconsistent snapshot is ever served. FailedPrecondition (nothing changes) when it
  // is inconsistent, or when it reuses the current version string with different resources
  // (clients would not see the change).
  virtual absl::StatusOr<SetSnapshotResult> setSnapshot(SnapshotFile file) = 0;
  // Removes a node's own snapshot (its streams fall back to the default). NotFound when there
  // is none; InvalidArgument for the default snapshot itself.
  virtual absl::Status removeSnapshot(const std::string& node) = 0;

  // The snapshot serving `node_id`: its own, else the default; null when there is neither.
  virtual SnapshotConstSharedPtr snapshotFor(const std::string& node_id) const = 0;
  // Every stored snapshot, by node key.
  virtual std::vector<SnapshotConstSharedPtr> snapshots() const = 0;

  // Streams register when they open and unregister when they are done. The cache keeps only a
  // weak reference.
  virtual void addStream(const std::shared_ptr<StreamWatcher>& stream) = 0;
  virtual void removeStream(uint64_t stream_id) = 0;
  virtual std::vector<std::shared_ptr<StreamWatcher>> streams() const = 0;

  virtual void recordNack(NackRecord nack) = 0;
  // The last NACK per (node, type url), oldest first.
  virtual std::vector<NackRecord> nacks() const = 0;
};

using SnapshotCachePtr = std::unique_ptr<SnapshotCache>;

}  // namespace Proxy::ControlPlane
