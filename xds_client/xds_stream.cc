#include "xds_client/xds_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
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

XdsStream::XdsStream(const XdsClientConfig& client_config, XdsStreamConfig config,
                     std::string method, std::string label, Event::Dispatcher& main,
                     XdsTransportFactory& transport_factory, Stats::Counter& rate_limit_enforced,
                     Stats::Scope& scope, Callbacks& callbacks)
    : client_config_(client_config),
      config_(std::move(config)),
      method_(std::move(method)),
      label_(std::move(label)),
      main_(main),
      transport_factory_(transport_factory),
      rate_limit_enforced_(rate_limit_enforced),
      callbacks_(callbacks),
      backoff_(client_config.backoff_base, client_config.backoff_max, client_config.random),
      bucket_(config_.rate_limit.max_tokens, config_.rate_limit.fill_rate, main.timeSource()) {
  retry_timer_ = main_.createTimer([this] { connect(); });
  drain_timer_ = main_.createTimer([this] { flush(); });
  if (!config_.stat_prefix.empty()) {
    // All of them up front, as Envoy registers them.
    const std::string prefix = absl::StrCat("grpc.", config_.stat_prefix, ".");
    streams_total_ = &scope.counter(absl::StrCat(prefix, "streams_total"));
    for (size_t code = 0; code < kGrpcStatusCodes; ++code) {
      streams_closed_[code] = &scope.counter(absl::StrCat(prefix, "streams_closed_", code));
    }
  }
}

XdsStream::~XdsStream() {
  transport_.reset();
}

void XdsStream::addType(TypeState& type) {
  types_.push_back(&type);
  std::stable_sort(types_.begin(), types_.end(), [](const TypeState* a, const TypeState* b) {
    return a->type->request_order < b->type->request_order;
  });
}

bool XdsStream::hasWatches() const {
  return std::any_of(types_.begin(), types_.end(),
                     [](const TypeState* t) { return !t->watches.empty(); });
}

void XdsStream::maybeConnect() {
  if (transport_ == nullptr && !retry_timer_->enabled() && hasWatches()) {
    connect();
  }
}

