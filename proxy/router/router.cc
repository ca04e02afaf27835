// The router filter: the upstream leg of a stream (router.h). ~870 lines in one file because
// FilterImpl (host choice, retries, timeouts, local replies) and its UpstreamLeg (one attempt's
// pool stream) share each attempt's state; the seam to split along, when it grows, is the retry
// and timeout bookkeeping (router_retry.cc).

#include "proxy/router/router.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proxy/buffer/buffer.h"
#include "proxy/common/free_list.h"
#include "proxy/common/hash_util.h"
#include "proxy/common/string_view.h"
#include "proxy/event/dispatcher.h"
#include "proxy/grpc/common.h"
#include "proxy/http/codec.h"
#include "proxy/router/hash_policy_impl.h"
#include "proxy/router/retry_state.h"
#include "proxy/stats/stats.h"
#include "proxy/stream_info/stream_info.h"
#include "proxy/upstream/outlier_detection.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Router {

namespace {

using StreamInfo::NoClusterFound;
using StreamInfo::NoHealthyUpstream;
using StreamInfo::NoRouteFound;
using StreamInfo::UpstreamConnectionFailure;
using StreamInfo::UpstreamConnectionTermination;
using StreamInfo::UpstreamOverflow;
using StreamInfo::UpstreamRequestTimeout;
using StreamInfo::UpstreamRetryLimitExceeded;

// Envoy's Http::Utility::resetReasonToString(), for bodies and response code details.
std::string_view resetReasonString(Http::StreamResetReason reason) {
  switch (reason) {
    case Http::StreamResetReason::LocalReset:
      return "local reset";
    case Http::StreamResetReason::ConnectionFailure:
      return "remote connection failure";
    case Http::StreamResetReason::ConnectionTermination:
      return "connection termination";
    case Http::StreamResetReason::Overflow:
      return "overflow";
    case Http::StreamResetReason::ProtocolError:
      return "protocol error";
    case Http::StreamResetReason::RemoteReset:
      return "remote reset";
    case Http::StreamResetReason::RemoteRefusedStreamReset:
      return "remote refused stream reset";
    case Http::StreamResetReason::LocalRefusedStreamReset:
      return "local refused stream reset";
  }
  return "local reset";
}

// Envoy's streamResetReasonToResponseFlag().
uint32_t resetReasonFlag(Http::StreamResetReason reason) {
  switch (reason) {
    case Http::StreamResetReason::ConnectionFailure:
      return UpstreamConnectionFailure;
    case Http::StreamResetReason::ConnectionTermination:
      return UpstreamConnectionTermination;
    case Http::StreamResetReason::Overflow:
      return UpstreamOverflow;
    case Http::StreamResetReason::ProtocolError:
      return StreamInfo::UpstreamProtocolError;
    case Http::StreamResetReason::RemoteReset:
    case Http::StreamResetReason::RemoteRefusedStreamReset:
      return StreamInfo::UpstreamRemoteReset;
    case Http::StreamResetReason::LocalReset:
    case Http::StreamResetReason::LocalRefusedStreamReset:
      return StreamInfo::LocalReset;
  }
  return StreamInfo::LocalReset;
}

// Envoy's details for an upstream reset: "upstream_reset_before_response_started{connection_
// termination}", with the transport's failure reason after a '|', spaces as '_'.
std::string resetDetails(bool response_started, std::string_view reason,
                         std::string_view transport_failure) {
  std::string details = absl::StrCat(response_started ? "upstream_reset_after_response_started{"
                                                      : "upstream_reset_before_response_started{",
                                     asAbsl(reason), transport_failure.empty() ? "" : "|",
                                     asAbsl(transport_failure), "}");
  std::replace(details.begin(), details.end(), ' ', '_');
  return details;
}

// Per-worker randomness for the retry back-off's jitter.
uint64_t threadRandom() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// A body buffer made on first use: a request without a body (or without retries) never makes
// one, so the router allocates nothing for it per request (issue 14).
class LazyBuffer {
 public:
  uint64_t length() const { return buffer_ == nullptr ? 0 : buffer_->length(); }
  Buffer::Instance& get() {
    if (buffer_ == nullptr) {
      buffer_ = std::make_unique<Buffer::Instance>();
    }
    return *buffer_;
  }
  void drainAll() {
    if (buffer_ != nullptr) {
      buffer_->drain(buffer_->length());
    }
  }

