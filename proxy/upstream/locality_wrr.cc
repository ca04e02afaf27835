#include "proxy/upstream/locality_wrr.h"

#include <algorithm>

namespace Proxy::Upstream {

double effectiveLocalityWeight(uint32_t weight, size_t eligible, size_t total,
                               uint32_t overprovisioning_factor) {
  if (total == 0) {
    return 0.0;
  }
  const double availability = static_cast<double>(eligible) / static_cast<double>(total);
  return weight * std::min(1.0, (overprovisioning_factor / 100.0) * availability);
}

bool LocalityScheduler::later(const Entry& a, const Entry& b) {
  return a.deadline > b.deadline || (a.deadline == b.deadline && a.order > b.order);
}

void LocalityScheduler::makeHeap() {
  std::make_heap(heap_.begin(), heap_.end(), later);
}

std::optional<uint32_t> LocalityScheduler::pick() {
  if (heap_.empty()) {
    return std::nullopt;
  }
  // Take the earliest deadline and schedule that locality again one period later.
  std::pop_heap(heap_.begin(), heap_.end(), later);
  Entry& entry = heap_.back();
  const uint32_t index = entry.index;
  entry.deadline += entry.period;
  entry.order = order_++;
  std::push_heap(heap_.begin(), heap_.end(), later);
  return index;
}

}  // namespace Proxy::Upstream
