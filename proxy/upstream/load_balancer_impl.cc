#include "proxy/upstream/load_balancer_impl.h"

#include <algorithm>

#include "proxy/common/assert.h"
#include "proxy/upstream/thread_aware_lb_impl.h"

namespace Proxy::Upstream {

namespace {

// Source index within a priority: its healthy hosts, its degraded hosts, all its hosts (panic).
constexpr size_t kHealthySource = 0;
constexpr size_t kDegradedSource = 1;
constexpr size_t kPanicSource = 2;

}  // namespace

LoadBalancerBase::LoadBalancerBase(HostSetConstSharedPtr host_set, uint64_t seed,
                                   Stats::CounterRef panic_counter)
    : host_set_(std::move(host_set)), rng_(seed), panic_counter_(panic_counter) {
  ASSERT(host_set_ != nullptr);
  for (const PriorityHosts& priority : host_set_->priorities) {
    sources_.push_back(&priority.healthy.vector());
    sources_.push_back(&priority.degraded.vector());
    sources_.push_back(&priority.hosts.vector());
  }
  for (const PriorityHosts& priority : host_set_->priorities) {
    locality_base_.push_back(sources_.size());
    for (const PriorityHosts::Locality& locality : priority.localities) {
      sources_.push_back(&locality.healthy);
      sources_.push_back(&locality.degraded);
    }
  }
  locality_schedulers_.resize(host_set_->priorities.size() * 2);
  equal_weights_.assign(sourceCount(), -1);
  // One list with all the load (the usual case): no random draw per pick.
  int only = -1;
  int with_load = 0;
  for (size_t p = 0; p < host_set_->priorities.size(); p++) {
    const PriorityHosts& priority = host_set_->priorities[p];
    if (priority.healthy_load > 0) {
      with_load++;
      only = static_cast<int>(p * 3 + (priority.panic ? kPanicSource : kHealthySource));
    }
    if (priority.degraded_load > 0) {
      with_load++;
      only = static_cast<int>(p * 3 + (priority.panic ? kPanicSource : kDegradedSource));
    }
  }
  if (with_load == 1) {
    fixed_source_ = only;
  }
}

size_t LoadBalancerBase::chooseLocality(size_t source) {
  const size_t p = source / 3;
  const size_t degraded = source % 3 == kDegradedSource ? 1 : 0;
  const auto& localities = host_set_->priorities[p].localities;
  std::optional<LocalityScheduler>& scheduler = locality_schedulers_[p * 2 + degraded];
  if (!scheduler.has_value()) {
    std::vector<double> weights;
    weights.reserve(localities.size());
    for (const PriorityHosts::Locality& locality : localities) {
      weights.push_back(degraded != 0 ? locality.degraded_weight : locality.healthy_weight);
    }
    scheduler.emplace(weights, rng_);
  }
  const std::optional<uint32_t> picked = scheduler->pick();
  if (!picked.has_value()) {
    return source;
  }
  return locality_base_[p] + *picked * 2 + degraded;
}

const HostVector& LoadBalancerBase::chooseSource(size_t& source) {
  if (host_set_->priorities.empty()) {
    static const HostVector none;
    source = 0;
    return none;
  }
  if (fixed_source_ >= 0) {
    source = static_cast<size_t>(fixed_source_);
  } else {
    // Envoy's choosePriority(): a percentage in [1, 100] against the cumulative healthy loads,
    // then the degraded ones.
    const uint32_t point = static_cast<uint32_t>(rng_() % 100) + 1;
    uint32_t cumulative = 0;
    source = 0;
    bool found = false;
    const auto& priorities = host_set_->priorities;
    for (size_t p = 0; p < priorities.size() && !found; p++) {
      cumulative += priorities[p].healthy_load;
      if (point <= cumulative) {
        source = p * 3 + (priorities[p].panic ? kPanicSource : kHealthySource);
        found = true;
      }
    }
    for (size_t p = 0; p < priorities.size() && !found; p++) {
      cumulative += priorities[p].degraded_load;
      if (point <= cumulative) {
        source = p * 3 + (priorities[p].panic ? kPanicSource : kDegradedSource);
        found = true;
      }
    }
  }
  if (source % 3 == kPanicSource) {
    if (panic_counter_) {
      panic_counter_.inc();
    }
  } else if (!host_set_->priorities[source / 3].localities.empty()) {
    source = chooseLocality(source);
  }
  return *sources_[source];
}

bool LoadBalancerBase::equalWeights(size_t source, const HostVector& hosts) {
  int8_t& cached = equal_weights_[source];
  if (cached < 0) {
    cached = 1;
    for (const HostConstSharedPtr& host : hosts) {
      if (host->weight() != hosts.front()->weight()) {
        cached = 0;
        break;
      }
    }
  }
  return cached == 1;
}

// ---- RoundRobin ----

RoundRobinLoadBalancer::RoundRobinLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                                               Stats::CounterRef panic_counter)
    : LoadBalancerBase(std::move(host_set), seed, panic_counter), states_(sourceCount()) {}

