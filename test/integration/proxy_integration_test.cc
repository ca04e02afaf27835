// End-to-end tests of the real `proxy` binary: each test writes a bootstrap, starts the proxy
// as a child process (listeners and admin on 127.0.0.1:0), points it at FakeUpstreams running
// in this process, and talks to it with a blocking HttpClient. Nothing uses a fixed port and
// nothing sleeps to synchronise: every wait is a condition with a deadline.

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "test/integration/body_pattern.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"
#include "test/integration/refusing_port.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024 * 1024;

// Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default) and shadow
// memory counts towards RSS, so peak RSS says nothing about buffering there: the streaming
// tests still check every byte, but only assert the memory bound in normal builds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif
constexpr uint64_t kMaxRssGrowthKb = 64 * 1024;

// ---- Bootstrap builders --------------------------------------------------------------------
// Fragments are YAML flow mappings ({key: value, ...}), which do not depend on indentation, so
// a test reads as the config it needs and nothing else.

// A STATIC cluster whose endpoints are 127.0.0.1:<port> for each port.
std::string staticCluster(const std::string& name, const std::vector<uint32_t>& ports,
                          const std::string& lb_policy = "ROUND_ROBIN",
                          const std::string& connect_timeout = "1s") {
  std::vector<std::string> endpoints;
  for (uint32_t port : ports) {
    endpoints.push_back(absl::StrCat(
        "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ", port, "}}}}"));
  }
  return absl::StrCat("{name: ", name, ", type: STATIC, connect_timeout: ", connect_timeout,
                      ", lb_policy: ", lb_policy, ", load_assignment: {cluster_name: ", name,
                      ", endpoints: [{lb_endpoints: [", absl::StrJoin(endpoints, ", "), "]}]}}");
}

struct BootstrapSpec {
  // Flow mappings, one per virtual host of the inline route_config.
  std::vector<std::string> virtual_hosts;
  // Flow mappings, one per cluster.
  std::vector<std::string> clusters;
  // Extra "key: value" fields of the HttpConnectionManager.
  std::vector<std::string> hcm_fields;
  // When set, the listener's only filter is this network filter (a flow mapping) instead of
  // the HTTP connection manager.
  std::string network_filter;
};

constexpr char kStdoutAccessLog[] =
    R"(access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}}])";

constexpr char kListenerName[] = "ingress";
constexpr char kStatPrefix[] = "ingress_http";

std::string bootstrapYaml(const BootstrapSpec& spec) {
  std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
)";
  if (!spec.network_filter.empty()) {
    absl::StrAppend(&yaml, "      - ", spec.network_filter, "\n");
  } else {
    absl::StrAppend(&yaml, R"(      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: )",
                    kStatPrefix, "\n");
    for (const std::string& field : spec.hcm_fields) {
      absl::StrAppend(&yaml, "          ", field, "\n");
    }
    absl::StrAppend(&yaml, "          route_config:\n            name: test_routes\n",
                    "            virtual_hosts:\n");
    for (const std::string& vhost : spec.virtual_hosts) {
      absl::StrAppend(&yaml, "            - ", vhost, "\n");
    }
    absl::StrAppend(&yaml, R"(          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)");
  }
  absl::StrAppend(&yaml, "  clusters:\n");
  for (const std::string& cluster : spec.clusters) {
    absl::StrAppend(&yaml, "  - ", cluster, "\n");
  }
  return yaml;
}

class ProxyIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    // Two upstreams that answer "hello from upstream-N" and echo what they received.
    upstream1_ = makeUpstream("upstream-1");
    upstream2_ = makeUpstream("upstream-2");
  }

  static FakeUpstreamPtr makeUpstream(std::string name) {
    FakeUpstreamOptions options;
    options.name = std::move(name);
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    EXPECT_TRUE(upstream.ok()) << upstream.status();
    return upstream.ok() ? std::move(*upstream) : nullptr;
  }

  // The usual routes: /service/1 -> service1 (upstream-1), /service/2 -> service2
  // (upstream-2), anything else has no route.
  BootstrapSpec serviceRoutes() const {
    BootstrapSpec spec;
    spec.virtual_hosts = {R"({name: services, domains: ["*"], routes: [
        {match: {prefix: "/service/1"}, route: {cluster: service1}},
        {match: {prefix: "/service/2"}, route: {cluster: service2}}]})"};
    spec.clusters = {staticCluster("service1", {upstream1_->port()}),
                     staticCluster("service2", {upstream2_->port()})};
    // Envoy's default access log format on stdout: the response flags (UF, UT, NR, ...) land
    // in ProxyProcess::stdoutText().
    spec.hcm_fields = {kStdoutAccessLog};
    return spec;
  }

  // Wait until the access log has a line containing `text` (it is written after the response
  // went out, so a test that has its response may still have to wait for the line).
  testing::AssertionResult waitForAccessLog(const std::string& text) {
    return waitUntil([&] { return proxy_->stdoutText().find(text) != std::string::npos; }, 10s,
                     "access log line containing '" + text + "'");
  }

  // Start the proxy and learn its listener's port; a failure ends the test.
  void startProxy(const BootstrapSpec& spec, uint32_t concurrency = 1) {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrapYaml(spec);
    options.concurrency = concurrency;
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort(kListenerName);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  absl::StatusOr<HttpResponse> get(std::string_view path, std::string_view host = "example.com",
                                   std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest request;
    request.path = std::string(path);
    request.host = std::string(host);
    request.headers = std::move(headers);
    return httpRequest(port_, request);
  }

  std::string statName(const std::string& suffix) const {
    return absl::StrCat("http.", kStatPrefix, ".", suffix);
  }

  // After a bad request the proxy must go on serving: a good request on a new connection.
  void expectServesGoodRequest() {
    absl::StatusOr<HttpResponse> response = get("/service/1/after-bad-request");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u);
    EXPECT_EQ(response->header("x-upstream"), "upstream-1");
  }

  // Send raw bytes on a new connection and read the one response; the connection must then
  // be closed by the proxy.
  HttpResponse sendBadRequest(std::string_view raw_request) {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) {
      return {};
    }
    // The proxy may answer and close before it read everything: a failed send is fine.
    (void)(*client)->sendRaw(raw_request);
    absl::StatusOr<HttpResponse> response = (*client)->readResponse();
    EXPECT_TRUE(response.ok()) << response.status();
    EXPECT_TRUE((*client)->waitForClose(5s)) << "the proxy kept the connection open";
    return response.ok() ? *response : HttpResponse{};
  }

  FakeUpstreamPtr upstream1_;
  FakeUpstreamPtr upstream2_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

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

// ---- Connection handling and streaming -------------------------------------------------------

TEST_F(ProxyIntegrationTest, KeepAliveReusesOneUpstreamConnection) {
  startProxy(serviceRoutes());

  // Ten requests on one client connection.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  for (int i = 0; i < 10; i++) {
    HttpRequest request;
    request.path = absl::StrCat("/service/1/", i);
    absl::StatusOr<HttpResponse> response = (*client)->request(request);
    ASSERT_TRUE(response.ok()) << "request " << i << ": " << response.status();
    EXPECT_EQ(response->status, 200u);
    EXPECT_TRUE(response->keep_alive);
  }

  // The upstream saw one connection carrying all ten: the proxy's pool reused it.
  EXPECT_EQ(upstream1_->requestsReceived(), 10u);
  EXPECT_EQ(upstream1_->connectionsAccepted(), 1u);
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.service1.upstream_rq_total", 10));
  absl::StatusOr<int64_t> upstream_cx = proxy_->counter("cluster.service1.upstream_cx_total");
  ASSERT_TRUE(upstream_cx.ok()) << upstream_cx.status();
  EXPECT_EQ(*upstream_cx, 1);
  // And downstream it was one connection too.
  absl::StatusOr<int64_t> downstream_cx = proxy_->counter(statName("downstream_cx_total"));
  ASSERT_TRUE(downstream_cx.ok()) << downstream_cx.status();
  EXPECT_EQ(*downstream_cx, 1);
}