 private:
  std::unique_ptr<Buffer::Instance> buffer_;
};
// From a per-thread free list: one per request, nothing allocated in steady state.
class FilterImpl : public Filter,
                   public Upstream::LoadBalancerContext,
                   public Common::ThreadLocalFreeList<FilterImpl> {
 public:
  FilterImpl(const FilterConfig& config, FilterCallbacks& callbacks)
      : config_(config), callbacks_(callbacks) {}
  ~FilterImpl() override;

  // Filter
  void decodeHeaders() override;
  void decodeData(Buffer::Instance& data, bool end_stream) override;
  void decodeTrailers(Http::RequestTrailerMap& trailers) override;
  void onRequestComplete() override;
  void onResponseComplete() override;
  void onRouteTimeout() override;
  void resetUpstream() override;
  void readDisableUpstream(bool disable) override;
  void onStreamComplete() override;

  // Upstream::LoadBalancerContext
  std::optional<uint64_t> computeHashKey() override;

 private:
  // The router's upstream leg: pool callbacks, the upstream response, and the upstream
  // stream's resets and watermarks, forwarded to the stream. (A separate object because the
  // request and response decoder interfaces share method names.)
  class UpstreamLeg : public Http::ResponseDecoder,
                      public Http::StreamCallbacks,
                      public Upstream::HttpPoolCallbacks {
   public:
    explicit UpstreamLeg(FilterImpl& parent) : parent_(parent) {}
    // Upstream::HttpPoolCallbacks
    void onPoolReady(Http::RequestEncoder& encoder,
                     const Upstream::HostConstSharedPtr& host) override {
      parent_.onPoolReady(encoder, host);
    }
    void onPoolFailure(Upstream::PoolFailureReason reason, std::string_view details,
                       const Upstream::HostConstSharedPtr& host) override {
      parent_.onPoolFailure(reason, details, host);
    }
    // Http::ResponseDecoder
    void decode100ContinueHeaders(Http::ResponseHeaderMapPtr&&) override {
      // The client already got our own 100 Continue; the upstream's is swallowed.
    }
    void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override {
      parent_.onUpstreamHeaders(std::move(headers), end_stream);
    }
    void decodeData(Buffer::Instance& data, bool end_stream) override {
      parent_.callbacks_.encodeData(data, end_stream);
    }
    void decodeTrailers(Http::ResponseTrailerMapPtr&& trailers) override {
      parent_.callbacks_.encodeTrailers(std::move(trailers));
    }
    // Http::StreamCallbacks
    void onResetStream(Http::StreamResetReason reason) override { parent_.onUpstreamReset(reason); }
    void onAboveWriteBufferHighWatermark() override { parent_.readDisableDownstream(true); }
    void onBelowWriteBufferLowWatermark() override { parent_.readDisableDownstream(false); }

   private:
    FilterImpl& parent_;
  };

  void onPoolReady(Http::RequestEncoder& encoder, const Upstream::HostConstSharedPtr& host);
  void onPoolFailure(Upstream::PoolFailureReason reason, std::string_view details,
                     const Upstream::HostConstSharedPtr& host);
  void onUpstreamHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream);
  void onUpstreamReset(Http::StreamResetReason reason);
  void setTimeout();
  void readDisableDownstream(bool disable) { callbacks_.readDisableDownstream(disable); }

  // --- Attempts and retries ------------------------------------------------------------------
  // Picks a host (avoiding earlier attempts' hosts when the policy says so) and asks its pool
  // for a stream; answers 503 itself when there is no host.
  void startAttempt();
  // Lets go of the attempt in flight (pool request or upstream stream) without a callback.
  void abandonAttempt();
  // The attempt failed before a response: retried (true) when the policy and budget allow, the
  // response flag for a refused retry (UO, URX) set otherwise.
  bool maybeRetry(AttemptFailure failure);
  // Applies a shouldRetry() verdict: the flag of a refused retry, or the back-off timer.
  bool applyRetryStatus(RetryStatus status);
  void onPerTryTimeout();
  // An attempt that reached its host and timed out before response headers counts against the
  // host in outlier detection (Envoy's router: LocalOriginTimeout with the timeout's status).
  void reportTimeoutToOutlierDetection();
  // A retry tells the upstream the time left (Envoy: the global timeout minus the time since
  // the request completed, or the per-try timeout when smaller).
  void updateExpectedTimeout();
  // The deprecated max_grpc_timeout: grpc-timeout says the time the upstream has.
  void setGrpcTimeoutHeader(std::chrono::milliseconds expected);
  // Arms the per-try timer of the attempt in flight, once the request is complete.
  void maybeArmPerTryTimer();
  bool attemptInFlight() const { return pool_handle_ != nullptr || upstream_encoder_ != nullptr; }
  // While retries are possible the request body is kept for replay, up to the buffer limit;
  // past it, retries are given up (retry_or_shadow_abandoned), as Envoy does.
  bool buffering() const { return retry_state_ != nullptr; }
  void abandonRetries();
  // "upstream connect error or disconnect/reset before headers. [retried and the latest ]reset
  // reason: <reason>".
  std::string resetBody(std::string_view reason) const;

