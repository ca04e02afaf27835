#include "proxy/upstream/ring_hash_lb.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "proxy/common/hash_util.h"

namespace Proxy::Upstream {

RingHashTable::RingHashTable(const NormalizedHostWeights& hosts, double min_normalized_weight,
                             const HashLbConfig& config) {
  if (hosts.empty()) {
    return;
  }
  // The least-weighted host gets a whole number of entries (at least min_ring_size's share);
  // the whole ring is capped at max_ring_size.
  const double scale =
      std::min(std::ceil(min_normalized_weight * static_cast<double>(config.min_ring_size)) /
                   min_normalized_weight,
               static_cast<double>(config.max_ring_size));
  const uint64_t ring_size = static_cast<uint64_t>(std::ceil(scale));
  ring_.reserve(ring_size);

  min_hashes_per_host_ = ring_size;
  double placed = 0.0;  // entries placed so far, over all hosts
  double target = 0.0;  // entries all hosts so far should have
  std::string key;
  for (const auto& [host, weight] : hosts) {
    const std::string prefix = absl::StrCat(host->address().asString(), "_");
    target += scale * weight;
    uint64_t count = 0;
    while (placed < target) {
      key = prefix;
      absl::StrAppend(&key, count);
      const uint64_t hash = config.hash_function == HashLbConfig::HashFunction::MurmurHash2
                                ? HashUtil::murmurHash2(key)
                                : HashUtil::xxHash64(key);
      ring_.push_back(Entry{hash, host});
      count++;
      placed += 1.0;
    }
    min_hashes_per_host_ = std::min(min_hashes_per_host_, count);
    max_hashes_per_host_ = std::max(max_hashes_per_host_, count);
  }
  std::sort(ring_.begin(), ring_.end(),
            [](const Entry& a, const Entry& b) { return a.hash < b.hash; });
}

HostConstSharedPtr RingHashTable::chooseHost(uint64_t hash, uint32_t attempt) const {
  if (ring_.empty()) {
    return nullptr;
  }
  // Envoy's ketama search (ported there from libketama) lands on the first entry whose hash is
  // >= `hash`, and on entry 0 past the last one: a lower bound with wrap-around.
  auto it = std::lower_bound(ring_.begin(), ring_.end(), hash,
                             [](const Entry& entry, uint64_t h) { return entry.hash < h; });
  size_t index = it == ring_.end() ? 0 : static_cast<size_t>(it - ring_.begin());
  if (attempt > 0) {
    index = (index + attempt) % ring_.size();
  }
  return ring_[index].host;
}

}  // namespace Proxy::Upstream
