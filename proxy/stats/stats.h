#pragma once

// Counters and gauges with Envoy's names ("cluster.service1.upstream_rq_total"). Stats are
// created on the main thread while config is applied, and updated from any thread with relaxed
// atomics: no lock on the request path. A stat lives as long as the Store; references to it
// stay valid (never moved), so hot paths keep a pointer.
//
// Memory: a name is kept as two interned parts, the text up to and including its last '.' and
// the rest, so "cluster.<name>." is stored once per cluster and "upstream_rq_total" once per
// process, and a stat of the Store is 32 bytes (Envoy's stat-name symbol tables are the idea):
// 10,000 clusters' ~40 stats each take ~13 MB rather than ~95 MB with a string per name
// (issue 14). Names are composed when admin lists them.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_set.h"

namespace Proxy::Stats {

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

class Counter {
 public:
  explicit Counter(std::string name) : name_(std::move(name)) {}
  Counter(const std::string* prefix, const std::string* suffix) : name_(prefix, suffix) {}
  void inc() { value_.fetch_add(1, std::memory_order_relaxed); }
  void add(uint64_t amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  std::string name() const { return name_.str(); }
  const StatName& statName() const { return name_; }

 private:
  friend class Store;
  std::atomic<uint64_t> value_{0};
  StatName name_;
  Counter* next_ = nullptr;  // the Store's chain of stats with the same prefix
};

class Gauge {
 public:
  explicit Gauge(std::string name) : name_(std::move(name)) {}
  Gauge(const std::string* prefix, const std::string* suffix) : name_(prefix, suffix) {}
  void inc() { add(1); }
  void dec() { sub(1); }
  void add(int64_t amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void sub(int64_t amount) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  void set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }
  std::string name() const { return name_.str(); }
  const StatName& statName() const { return name_; }

 private:
  friend class Store;
  std::atomic<int64_t> value_{0};
  StatName name_;
  Gauge* next_ = nullptr;  // the Store's chain of stats with the same prefix
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
  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name);
  TextReadout& textReadout(std::string_view name);

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
  template <class T>
  T& findOrCreate(Table<T>& table, std::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  template <class T>
  void forEachSorted(const Table<T>& table, const std::function<void(const T&)>& cb) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  const std::string* intern(std::string_view text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  mutable std::mutex mutex_;
  // Prefixes and suffixes of every name (node-based: the pointers stay valid).
  absl::node_hash_set<std::string> symbols_ ABSL_GUARDED_BY(mutex_);
  Table<Counter> counters_ ABSL_GUARDED_BY(mutex_);
  Table<Gauge> gauges_ ABSL_GUARDED_BY(mutex_);
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
