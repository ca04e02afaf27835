#include "proxy/listener/listener_manager.h"

#include "absl/strings/str_cat.h"
#include "proxy/common/assert.h"
#include "spdlog/spdlog.h"

namespace Proxy::Listener {

using envoy::config::listener::v3::Listener;

ListenerManagerStats::ListenerManagerStats(Stats::Scope s)
    : listener_added(s.counter("listener_added")),
      listener_modified(s.counter("listener_modified")),
      listener_removed(s.counter("listener_removed")),
      listener_in_place_updated(s.counter("listener_in_place_updated")),
      listener_create_success(s.counter("listener_create_success")),
      listener_create_failure(s.counter("listener_create_failure")),
      total_listeners_warming(s.gauge("total_listeners_warming")),
      total_listeners_active(s.gauge("total_listeners_active")),
      total_listeners_draining(s.gauge("total_listeners_draining")),
      workers_started(s.counter("workers_started")) {}

ListenerManagerImpl::ListenerManagerImpl(Event::Dispatcher& main_dispatcher,
                                         std::vector<WorkerHandle*> workers, Stats::Store& store,
                                         Router::RouteConfigProviderManager* rds,
                                         std::chrono::milliseconds drain_time)
    : main_dispatcher_(main_dispatcher),
      workers_(std::move(workers)),
      store_(store),
      rds_(rds),
      drain_time_(drain_time),
      stats_(Stats::Scope(store, "listener_manager.")) {}

ListenerManagerImpl::~ListenerManagerImpl() {
  // Workers are stopped by now; what is left is main-thread state.
  draining_.clear();
  warming_.clear();
  active_.clear();
}

absl::Status ListenerManagerImpl::checkDuplicateAddress(const Listener& config) const {
  const std::string address = config.address().SerializeAsString();
  if (config.address().socket_address().port_value() == 0) {
    return absl::OkStatus();  // port 0 binds a fresh port every time
  }
  for (const auto* list : {&active_, &warming_}) {
    for (const auto& [name, listener] : *list) {
      if (name != config.name() &&
          listener->config->proto().address().SerializeAsString() == address) {
        const auto& sa = config.address().socket_address();
        return absl::InvalidArgumentError(
            absl::StrCat("address: '", sa.address(), ":", sa.port_value(),
                         "' is already used by listener '", name, "'"));
      }
    }
  }
  return absl::OkStatus();
}

void ListenerManagerImpl::recordError(const Listener& config, const std::string& details) {
  stats_.listener_create_failure.inc();
  errors_[config.name()] = ErrorState{config, main_dispatcher_.timeSource().systemTime(), details};
}

absl::StatusOr<bool> ListenerManagerImpl::addOrUpdateListener(const Listener& config,
                                                              const std::string& version_info,
                                                              bool added_via_api) {
  ASSERT(main_dispatcher_.isThreadSafe());
  const std::string& name = config.name();
  if (name.empty()) {
    return absl::InvalidArgumentError("name: must not be empty");
  }
  auto active = active_.find(name);
  auto warming = warming_.find(name);
  ListenerImpl* newest = warming != warming_.end() ? warming->second.get()
                         : active != active_.end() ? active->second.get()
                                                   : nullptr;
  if (stopped_) {
    // Draining for shutdown (or POST /drain_listeners): Envoy, too, takes no listener any more.
    spdlog::info("listener '{}' not added or updated: listeners are stopped", name);
    return false;
  }
  const uint64_t hash = messageHash(config);
  if (newest != nullptr && newest->config->hash() == hash) {
    return false;  // identical: nothing to build, warm or drain
  }
  if (newest != nullptr && !newest->added_via_api && added_via_api) {
    const std::string details = "cannot update a static listener (from the bootstrap)";
    recordError(config, details);
    return absl::InvalidArgumentError(details);
  }
  if (absl::Status status = checkDuplicateAddress(config); !status.ok()) {
    recordError(config, std::string(status.message()));
    return status;
  }

  ListenerBuildContext context;
  context.workers = static_cast<uint32_t>(std::max<size_t>(workers_.size(), 1));
  context.store = &store_;
  context.rds = rds_;
  context.cluster_exists = cluster_exists_;
  context.secrets = secrets_;
  context.previous = newest != nullptr ? newest->config.get() : nullptr;
  context.global_connection_limit = global_connection_limit_;
  auto built = ListenerConfig::create(config, context);
  if (!built.ok()) {
    recordError(config, std::string(built.status().message()));
    return built.status();
  }
  stats_.listener_create_success.inc();
  errors_.erase(name);
  if (active != active_.end() || warming != warming_.end()) {
    stats_.listener_modified.inc();
  } else {
    stats_.listener_added.inc();
  }

  auto listener = std::make_unique<ListenerImpl>();
  listener->config = *std::move(built);
  listener->version_info = version_info;
  listener->last_updated = main_dispatcher_.timeSource().systemTime();
  listener->added_via_api = added_via_api;
  // A newer version replaces one that was still warming: that one never served.
  if (warming != warming_.end()) {
    warming_.erase(warming);
  }
  ListenerImpl& ref = *listener;
  warming_[name] = std::move(listener);
  startInit(ref);
  updateGauges();
  return true;
}

void ListenerManagerImpl::startInit(ListenerImpl& listener) {
  const std::string name = listener.config->name();
  const uint64_t tag = listener.config->tag();
  auto on_ready = [this, name, tag] {
    auto it = warming_.find(name);
    if (it == warming_.end() || it->second->config->tag() != tag) {
      return;
    }
    if (--it->second->pending_init == 0) {
      onListenerWarm(name);
    }
  };
  for (const auto& provider : listener.config->rdsProviders()) {
    if (provider->ready()) {
      continue;
    }
    listener.pending_init++;
    listener.init_handles.push_back(provider->addReadyCallback(on_ready));
  }
  // TLS contexts whose secrets (SDS) have not arrived: Envoy's init targets of the socket
  // factories.
  for (const auto& provider : listener.config->pendingTlsProviders()) {
    listener.pending_init++;
    listener.init_handles.push_back(provider->addReadyCallback(on_ready));
  }
  if (listener.pending_init == 0) {
    onListenerWarm(name);
  }
}

void ListenerManagerImpl::onListenerWarm(const std::string& name) {
  auto it = warming_.find(name);
  ASSERT(it != warming_.end());
  ListenerImplPtr listener = std::move(it->second);
  warming_.erase(it);
  listener->init_handles.clear();
  spdlog::info("listener '{}' warmed (version '{}')", name, listener->version_info);
  activate(std::move(listener));
  updateGauges();
  if (warming_.empty() && all_warm_cb_ != nullptr) {
    auto cb = std::move(all_warm_cb_);
    all_warm_cb_ = nullptr;
    cb();
  }
}

void ListenerManagerImpl::activate(ListenerImplPtr listener) {
  const std::string name = listener->config->name();
  auto old = active_.find(name);
  if (!workers_started_) {
    // Nothing runs on the workers yet: the new version simply takes the old one's place.
    active_[name] = std::move(listener);
    return;
  }
  ListenerConfigConstSharedPtr config = listener->config;
  if (old == active_.end()) {
    runOnAllWorkers([config](ConnectionHandler& handler) { handler.addListener(config); }, nullptr);
    active_[name] = std::move(listener);
    return;
  }
  ListenerImplPtr previous = std::move(old->second);
  const bool in_place = previous->config->sockets() == config->sockets() &&
                        previous->config->onlyFilterChainsDiffer(*config);
  if (in_place) {
    stats_.listener_in_place_updated.inc();
  }
  const uint64_t old_tag = previous->config->tag();
  const std::chrono::milliseconds spread = drain_time_;
  // A new address means new sockets: once no worker accepts on the old ones, close them (as
  // removeListener() does), or the kernel keeps completing handshakes into a backlog nobody
  // reads until the drain ends. Found by xds_listener_integration_test
  // ListenerMovedToAnotherAddressStopsListeningOnTheOldOne.
  std::function<void()> release_old_sockets;
  if (previous->config->sockets() != config->sockets()) {
    release_old_sockets = [old_config = previous->config] { old_config->releaseSockets(); };
  }
  runOnAllWorkers(
      [old_tag, config, in_place, spread](ConnectionHandler& handler) {
        handler.replaceListener(old_tag, config, in_place, spread);
      },
      std::move(release_old_sockets));
  active_[name] = std::move(listener);
  // In place, the workers' listener now carries the new tag; the old version only has to
  // outlive the connections left on its removed chains.
  drain(std::move(previous), in_place ? config->tag() : old_tag, in_place);
}

bool ListenerManagerImpl::removeListener(const std::string& name) {
  ASSERT(main_dispatcher_.isThreadSafe());
  if (auto warming = warming_.find(name); warming != warming_.end()) {
    if (!warming->second->added_via_api) {
      return false;
    }
    warming_.erase(warming);
    if (active_.find(name) == active_.end()) {
      stats_.listener_removed.inc();
      updateGauges();
      if (warming_.empty() && all_warm_cb_ != nullptr) {
        auto cb = std::move(all_warm_cb_);
        all_warm_cb_ = nullptr;
        cb();
      }
      return true;
    }
  }
  auto active = active_.find(name);
  if (active == active_.end() || !active->second->added_via_api) {
    updateGauges();
    return false;
  }
  ListenerImplPtr listener = std::move(active->second);
  active_.erase(active);
  stats_.listener_removed.inc();
  errors_.erase(name);
  if (workers_started_) {
    const uint64_t tag = listener->config->tag();
    const std::chrono::milliseconds spread = drain_time_;
    // Stop accepting everywhere, then close the sockets: a removed listener's port must not
    // keep queueing connections that nobody will accept.
    ListenerConfigSharedPtr config = listener->config;
    runOnAllWorkers(
        [tag, spread](ConnectionHandler& handler) { handler.stopListener(tag, spread); },
        [config] { config->releaseSockets(); });
    drain(std::move(listener), tag, /*in_place=*/false);
  }
  updateGauges();
  return true;
}

void ListenerManagerImpl::drain(ListenerImplPtr listener, uint64_t tag, bool in_place) {
  draining_.push_back(DrainingListener{std::move(listener), tag, in_place, nullptr});
  auto it = std::prev(draining_.end());
  it->timer = main_dispatcher_.createTimer([this, it] { onDrainDone(it); });
  it->timer->enableTimer(drain_time_);
  updateGauges();
}

void ListenerManagerImpl::onDrainDone(std::list<DrainingListener>::iterator it) {
  const uint64_t tag = it->tag;
  auto erase = [this, it] {
    draining_.erase(it);
    updateGauges();
  };
  if (it->in_place) {
    runOnAllWorkers([tag](ConnectionHandler& handler) { handler.closeDrainingConnections(tag); },
                    erase);
  } else {
    runOnAllWorkers([tag](ConnectionHandler& handler) { handler.removeListener(tag); }, erase);
  }
}

void ListenerManagerImpl::startWorkers(std::function<void()> cb) {
  ASSERT(main_dispatcher_.isThreadSafe());
  workers_started_ = true;
  std::vector<ListenerConfigConstSharedPtr> configs;
  for (const auto& [name, listener] : active_) {
    configs.push_back(listener->config);
  }
  runOnAllWorkers(
      [configs](ConnectionHandler& handler) {
        for (const auto& config : configs) {
          handler.addListener(config);
        }
      },
      [this, cb = std::move(cb)] {
        stats_.workers_started.inc();
        if (cb) {
          cb();
        }
      });
  updateGauges();
}

void ListenerManagerImpl::setAllWarmCallback(std::function<void()> cb) {
  if (warming_.empty()) {
    cb();
    return;
  }
  all_warm_cb_ = std::move(cb);
}

void ListenerManagerImpl::stopAndDrainAll() {
  ASSERT(main_dispatcher_.isThreadSafe());
  // For good, as Envoy's stopListeners(): no listener is added, replaced or warmed any more.
  stopped_ = true;
  // Versions still warming never served; their sockets (unless shared with the active
  // version) close with them.
  warming_.clear();
  // Once no worker accepts, close every listen socket: a new client is refused at once instead
  // of completing a handshake into a backlog that nobody accepts from until the drain ends.
  // The connections already accepted drain.
  std::vector<ListenerConfigSharedPtr> on_workers;
  for (const auto& [name, listener] : active_) {
    on_workers.push_back(listener->config);
  }
  for (const DrainingListener& draining : draining_) {
    on_workers.push_back(draining.listener->config);
  }
  runOnAllWorkers(
      [](ConnectionHandler& handler) {
        handler.stopListeners();
        handler.drainConnections();
      },
      [on_workers] {
        for (const ListenerConfigSharedPtr& config : on_workers) {
          config->releaseSockets();
        }
      });
  updateGauges();
}

int64_t ListenerManagerImpl::activeConnections() const {
  int64_t total = 0;
  for (const auto& [name, listener] : active_) {
    total += listener->config->stats().downstream_cx_active.value();
  }
  for (const auto& draining : draining_) {
    if (!draining.in_place) {
      total += draining.listener->config->stats().downstream_cx_active.value();
    }
  }
  return total;
}

void ListenerManagerImpl::runOnAllWorkers(std::function<void(ConnectionHandler&)> cb,
                                          std::function<void()> done) {
  if (workers_.empty()) {
    if (done) {
      done();
    }
    return;
  }
  // Counted on the main thread only: each worker posts its completion back.
  auto remaining = std::make_shared<size_t>(workers_.size());
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  std::weak_ptr<bool> alive = alive_;
  Event::Dispatcher& main = main_dispatcher_;
  for (WorkerHandle* worker : workers_) {
    worker->post([cb, remaining, shared_done, alive, &main](ConnectionHandler& handler) {
      cb(handler);
      main.post([remaining, shared_done, alive] {
        if (alive.expired()) {
          return;
        }
        if (--*remaining == 0 && *shared_done) {
          (*shared_done)();
        }
      });
    });
  }
}

void ListenerManagerImpl::updateGauges() {
  stats_.total_listeners_warming.set(static_cast<int64_t>(warming_.size()));
  stats_.total_listeners_active.set(static_cast<int64_t>(active_.size()));
  stats_.total_listeners_draining.set(static_cast<int64_t>(draining_.size()));
}

void ListenerManagerImpl::forEachActive(const std::function<void(const ListenerView&)>& cb) const {
  for (const auto& [name, l] : active_) {
    cb(ListenerView{*l->config, l->version_info, l->last_updated, l->added_via_api});
  }
}

void ListenerManagerImpl::forEachWarming(const std::function<void(const ListenerView&)>& cb) const {
  for (const auto& [name, l] : warming_) {
    cb(ListenerView{*l->config, l->version_info, l->last_updated, l->added_via_api});
  }
}

void ListenerManagerImpl::forEachDraining(
    const std::function<void(const ListenerView&)>& cb) const {
  for (const auto& d : draining_) {
    const ListenerImpl& l = *d.listener;
    cb(ListenerView{*l.config, l.version_info, l.last_updated, l.added_via_api});
  }
}

}  // namespace Proxy::Listener