void XdsStream::flush() {
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
      rate_limit_enforced_.inc();
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

// ---------------------------------------------------------------------------------------------
// XdsTransport::EventHandler

void XdsStream::onConnected() {
  if (transport_ == nullptr) {
    return;
  }
  connected_ = true;
  spdlog::info("xds: {} stream to {} connected", label_, config_.target);
  callbacks_.onStreamStateChanged();
}

void XdsStream::onResponse(DecodedResponsePtr response) {
  if (transport_ == nullptr) {
    return;
  }
  if (!got_response_) {
    // The stream is healthy: the next failure starts the backoff from the beginning.
    got_response_ = true;
    backoff_.reset();
  }
  callbacks_.onStreamResponse(*this, std::move(response));
}

void XdsStream::onStreamClosed(const absl::Status& status) {
  if (transport_ == nullptr) {
    return;
  }
  if (status.ok()) {
    spdlog::info("xds: {} stream to {} closed by the server", label_, config_.target);
  } else {
    spdlog::warn("xds: {} stream to {} closed: {}", label_, config_.target, status.ToString());
  }
  main_.deferredDelete(std::make_unique<DeferredTransport>(std::move(transport_)));
  // absl's canonical codes are gRPC's, 0..16.
  const auto code = static_cast<size_t>(status.code());
  if (streams_total_ != nullptr && code < kGrpcStatusCodes) {
    streams_closed_[code]->inc();
  }
  connected_ = false;
  drain_timer_->disableTimer();
  const auto delay = backoff_.next();
  spdlog::info("xds: {} stream to {}: backing off {} ms before reconnecting", label_,
               config_.target, delay.count());
  retry_timer_->enableTimer(delay);
  callbacks_.onStreamFailure(*this);
}

// ---------------------------------------------------------------------------------------------
// Opening the stream and building requests

void XdsStream::connect() {
  started_ = true;
  ++attempt_;
  first_message_ = true;
  connected_ = false;
  got_response_ = false;
  for (TypeState* type : types_) {
    type->resetForNewStream();
  }
  spdlog::info("xds: {} stream to {} opening (attempt {})", label_, config_.target, attempt_);
  transport_ = transport_factory_.createTransport(config_, method_, *this);
  if (streams_total_ != nullptr) {
    streams_total_->inc();
  }
  callbacks_.onStreamStateChanged();
  callbacks_.scheduleFlush();
}

bool XdsStream::hasSomethingToSend(TypeState& type) const {
  if (!type.sent_on_stream) {
    return !type.watches.empty() || !type.delta_acks.empty() || type.pending_error.has_value();
  }
  if (type.ack_pending || type.pending_error.has_value() || !type.delta_acks.empty() ||
      type.wildcard() != type.sent_wildcard) {
    return true;
  }
  if (type.sent_generation == type.names_generation) {
    return false;
  }
  if (type.namesAsSent()) {
    type.sent_generation = type.names_generation;
    return false;
  }
  return true;
}

namespace {

// The server was told the current subscription: remember its names (only when they changed).
void noteSentNames(TypeState& type) {
  if (type.sent_generation == type.names_generation) {
    return;
  }
  type.sent_names.clear();
  if (type.sent_names.capacity() > 2 * type.name_watches.size()) {
    type.sent_names.shrink_to_fit();  // the subscription shrank a lot
  }
  type.sent_names.reserve(type.name_watches.size());
  for (const auto& [name, watches] : type.name_watches) {
    type.sent_names.push_back(name);
  }
  type.sent_generation = type.names_generation;
}

}  // namespace

void XdsStream::sendSotw(TypeState& type) {
  // Every SotW request restates the whole subscription. Its names are serialized once per
  // subscription generation and reused (an ACK of one assignment among 10,000 EDS names
  // rebuilt and copied the list each time: ~23M instructions, issue 14). The request is
  // assembled as protobuf serializes it, fields in number order: version_info (1), node (2)
  // and "*" (3) before the names (3), type_url (4), response_nonce (5) and error_detail (6)
  // after; the bytes are those of one DiscoveryRequest holding all of it.
  if (type.sotw_names_generation != type.names_generation) {
    envoy::service::discovery::v3::DiscoveryRequest names;
    // Sorted (map order): equal subscriptions give equal requests.
    for (const auto& [name, watches] : type.name_watches) {
      names.add_resource_names(name);
    }
    type.sotw_names_bytes = names.SerializeAsString();
    type.sotw_names_generation = type.names_generation;
  }
  envoy::service::discovery::v3::DiscoveryRequest head;
  envoy::service::discovery::v3::DiscoveryRequest tail;
  if (first_message_) {
    *head.mutable_node() = client_config_.node;
    first_message_ = false;
  }
  head.set_version_info(type.accepted_version);
  if (type.wildcard()) {
    // An empty list on the first request is the (legacy) wildcard every server knows; with
    // explicit names too, wildcard is "*" (and stays explicit for the rest of the stream).
    if (!type.name_watches.empty() || type.sent_star) {
      head.add_resource_names(std::string(kWildcardName));
      type.sent_star = true;
    }
  }
  tail.set_type_url(type.type->type_url);
  tail.set_response_nonce(type.nonce);
  if (type.pending_error.has_value()) {
    tail.mutable_error_detail()->set_code(kInvalidArgument);
    tail.mutable_error_detail()->set_message(*type.pending_error);
  }
  noteSentNames(type);
  type.sent_wildcard = type.wildcard();
  type.pending = false;
  type.ack_pending = false;
  type.pending_error.reset();
  type.sent_on_stream = true;
  std::string request = head.SerializeAsString();
  request.reserve(request.size() + type.sotw_names_bytes.size() + tail.ByteSizeLong());
  request.append(type.sotw_names_bytes);
  tail.AppendToString(&request);
  transport_->sendMessage(std::move(request));
}

void XdsStream::sendDelta(TypeState& type) {
  envoy::service::discovery::v3::DeltaDiscoveryRequest request;
  if (first_message_) {
    *request.mutable_node() = client_config_.node;
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
        versions[name] = *version;
      }
    }
  } else if (type.sent_generation != type.names_generation) {
    // The subscription changed since the last request (an ACK alone skips this).
    for (const auto& [name, watches] : type.name_watches) {
      if (!type.sentName(name)) {
        subscribe.push_back(name);
      }
    }
    for (const auto& name : type.sent_names) {
      if (type.name_watches.count(name) == 0) {
        unsubscribe.push_back(name);
      }
    }
  }
  if (type.sent_on_stream) {
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
  noteSentNames(type);
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

}  // namespace Proxy::Xds
