#pragma once

// The listener manager (main thread): applies listener configs — from the bootstrap or LDS —
// with Envoy's lifecycle. Three lists:
//   warming   built and bound, waiting for its init targets (its RDS route configurations);
//   active    on every worker, accepting;
//   draining  replaced or removed: not accepting, its connections finishing, until the drain
//             time is over; then removed from the workers and destroyed.
// An update with the same config hash is a no-op. A changed listener warms beside the old one
// and replaces it on every worker in one step when warm, taking over the same sockets when the
// address did not change; when only its filter chains changed the update is in place and only
// connections on removed chains drain. A config that fails to build or bind is rejected with a
// message naming the field, and the old version keeps serving.

#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "proxy/event/dispatcher.h"
#include "proxy/listener/connection_handler.h"
#include "proxy/listener/listener_config.h"
#include "proxy/stats/stats.h"

namespace Proxy::Listener {

// How the manager reaches one worker's connection handler.
class WorkerHandle {
 public:
  virtual ~WorkerHandle() = default;
  // Safe from the main thread: runs `cb` on the worker's thread.
  virtual void post(std::function<void(ConnectionHandler&)> cb) = 0;
};

// "listener_manager." stats with Envoy's names.
struct ListenerManagerStats {
  explicit ListenerManagerStats(Stats::Scope scope);
  Stats::Counter& listener_added;
  Stats::Counter& listener_modified;
  Stats::Counter& listener_removed;
  Stats::Counter& listener_in_place_updated;
  Stats::Counter& listener_create_success;
  Stats::Counter& listener_create_failure;
  Stats::Gauge& total_listeners_warming;
  Stats::Gauge& total_listeners_active;
  Stats::Gauge& total_listeners_draining;
  Stats::Counter& workers_started;
};

class ListenerManagerImpl {
 public:
  // What admin shows of one listener version.
  struct ListenerView {
    const ListenerConfig& config;
    const std::string& version_info;
    SystemTime last_updated;
    bool added_via_api;
  };
  // The last rejected config of a listener (Envoy's /config_dump error_state).
  struct ErrorState {
    envoy::config::listener::v3::Listener failed_configuration;
    SystemTime last_update_attempt;
    std::string details;
  };

  ListenerManagerImpl(Event::Dispatcher& main_dispatcher, std::vector<WorkerHandle*> workers,
                      Stats::Store& store, Router::RouteConfigProviderManager* rds,
                      std::chrono::milliseconds drain_time);
  ~ListenerManagerImpl();

  // Main thread, before the first listener: how route configurations inline in listeners
  // check their clusters (ListenerBuildContext::cluster_exists). Unset: not checked.
  void setClusterExistsCallback(std::function<bool(std::string_view)> cb) {
    cluster_exists_ = std::move(cb);
  }
  // Main thread, before the first listener: the secrets TLS contexts may name.
  void setSecretManager(Tls::SecretManager* secrets) { secrets_ = secrets; }
  // Main thread, before the first listener: the overload manager's global downstream
  // connection limit the listeners count against (unless they ignore it). Outlives the workers.
  void setGlobalConnectionLimit(Network::GlobalConnectionLimit* limit) {
    global_connection_limit_ = limit;
  }

  // Main thread. Returns true when something changed, false for a no-op (identical config).
  // Errors name the listener and field; the previous version (if any) keeps serving and the
  // failure is recorded as the listener's error state.
  absl::StatusOr<bool> addOrUpdateListener(const envoy::config::listener::v3::Listener& config,
                                           const std::string& version_info, bool added_via_api);
  // Main thread. Drains and removes the listener (active or warming). False when unknown or
  // static.
  bool removeListener(const std::string& name);

  // Main thread. Workers are running: put every warm listener on them. Until then listeners
  // only warm. `cb` runs once every listener that was warm at the call is on every worker.
  void startWorkers(std::function<void()> cb);
  // True when no listener is warming (server initialisation waits for this).
  bool allWarm() const { return warming_.empty(); }
  // Runs (once) when the last warming listener becomes active or is dropped.
  void setAllWarmCallback(std::function<void()> cb);

  // Server shutdown / POST /drain_listeners: stop accepting everywhere, close the listen
  // sockets once no worker accepts (new connects are refused), and drain connections
  // (listeners with drain_type MODIFY_ONLY are left alone, as Envoy does). Warming listeners
  // are dropped, and from then on addOrUpdateListener() is a no-op (false).
  void stopAndDrainAll();
  // Connections still open on all listeners (read from atomic gauges: no round trip).
  int64_t activeConnections() const;

  void forEachActive(const std::function<void(const ListenerView&)>& cb) const;
  void forEachWarming(const std::function<void(const ListenerView&)>& cb) const;
  void forEachDraining(const std::function<void(const ListenerView&)>& cb) const;
  const std::map<std::string, ErrorState>& errorStates() const { return errors_; }
  ListenerManagerStats& stats() { return stats_; }

 private:
  struct ListenerImpl {
    ListenerConfigSharedPtr config;
    std::string version_info;
    SystemTime last_updated;
    bool added_via_api;
    // Cancels the RDS ready callbacks when this version is dropped before it warmed.
    std::vector<std::shared_ptr<void>> init_handles;
    size_t pending_init = 0;
  };
  using ListenerImplPtr = std::unique_ptr<ListenerImpl>;

  struct DrainingListener {
    ListenerImplPtr listener;
    uint64_t tag;  // the version on the workers that is draining
    bool in_place;
    Event::TimerPtr timer;
  };

  absl::Status checkDuplicateAddress(const envoy::config::listener::v3::Listener& config) const;
  void startInit(ListenerImpl& listener);
  void onListenerWarm(const std::string& name);
  // Puts a warm listener on the workers, replacing `name`'s active version if any.
  void activate(ListenerImplPtr listener);
  void drain(ListenerImplPtr listener, uint64_t tag, bool in_place);
  void onDrainDone(std::list<DrainingListener>::iterator it);
  // Runs `cb` on every worker, then `done` on main.
  void runOnAllWorkers(std::function<void(ConnectionHandler&)> cb, std::function<void()> done);
  void updateGauges();
  void recordError(const envoy::config::listener::v3::Listener& config, const std::string& details);

  Event::Dispatcher& main_dispatcher_;
  std::vector<WorkerHandle*> workers_;
  Stats::Store& store_;
  Router::RouteConfigProviderManager* rds_;
  std::function<bool(std::string_view)> cluster_exists_;
  Tls::SecretManager* secrets_ = nullptr;
  Network::GlobalConnectionLimit* global_connection_limit_ = nullptr;
  const std::chrono::milliseconds drain_time_;
  ListenerManagerStats stats_;
  std::map<std::string, ListenerImplPtr> warming_;
  std::map<std::string, ListenerImplPtr> active_;
  std::list<DrainingListener> draining_;
  std::map<std::string, ErrorState> errors_;
  bool workers_started_ = false;
  bool stopped_ = false;  // stopAndDrainAll() was called
  std::function<void()> all_warm_cb_;
  // Posted callbacks check it so that they never touch a destroyed manager.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace Proxy::Listener