TEST_F(ProxyIntegrationTest, PipelinedRequestsAreAnsweredInOrder) {
  startProxy(serviceRoutes());

  // Three requests in one write; the responses come back in request order.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  std::string batch;
  for (std::string_view path : {"/service/1/a", "/service/2/b", "/service/1/c"}) {
    HttpRequest request;
    request.path = std::string(path);
    batch += HttpClient::serialize(request);
  }
  ASSERT_TRUE((*client)->sendRaw(batch).ok());
  for (std::string_view expected : {"/service/1/a", "/service/2/b", "/service/1/c"}) {
    absl::StatusOr<HttpResponse> response = (*client)->readResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->header("x-echo-path"), expected);
  }
}

TEST_F(ProxyIntegrationTest, ConnectionCloseIsHonoured) {
  startProxy(serviceRoutes());

  // "connection: close" from the client: the response says so and the proxy closes.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest request;
  request.path = "/service/1";
  request.headers = {{"connection", "close"}};
  absl::StatusOr<HttpResponse> response = (*client)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_FALSE(response->keep_alive);
  EXPECT_TRUE((*client)->waitForClose(5s));
}

TEST_F(ProxyIntegrationTest, Expect100ContinueGetsAnInterimResponse) {
  startProxy(serviceRoutes());

  // The client sends only the head and waits for "100 Continue" before the body.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)
                  ->sendRaw("POST /service/1/upload HTTP/1.1\r\nhost: example.com\r\n"
                            "content-length: 5\r\nexpect: 100-continue\r\n\r\n")
                  .ok());
  absl::StatusOr<HttpResponse> interim = (*client)->readResponse();
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->status, 100u);

  // Then the body, and the final response.
  ASSERT_TRUE((*client)->sendRaw("hello").ok());
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-request-body-bytes"), "5");
}

TEST_F(ProxyIntegrationTest, StreamsA100MiBChunkedUploadInBoundedMemory) {
  startProxy(serviceRoutes());
  // Warm up (first connection, pools, lazily allocated buffers), then take the baseline.
  ASSERT_TRUE(get("/service/1/warmup").ok());
  absl::StatusOr<uint64_t> before_kb = proxy_->peakRssKb();
  ASSERT_TRUE(before_kb.ok()) << before_kb.status();

  // 100 MiB of generated body in 64 KiB chunks; the upstream digests what it receives.
  constexpr uint64_t kBodyBytes = 100 * kMiB;
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->setTimeout(120s);
  HttpRequest request;
  request.method = "POST";
  request.path = "/service/1/upload";
  absl::StatusOr<HttpResponse> response = (*client)->chunkedUpload(request, kBodyBytes);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200u);

  // Every byte arrived, in order.
  EXPECT_EQ(response->header("x-request-body-bytes"), std::to_string(kBodyBytes));
  EXPECT_EQ(response->header("x-request-body-fnv1a"), patternDigest(kBodyBytes));
  // The upstream saw a chunked request (the proxy streamed it; it did not buffer and add a
  // content-length).
  EXPECT_EQ(response->header("x-echo-transfer-encoding"), "chunked");

  // The proxy streamed it: its peak RSS grew by far less than the body.
  absl::StatusOr<uint64_t> after_kb = proxy_->peakRssKb();
  ASSERT_TRUE(after_kb.ok()) << after_kb.status();
  if (kRssIsMeaningful) {
    EXPECT_LT(*after_kb - *before_kb, kMaxRssGrowthKb)
        << "peak RSS went from " << *before_kb << " kB to " << *after_kb << " kB";
  }
}

