#include "proxy/router/retry_state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proxy/common/string_view.h"

namespace Proxy::Router {

namespace {

constexpr std::string_view kRetryOn = "x-envoy-retry-on";
constexpr std::string_view kMaxRetries = "x-envoy-max-retries";
constexpr std::string_view kRetriableStatusCodes = "x-envoy-retriable-status-codes";
constexpr std::string_view kRateLimited = "x-envoy-ratelimited";

}  // namespace

uint32_t parseRetryOn(std::string_view value) {
  static const std::pair<std::string_view, RetryPolicy::RetryOn> kNames[] = {
      {"5xx", RetryPolicy::k5xx},
      {"gateway-error", RetryPolicy::kGatewayError},
      {"reset", RetryPolicy::kReset},
      {"connect-failure", RetryPolicy::kConnectFailure},
      {"retriable-4xx", RetryPolicy::kRetriable4xx},
      {"refused-stream", RetryPolicy::kRefusedStream},
      {"retriable-status-codes", RetryPolicy::kRetriableStatusCodes},
      {"retriable-headers", RetryPolicy::kRetriableHeaders},
      {"reset-before-request", RetryPolicy::kResetBeforeRequest},
      {"envoy-ratelimited", RetryPolicy::kEnvoyRateLimited},
      {"http3-post-connect-failure", RetryPolicy::kHttp3PostConnectFailure},
  };
  uint32_t bits = 0;
  for (absl::string_view token : absl::StrSplit(asAbsl(value), ',')) {
    token = absl::StripAsciiWhitespace(token);
    for (const auto& [name, bit] : kNames) {
      if (token == asAbsl(name)) {
        bits |= bit;
      }
    }
  }
  return bits;
}

JitteredBackOff::JitteredBackOff(uint64_t base_ms, uint64_t max_ms,
                                 std::function<uint64_t()> random)
    : base_ms_(std::max<uint64_t>(base_ms, 1)),
      max_ms_(std::max(max_ms, base_ms_)),
      next_ms_(base_ms_),
      random_(std::move(random)) {}

uint64_t JitteredBackOff::nextBackOffMs() {
  const uint64_t backoff = next_ms_;
  next_ms_ = next_ms_ > max_ms_ / 2 ? max_ms_ : next_ms_ * 2;
  return std::min(random_() % backoff, max_ms_);
}

RetryState::RetryState(const RetryPolicy& policy, Upstream::ClusterInfoConstSharedPtr cluster,
                       std::function<uint64_t()> random)
    : cluster_(std::move(cluster)),
      retry_on_(policy.retry_on),
      retries_remaining_(policy.num_retries),
      retriable_status_codes_(policy.retriable_status_codes),
      avoid_previous_hosts_(policy.avoid_previous_hosts),
      host_selection_max_attempts_(policy.host_selection_max_attempts),
      per_try_timeout_(policy.per_try_timeout),
      backoff_(static_cast<uint64_t>(policy.base_interval.count()),
               static_cast<uint64_t>(policy.max_interval.count()), std::move(random)) {}

std::unique_ptr<RetryState> RetryState::create(const RetryPolicy& policy,
                                               const Http::RequestHeaderMap& headers,
                                               Upstream::ClusterInfoConstSharedPtr cluster,
                                               std::function<uint64_t()> random) {
  // Only an internal request still carries these headers: the connection manager strips them
  // from external ones, as Envoy's does.
  const uint32_t header_retry_on =
      headers.has(kRetryOn) ? parseRetryOn(headers.getValue(kRetryOn)) : 0;
  if ((policy.retry_on | header_retry_on) == 0) {
    return nullptr;  // no retries: nothing to allocate (every request of a route without them)
  }
  auto state = std::unique_ptr<RetryState>(new RetryState(policy, std::move(cluster), random));
  state->retry_on_ |= header_retry_on;
  if (headers.has(kRetriableStatusCodes)) {
    for (absl::string_view code :
         absl::StrSplit(asAbsl(headers.getValue(kRetriableStatusCodes)), ',')) {
      uint32_t value = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(code), &value)) {
        state->retriable_status_codes_.push_back(value);
      }
    }
  }
  uint32_t max_retries = 0;
  if (headers.has(kMaxRetries) &&
      absl::SimpleAtoi(asAbsl(headers.getValue(kMaxRetries)), &max_retries)) {
    state->retries_remaining_ = max_retries;  // the header wins over num_retries
  }
  return state;
}

RetryState::~RetryState() {
  releaseRetry();
}

void RetryState::releaseRetry() {
  if (retry_in_flight_) {
    retry_in_flight_ = false;
    cluster_->resources().retries.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool RetryState::wouldRetryFromHeaders(uint32_t status,
                                       const Http::ResponseHeaderMap& headers) const {
  // A response an upstream Envoy rate limited is retried only when asked for by name.
  if (headers.getValue(kRateLimited) == "true") {
    return (retry_on_ & RetryPolicy::kEnvoyRateLimited) != 0;
  }
  if ((retry_on_ & RetryPolicy::k5xx) && status >= 500 && status < 600) {
    return true;
  }
  if ((retry_on_ & RetryPolicy::kGatewayError) && status >= 502 && status <= 504) {
    return true;
  }
  if ((retry_on_ & RetryPolicy::kRetriable4xx) && status == 409) {
    return true;
  }
  if (retry_on_ & RetryPolicy::kRetriableStatusCodes) {
    return std::find(retriable_status_codes_.begin(), retriable_status_codes_.end(), status) !=
           retriable_status_codes_.end();
  }
  return false;
}

bool RetryState::wouldRetryFromFailure(AttemptFailure failure, bool request_sent) const {
  if (failure == AttemptFailure::Overflow) {
    return false;  // Envoy never retries an overflow
  }
  if ((retry_on_ & RetryPolicy::kResetBeforeRequest) && !request_sent) {
    return true;
  }
  // Envoy counts an upstream reset as a "5xx" (it becomes one).
  if (retry_on_ & (RetryPolicy::k5xx | RetryPolicy::kGatewayError | RetryPolicy::kReset)) {
    return true;
  }
  // refused-stream needs HTTP/2 (a REFUSED_STREAM reset); over HTTP/1 it never matches.
  if ((retry_on_ & RetryPolicy::kRefusedStream) && failure == AttemptFailure::RefusedStream) {
    return true;
  }
  return (retry_on_ & RetryPolicy::kConnectFailure) && failure == AttemptFailure::ConnectFailure;
}

RetryStatus RetryState::shouldRetry(bool would_retry) {
  Upstream::ClusterStats& stats = cluster_->stats();
  // A retry was running and its outcome is not retried: the retry succeeded (Envoy's reading,
  // whatever the status).
  if (retry_in_flight_ && !would_retry) {
    stats.upstream_rq_retry_success().inc();
  }
  releaseRetry();
  if (!would_retry) {
    return RetryStatus::No;
  }
  if (retries_remaining_ == 0) {
    stats.upstream_rq_retry_limit_exceeded().inc();
    return RetryStatus::NoRetryLimitExceeded;
  }
  retries_remaining_--;
  Upstream::ClusterResources& resources = cluster_->resources();
  if (resources.retries.load(std::memory_order_relaxed) >= cluster_->maxRetries()) {
    stats.upstream_rq_retry_overflow().inc();
    return RetryStatus::NoOverflow;
  }
  resources.retries.fetch_add(1, std::memory_order_relaxed);
  retry_in_flight_ = true;
  stats.upstream_rq_retry().inc();
  stats.upstream_rq_retry_backoff_exponential().inc();
  return RetryStatus::Yes;
}

}  // namespace Proxy::Router