  const FilterConfig& config_;
  FilterCallbacks& callbacks_;
  UpstreamLeg upstream_leg_{*this};
  // The cluster's settings and stats, held for the whole request. Not the ThreadLocalCluster:
  // that is only valid synchronously (a CDS removal or update destroys it on this worker while
  // the request is in flight, its pools draining), so nothing after decodeHeaders() may touch
  // it. Found by xds_traffic_integration_test RemovedClusterLetsItsInFlightRequestFinish (a use
  // after free when the response arrived).
  Upstream::ClusterInfoConstSharedPtr cluster_info_;
  Upstream::HostConstSharedPtr host_;
  Upstream::Cancellable* pool_handle_ = nullptr;
  Http::RequestEncoder* upstream_encoder_ = nullptr;
  LazyBuffer pending_body_;  // request body that arrived before the pool was ready
  // Request trailers that arrived before the pool was ready (the stream's map).
  Http::RequestTrailerMap* pending_trailers_ = nullptr;
  // The request's trailers while retries are possible (the stream's map: it outlives us).
  Http::RequestTrailerMap* request_trailers_ = nullptr;
  // The connection's route timer (HTTP/1: one stream at a time), armed for this stream.
  Event::Timer* route_timer_ = nullptr;
  MonotonicTime upstream_start_;
  // The route timeout, or what an internal client asked for in x-envoy-upstream-rq-timeout-ms.
  std::chrono::milliseconds global_timeout_{0};
  // 504, or 204 when an internal client sent x-envoy-upstream-rq-timeout-alt-response.
  uint32_t timeout_response_code_ = 504;
  bool grpc_request_ = false;  // content-type application/grpc[+...]
  bool pending_end_stream_ = false;
  bool upstream_read_disabled_ = false;  // by us, for downstream backpressure

  // Retries. The cluster is looked up again by name for each attempt (see cluster_info_).
  std::string cluster_name_;
  RetryStatePtr retry_state_;  // null: no retries (none asked for, or given up)
  uint32_t attempt_count_ = 0;
  // Hosts of earlier attempts, for retry_host_predicate previous_hosts.
  std::vector<Upstream::HostConstSharedPtr> attempted_hosts_;
  // The route's hash_policy evaluated once per request (the same host for every attempt), and
  // the Set-Cookie values of cookies it generated, sent with the response.
  bool hash_key_computed_ = false;
  std::optional<uint64_t> hash_key_;
  std::vector<std::string> downstream_set_cookies_;
  // The whole request body received so far, while it may have to be replayed.
  LazyBuffer retry_body_;
  bool request_sent_ = false;        // this attempt's request headers went upstream
  bool response_forwarded_ = false;  // the response headers went downstream: no more retries
  std::chrono::milliseconds per_try_timeout_{0};
  MonotonicTime request_complete_time_;
  // Created only for requests that need them (a per-try timeout; a retry).
  Event::TimerPtr per_try_timer_;
  Event::TimerPtr retry_timer_;
};

FilterImpl::~FilterImpl() {
  // Nothing of the callbacks here: the stream is being destroyed (see ActiveStream's).
  if (pool_handle_ != nullptr) {
    pool_handle_->cancel();
  }
}

void FilterImpl::decodeHeaders() {
  const RouteEntry* route = callbacks_.route();
  if (route == nullptr) {
    config_.stats.no_route.inc();
    callbacks_.sendLocalReply(404, "", NoRouteFound, "route_not_found");
    return;
  }
  switch (route->action()) {
    case Router::RouteAction::Redirect: {
      config_.stats.rq_redirect.inc();
      auto headers = std::make_unique<Http::ResponseHeaderMap>();
      headers->setStatus(route->responseCode());
      headers->addCopy(Http::Headers::Location,
                       route->redirectLocation(callbacks_.requestHeaders()));
      headers->addCopy(Http::Headers::ContentLength, "0");
      route->finalizeResponseHeaders(*headers);
      callbacks_.encodeHeaders(std::move(headers), true);
      return;
    }
    case Router::RouteAction::DirectResponse:
      config_.stats.rq_direct_response.inc();
      callbacks_.sendLocalReply(route->responseCode(), route->responseBody(), 0, "direct_response");
      return;
    case Router::RouteAction::Forward:
      break;
  }
  const std::string_view cluster_name = route->clusterName(callbacks_.requestHeaders());
  callbacks_.streamInfo().upstream_cluster = std::string(cluster_name);
  Upstream::ThreadLocalCluster* cluster =
      config_.cluster_manager.getThreadLocalCluster(cluster_name);
  if (cluster == nullptr) {
    config_.stats.no_cluster.inc();
    callbacks_.sendLocalReply(route->clusterNotFoundResponseCode(), "", NoClusterFound,
                              "cluster_not_found");
    return;
  }
  cluster_info_ = cluster->info();
  cluster_name_ = std::string(cluster_name);
  // Hashing balancers hash the request as the client sent it, before the route's rewrites (as
  // Envoy picks the host before finalizing the headers).
  if (cluster_info_->lbPolicy() == Upstream::LbPolicy::RingHash ||
      cluster_info_->lbPolicy() == Upstream::LbPolicy::Maglev) {
    computeHashKey();
  }

  setTimeout();
  // Rewrites happen before the request leaves: headers to add/remove, prefix/host rewrite.
  route->finalizeRequestHeaders(callbacks_.requestHeaders(),
                                /*insert_envoy_original_path=*/!config_.suppress_envoy_headers);

  const std::chrono::milliseconds timeout = global_timeout_;
  if (timeout.count() > 0) {
    route_timer_ = &callbacks_.routeTimer();
    // Envoy starts the route timeout once the whole request was received; for a request that
    // is still streaming its body the timer starts in onRequestComplete().
    if (callbacks_.requestComplete()) {
      route_timer_->enableTimer(timeout);
    }
  }
  startAttempt();
}

