#include "proxy/server/xds_config.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "proxy/common/assert.h"
#include "proxy/config/bootstrap.h"
#include "spdlog/spdlog.h"
#include "xds_client/config.h"
#include "xds_client/grpc_transport_impl.h"
#include "xds_client/resource_type.h"
#include "xds_client/xds_client_impl.h"

namespace Proxy::Server {

namespace {
std::string message(const absl::Status& status) {
  return std::string(status.message());
}
}  // namespace

// Envoy's initial_fetch_timeout for what XdsConfig subscribes to by name (RDS, EDS, SDS): a name
// starts waiting when it enters the subscription, with the timeout of the config source that
// asked for it (0: none). If its resource has not been accepted when the timeout passes,
// `give_up(name)` runs (the listener or cluster waiting for it stops warming). A name that
// leaves the subscription stops waiting; one that comes back waits again. The one give-up
// mechanism for all three types: their watches in the xDS client have no initial fetch timeout
// of their own.
//
// The names that enter in one update with the same timeout share one timer: a CDS response of
// 10,000 EDS clusters arms one timer, not 10,000 (~330 bytes each with their map entries, alive
// until each assignment arrives, which is when the proxy's memory peaks; issue 14). Only the
// names still waiting are kept: none once every resource has come.
class XdsConfig::InitialFetchTimers {
 public:
  using TimeoutFn = std::function<std::chrono::milliseconds(const std::string& name)>;

  // `scope`: where init_fetch_timeout and update_attempt count a timeout, as the client would.
  InitialFetchTimers(Event::Dispatcher& main, Stats::Scope scope,
                     std::function<void(const std::string&)> give_up)
      : main_(main),
        init_fetch_timeout_(scope.counter("init_fetch_timeout")),
        update_attempt_(scope.counter("update_attempt")),
        give_up_(std::move(give_up)) {}

  // The subscription went from `before` to `after` (each sorted, without duplicates).
  // `timeout(name)` is asked only for the names new to it.
  void update(const std::vector<std::string>& before, const std::vector<std::string>& after,
              const TimeoutFn& timeout) {
    ASSERT(std::is_sorted(before.begin(), before.end()) &&
           std::is_sorted(after.begin(), after.end()));
    std::map<std::chrono::milliseconds, Group*> new_groups;  // by timeout, for this update
    auto old_it = before.begin();
    for (const std::string& name : after) {
      while (old_it != before.end() && *old_it < name) {
        stopWaiting(*old_it++);  // left the subscription
      }
      if (old_it != before.end() && *old_it == name) {
        ++old_it;  // was there already
        continue;
      }
      const std::chrono::milliseconds ms = timeout(name);
      if (ms.count() <= 0) {
        continue;
      }
      Group*& group = new_groups[ms];
      if (group == nullptr) {
        auto owned = std::make_unique<Group>();
        group = owned.get();
        groups_.emplace(group, std::move(owned));
        group->timer = main_.createTimer([this, group] { onTimeout(*group); });
        group->timer->enableTimer(ms);
      }
      group->names.push_back(name);
      ++group->waiting;
      waiting_[name] = group;
    }
    while (old_it != before.end()) {
      stopWaiting(*old_it++);
    }
  }

  // `name`'s resource was accepted: nothing to give up on. arrived() never runs inside
  // onTimeout().
  void arrived(const std::string& name) { stopWaiting(name); }

 private:
  // The names that entered in one update with one timeout. `names` keeps them all; those still
  // in waiting_ with this group are the ones it gives up on.
  struct Group {
    Event::TimerPtr timer;
    std::vector<std::string> names;
    size_t waiting = 0;
    bool fired = false;
  };

  void stopWaiting(const std::string& name) {
    auto it = waiting_.find(name);
    if (it == waiting_.end()) {
      return;
    }
    Group* group = it->second;
    waiting_.erase(it);
    if (waiting_.empty()) {
      waiting_ = {};  // an emptied hash map keeps its slots (10,000 names: 0.6 MB)
    }
    if (--group->waiting == 0 && !group->fired) {
      groups_.erase(group);  // its timer with it: nobody left to give up on
    }
  }

