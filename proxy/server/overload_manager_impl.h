#pragma once

// The overload manager (Bootstrap.overload_manager), as far as the proxy implements it: the
// envoy.resource_monitors.global_downstream_max_connections monitor, a cap on the downstream
// connections open at once over every listener that does not set ignore_global_conn_limit
// (and the admin listener unless Admin.ignore_global_conn_limit). Built on the main thread at
// startup; the count itself is an atomic shared by the workers (Network::GlobalConnectionLimit).
// Other monitors, actions and load shed points are refused.

#include <memory>

#include "absl/status/statusor.h"
#include "envoy/config/overload/v3/overload.pb.h"
#include "proxy/network/connection_limit.h"

namespace Proxy::Server {

class OverloadManagerImpl {
 public:
  // Errors name the field below overload_manager:
  //   "resource_monitors[0].typed_config.max_active_downstream_connections: must be greater
  //   than 0".
  static absl::StatusOr<std::unique_ptr<OverloadManagerImpl>> create(
      const envoy::config::overload::v3::OverloadManager& config);

  // Null when no global downstream connection limit is configured. Lives as long as this
  // object, which the server keeps until every worker and connection is gone.
  Network::GlobalConnectionLimit* globalConnectionLimit() const { return limit_.get(); }

 private:
  std::unique_ptr<Network::GlobalConnectionLimit> limit_;
};

}  // namespace Proxy::Server
