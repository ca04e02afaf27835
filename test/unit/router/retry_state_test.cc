// Unit tests of the retry state (proxy/router/retry_state.*): Envoy's jittered exponential
// back-off, which outcomes each retry_on condition retries, the request headers that widen the
// policy, and the budget (num_retries, the cluster's max_retries) with its stats.

#include "proxy/router/retry_state.h"

#include "gtest/gtest.h"
#include "proxy/config/message_util.h"
#include "proxy/router/config_utility.h"
#include "proxy/upstream/cluster_info_impl.h"

namespace Proxy::Router {
namespace {

TEST(JitteredBackOffTest, DoublesFromTheBaseUpToTheMaxWithFullJitter) {
  // A "random" source that always returns 249: each back-off is 249 mod the current ceiling,
  // so the ceilings show: 25, 50, 100, 200, then capped at 250.
  JitteredBackOff backoff(/*base_ms=*/25, /*max_ms=*/250, [] { return uint64_t{249}; });
  EXPECT_EQ(backoff.nextBackOffMs(), 24u);   // 249 % 25
  EXPECT_EQ(backoff.nextBackOffMs(), 49u);   // 249 % 50
  EXPECT_EQ(backoff.nextBackOffMs(), 49u);   // 249 % 100
  EXPECT_EQ(backoff.nextBackOffMs(), 49u);   // 249 % 200
  EXPECT_EQ(backoff.nextBackOffMs(), 249u);  // 249 % 250
  EXPECT_EQ(backoff.nextBackOffMs(), 249u);  // still 250: the cap

  // Whatever the random value, a back-off stays below its ceiling.
  uint64_t value = 0;
  JitteredBackOff sweep(/*base_ms=*/25, /*max_ms=*/250, [&] { return value += 7919; });
  const uint64_t ceilings[] = {25, 50, 100, 200, 250, 250, 250};
  for (uint64_t ceiling : ceilings) {
    EXPECT_LT(sweep.nextBackOffMs(), ceiling);
  }
}

TEST(JitteredBackOffTest, PolicyDefaultsAreEnvoys) {
  // No retry_back_off: 25 ms base, 250 ms max. A base alone: max is 10 times it.
  envoy::config::route::v3::RetryPolicy proto;
  ASSERT_TRUE(::Proxy::Config::loadFromYaml("retry_on: 5xx", proto).ok());
  RetryPolicy policy = parseRetryPolicy(proto);
  EXPECT_EQ(policy.num_retries, 1u);
  EXPECT_EQ(policy.base_interval, std::chrono::milliseconds(25));
  EXPECT_EQ(policy.max_interval, std::chrono::milliseconds(250));
  EXPECT_FALSE(policy.avoid_previous_hosts);
  EXPECT_EQ(policy.host_selection_max_attempts, 1u);

  ASSERT_TRUE(::Proxy::Config::loadFromYaml(R"(
retry_on: "5xx, reset ,bogus"
retry_back_off: {base_interval: 0.1s}
retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]
host_selection_retry_max_attempts: 5
)",
                                            proto)
                  .ok());
  policy = parseRetryPolicy(proto);
  // Unknown names are ignored, as Envoy does; spaces around names too.
  EXPECT_EQ(policy.retry_on, RetryPolicy::k5xx | RetryPolicy::kReset);
  EXPECT_EQ(policy.max_interval, std::chrono::milliseconds(1000));
  EXPECT_TRUE(policy.avoid_previous_hosts);
  EXPECT_EQ(policy.host_selection_max_attempts, 5u);
}

class RetryStateTest : public testing::Test {
 protected:
  // A cluster whose circuit breakers allow `max_retries` retries in flight.
  Upstream::ClusterInfoConstSharedPtr cluster(uint32_t max_retries) {
    envoy::config::cluster::v3::Cluster proto;
    proto.set_name("backend");
    proto.mutable_connect_timeout()->set_seconds(1);
    proto.mutable_circuit_breakers()->add_thresholds()->mutable_max_retries()->set_value(
        max_retries);
    absl::StatusOr<Upstream::ClusterInfoImplConstSharedPtr> info =
        Upstream::ClusterInfoImpl::create(proto, store_);
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }

  RetryStatePtr create(uint32_t retry_on, uint32_t num_retries,
                       const Upstream::ClusterInfoConstSharedPtr& info,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
    RetryPolicy policy;
    policy.retry_on = retry_on;
    policy.num_retries = num_retries;
    policy.retriable_status_codes = {418};
    Http::RequestHeaderMap request;
    for (const auto& [name, value] : headers) {
      request.addCopy(name, value);
    }
    return RetryState::create(policy, request, info, [] { return uint64_t{0}; });
  }

  static Http::ResponseHeaderMap response(uint32_t status) {
    Http::ResponseHeaderMap headers;
    headers.setStatus(status);
    return headers;
  }

  Stats::Store store_;
};

TEST_F(RetryStateTest, WhichOutcomesEachConditionRetries) {
  auto info = cluster(/*max_retries=*/3);
  // No condition, no state.
  EXPECT_EQ(create(0, 1, info), nullptr);

  // 5xx: any 5xx response, and every failure but an overflow (a reset becomes a 5xx).
  RetryStatePtr s5xx = create(RetryPolicy::k5xx, 1, info);
  EXPECT_TRUE(s5xx->wouldRetryFromHeaders(500, response(500)));
  EXPECT_TRUE(s5xx->wouldRetryFromHeaders(503, response(503)));
  EXPECT_FALSE(s5xx->wouldRetryFromHeaders(404, response(404)));
  EXPECT_TRUE(s5xx->wouldRetryFromFailure(AttemptFailure::ConnectFailure, false));
  EXPECT_TRUE(s5xx->wouldRetryFromFailure(AttemptFailure::Reset, true));
  EXPECT_TRUE(s5xx->wouldRetryFromFailure(AttemptFailure::PerTryTimeout, true));
  EXPECT_FALSE(s5xx->wouldRetryFromFailure(AttemptFailure::Overflow, false));

  // gateway-error: 502, 503, 504 only.
  RetryStatePtr gateway = create(RetryPolicy::kGatewayError, 1, info);
  EXPECT_FALSE(gateway->wouldRetryFromHeaders(500, response(500)));
  EXPECT_TRUE(gateway->wouldRetryFromHeaders(502, response(502)));
  EXPECT_TRUE(gateway->wouldRetryFromHeaders(504, response(504)));

  // connect-failure: only a failed connection.
  RetryStatePtr connect = create(RetryPolicy::kConnectFailure, 1, info);
  EXPECT_TRUE(connect->wouldRetryFromFailure(AttemptFailure::ConnectFailure, false));
  EXPECT_FALSE(connect->wouldRetryFromFailure(AttemptFailure::Reset, true));
  EXPECT_FALSE(connect->wouldRetryFromHeaders(503, response(503)));

  // retriable-4xx is 409 only; retriable-status-codes the listed ones; refused-stream the
  // HTTP/2 refusal; reset-before-request what failed before the request went out.
  EXPECT_TRUE(
      create(RetryPolicy::kRetriable4xx, 1, info)->wouldRetryFromHeaders(409, response(409)));
  EXPECT_FALSE(
      create(RetryPolicy::kRetriable4xx, 1, info)->wouldRetryFromHeaders(404, response(404)));
  EXPECT_TRUE(create(RetryPolicy::kRetriableStatusCodes, 1, info)
                  ->wouldRetryFromHeaders(418, response(418)));
  EXPECT_TRUE(create(RetryPolicy::kRefusedStream, 1, info)
                  ->wouldRetryFromFailure(AttemptFailure::RefusedStream, true));
  EXPECT_FALSE(create(RetryPolicy::kRefusedStream, 1, info)
                   ->wouldRetryFromFailure(AttemptFailure::Reset, true));
  RetryStatePtr before = create(RetryPolicy::kResetBeforeRequest, 1, info);
  EXPECT_TRUE(before->wouldRetryFromFailure(AttemptFailure::Reset, /*request_sent=*/false));
  EXPECT_FALSE(before->wouldRetryFromFailure(AttemptFailure::Reset, /*request_sent=*/true));

  // A response an upstream Envoy rate limited is retried only under envoy-ratelimited.
  Http::ResponseHeaderMap limited = response(503);
  limited.addCopy("x-envoy-ratelimited", "true");
  EXPECT_FALSE(s5xx->wouldRetryFromHeaders(503, limited));
  EXPECT_TRUE(create(RetryPolicy::kEnvoyRateLimited, 1, info)->wouldRetryFromHeaders(503, limited));
}