  void onTimeout(Group& group) {
    group.fired = true;
    // give_up_ may change the subscription (a cluster given up on may go): each name is looked
    // up again before it is given up on.
    for (const std::string& name : group.names) {
      auto it = waiting_.find(name);
      if (it == waiting_.end() || it->second != &group) {
        continue;
      }
      waiting_.erase(it);
      if (waiting_.empty()) {
        waiting_ = {};
      }
      init_fetch_timeout_.inc();
      update_attempt_.inc();
      give_up_(name);
    }
    // The group must not die inside its own timer's callback.
    auto owned = groups_.find(&group);
    main_.deferredDelete(std::make_unique<DeferredGroup>(std::move(owned->second)));
    groups_.erase(owned);
  }

  struct DeferredGroup : Event::DeferredDeletable {
    explicit DeferredGroup(std::unique_ptr<Group> group) : group(std::move(group)) {}
    std::unique_ptr<Group> group;
  };

  Event::Dispatcher& main_;
  Stats::Counter& init_fetch_timeout_;
  Stats::Counter& update_attempt_;
  std::function<void(const std::string&)> give_up_;
  // The names still waiting for their first resource, and their group.
  absl::flat_hash_map<std::string, Group*> waiting_;
  absl::flat_hash_map<Group*, std::unique_ptr<Group>> groups_;
};

// LDS: every listener of the server (wildcard).
class XdsConfig::LdsWatcher : public Xds::Watcher {
 public:
  explicit LdsWatcher(XdsConfig& parent) : parent_(parent) {}

  absl::Status onConfigUpdate(const std::vector<Xds::DecodedResource>& added,
                              const std::vector<std::string>& removed,
                              const std::string& version) override {
    // Good listeners apply, bad ones are rejected one by one: one broken listener must not
    // hold back the others in the same response (Envoy's behaviour).
    Xds::ResourceErrors errors;
    for (const Xds::DecodedResource& resource : added) {
      const auto& listener = resource.as<envoy::config::listener::v3::Listener>();
      // Its RDS must come from where the client fetches RDS (bootstrap.h).
      if (absl::Status sources = Config::checkResourceConfigSources(listener, parent_.dynamic_);
          !sources.ok()) {
        errors.add(resource, message(sources));
        continue;
      }
      auto result =
          parent_.listeners_.addOrUpdateListener(listener, version, /*added_via_api=*/true);
      if (!result.ok()) {
        errors.add(resource, message(result.status()));
      }
    }
    for (const std::string& name : removed) {
      parent_.listeners_.removeListener(name);
    }
    parent_.onLdsInitialized();
    parent_.updateSdsNames();  // secrets no listener names any more leave the subscription
    return errors.toStatus();
  }

  void onConfigUpdateFailed(Xds::FailureReason reason) override {
    if (reason == Xds::FailureReason::FetchTimedOut) {
      spdlog::warn("lds: no listeners within the initial fetch timeout; starting without");
      parent_.onLdsInitialized();
    }
  }

 private:
  XdsConfig& parent_;
};

// RDS: the route configurations that listeners name.
class XdsConfig::RdsWatcher : public Xds::Watcher {
 public:
  explicit RdsWatcher(XdsConfig& parent) : parent_(parent) {}

  absl::Status onConfigUpdate(const std::vector<Xds::DecodedResource>& added,
                              const std::vector<std::string>&,
                              const std::string& version) override {
    Xds::ResourceErrors errors;
    for (const Xds::DecodedResource& resource : added) {
      auto provider = parent_.routes_.find(resource.name);
      if (provider == nullptr) {
        continue;  // no listener uses it (any more)
      }
      const absl::Status status = provider->onConfigUpdate(
          resource.as<envoy::config::route::v3::RouteConfiguration>(), version);
      if (!status.ok()) {
        errors.add(resource, message(status));
        continue;
      }
      parent_.rds_timers_->arrived(resource.name);
    }
    // A removed route configuration keeps serving its last version, as in Envoy.
    return errors.toStatus();
  }

