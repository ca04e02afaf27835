#pragma once

// RDS: one provider per route configuration name, shared by every HTTP connection manager that
// names it. Each accepted update builds an immutable route table on the main thread and swaps
// it into every worker through a thread-local slot; a request keeps the table it started with
// (it holds the shared_ptr), so an update never changes a request mid-flight.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "proxy/common/ready_signal.h"
#include "proxy/common/time.h"
#include "proxy/event/dispatcher.h"
#include "proxy/router/rds.h"
#include "proxy/stats/stats.h"
#include "proxy/thread_local/thread_local.h"

namespace Proxy::Router {

class RouteConfigProviderManager;

class RdsRouteConfigProvider : public RouteConfigProvider {
 public:
  RdsRouteConfigProvider(RouteConfigProviderManager& manager, std::string name,
                         envoy::config::core::v3::ConfigSource config_source);
  ~RdsRouteConfigProvider() override;

  // Any worker (and main): this thread's current table; null until the first update.
  std::shared_ptr<const Router::Config> config() const override;

  // Main thread. Validates and builds the table, then publishes it to every thread; `done`
  // (optional) runs on main once every worker serves it. An identical configuration (same
  // serialized bytes) is a no-op that still records the version. Errors name the field
  // relative to the RouteConfiguration.
  absl::Status onConfigUpdate(const envoy::config::route::v3::RouteConfiguration& config,
                              const std::string& version_info,
                              std::function<void()> done = nullptr);
  // Main thread. The initial fetch timed out (or the resource does not exist): the provider
  // counts as ready with no routes (every request gets 404), as Envoy does, so the listener
  // that waits on it can warm.
  void onConfigUpdateFailed();

  // Main thread. True after the first update or failure.
  bool ready() const { return ready_.ready(); }
  // Main thread. `cb` runs once, when ready() becomes true (now if it already is). The
  // returned handle cancels it when destroyed.
  std::shared_ptr<void> addReadyCallback(std::function<void()> cb) {
    return ready_.addCallback(std::move(cb));
  }

  const std::string& name() const { return name_; }
  // The rds.config_source of the listener that created the provider (its initial_fetch_timeout
  // bounds the wait for the route configuration: server/xds_config.cc). Listeners that name the
  // same route configuration share the first one's.
  const envoy::config::core::v3::ConfigSource& configSource() const { return config_source_; }
  const std::string& versionInfo() const { return version_info_; }
  SystemTime lastUpdated() const { return last_updated_; }
  // The last accepted configuration (empty before the first).
  const envoy::config::route::v3::RouteConfiguration& proto() const { return proto_; }

 private:
  struct ThreadLocalConfig : public ThreadLocal::ThreadLocalObject {
    std::shared_ptr<const Router::Config> config;
  };

  RouteConfigProviderManager& manager_;
  const std::string name_;
  const envoy::config::core::v3::ConfigSource config_source_;
  ThreadLocal::SlotPtr slot_;
  ReadySignal ready_;
  std::string version_info_;
  uint64_t hash_ = 0;
  SystemTime last_updated_{};
  envoy::config::route::v3::RouteConfiguration proto_;
  Stats::Counter& update_success_;
  Stats::Counter& update_rejected_;
  Stats::Counter& update_empty_;
  Stats::Counter& config_reload_;
};

using RdsRouteConfigProviderSharedPtr = std::shared_ptr<RdsRouteConfigProvider>;

// Main thread. Hands out shared providers by name and tells the xDS layer which names are
// wanted (the RDS subscription is the set of names some listener uses).
class RouteConfigProviderManager {
 public:
  RouteConfigProviderManager(Event::Dispatcher& main_dispatcher, ThreadLocal::Instance& tls,
                             Stats::Store& store)
      : main_dispatcher_(main_dispatcher), tls_(tls), store_(store) {}

  // The provider for `name`, created on first use (with `config_source`, the HCM's
  // rds.config_source). It lives while something holds it.
  RdsRouteConfigProviderSharedPtr getOrCreate(
      const std::string& name, const envoy::config::core::v3::ConfigSource& config_source = {});
  // The live provider for `name`, or null.
  RdsRouteConfigProviderSharedPtr find(const std::string& name) const;
  // Names with a live provider, sorted.
  std::vector<std::string> names() const;
  void forEach(const std::function<void(const RdsRouteConfigProvider&)>& cb) const;

  // Called (main thread, deferred to the next loop iteration so that a burst of listener
  // changes yields one call) whenever names() changes.
  void setNamesChangedCallback(std::function<void(const std::vector<std::string>&)> cb) {
    names_changed_ = std::move(cb);
  }

  // Main thread. Whether a cluster exists, for route configurations that set
  // validate_clusters: true (Envoy's default over RDS is false: a route to a cluster that
  // does not exist answers 503). Unset: not checked.
  void setClusterExistsCallback(std::function<bool(std::string_view)> cb) {
    cluster_exists_ = std::move(cb);
  }
  const std::function<bool(std::string_view)>& clusterExists() const { return cluster_exists_; }

  Event::Dispatcher& mainDispatcher() { return main_dispatcher_; }
  ThreadLocal::Instance& tls() { return tls_; }
  Stats::Store& store() { return store_; }

 private:
  friend class RdsRouteConfigProvider;
  void onProviderDestroyed(const std::string& name);
  void scheduleNamesChanged();

  Event::Dispatcher& main_dispatcher_;
  ThreadLocal::Instance& tls_;
  Stats::Store& store_;
  std::map<std::string, std::weak_ptr<RdsRouteConfigProvider>> providers_;
  std::function<void(const std::vector<std::string>&)> names_changed_;
  std::function<bool(std::string_view)> cluster_exists_;
  bool names_changed_scheduled_ = false;
  // Lets a posted names-changed callback notice that the manager is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace Proxy::Router
