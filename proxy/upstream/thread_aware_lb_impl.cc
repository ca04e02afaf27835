#include "proxy/upstream/thread_aware_lb_impl.h"

#include <algorithm>
#include <memory>

#include "proxy/upstream/maglev_lb.h"
#include "proxy/upstream/ring_hash_lb.h"

namespace Proxy::Upstream {

HashingLbStats::HashingLbStats(Stats::Scope scope, LbPolicy policy) {
  if (policy == LbPolicy::RingHash) {
    ring_size = &scope.gauge("ring_hash_lb.size");
    min_hashes_per_host = &scope.gauge("ring_hash_lb.min_hashes_per_host");
    max_hashes_per_host = &scope.gauge("ring_hash_lb.max_hashes_per_host");
  } else if (policy == LbPolicy::Maglev) {
    min_entries_per_host = &scope.gauge("maglev_lb.min_entries_per_host");
    max_entries_per_host = &scope.gauge("maglev_lb.max_entries_per_host");
  }
}

void buildHashingLoadBalancers(HostSet& set, LbPolicy policy, const HashLbConfig& config,
                               HashingLbStats* stats) {
  if (policy != LbPolicy::RingHash && policy != LbPolicy::Maglev) {
    return;
  }
  set.hashing.clear();
  set.hashing.reserve(set.priorities.size());
  for (const PriorityHosts& priority : set.priorities) {
    const HostVector& hosts = priority.panic ? priority.hosts : priority.healthy;
    uint64_t sum = 0;
    for (const HostConstSharedPtr& host : hosts) {
      sum += host->weight();
    }
    NormalizedHostWeights weights;
    weights.reserve(hosts.size());
    double min_weight = 1.0;
    double max_weight = 0.0;
    for (const HostConstSharedPtr& host : hosts) {
      const double weight = static_cast<double>(host->weight()) / static_cast<double>(sum);
      weights.emplace_back(host, weight);
      min_weight = std::min(min_weight, weight);
      max_weight = std::max(max_weight, weight);
    }
    if (policy == LbPolicy::RingHash) {
      auto ring = std::make_shared<RingHashTable>(weights, min_weight, config);
      if (stats != nullptr && stats->ring_size != nullptr && !hosts.empty()) {
        stats->ring_size->set(static_cast<int64_t>(ring->entries().size()));
        stats->min_hashes_per_host->set(static_cast<int64_t>(ring->minHashesPerHost()));
        stats->max_hashes_per_host->set(static_cast<int64_t>(ring->maxHashesPerHost()));
      }
      set.hashing.push_back(std::move(ring));
    } else {
      auto table = std::make_shared<MaglevTable>(weights, max_weight, config.maglev_table_size);
      if (stats != nullptr && stats->min_entries_per_host != nullptr && !hosts.empty()) {
        stats->min_entries_per_host->set(static_cast<int64_t>(table->minEntriesPerHost()));
        stats->max_entries_per_host->set(static_cast<int64_t>(table->maxEntriesPerHost()));
      }
      set.hashing.push_back(std::move(table));
    }
  }
}

ThreadAwareLoadBalancer::ThreadAwareLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                                                 Stats::CounterRef panic_counter)
    : host_set_(std::move(host_set)), rng_(seed), panic_counter_(panic_counter) {}

HostConstSharedPtr ThreadAwareLoadBalancer::chooseHost() {
  return pick(rng_(), 0);
}

HostConstSharedPtr ThreadAwareLoadBalancer::chooseHostFor(LoadBalancerContext& context,
                                                          uint32_t attempt) {
  const std::optional<uint64_t> hash = context.computeHashKey();
  return pick(hash.has_value() ? *hash : rng_(), attempt);
}

HostConstSharedPtr ThreadAwareLoadBalancer::pick(uint64_t hash, uint32_t attempt) {
  const auto& priorities = host_set_->priorities;
  if (priorities.empty() || host_set_->hashing.size() != priorities.size()) {
    return nullptr;
  }
  // Envoy's choosePriority() with the hash as the random value: a percentage in [1, 100]
  // against the cumulative healthy loads, then the degraded ones.
  const uint64_t point = hash % 100 + 1;
  uint64_t cumulative = 0;
  size_t chosen = 0;
  bool found = false;
  for (size_t p = 0; p < priorities.size() && !found; p++) {
    cumulative += priorities[p].healthy_load;
    if (point <= cumulative) {
      chosen = p;
      found = true;
    }
  }
  for (size_t p = 0; p < priorities.size() && !found; p++) {
    cumulative += priorities[p].degraded_load;
    if (point <= cumulative) {
      chosen = p;
      found = true;
    }
  }
  if (priorities[chosen].panic && panic_counter_) {
    panic_counter_.inc();
  }
  return host_set_->hashing[chosen]->chooseHost(hash, attempt);
}

}  // namespace Proxy::Upstream