void RoundRobinLoadBalancer::initialize(State& state, size_t source, const HostVector& hosts) {
  state.initialized = true;
  if (equalWeights(source, hosts)) {
    state.rr_index = randomIndex(hosts.size());
    return;
  }
  // A random phase in [0, 1/weight) per host: a random start that keeps the long-run shares.
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  state.edf_heap.reserve(hosts.size());
  for (uint32_t i = 0; i < hosts.size(); i++) {
    state.edf_heap.push_back(EdfEntry{unit(rng_) / hosts[i]->weight(), state.edf_order++, i});
  }
  std::make_heap(state.edf_heap.begin(), state.edf_heap.end(), later);
}

HostConstSharedPtr RoundRobinLoadBalancer::chooseHost() {
  size_t source;
  const HostVector& hosts = chooseSource(source);
  if (hosts.empty()) {
    return nullptr;
  }
  State& state = states_[source];
  if (!state.initialized) {
    initialize(state, source, hosts);
  }
  if (state.edf_heap.empty()) {
    const HostConstSharedPtr& host = hosts[state.rr_index];
    state.rr_index = state.rr_index + 1 == hosts.size() ? 0 : state.rr_index + 1;
    return host;
  }
  // Take the earliest deadline and schedule that host again one period (1/weight) later.
  std::pop_heap(state.edf_heap.begin(), state.edf_heap.end(), later);
  EdfEntry& entry = state.edf_heap.back();
  const HostConstSharedPtr& host = hosts[entry.index];
  entry.deadline += 1.0 / host->weight();
  entry.order = state.edf_order++;
  std::push_heap(state.edf_heap.begin(), state.edf_heap.end(), later);
  return host;
}

// ---- LeastRequest ----

LeastRequestLoadBalancer::LeastRequestLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                                                   uint32_t choice_count,
                                                   Stats::CounterRef panic_counter)
    : LoadBalancerBase(std::move(host_set), seed, panic_counter),
      choice_count_(std::max(choice_count, 2u)) {}

HostConstSharedPtr LeastRequestLoadBalancer::chooseHost() {
  size_t source;
  const HostVector& hosts = chooseSource(source);
  if (hosts.empty()) {
    return nullptr;
  }
  if (hosts.size() == 1) {
    return hosts[0];
  }
  const bool equal_weights = equalWeights(source, hosts);
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
    } else if (equal_weights) {
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

RandomLoadBalancer::RandomLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                                       Stats::CounterRef panic_counter)
    : LoadBalancerBase(std::move(host_set), seed, panic_counter),
      cumulative_weights_(sourceCount()) {}

HostConstSharedPtr RandomLoadBalancer::chooseHost() {
  size_t source;
  const HostVector& hosts = chooseSource(source);
  if (hosts.empty()) {
    return nullptr;
  }
  if (equalWeights(source, hosts)) {
    return hosts[randomIndex(hosts.size())];
  }
  std::vector<uint64_t>& cumulative = cumulative_weights_[source];
  if (cumulative.empty()) {
    uint64_t total = 0;
    cumulative.reserve(hosts.size());
    for (const HostConstSharedPtr& host : hosts) {
      total += host->weight();
      cumulative.push_back(total);
    }
  }
  const uint64_t point = std::uniform_int_distribution<uint64_t>(0, cumulative.back() - 1)(rng_);
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), point);
  return hosts[static_cast<size_t>(it - cumulative.begin())];
}

LoadBalancerPtr createLoadBalancer(LbPolicy policy, uint32_t least_request_choice_count,
                                   HostSetConstSharedPtr host_set, uint64_t seed,
                                   Stats::CounterRef panic_counter) {
  switch (policy) {
    case LbPolicy::RoundRobin:
      return std::make_unique<RoundRobinLoadBalancer>(std::move(host_set), seed, panic_counter);
    case LbPolicy::LeastRequest:
      return std::make_unique<LeastRequestLoadBalancer>(std::move(host_set), seed,
                                                        least_request_choice_count, panic_counter);
    case LbPolicy::Random:
      return std::make_unique<RandomLoadBalancer>(std::move(host_set), seed, panic_counter);
    case LbPolicy::RingHash:
    case LbPolicy::Maglev:
      // The ring / table came with the snapshot (built on the main thread).
      return std::make_unique<ThreadAwareLoadBalancer>(std::move(host_set), seed, panic_counter);
  }
  return nullptr;
}

}  // namespace Proxy::Upstream
