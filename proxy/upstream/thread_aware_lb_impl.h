#pragma once

// Envoy's "thread-aware" load balancers, RING_HASH and MAGLEV: the expensive structure (a ring
// or a lookup table per priority) is built on the main thread once per host-set snapshot and
// travels to the workers inside that snapshot (HostSet::hashing); each worker's
// ThreadAwareLoadBalancer only reads it. Same hash key, same host on every worker, no lock.

#include <cstdint>
#include <utility>
#include <vector>

#include "proxy/stats/stats.h"
#include "proxy/upstream/load_balancer_impl.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

// (host, weight / sum of the list's weights), in the list's order.
using NormalizedHostWeights = std::vector<std::pair<HostConstSharedPtr, double>>;

// Envoy's gauges for the structure last built, under "cluster.<name>.": ring_hash_lb.{size,
// min_hashes_per_host,max_hashes_per_host} for RING_HASH, maglev_lb.{min,max}_entries_per_host
// for MAGLEV (the other policy's are null).
struct HashingLbStats {
  HashingLbStats(Stats::Scope scope, LbPolicy policy);
  Stats::Gauge* ring_size = nullptr;
  Stats::Gauge* min_hashes_per_host = nullptr;
  Stats::Gauge* max_hashes_per_host = nullptr;
  Stats::Gauge* min_entries_per_host = nullptr;
  Stats::Gauge* max_entries_per_host = nullptr;
};

// Main thread: fills `set.hashing` with one ring (RingHash) or table (Maglev) per priority, over
// that priority's healthy hosts, or all its hosts when it is in panic (Envoy's refresh()).
// Nothing for other policies. `stats` may be null.
void buildHashingLoadBalancers(HostSet& set, LbPolicy policy, const HashLbConfig& config,
                               HashingLbStats* stats);

// A worker's balancer for a RING_HASH / MAGLEV cluster: the request's hash (or a random one
// when it has none, as Envoy does) picks the priority (hash % 100 against the priority loads)
// and then the host in that priority's shared structure.
class ThreadAwareLoadBalancer : public LoadBalancer {
 public:
  ThreadAwareLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                          Stats::CounterRef panic_counter);
  HostConstSharedPtr chooseHost() override;
  HostConstSharedPtr chooseHostFor(LoadBalancerContext& context, uint32_t attempt) override;

 private:
  HostConstSharedPtr pick(uint64_t hash, uint32_t attempt);

  const HostSetConstSharedPtr host_set_;  // keeps the snapshot (and its structures) alive
  LbRandom rng_;
  const Stats::CounterRef panic_counter_;
};

}  // namespace Proxy::Upstream
