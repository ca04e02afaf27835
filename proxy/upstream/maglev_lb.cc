#include "proxy/upstream/maglev_lb.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "proxy/common/hash_util.h"

namespace Proxy::Upstream {

bool isPrime(uint64_t n) {
  if (n < 2) {
    return false;
  }
  for (uint64_t d = 2; d * d <= n; d++) {
    if (n % d == 0) {
      return false;
    }
  }
  return true;
}

MaglevTable::MaglevTable(const NormalizedHostWeights& hosts, double max_normalized_weight,
                         uint64_t table_size) {
  if (hosts.empty()) {
    return;
  }
  struct Builder {
    std::string key;
    HostConstSharedPtr host;
    double weight;
    uint64_t offset = 0;
    uint64_t skip = 0;
    double target = 0.0;  // the weight this host must reach before taking its next slot
    uint64_t next = 0;    // position in its permutation
    uint64_t count = 0;   // slots taken
  };
  std::vector<Builder> builders;
  builders.reserve(hosts.size());
  for (const auto& [host, weight] : hosts) {
    builders.push_back(Builder{host->address().asString(), host, weight});
  }
  // A stable order whatever the order of the list (Envoy sorts on the key, then the rest).
  std::sort(builders.begin(), builders.end(), [](const Builder& a, const Builder& b) {
    return std::tie(a.key, a.weight) < std::tie(b.key, b.weight);
  });
  for (Builder& b : builders) {
    b.offset = HashUtil::xxHash64(b.key) % table_size;
    b.skip = HashUtil::xxHash64(b.key, 1) % (table_size - 1) + 1;
  }

  table_.resize(table_size);
  auto slot = [table_size](const Builder& b) { return (b.offset + b.skip * b.next) % table_size; };
  uint64_t filled = 0;
  for (uint32_t round = 1; filled < table_size; round++) {
    for (size_t i = 0; i < builders.size() && filled < table_size; i++) {
      Builder& b = builders[i];
      // A host of the heaviest weight takes a slot every round; one of a third of it, every
      // third round.
      if (round * b.weight < b.target) {
        continue;
      }
      b.target += max_normalized_weight;
      uint64_t c = slot(b);
      while (table_[c] != nullptr) {
        b.next++;
        c = slot(b);
      }
      table_[c] = b.host;
      b.next++;
      b.count++;
      filled++;
    }
  }
  min_entries_per_host_ = table_size;
  for (const Builder& b : builders) {
    min_entries_per_host_ = std::min(min_entries_per_host_, b.count);
    max_entries_per_host_ = std::max(max_entries_per_host_, b.count);
  }
}

HostConstSharedPtr MaglevTable::chooseHost(uint64_t hash, uint32_t attempt) const {
  if (table_.empty()) {
    return nullptr;
  }
  if (attempt > 0) {
    hash ^= ~0ULL - attempt + 1;
  }
  return table_[hash % table_.size()];
}

}  // namespace Proxy::Upstream
