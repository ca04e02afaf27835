#include "xds_client/xds_client_impl.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "proxy/common/assert.h"
#include "spdlog/spdlog.h"

namespace Proxy::Xds {
namespace {

// google.rpc.Code INVALID_ARGUMENT, what error_detail carries on a NACK.
constexpr int kInvalidArgument = 3;
constexpr absl::string_view kWildcardName = "*";

// Lets the dispatcher destroy a transport on a later iteration: onStreamClosed() runs inside
// the transport's own callback.
struct DeferredTransport : public Event::DeferredDeletable {
  explicit DeferredTransport(XdsTransportPtr t) : transport(std::move(t)) {}
  XdsTransportPtr transport;
};

}  // namespace

absl::string_view failureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::FetchTimedOut:
      return "FetchTimedOut";
    case FailureReason::ConnectionFailure:
      return "ConnectionFailure";
  }
  return "unknown";
}

void ResourceErrors::add(const DecodedResource& resource, absl::string_view reason) {
  entries_.push_back(
      absl::StrCat("resource index ", resource.index, ": ", resource.name, ": ", reason));
}

void ResourceErrors::addGeneral(absl::string_view reason) {
  entries_.emplace_back(reason);
}

absl::Status ResourceErrors::toStatus() const {
  if (entries_.empty()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrJoin(entries_, "; "));
}

// ---------------------------------------------------------------------------------------------
// WatchImpl

class XdsClientImpl::WatchImpl : public Watch {
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

  // Null once the client is gone.
  XdsClientImpl* client_;
  TypeState* type_;
  const uint64_t id_;
  Watcher& watcher_;
  std::set<std::string> names_;  // empty = wildcard
  WatchStats stats_;
  Event::TimerPtr init_timer_;
};

XdsClientImpl::WatchStats::WatchStats(Stats::Scope& scope)
    : update_attempt(scope.counter("update_attempt")),
      update_success(scope.counter("update_success")),
      update_rejected(scope.counter("update_rejected")),
      update_failure(scope.counter("update_failure")),
      init_fetch_timeout(scope.counter("init_fetch_timeout")),
      version_text(scope.textReadout("version_text")) {}

// ---------------------------------------------------------------------------------------------
// Stream: one gRPC stream (ADS, or one type), its reconnects, its rate limit and its request
// building. Protocol decisions on responses are the client's (processResponse).

class XdsClientImpl::Stream : public XdsTransport::EventHandler {
 public:
  Stream(XdsClientImpl& parent, XdsStreamConfig config, std::string method, std::string label)
      : parent_(parent),
        config_(std::move(config)),
        method_(std::move(method)),
        label_(std::move(label)),
        backoff_(parent.config_.backoff_base, parent.config_.backoff_max, parent.config_.random),
        bucket_(config_.rate_limit.max_tokens, config_.rate_limit.fill_rate,
                parent.main_.timeSource()) {
    retry_timer_ = parent_.main_.createTimer([this] { connect(); });
    drain_timer_ = parent_.main_.createTimer([this] { flush(); });
  }

  ~Stream() override { transport_.reset(); }

  void addType(TypeState& type) {
    types_.push_back(&type);
    std::stable_sort(types_.begin(), types_.end(), [](const TypeState* a, const TypeState* b) {
      return a->type->request_order < b->type->request_order;
    });
  }

  bool perType() const { return per_type_; }
  void setPerType() { per_type_ = true; }
  const std::vector<TypeState*>& types() const { return types_; }
  const std::string& label() const { return label_; }
  bool delta() const { return config_.delta; }
  bool started() const { return started_; }
  bool connected() const { return connected_; }

  bool hasWatches() const {
    return std::any_of(types_.begin(), types_.end(),
                       [](const TypeState* t) { return !t->watches.empty(); });
  }

  // Open the stream if it is not open and not waiting to retry.
  void maybeConnect() {
    if (transport_ == nullptr && !retry_timer_->enabled() && hasWatches()) {
      connect();
    }
  }

