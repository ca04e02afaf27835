#pragma once

// SnapshotCache behind one std::mutex (std::mutex, not absl::Mutex: Debian's libabsl has no
// TSAN annotations). The lock guards maps only; snapshots are immutable and shared, streams
// are called after the lock is released.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "control_plane_stub/snapshot_cache.h"

namespace Proxy::ControlPlane {

class SnapshotCacheImpl : public SnapshotCache {
 public:
  SnapshotCacheImpl() = default;

  // SnapshotCache
  absl::StatusOr<SetSnapshotResult> setSnapshot(SnapshotFile file) override;
  absl::Status removeSnapshot(const std::string& node) override;
  SnapshotConstSharedPtr snapshotFor(const std::string& node_id) const override;
  std::vector<SnapshotConstSharedPtr> snapshots() const override;
  void addStream(const std::shared_ptr<StreamWatcher>& stream) override;
  void removeStream(uint64_t stream_id) override;
  std::vector<std::shared_ptr<StreamWatcher>> streams() const override;
  void recordNack(NackRecord nack) override;
  std::vector<NackRecord> nacks() const override;

 private:
  void notifyAll();

  mutable std::mutex mutex_;
  std::map<std::string, SnapshotConstSharedPtr> snapshots_ ABSL_GUARDED_BY(mutex_);
  std::map<uint64_t, std::weak_ptr<StreamWatcher>> streams_ ABSL_GUARDED_BY(mutex_);
  // The last NACK per (node, type url).
  std::map<std::pair<std::string, std::string>, NackRecord> nacks_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace Proxy::ControlPlane
