#pragma once

// The retry state of one request (Envoy's source/common/router/retry_state_impl.*): the route's
// retry policy merged with the request's x-envoy-retry-on / x-envoy-max-retries /
// x-envoy-retriable-status-codes headers, the decisions "would this response / this reset be
// retried", the retry budget (num_retries, and the cluster's max_retries circuit breaker) and
// the jittered exponential back-off. It owns no timer: the router filter arms its own with
// nextBackOff(). One per request, on the request's worker; the circuit breaker count is
// cluster-wide (atomics).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "proxy/http/header_map.h"
#include "proxy/router/router.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Router {

// The RetryPolicy::RetryOn bits of a comma-separated retry_on string (x-envoy-retry-on or the
// config's); unknown names are ignored, as Envoy does (it logs a warning).
uint32_t parseRetryOn(std::string_view value);

// Envoy's JitteredExponentialBackOffStrategy: the n-th back-off is uniform in
// [0, min(base * 2^(n-1), max)), "full jitter".
class JitteredBackOff {
 public:
  // `random` returns uniformly distributed 64-bit values.
  JitteredBackOff(uint64_t base_ms, uint64_t max_ms, std::function<uint64_t()> random);
  uint64_t nextBackOffMs();

 private:
  const uint64_t base_ms_;
  const uint64_t max_ms_;
  uint64_t next_ms_;
  std::function<uint64_t()> random_;
};

// How an attempt failed without a response.
enum class AttemptFailure {
  ConnectFailure,  // the pool could not connect (refused, connect timeout)
  Overflow,        // a circuit breaker refused the attempt: never retried
  Reset,           // the upstream connection closed or was reset before the response
  RefusedStream,   // HTTP/2: the upstream refused the stream (never processed it)
  PerTryTimeout,   // per_try_timeout: the attempt was abandoned
};

enum class RetryStatus {
  No,                    // the outcome is not one the policy retries
  NoOverflow,            // it is, but the cluster's max_retries are all in flight (flag UO)
  NoRetryLimitExceeded,  // it is, but num_retries are used up (flag URX)
  Yes,                   // retry after nextBackOff()
};

class RetryState {
 public:
  // Null when neither the policy nor the request's headers ask for retries. Reads the retry
  // headers (the caller removes them before the request goes upstream).
  static std::unique_ptr<RetryState> create(const RetryPolicy& policy,
                                            const Http::RequestHeaderMap& headers,
                                            Upstream::ClusterInfoConstSharedPtr cluster,
                                            std::function<uint64_t()> random);
  // Gives back a circuit breaker slot still held by the last retry.
  ~RetryState();

  // Whether the policy retries this response / this failure (before any budget check).
  bool wouldRetryFromHeaders(uint32_t status, const Http::ResponseHeaderMap& headers) const;
  bool wouldRetryFromFailure(AttemptFailure failure, bool request_sent) const;

  // Decides with the budget, counting Envoy's stats (upstream_rq_retry, _retry_success,
  // _retry_overflow, _retry_limit_exceeded, _retry_backoff_exponential). Call once per attempt
  // outcome, with `would_retry` from the functions above.
  RetryStatus shouldRetry(bool would_retry);
  // The wait before the retry shouldRetry() just granted.
  std::chrono::milliseconds nextBackOff() {
    return std::chrono::milliseconds(backoff_.nextBackOffMs());
  }

  // retry_host_predicate previous_hosts, and how many times a host is picked again for a retry
  // (host_selection_retry_max_attempts).
  bool avoidPreviousHosts() const { return avoid_previous_hosts_; }
  uint32_t hostSelectionMaxAttempts() const { return host_selection_max_attempts_; }
  std::chrono::milliseconds perTryTimeout() const { return per_try_timeout_; }
  uint32_t retriesRemaining() const { return retries_remaining_; }

 private:
  RetryState(const RetryPolicy& policy, Upstream::ClusterInfoConstSharedPtr cluster,
             std::function<uint64_t()> random);
  void releaseRetry();

  const Upstream::ClusterInfoConstSharedPtr cluster_;
  uint32_t retry_on_;
  uint32_t retries_remaining_;
  std::vector<uint32_t> retriable_status_codes_;
  bool avoid_previous_hosts_;
  uint32_t host_selection_max_attempts_;
  std::chrono::milliseconds per_try_timeout_;
  JitteredBackOff backoff_;
  // A retry was granted and holds a max_retries slot until the next decision (or the end).
  bool retry_in_flight_ = false;
};

using RetryStatePtr = std::unique_ptr<RetryState>;

}  // namespace Proxy::Router