  // Send every pending request, in type order, as far as the rate limit allows.
  void flush() {
    if (transport_ == nullptr) {
      return;
    }
    while (true) {
      TypeState* next = nullptr;
      for (TypeState* type : types_) {
        if (type->pending) {
          if (hasSomethingToSend(*type)) {
            next = type;
            break;
          }
          type->pending = false;
        }
      }
      if (next == nullptr) {
        return;
      }
      if (config_.rate_limit.enabled && !bucket_.consume()) {
        parent_.rate_limit_enforced_.inc();
        if (!drain_timer_->enabled()) {
          const auto wait = bucket_.nextTokenIn();
          spdlog::debug("xds: {} request rate limit reached; next request in {} ms", label_,
                        wait.count());
          drain_timer_->enableTimer(wait);
        }
        return;
      }
      if (config_.delta) {
        sendDelta(*next);
      } else {
        sendSotw(*next);
      }
    }
  }

  // XdsTransport::EventHandler
  void onConnected() override {
    if (transport_ == nullptr) {
      return;
    }
    connected_ = true;
    spdlog::info("xds: {} stream to {} connected", label_, config_.target);
    parent_.updateConnectedState();
  }

  void onResponse(DecodedResponsePtr response) override {
    if (transport_ == nullptr) {
      return;
    }
    if (!got_response_) {
      // The stream is healthy: the next failure starts the backoff from the beginning.
      got_response_ = true;
      backoff_.reset();
    }
    parent_.processResponse(*this, std::move(response));
  }

  void onStreamClosed(const absl::Status& status) override {
    if (transport_ == nullptr) {
      return;
    }
    if (status.ok()) {
      spdlog::info("xds: {} stream to {} closed by the server", label_, config_.target);
    } else {
      spdlog::warn("xds: {} stream to {} closed: {}", label_, config_.target, status.ToString());
    }
    parent_.main_.deferredDelete(std::make_unique<DeferredTransport>(std::move(transport_)));
    connected_ = false;
    drain_timer_->disableTimer();
    const auto delay = backoff_.next();
    spdlog::info("xds: {} stream to {}: backing off {} ms before reconnecting", label_,
                 config_.target, delay.count());
    retry_timer_->enableTimer(delay);
    parent_.onStreamFailure(*this);
  }

 private:
  void connect() {
    started_ = true;
    ++attempt_;
    first_message_ = true;
    connected_ = false;
    got_response_ = false;
    // A new stream knows nothing: every type is requested again, with its accepted version
    // (SotW) or its resource versions (Delta); nonces and unsent ACKs belong to the old one.
    for (TypeState* type : types_) {
      type->sent_on_stream = false;
      type->sent_star = false;
      type->nonce.clear();
      type->pending_error.reset();
      type->ack_pending = false;
      type->delta_acks.clear();
      type->sent_names.clear();
      type->sent_wildcard = false;
      type->pending = !type->watches.empty();
    }
    spdlog::info("xds: {} stream to {} opening (attempt {})", label_, config_.target, attempt_);
    transport_ =
        parent_.transport_factory_->createTransport(config_.target, method_, config_.delta, *this);
    parent_.updateConnectedState();
    parent_.scheduleFlush();
  }

  bool hasSomethingToSend(const TypeState& type) const {
    if (!type.sent_on_stream) {
      return !type.watches.empty() || !type.delta_acks.empty() || type.pending_error.has_value();
    }
    if (type.ack_pending || type.pending_error.has_value() || !type.delta_acks.empty() ||
        type.wildcard() != type.sent_wildcard) {
      return true;
    }
    if (type.sent_names.size() != type.name_watches.size()) {
      return true;
    }
    return !std::equal(type.sent_names.begin(), type.sent_names.end(), type.name_watches.begin(),
                       [](const std::string& a, const auto& b) { return a == b.first; });
  }