void FilterImpl::startAttempt() {
  attempt_count_++;
  Upstream::ThreadLocalCluster* cluster =
      config_.cluster_manager.getThreadLocalCluster(cluster_name_);
  Upstream::HostConstSharedPtr host =
      cluster == nullptr ? nullptr : cluster->loadBalancer().chooseHostFor(*this, 0);
  // previous_hosts: pick again while the pick is a host an earlier attempt went to, at most
  // host_selection_retry_max_attempts times (then the last pick goes, as in Envoy). Hashing
  // balancers take the pick's number to step away from the hash's host.
  if (host != nullptr && retry_state_ != nullptr && retry_state_->avoidPreviousHosts()) {
    for (uint32_t i = 0; i < retry_state_->hostSelectionMaxAttempts() &&
                         std::find(attempted_hosts_.begin(), attempted_hosts_.end(), host) !=
                             attempted_hosts_.end();
         i++) {
      host = cluster->loadBalancer().chooseHostFor(*this, i + 1);
    }
  }
  Upstream::HttpConnPool* pool =
      host == nullptr ? nullptr : cluster->httpConnPool(host, callbacks_.streamInfo().protocol);
  if (pool == nullptr) {
    cluster_info_->stats().upstream_cx_none_healthy().inc();
    callbacks_.sendLocalReply(503, "no healthy upstream", NoHealthyUpstream, "no_healthy_upstream");
    return;
  }
  host_ = host;
  if (attempt_count_ > 1) {
    updateExpectedTimeout();
  }
  if (retry_state_ != nullptr && retry_state_->avoidPreviousHosts()) {
    attempted_hosts_.push_back(host);
  }
  callbacks_.streamInfo().upstream_host = host_->address();
  request_sent_ = false;
  upstream_start_ = callbacks_.dispatcher().approximateMonotonicTime();
  maybeArmPerTryTimer();
  // May call back inline (an idle connection, or overflow), and then returns null.
  pool_handle_ = pool->newStream(upstream_leg_, upstream_leg_);
}

void FilterImpl::maybeArmPerTryTimer() {
  if (per_try_timeout_.count() == 0 || !callbacks_.requestComplete() || response_forwarded_) {
    return;
  }
  if (per_try_timer_ == nullptr) {
    per_try_timer_ = callbacks_.dispatcher().createTimer([this] { onPerTryTimeout(); });
  }
  if (!per_try_timer_->enabled()) {
    per_try_timer_->enableTimer(per_try_timeout_);
  }
}

void FilterImpl::abandonAttempt() {
  if (per_try_timer_ != nullptr) {
    per_try_timer_->disableTimer();
  }
  if (pool_handle_ != nullptr) {
    pool_handle_->cancel();
    pool_handle_ = nullptr;
  }
  if (upstream_encoder_ != nullptr) {
    Http::RequestEncoder* encoder = upstream_encoder_;
    upstream_encoder_ = nullptr;
    encoder->getStream().removeCallbacks(upstream_leg_);
    encoder->getStream().resetStream(Http::StreamResetReason::LocalReset);
  }
  upstream_read_disabled_ = false;
}

bool FilterImpl::maybeRetry(AttemptFailure failure) {
  if (retry_state_ == nullptr || response_forwarded_) {
    return false;
  }
  const bool would_retry = retry_state_->wouldRetryFromFailure(failure, request_sent_);
  return applyRetryStatus(retry_state_->shouldRetry(would_retry));
}