TEST_F(ProxyIntegrationTest, StreamsA100MiBResponseInBoundedMemory) {
  startProxy(serviceRoutes());
  ASSERT_TRUE(get("/service/2/warmup").ok());
  absl::StatusOr<uint64_t> before_kb = proxy_->peakRssKb();
  ASSERT_TRUE(before_kb.ok()) << before_kb.status();

  // upstream-2 streams 100 MiB of the body pattern; the client digests it as it reads.
  constexpr uint64_t kBodyBytes = 100 * kMiB;
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->setTimeout(120s);
  (*client)->setBodyKeepLimit(0);
  HttpRequest request;
  request.path = "/service/2/download";
  request.headers = {{"x-fake-response-bytes", std::to_string(kBodyBytes)}};
  absl::StatusOr<HttpResponse> response = (*client)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200u);
  EXPECT_EQ(response->body_bytes, kBodyBytes);
  EXPECT_EQ(response->body_fnv1a, patternDigest(kBodyBytes));

  absl::StatusOr<uint64_t> after_kb = proxy_->peakRssKb();
  ASSERT_TRUE(after_kb.ok()) << after_kb.status();
  if (kRssIsMeaningful) {
    EXPECT_LT(*after_kb - *before_kb, kMaxRssGrowthKb)
        << "peak RSS went from " << *before_kb << " kB to " << *after_kb << " kB";
  }
}

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

// ---- Workers, signals, admin, validation ------------------------------------------------------

TEST_F(ProxyIntegrationTest, ConcurrencyTwoSpreadsConnectionsOverBothWorkers) {
  startProxy(serviceRoutes(), /*concurrency=*/2);

  // 64 connections open at once. Each worker has its own SO_REUSEPORT socket and the kernel
  // picks one by hashing the 4-tuple; with 64 different source ports the chance that one
  // worker gets none is 2 * 2^-64, i.e. never.
  constexpr int kConnections = 64;
  std::vector<HttpClientPtr> clients;
  for (int i = 0; i < kConnections; i++) {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    clients.push_back(std::move(*client));
  }
  for (HttpClientPtr& client : clients) {
    HttpRequest request;
    request.path = "/service/1";
    ASSERT_TRUE(client->sendRaw(HttpClient::serialize(request)).ok());
  }
  for (HttpClientPtr& client : clients) {
    absl::StatusOr<HttpResponse> response = client->readResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u);
  }

  // Per-worker listener stats: both got connections, and together all of them.
  const std::string listener = absl::StrCat("listener.127.0.0.1_", port_);
  absl::StatusOr<int64_t> worker0 = proxy_->counter(listener + ".worker_0.downstream_cx_total");
  absl::StatusOr<int64_t> worker1 = proxy_->counter(listener + ".worker_1.downstream_cx_total");
  ASSERT_TRUE(worker0.ok()) << worker0.status();
  ASSERT_TRUE(worker1.ok()) << worker1.status();
  EXPECT_GT(*worker0, 0);
  EXPECT_GT(*worker1, 0);
  EXPECT_EQ(*worker0 + *worker1, kConnections);
  absl::StatusOr<int64_t> total = proxy_->counter(listener + ".downstream_cx_total");
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, kConnections);
}

TEST_F(ProxyIntegrationTest, SigtermLetsAnInFlightRequestFinish) {
  startProxy(serviceRoutes());

  // A request the upstream answers after 1 s.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest request;
  request.path = "/service/1/slow";
  request.headers = {{"x-fake-delay-ms", "1000"}};
  ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(request)).ok());

  // Once the upstream has it (in flight), ask the proxy to stop.
  ASSERT_TRUE(upstream1_->waitForRequests(1));
  ASSERT_TRUE(proxy_->sendSignal(SIGTERM));

  // The request still completes, and then the process exits cleanly (within the drain time).
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  absl::StatusOr<int> exit_code = proxy_->waitForExit(20s);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

