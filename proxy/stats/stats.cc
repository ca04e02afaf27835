#include "proxy/stats/stats.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace Proxy::Stats {

namespace {

// Prometheus names allow [a-zA-Z0-9_:]; Envoy maps everything else to '_'.
std::string prometheusName(std::string_view name) {
  std::string out = "envoy_";
  out.reserve(out.size() + name.size());
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == ':';
    out.push_back(ok ? c : '_');
  }
  return out;
}

}  // namespace

const std::string* Store::intern(std::string_view text) {
  auto it = symbols_.find(absl::string_view(text.data(), text.size()));
  if (it == symbols_.end()) {
    it = symbols_.emplace(text).first;
  }
  return &*it;
}

template <class T>
T& Store::findOrCreate(Table<T>& table, std::string_view name) {
  // The prefix ends with the last '.': "cluster.service1." + "upstream_rq_total". A chain holds
  // the few stats of one prefix (names end in a fixed metric name), compared by pointer.
  const size_t dot = name.rfind('.');
  const size_t split = dot == std::string_view::npos ? 0 : dot + 1;
  const std::string* prefix = intern(name.substr(0, split));
  const std::string* suffix = intern(name.substr(split));
  T*& head = table.chains[prefix];
  for (T* stat = head; stat != nullptr; stat = stat->next_) {
    if (stat->name_.suffix() == suffix) {
      return *stat;
    }
  }
  T& created = table.stats.emplace_back(prefix, suffix);
  created.next_ = head;
  head = &created;
  return created;
}

template <class T>
void Store::forEachSorted(const Table<T>& table, const std::function<void(const T&)>& cb) const {
  std::vector<std::pair<std::string, const T*>> sorted;
  sorted.reserve(table.stats.size());
  for (const T& stat : table.stats) {
    sorted.emplace_back(stat.name(), &stat);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [name, stat] : sorted) {
    cb(*stat);
  }
}

Counter& Store::counter(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return findOrCreate(counters_, name);
}

Gauge& Store::gauge(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return findOrCreate(gauges_, name);
}

TextReadout& Store::textReadout(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = text_readouts_.find(name);
  if (it == text_readouts_.end()) {
    it = text_readouts_.emplace(std::string(name), std::make_unique<TextReadout>(std::string(name)))
             .first;
  }
  return *it->second;
}

void Store::forEachCounter(const std::function<void(const Counter&)>& cb) const {
  std::lock_guard<std::mutex> lock(mutex_);
  forEachSorted(counters_, cb);
}

void Store::forEachGauge(const std::function<void(const Gauge&)>& cb) const {
  std::lock_guard<std::mutex> lock(mutex_);
  forEachSorted(gauges_, cb);
}

void Store::forEachTextReadout(const std::function<void(const TextReadout&)>& cb) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, readout] : text_readouts_) {
    cb(*readout);
  }
}

std::string Store::renderText() const {
  // Envoy prints counters, gauges and text readouts merged in name order.
  std::map<std::string, std::string> lines;
  forEachCounter([&](const Counter& c) { lines[c.name()] = absl::StrCat(c.value()); });
  forEachGauge([&](const Gauge& g) { lines[g.name()] = absl::StrCat(g.value()); });
  forEachTextReadout(
      [&](const TextReadout& t) { lines[t.name()] = absl::StrCat("\"", t.value(), "\""); });
  std::string out;
  for (const auto& [name, value] : lines) {
    absl::StrAppend(&out, name, ": ", value, "\n");
  }
  return out;
}

std::string Store::renderPrometheus() const {
  std::string out;
  forEachCounter([&](const Counter& c) {
    const std::string name = prometheusName(c.name());
    absl::StrAppend(&out, "# TYPE ", name, " counter\n", name, " ", c.value(), "\n");
  });
  forEachGauge([&](const Gauge& g) {
    const std::string name = prometheusName(g.name());
    absl::StrAppend(&out, "# TYPE ", name, " gauge\n", name, " ", g.value(), "\n");
  });
  return out;
}

}  // namespace Proxy::Stats
