#include "xds_client/type_state.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "spdlog/spdlog.h"

namespace Proxy::Xds {
namespace {

// Only the bytes that share their buffer with other resources are tracked.
bool sharesBuffer(const ResourceBytes& bytes) {
  return bytes.size() != bytes.buffer()->size();
}

}  // namespace

void TypeState::addNames(uint64_t watch_id, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    auto [it, inserted] = name_watches.try_emplace(name);
    WatchIds& ids = it->second;
    auto at = std::lower_bound(ids.begin(), ids.end(), watch_id);
    if (at == ids.end() || *at != watch_id) {
      ids.insert(at, watch_id);
    }
    if (inserted) {
      ++names_generation;
    }
  }
}

void TypeState::removeNames(uint64_t watch_id, const std::vector<std::string>& names) {
  std::vector<const std::string*> unsubscribed;
  for (const auto& name : names) {
    auto it = name_watches.find(name);
    if (it == name_watches.end()) {
      continue;
    }
    WatchIds& ids = it->second;
    auto at = std::lower_bound(ids.begin(), ids.end(), watch_id);
    if (at != ids.end() && *at == watch_id) {
      ids.erase(at);
    }
    if (ids.empty()) {
      name_watches.erase(it);
      ++names_generation;
      unsubscribed.push_back(&name);
    }
  }
  if (wildcard()) {
    // Kept for the wildcard watch; they leave with it.
    cache_has_unnamed = cache_has_unnamed || !unsubscribed.empty();
    return;
  }
  if (cache_has_unnamed) {
    // The last wildcard watch left: what only it wanted goes too.
    for (auto it = cache.begin(); it != cache.end();) {
      if (name_watches.count(it->first) == 0) {
        delta_versions.erase(it->first);
        cacheErase(it++);
      } else {
        ++it;
      }
    }
    cache_has_unnamed = false;
  } else {
    for (const std::string* name : unsubscribed) {
      auto it = cache.find(*name);
      if (it != cache.end()) {
        cacheErase(it);
        delta_versions.erase(*name);
      }
    }
  }
  compactBuffers();
}

bool TypeState::namesAsSent() const {
  return sent_names.size() == name_watches.size() &&
         std::equal(sent_names.begin(), sent_names.end(), name_watches.begin(),
                    [](const std::string& a, const auto& b) { return a == b.first; });
}

bool TypeState::sentName(std::string_view name) const {
  return std::binary_search(sent_names.begin(), sent_names.end(), name, std::less<>());
}

UpdateErrors TypeState::subscribedErrors(const DecodedResponse& response) const {
  UpdateErrors errors;
  for (const auto& error : response.errors) {
    if (!error.name.empty() && !subscribed(error.name)) {
      continue;
    }
    if (error.name.empty()) {
      errors.unnamed = true;
    } else {
      errors.invalid_names.insert(error.name);
    }
    errors.messages.push_back(error.format());
  }
  return errors;
}

size_t TypeState::dropUnsubscribed(std::vector<DecodedResource>& resources) const {
  // "The client will silently ignore any supplied resources that were not explicitly
  // requested."
  if (wildcard()) {
    return 0;
  }
  auto end = std::remove_if(resources.begin(), resources.end(), [&](const DecodedResource& r) {
    return name_watches.count(r.name) == 0;
  });
  const size_t ignored = resources.end() - end;
  resources.erase(end, resources.end());
  return ignored;
}

std::vector<std::string> TypeState::removedNames(const DecodedResponse& response,
                                                 const std::string& stream_label) const {
  std::vector<std::string> removed;
  if (response.delta) {
    for (const auto& name : response.removed) {
      if (cache.count(name) > 0 || name_watches.count(name) > 0) {
        removed.push_back(name);
      }
    }
    return removed;
  }
  if (!type->all_resources_required_in_sotw) {
    return removed;
  }
  if (!response.all_names_known) {
    spdlog::warn("xds: {} {}: not removing any resource: a resource's name could not be read",
                 stream_label, type->short_name);
    return removed;
  }
  absl::flat_hash_set<absl::string_view> present;
  present.reserve(response.resources.size() + response.kept_names.size());
  for (const auto& resource : response.resources) {
    present.insert(resource.name);
  }
  for (const auto& name : response.kept_names) {
    present.insert(name);
  }
  for (const auto& [name, cached] : cache) {
    if (present.count(name) == 0) {
      removed.push_back(name);
    }
  }
  std::sort(removed.begin(), removed.end());  // the cache is unordered
  return removed;
}