  // Connection failures: the last route configurations keep serving. (Initial fetch timeouts
  // are per name: InitialFetchTimers.)
  void onConfigUpdateFailed(Xds::FailureReason) override {}

 private:
  XdsConfig& parent_;
};

// CDS: every cluster (wildcard).
class XdsConfig::CdsWatcher : public Xds::Watcher {
 public:
  explicit CdsWatcher(XdsConfig& parent) : parent_(parent) {}

  absl::Status onConfigUpdate(const std::vector<Xds::DecodedResource>& added,
                              const std::vector<std::string>& removed,
                              const std::string& version) override {
    Xds::ResourceErrors errors;
    for (const Xds::DecodedResource& resource : added) {
      const auto& cluster = resource.as<envoy::config::cluster::v3::Cluster>();
      absl::Status status = Config::checkResourceConfigSources(cluster, parent_.dynamic_);
      if (status.ok()) {
        status = parent_.clusters_.addOrUpdateCluster(cluster, version, /*added_via_api=*/true);
      }
      if (!status.ok()) {
        errors.add(resource, message(status));
      }
    }
    for (const std::string& name : removed) {
      parent_.clusters_.removeCluster(name);
    }
    parent_.updateEdsNames();
    parent_.updateSdsNames();
    parent_.onCdsInitialized();
    return errors.toStatus();
  }

  void onConfigUpdateFailed(Xds::FailureReason reason) override {
    if (reason == Xds::FailureReason::FetchTimedOut) {
      spdlog::warn("cds: no clusters within the initial fetch timeout; starting without");
      parent_.onCdsInitialized();
    }
  }

 private:
  XdsConfig& parent_;
};

// EDS: the ClusterLoadAssignments that EDS clusters name.
class XdsConfig::EdsWatcher : public Xds::Watcher {
 public:
  explicit EdsWatcher(XdsConfig& parent) : parent_(parent) {}

  absl::Status onConfigUpdate(const std::vector<Xds::DecodedResource>& added,
                              const std::vector<std::string>&, const std::string&) override {
    Xds::ResourceErrors errors;
    for (const Xds::DecodedResource& resource : added) {
      apply(resource, errors);
    }
    return errors.toStatus();
  }

  // Each assignment is freed once its hosts are built: a large response's decoded assignments
  // (~350 bytes per endpoint) do not all wait for the last one (issue 14).
  absl::Status onConfigUpdateReleasing(std::vector<Xds::DecodedResource>& added,
                                       const std::vector<std::string>&,
                                       const std::string&) override {
    Xds::ResourceErrors errors;
    for (Xds::DecodedResource& resource : added) {
      apply(resource, errors);
      resource.message.reset();
    }
    return errors.toStatus();
  }

  // Connection failures: the clusters keep their hosts. (Initial fetch timeouts are per name:
  // InitialFetchTimers.)
  void onConfigUpdateFailed(Xds::FailureReason) override {}

 private:
  void apply(const Xds::DecodedResource& resource, Xds::ResourceErrors& errors) {
    const absl::Status status = parent_.clusters_.updateClusterLoadAssignment(
        resource.name, resource.as<envoy::config::endpoint::v3::ClusterLoadAssignment>(),
        resource.bytes != nullptr ? std::string_view(*resource.bytes) : std::string_view());
    if (!status.ok() && !absl::IsNotFound(status)) {
      errors.add(resource, message(status));
      return;
    }
    parent_.eds_timers_->arrived(resource.name);
  }

  XdsConfig& parent_;
};

// SDS: the secrets that TLS contexts name with sds_config.
class XdsConfig::SdsWatcher : public Xds::Watcher {
 public:
  explicit SdsWatcher(XdsConfig& parent) : parent_(parent) {}

