// End-to-end tests of the real `proxy` binary: retries against faulty upstreams (refused
// connections, a server that never answers, one that closes without a response or in the middle
// of one, one that answers 5xx, one that recovers after failing). Each test asserts the status,
// the flag in the access log, the stats and how many attempts the upstream saw; statuses, bodies
// and flags are Envoy 1.40's for the same configs. Back-offs and timeouts are configured short.
// The harness is proxy_integration_test_fixture.h.

#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

class RetryIntegrationTest : public ProxyIntegrationTest {
 protected:
  // An upstream named `name` whose first `failing` requests behave as if they carried
  // `failure` headers (x-fake-status: 503, x-fake-close: 1, ...).
  static FakeUpstreamPtr flakyUpstream(std::string name, uint64_t failing,
                                       std::vector<std::pair<std::string, std::string>> failure) {
    FakeUpstreamOptions options;
    options.name = std::move(name);
    options.first_requests = failing;
    options.first_requests_headers = std::move(failure);
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    EXPECT_TRUE(upstream.ok()) << upstream.status();
    return upstream.ok() ? std::move(*upstream) : nullptr;
  }

  // One virtual host (with `vhost_fields`), one route "/" to cluster `backend` on `ports`
  // (with `route_fields` in its route action); the stdout access log.
  static BootstrapSpec spec(const std::vector<uint32_t>& ports, const std::string& route_fields,
                            const std::string& vhost_fields = "",
                            const std::string& cluster_fields = "",
                            const std::string& lb_policy = "ROUND_ROBIN") {
    BootstrapSpec spec;
    spec.virtual_hosts = {absl::StrCat(
        "{name: services, domains: [\"*\"], ", vhost_fields,
        " routes: [{match: {prefix: \"/\"}, route: {cluster: backend", route_fields, "}}]}")};
    const std::string cluster = staticCluster("backend", ports, lb_policy);
    spec.clusters = {absl::StrCat("{", cluster_fields, cluster.substr(1))};
    spec.hcm_fields = {kStdoutAccessLog};
    return spec;
  }

  int64_t counterValue(const std::string& name) {
    absl::StatusOr<int64_t> value = proxy_->counter(name);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *value : -1;
  }

  absl::StatusOr<HttpResponse> post(std::string_view path, std::string body) {
    HttpRequest request;
    request.method = "POST";
    request.path = std::string(path);
    request.body = std::move(body);
    return httpRequest(port_, request);
  }
};

constexpr char kFastBackOff[] = "retry_back_off: {base_interval: 0.001s}";

TEST_F(RetryIntegrationTest, A5xxIsRetriedUntilTheUpstreamRecovers) {
  // The upstream answers its first two requests 503, then recovers; the route allows 3 retries.
  FakeUpstreamPtr flaky = flakyUpstream("flaky", 2, {{"x-fake-status", "503"}});
  startProxy(spec({flaky->port()}, absl::StrCat(", retry_policy: {retry_on: 5xx, num_retries: 3, ",
                                                kFastBackOff, "}")));

  absl::StatusOr<HttpResponse> response = get("/recovers");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "flaky");
  // Three attempts; no flag, since the last one succeeded.
  EXPECT_EQ(flaky->requestsReceived(), 3u);
  EXPECT_TRUE(waitForAccessLog("\"GET /recovers HTTP/1.1\" 200 - "));
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry"), 2);
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry_success"), 1);
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry_limit_exceeded"), 0);
}

TEST_F(RetryIntegrationTest, ExhaustedRetriesForwardTheLast5xxWithURX) {
  // The virtual host's policy applies (the route has none): 2 retries, default back-off. The
  // upstream answers 503 to its first three requests.
  FakeUpstreamPtr failing = flakyUpstream("failing", 3, {{"x-fake-status", "503"}});
  startProxy(
      spec({failing->port()}, "", "retry_policy: {retry_on: gateway-error, num_retries: 2},"));

  absl::StatusOr<HttpResponse> response = get("/fails");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_EQ(response->header("x-upstream"), "failing");  // the upstream's own response
  EXPECT_EQ(failing->requestsReceived(), 3u);
  // Envoy's flag URX: upstream retry limit exceeded.
  EXPECT_TRUE(waitForAccessLog("\"GET /fails HTTP/1.1\" 503 URX "));
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry"), 2);
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry_limit_exceeded"), 1);

  // A 404 is not a gateway error: one attempt.
  absl::StatusOr<HttpResponse> not_found =
      get("/missing", "example.com", {{"x-fake-status", "404"}});
  ASSERT_TRUE(not_found.ok()) << not_found.status();
  EXPECT_EQ(not_found->status, 404u);
  EXPECT_EQ(failing->requestsReceived(), 4u);
}

