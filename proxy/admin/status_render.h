#pragma once

// The admin pages that list what the server runs: /listeners and /clusters, as text (Envoy's
// "name::address" and "cluster::host::stat::value" lines) or, with json=true, as Envoy's
// ?format=json documents.

#include <string>

#include "proxy/listener/listener_manager.h"
#include "proxy/upstream/cluster_manager_impl.h"

namespace Proxy::Admin {

std::string renderListeners(const Listener::ListenerManagerImpl& listener_manager, bool json);
std::string renderClusters(const Upstream::ClusterManagerImpl& cluster_manager, bool json);

}  // namespace Proxy::Admin
