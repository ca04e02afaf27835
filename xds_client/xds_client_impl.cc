#include "xds_client/xds_client_impl.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/common/assert.h"
#include "proxy/common/string_view.h"
#include "spdlog/spdlog.h"

namespace Proxy::Xds {
namespace {

// A watch's names as it keeps them: sorted, without duplicates nor "".
std::vector<std::string> sortedNames(const std::vector<std::string>& resource_names) {
  std::vector<std::string> names(resource_names.begin(), resource_names.end());
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (!names.empty() && names.front().empty()) {
    names.erase(names.begin());
  }
  return names;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// WatchImpl: one watch handle. The client keeps a raw pointer to it (TypeState::watches) while
// it lives; destroying it unsubscribes.

class WatchImpl : public Watch {
 public:
  WatchImpl(XdsClientImpl& client, TypeState& type, uint64_t id, Watcher& watcher,
            Stats::Scope& scope)
      : client_(&client), type_(&type), id_(id), watcher_(watcher), stats_(scope) {}

  ~WatchImpl() override {
    if (client_ != nullptr) {
      client_->removeWatch(*this);
    }
  }

  void updateResourceNames(const std::vector<std::string>& resource_names) override {
    if (client_ != nullptr) {
      client_->updateWatchNames(*this, resource_names);
    }
  }

  bool watches(const std::string& name) const {
    return std::binary_search(names_.begin(), names_.end(), name);
  }

  struct Stats {
    explicit Stats(Proxy::Stats::Scope& scope)
        : update_attempt(scope.counter("update_attempt")),
          update_success(scope.counter("update_success")),
          update_rejected(scope.counter("update_rejected")),
          update_failure(scope.counter("update_failure")),
          init_fetch_timeout(scope.counter("init_fetch_timeout")),
          version_text(scope.textReadout("version_text")) {}
    Proxy::Stats::Counter& update_attempt;
    Proxy::Stats::Counter& update_success;
    Proxy::Stats::Counter& update_rejected;
    Proxy::Stats::Counter& update_failure;
    Proxy::Stats::Counter& init_fetch_timeout;
    Proxy::Stats::TextReadout& version_text;
  };

  // Null once the client is gone.
  XdsClientImpl* client_;
  TypeState* type_;
  const uint64_t id_;
  Watcher& watcher_;
  // Sorted, without duplicates; empty = wildcard. A vector: 32 bytes a name where a std::set
  // node took 80 (the proxy's one EDS watch names every EDS cluster).
  std::vector<std::string> names_;
  Stats stats_;
  Event::TimerPtr init_timer_;
};

// ---------------------------------------------------------------------------------------------
// XdsClientImpl: construction, watches

XdsClientImpl::XdsClientImpl(Event::Dispatcher& main, XdsClientConfig config,
                             XdsTransportFactoryPtr transport_factory, Stats::Scope scope)
    : main_(main),
      config_(std::move(config)),
      transport_factory_(std::move(transport_factory)),
      scope_(std::move(scope)),
      connected_state_(scope_.gauge("control_plane.connected_state")),
      rate_limit_enforced_(scope_.counter("control_plane.rate_limit_enforced")) {
  if (config_.node.user_agent_name().empty()) {
    fillNodeIdentity(config_.node);
  }
  if (!config_.random) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    config_.random = [engine] { return (*engine)(); };
  }
  flush_timer_ = main_.createTimer([this] { onFlushTimer(); });
  connected_state_.set(0);
}

XdsClientImpl::~XdsClientImpl() {
  ASSERT(main_.isThreadSafe());
  RELEASE_ASSERT(dispatching_ == 0, "XdsClientImpl destroyed from one of its own callbacks");
  for (auto& [url, type] : types_) {
    for (auto& [id, watch] : type.watches) {
      watch->client_ = nullptr;
      watch->init_timer_.reset();
    }
  }
  // Cancels the streams and waits for gRPC to release them.
  ads_stream_.reset();
  type_streams_.clear();
  connected_state_.set(0);
}

std::string XdsClientImpl::acceptedVersion(std::string_view type_url) const {
  auto it = types_.find(type_url);
  return it != types_.end() ? it->second.accepted_version : std::string();
}

TypeState* XdsClientImpl::findType(std::string_view type_url) {
  auto it = types_.find(type_url);
  return it != types_.end() ? &it->second : nullptr;
}

absl::StatusOr<WatchHandle> XdsClientImpl::watch(std::string_view type_url,
                                                 const std::vector<std::string>& resource_names,
                                                 Watcher& watcher, WatchOptions options) {
  ASSERT(main_.isThreadSafe());
  absl::StatusOr<TypeState*> found = typeForWatch(type_url);
  if (!found.ok()) {
    return found.status();
  }
  TypeState* type = *found;

  std::vector<std::string> names = sortedNames(resource_names);
  const uint64_t id = next_watch_id_++;
  Stats::Scope& scope =
      options.stats_scope.has_value() ? *options.stats_scope : defaultScope(*type);
  auto watch = std::make_unique<WatchImpl>(*this, *type, id, watcher, scope);
  type->watches.emplace(id, watch.get());
  if (names.empty()) {
    type->wildcard_watches.insert(id);
  } else {
    type->addNames(id, names);
  }
  watch->names_ = std::move(names);

  const auto timeout = options.initial_fetch_timeout.value_or(type->config.initial_fetch_timeout);
  if (timeout.count() > 0) {
    watch->init_timer_ = main_.createTimer([this, id, type] { onInitFetchTimeout(id, *type); });
    watch->init_timer_->enableTimer(timeout);
  }
  if (type->has_response) {
    cached_deliveries_.push_back(CachedDelivery{id, type, std::nullopt});
  }
  type->pending = true;
  scheduleFlush();
  return WatchHandle(std::move(watch));
}

absl::StatusOr<TypeState*> XdsClientImpl::typeForWatch(std::string_view type_url) {
  if (TypeState* type = findType(type_url); type != nullptr) {
    return type;
  }
  const ResourceType* info = findResourceType(type_url);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown xDS resource type '", asAbsl(type_url), "'"));
  }
  auto config = config_.types.find(type_url);
  if (config == config_.types.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no xDS config source for '", asAbsl(type_url), "'"));
  }
  // The stream that serves it: the ADS stream (shared, opened for the first ADS type), or a
  // stream of its own.
  XdsStream::Callbacks& callbacks = *this;
  std::unique_ptr<XdsStream> new_stream;
  XdsStream* stream = nullptr;
  if (config->second.ads) {
    if (!config_.ads.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", asAbsl(type_url), "' is configured for ADS but there is no ads_config"));
    }
    if (ads_stream_ == nullptr) {
      ads_stream_ = std::make_unique<XdsStream>(
          config_, *config_.ads, std::string(config_.ads->delta ? kAdsDeltaMethod : kAdsSotwMethod),
          config_.ads->delta ? "ADS (delta)" : "ADS", main_, *transport_factory_,
          rate_limit_enforced_, scope_, callbacks);
    }
    stream = ads_stream_.get();
  } else {
    const std::string& method =
        config->second.stream.delta ? info->delta_method : info->sotw_method;
    if (method.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", asAbsl(type_url), "' has no per-type xDS service: configure it over ADS"));
    }
    std::string label = absl::AsciiStrToUpper(info->short_name);
    if (config->second.stream.delta) {
      absl::StrAppend(&label, " (delta)");
    }
    new_stream =
        std::make_unique<XdsStream>(config_, config->second.stream, method, label, main_,
                                    *transport_factory_, rate_limit_enforced_, scope_, callbacks);
    new_stream->setPerType();
    stream = new_stream.get();
  }
  TypeState* type = &types_[std::string(type_url)];
  type->type = info;
  type->config = config->second;
  type->stream = stream;
  stream->addType(*type);
  if (new_stream != nullptr) {
    type_streams_.emplace(std::string(type_url), std::move(new_stream));
  }
  return type;
}

Stats::Scope& XdsClientImpl::defaultScope(const TypeState& type) {
  auto it = default_scopes_.find(type.type->short_name);
  if (it == default_scopes_.end()) {
    it = default_scopes_.emplace(type.type->short_name, scope_.child(type.type->short_name)).first;
  }
  return it->second;
}

void XdsClientImpl::removeWatch(WatchImpl& watch) {
  ASSERT(main_.isThreadSafe());
  TypeState& type = *watch.type_;
  type.watches.erase(watch.id_);
  type.wildcard_watches.erase(watch.id_);
  type.removeNames(watch.id_, watch.names_);
  type.pending = true;
  scheduleFlush();
}

void XdsClientImpl::updateWatchNames(WatchImpl& watch,
                                     const std::vector<std::string>& resource_names) {
  ASSERT(main_.isThreadSafe());
  std::vector<std::string> names = sortedNames(resource_names);
  if (names == watch.names_) {
    return;
  }
  TypeState& type = *watch.type_;
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::set_difference(names.begin(), names.end(), watch.names_.begin(), watch.names_.end(),
                      std::back_inserter(added));
  std::set_difference(watch.names_.begin(), watch.names_.end(), names.begin(), names.end(),
                      std::back_inserter(removed));
  const bool was_wildcard = watch.names_.empty();
  const bool wildcard = names.empty();
  watch.names_ = std::move(names);
  if (wildcard) {
    type.wildcard_watches.insert(watch.id_);
  } else if (was_wildcard) {
    type.wildcard_watches.erase(watch.id_);
  }
  type.addNames(watch.id_, added);
  type.removeNames(watch.id_, removed);
  if (type.has_response && (!added.empty() || wildcard)) {
    cached_deliveries_.push_back(CachedDelivery{
        watch.id_, &type,
        wildcard ? std::nullopt : std::optional<std::vector<std::string>>(std::move(added))});
  }
  type.pending = true;
  scheduleFlush();
}

// ---------------------------------------------------------------------------------------------
// Flushing: requests and cached deliveries, once per loop iteration

void XdsClientImpl::scheduleFlush() {
  if (!flush_timer_->enabled()) {
    flush_timer_->enableTimer(std::chrono::milliseconds(0));
  }
}

void XdsClientImpl::onFlushTimer() {
  auto deliveries = std::move(cached_deliveries_);
  cached_deliveries_.clear();
  for (const CachedDelivery& delivery : deliveries) {
    deliverCached(delivery);
  }
  auto flushStream = [](XdsStream& stream) {
    stream.maybeConnect();
    stream.flush();
  };
  if (ads_stream_ != nullptr) {
    flushStream(*ads_stream_);
  }
  for (auto& [url, stream] : type_streams_) {
    flushStream(*stream);
  }
}

void XdsClientImpl::deliverCached(const CachedDelivery& delivery) {
  const uint64_t watch_id = delivery.watch_id;
  TypeState& type = *delivery.type;
  auto it = type.watches.find(watch_id);
  if (it == type.watches.end()) {
    return;
  }
  WatchImpl* watch = it->second;
  std::vector<DecodedResource> resources;
  auto add = [&](const std::string& name, const CachedResource& cached) {
    // Cached resources were valid when they arrived: they parse again.
    std::shared_ptr<google::protobuf::Message> message(type.type->prototype->New());
    const std::string_view bytes = cached.bytes.view();
    if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    DecodedResource resource;
    resource.name = name;
    resource.version = *cached.version;
    resource.hash = hashResourceBytes(*cached.bytes);
    resource.message = std::move(message);
    resource.bytes = cached.bytes;
    resources.push_back(std::move(resource));
  };
  if (watch->names_.empty()) {
    for (const auto& [name, cached] : type.cache) {
      add(name, cached);
    }
  } else {
    // The names still watched among those to deliver.
    const std::vector<std::string>& names =
        delivery.names.has_value() ? *delivery.names : watch->names_;
    for (const auto& name : names) {
      auto cached = type.cache.find(name);
      if (cached != type.cache.end() && watch->watches(name)) {
        add(name, cached->second);
      }
    }
    if (resources.empty()) {
      return;
    }
  }
  if (watch->init_timer_ != nullptr) {
    watch->init_timer_->disableTimer();
  }
  ++dispatching_;
  const absl::Status status = watch->watcher_.onConfigUpdate(resources, {}, type.accepted_version);
  --dispatching_;
  it = type.watches.find(watch_id);
  if (it == type.watches.end()) {
    return;
  }
  it->second->stats_.update_attempt.inc();
  if (status.ok()) {
    it->second->stats_.update_success.inc();
    it->second->stats_.version_text.set(type.accepted_version);
  } else {
    // Already ACKed to the server when it arrived; nothing to NACK now.
    it->second->stats_.update_rejected.inc();
    spdlog::warn("xds: {} watch rejected cached resources: {}", type.type->short_name,
                 std::string(status.message()));
  }
}

void XdsClientImpl::onInitFetchTimeout(uint64_t watch_id, TypeState& type) {
  auto it = type.watches.find(watch_id);
  if (it == type.watches.end()) {
    return;
  }
  WatchImpl* watch = it->second;
  spdlog::warn(
      "xds: {} initial fetch of {} timed out; continuing without it", type.type->short_name,
      watch->names_.empty() ? std::string("all resources")
                            : absl::StrCat("'", absl::StrJoin(watch->names_, "', '"), "'"));
  watch->stats_.update_attempt.inc();
  watch->stats_.init_fetch_timeout.inc();
  ++dispatching_;
  watch->watcher_.onConfigUpdateFailed(FailureReason::FetchTimedOut);
  --dispatching_;
}

// ---------------------------------------------------------------------------------------------
// Streams

void XdsClientImpl::onStreamStateChanged() {
  bool any_started = false;
  bool all_connected = true;
  auto check = [&](const XdsStream& stream) {
    if (stream.started()) {
      any_started = true;
      all_connected = all_connected && stream.connected();
    }
  };
  if (ads_stream_ != nullptr) {
    check(*ads_stream_);
  }
  for (const auto& [url, stream] : type_streams_) {
    check(*stream);
  }
  connected_state_.set(any_started && all_connected ? 1 : 0);
}

void XdsClientImpl::onStreamFailure(XdsStream& stream) {
  onStreamStateChanged();
  ++dispatching_;
  for (TypeState* type : stream.types()) {
    std::vector<uint64_t> ids;
    for (const auto& [id, watch] : type->watches) {
      ids.push_back(id);
    }
    for (uint64_t id : ids) {
      auto it = type->watches.find(id);
      if (it == type->watches.end()) {
        continue;
      }
      it->second->stats_.update_attempt.inc();
      it->second->stats_.update_failure.inc();
      it->second->watcher_.onConfigUpdateFailed(FailureReason::ConnectionFailure);
    }
  }
  --dispatching_;
}

// ---------------------------------------------------------------------------------------------
// Responses

void XdsClientImpl::onStreamResponse(XdsStream& stream, DecodedResponsePtr response) {
  ASSERT(main_.isThreadSafe());
  TypeState* type = nullptr;
  if (stream.perType()) {
    type = stream.types().front();
    if (!response->status.ok()) {
      nackResponse(stream, *type, response->nonce, std::string(response->status.message()));
      return;
    }
    if (response->type_url != type->type->type_url) {
      nackResponse(stream, *type, response->nonce,
                   absl::StrCat("response type_url '", response->type_url,
                                "' does not match the stream's type '", type->type->type_url, "'"));
      return;
    }
  } else {
    type = findType(response->type_url);
    if (type == nullptr || type->stream != &stream) {
      spdlog::warn(
          "xds: {}: ignoring a response for type '{}' (nonce '{}'){}: no watch "
          "subscribed to it on this stream",
          stream.label(), response->type_url, response->nonce,
          response->status.ok() ? "" : absl::StrCat(" that ", response->status.message()));
      return;
    }
    if (!response->status.ok()) {
      nackResponse(stream, *type, response->nonce, std::string(response->status.message()));
      return;
    }
  }
  processUpdate(stream, *type, *response);
}

void XdsClientImpl::nackResponse(XdsStream& stream, TypeState& type, const std::string& nonce,
                                 std::string error) {
  spdlog::warn("xds: {} NACK {} nonce '{}' (keeping version '{}'): {}", stream.label(),
               type.type->short_name, nonce, type.accepted_version, error);
  type.queueNack(stream.delta(), nonce, std::move(error));
  for (auto& [id, watch] : type.watches) {
    watch->stats_.update_attempt.inc();
    watch->stats_.update_rejected.inc();
  }
  scheduleFlush();
}

void XdsClientImpl::processUpdate(XdsStream& stream, TypeState& type, DecodedResponse& response) {
  // What concerns us: the problems of subscribed resources, and those resources only.
  UpdateErrors errors = type.subscribedErrors(response);
  const size_t ignored = type.dropUnsubscribed(response.resources);
  const std::vector<std::string> removed = type.removedNames(response, stream.label());
  // The cache first: watches created from the callbacks below get the new state.
  type.updateCache(response.resources, removed);
  const std::vector<uint64_t> accepted = dispatchToWatchers(type, response, removed, errors);
  if (errors.messages.empty()) {
    ackUpdate(stream, type, response, removed, accepted, ignored);
  } else {
    nackUpdate(stream, type, response, removed, errors.messages);
  }
}

std::vector<uint64_t> XdsClientImpl::dispatchToWatchers(TypeState& type, DecodedResponse& response,
                                                        const std::vector<std::string>& removed,
                                                        UpdateErrors& errors) {
  // Named watches get their part; wildcard watches get everything, without copies.
  std::map<uint64_t, WatchBatch> batches =
      type.batchesByWatch(response.resources, removed, errors.invalid_names);
  // Without a wildcard watch the batches are the only holders of the decoded messages that
  // matter: the response's own references go, and each watch's batch is released as it is
  // applied (Watcher::onConfigUpdateReleasing), so a large response is freed resource by
  // resource rather than after the last one (issue 14). The cache keeps the bytes.
  const bool releasing = !type.wildcard();
  if (releasing) {
    for (DecodedResource& resource : response.resources) {
      resource.message.reset();
    }
  }

  // Watchers may add and drop watches (their own included): iterate over the ids of now.
  std::vector<uint64_t> ids;
  ids.reserve(type.watches.size());
  for (const auto& [id, watch] : type.watches) {
    ids.push_back(id);
  }
  std::vector<uint64_t> accepted;
  ++dispatching_;
  for (uint64_t id : ids) {
    auto it = type.watches.find(id);
    if (it == type.watches.end()) {
      continue;  // dropped by an earlier callback
    }
    WatchImpl* watch = it->second;
    const std::vector<DecodedResource>* added = &response.resources;
    std::vector<DecodedResource>* own_batch = nullptr;  // this watch's alone, releasable
    const std::vector<std::string>* gone = &removed;
    // A wildcard watch shares every problem seen so far; a named one only its own names'.
    bool client_rejected = !errors.messages.empty();
    bool call = true;
    if (!watch->names_.empty()) {
      auto batch = batches.find(id);
      if (batch == batches.end() && !errors.unnamed) {
        continue;  // nothing in this response for it
      }
      static const std::vector<DecodedResource> kNoResources;
      static const std::vector<std::string> kNoNames;
      added = batch != batches.end() ? &batch->second.added : &kNoResources;
      own_batch = releasing && batch != batches.end() ? &batch->second.added : nullptr;
      gone = batch != batches.end() ? &batch->second.removed : &kNoNames;
      client_rejected = errors.unnamed || (batch != batches.end() && batch->second.invalid);
      call = !added->empty() || !gone->empty();
    }
    if (watch->init_timer_ != nullptr) {
      watch->init_timer_->disableTimer();
    }
    absl::Status status;
    if (call) {
      status = own_batch != nullptr
                   ? watch->watcher_.onConfigUpdateReleasing(*own_batch, *gone, response.version)
                   : watch->watcher_.onConfigUpdate(*added, *gone, response.version);
      if (own_batch != nullptr) {
        own_batch->clear();  // what the watcher did not release goes now
      }
      if (!status.ok()) {
        errors.messages.emplace_back(status.message());
      }
    }
    it = type.watches.find(id);
    if (it == type.watches.end()) {
      continue;  // the watch dropped itself
    }
    watch = it->second;
    watch->stats_.update_attempt.inc();
    if (!status.ok() || client_rejected) {
      watch->stats_.update_rejected.inc();
    } else {
      watch->stats_.update_success.inc();
      accepted.push_back(id);
    }
  }
  --dispatching_;
  return accepted;
}

void XdsClientImpl::ackUpdate(XdsStream& stream, TypeState& type, const DecodedResponse& response,
                              const std::vector<std::string>& removed,
                              const std::vector<uint64_t>& accepted, size_t ignored) {
  type.acceptVersions(response, removed);
  type.queueAck(response.delta, response.nonce);
  for (uint64_t id : accepted) {
    auto it = type.watches.find(id);
    if (it != type.watches.end()) {
      it->second->stats_.version_text.set(response.version);
    }
  }
  spdlog::info("xds: {} ACK {} version '{}' nonce '{}' ({} resources, {} removed{})",
               stream.label(), type.type->short_name, response.version, response.nonce,
               response.resources.size(), removed.size(),
               ignored > 0 ? absl::StrCat(", ", ignored, " not subscribed") : "");
  scheduleFlush();
}

void XdsClientImpl::nackUpdate(XdsStream& stream, TypeState& type, const DecodedResponse& response,
                               const std::vector<std::string>& removed,
                               const std::vector<std::string>& errors) {
  std::string message = absl::StrJoin(errors, "; ");
  if (response.delta) {
    // The versions of a rejected response are not recorded: after a reconnect the server
    // sends those resources again. Removed ones are gone either way.
    for (const auto& name : removed) {
      type.delta_versions.erase(name);
    }
  }
  spdlog::warn("xds: {} NACK {} version '{}' nonce '{}' (keeping version '{}'): {}", stream.label(),
               type.type->short_name, response.version, response.nonce, type.accepted_version,
               message);
  type.queueNack(response.delta, response.nonce, std::move(message));
  scheduleFlush();
}

}  // namespace Proxy::Xds
