#pragma once

// /stats: the store's counters and gauges as Envoy's ?format=json document, or as its text
// lines (optionally only those containing ?filter=).

#include <optional>
#include <string>
#include <string_view>

#include "proxy/stats/stats.h"

namespace Proxy::Admin {

std::string renderStatsJson(const Stats::Store& store);
std::string renderStatsText(const Stats::Store& store, std::optional<std::string_view> filter);

}  // namespace Proxy::Admin
