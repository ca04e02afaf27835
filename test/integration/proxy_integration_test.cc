// End-to-end tests of the real `proxy` binary: routing (path, host, header, regex, weighted
// clusters, load balancing, rewrites, forwarded headers, direct responses, tcp_proxy).
// The harness (bootstraps, the fixture) is proxy_integration_test_fixture.h.

#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

// ---- Routing ---------------------------------------------------------------------------------

TEST_F(ProxyIntegrationTest, RoutesByPathPrefixToTwoUpstreams) {
  startProxy(serviceRoutes());

  // /service/1 goes to upstream-1, which names itself and the path it saw.
  absl::StatusOr<HttpResponse> one = get("/service/1/hello");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->status, 200u);
  EXPECT_EQ(one->header("x-upstream"), "upstream-1");
  EXPECT_EQ(one->body, "hello from upstream-1\npath: /service/1/hello\n");

  // /service/2 goes to upstream-2.
  absl::StatusOr<HttpResponse> two = get("/service/2");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->status, 200u);
  EXPECT_EQ(two->body, "hello from upstream-2\npath: /service/2\n");

  // Envoy's stats count both: one request per cluster, two 2xx downstream.
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.service1.upstream_rq_total", 1));
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.service2.upstream_rq_total", 1));
  EXPECT_TRUE(proxy_->waitForCounterGe(statName("downstream_rq_2xx"), 2));
}

TEST_F(ProxyIntegrationTest, RoutesByHostToVirtualHosts) {
  // Virtual hosts by :authority: an exact domain, a "*.suffix" wildcard, and a catch-all that
  // answers by itself.
  BootstrapSpec spec = serviceRoutes();
  spec.virtual_hosts = {
      R"({name: one, domains: ["one.example.com"], routes: [{match: {prefix: "/"}, route: {cluster: service1}}]})",
      R"({name: two, domains: ["*.two.example.com"], routes: [{match: {prefix: "/"}, route: {cluster: service2}}]})",
      R"({name: other, domains: ["*"], routes: [{match: {prefix: "/"}, direct_response: {status: 418}}]})"};
  startProxy(spec);

  // The exact domain.
  absl::StatusOr<HttpResponse> exact = get("/", /*host=*/"one.example.com");
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->header("x-upstream"), "upstream-1");

  // The suffix wildcard; the upstream sees the original Host.
  absl::StatusOr<HttpResponse> suffix = get("/", /*host=*/"api.two.example.com");
  ASSERT_TRUE(suffix.ok()) << suffix.status();
  EXPECT_EQ(suffix->header("x-upstream"), "upstream-2");
  EXPECT_EQ(suffix->header("x-echo-authority"), "api.two.example.com");

  // Anything else falls to "*".
  absl::StatusOr<HttpResponse> other = get("/", /*host=*/"elsewhere.example.org");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->status, 418u);
}

TEST_F(ProxyIntegrationTest, RoutesByHeader) {
  // One prefix, two routes: "x-variant: b" goes to service2, everything else to service1.
  BootstrapSpec spec = serviceRoutes();
  spec.virtual_hosts = {R"({name: services, domains: ["*"], routes: [
      {match: {prefix: "/", headers: [{name: x-variant, string_match: {exact: b}}]}, route: {cluster: service2}},
      {match: {prefix: "/"}, route: {cluster: service1}}]})"};
  startProxy(spec);

  absl::StatusOr<HttpResponse> with_b = get("/x", "example.com", {{"x-variant", "b"}});
  ASSERT_TRUE(with_b.ok()) << with_b.status();
  EXPECT_EQ(with_b->header("x-upstream"), "upstream-2");

  absl::StatusOr<HttpResponse> with_a = get("/x", "example.com", {{"x-variant", "a"}});
  ASSERT_TRUE(with_a.ok()) << with_a.status();
  EXPECT_EQ(with_a->header("x-upstream"), "upstream-1");

  absl::StatusOr<HttpResponse> without = get("/x");
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(without->header("x-upstream"), "upstream-1");
}

TEST_F(ProxyIntegrationTest, RoutesBySafeRegexToWeightedClusters) {
  // A RE2 path match whose action splits traffic by weight; weight 0 for service1 makes the
  // split deterministic: everything goes to service2.
  BootstrapSpec spec = serviceRoutes();
  spec.virtual_hosts = {R"({name: services, domains: ["*"], routes: [
      {match: {safe_regex: {regex: "^/v[0-9]+/items$"}},
       route: {weighted_clusters: {clusters: [{name: service1, weight: 0}, {name: service2, weight: 100}]}}}]})"};
  startProxy(spec);

  for (int i = 0; i < 5; i++) {
    absl::StatusOr<HttpResponse> response = get(absl::StrCat("/v", i, "/items"));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->header("x-upstream"), "upstream-2");
  }
  // The regex is anchored: a longer path does not match.
  absl::StatusOr<HttpResponse> longer = get("/v1/items/7");
  ASSERT_TRUE(longer.ok()) << longer.status();
  EXPECT_EQ(longer->status, 404u);
  EXPECT_EQ(upstream1_->requestsReceived(), 0u);
}

