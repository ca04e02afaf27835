#include "proxy/admin/config_dump.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/admin/json_util.h"
#include "proxy/common/json.h"

namespace Proxy::Admin {

std::string renderConfigDump(const ConfigDumpSources& sources, bool include_eds) {
  using ListenerView = Listener::ListenerManagerImpl::ListenerView;
  const std::string boot_time = Json::quote(timestamp(sources.start_time));
  auto state = [](const ListenerView& l) {
    return absl::StrCat("{\"version_info\":", Json::quote(l.version_info),
                        ",\"listener\":", toJson(l.config.proto()),
                        ",\"last_updated\":", Json::quote(timestamp(l.last_updated)), "}");
  };
  // Envoy's ListenersConfigDump: static listeners, then per dynamic listener its active,
  // warming and draining versions and its last rejected config.
  std::vector<std::string> static_listeners;
  std::map<std::string, std::vector<std::string>> dynamic;
  sources.listener_manager.forEachActive([&](const ListenerView& l) {
    if (!l.added_via_api) {
      static_listeners.push_back(absl::StrCat("{\"listener\":", toJson(l.config.proto()),
                                              ",\"last_updated\":", boot_time, "}"));
    } else {
      dynamic[l.config.name()].push_back(absl::StrCat("\"active_state\":", state(l)));
    }
  });
  sources.listener_manager.forEachWarming([&](const ListenerView& l) {
    dynamic[l.config.name()].push_back(absl::StrCat("\"warming_state\":", state(l)));
  });
  sources.listener_manager.forEachDraining([&](const ListenerView& l) {
    if (l.added_via_api) {
      dynamic[l.config.name()].push_back(absl::StrCat("\"draining_state\":", state(l)));
    }
  });
  for (const auto& [name, error] : sources.listener_manager.errorStates()) {
    dynamic[name].push_back(absl::StrCat(
        "\"error_state\":{\"failed_configuration\":", toJson(error.failed_configuration),
        ",\"last_update_attempt\":", Json::quote(timestamp(error.last_update_attempt)),
        ",\"details\":", Json::quote(error.details), "}"));
  }
  std::vector<std::string> dynamic_listeners;
  dynamic_listeners.reserve(dynamic.size());
  for (const auto& [name, parts] : dynamic) {
    dynamic_listeners.push_back(
        absl::StrCat("{\"name\":", Json::quote(name), ",", absl::StrJoin(parts, ","), "}"));
  }

  // Routes: inline ones are static; RDS ones dynamic, with their version.
  std::vector<std::string> static_routes;
  sources.listener_manager.forEachActive([&](const ListenerView& l) {
    for (const auto& chain : l.config.proto().filter_chains()) {
      for (const auto& filter : chain.filters()) {
        envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
        if (filter.typed_config().UnpackTo(&hcm) && hcm.has_route_config()) {
          static_routes.push_back(absl::StrCat("{\"route_config\":", toJson(hcm.route_config()),
                                               ",\"last_updated\":", boot_time, "}"));
        }
      }
    }
  });
  std::vector<std::string> dynamic_routes;
  sources.rds_manager.forEach([&](const Router::RdsRouteConfigProvider& provider) {
    if (!provider.proto().name().empty()) {
      dynamic_routes.push_back(
          absl::StrCat("{\"version_info\":", Json::quote(provider.versionInfo()),
                       ",\"route_config\":", toJson(provider.proto()),
                       ",\"last_updated\":", Json::quote(timestamp(provider.lastUpdated())), "}"));
    }
  });

  // Clusters from the cluster manager: static ones, and API ones active or warming.
  std::vector<std::string> static_clusters;
  std::vector<std::string> dynamic_active;
  std::vector<std::string> dynamic_warming;
  sources.cluster_manager.forEachCluster([&](const Upstream::ClusterManagerImpl::ClusterView& c) {
    const std::string entry = absl::StrCat(
        "{",
        c.added_via_api ? absl::StrCat("\"version_info\":", Json::quote(c.version_info), ",") : "",
        "\"cluster\":", toJson(c.config()),
        ",\"last_updated\":", Json::quote(timestamp(c.last_updated)), "}");
    if (!c.added_via_api) {
      static_clusters.push_back(entry);
    } else if (c.warming) {
      dynamic_warming.push_back(entry);
    } else {
      dynamic_active.push_back(entry);
    }
  });

  // ?include_eds: Envoy's EndpointsConfigDump, the hosts each cluster currently has.
  std::string endpoints;
  if (include_eds) {
    std::vector<std::string> static_eps;
    std::vector<std::string> dynamic_eps;
    sources.cluster_manager.forEachCluster([&](const Upstream::ClusterManagerImpl::ClusterView& c) {
      std::vector<std::string> lb_endpoints;
      for (const Upstream::HostConstSharedPtr& host : c.hosts.hosts) {
        const char* health = host->health() == Upstream::HealthStatus::Unhealthy  ? "UNHEALTHY"
                             : host->health() == Upstream::HealthStatus::Draining ? "DRAINING"
                             : host->health() == Upstream::HealthStatus::Degraded ? "DEGRADED"
                                                                                  : "HEALTHY";
        lb_endpoints.push_back(absl::StrCat(
            "{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":",
            Json::quote(host->address().ip()), ",\"port_value\":", host->address().port(),
            "}}},\"health_status\":\"", health, "\",\"load_balancing_weight\":", host->weight(),
            ",\"priority\":", host->priority(), "}"));
      }
      const std::string entry = absl::StrCat(
          "{\"endpoint_config\":{\"cluster_name\":", Json::quote(c.info.name()),
          ",\"endpoints\":[{\"lb_endpoints\":[", absl::StrJoin(lb_endpoints, ","), "]}]}",
          c.added_via_api ? absl::StrCat(",\"version_info\":", Json::quote(c.version_info)) : "",
          ",\"last_updated\":", Json::quote(timestamp(c.last_updated)), "}");
      (c.added_via_api ? dynamic_eps : static_eps).push_back(entry);
    });
    endpoints =
        absl::StrCat(",{\"@type\":\"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump\",",
                     "\"static_endpoint_configs\":[", absl::StrJoin(static_eps, ","), "],",
                     "\"dynamic_endpoint_configs\":[", absl::StrJoin(dynamic_eps, ","), "]}");
  }

  return absl::StrCat(
      "{\"configs\":[",
      "{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\"bootstrap\":",
      toJson(sources.bootstrap), ",\"last_updated\":", boot_time, "},",
      "{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\",",
      "\"static_clusters\":[", absl::StrJoin(static_clusters, ","), "],",
      "\"dynamic_active_clusters\":[", absl::StrJoin(dynamic_active, ","), "],",
      "\"dynamic_warming_clusters\":[", absl::StrJoin(dynamic_warming, ","), "]},",
      "{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\",",
      "\"static_listeners\":[", absl::StrJoin(static_listeners, ","), "],",
      "\"dynamic_listeners\":[", absl::StrJoin(dynamic_listeners, ","), "]},",
      "{\"@type\":\"type.googleapis.com/envoy.admin.v3.RoutesConfigDump\",",
      "\"static_route_configs\":[", absl::StrJoin(static_routes, ","), "],",
      "\"dynamic_route_configs\":[", absl::StrJoin(dynamic_routes, ","), "]}", endpoints, "]}\n");
}

}  // namespace Proxy::Admin
