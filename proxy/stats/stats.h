#pragma once

// Counters and gauges with Envoy's names ("cluster.service1.upstream_rq_total"). Stats are
// created on the main thread while config is applied, and updated from any thread with relaxed
// atomics: no lock on the request path. A stat lives as long as the Store; references to it
// stay valid (never moved), so hot paths keep a pointer.
//
// Memory: a name is kept as two interned parts, the text up to and including its last '.' and
// the rest, so "cluster.<name>." is stored once per cluster and "upstream_rq_total" once per
// process (Envoy's stat-name symbol tables are the idea). Names are composed when admin lists
// them. A component with many instances and a fixed set of stats (a cluster) takes a block:
// one array of 8-byte cells per instance, its names in one static table shared by every
// instance, so 10,000 clusters' ~40 stats each take ~4 MB rather than ~13 MB as Store objects
// (issue 14).

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_set.h"

namespace Proxy::Stats {

// A stat's value. Counters and gauges both keep a uint64_t (a gauge as two's complement) so that
// one array of cells can hold a block of either kind.
using StatCell = std::atomic<uint64_t>;

// What a block of stats is made of: a static table of names (no '.': the part after the
// block's prefix) and kinds, one per component (ClusterStats). The Store keys blocks by the
// address of `specs`, so that array must outlive the Store (a static one).
enum class StatKind : uint8_t { kCounter, kGauge };
struct StatSpec {
  std::string_view name;
  StatKind kind;
};
struct StatTable {
  const StatSpec* specs;
  size_t size;
};

// A stat's name: two interned parts owned by the Store, or (a stat made outside a Store, as
// tests do) one string it owns.
class StatName {
 public:
  explicit StatName(std::string standalone)
      : prefix_(new std::string(std::move(standalone))), suffix_(nullptr) {}
  StatName(const std::string* prefix, const std::string* suffix)
      : prefix_(prefix), suffix_(suffix) {}
  ~StatName() {
    if (suffix_ == nullptr) {
      delete prefix_;
    }
  }
  StatName(const StatName&) = delete;
  StatName& operator=(const StatName&) = delete;

  std::string str() const { return suffix_ == nullptr ? *prefix_ : *prefix_ + *suffix_; }
  // The interned parts (Store stats only).
  const std::string* prefix() const { return prefix_; }
  const std::string* suffix() const { return suffix_; }

 private:
  const std::string* const prefix_;
  const std::string* const suffix_;  // null: prefix_ is the whole name, owned
};

// A named counter. Its value is its own cell or, for a name of a block (a cluster's
// "upstream_rq_total" looked up by name), the block's cell, so both count the same.
class Counter {
 public:
  static constexpr StatKind kKind = StatKind::kCounter;
  explicit Counter(std::string name) : name_(std::move(name)) {}
  Counter(const std::string* prefix, const std::string* suffix) : name_(prefix, suffix) {}
  void inc() { add(1); }
  void add(uint64_t amount) { cell().fetch_add(amount, std::memory_order_relaxed); }
  uint64_t value() const { return cell().load(std::memory_order_relaxed); }
  std::string name() const { return name_.str(); }
  const StatName& statName() const { return name_; }
  // A Store's view of a block's cell (what lookup by name returns and iteration passes).
  Counter(const std::string* prefix, const std::string* suffix, StatCell* cell)
      : cell_(cell), name_(prefix, suffix) {}
  StatCell& cell() const { return *cell_.load(std::memory_order_relaxed); }

 private:
  friend class Store;
  StatCell own_{0};
  // &own_, or a block's cell. Atomic: the Store moves a stat into a block created after the
  // stat was looked up by name (adoptInto), while workers may be updating it.
  std::atomic<StatCell*> cell_{&own_};
  StatName name_;
  Counter* next_ = nullptr;  // the Store's chain of stats with the same prefix
};

// A named gauge; its cell as a Counter's. Arithmetic is on the uint64_t cell (wraps, which is
// two's complement arithmetic on the int64_t it holds).
class Gauge {
 public:
  static constexpr StatKind kKind = StatKind::kGauge;
  explicit Gauge(std::string name) : name_(std::move(name)) {}
  Gauge(const std::string* prefix, const std::string* suffix) : name_(prefix, suffix) {}
  void inc() { add(1); }
  void dec() { sub(1); }
  void add(int64_t amount) {
    cell().fetch_add(static_cast<uint64_t>(amount), std::memory_order_relaxed);
  }
  void sub(int64_t amount) {
    cell().fetch_sub(static_cast<uint64_t>(amount), std::memory_order_relaxed);
  }
  void set(int64_t value) { cell().store(static_cast<uint64_t>(value), std::memory_order_relaxed); }
  int64_t value() const { return static_cast<int64_t>(cell().load(std::memory_order_relaxed)); }
  std::string name() const { return name_.str(); }
  const StatName& statName() const { return name_; }
  Gauge(const std::string* prefix, const std::string* suffix, StatCell* cell)
      : cell_(cell), name_(prefix, suffix) {}
  StatCell& cell() const { return *cell_.load(std::memory_order_relaxed); }