  absl::Status onConfigUpdate(const std::vector<Xds::DecodedResource>& added,
                              const std::vector<std::string>&, const std::string&) override {
    Xds::ResourceErrors errors;
    for (const Xds::DecodedResource& resource : added) {
      std::shared_ptr<Tls::DynamicSecret> secret =
          parent_.secrets_->findDynamicSecret(resource.name);
      if (secret == nullptr) {
        continue;  // no context uses it (any more)
      }
      // Envoy's per-secret subscription stats.
      Stats::Scope scope(parent_.store_, absl::StrCat("sds.", resource.name, "."));
      const absl::Status status =
          secret->update(resource.as<envoy::extensions::transport_sockets::tls::v3::Secret>());
      if (!status.ok()) {
        // The previous version (if any) keeps serving.
        spdlog::warn("sds: secret '{}' rejected: {}", resource.name, message(status));
        scope.counter("update_rejected").inc();
        errors.add(resource, message(status));
        continue;
      }
      scope.counter("update_success").inc();
      parent_.sds_timers_->arrived(resource.name);
      parent_.secrets_->watchSecretFiles(secret);  // the certificate files it names
    }
    // A removed secret keeps serving its last version, as in Envoy.
    return errors.toStatus();
  }

  void onConfigUpdateFailed(Xds::FailureReason) override {}