void TypeState::updateCache(const std::vector<DecodedResource>& resources,
                            const std::vector<std::string>& removed) {
  // Grown once to its new size: growing step by step, the last step holds the old slots and
  // the new ones at once (10,000 resources: 8,191 and 16,383 slots).
  if (cache.size() + resources.size() > cache.capacity() - cache.capacity() / 8) {
    size_t added = 0;
    for (const auto& resource : resources) {
      added += cache.contains(resource.name) ? 0 : 1;
    }
    cache.reserve(cache.size() + added);
  }
  // SotW: one version for the whole response; Delta: consecutive equal versions share one.
  std::shared_ptr<const std::string> version;
  for (const auto& resource : resources) {
    ResourceBytes bytes = resource.bytes;
    if (bytes == nullptr) {
      bytes = std::make_shared<const std::string>(resource.message->SerializeAsString());
    }
    if (version == nullptr || *version != resource.version) {
      version = std::make_shared<const std::string>(resource.version);
    }
    cachePut(resource.name, CachedResource{std::move(bytes), version});
  }
  for (const auto& name : removed) {
    auto it = cache.find(name);
    if (it != cache.end()) {
      cacheErase(it);
    }
  }
  compactBuffers();
  has_response = true;
  cache_has_unnamed = cache_has_unnamed || wildcard();
}

void TypeState::cachePut(const std::string& name, CachedResource resource) {
  const ResourceBytes& bytes = resource.bytes;
  if (sharesBuffer(bytes)) {
    auto [live, first] = buffer_live_bytes.try_emplace(bytes.buffer().get(), 0);
    live->second += bytes.size();
    if (first) {
      sparse_buffers.push_back(live->first);  // a response's resources may not all be cached
    }
  }
  auto [it, inserted] = cache.try_emplace(name);
  if (!inserted) {
    releaseBytes(it->second.bytes);
  }
  it->second = std::move(resource);
}

void TypeState::cacheErase(absl::flat_hash_map<std::string, CachedResource>::iterator it) {
  releaseBytes(it->second.bytes);
  cache.erase(it);
}

void TypeState::releaseBytes(const ResourceBytes& bytes) {
  if (!sharesBuffer(bytes)) {
    return;
  }
  auto live = buffer_live_bytes.find(bytes.buffer().get());
  ASSERT(live != buffer_live_bytes.end() && live->second >= bytes.size());
  live->second -= bytes.size();
  if (live->second == 0) {
    buffer_live_bytes.erase(live);
  } else if (2 * live->second < bytes.buffer()->size()) {
    sparse_buffers.push_back(live->first);
  }
}

void TypeState::compactBuffers() {
  // The buffers to copy out, each with its copy (a candidate may be gone, or still dense).
  absl::flat_hash_map<const std::string*, std::string> copies;
  for (const std::string* buffer : sparse_buffers) {
    auto live = buffer_live_bytes.find(buffer);
    if (live != buffer_live_bytes.end() && 2 * live->second < buffer->size()) {
      copies.try_emplace(buffer).first->second.reserve(live->second);
    }
  }
  sparse_buffers.clear();
  if (copies.empty()) {
    return;
  }
  // One pass over the cache finds their resources. A buffer is copied once at least half of
  // it was superseded, and its copy is full: the copying is paid for by what was superseded.
  std::vector<std::pair<CachedResource*, size_t>> moved;  // a resource, its offset in its copy
  for (auto& [name, cached] : cache) {
    auto copy = copies.find(cached.bytes.buffer().get());
    if (copy != copies.end()) {
      moved.emplace_back(&cached, copy->second.size());
      copy->second.append(cached.bytes.view());
    }
  }
  absl::flat_hash_map<const std::string*, std::shared_ptr<const std::string>> fresh;
  for (auto& [buffer, copy] : copies) {
    buffer_live_bytes.erase(buffer);
    fresh.emplace(buffer, std::make_shared<const std::string>(std::move(copy)));
  }
  for (auto [cached, offset] : moved) {
    // The old buffer is alive until its last resource moves: its address is still its own.
    const std::shared_ptr<const std::string>& buffer = fresh.at(cached->bytes.buffer().get());
    cached->bytes = ResourceBytes(buffer, offset, cached->bytes.size());
    if (sharesBuffer(cached->bytes)) {
      buffer_live_bytes[buffer.get()] += cached->bytes.size();
    }
  }
}

