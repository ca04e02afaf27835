#include "control_plane_stub/snapshot_cache_impl.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "control_plane_stub/snapshot_loader.h"

namespace Proxy::ControlPlane {

absl::StatusOr<SetSnapshotResult> SnapshotCacheImpl::setSnapshot(SnapshotFile file) {
  absl::Status consistent = checkConsistency(file);
  if (!consistent.ok()) {
    return consistent;
  }
  const std::string node = file.node();
  SetSnapshotResult result;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = snapshots_.find(node);
    const Snapshot* previous = it == snapshots_.end() ? nullptr : it->second.get();
    // Built under the lock so that two concurrent setters cannot both build on the same
    // previous snapshot; building is cheap next to how rarely snapshots change.
    SnapshotConstSharedPtr snapshot = Snapshot::create(std::move(file), previous);
    if (previous != nullptr && previous->version() == snapshot->version()) {
      if (previous->sameContents(*snapshot)) {
        result.snapshot = it->second;
        return result;
      }
      return absl::FailedPreconditionError(
          absl::StrCat("version '", snapshot->version(), "' is already served",
                       node.empty() ? std::string() : absl::StrCat(" to node '", node, "'"),
                       " with different resources; change the version so that clients see "
                       "the update"));
    }
    snapshots_[node] = snapshot;
    result.changed = true;
    result.snapshot = std::move(snapshot);
  }
  notifyAll();
  return result;
}

absl::Status SnapshotCacheImpl::removeSnapshot(const std::string& node) {
  if (node.empty()) {
    return absl::InvalidArgumentError("the default snapshot cannot be removed, only replaced");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (snapshots_.erase(node) == 0) {
      return absl::NotFoundError(absl::StrCat("no snapshot for node '", node, "'"));
    }
  }
  notifyAll();
  return absl::OkStatus();
}

SnapshotConstSharedPtr SnapshotCacheImpl::snapshotFor(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = snapshots_.find(node_id);
  if (it == snapshots_.end()) {
    it = snapshots_.find(std::string(kDefaultNode));
  }
  return it == snapshots_.end() ? nullptr : it->second;
}

std::vector<SnapshotConstSharedPtr> SnapshotCacheImpl::snapshots() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<SnapshotConstSharedPtr> out;
  for (const auto& [node, snapshot] : snapshots_) {
    out.push_back(snapshot);
  }
  return out;
}

void SnapshotCacheImpl::addStream(const std::shared_ptr<StreamWatcher>& stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  streams_[stream->id()] = stream;
}

void SnapshotCacheImpl::removeStream(uint64_t stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  streams_.erase(stream_id);
}

std::vector<std::shared_ptr<StreamWatcher>> SnapshotCacheImpl::streams() const {
  std::vector<std::shared_ptr<StreamWatcher>> out;
  std::lock_guard<std::mutex> lock(mutex_);
  out.reserve(streams_.size());
  for (const auto& [id, weak] : streams_) {
    if (auto stream = weak.lock()) {
      out.push_back(std::move(stream));
    }
  }
  return out;
}

void SnapshotCacheImpl::recordNack(NackRecord nack) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto key = std::make_pair(nack.node, nack.type_url);
  nacks_[std::move(key)] = std::move(nack);
}

std::vector<NackRecord> SnapshotCacheImpl::nacks() const {
  std::vector<NackRecord> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, nack] : nacks_) {
      out.push_back(nack);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const NackRecord& a, const NackRecord& b) { return a.time < b.time; });
  return out;
}

void SnapshotCacheImpl::notifyAll() {
  // Every stream re-evaluates: one that is not served by the changed snapshot finds nothing
  // to send. Simpler than tracking which node each stream belongs to, and setting a snapshot
  // is rare next to the cost of a look per stream.
  for (const std::shared_ptr<StreamWatcher>& stream : streams()) {
    stream->onSnapshotChanged();
  }
}

}  // namespace Proxy::ControlPlane