 private:
  XdsConfig& parent_;
};

XdsConfig::XdsConfig(Event::Dispatcher& main, Stats::Store& store,
                     Upstream::ClusterManagerImpl& clusters,
                     Listener::ListenerManagerImpl& listeners,
                     Router::RouteConfigProviderManager& routes,
                     Xds::XdsTransportFactoryPtr transport_factory)
    : main_(main),
      store_(store),
      clusters_(clusters),
      listeners_(listeners),
      routes_(routes),
      transport_factory_(std::move(transport_factory)) {}

XdsConfig::~XdsConfig() {
  // Watches before their watchers, then the client (which joins its gRPC streams).
  routes_.setNamesChangedCallback(nullptr);
  lds_watch_.reset();
  rds_watch_.reset();
  cds_watch_.reset();
  eds_watch_.reset();
  sds_watch_.reset();
  if (secrets_ != nullptr) {
    secrets_->setNamesChangedCallback(nullptr);
  }
  client_.reset();
}

absl::Status XdsConfig::initialize(const envoy::config::bootstrap::v3::Bootstrap& bootstrap) {
  auto config = Xds::xdsConfigFromBootstrap(bootstrap);
  if (!config.ok()) {
    return config.status();
  }
  dynamic_ = bootstrap.dynamic_resources();
  has_lds_ = config->types.count(Xds::kListenerTypeUrl) > 0;
  has_cds_ = config->types.count(Xds::kClusterTypeUrl) > 0;
  has_sds_ = secrets_ != nullptr && config->types.count(Xds::kSecretTypeUrl) > 0;
  if (!has_lds_ && !has_cds_ && !has_sds_) {
    return absl::OkStatus();
  }
  if (transport_factory_ == nullptr) {
    transport_factory_ = std::make_unique<Xds::GrpcXdsTransportFactory>(main_);
  }
  client_ = std::make_unique<Xds::XdsClientImpl>(
      main_, *std::move(config), std::move(transport_factory_), Stats::Scope(store_, ""));
  lds_watcher_ = std::make_unique<LdsWatcher>(*this);
  rds_watcher_ = std::make_unique<RdsWatcher>(*this);
  cds_watcher_ = std::make_unique<CdsWatcher>(*this);
  eds_watcher_ = std::make_unique<EdsWatcher>(*this);
  sds_watcher_ = std::make_unique<SdsWatcher>(*this);
  // Their stats go where the client counts the RDS and EDS watches' (see updateRdsNames()).
  rds_timers_ = std::make_unique<InitialFetchTimers>(
      main_, Stats::Scope(store_, "rds."),
      [this](const std::string& name) { giveUpOnRoutes(name); });
  eds_timers_ = std::make_unique<InitialFetchTimers>(
      main_, Stats::Scope(store_, "cluster_manager.eds."),
      [this](const std::string& name) { giveUpOnEndpoints(name); });
  sds_timers_ = std::make_unique<InitialFetchTimers>(
      main_, Stats::Scope(store_, "sds."),
      [this](const std::string& name) { giveUpOnSecret(name); });
  if (has_sds_) {
    secrets_->setNamesChangedCallback([this] { updateSdsNames(); });
  }
  routes_.setNamesChangedCallback(
      [this](const std::vector<std::string>& names) { updateRdsNames(names); });
  return absl::OkStatus();
}

void XdsConfig::start(std::function<void()> done) {
  done_ = std::move(done);
  if (has_cds_) {
    Xds::WatchOptions options;
    options.stats_scope.emplace(store_, "cluster_manager.cds.");
    auto watch = client_->watch(Xds::kClusterTypeUrl, {}, *cds_watcher_, options);
    if (watch.ok()) {
      cds_watch_ = *std::move(watch);
      return;  // LDS starts once CDS answered and its clusters warmed
    }
    spdlog::error("cds: {}", std::string(watch.status().message()));
  }
  startLds();
}

void XdsConfig::onCdsInitialized() {
  if (cds_initialized_) {
    return;
  }
  cds_initialized_ = true;
  if (clusters_.warmingClusterCount() == 0) {
    startLds();
    return;
  }
  // EDS brings the warming clusters (or its initial fetch timeout gives up on them).
  // (startLds() is idempotent: later warm-ups of new clusters call this again harmlessly. The
  // callback must not reset itself: it is running.)
  clusters_.setWarmingDoneCallback([this] { main_.post([this] { startLds(); }); });
}

void XdsConfig::startLds() {
  if (lds_watch_ != nullptr || lds_initialized_) {
    return;
  }
  if (has_lds_) {
    Xds::WatchOptions options;
    options.stats_scope.emplace(store_, "listener_manager.lds.");
    auto watch = client_->watch(Xds::kListenerTypeUrl, {}, *lds_watcher_, options);
    if (watch.ok()) {
      lds_watch_ = *std::move(watch);
      return;
    }
    spdlog::error("lds: {}", std::string(watch.status().message()));
  }
  onLdsInitialized();
}

void XdsConfig::onLdsInitialized() {
  if (lds_initialized_) {
    return;
  }
  lds_initialized_ = true;
  if (done_) {
    auto done = std::move(done_);
    done_ = nullptr;
    done();
  }
}

void XdsConfig::updateRdsNames(const std::vector<std::string>& names) {
  if (names == rds_names_ || client_ == nullptr) {
    return;
  }
  // Each new name waits at most the initial_fetch_timeout of the listener that named it.
  rds_timers_->update(rds_names_, names, [this](const std::string& name) {
    auto provider = routes_.find(name);
    return provider != nullptr ? Xds::initialFetchTimeout(provider->configSource())
                               : Xds::kDefaultInitialFetchTimeout;
  });
  rds_names_ = names;
  if (names.empty()) {
    rds_watch_.reset();
    return;
  }
  if (rds_watch_ != nullptr) {
    rds_watch_->updateResourceNames(names);
    return;
  }
  Xds::WatchOptions options;
  options.initial_fetch_timeout = std::chrono::milliseconds(0);  // rds_timers_ instead
  options.stats_scope.emplace(store_, "rds.");
  auto watch = client_->watch(Xds::kRouteConfigurationTypeUrl, names, *rds_watcher_, options);
  if (!watch.ok()) {
    // No source for RDS: listeners naming a route configuration would warm forever.
    spdlog::error("rds: {}", std::string(watch.status().message()));
    for (const std::string& name : names) {
      if (auto provider = routes_.find(name); provider != nullptr) {
        provider->onConfigUpdateFailed();
      }
    }
    return;
  }
  rds_watch_ = *std::move(watch);
}

void XdsConfig::updateEdsNames() {
  const std::vector<std::string> names = clusters_.edsServiceNames();
  if (names == eds_names_) {
    return;
  }
  // Each new name waits at most the initial_fetch_timeout of the clusters watching it; when
  // several do, the longest (0, wait forever, is longest): a cluster is never given up on
  // sooner than it asked. One pass over the clusters, only when some name is new.
  std::optional<std::map<std::string, std::chrono::milliseconds>> timeouts;
  eds_timers_->update(eds_names_, names, [&](const std::string& name) {
    if (!timeouts.has_value()) {
      timeouts.emplace();
      clusters_.forEachCluster([&](const Upstream::ClusterManagerImpl::ClusterView& cluster) {
        if (cluster.info.discoveryType() != Upstream::ClusterInfoImpl::DiscoveryType::Eds) {
          return;
        }
        const std::chrono::milliseconds timeout =
            Xds::initialFetchTimeout(cluster.config().eds_cluster_config().eds_config());
        auto [it, added] = timeouts->emplace(cluster.info.edsServiceName(), timeout);
        if (!added && it->second.count() != 0 && (timeout.count() == 0 || timeout > it->second)) {
          it->second = timeout;
        }
      });
    }
    auto it = timeouts->find(name);
    return it != timeouts->end() ? it->second : Xds::kDefaultInitialFetchTimeout;
  });
  eds_names_ = names;
  if (names.empty()) {
    eds_watch_.reset();
    return;
  }
  if (eds_watch_ != nullptr) {
    eds_watch_->updateResourceNames(names);
    return;
  }
  Xds::WatchOptions options;
  options.initial_fetch_timeout = std::chrono::milliseconds(0);  // eds_timers_ instead
  options.stats_scope.emplace(store_, "cluster_manager.eds.");
  auto watch = client_->watch(Xds::kClusterLoadAssignmentTypeUrl, names, *eds_watcher_, options);
  if (!watch.ok()) {
    spdlog::error("eds: {}", std::string(watch.status().message()));
    return;
  }
  eds_watch_ = *std::move(watch);
}

Tls::SecretManager::SourceCheck XdsConfig::sdsSourceCheck(
    const envoy::config::bootstrap::v3::Bootstrap& bootstrap) {
  std::string stream_field;
  auto stream = Xds::sdsApiConfigSource(bootstrap, &stream_field);
  if (!stream.has_value()) {
    return nullptr;
  }
  using envoy::config::core::v3::ApiConfigSource;
  using envoy::config::core::v3::ConfigSource;
  const bool ads = bootstrap.dynamic_resources().has_ads_config();
  auto is_delta = [](ApiConfigSource::ApiType type) {
    return type == ApiConfigSource::DELTA_GRPC || type == ApiConfigSource::AGGREGATED_DELTA_GRPC;
  };
  return [stream = *std::move(stream), stream_field, ads, is_delta](
             const ConfigSource& source, const std::string& field) -> absl::Status {
    auto error = [](const std::string& where, const std::string& reason) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", reason));
    };
    if (source.initial_fetch_timeout().seconds() < 0 ||
        source.initial_fetch_timeout().nanos() < 0) {
      return error(field + ".initial_fetch_timeout", "must not be negative");
    }
    switch (source.config_source_specifier_case()) {
      case ConfigSource::kAds:
        if (!ads) {
          return error(field + ".ads", "ads is used but dynamic_resources.ads_config is not set");
        }
        return absl::OkStatus();
      case ConfigSource::kApiConfigSource: {
        // The proxy has one SDS stream (as it has one RDS and one EDS stream).
        const ApiConfigSource& api = source.api_config_source();
        const std::string api_field = field + ".api_config_source";
        if (api.grpc_services_size() != 1 || stream.grpc_services_size() != 1 ||
            !google::protobuf::util::MessageDifferencer::Equals(api.grpc_services(0),
                                                                stream.grpc_services(0))) {
          return error(api_field + ".grpc_services",
                       absl::StrCat("a management server other than the one of ", stream_field,
                                    ", which the proxy fetches SDS from, is not supported"));
        }
        if (is_delta(api.api_type()) != is_delta(stream.api_type())) {
          return error(api_field + ".api_type",
                       absl::StrCat(ApiConfigSource::ApiType_Name(api.api_type()),
                                    " differs from the protocol of ", stream_field,
                                    ", which the proxy fetches SDS with: not supported"));
        }
        if (api.transport_api_version() != envoy::config::core::v3::V3) {
          return error(api_field + ".transport_api_version", "V3 is required");
        }
        return absl::OkStatus();
      }
      case ConfigSource::kPathConfigSource:  // read by the SecretManager, never asked here
      case ConfigSource::kPath:
      case ConfigSource::kSelf:
        return error(field,
                     "only ads, api_config_source and path_config_source are supported for "
                     "sds_config");
      default:
        return error(field, "one of ads or api_config_source is required");
    }
  };
}