TEST_F(ProxyIntegrationTest, RoundRobinSpreadsRequestsOverEndpoints) {
  // One cluster with both upstreams as endpoints.
  BootstrapSpec spec = serviceRoutes();
  spec.virtual_hosts = {
      R"({name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: both}}]})"};
  spec.clusters = {staticCluster("both", {upstream1_->port(), upstream2_->port()})};
  startProxy(spec);

  // Ten requests alternate between the two endpoints: each serves some (exactly five with one
  // worker, but that is the LB's business, not this test's).
  for (int i = 0; i < 10; i++) {
    absl::StatusOr<HttpResponse> response = get("/rr");
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200u);
  }
  EXPECT_GT(upstream1_->requestsReceived(), 0u);
  EXPECT_GT(upstream2_->requestsReceived(), 0u);
  EXPECT_EQ(upstream1_->requestsReceived() + upstream2_->requestsReceived(), 10u);
}

TEST_F(ProxyIntegrationTest, RewritesPathAndHostAndAddsHeaders) {
  // prefix_rewrite and host_rewrite_literal on the route; a request header added on the way
  // up, a response header added on the way down and one removed.
  BootstrapSpec spec = serviceRoutes();
  spec.virtual_hosts = {R"({name: services, domains: ["*"], routes: [
      {match: {prefix: "/old/"},
       route: {cluster: service1, prefix_rewrite: "/new/", host_rewrite_literal: internal.example},
       request_headers_to_add: [{header: {key: x-added, value: by-route}}],
       response_headers_to_add: [{header: {key: x-route, value: old-to-new}}],
       response_headers_to_remove: [x-upstream]}]})"};
  startProxy(spec);

  absl::StatusOr<HttpResponse> response = get("/old/thing?q=1", /*host=*/"public.example");
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200u);
  // What upstream-1 received.
  EXPECT_EQ(response->header("x-echo-path"), "/new/thing?q=1");
  EXPECT_EQ(response->header("x-echo-authority"), "internal.example");
  EXPECT_EQ(response->header("x-echo-x-added"), "by-route");
  // What the proxy changed in the response.
  EXPECT_EQ(response->header("x-route"), "old-to-new");
  EXPECT_FALSE(response->hasHeader("x-upstream"));
  EXPECT_EQ(response->body, "hello from upstream-1\npath: /new/thing?q=1\n");
}

TEST_F(ProxyIntegrationTest, AddsForwardedForAndRequestId) {
  // With use_remote_address the proxy is the edge: it appends the peer to x-forwarded-for, says
  // where the request came from, and generates an x-request-id (Envoy's defaults otherwise).
  BootstrapSpec spec = serviceRoutes();
  spec.hcm_fields.push_back("use_remote_address: true");
  startProxy(spec);

  absl::StatusOr<HttpResponse> response = get("/service/1");
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200u);
  // A loopback peer stands for this machine: like Envoy, the proxy appends the machine's own
  // first non-loopback address, a single one here (conn_manager_utility_test pins the value;
  // the conformance case forwarding/use_remote_address_appends_xff compares it with Envoy's).
  const std::string xff = response->header("x-echo-x-forwarded-for");
  EXPECT_FALSE(xff.empty());
  EXPECT_EQ(xff.find(','), std::string::npos) << xff;
  EXPECT_EQ(response->header("x-echo-x-envoy-external-address"), "127.0.0.1");
  // A UUID: 36 characters, 8-4-4-4-12.
  const std::string request_id = response->header("x-echo-x-request-id");
  EXPECT_EQ(request_id.size(), 36u) << request_id;

  // A second request gets a different id.
  absl::StatusOr<HttpResponse> again = get("/service/1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->header("x-echo-x-request-id"), request_id);
}

TEST_F(ProxyIntegrationTest, DirectResponseAndRedirectRoutes) {
  BootstrapSpec spec = serviceRoutes();
  spec.virtual_hosts = {R"({name: local, domains: ["*"], routes: [
      {match: {path: "/ping"}, direct_response: {status: 200, body: {inline_string: "pong\n"}}},
      {match: {prefix: "/moved"}, redirect: {host_redirect: example.org, path_redirect: "/new"}}]})"};
  startProxy(spec);

  // The proxy answers /ping itself; no upstream is involved.
  absl::StatusOr<HttpResponse> ping = get("/ping");
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->status, 200u);
  EXPECT_EQ(ping->body, "pong\n");

  // /moved is a 301 (Envoy's default redirect code) to the new host and path.
  absl::StatusOr<HttpResponse> moved = get("/moved");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->status, 301u);
  EXPECT_EQ(moved->header("location"), "http://example.org/new");

  EXPECT_EQ(upstream1_->connectionsAccepted() + upstream2_->connectionsAccepted(), 0u);
}

TEST_F(ProxyIntegrationTest, TcpProxyForwardsBytes) {
  // An L4 listener: tcp_proxy to service1, whose HTTP server answers through the tunnel.
  BootstrapSpec spec = serviceRoutes();
  spec.network_filter =
      R"({name: envoy.filters.network.tcp_proxy, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: service1}})";
  startProxy(spec);

  absl::StatusOr<HttpResponse> response = get("/through/tcp", /*host=*/"tunnel.example");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->header("x-upstream"), "upstream-1");
  // Nothing was rewritten: the bytes went through untouched.
  EXPECT_EQ(response->header("x-echo-authority"), "tunnel.example");
  EXPECT_FALSE(response->hasHeader("x-echo-x-request-id"));
}

}  // namespace
}  // namespace Proxy::Integration
