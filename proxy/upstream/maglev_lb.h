#pragma once

// Envoy's MAGLEV lookup table (Maglev paper, listing 1, with Envoy's weighting) over one list of
// weighted hosts. Built on the main thread once per host-set snapshot and shared read-only by
// every worker (thread_aware_lb_impl.h), so the same hosts and the same hash pick the same host
// as Envoy.

#include <cstdint>
#include <vector>

#include "proxy/upstream/thread_aware_lb_impl.h"

namespace Proxy::Upstream {

class MaglevTable : public HashingLoadBalancer {
 public:
  // Envoy's construction: hosts in the order of their "<ip:port>" strings; each host's
  // permutation starts at xxHash64(key) % size and steps by xxHash64(key, seed 1) % (size - 1)
  // + 1; rounds over the hosts fill the next free slot of each host's permutation, a host
  // taking part in a round once its weight has caught up with the heaviest host's. `table_size`
  // is prime (validated with the cluster).
  MaglevTable(const NormalizedHostWeights& hosts, double max_normalized_weight,
              uint64_t table_size);

  // table[hash % size]; `attempt` > 0 flips the hash with ~0 - attempt + 1, as Envoy does.
  HostConstSharedPtr chooseHost(uint64_t hash, uint32_t attempt) const override;

  const std::vector<HostConstSharedPtr>& table() const { return table_; }
  uint64_t minEntriesPerHost() const { return min_entries_per_host_; }
  uint64_t maxEntriesPerHost() const { return max_entries_per_host_; }

 private:
  std::vector<HostConstSharedPtr> table_;
  uint64_t min_entries_per_host_ = 0;
  uint64_t max_entries_per_host_ = 0;
};

// Whether `n` is prime (the table size must be).
bool isPrime(uint64_t n);

}  // namespace Proxy::Upstream