bool FilterImpl::applyRetryStatus(RetryStatus status) {
  switch (status) {
    case RetryStatus::No:
      return false;
    case RetryStatus::NoOverflow:
      callbacks_.streamInfo().setFlag(UpstreamOverflow);
      return false;
    case RetryStatus::NoRetryLimitExceeded:
      callbacks_.streamInfo().setFlag(UpstreamRetryLimitExceeded);
      return false;
    case RetryStatus::Yes:
      break;
  }
  if (host_ != nullptr) {
    host_->stats().rq_error.fetch_add(1, std::memory_order_relaxed);
  }
  if (retry_timer_ == nullptr) {
    retry_timer_ = callbacks_.dispatcher().createTimer([this] { startAttempt(); });
  }
  // Always through the timer, even for a 0 ms back-off: the failed attempt's callbacks may be on
  // the stack.
  retry_timer_->enableTimer(retry_state_->nextBackOff());
  return true;
}

void FilterImpl::abandonRetries() {
  retry_state_.reset();
  cluster_info_->stats().retry_or_shadow_abandoned().inc();
}

std::string FilterImpl::resetBody(std::string_view reason) const {
  return absl::StrCat("upstream connect error or disconnect/reset before headers. ",
                      attempt_count_ > 1 ? "retried and the latest " : "",
                      "reset reason: ", asAbsl(reason));
}

void FilterImpl::updateExpectedTimeout() {
  static constexpr std::string_view kExpectedTimeoutMs = "x-envoy-expected-rq-timeout-ms";
  if (global_timeout_.count() == 0) {
    return;
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      callbacks_.dispatcher().approximateMonotonicTime() - request_complete_time_);
  std::chrono::milliseconds expected = global_timeout_ - std::min(elapsed, global_timeout_);
  if (per_try_timeout_.count() > 0 && per_try_timeout_ < expected) {
    expected = per_try_timeout_;
  }
  expected = std::max(expected, std::chrono::milliseconds(1));
  if (!config_.suppress_envoy_headers) {
    callbacks_.requestHeaders().setCopy(kExpectedTimeoutMs, std::to_string(expected.count()));
  }
  setGrpcTimeoutHeader(expected);
}

void FilterImpl::onPerTryTimeout() {
  cluster_info_->stats().upstream_rq_per_try_timeout().inc();
  if (host_ != nullptr) {
    host_->stats().rq_timeout.fetch_add(1, std::memory_order_relaxed);
  }
  reportTimeoutToOutlierDetection();
  abandonAttempt();
  if (maybeRetry(AttemptFailure::PerTryTimeout)) {
    return;
  }
  callbacks_.sendLocalReply(timeout_response_code_,
                            timeout_response_code_ == 504 ? "upstream request timeout" : "",
                            UpstreamRequestTimeout, "upstream_per_try_timeout");
}

void FilterImpl::setTimeout() {
  // Envoy's router (FilterUtility::finalTimeout): the route's timeout unless the request names
  // its own (only an internal request still has the header: the connection manager removed it
  // from external ones). The upstream learns the time it has in x-envoy-expected-rq-timeout-ms,
  // the per-try timeout when there is one. The router consumes its control headers.
  static constexpr std::string_view kTimeoutMs = "x-envoy-upstream-rq-timeout-ms";
  static constexpr std::string_view kPerTryTimeoutMs = "x-envoy-upstream-rq-per-try-timeout-ms";
  static constexpr std::string_view kAltResponse = "x-envoy-upstream-rq-timeout-alt-response";
  static constexpr std::string_view kExpectedTimeoutMs = "x-envoy-expected-rq-timeout-ms";
  static constexpr std::string_view kRetryHeaders[] = {"x-envoy-retry-on",
                                                       "x-envoy-retry-grpc-on",
                                                       "x-envoy-max-retries",
                                                       "x-envoy-hedge-on-per-try-timeout",
                                                       "x-envoy-retriable-header-names",
                                                       "x-envoy-retriable-status-codes"};
  Http::RequestHeaderMap& headers = callbacks_.requestHeaders();
  const StreamDurationPolicy& durations = callbacks_.route()->streamDurations();
  grpc_request_ = Grpc::isGrpcRequestHeaders(headers);
  if (durations.using_new_timeouts) {
    // The connection manager's stream duration timer bounds the stream instead.
    global_timeout_ = std::chrono::milliseconds(0);
  } else if (grpc_request_ && durations.max_grpc_timeout.has_value()) {
    // The deprecated max_grpc_timeout: the request's grpc-timeout (none: infinite) less the
    // offset (unless that reaches 0), capped by max_grpc_timeout (0: no cap).
    std::chrono::milliseconds grpc_timeout =
        Grpc::getGrpcTimeout(headers).value_or(std::chrono::milliseconds(0));
    if (durations.grpc_timeout_offset.has_value() &&
        *durations.grpc_timeout_offset < grpc_timeout) {
      grpc_timeout -= *durations.grpc_timeout_offset;
    }
    const std::chrono::milliseconds max = *durations.max_grpc_timeout;
    if (max.count() != 0 && (grpc_timeout.count() == 0 || grpc_timeout > max)) {
      grpc_timeout = max;
    }
    global_timeout_ = grpc_timeout;
  } else {
    global_timeout_ = callbacks_.route()->timeout();
  }
  std::chrono::milliseconds per_try = callbacks_.route()->retryPolicy().per_try_timeout;
  uint64_t ms = 0;
  if (headers.has(kTimeoutMs)) {
    const std::string_view value = headers.getValue(kTimeoutMs);
    if (absl::SimpleAtoi(asAbsl(value), &ms)) {
      global_timeout_ = std::chrono::milliseconds(ms);
    }
    headers.remove(kTimeoutMs);
  }
  if (headers.has(kPerTryTimeoutMs)) {
    const std::string_view value = headers.getValue(kPerTryTimeoutMs);
    if (absl::SimpleAtoi(asAbsl(value), &ms)) {
      per_try = std::chrono::milliseconds(ms);
    }
    headers.remove(kPerTryTimeoutMs);
  }
  if (headers.has(kAltResponse)) {
    timeout_response_code_ = 204;
    headers.remove(kAltResponse);
  }
  retry_state_ =
      RetryState::create(callbacks_.route()->retryPolicy(), headers, cluster_info_, &threadRandom);
  for (std::string_view name : kRetryHeaders) {
    headers.remove(name);
  }
  if (per_try >= global_timeout_ && global_timeout_.count() != 0) {
    per_try = std::chrono::milliseconds(0);
  }
  per_try_timeout_ = per_try;
  const std::chrono::milliseconds expected = per_try.count() > 0 ? per_try : global_timeout_;
  if (expected.count() > 0 && !config_.suppress_envoy_headers) {
    headers.setCopy(kExpectedTimeoutMs, std::to_string(expected.count()));
  }
  setGrpcTimeoutHeader(expected);
}

