#include "proxy/stats/stats.h"

#include "absl/strings/str_cat.h"

namespace Proxy::Stats {

namespace {

template <class T, class Map>
T& findOrCreate(Map& map, std::string_view name) {
  auto it = map.find(name);
  if (it == map.end()) {
    it = map.emplace(std::string(name), std::make_unique<T>(std::string(name))).first;
  }
  return *it->second;
}

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

Counter& Store::counter(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return findOrCreate<Counter>(counters_, name);
}

Gauge& Store::gauge(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return findOrCreate<Gauge>(gauges_, name);
}

TextReadout& Store::textReadout(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return findOrCreate<TextReadout>(text_readouts_, name);
}

void Store::forEachCounter(const std::function<void(const Counter&)>& cb) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, counter] : counters_) {
    cb(*counter);
  }
}

void Store::forEachGauge(const std::function<void(const Gauge&)>& cb) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, gauge] : gauges_) {
    cb(*gauge);
  }
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