TEST_F(RetryStateTest, RequestHeadersWidenThePolicy) {
  auto info = cluster(/*max_retries=*/3);
  // No policy, but the (internal) request asks: x-envoy-retry-on and x-envoy-max-retries.
  RetryStatePtr state = create(
      0, 1, info, {{"x-envoy-retry-on", "5xx,connect-failure"}, {"x-envoy-max-retries", "4"}});
  ASSERT_NE(state, nullptr);
  EXPECT_TRUE(state->wouldRetryFromHeaders(503, response(503)));
  EXPECT_EQ(state->retriesRemaining(), 4u);
  // x-envoy-retriable-status-codes adds codes.
  state = create(0, 1, info,
                 {{"x-envoy-retry-on", "retriable-status-codes"},
                  {"x-envoy-retriable-status-codes", "429, 451"}});
  EXPECT_TRUE(state->wouldRetryFromHeaders(451, response(451)));
  EXPECT_TRUE(state->wouldRetryFromHeaders(418, response(418)));  // the policy's own
  EXPECT_FALSE(state->wouldRetryFromHeaders(404, response(404)));
}

TEST_F(RetryStateTest, BudgetAndStats) {
  auto info = cluster(/*max_retries=*/1);
  Upstream::ClusterStats& stats = info->stats();

  // Two retries allowed by the policy: 503, 503, then the third outcome is not retried (200).
  RetryStatePtr state = create(RetryPolicy::k5xx, 2, info);
  EXPECT_EQ(state->shouldRetry(true), RetryStatus::Yes);
  EXPECT_EQ(info->resources().retries.load(), 1u);  // held while the retry runs
  // A second request's retry finds the cluster's only max_retries slot taken.
  RetryStatePtr other = create(RetryPolicy::k5xx, 2, info);
  EXPECT_EQ(other->shouldRetry(true), RetryStatus::NoOverflow);
  EXPECT_EQ(stats.upstream_rq_retry_overflow().value(), 1u);
  // The first retry's outcome is retried again: the slot is released and taken anew.
  EXPECT_EQ(state->shouldRetry(true), RetryStatus::Yes);
  EXPECT_EQ(info->resources().retries.load(), 1u);
  EXPECT_EQ(state->shouldRetry(false), RetryStatus::No);
  EXPECT_EQ(info->resources().retries.load(), 0u);
  EXPECT_EQ(stats.upstream_rq_retry().value(), 2u);
  EXPECT_EQ(stats.upstream_rq_retry_success().value(), 1u);

  // num_retries used up: the limit, counted.
  RetryStatePtr once = create(RetryPolicy::k5xx, 1, info);
  EXPECT_EQ(once->shouldRetry(true), RetryStatus::Yes);
  EXPECT_EQ(once->shouldRetry(true), RetryStatus::NoRetryLimitExceeded);
  EXPECT_EQ(stats.upstream_rq_retry_limit_exceeded().value(), 1u);
  EXPECT_EQ(info->resources().retries.load(), 0u);

  // A state destroyed while its retry runs gives the slot back.
  RetryStatePtr abandoned = create(RetryPolicy::k5xx, 1, info);
  EXPECT_EQ(abandoned->shouldRetry(true), RetryStatus::Yes);
  EXPECT_EQ(info->resources().retries.load(), 1u);
  abandoned.reset();
  EXPECT_EQ(info->resources().retries.load(), 0u);
}

}  // namespace
}  // namespace Proxy::Router
