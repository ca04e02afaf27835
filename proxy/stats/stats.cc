#include "proxy/stats/stats.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/common/assert.h"

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
  // A block's stat looked up by name (tests, admin-style readers): an object over the block's
  // cell, made on first lookup only, so that both count the same.
  StatCell* cell = blockCell(prefix, suffix, T::kKind);
  T& created = cell != nullptr ? table.stats.emplace_back(prefix, suffix, cell)
                               : table.stats.emplace_back(prefix, suffix);
  created.next_ = head;
  head = &created;
  return created;
}

StatCell* Store::blockCell(const std::string* prefix, const std::string* suffix,
                           StatKind kind) const {
  auto it = block_chains_.find(prefix);
  if (it == block_chains_.end()) {
    return nullptr;
  }
  for (const Block* block = it->second; block != nullptr; block = block->next) {
    const std::vector<const std::string*>& suffixes = block->names->suffixes;
    for (size_t i = 0; i < suffixes.size(); i++) {
      if (suffixes[i] == suffix && block->names->table.specs[i].kind == kind) {
        return &block->cells[i];
      }
    }
  }
  return nullptr;
}

template <class T>
void Store::adoptInto(Table<T>& table, const std::string* prefix, const std::string* suffix,
                      StatCell& cell) {
  auto it = table.chains.find(prefix);
  if (it == table.chains.end()) {
    return;
  }
  for (T* stat = it->second; stat != nullptr; stat = stat->next_) {
    if (stat->name_.suffix() == suffix) {
      // Repoint first, then carry the value over with an add: an update that still lands in
      // the old cell between the two is lost, one racing with the add is not. Only a name
      // looked up before its block existed gets here (config order, tests), never a hot path.
      StatCell* old = stat->cell_.exchange(&cell, std::memory_order_relaxed);
      cell.fetch_add(old->load(std::memory_order_relaxed), std::memory_order_relaxed);
      return;
    }
  }
}

StatCell* Store::block(std::string_view prefix, const StatTable& table) {
  RELEASE_ASSERT(prefix.empty() || prefix.back() == '.', "a block's prefix ends with '.'");
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string* interned_prefix = intern(prefix);
  Block*& head = block_chains_[interned_prefix];
  for (Block* block = head; block != nullptr; block = block->next) {
    if (block->names->table.specs == table.specs) {
      return block->cells.get();
    }
  }
  std::unique_ptr<Names>& names = names_[table.specs];
  if (names == nullptr) {
    names = std::make_unique<Names>();
    names->table = table;
    names->suffixes.reserve(table.size);
    for (size_t i = 0; i < table.size; i++) {
      RELEASE_ASSERT(table.specs[i].name.find('.') == std::string_view::npos,
                     "a block's stat name has no '.'");
      names->suffixes.push_back(intern(table.specs[i].name));
    }
  }
  // new StatCell[n]() value-initializes: every cell starts at zero.
  std::unique_ptr<StatCell[]> cells(new StatCell[table.size]());
  for (size_t i = 0; i < table.size; i++) {
    const std::string* suffix = names->suffixes[i];
    RELEASE_ASSERT(blockCell(interned_prefix, suffix, table.specs[i].kind) == nullptr,
                   "two stat blocks under one prefix share a name");
    if (table.specs[i].kind == StatKind::kCounter) {
      adoptInto(counters_, interned_prefix, suffix, cells[i]);
    } else {
      adoptInto(gauges_, interned_prefix, suffix, cells[i]);
    }
  }
  Block& created =
      blocks_.emplace_back(Block{interned_prefix, names.get(), std::move(cells), head});
  head = &created;
  return created.cells.get();
}

template <class T>
void Store::forEachSorted(const Table<T>& table, const std::function<void(const T&)>& cb) const {
  // A Store object over a block's cell is skipped here: the block's own entry lists it.
  struct Entry {
    std::string name;
    const T* stat;  // null: a block's cell
    const std::string* prefix;
    const std::string* suffix;
    StatCell* cell;
  };
  std::vector<Entry> sorted;
  sorted.reserve(table.stats.size());
  for (const T& stat : table.stats) {
    if (&stat.cell() == &stat.own_) {
      sorted.push_back(Entry{stat.name(), &stat, nullptr, nullptr, nullptr});
    }
  }
  for (const Block& block : blocks_) {
    const StatTable& specs = block.names->table;
    for (size_t i = 0; i < specs.size; i++) {
      if (specs.specs[i].kind == T::kKind) {
        const std::string* suffix = block.names->suffixes[i];
        sorted.push_back(
            Entry{*block.prefix + *suffix, nullptr, block.prefix, suffix, &block.cells[i]});
      }
    }
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const Entry& entry : sorted) {
    if (entry.stat != nullptr) {
      cb(*entry.stat);
    } else {
      const T view(entry.prefix, entry.suffix, entry.cell);
      cb(view);
    }
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