  void sendSotw(TypeState& type) {
    envoy::service::discovery::v3::DiscoveryRequest request;
    if (first_message_) {
      *request.mutable_node() = parent_.config_.node;
      first_message_ = false;
    }
    request.set_type_url(type.type->type_url);
    request.set_version_info(type.accepted_version);
    request.set_response_nonce(type.nonce);
    if (type.wildcard()) {
      // An empty list on the first request is the (legacy) wildcard every server knows; with
      // explicit names too, wildcard is "*" (and stays explicit for the rest of the stream).
      if (!type.name_watches.empty() || type.sent_star) {
        request.add_resource_names(std::string(kWildcardName));
        type.sent_star = true;
      }
    }
    // Sorted (map order): equal subscriptions give equal requests.
    type.sent_names.clear();
    for (const auto& [name, watches] : type.name_watches) {
      request.add_resource_names(name);
      type.sent_names.insert(name);
    }
    type.sent_wildcard = type.wildcard();
    if (type.pending_error.has_value()) {
      request.mutable_error_detail()->set_code(kInvalidArgument);
      request.mutable_error_detail()->set_message(*type.pending_error);
    }
    type.pending = false;
    type.ack_pending = false;
    type.pending_error.reset();
    type.sent_on_stream = true;
    transport_->sendMessage(request.SerializeAsString());
  }

  void sendDelta(TypeState& type) {
    envoy::service::discovery::v3::DeltaDiscoveryRequest request;
    if (first_message_) {
      *request.mutable_node() = parent_.config_.node;
      first_message_ = false;
    }
    request.set_type_url(type.type->type_url);
    const bool wildcard = type.wildcard();
    std::vector<std::string> subscribe;
    std::vector<std::string> unsubscribe;
    if (!type.sent_on_stream) {
      // Everything we want, and the versions we hold, so the server sends only what changed.
      if (wildcard && !type.name_watches.empty()) {
        subscribe.emplace_back(kWildcardName);
        type.sent_star = true;
      }
      for (const auto& [name, watches] : type.name_watches) {
        subscribe.push_back(name);
      }
      auto& versions = *request.mutable_initial_resource_versions();
      for (const auto& [name, version] : type.delta_versions) {
        if (wildcard || type.name_watches.count(name) > 0) {
          versions[name] = version;
        }
      }
    } else {
      for (const auto& [name, watches] : type.name_watches) {
        if (type.sent_names.count(name) == 0) {
          subscribe.push_back(name);
        }
      }
      for (const auto& name : type.sent_names) {
        if (type.name_watches.count(name) == 0) {
          unsubscribe.push_back(name);
        }
      }
      // Wildcard by an empty first request ends once names are subscribed, unless "*" is.
      if (wildcard && (!type.sent_wildcard || (!type.sent_star && !subscribe.empty()))) {
        subscribe.insert(subscribe.begin(), std::string(kWildcardName));
        type.sent_star = true;
      } else if (!wildcard && type.sent_wildcard) {
        unsubscribe.insert(unsubscribe.begin(), std::string(kWildcardName));
        type.sent_star = false;
      }
    }
    for (auto& name : subscribe) {
      request.add_resource_names_subscribe(std::move(name));
    }
    for (auto& name : unsubscribe) {
      request.add_resource_names_unsubscribe(std::move(name));
    }
    type.sent_names.clear();
    for (const auto& [name, watches] : type.name_watches) {
      type.sent_names.insert(name);
    }
    type.sent_wildcard = wildcard;
    if (!type.delta_acks.empty()) {
      auto [nonce, error] = std::move(type.delta_acks.front());
      type.delta_acks.pop_front();
      request.set_response_nonce(nonce);
      if (error.has_value()) {
        request.mutable_error_detail()->set_code(kInvalidArgument);
        request.mutable_error_detail()->set_message(*error);
      }
    }
    type.sent_on_stream = true;
    type.pending = !type.delta_acks.empty();
    transport_->sendMessage(request.SerializeAsString());
  }

  XdsClientImpl& parent_;
  const XdsStreamConfig config_;
  const std::string method_;
  const std::string label_;
  bool per_type_ = false;
  std::vector<TypeState*> types_;  // by request_order

