#pragma once

// Counters and gauges with Envoy's names ("cluster.service1.upstream_rq_total"). Stats are
// created on the main thread while config is applied, and updated from any thread with relaxed
// atomics: no lock on the request path. A stat lives as long as the Store; references to it
// stay valid (node-based storage), so hot paths keep a pointer.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"

namespace Proxy::Stats {

class Counter {
 public:
  explicit Counter(std::string name) : name_(std::move(name)) {}
  void inc() { value_.fetch_add(1, std::memory_order_relaxed); }
  void add(uint64_t amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  explicit Gauge(std::string name) : name_(std::move(name)) {}
  void inc() { add(1); }
  void dec() { sub(1); }
  void add(int64_t amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void sub(int64_t amount) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  void set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  std::atomic<int64_t> value_{0};
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
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_ ABSL_GUARDED_BY(mutex_);
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