void XdsConfig::startSds() {
  sds_started_ = true;
  updateSdsNames();
}

void XdsConfig::updateSdsNames() {
  if (!has_sds_ || !sds_started_ || client_ == nullptr) {
    return;
  }
  const std::vector<std::string> names = secrets_->dynamicSecretNames();
  if (names == sds_names_) {
    return;
  }
  // Each new name waits at most the initial_fetch_timeout of the first sds_config naming it.
  sds_timers_->update(sds_names_, names, [this](const std::string& name) {
    auto secret = secrets_->findDynamicSecret(name);
    return secret != nullptr ? Xds::initialFetchTimeout(secret->source())
                             : Xds::kDefaultInitialFetchTimeout;
  });
  sds_names_ = names;
  if (names.empty()) {
    sds_watch_.reset();
    return;
  }
  if (sds_watch_ != nullptr) {
    sds_watch_->updateResourceNames(names);
    return;
  }
  Xds::WatchOptions options;
  options.initial_fetch_timeout = std::chrono::milliseconds(0);  // sds_timers_ instead
  auto watch = client_->watch(Xds::kSecretTypeUrl, names, *sds_watcher_, options);
  if (!watch.ok()) {
    spdlog::error("sds: {}", std::string(watch.status().message()));
    return;
  }
  sds_watch_ = *std::move(watch);
}

