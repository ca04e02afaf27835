#pragma once

// Locality-weighted balancing (Cluster.common_lb_config.locality_weighted_lb_config), as Envoy's
// LocalityWrr: a priority's localities each get a share of its requests in proportion to their
// effective weight, and the cluster's balancer picks a host within the chosen locality.

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace Proxy::Upstream {

// Envoy's overprovisioning factor (ClusterLoadAssignment.policy.overprovisioning_factor's
// default), in percent.
constexpr uint32_t kDefaultOverprovisioningFactor = 140;

// Envoy's effectiveLocalityWeight(): `weight` (LocalityLbEndpoints.load_balancing_weight, 0 when
// unset) times the locality's availability, the share of its `total` hosts (excluded ones not
// counted) that are `eligible` (healthy, or degraded for the degraded list) scaled by the
// overprovisioning factor and capped at 1. No hosts: 0.
double effectiveLocalityWeight(uint32_t weight, size_t eligible, size_t total,
                               uint32_t overprovisioning_factor = kDefaultOverprovisioningFactor);

// Earliest-deadline-first over localities (Envoy's EdfScheduler of LocalityEntry): each locality
// with a positive weight is due every 1/weight, so over any run of picks each one's share is its
// weight's share, within one pick. One per worker balancer and list; not thread-safe.
class LocalityScheduler {
 public:
  // `weights[i]` is locality i's effective weight; those with 0 are never picked. `phase_rng`
  // draws each entry's first deadline within its period, so that workers do not all start on
  // the same locality (Envoy starts its scheduler after a seeded number of picks).
  template <class Rng>
  LocalityScheduler(const std::vector<double>& weights, Rng& phase_rng) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (uint32_t i = 0; i < weights.size(); i++) {
      if (weights[i] > 0) {
        heap_.push_back(Entry{unit(phase_rng) / weights[i], 1.0 / weights[i], order_++, i});
      }
    }
    makeHeap();
  }

  // The next locality's index; none when no locality has weight.
  std::optional<uint32_t> pick();
  bool empty() const { return heap_.empty(); }

 private:
  struct Entry {
    double deadline;
    double period;   // 1 / weight
    uint64_t order;  // FIFO among equal deadlines
    uint32_t index;
  };
  static bool later(const Entry& a, const Entry& b);
  void makeHeap();

  std::vector<Entry> heap_;  // min-heap on (deadline, order)
  uint64_t order_ = 0;
};

}  // namespace Proxy::Upstream