void FilterImpl::setGrpcTimeoutHeader(std::chrono::milliseconds expected) {
  // With the deprecated max_grpc_timeout the upstream learns the time it has in grpc-timeout
  // too (Envoy's setTimeoutHeaders).
  const StreamDurationPolicy& durations = callbacks_.route()->streamDurations();
  if (expected.count() > 0 && grpc_request_ && !durations.using_new_timeouts &&
      durations.max_grpc_timeout.has_value()) {
    Grpc::toGrpcTimeout(expected, callbacks_.requestHeaders());
  }
}

void FilterImpl::decodeData(Buffer::Instance& data, bool end_stream) {
  if (buffering()) {
    if (retry_body_.length() + data.length() <= config_.per_connection_buffer_limit) {
      // Kept for a replay, and sent to the attempt in flight if it has a connection.
      retry_body_.get().add(data);
      pending_end_stream_ = end_stream;
      if (upstream_encoder_ != nullptr) {
        upstream_encoder_->encodeData(data, end_stream);
      } else {
        data.drain(data.length());
      }
      return;
    }
    // Too big to replay: no more retries. Between attempts that ends the request (Envoy's 507).
    abandonRetries();
    if (!attemptInFlight()) {
      callbacks_.sendLocalReply(507, "exceeded request buffer limit while retrying upstream", 0,
                                "request_payload_exceeded_retry_buffer_limit");
      return;
    }
    if (upstream_encoder_ == nullptr) {
      if (retry_body_.length() > 0) {
        pending_body_.get().move(retry_body_.get());  // what the pending attempt has not had
      }
    } else {
      retry_body_.drainAll();
    }
  }
  if (upstream_encoder_ != nullptr) {
    upstream_encoder_->encodeData(data, end_stream);
    return;
  }
  // The pool is not ready yet: hold the body, but only up to the buffer limit.
  pending_body_.get().move(data);
  pending_end_stream_ = end_stream;
  if (pending_body_.length() > config_.per_connection_buffer_limit) {
    readDisableDownstream(true);
  }
}

void FilterImpl::decodeTrailers(Http::RequestTrailerMap& trailers) {
  if (buffering()) {
    request_trailers_ = &trailers;  // for every attempt (onPoolReady)
  }
  if (upstream_encoder_ != nullptr) {
    upstream_encoder_->encodeTrailers(trailers);
    return;
  }
  if (buffering()) {
    return;  // the next attempt sends them
  }
  pending_trailers_ = &trailers;  // sent after the held body once the pool is ready
}

void FilterImpl::onRequestComplete() {
  request_complete_time_ = callbacks_.dispatcher().approximateMonotonicTime();
  if (route_timer_ != nullptr && !route_timer_->enabled() && callbacks_.route() != nullptr &&
      global_timeout_.count() > 0) {
    route_timer_->enableTimer(global_timeout_);
  }
  if (attemptInFlight()) {
    maybeArmPerTryTimer();
  }
}