  XdsTransportPtr transport_;  // null between streams
  Event::TimerPtr retry_timer_;
  Event::TimerPtr drain_timer_;
  JitteredBackoff backoff_;
  // Lives across reconnects, as Envoy's does: reconnecting does not refill it.
  TokenBucket bucket_;
  uint64_t attempt_ = 0;
  bool started_ = false;
  bool first_message_ = true;
  bool connected_ = false;
  bool got_response_ = false;
};

// ---------------------------------------------------------------------------------------------
// XdsClientImpl

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

std::string XdsClientImpl::acceptedVersion(absl::string_view type_url) const {
  auto it = types_.find(type_url);
  return it != types_.end() ? it->second.accepted_version : std::string();
}

XdsClientImpl::TypeState* XdsClientImpl::findType(absl::string_view type_url) {
  auto it = types_.find(type_url);
  return it != types_.end() ? &it->second : nullptr;
}

absl::StatusOr<WatchHandle> XdsClientImpl::watch(absl::string_view type_url,
                                                 const std::vector<std::string>& resource_names,
                                                 Watcher& watcher, WatchOptions options) {
  ASSERT(main_.isThreadSafe());
  TypeState* type = findType(type_url);
  if (type == nullptr) {
    const ResourceType* info = findResourceType(type_url);
    if (info == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown xDS resource type '", type_url, "'"));
    }
    auto config = config_.types.find(type_url);
    if (config == config_.types.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no xDS config source for '", type_url, "'"));
    }
    std::unique_ptr<Stream> new_stream;
    Stream* stream = nullptr;
    if (config->second.ads) {
      if (!config_.ads.has_value()) {
        return absl::FailedPreconditionError(
            absl::StrCat("'", type_url, "' is configured for ADS but there is no ads_config"));
      }
      if (ads_stream_ == nullptr) {
        ads_stream_ = std::make_unique<Stream>(
            *this, *config_.ads, std::string(config_.ads->delta ? kAdsDeltaMethod : kAdsSotwMethod),
            config_.ads->delta ? "ADS (delta)" : "ADS");
      }
      stream = ads_stream_.get();
    } else {
      const std::string& method =
          config->second.stream.delta ? info->delta_method : info->sotw_method;
      if (method.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("'", type_url, "' has no per-type xDS service: configure it over ADS"));
      }
      std::string label = absl::AsciiStrToUpper(info->short_name);
      if (config->second.stream.delta) {
        absl::StrAppend(&label, " (delta)");
      }
      new_stream = std::make_unique<Stream>(*this, config->second.stream, method, label);
      new_stream->setPerType();
      stream = new_stream.get();
    }
    type = &types_[std::string(type_url)];
    type->type = info;
    type->config = config->second;
    type->stream = stream;
    stream->addType(*type);
    if (new_stream != nullptr) {
      type_streams_.emplace(std::string(type_url), std::move(new_stream));
    }
  }

  std::set<std::string> names(resource_names.begin(), resource_names.end());
  names.erase("");
  const uint64_t id = next_watch_id_++;
  Stats::Scope* scope = nullptr;
  if (options.stats_scope.has_value()) {
    scope = &*options.stats_scope;
  } else {
    auto it = default_scopes_.find(type->type->short_name);
    if (it == default_scopes_.end()) {
      it = default_scopes_.emplace(type->type->short_name, scope_.child(type->type->short_name))
               .first;
    }
    scope = &it->second;
  }
  auto watch = std::make_unique<WatchImpl>(*this, *type, id, watcher, *scope);
  type->watches.emplace(id, watch.get());
  if (names.empty()) {
    type->wildcard_watches.insert(id);
  } else {
    addNames(*type, *watch, names);
  }
  watch->names_ = std::move(names);

  const auto timeout = options.initial_fetch_timeout.value_or(type->config.initial_fetch_timeout);
  if (timeout.count() > 0) {
    watch->init_timer_ = main_.createTimer([this, id, type] { onInitFetchTimeout(id, *type); });
    watch->init_timer_->enableTimer(timeout);
  }
  if (type->has_response) {
    cached_deliveries_.emplace_back(id, type);
  }
  type->pending = true;
  scheduleFlush();
  return WatchHandle(std::move(watch));
}