TEST_F(RetryIntegrationTest, RefusedConnectionsAreRetriedThenAnswered503WithURXAndUF) {
  RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0u);
  startProxy(spec({refusing.port()},
                  absl::StrCat(", retry_policy: {retry_on: connect-failure, num_retries: 2, ",
                               kFastBackOff, "}")));

  absl::StatusOr<HttpResponse> response = get("/down");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  // Envoy's body says the request was retried.
  EXPECT_EQ(response->body,
            "upstream connect error or disconnect/reset before headers. retried and the latest "
            "reset reason: remote connection failure");
  EXPECT_TRUE(waitForAccessLog("\"GET /down HTTP/1.1\" 503 URX,UF "));
  EXPECT_EQ(counterValue("cluster.backend.upstream_cx_connect_fail"), 3);
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry"), 2);
}

TEST_F(RetryIntegrationTest, PerTryTimeoutRetriesAHungAttempt) {
  // The upstream holds its first request for a minute, then answers at once.
  FakeUpstreamPtr hangs_once = flakyUpstream("hangs-once", 1, {{"x-fake-delay-ms", "60000"}});
  startProxy(spec({hangs_once->port()},
                  absl::StrCat(", timeout: 5s, retry_policy: {retry_on: 5xx, num_retries: 1, "
                               "per_try_timeout: 0.2s, ",
                               kFastBackOff, "}")));

  absl::StatusOr<HttpResponse> recovered = get("/hangs-once");
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->status, 200u);
  EXPECT_EQ(hangs_once->requestsReceived(), 2u);
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_per_try_timeout"), 1);

  // Every attempt hangs: each gets 200 ms, then Envoy's 504 with URX,UT.
  absl::StatusOr<HttpResponse> hung = get("/hangs", "example.com", {{"x-fake-delay-ms", "60000"}});
  ASSERT_TRUE(hung.ok()) << hung.status();
  EXPECT_EQ(hung->status, 504u);
  EXPECT_EQ(hung->body, "upstream request timeout");
  EXPECT_EQ(hangs_once->requestsReceived(), 4u);
  EXPECT_TRUE(waitForAccessLog("\"GET /hangs HTTP/1.1\" 504 URX,UT "));
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_per_try_timeout"), 3);
}

TEST_F(RetryIntegrationTest, ResetsAreRetriedButNotOnceTheResponseStarted) {
  // The upstream hangs up without answering its first request.
  FakeUpstreamPtr closes_once = flakyUpstream("closes-once", 1, {{"x-fake-close", "1"}});
  startProxy(
      spec({closes_once->port()},
           absl::StrCat(", retry_policy: {retry_on: reset, num_retries: 1, ", kFastBackOff, "}")));

  absl::StatusOr<HttpResponse> recovered = get("/closes-once");
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->status, 200u);
  EXPECT_EQ(closes_once->requestsReceived(), 2u);

  // Both attempts closed: Envoy's body and URX,UC.
  absl::StatusOr<HttpResponse> closed = get("/closes", "example.com", {{"x-fake-close", "1"}});
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->status, 503u);
  EXPECT_EQ(closed->body,
            "upstream connect error or disconnect/reset before headers. retried and the latest "
            "reset reason: connection termination");
  EXPECT_EQ(closes_once->requestsReceived(), 4u);
  EXPECT_TRUE(waitForAccessLog("\"GET /closes HTTP/1.1\" 503 URX,UC "));

  // A response cut in the middle was already forwarded: no retry, the client's connection is
  // cut too.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest cut;
  cut.path = "/cut";
  cut.headers = {{"x-fake-response-bytes", "100"}, {"x-fake-close-after-bytes", "10"}};
  ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(cut)).ok());
  EXPECT_TRUE((*client)->waitForClose(5s));
  EXPECT_EQ(closes_once->requestsReceived(), 5u);
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry"), 2);
}

TEST_F(RetryIntegrationTest, PreviousHostsSendsTheRetryElsewhere) {
  // One host always answers 503, the other 200; RANDOM picks either. With previous_hosts (and
  // up to 20 re-picks) a retry never lands on the host that just failed: every request ends
  // 200, each after at most one retry.
  FakeUpstreamPtr bad = flakyUpstream("bad", 1000, {{"x-fake-status", "503"}});
  FakeUpstreamPtr good = flakyUpstream("good", 0, {});
  startProxy(spec({bad->port(), good->port()},
                  absl::StrCat(", retry_policy: {retry_on: 5xx, num_retries: 1, ", kFastBackOff,
                               ", host_selection_retry_max_attempts: 20, retry_host_predicate: "
                               "[{name: envoy.retry_host_predicates.previous_hosts, typed_config: "
                               "{\"@type\": type.googleapis.com/"
                               "envoy.extensions.retry.host.previous_hosts.v3."
                               "PreviousHostsPredicate}}]}"),
                  "", "", "RANDOM"));

  constexpr int kRequests = 12;
  for (int i = 0; i < kRequests; i++) {
    absl::StatusOr<HttpResponse> response = get(absl::StrCat("/spread/", i));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u) << "request " << i;
  }
  EXPECT_EQ(good->requestsReceived(), static_cast<uint64_t>(kRequests));
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry"),
            static_cast<int64_t>(bad->requestsReceived()));
}