void FilterImpl::onPoolReady(Http::RequestEncoder& encoder,
                             const Upstream::HostConstSharedPtr& host) {
  pool_handle_ = nullptr;
  upstream_encoder_ = &encoder;
  host_ = host;
  callbacks_.streamInfo().upstream_host = host->address();
  encoder.getStream().addCallbacks(upstream_leg_);
  request_sent_ = true;
  if (buffering()) {
    // Every attempt gets a copy of the body received so far (and the trailers, which the stream
    // keeps); the rest follows as it arrives.
    const bool has_trailers = request_trailers_ != nullptr;
    const bool headers_only =
        callbacks_.requestComplete() && retry_body_.length() == 0 && !has_trailers;
    encoder.encodeHeaders(callbacks_.requestHeaders(), headers_only);
    if (!headers_only && (retry_body_.length() > 0 || (pending_end_stream_ && !has_trailers))) {
      Buffer::Instance copy;
      copy.add(retry_body_.get());
      encoder.encodeData(copy, pending_end_stream_ && !has_trailers);
    }
    if (has_trailers && upstream_encoder_ != nullptr) {
      upstream_encoder_->encodeTrailers(*request_trailers_);
    }
    return;
  }
  Http::RequestTrailerMap* trailers = pending_trailers_;
  pending_trailers_ = nullptr;
  const bool headers_only =
      callbacks_.requestComplete() && pending_body_.length() == 0 && trailers == nullptr;
  encoder.encodeHeaders(callbacks_.requestHeaders(), headers_only);
  if (!headers_only &&
      (pending_body_.length() > 0 || (pending_end_stream_ && trailers == nullptr))) {
    encoder.encodeData(pending_body_.get(), pending_end_stream_ && trailers == nullptr);
  }
  if (trailers != nullptr && upstream_encoder_ != nullptr) {
    upstream_encoder_->encodeTrailers(*trailers);
  }
  readDisableDownstream(false);
}

void FilterImpl::onPoolFailure(Upstream::PoolFailureReason reason, std::string_view details,
                               const Upstream::HostConstSharedPtr& host) {
  pool_handle_ = nullptr;
  if (per_try_timer_ != nullptr) {
    per_try_timer_->disableTimer();
  }
  if (reason == Upstream::PoolFailureReason::Overflow) {
    maybeRetry(AttemptFailure::Overflow);  // never retried; counted as an outcome
    // Envoy marks a request its pool dropped with x-envoy-overloaded: true.
    callbacks_.sendLocalReply(503, resetBody("overflow"), UpstreamOverflow,
                              resetDetails(false, "overflow", {}),
                              /*overloaded=*/!config_.suppress_envoy_headers);
    return;
  }
  if (maybeRetry(AttemptFailure::ConnectFailure)) {
    return;
  }
  // `details` is the transport's failure reason ("delayed connect error: Connection refused"),
  // which Envoy puts in the details but not in the body.
  const std::string_view reset_reason = reason == Upstream::PoolFailureReason::Timeout
                                            ? "connection timeout"
                                            : "remote connection failure";
  callbacks_.sendLocalReply(503, resetBody(reset_reason), UpstreamConnectionFailure,
                            resetDetails(false, reset_reason, details));
}

void FilterImpl::onUpstreamHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) {
  const uint32_t code = headers->status();
  if (per_try_timer_ != nullptr) {
    per_try_timer_->disableTimer();
  }
  if (retry_state_ != nullptr) {
    const bool would_retry = retry_state_->wouldRetryFromHeaders(code, *headers);
    if (applyRetryStatus(retry_state_->shouldRetry(would_retry))) {
      // This response goes nowhere. A complete one leaves its connection to the pool; one with
      // a body still coming cannot be skipped on HTTP/1: the connection is closed.
      if (end_stream) {
        upstream_encoder_->getStream().removeCallbacks(upstream_leg_);
        upstream_encoder_ = nullptr;
      } else {
        abandonAttempt();
      }
      return;
    }
    // The response goes downstream: no more retries, and no more copies of the body.
    retry_state_.reset();
    retry_body_.drainAll();
  }
  response_forwarded_ = true;
  callbacks_.streamInfo().response_code_details = "via_upstream";
  auto& cstats = cluster_info_->stats();
  if (code >= 500) {
    cstats.upstream_rq_5xx().inc();
  } else if (code >= 400) {
    cstats.upstream_rq_4xx().inc();
  } else if (code >= 300) {
    cstats.upstream_rq_3xx().inc();
  } else if (code >= 200) {
    cstats.upstream_rq_2xx().inc();
  }
  if (!config_.suppress_envoy_headers) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        callbacks_.dispatcher().approximateMonotonicTime() - upstream_start_);
    headers->setCopy(Http::Headers::XEnvoyUpstreamServiceTime, std::to_string(elapsed.count()));
  }
  for (const std::string& cookie : downstream_set_cookies_) {
    headers->addCopy("set-cookie", cookie);
  }
  callbacks_.route()->finalizeResponseHeaders(*headers);
  callbacks_.encodeHeaders(std::move(headers), end_stream);
}

