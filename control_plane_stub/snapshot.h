#pragma once

// A snapshot: the complete configuration for one node (or the default one), as an immutable
// object shared by every stream that serves it. Each resource is serialized once, when the
// snapshot is built; streams only copy or share those bytes (see wire.h).
//
// Versions. A snapshot has a version string (from the file, or derived from the contents). Each
// resource type has its own version: the snapshot's, unless the type's resources are exactly
// those of the snapshot this one replaces, in which case the old type version is kept, so a
// client is not sent resources that did not change. Each resource has a content version (a
// stable hash of its serialization) that Delta xDS uses.
//
// Immutable after create(): safe to read from any thread.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control_plane_stub/resource_kind.h"
#include "control_plane_stub/snapshot_file.pb.h"
#include "google/protobuf/message.h"

namespace Proxy::ControlPlane {

using SnapshotFile = proxy::control_plane::v1::SnapshotFile;

struct Resource {
  std::string name;
  // Points into the snapshot's SnapshotFile.
  const google::protobuf::Message* message = nullptr;
  // The serialized google.protobuf.Any (type_url + deterministic serialization of the message):
  // what responses carry.
  std::string any;
  // 16 hex digits: FNV-1a of the deterministic serialization. Delta's per-resource version.
  std::string version;
};

class Snapshot;
using SnapshotConstSharedPtr = std::shared_ptr<const Snapshot>;

// enable_shared_from_this: a stream that keeps sending clusters of a replaced snapshot (make
// before break, sotw_stream.h) holds that snapshot alive.
class Snapshot : public std::enable_shared_from_this<Snapshot> {
 public:
  // Builds the snapshot of `file`, which must already be validated (names present and unique).
  // `previous` is the snapshot this one replaces for the same node, or null: types whose
  // resources are unchanged keep its type versions.
  static SnapshotConstSharedPtr create(SnapshotFile file, const Snapshot* previous);

  // The file's version, or "auto-" and 16 hex digits of the contents' hash when it had none.
  const std::string& version() const { return version_; }
  // "" for the default snapshot.
  const std::string& node() const { return file_.node(); }
  const SnapshotFile& file() const { return file_; }

  const std::string& typeVersion(ResourceKind kind) const { return types_[index(kind)].version; }
  // A hash of the type's resource names and versions: two snapshots whose types have the same
  // hash hold the same resources of that type.
  uint64_t typeHash(ResourceKind kind) const { return types_[index(kind)].hash; }
  // Sorted by name.
  const std::vector<Resource>& resources(ResourceKind kind) const {
    return types_[index(kind)].resources;
  }
  const Resource* find(ResourceKind kind, std::string_view name) const;
  // DiscoveryResponse.version_info, every resource and type_url, serialized: the part of a SotW
  // response that every stream subscribed to all of the type's resources shares (only the
  // nonce differs).
  const std::shared_ptr<const std::string>& sotwBodyAll(ResourceKind kind) const {
    return types_[index(kind)].sotw_body_all;
  }
  // Same resources of every type as `other` (versions aside).
  bool sameContents(const Snapshot& other) const;

 private:
  struct TypeResources {
    std::vector<Resource> resources;
    std::string version;
    uint64_t hash = 0;
    std::shared_ptr<const std::string> sotw_body_all;
  };

  explicit Snapshot(SnapshotFile file) : file_(std::move(file)) {}

  SnapshotFile file_;
  std::string version_;
  std::array<TypeResources, kResourceKindCount> types_;
};

// The name of a resource message: `name`, or `cluster_name` for a ClusterLoadAssignment.
const std::string& resourceName(ResourceKind kind, const google::protobuf::Message& message);

// The ClusterLoadAssignment an EDS cluster takes its endpoints from: its
// eds_cluster_config.service_name, or its name. "" for a resource that is no EDS cluster.
std::string edsServiceName(const Resource& cluster);

// The resources of `kind` in `file`, in file order.
std::vector<const google::protobuf::Message*> resourcesOf(const SnapshotFile& file,
                                                          ResourceKind kind);

// Fields 1 (version_info), 2 (resources) and 4 (type_url) of a DiscoveryResponse.
std::string encodeSotwBody(std::string_view version, ResourceKind kind,
                           const std::vector<const Resource*>& resources);

}  // namespace Proxy::ControlPlane
