#pragma once

// Envoy's RING_HASH ring (ketama consistent hashing) over one list of weighted hosts. Built on
// the main thread once per host-set snapshot and shared read-only by every worker
// (thread_aware_lb_impl.h), so the same hosts and the same hash pick the same host as Envoy.

#include <cstdint>
#include <vector>

#include "proxy/upstream/thread_aware_lb_impl.h"

namespace Proxy::Upstream {

class RingHashTable : public HashingLoadBalancer {
 public:
  // Envoy's construction: scale = min(ceil(min_weight × min_ring_size) / min_weight,
  // max_ring_size) hashes in all, each host getting scale × its normalized weight of them
  // (running sums, in the list's order, so fractions carry over to the next host); entry i of
  // a host is hashed from "<ip:port>_<i>" with xxHash64 (or libstdc++'s murmur2), and the ring
  // sorted by hash.
  RingHashTable(const NormalizedHostWeights& hosts, double min_normalized_weight,
                const HashLbConfig& config);

  // The first entry whose hash is >= `hash`, wrapping to the first entry (ketama); `attempt`
  // moves that many entries further on, as Envoy does.
  HostConstSharedPtr chooseHost(uint64_t hash, uint32_t attempt) const override;

  struct Entry {
    uint64_t hash;
    HostConstSharedPtr host;
  };
  const std::vector<Entry>& entries() const { return ring_; }
  uint64_t minHashesPerHost() const { return min_hashes_per_host_; }
  uint64_t maxHashesPerHost() const { return max_hashes_per_host_; }

 private:
  std::vector<Entry> ring_;
  uint64_t min_hashes_per_host_ = 0;
  uint64_t max_hashes_per_host_ = 0;
};

}  // namespace Proxy::Upstream