TEST_F(ProxyIntegrationTest, AdminEndpointsAnswer) {
  startProxy(serviceRoutes());
  ASSERT_TRUE(get("/service/1").ok());

  for (std::string_view path : {"/ready", "/stats", "/stats/prometheus", "/config_dump",
                                "/listeners", "/clusters", "/server_info"}) {
    absl::StatusOr<HttpResponse> response = proxy_->adminGet(path);
    ASSERT_TRUE(response.ok()) << path << ": " << response.status();
    EXPECT_EQ(response->status, 200u) << path;
  }
  absl::StatusOr<HttpResponse> ready = proxy_->adminGet("/ready");
  EXPECT_EQ(absl::StripAsciiWhitespace(ready->body), "LIVE");
  // Prometheus exposition format, with Envoy's "envoy_" prefix.
  absl::StatusOr<HttpResponse> prometheus = proxy_->adminGet("/stats/prometheus");
  EXPECT_NE(prometheus->body.find("# TYPE envoy_"), std::string::npos) << prometheus->body;
  // The config dump names our clusters.
  absl::StatusOr<HttpResponse> dump = proxy_->adminGet("/config_dump");
  EXPECT_NE(dump->body.find("service2"), std::string::npos);
}

TEST_F(ProxyIntegrationTest, QuitQuitQuitExitsCleanly) {
  startProxy(serviceRoutes());

  absl::StatusOr<HttpResponse> response = proxy_->adminPost("/quitquitquit");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  absl::StatusOr<int> exit_code = proxy_->waitForExit(20s);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

// Options that only carry a bootstrap (for runToCompletion()).
ProxyOptions withBootstrap(std::string yaml) {
  ProxyOptions options;
  options.bootstrap_yaml = std::move(yaml);
  return options;
}

TEST_F(ProxyIntegrationTest, ValidateModeAcceptsAGoodBootstrap) {
  ProxyProcess proxy(withBootstrap(bootstrapYaml(serviceRoutes())));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
}

// The non-empty lines of `text`.
std::vector<std::string> lines(const std::string& text) {
  return absl::StrSplit(absl::StripAsciiWhitespace(text), '\n', absl::SkipEmpty());
}

TEST_F(ProxyIntegrationTest, ValidateModeRejectsAnUnknownFieldInOneLine) {
  // A field Envoy's API does not have, inside the first cluster.
  std::string yaml = bootstrapYaml(serviceRoutes());
  const std::string needle = "{name: service1, ";
  ASSERT_NE(yaml.find(needle), std::string::npos);
  yaml.replace(yaml.find(needle), needle.size(), "{name: service1, bogus_field: 1, ");
  ProxyProcess proxy(withBootstrap(yaml));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  // One line, naming the field.
  const std::vector<std::string> error = lines(result->stderr_text);
  ASSERT_EQ(error.size(), 1u) << result->stderr_text;
  EXPECT_NE(error[0].find("bogus_field"), std::string::npos) << error[0];
}

TEST_F(ProxyIntegrationTest, ValidateModeRejectsABadValueInOneLine) {
  // An enum value that does not exist.
  std::string yaml = bootstrapYaml(serviceRoutes());
  const std::string needle = "lb_policy: ROUND_ROBIN";
  ASSERT_NE(yaml.find(needle), std::string::npos);
  yaml.replace(yaml.find(needle), needle.size(), "lb_policy: SOMETIMES");
  ProxyProcess proxy(withBootstrap(yaml));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  const std::vector<std::string> error = lines(result->stderr_text);
  ASSERT_EQ(error.size(), 1u) << result->stderr_text;
  EXPECT_NE(error[0].find("lb_policy"), std::string::npos) << error[0];
}

TEST_F(ProxyIntegrationTest, BadBootstrapFailsStartupWithExitCodeNonZero) {
  // Not YAML at all: the proxy refuses to start (without --mode validate too).
  ProxyProcess proxy(withBootstrap("static_resources: [unclosed"));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  EXPECT_EQ(lines(result->stderr_text).size(), 1u) << result->stderr_text;
}

}  // namespace
}  // namespace Proxy::Integration
