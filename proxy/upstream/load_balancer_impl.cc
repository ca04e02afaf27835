#include "proxy/upstream/load_balancer_impl.h"

#include <algorithm>

#include "proxy/common/assert.h"

namespace Proxy::Upstream {

LoadBalancerBase::LoadBalancerBase(HostSetConstSharedPtr host_set, uint64_t seed)
    : host_set_(std::move(host_set)), rng_(seed) {
  ASSERT(host_set_ != nullptr);
  for (const HostConstSharedPtr& host : candidates()) {
    if (host->weight() != candidates().front()->weight()) {
      equal_weights_ = false;
      break;
    }
  }
}

// ---- RoundRobin ----

RoundRobinLoadBalancer::RoundRobinLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed)
    : LoadBalancerBase(std::move(host_set), seed) {
  const HostVector& hosts = candidates();
  if (hosts.empty()) {
    return;
  }
  if (equal_weights_) {
    rr_index_ = randomIndex(hosts.size());
    return;
  }
  // A random phase in [0, 1/weight) per host: a random start that keeps the long-run shares.
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  edf_heap_.reserve(hosts.size());
  for (uint32_t i = 0; i < hosts.size(); i++) {
    edf_heap_.push_back(EdfEntry{unit(rng_) / hosts[i]->weight(), edf_order_++, i});
  }
  std::make_heap(edf_heap_.begin(), edf_heap_.end(), later);
}

HostConstSharedPtr RoundRobinLoadBalancer::chooseHost() {
  const HostVector& hosts = candidates();
  if (hosts.empty()) {
    return nullptr;
  }
  if (equal_weights_) {
    const HostConstSharedPtr& host = hosts[rr_index_];
    rr_index_ = rr_index_ + 1 == hosts.size() ? 0 : rr_index_ + 1;
    return host;
  }
  // Take the earliest deadline and schedule that host again one period (1/weight) later.
  std::pop_heap(edf_heap_.begin(), edf_heap_.end(), later);
  EdfEntry& entry = edf_heap_.back();
  const HostConstSharedPtr& host = hosts[entry.index];
  entry.deadline += 1.0 / host->weight();
  entry.order = edf_order_++;
  std::push_heap(edf_heap_.begin(), edf_heap_.end(), later);
  return host;
}

// ---- LeastRequest ----

LeastRequestLoadBalancer::LeastRequestLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                                                   uint32_t choice_count)
    : LoadBalancerBase(std::move(host_set), seed), choice_count_(std::max(choice_count, 2u)) {}

HostConstSharedPtr LeastRequestLoadBalancer::chooseHost() {
  const HostVector& hosts = candidates();
  if (hosts.empty()) {
    return nullptr;
  }
  if (hosts.size() == 1) {
    return hosts[0];
  }
  // Candidates are drawn with replacement, as Envoy does.
  const Host* best = nullptr;
  size_t best_index = 0;
  uint64_t best_active = 0;
  for (uint32_t i = 0; i < choice_count_; i++) {
    const size_t index = randomIndex(hosts.size());
    const Host* candidate = hosts[index].get();
    const int64_t active_signed = candidate->stats().rq_active.load(std::memory_order_relaxed);
    const uint64_t active = active_signed < 0 ? 0 : static_cast<uint64_t>(active_signed);
    bool better;
    if (best == nullptr) {
      better = true;
    } else if (equal_weights_) {
      better = active < best_active;
    } else {
      // weight/(active+1) > best_weight/(best_active+1), in integers.
      better = uint64_t{candidate->weight()} * (best_active + 1) >
               uint64_t{best->weight()} * (active + 1);
    }
    if (better) {
      best = candidate;
      best_index = index;
      best_active = active;
    }
  }
  return hosts[best_index];
}

// ---- Random ----

RandomLoadBalancer::RandomLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed)
    : LoadBalancerBase(std::move(host_set), seed) {
  if (!equal_weights_) {
    uint64_t total = 0;
    cumulative_weights_.reserve(candidates().size());
    for (const HostConstSharedPtr& host : candidates()) {
      total += host->weight();
      cumulative_weights_.push_back(total);
    }
  }
}

HostConstSharedPtr RandomLoadBalancer::chooseHost() {
  const HostVector& hosts = candidates();
  if (hosts.empty()) {
    return nullptr;
  }
  if (equal_weights_) {
    return hosts[randomIndex(hosts.size())];
  }
  const uint64_t point =
      std::uniform_int_distribution<uint64_t>(0, cumulative_weights_.back() - 1)(rng_);
  const auto it = std::upper_bound(cumulative_weights_.begin(), cumulative_weights_.end(), point);
  return hosts[static_cast<size_t>(it - cumulative_weights_.begin())];
}

LoadBalancerPtr createLoadBalancer(LbPolicy policy, uint32_t least_request_choice_count,
                                   HostSetConstSharedPtr host_set, uint64_t seed) {
  switch (policy) {
    case LbPolicy::RoundRobin:
      return std::make_unique<RoundRobinLoadBalancer>(std::move(host_set), seed);
    case LbPolicy::LeastRequest:
      return std::make_unique<LeastRequestLoadBalancer>(std::move(host_set), seed,
                                                        least_request_choice_count);
    case LbPolicy::Random:
      return std::make_unique<RandomLoadBalancer>(std::move(host_set), seed);
  }
  return nullptr;
}

}  // namespace Proxy::Upstream
