#pragma once

// /config_dump: Envoy's admin.v3 ConfigDump as JSON (bootstrap, clusters, listeners, routes
// and, with include_eds, endpoints), built from what the server currently runs.

#include <string>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "proxy/common/time.h"
#include "proxy/listener/listener_manager.h"
#include "proxy/router/rds_impl.h"
#include "proxy/upstream/cluster_manager_impl.h"

namespace Proxy::Admin {

struct ConfigDumpSources {
  const envoy::config::bootstrap::v3::Bootstrap& bootstrap;
  SystemTime start_time;  // the static resources' last_updated
  const Listener::ListenerManagerImpl& listener_manager;
  const Upstream::ClusterManagerImpl& cluster_manager;
  const Router::RouteConfigProviderManager& rds_manager;
};

std::string renderConfigDump(const ConfigDumpSources& sources, bool include_eds);

}  // namespace Proxy::Admin
