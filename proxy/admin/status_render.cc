#include "proxy/admin/status_render.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/admin/json_util.h"
#include "proxy/common/json.h"
#include "proxy/upstream/host_impl.h"

namespace Proxy::Admin {

namespace {

// Envoy's HostHealthStatus as JSON: the flags that are set, then eds_health_status.
std::string healthStatusJson(const Upstream::Host& host) {
  const Upstream::HostHealthState& state = host.healthState();
  std::string out;
  if (state.get(Upstream::HealthFlag::FailedActiveHc)) {
    out += "\"failed_active_health_check\":true,";
  }
  if (state.get(Upstream::HealthFlag::FailedOutlierCheck)) {
    out += "\"failed_outlier_check\":true,";
  }
  if (state.get(Upstream::HealthFlag::PendingActiveHc)) {
    out += "\"pending_active_hc\":true,";
  }
  if (state.get(Upstream::HealthFlag::ActiveHcTimeout)) {
    out += "\"active_hc_timeout\":true,";
  }
  const char* eds = "HEALTHY";
  switch (host.health()) {
    case Upstream::HealthStatus::Unhealthy:
      eds = "UNHEALTHY";
      break;
    case Upstream::HealthStatus::Draining:
      eds = "DRAINING";
      break;
    case Upstream::HealthStatus::Degraded:
      eds = "DEGRADED";
      break;
    default:
      break;
  }
  return absl::StrCat(out, "\"eds_health_status\":\"", eds, "\"");
}

}  // namespace

std::string renderListeners(const Listener::ListenerManagerImpl& listener_manager, bool json) {
  std::string out;
  std::vector<std::string> items;
  listener_manager.forEachActive([&](const Listener::ListenerManagerImpl::ListenerView& l) {
    const Network::Address& address = l.config.address();
    if (json) {
      items.push_back(absl::StrCat(
          "{\"name\":", Json::quote(l.config.name()),
          ",\"local_address\":{\"socket_address\":{\"address\":", Json::quote(address.ip()),
          ",\"port_value\":", address.port(), "}}}"));
    } else {
      absl::StrAppend(&out, l.config.name(), "::", address.asString(), "\n");
    }
  });
  if (json) {
    return absl::StrCat("{\"listener_statuses\":[", absl::StrJoin(items, ","), "]}\n");
  }
  return out;
}

std::string renderClusters(const Upstream::ClusterManagerImpl& cluster_manager, bool json) {
  // Envoy's /clusters layout: "cluster::host::stat::value" lines; ?format=json for tools.
  std::string out;
  std::vector<std::string> json_clusters;
  cluster_manager.forEachCluster([&](const Upstream::ClusterManagerImpl::ClusterView& view) {
    const std::string& name = view.info.name();
    std::vector<std::string> json_hosts;
    if (!json) {
      absl::StrAppend(&out, name, "::observability_name::", name, "\n");
      if (view.outlier_detector != nullptr) {
        // Envoy's lines, -1 until an interval had enough hosts with enough requests.
        const Upstream::Outlier::DetectorImpl& detector = *view.outlier_detector;
        absl::StrAppend(&out, name,
                        "::outlier::success_rate_average::", detector.successRateAverage(false),
                        "\n");
        absl::StrAppend(&out, name, "::outlier::success_rate_ejection_threshold::",
                        detector.successRateEjectionThreshold(false), "\n");
        absl::StrAppend(&out, name, "::outlier::local_origin_success_rate_average::",
                        detector.successRateAverage(true), "\n");
        absl::StrAppend(&out, name, "::outlier::local_origin_success_rate_ejection_threshold::",
                        detector.successRateEjectionThreshold(true), "\n");
      }
      absl::StrAppend(&out, name, "::added_via_api::", view.added_via_api ? "true" : "false", "\n");
    }
    for (const Upstream::HostConstSharedPtr& host : view.hosts.hosts) {
      const Upstream::HostStats& st = host->stats();
      const std::string health = Upstream::healthFlagsString(*host);
      const std::pair<const char*, int64_t> stats[] = {
          {"cx_active", st.cx_active.load()},
          {"cx_connect_fail", static_cast<int64_t>(st.cx_connect_fail.load())},
          {"cx_total", static_cast<int64_t>(st.cx_total.load())},
          {"rq_active", st.rq_active.load()},
          {"rq_error", static_cast<int64_t>(st.rq_error.load())},
          {"rq_success", static_cast<int64_t>(st.rq_success.load())},
          {"rq_timeout", static_cast<int64_t>(st.rq_timeout.load())},
          {"rq_total", static_cast<int64_t>(st.rq_total.load())},
      };
      const std::string address = host->address().asString();
      if (json) {
        std::vector<std::string> items;
        for (const auto& [stat, value] : stats) {
          items.push_back(absl::StrCat("{\"name\":\"", stat, "\",\"value\":", value, "}"));
        }
        json_hosts.push_back(absl::StrCat(
            "{\"address\":{\"socket_address\":{\"address\":", Json::quote(host->address().ip()),
            ",\"port_value\":", host->address().port(), "}},\"stats\":[", absl::StrJoin(items, ","),
            "],\"health_status\":{", healthStatusJson(*host), "},\"weight\":", host->weight(),
            ",\"hostname\":", Json::quote(host->hostname()), ",\"priority\":", host->priority(),
            "}"));
        continue;
      }
      for (const auto& [stat, value] : stats) {
        absl::StrAppend(&out, name, "::", address, "::", stat, "::", value, "\n");
      }
      absl::StrAppend(&out, name, "::", address, "::hostname::", host->hostname(), "\n");
      absl::StrAppend(&out, name, "::", address, "::health_flags::", health, "\n");
      absl::StrAppend(&out, name, "::", address, "::weight::", host->weight(), "\n");
      absl::StrAppend(&out, name, "::", address, "::priority::", host->priority(), "\n");
      absl::StrAppend(&out, name, "::", address, "::success_rate::",
                      Upstream::Outlier::DetectorImpl::hostSuccessRate(*host, false), "\n");
      absl::StrAppend(&out, name, "::", address, "::local_origin_success_rate::",
                      Upstream::Outlier::DetectorImpl::hostSuccessRate(*host, true), "\n");
    }
    if (json) {
      json_clusters.push_back(
          absl::StrCat("{\"name\":", Json::quote(name),
                       ",\"added_via_api\":", view.added_via_api ? "true" : "false",
                       ",\"host_statuses\":[", absl::StrJoin(json_hosts, ","), "]}"));
    }
  });
  if (json) {
    return absl::StrCat("{\"cluster_statuses\":[", absl::StrJoin(json_clusters, ","), "]}\n");
  }
  return out;
}

}  // namespace Proxy::Admin
