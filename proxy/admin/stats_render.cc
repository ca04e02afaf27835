#include "proxy/admin/stats_render.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "proxy/admin/json_util.h"
#include "proxy/common/json.h"

namespace Proxy::Admin {

std::string renderStatsJson(const Stats::Store& store) {
  std::vector<std::string> items;
  store.forEachCounter([&](const Stats::Counter& c) {
    items.push_back(
        absl::StrCat("{\"name\":", Json::quote(c.name()), ",\"value\":", c.value(), "}"));
  });
  store.forEachGauge([&](const Stats::Gauge& g) {
    items.push_back(
        absl::StrCat("{\"name\":", Json::quote(g.name()), ",\"value\":", g.value(), "}"));
  });
  return absl::StrCat("{\"stats\":[", absl::StrJoin(items, ","), "]}\n");
}

std::string renderStatsText(const Stats::Store& store, std::optional<std::string_view> filter) {
  std::string text = store.renderText();
  if (!filter.has_value()) {
    return text;
  }
  std::string filtered;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty() &&
        line.find(absl::string_view(filter->data(), filter->size())) != absl::string_view::npos) {
      absl::StrAppend(&filtered, line, "\n");
    }
  }
  return filtered;
}

}  // namespace Proxy::Admin