void XdsConfig::giveUpOnSecret(const std::string& name) {
  // Envoy: the listener or cluster waiting for it stops warming; its connections fail (no
  // context: *_context_secrets_not_ready) until the secret comes.
  auto secret = secrets_->findDynamicSecret(name);
  if (secret == nullptr || secret->secret() != nullptr) {
    return;
  }
  spdlog::warn("sds: secret '{}' did not arrive within its initial fetch timeout", name);
  secret->giveUp();
}

void XdsConfig::giveUpOnRoutes(const std::string& name) {
  // Envoy: the listener waiting on it warms with no routes (every request gets 404) until the
  // route configuration comes.
  if (auto provider = routes_.find(name); provider != nullptr && !provider->ready()) {
    spdlog::warn("rds: route configuration '{}' did not arrive within its initial fetch timeout",
                 name);
    provider->onConfigUpdateFailed();
  }
}

void XdsConfig::giveUpOnEndpoints(const std::string& name) {
  // Envoy: a cluster whose endpoints did not come within the initial fetch timeout stops
  // warming with no hosts (requests to it get 503 UH rather than the server never starting).
  if (!clusters_.isEdsServiceWarming(name)) {
    return;
  }
  spdlog::warn("eds: no endpoints for '{}' within the initial fetch timeout", name);
  envoy::config::endpoint::v3::ClusterLoadAssignment empty;
  empty.set_cluster_name(name);
  (void)clusters_.updateClusterLoadAssignment(name, empty);
}

}  // namespace Proxy::Server
