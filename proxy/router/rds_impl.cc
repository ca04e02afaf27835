#include "proxy/router/rds_impl.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "proxy/common/assert.h"
#include "proxy/config/validation.h"
#include "proxy/router/config_impl.h"
#include "spdlog/spdlog.h"

namespace Proxy::Router {

namespace {

uint64_t hashOf(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream out(&stream);
  out.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&out);
  out.Trim();
  return std::hash<std::string>{}(bytes);
}

}  // namespace

RdsRouteConfigProvider::RdsRouteConfigProvider(RouteConfigProviderManager& manager,
                                               std::string name,
                                               envoy::config::core::v3::ConfigSource config_source)
    : manager_(manager),
      name_(std::move(name)),
      config_source_(std::move(config_source)),
      slot_(manager.tls().allocateSlot()),
      update_success_(manager.store().counter(absl::StrCat("http.rds.", name_, ".update_success"))),
      update_rejected_(
          manager.store().counter(absl::StrCat("http.rds.", name_, ".update_rejected"))),
      update_empty_(manager.store().counter(absl::StrCat("http.rds.", name_, ".update_empty"))),
      config_reload_(manager.store().counter(absl::StrCat("http.rds.", name_, ".config_reload"))) {
  slot_->set([](Event::Dispatcher&) { return std::make_shared<ThreadLocalConfig>(); });
}

RdsRouteConfigProvider::~RdsRouteConfigProvider() {
  // The last reference usually drops on main (the listener manager owns listener configs), but
  // a connection deleted late on a worker may hold it: slots belong to the main thread.
  Event::Dispatcher& main = manager_.mainDispatcher();
  if (main.isThreadSafe()) {
    slot_.reset();
    manager_.onProviderDestroyed(name_);
    return;
  }
  auto slot = std::make_shared<ThreadLocal::SlotPtr>(std::move(slot_));
  main.post(
      [slot, &manager = manager_, name = name_, alive = std::weak_ptr<bool>(manager_.alive_)] {
        slot->reset();
        if (!alive.expired()) {
          manager.onProviderDestroyed(name);
        }
      });
}

std::shared_ptr<const Router::Config> RdsRouteConfigProvider::config() const {
  const ThreadLocal::ThreadLocalObjectSharedPtr object = slot_->get();
  return object == nullptr ? nullptr : static_cast<const ThreadLocalConfig&>(*object).config;
}

absl::Status RdsRouteConfigProvider::onConfigUpdate(
    const envoy::config::route::v3::RouteConfiguration& config, const std::string& version_info,
    std::function<void()> done) {
  ASSERT(manager_.mainDispatcher().isThreadSafe());
  if (config.name() != name_) {
    update_rejected_.inc();
    return absl::InvalidArgumentError(absl::StrCat("name: expected route configuration '", name_,
                                                   "', got '", config.name(), "'"));
  }
  const uint64_t hash = hashOf(config);
  if (ready_.ready() && hash == hash_ && !proto_.name().empty()) {
    // Same table: nothing to rebuild or publish (applying an update costs what changed).
    version_info_ = version_info;
    update_empty_.inc();
    if (done) {
      done();
    }
    return absl::OkStatus();
  }
  auto table = Router::ConfigImpl::create(config);
  if (!table.ok()) {
    update_rejected_.inc();
    return table.status();
  }
  if (manager_.clusterExists() &&
      Proxy::Config::validatesClusters(config, /*inline_default=*/false)) {
    absl::Status status = Proxy::Config::validateRouteClusters(config, manager_.clusterExists());
    if (!status.ok()) {
      update_rejected_.inc();
      return status;
    }
  }
  std::shared_ptr<const Router::Config> shared = *std::move(table);
  // Every thread swaps its pointer; the old table dies with the last request that uses it.
  auto publish = [shared](ThreadLocal::ThreadLocalObjectSharedPtr& object) {
    static_cast<ThreadLocalConfig&>(*object).config = shared;
  };
  if (done) {
    slot_->runOnAllThreads(publish, std::move(done));
  } else {
    slot_->runOnAllThreads(publish);
  }
  proto_ = config;
  hash_ = hash;
  version_info_ = version_info;
  last_updated_ = manager_.mainDispatcher().timeSource().systemTime();
  update_success_.inc();
  config_reload_.inc();
  spdlog::debug("rds: route configuration '{}' version '{}' applied", name_, version_info);
  ready_.markReady();
  return absl::OkStatus();
}

void RdsRouteConfigProvider::onConfigUpdateFailed() {
  ASSERT(manager_.mainDispatcher().isThreadSafe());
  if (!ready_.ready()) {
    spdlog::warn("rds: route configuration '{}' not available; serving no routes until it is",
                 name_);
  }
  ready_.markReady();
}

RdsRouteConfigProviderSharedPtr RouteConfigProviderManager::getOrCreate(
    const std::string& name, const envoy::config::core::v3::ConfigSource& config_source) {
  ASSERT(main_dispatcher_.isThreadSafe());
  auto it = providers_.find(name);
  if (it != providers_.end()) {
    if (auto existing = it->second.lock(); existing != nullptr) {
      return existing;
    }
  }
  auto provider = std::make_shared<RdsRouteConfigProvider>(*this, name, config_source);
  providers_[name] = provider;
  scheduleNamesChanged();
  return provider;
}

RdsRouteConfigProviderSharedPtr RouteConfigProviderManager::find(const std::string& name) const {
  auto it = providers_.find(name);
  return it == providers_.end() ? nullptr : it->second.lock();
}

std::vector<std::string> RouteConfigProviderManager::names() const {
  std::vector<std::string> out;
  for (const auto& [name, provider] : providers_) {
    if (!provider.expired()) {
      out.push_back(name);
    }
  }
  return out;
}

void RouteConfigProviderManager::forEach(
    const std::function<void(const RdsRouteConfigProvider&)>& cb) const {
  for (const auto& [name, weak] : providers_) {
    if (auto provider = weak.lock(); provider != nullptr) {
      cb(*provider);
    }
  }
}

void RouteConfigProviderManager::onProviderDestroyed(const std::string& name) {
  auto it = providers_.find(name);
  if (it != providers_.end() && it->second.expired()) {
    providers_.erase(it);
    scheduleNamesChanged();
  }
}

void RouteConfigProviderManager::scheduleNamesChanged() {
  if (names_changed_scheduled_ || names_changed_ == nullptr) {
    return;
  }
  names_changed_scheduled_ = true;
  main_dispatcher_.post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) {
      return;
    }
    names_changed_scheduled_ = false;
    if (names_changed_ != nullptr) {
      names_changed_(names());
    }
  });
}

}  // namespace Proxy::Router