void XdsClientImpl::addNames(TypeState& type, WatchImpl& watch,
                             const std::set<std::string>& names) {
  for (const auto& name : names) {
    type.name_watches[name].insert(watch.id_);
  }
}

void XdsClientImpl::removeNames(TypeState& type, WatchImpl& watch,
                                const std::set<std::string>& names) {
  for (const auto& name : names) {
    auto it = type.name_watches.find(name);
    if (it == type.name_watches.end()) {
      continue;
    }
    it->second.erase(watch.id_);
    if (it->second.empty()) {
      type.name_watches.erase(it);
    }
  }
  // Without a wildcard watch, keep only what is still subscribed: a name subscribed again
  // later is fetched afresh.
  if (!type.wildcard()) {
    for (auto it = type.cache.begin(); it != type.cache.end();) {
      if (type.name_watches.count(it->first) == 0) {
        type.delta_versions.erase(it->first);
        type.cache.erase(it++);
      } else {
        ++it;
      }
    }
  }
}

void XdsClientImpl::removeWatch(WatchImpl& watch) {
  ASSERT(main_.isThreadSafe());
  TypeState& type = *watch.type_;
  type.watches.erase(watch.id_);
  type.wildcard_watches.erase(watch.id_);
  removeNames(type, watch, watch.names_);
  type.pending = true;
  scheduleFlush();
}

void XdsClientImpl::updateWatchNames(WatchImpl& watch,
                                     const std::vector<std::string>& resource_names) {
  ASSERT(main_.isThreadSafe());
  std::set<std::string> names(resource_names.begin(), resource_names.end());
  names.erase("");
  if (names == watch.names_) {
    return;
  }
  TypeState& type = *watch.type_;
  std::set<std::string> added;
  std::set<std::string> removed;
  std::set_difference(names.begin(), names.end(), watch.names_.begin(), watch.names_.end(),
                      std::inserter(added, added.end()));
  std::set_difference(watch.names_.begin(), watch.names_.end(), names.begin(), names.end(),
                      std::inserter(removed, removed.end()));
  const bool was_wildcard = watch.names_.empty();
  watch.names_ = names;
  if (names.empty()) {
    type.wildcard_watches.insert(watch.id_);
  } else if (was_wildcard) {
    type.wildcard_watches.erase(watch.id_);
  }
  addNames(type, watch, added);
  removeNames(type, watch, removed);
  if (type.has_response && (!added.empty() || names.empty())) {
    cached_deliveries_.emplace_back(watch.id_, &type);
  }
  type.pending = true;
  scheduleFlush();
}

void XdsClientImpl::scheduleFlush() {
  if (!flush_timer_->enabled()) {
    flush_timer_->enableTimer(std::chrono::milliseconds(0));
  }
}