TEST_F(RetryIntegrationTest, TheRetryBudgetOverflowsWithUO) {
  // The cluster allows no retry in flight (circuit_breakers max_retries: 0).
  FakeUpstreamPtr failing = flakyUpstream("failing", 100, {{"x-fake-status", "503"}});
  startProxy(spec({failing->port()}, ", retry_policy: {retry_on: 5xx, num_retries: 3}", "",
                  "circuit_breakers: {thresholds: [{max_retries: 0}]}, "));

  absl::StatusOr<HttpResponse> response = get("/budget");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_EQ(failing->requestsReceived(), 1u);
  EXPECT_TRUE(waitForAccessLog("\"GET /budget HTTP/1.1\" 503 UO "));
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry_overflow"), 1);
  EXPECT_EQ(counterValue("cluster.backend.upstream_rq_retry"), 0);
}

TEST_F(RetryIntegrationTest, TheBodyIsReplayedUpToTheBufferLimit) {
  // The listener's buffer limit is 4 KiB; the upstream fails its first three requests.
  FakeUpstreamPtr flaky = flakyUpstream("flaky", 3, {{"x-fake-status", "503"}});
  BootstrapSpec config =
      spec({flaky->port()},
           absl::StrCat(", retry_policy: {retry_on: 5xx, num_retries: 2, ", kFastBackOff, "}"));
  config.listener_fields = {"per_connection_buffer_limit_bytes: 4096"};
  startProxy(config);

  // 10000 bytes do not fit: the body goes to the one attempt as it streams, retries are given
  // up (retry_or_shadow_abandoned) and the attempt's 503 is the answer, with no flag.
  const std::string big(10000, 'b');
  absl::StatusOr<HttpResponse> abandoned = post("/big", big);
  ASSERT_TRUE(abandoned.ok()) << abandoned.status();
  EXPECT_EQ(abandoned->status, 503u);
  EXPECT_EQ(abandoned->header("x-request-body-bytes"), "10000");
  EXPECT_EQ(flaky->requestsReceived(), 1u);
  EXPECT_EQ(counterValue("cluster.backend.retry_or_shadow_abandoned"), 1);
  EXPECT_TRUE(waitForAccessLog("\"POST /big HTTP/1.1\" 503 - "));

  // 3000 bytes fit: each retry gets the whole body again (two more 503s, then a 200).
  const std::string small(3000, 'a');
  absl::StatusOr<HttpResponse> replayed = post("/small", small);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  EXPECT_EQ(replayed->status, 200u);
  EXPECT_EQ(replayed->header("x-request-body-bytes"), "3000");
  EXPECT_EQ(flaky->requestsReceived(), 4u);
}

TEST_F(RetryIntegrationTest, RetryHeadersAreHonouredOnlyFromInternalClients) {
  FakeUpstreamPtr failing = flakyUpstream("failing", 100, {{"x-fake-status", "503"}});
  const std::vector<std::pair<std::string, std::string>> ask = {{"x-envoy-retry-on", "5xx"},
                                                                {"x-envoy-max-retries", "2"}};
  // An external client (use_remote_address, no internal ranges): the headers are stripped.
  BootstrapSpec external =
      spec({failing->port()}, absl::StrCat(", retry_policy: {", kFastBackOff, "}"));
  external.hcm_fields.push_back("use_remote_address: true");
  startProxy(external);
  absl::StatusOr<HttpResponse> response = get("/external", "example.com", ask);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_EQ(failing->requestsReceived(), 1u);
  proxy_.reset();

  // 127.0.0.0/8 internal: the request's own retry policy applies, 3 attempts.
  BootstrapSpec internal = external;
  internal.hcm_fields.push_back(
      "internal_address_config: {cidr_ranges: [{address_prefix: 127.0.0.0, prefix_len: 8}]}");
  startProxy(internal);
  response = get("/internal", "example.com", ask);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_EQ(failing->requestsReceived(), 4u);
  EXPECT_TRUE(waitForAccessLog("\"GET /internal HTTP/1.1\" 503 URX "));
}

}  // namespace
}  // namespace Proxy::Integration