std::map<uint64_t, WatchBatch> TypeState::batchesByWatch(
    const std::vector<DecodedResource>& resources, const std::vector<std::string>& removed,
    const std::set<std::string>& invalid_names) const {
  std::map<uint64_t, WatchBatch> batches;
  if (name_watches.empty()) {
    return batches;
  }
  auto forWatchesOf = [&](const std::string& name, auto&& apply) {
    auto it = name_watches.find(name);
    if (it != name_watches.end()) {
      for (uint64_t id : it->second) {
        apply(batches[id]);
      }
    }
  };
  // Each watch's resources are counted first, so that each batch is allocated once at its
  // size: one watch of 10,000 names grew its batch to 16,384 resources of 120 bytes, with
  // 8,192 more held while the last growth copied them (issue 14).
  std::vector<const WatchIds*> watch_ids(resources.size(), nullptr);
  for (size_t i = 0; i < resources.size(); ++i) {
    auto it = name_watches.find(resources[i].name);
    if (it != name_watches.end()) {
      watch_ids[i] = &it->second;
      for (uint64_t id : it->second) {
        ++batches[id].added_count;
      }
    }
  }
  for (auto& [id, batch] : batches) {
    batch.added.reserve(batch.added_count);
  }
  for (size_t i = 0; i < resources.size(); ++i) {
    if (watch_ids[i] != nullptr) {
      for (uint64_t id : *watch_ids[i]) {
        batches[id].added.push_back(resources[i]);
      }
    }
  }
  for (const auto& name : removed) {
    forWatchesOf(name, [&](WatchBatch& batch) { batch.removed.push_back(name); });
  }
  for (const auto& name : invalid_names) {
    forWatchesOf(name, [&](WatchBatch& batch) { batch.invalid = true; });
  }
  return batches;
}

void TypeState::acceptVersions(const DecodedResponse& response,
                               const std::vector<std::string>& removed) {
  accepted_version = response.version;
  if (response.delta) {
    for (const auto& resource : response.resources) {
      // The cache took the same version when it took the resource: share its string.
      auto cached = cache.find(resource.name);
      delta_versions[resource.name] =
          cached != cache.end() && *cached->second.version == resource.version
              ? cached->second.version
              : std::make_shared<const std::string>(resource.version);
    }
    for (const auto& name : removed) {
      delta_versions.erase(name);
    }
  }
}

void TypeState::queueAck(bool delta, const std::string& response_nonce) {
  if (delta) {
    delta_acks.emplace_back(response_nonce, std::nullopt);
  } else {
    nonce = response_nonce;
    pending_error.reset();
    ack_pending = true;
  }
  pending = true;
}

void TypeState::queueNack(bool delta, const std::string& response_nonce, std::string message) {
  if (delta) {
    delta_acks.emplace_back(response_nonce, std::move(message));
  } else {
    nonce = response_nonce;
    pending_error = std::move(message);
    ack_pending = true;
  }
  pending = true;
}

void TypeState::resetForNewStream() {
  sent_on_stream = false;
  sent_star = false;
  nonce.clear();
  pending_error.reset();
  ack_pending = false;
  delta_acks.clear();
  sent_generation = 0;
  sent_names.clear();
  sent_wildcard = false;
  pending = !watches.empty();
}

}  // namespace Proxy::Xds
