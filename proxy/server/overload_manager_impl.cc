#include "proxy/server/overload_manager_impl.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.pb.h"

namespace Proxy::Server {

namespace {

constexpr char kGlobalDownstreamMaxConnections[] =
    "envoy.resource_monitors.global_downstream_max_connections";

absl::Status fieldError(const std::string& field, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

}  // namespace

absl::StatusOr<std::unique_ptr<OverloadManagerImpl>> OverloadManagerImpl::create(
    const envoy::config::overload::v3::OverloadManager& config) {
  auto manager = std::unique_ptr<OverloadManagerImpl>(new OverloadManagerImpl());
  for (int i = 0; i < config.resource_monitors_size(); i++) {
    const auto& monitor = config.resource_monitors(i);
    const std::string path = absl::StrCat("resource_monitors[", i, "]");
    if (monitor.name() != kGlobalDownstreamMaxConnections) {
      return fieldError(absl::StrCat(path, ".name"),
                        absl::StrCat("resource monitor '", monitor.name(), "' not supported"));
    }
    if (manager->limit_ != nullptr) {
      return fieldError(absl::StrCat(path, ".name"),
                        absl::StrCat("duplicate resource monitor '", monitor.name(), "'"));
    }
    envoy::extensions::resource_monitors::downstream_connections::v3::DownstreamConnectionsConfig
        limit;
    if (!monitor.has_typed_config() || !monitor.typed_config().UnpackTo(&limit)) {
      return fieldError(absl::StrCat(path, ".typed_config"),
                        "expected a DownstreamConnectionsConfig");
    }
    if (limit.max_active_downstream_connections() <= 0) {
      return fieldError(absl::StrCat(path, ".typed_config.max_active_downstream_connections"),
                        "must be greater than 0");
    }
    manager->limit_ = std::make_unique<Network::GlobalConnectionLimit>(
        static_cast<uint64_t>(limit.max_active_downstream_connections()));
  }
  return manager;
}

}  // namespace Proxy::Server