std::optional<uint64_t> FilterImpl::computeHashKey() {
  if (hash_key_computed_) {
    return hash_key_;
  }
  hash_key_computed_ = true;
  const RouteEntry* route = callbacks_.route();
  const HashPolicyImpl* policy = route == nullptr ? nullptr : route->hashPolicy();
  if (policy == nullptr) {
    return hash_key_;
  }
  const StreamInfo::StreamInfo& info = callbacks_.streamInfo();
  hash_key_ = policy->generateHash(
      info.downstream_remote, callbacks_.requestHeaders(),
      [this, &info](const std::string& name, const std::string& path, std::chrono::seconds ttl) {
        // Envoy's value: the hex xxHash64 of the connection's remote and local addresses, the
        // same for every request of one connection.
        const uint64_t hash = HashUtil::xxHash64(
            absl::StrCat(info.downstream_remote.valid() ? info.downstream_remote.asString() : "",
                         info.downstream_local.valid() ? info.downstream_local.asString() : ""));
        std::string value = absl::StrCat(absl::Hex(hash, absl::kZeroPad16));
        downstream_set_cookies_.push_back(makeSetCookieValue(name, value, path, ttl));
        return value;
      });
  return hash_key_;
}

void FilterImpl::onResponseComplete() {
  if (route_timer_ != nullptr) {
    route_timer_->disableTimer();
  }
  if (!callbacks_.requestComplete()) {
    // The upstream answered before it got the whole body: that upstream connection is not
    // reusable, and neither is the downstream one.
    resetUpstream();
  }
}

void FilterImpl::onUpstreamReset(Http::StreamResetReason reason) {
  upstream_encoder_ = nullptr;
  if (per_try_timer_ != nullptr) {
    per_try_timer_->disableTimer();
  }
  const bool overflow = reason == Http::StreamResetReason::Overflow;
  const AttemptFailure failure = overflow
                                     ? AttemptFailure::Overflow
                                     : (reason == Http::StreamResetReason::RemoteRefusedStreamReset
                                            ? AttemptFailure::RefusedStream
                                            : AttemptFailure::Reset);
  if (maybeRetry(failure)) {
    return;
  }
  // Envoy answers a malformed response 502, any other reset 503 (once the response started,
  // the connection is cut instead).
  const std::string_view reason_string = resetReasonString(reason);
  callbacks_.sendLocalReply(reason == Http::StreamResetReason::ProtocolError ? 502 : 503,
                            resetBody(reason_string), resetReasonFlag(reason),
                            resetDetails(response_forwarded_, reason_string, {}),
                            /*overloaded=*/overflow && !config_.suppress_envoy_headers);
}

void FilterImpl::onRouteTimeout() {
  config_.stats.downstream_rq_timeout.inc();
  if (cluster_info_ != nullptr) {
    cluster_info_->stats().upstream_rq_timeout().inc();
  }
  if (host_ != nullptr) {
    host_->stats().rq_timeout.fetch_add(1, std::memory_order_relaxed);
  }
  reportTimeoutToOutlierDetection();
  callbacks_.sendLocalReply(timeout_response_code_,
                            timeout_response_code_ == 504 ? "upstream request timeout" : "",
                            UpstreamRequestTimeout, "response_timeout");
}

void FilterImpl::reportTimeoutToOutlierDetection() {
  if (upstream_encoder_ != nullptr && !response_forwarded_ && host_ != nullptr) {
    Upstream::Outlier::putResult(*host_, Upstream::Outlier::Result::LocalOriginTimeout,
                                 timeout_response_code_);
  }
}

void FilterImpl::resetUpstream() {
  abandonAttempt();
  if (retry_timer_ != nullptr) {
    retry_timer_->disableTimer();
  }
  if (route_timer_ != nullptr) {
    route_timer_->disableTimer();
  }
}

void FilterImpl::readDisableUpstream(bool disable) {
  if (upstream_read_disabled_ == disable || upstream_encoder_ == nullptr) {
    return;
  }
  upstream_read_disabled_ = disable;
  upstream_encoder_->getStream().readDisable(disable);
}

void FilterImpl::onStreamComplete() {
  if (upstream_read_disabled_ && upstream_encoder_ != nullptr) {
    upstream_encoder_->getStream().readDisable(false);
  }
  upstream_read_disabled_ = false;
  if (upstream_encoder_ != nullptr) {
    // The pool may hand this upstream connection to another request from now on.
    upstream_encoder_->getStream().removeCallbacks(upstream_leg_);
    upstream_encoder_ = nullptr;
  }
}

}  // namespace

FilterPtr createFilter(const FilterConfig& config, FilterCallbacks& callbacks) {
  return std::make_unique<FilterImpl>(config, callbacks);
}

}  // namespace Proxy::Router