 private:
  friend class Store;
  StatCell own_{0};
  std::atomic<StatCell*> cell_{&own_};  // as Counter::cell_
  StatName name_;
  Gauge* next_ = nullptr;  // the Store's chain of stats with the same prefix
};

// Handles on a stat's cell: 8 bytes, copied freely, no name, what a component's stats struct
// hands out (ClusterStats::upstream_rq_total()). Null when default-constructed (an optional
// stat). One taken from a Counter or Gauge follows the cell it has at that moment.
class CounterRef {
 public:
  CounterRef() = default;
  explicit CounterRef(StatCell& cell) : cell_(&cell) {}
  CounterRef(Counter& counter) : cell_(&counter.cell()) {}  // NOLINT: implicit by design
  void inc() const { add(1); }
  void add(uint64_t amount) const { cell_->fetch_add(amount, std::memory_order_relaxed); }
  uint64_t value() const { return cell_->load(std::memory_order_relaxed); }
  explicit operator bool() const { return cell_ != nullptr; }

 private:
  StatCell* cell_ = nullptr;
};

class GaugeRef {
 public:
  GaugeRef() = default;
  explicit GaugeRef(StatCell& cell) : cell_(&cell) {}
  GaugeRef(Gauge& gauge) : cell_(&gauge.cell()) {}  // NOLINT: implicit by design
  void inc() const { add(1); }
  void dec() const { sub(1); }
  void add(int64_t amount) const {
    cell_->fetch_add(static_cast<uint64_t>(amount), std::memory_order_relaxed);
  }
  void sub(int64_t amount) const {
    cell_->fetch_sub(static_cast<uint64_t>(amount), std::memory_order_relaxed);
  }
  void set(int64_t value) const {
    cell_->store(static_cast<uint64_t>(value), std::memory_order_relaxed);
  }
  int64_t value() const { return static_cast<int64_t>(cell_->load(std::memory_order_relaxed)); }
  explicit operator bool() const { return cell_ != nullptr; }

 private:
  StatCell* cell_ = nullptr;
};

// Text metrics ("version_text") as Envoy keeps them: written and read rarely, so a lock is fine.
class TextReadout {
 public:
  explicit TextReadout(std::string name) : name_(std::move(name)) {}
  void set(std::string value) {
    std::lock_guard<std::mutex> lock(mutex_);
    value_ = std::move(value);
  }
  std::string value() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return value_;
  }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  mutable std::mutex mutex_;
  std::string value_ ABSL_GUARDED_BY(mutex_);
};

