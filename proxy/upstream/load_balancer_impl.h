#pragma once

// Load balancers over one immutable host-set snapshot. Each worker builds its own (with its own
// RNG) per cluster, and rebuilds it when the snapshot changes; a pick takes no lock and does no
// allocation.

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "proxy/stats/stats.h"
#include "proxy/upstream/locality_wrr.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

// The balancers' random source: SplitMix64, 8 bytes of state. Every cluster has a balancer on
// every thread, and std::mt19937_64's 2.5 KB of state each made them the largest single use
// of memory with many clusters (75 MB of 272 MB for 10,000 clusters on 2 workers; found by
// xds_cluster_scale_bench). Statistical quality is ample for picking hosts.
class LbRandom {
 public:
  using result_type = uint64_t;
  explicit LbRandom(uint64_t seed) : state_(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return UINT64_MAX; }
  result_type operator()() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// What every policy shares: the choice of the host list for one request, from the snapshot's
// priority loads (Envoy's chooseHostSet()): a random percentage picks a priority and whether its
// healthy or degraded hosts serve, and a priority in panic serves from all its hosts. A list is
// a "source"; the policies keep their state (rotation, EDF heap, weights) per source, built on
// first use. The common case, one list taking 100%, draws no random number.
class LoadBalancerBase : public LoadBalancer {
 protected:
  // `panic_counter` (the cluster's lb_healthy_panic; may be null) counts picks made in panic.
  LoadBalancerBase(HostSetConstSharedPtr host_set, uint64_t seed, Stats::CounterRef panic_counter);

  // The list for this request (possibly empty) and its source index in [0, sourceCount()).
  // With locality-weighted balancing, a healthy or degraded list is one locality's (Envoy's
  // hostSourceToUse()).
  const HostVector& chooseSource(size_t& source);
  size_t sourceCount() const { return sources_.size(); }
  // Whether every host of `hosts` has the same weight (cached per source).
  bool equalWeights(size_t source, const HostVector& hosts);
  // A uniform index in [0, n).
  size_t randomIndex(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  const HostSetConstSharedPtr host_set_;  // keeps the snapshot alive as long as the LB
  LbRandom rng_;

 private:
  // A priority's healthy (degraded) source narrowed to one locality picked by weight; the
  // source itself when no locality has weight (Envoy: then the whole list serves).
  size_t chooseLocality(size_t source);

  // Per priority p: sources 3p, 3p+1, 3p+2 are its healthy, degraded and all hosts; then, for
  // locality-weighted clusters, each priority's localities' healthy and degraded lists from
  // locality_base_[p] on (locality l: +2l healthy, +2l+1 degraded).
  std::vector<const HostVector*> sources_;
  std::vector<size_t> locality_base_;
  // Per priority and list (2p healthy, 2p+1 degraded): the locality scheduler, on first use.
  std::vector<std::optional<LocalityScheduler>> locality_schedulers_;
  const Stats::CounterRef panic_counter_;
  int fixed_source_ = -1;              // the only list with load, when there is one
  std::vector<int8_t> equal_weights_;  // per source: -1 unknown, 0 no, 1 yes
};

// Envoy's ROUND_ROBIN. Equal weights: plain rotation. Different weights: earliest deadline
// first, each host scheduled every 1/weight, so over any window of picks each host's share
// is its weight's share (within one pick). The start (rotation index, or the EDF phases) is
// random so that workers do not all send their first request to the same host.
class RoundRobinLoadBalancer : public LoadBalancerBase {
 public:
  RoundRobinLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                         Stats::CounterRef panic_counter = {});
  HostConstSharedPtr chooseHost() override;

 private:
  struct EdfEntry {
    double deadline;
    uint64_t order;  // FIFO among equal deadlines, so ties resolve deterministically
    uint32_t index;  // into the source's hosts
  };
  static bool later(const EdfEntry& a, const EdfEntry& b) {
    return a.deadline > b.deadline || (a.deadline == b.deadline && a.order > b.order);
  }
  struct State {
    bool initialized = false;
    size_t rr_index = 0;
    std::vector<EdfEntry> edf_heap;  // min-heap on (deadline, order); fixed size after build
    uint64_t edf_order = 0;
  };
  void initialize(State& state, size_t source, const HostVector& hosts);

  std::vector<State> states_;  // per source
};

// Envoy's LEAST_REQUEST: the best of `choice_count` random candidates (power of two choices by
// default), comparing rq_active, which every worker updates. With different weights the best
// is the highest weight / (rq_active + 1), Envoy's weighted form, kept as P2C.
class LeastRequestLoadBalancer : public LoadBalancerBase {
 public:
  LeastRequestLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed, uint32_t choice_count,
                           Stats::CounterRef panic_counter = {});
  HostConstSharedPtr chooseHost() override;

 private:
  const uint32_t choice_count_;
};

// Envoy's RANDOM: uniform, or proportional to weight when weights differ.
class RandomLoadBalancer : public LoadBalancerBase {
 public:
  RandomLoadBalancer(HostSetConstSharedPtr host_set, uint64_t seed,
                     Stats::CounterRef panic_counter = {});
  HostConstSharedPtr chooseHost() override;

 private:
  std::vector<std::vector<uint64_t>> cumulative_weights_;  // per source, when weights differ
};

using LoadBalancerPtr = std::unique_ptr<LoadBalancer>;

// The balancer `policy` names, over `host_set`.
LoadBalancerPtr createLoadBalancer(LbPolicy policy, uint32_t least_request_choice_count,
                                   HostSetConstSharedPtr host_set, uint64_t seed,
                                   Stats::CounterRef panic_counter = {});

}  // namespace Proxy::Upstream