void XdsClientImpl::onFlushTimer() {
  auto deliveries = std::move(cached_deliveries_);
  cached_deliveries_.clear();
  for (const auto& [id, type] : deliveries) {
    deliverCached(id, *type);
  }
  auto flushStream = [](Stream& stream) {
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

void XdsClientImpl::deliverCached(uint64_t watch_id, TypeState& type) {
  auto it = type.watches.find(watch_id);
  if (it == type.watches.end()) {
    return;
  }
  WatchImpl* watch = it->second;
  std::vector<DecodedResource> resources;
  auto add = [&](const std::string& name, const CachedResource& cached) {
    DecodedResource resource;
    resource.name = name;
    resource.version = cached.version;
    resource.hash = cached.hash;
    resource.message = cached.message;
    resources.push_back(std::move(resource));
  };
  if (watch->names_.empty()) {
    for (const auto& [name, cached] : type.cache) {
      add(name, cached);
    }
  } else {
    for (const auto& name : watch->names_) {
      auto cached = type.cache.find(name);
      if (cached != type.cache.end()) {
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

void XdsClientImpl::updateConnectedState() {
  bool any_started = false;
  bool all_connected = true;
  auto check = [&](const Stream& stream) {
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

void XdsClientImpl::onStreamFailure(Stream& stream) {
  updateConnectedState();
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

void XdsClientImpl::nack(Stream& stream, TypeState& type, const std::string& nonce,
                         std::string error) {
  spdlog::warn("xds: {} NACK {} nonce '{}' (keeping version '{}'): {}", stream.label(),
               type.type->short_name, nonce, type.accepted_version, error);
  if (stream.delta()) {
    type.delta_acks.emplace_back(nonce, std::move(error));
  } else {
    type.nonce = nonce;
    type.pending_error = std::move(error);
    type.ack_pending = true;
  }
  for (auto& [id, watch] : type.watches) {
    watch->stats_.update_attempt.inc();
    watch->stats_.update_rejected.inc();
  }
  type.pending = true;
  scheduleFlush();
}

void XdsClientImpl::processResponse(Stream& stream, DecodedResponsePtr response) {
  ASSERT(main_.isThreadSafe());
  TypeState* type = nullptr;
  if (stream.perType()) {
    type = stream.types().front();
    if (!response->status.ok()) {
      nack(stream, *type, response->nonce, std::string(response->status.message()));
      return;
    }
    if (response->type_url != type->type->type_url) {
      nack(stream, *type, response->nonce,
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
      nack(stream, *type, response->nonce, std::string(response->status.message()));
      return;
    }
  }
  processUpdate(stream, *type, *response);
}

void XdsClientImpl::processUpdate(Stream& stream, TypeState& type, DecodedResponse& response) {
  const bool delta = response.delta;

  // Problems of resources nobody asked for do not matter: they are ignored like the resources.
  std::vector<std::string> errors;
  std::set<std::string> invalid_names;  // subscribed ones
  bool unnamed_errors = false;
  for (const auto& error : response.errors) {
    if (!error.name.empty() && !type.subscribed(error.name)) {
      continue;
    }
    if (error.name.empty()) {
      unnamed_errors = true;
    } else {
      invalid_names.insert(error.name);
    }
    errors.push_back(error.format());
  }

  // "The client will silently ignore any supplied resources that were not explicitly
  // requested."
  size_t ignored = 0;
  if (!type.wildcard()) {
    auto& resources = response.resources;
    auto end = std::remove_if(resources.begin(), resources.end(), [&](const DecodedResource& r) {
      return type.name_watches.count(r.name) == 0;
    });
    ignored = resources.end() - end;
    resources.erase(end, resources.end());
  }

  // Removals: explicit in Delta; in SotW, absence from a Listener/Cluster response.
  std::vector<std::string> removed;
  if (delta) {
    for (const auto& name : response.removed) {
      if (type.cache.count(name) > 0 || type.name_watches.count(name) > 0) {
        removed.push_back(name);
      }
    }
  } else if (type.type->all_resources_required_in_sotw) {
    if (response.all_names_known) {
      absl::flat_hash_set<absl::string_view> present;
      present.reserve(response.resources.size() + response.kept_names.size());
      for (const auto& resource : response.resources) {
        present.insert(resource.name);
      }
      for (const auto& name : response.kept_names) {
        present.insert(name);
      }
      for (const auto& [name, cached] : type.cache) {
        if (present.count(name) == 0) {
          removed.push_back(name);
        }
      }
      std::sort(removed.begin(), removed.end());  // the cache is unordered
    } else {
      spdlog::warn("xds: {} {}: not removing any resource: a resource's name could not be read",
                   stream.label(), type.type->short_name);
    }
  }

  // The cache first: watches created from the callbacks below get the new state.
  for (const auto& resource : response.resources) {
    type.cache[resource.name] = CachedResource{resource.message, resource.version, resource.hash};
  }
  for (const auto& name : removed) {
    type.cache.erase(name);
  }
  type.has_response = true;

  // What each named watch gets; wildcard watches get everything, without copies.
  struct Batch {
    std::vector<DecodedResource> added;
    std::vector<std::string> removed;
    bool invalid = false;  // one of its names was invalid in this response
  };
  std::map<uint64_t, Batch> batches;
  if (!type.name_watches.empty()) {
    for (const auto& resource : response.resources) {
      auto it = type.name_watches.find(resource.name);
      if (it != type.name_watches.end()) {
        for (uint64_t id : it->second) {
          batches[id].added.push_back(resource);
        }
      }
    }
    for (const auto& name : removed) {
      auto it = type.name_watches.find(name);
      if (it != type.name_watches.end()) {
        for (uint64_t id : it->second) {
          batches[id].removed.push_back(name);
        }
      }
    }
    for (const auto& name : invalid_names) {
      auto it = type.name_watches.find(name);
      if (it != type.name_watches.end()) {
        for (uint64_t id : it->second) {
          batches[id].invalid = true;
        }
      }
    }
  }

  std::vector<uint64_t> ids;
  ids.reserve(type.watches.size());
  for (const auto& [id, watch] : type.watches) {
    ids.push_back(id);
  }
  std::vector<uint64_t> updated;  // watches that took part, for version_text
  ++dispatching_;
  for (uint64_t id : ids) {
    auto it = type.watches.find(id);
    if (it == type.watches.end()) {
      continue;  // dropped by an earlier callback
    }
    WatchImpl* watch = it->second;
    const std::vector<DecodedResource>* added = &response.resources;
    const std::vector<std::string>* gone = &removed;
    bool client_rejected = !errors.empty();
    bool call = true;
    if (!watch->names_.empty()) {
      auto batch = batches.find(id);
      if (batch == batches.end() && !unnamed_errors) {
        continue;  // nothing in this response for it
      }
      static const std::vector<DecodedResource> kNoResources;
      static const std::vector<std::string> kNoNames;
      added = batch != batches.end() ? &batch->second.added : &kNoResources;
      gone = batch != batches.end() ? &batch->second.removed : &kNoNames;
      client_rejected = unnamed_errors || (batch != batches.end() && batch->second.invalid);
      call = !added->empty() || !gone->empty();
    }
    if (watch->init_timer_ != nullptr) {
      watch->init_timer_->disableTimer();
    }
    absl::Status status;
    if (call) {
      status = watch->watcher_.onConfigUpdate(*added, *gone, response.version);
      if (!status.ok()) {
        errors.emplace_back(status.message());
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
      updated.push_back(id);
    }
  }
  --dispatching_;

  if (errors.empty()) {
    type.accepted_version = response.version;
    if (delta) {
      for (const auto& resource : response.resources) {
        type.delta_versions[resource.name] = resource.version;
      }
      for (const auto& name : removed) {
        type.delta_versions.erase(name);
      }
      type.delta_acks.emplace_back(response.nonce, std::nullopt);
    } else {
      type.nonce = response.nonce;
      type.pending_error.reset();
      type.ack_pending = true;
    }
    for (uint64_t id : updated) {
      auto it = type.watches.find(id);
      if (it != type.watches.end()) {
        it->second->stats_.version_text.set(response.version);
      }
    }
    spdlog::info("xds: {} ACK {} version '{}' nonce '{}' ({} resources, {} removed{})",
                 stream.label(), type.type->short_name, response.version, response.nonce,
                 response.resources.size(), removed.size(),
                 ignored > 0 ? absl::StrCat(", ", ignored, " not subscribed") : "");
    type.pending = true;
    scheduleFlush();
    return;
  }

  std::string message = absl::StrJoin(errors, "; ");
  if (delta) {
    // The versions of a rejected response are not recorded: after a reconnect the server
    // sends those resources again. Removed ones are gone either way.
    for (const auto& name : removed) {
      type.delta_versions.erase(name);
    }
  }
  spdlog::warn("xds: {} NACK {} version '{}' nonce '{}' (keeping version '{}'): {}", stream.label(),
               type.type->short_name, response.version, response.nonce, type.accepted_version,
               message);
  if (delta) {
    type.delta_acks.emplace_back(response.nonce, std::move(message));
  } else {
    type.nonce = response.nonce;
    type.pending_error = std::move(message);
    type.ack_pending = true;
  }
  type.pending = true;
  scheduleFlush();
}

}  // namespace Proxy::Xds