// Owns every stat. Lookup/creation takes a lock and belongs to config time, never to a
// request; iteration (admin) takes the same lock and reads values atomically.
class Store {
 public:
  // The one stat of that name and kind, created on first use. A name in a block returns a
  // Counter/Gauge over the block's cell.
  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name);
  TextReadout& textReadout(std::string_view name);

  // The block of `table`'s stats under `prefix` (empty, or ending in '.'): table.size cells,
  // zero when created, in the table's order, valid as long as the Store. The same prefix and
  // table always return the same cells (a cluster re-added keeps counting where it was), and
  // each reads as the stat prefix + name everywhere (lookup, iteration, rendering). A stat of
  // such a name looked up before the block existed moves into it, keeping its value. Two
  // tables under one prefix must not share a name of one kind.
  StatCell* block(std::string_view prefix, const StatTable& table);

  // Sorted by name.
  void forEachCounter(const std::function<void(const Counter&)>& cb) const;
  void forEachGauge(const std::function<void(const Gauge&)>& cb) const;
  void forEachTextReadout(const std::function<void(const TextReadout&)>& cb) const;

  // Envoy's /stats text format ("name: value" per line, sorted).
  std::string renderText() const;
  // Prometheus exposition format, names prefixed "envoy_" with '.' mapped to '_'.
  std::string renderPrometheus() const;

 private:
  // Stats of one kind: in a deque (never moved, no allocation per stat), found by their
  // interned prefix and then along that prefix's chain by their interned suffix.
  template <class T>
  struct Table {
    std::deque<T> stats;
    absl::flat_hash_map<const std::string*, T*> chains;  // prefix -> its newest stat
  };
  // A table's names interned once, shared by every block of that table.
  struct Names {
    StatTable table;
    std::vector<const std::string*> suffixes;  // interned, in the table's order
  };
  // One instance's cells: a cluster's costs this header and 8 bytes per stat.
  struct Block {
    const std::string* prefix;  // interned
    const Names* names;
    std::unique_ptr<StatCell[]> cells;
    Block* next;  // the Store's chain of blocks with the same prefix
  };
  template <class T>
  T& findOrCreate(Table<T>& table, std::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The cell of the block stat `prefix` + `suffix` of `kind`, or null.
  StatCell* blockCell(const std::string* prefix, const std::string* suffix, StatKind kind) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  template <class T>
  void adoptInto(Table<T>& table, const std::string* prefix, const std::string* suffix,
                 StatCell& cell) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  template <class T>
  void forEachSorted(const Table<T>& table, const std::function<void(const T&)>& cb) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  const std::string* intern(std::string_view text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  mutable std::mutex mutex_;
  // Prefixes and suffixes of every name (node-based: the pointers stay valid).
  absl::node_hash_set<std::string> symbols_ ABSL_GUARDED_BY(mutex_);
  Table<Counter> counters_ ABSL_GUARDED_BY(mutex_);
  Table<Gauge> gauges_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<const StatSpec*, std::unique_ptr<Names>> names_ ABSL_GUARDED_BY(mutex_);
  std::deque<Block> blocks_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<const std::string*, Block*> block_chains_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::unique_ptr<TextReadout>, std::less<>> text_readouts_
      ABSL_GUARDED_BY(mutex_);
};

// A name prefix over a Store ("cluster.service1." + "upstream_rq_total").
class Scope {
 public:
  Scope(Store& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}
  Counter& counter(std::string_view name) { return store_.counter(prefix_ + std::string(name)); }
  Gauge& gauge(std::string_view name) { return store_.gauge(prefix_ + std::string(name)); }
  TextReadout& textReadout(std::string_view name) {
    return store_.textReadout(prefix_ + std::string(name));
  }
  StatCell* block(const StatTable& table) { return store_.block(prefix_, table); }
  Scope child(std::string_view name) const {
    return Scope(store_, prefix_ + std::string(name) + ".");
  }
  Store& store() { return store_; }
  const std::string& prefix() const { return prefix_; }

 private:
  Store& store_;
  std::string prefix_;
};

}  // namespace Proxy::Stats

// A component's stats as one block (ClusterStats). The component lists them once, Envoy's
// ALL_*_STATS way:
//   #define MY_STATS(COUNTER, GAUGE) COUNTER(rq_total) GAUGE(cx_active)
// and these make its table's entries (MY_STATS(PROXY_STAT_SPEC_COUNTER, PROXY_STAT_SPEC_GAUGE)),
// an enum of cell indexes (PROXY_STAT_INDEX: rq_total_index, ...) and const accessors over a
// `StatCell* cells_` member (PROXY_STAT_COUNTER_ACCESSOR: CounterRef rq_total()).
#define PROXY_STAT_SPEC_COUNTER(name) \
  ::Proxy::Stats::StatSpec{#name, ::Proxy::Stats::StatKind::kCounter},
#define PROXY_STAT_SPEC_GAUGE(name) \
  ::Proxy::Stats::StatSpec{#name, ::Proxy::Stats::StatKind::kGauge},
#define PROXY_STAT_INDEX(name) name##_index,
#define PROXY_STAT_COUNTER_ACCESSOR(name)                    \
  ::Proxy::Stats::CounterRef name() const {                  \
    return ::Proxy::Stats::CounterRef(cells_[name##_index]); \
  }
#define PROXY_STAT_GAUGE_ACCESSOR(name)                    \
  ::Proxy::Stats::GaugeRef name() const {                  \
    return ::Proxy::Stats::GaugeRef(cells_[name##_index]); \
  }
