// End-to-end tests of the real `proxy` binary: error paths (404, 503, 504, 400, 431).
// The harness (bootstraps, the fixture) is proxy_integration_test_fixture.h.

#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

// ---- Error paths -------------------------------------------------------------------------------

TEST_F(ProxyIntegrationTest, NoRouteIs404) {
  startProxy(serviceRoutes());

  absl::StatusOr<HttpResponse> response = get("/nowhere");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404u);
  EXPECT_TRUE(proxy_->waitForCounterGe(statName("downstream_rq_4xx"), 1));
  // Envoy's response flag NR: no route.
  EXPECT_TRUE(waitForAccessLog("\"GET /nowhere HTTP/1.1\" 404 NR "));
  EXPECT_EQ(upstream1_->connectionsAccepted() + upstream2_->connectionsAccepted(), 0u);
}

TEST_F(ProxyIntegrationTest, ConnectFailureIs503) {
  // The cluster's only endpoint refuses connections.
  RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0u);
  BootstrapSpec spec = serviceRoutes();
  spec.clusters.push_back(staticCluster("refused", {refusing.port()}));
  spec.virtual_hosts = {R"({name: services, domains: ["*"], routes: [
      {match: {prefix: "/"}, route: {cluster: refused}}]})"};
  startProxy(spec);

  absl::StatusOr<HttpResponse> response = get("/anything");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.refused.upstream_cx_connect_fail", 1));
  // Envoy's response flag UF: upstream connection failure.
  EXPECT_TRUE(waitForAccessLog("\"GET /anything HTTP/1.1\" 503 UF "));
  EXPECT_TRUE(proxy_->waitForCounterGe(statName("downstream_rq_5xx"), 1));

  // The proxy is fine afterwards.
  absl::StatusOr<HttpResponse> again = get("/anything");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, 503u);
}

TEST_F(ProxyIntegrationTest, UpstreamSlowerThanRouteTimeoutIs504) {
  // A 250 ms route timeout; upstream-1 is told to take 10 s.
  BootstrapSpec spec = serviceRoutes();
  spec.virtual_hosts = {R"({name: services, domains: ["*"], routes: [
      {match: {prefix: "/"}, route: {cluster: service1, timeout: 0.25s}}]})"};
  startProxy(spec);

  absl::StatusOr<HttpResponse> response =
      get("/slow", "example.com", {{"x-fake-delay-ms", "10000"}});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 504u);
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.service1.upstream_rq_timeout", 1));
  // Envoy's response flag UT: upstream request timeout.
  EXPECT_TRUE(waitForAccessLog("\"GET /slow HTTP/1.1\" 504 UT "));

  // A fast request on the same route still works.
  absl::StatusOr<HttpResponse> fast = get("/fast");
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_EQ(fast->status, 200u);
}

TEST_F(ProxyIntegrationTest, UpstreamClosingWithoutResponseIs503) {
  startProxy(serviceRoutes());

  // upstream-1 reads the request head and hangs up.
  absl::StatusOr<HttpResponse> response =
      get("/service/1/close", "example.com", {{"x-fake-close", "1"}});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  // Envoy's response flag UC: upstream connection termination.
  EXPECT_TRUE(waitForAccessLog("\"GET /service/1/close HTTP/1.1\" 503 UC "));
  expectServesGoodRequest();
}

TEST_F(ProxyIntegrationTest, MalformedRequestLineIs400) {
  startProxy(serviceRoutes());

  HttpResponse response = sendBadRequest("GET /a b HTTP/1.1\r\nhost: example.com\r\n\r\n");
  EXPECT_EQ(response.status, 400u);
  expectServesGoodRequest();
}

TEST_F(ProxyIntegrationTest, ContentLengthWithTransferEncodingIs400) {
  startProxy(serviceRoutes());

  // Both framings at once is the request-smuggling shape: refused, connection closed.
  HttpResponse response = sendBadRequest(
      "POST /service/1 HTTP/1.1\r\nhost: example.com\r\ncontent-length: 5\r\n"
      "transfer-encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(upstream1_->requestsReceived(), 0u);
  expectServesGoodRequest();
}

TEST_F(ProxyIntegrationTest, OversizedHeadersAre431) {
  startProxy(serviceRoutes());

  // One 70 KiB header: over the default max_request_headers_kb (60).
  HttpResponse big = sendBadRequest(absl::StrCat(
      "GET /service/1 HTTP/1.1\r\nhost: example.com\r\nx-big: ", std::string(70 * 1024, 'a'),
      "\r\n\r\n"));
  EXPECT_EQ(big.status, 431u);
  expectServesGoodRequest();

  // 101 small headers: over the default limit of 100.
  std::string many = "GET /service/1 HTTP/1.1\r\nhost: example.com\r\n";
  for (int i = 0; i < 101; i++) {
    absl::StrAppend(&many, "x-h", i, ": v\r\n");
  }
  many += "\r\n";
  HttpResponse too_many = sendBadRequest(many);
  EXPECT_EQ(too_many.status, 431u);
  EXPECT_EQ(upstream1_->requestsReceived(), 1u);  // only expectServesGoodRequest()'s
  expectServesGoodRequest();
}

}  // namespace
}  // namespace Proxy::Integration
