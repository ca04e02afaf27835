#pragma once

// The route table source of an HTTP connection manager: an inline route_config (static) or RDS
// (rds_impl.h).

#include <memory>

#include "proxy/router/router.h"

namespace Proxy::Router {

// Supplies the current route table. config() is called on workers once per request; the
// returned snapshot stays valid for that request even if a newer one is published meanwhile.
class RouteConfigProvider {
 public:
  virtual ~RouteConfigProvider() = default;
  virtual std::shared_ptr<const Router::Config> config() const = 0;
};

using RouteConfigProviderSharedPtr = std::shared_ptr<RouteConfigProvider>;

// A provider for an inline route_config: one immutable table forever.
class StaticRouteConfigProvider : public RouteConfigProvider {
 public:
  explicit StaticRouteConfigProvider(std::shared_ptr<const Router::Config> config)
      : config_(std::move(config)) {}
  std::shared_ptr<const Router::Config> config() const override { return config_; }

 private:
  const std::shared_ptr<const Router::Config> config_;
};

}  // namespace Proxy::Router
