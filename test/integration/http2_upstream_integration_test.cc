// HTTP/1.1 downstream -> HTTP/2 upstream through the real `proxy` binary: clusters that ask for
// HTTP/2 (typed HttpProtocolOptions or the deprecated http2_protocol_options) are spoken to in
// h2c by the multiplexing pool (proxy/upstream/http2_conn_pool_impl.*). The upstream is nghttp2's
// own server session on a real socket (fake_h2_upstream.h), which counts connections and the
// most streams it saw open at once.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/fake_h2_upstream.h"
#include "test/integration/proxy_integration_test_fixture.h"
#include "test/integration/tls_test_util.h"

namespace Proxy::Integration {
namespace {

constexpr char kCluster[] = "cluster.h2.";

// An HTTP/2 cluster "h2" to 127.0.0.1:`port`; `http2_options` go inside http2_protocol_options,
// `extra` are more cluster fields ("key: value, ").
std::string h2Cluster(uint32_t port, const std::string& http2_options = "",
                      const std::string& extra = "", const std::string& typed_extra = "") {
  return absl::StrCat(
      "{name: h2, type: STATIC, connect_timeout: 1s, ", extra,
      R"(typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, )",
      typed_extra, "explicit_http_config: {http2_protocol_options: {", http2_options,
      "}}}}, load_assignment: {cluster_name: h2, endpoints: [{lb_endpoints: [{endpoint: "
      "{address: {socket_address: {address: 127.0.0.1, port_value: ",
      port, "}}}}]}]}}");
}

class Http2UpstreamIntegrationTest : public testing::Test {
 protected:
  void startUpstream(FakeH2UpstreamOptions options = {}) {
    options.name = "h2";
    absl::StatusOr<FakeH2UpstreamPtr> upstream = FakeH2Upstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
  }

  void startProxy(const std::string& cluster) {
    BootstrapSpec spec;
    spec.virtual_hosts = {
        R"({name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: h2}}]})"};
    spec.clusters = {cluster};
    ProxyOptions options;
    options.bootstrap_yaml = bootstrapYaml(spec);
    options.concurrency = 1;  // one worker, so one pool: connection counts are exact
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort(kListenerName);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // Send `count` requests at once, each on its own downstream connection, then read every
  // response. `delay_ms` holds each stream open upstream so that they overlap.
  std::vector<HttpResponse> concurrentRequests(int count, int delay_ms,
                                               const std::string& prefix = "/mux/") {
    std::vector<HttpClientPtr> clients;
    for (int i = 0; i < count; i++) {
      absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
      EXPECT_TRUE(client.ok()) << client.status();
      if (!client.ok()) {
        return {};
      }
      HttpRequest request;
      request.path = absl::StrCat(prefix, i);
      request.headers = {{"x-fake-delay-ms", std::to_string(delay_ms)}};
      EXPECT_TRUE((*client)->sendRaw(HttpClient::serialize(request)).ok());
      clients.push_back(std::move(*client));
    }
    std::vector<HttpResponse> responses;
    for (HttpClientPtr& client : clients) {
      absl::StatusOr<HttpResponse> response = client->readResponse();
      EXPECT_TRUE(response.ok()) << response.status();
      responses.push_back(response.ok() ? *response : HttpResponse());
    }
    return responses;
  }

  int64_t counter(const std::string& name) {
    absl::StatusOr<int64_t> value = proxy_->counter(absl::StrCat(kCluster, name));
    EXPECT_TRUE(value.ok()) << name << ": " << value.status();
    return value.ok() ? *value : -1;
  }

  FakeH2UpstreamPtr upstream_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

TEST_F(Http2UpstreamIntegrationTest, ManyRequestsAreMultiplexedOverOneUpstreamConnection) {
  startUpstream();
  startProxy(h2Cluster(upstream_->port()));

  // Twenty HTTP/1.1 clients at once, each request held open upstream for half a second.
  std::vector<HttpResponse> responses = concurrentRequests(20, /*delay_ms=*/500);
  ASSERT_EQ(20u, responses.size());
  for (size_t i = 0; i < responses.size(); i++) {
    EXPECT_EQ(200u, responses[i].status);
    EXPECT_EQ(absl::StrCat("hello from h2\npath: /mux/", i, "\n"), responses[i].body);
    EXPECT_EQ("HTTP/2", responses[i].header("x-upstream-protocol"));
  }
  // They all travelled as streams of one HTTP/2 connection, open together.
  EXPECT_EQ(1u, upstream_->connectionsAccepted());
  EXPECT_EQ(20u, upstream_->peakConcurrentStreams());

  // A request body goes up as DATA.
  HttpRequest post;
  post.method = "POST";
  post.path = "/upload";
  post.body = std::string(100000, 'b');
  absl::StatusOr<HttpResponse> response = httpRequest(port_, post);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(200u, response->status);
  EXPECT_EQ("100000", response->header("x-request-body-bytes"));
  EXPECT_EQ(1u, upstream_->connectionsAccepted());

  // Envoy's stats for it.
  EXPECT_EQ(1, counter("upstream_cx_http2_total"));
  EXPECT_EQ(1, counter("upstream_cx_total"));
  EXPECT_EQ(21, counter("upstream_rq_total"));
  EXPECT_EQ(21, counter("upstream_rq_2xx"));
  EXPECT_EQ(0, counter("http2.rx_reset"));
}

TEST_F(Http2UpstreamIntegrationTest, OverTlsTheClientHelloOffersH2AndStreamsShareTheConnection) {
  // The upstream serves TLS with ALPN "h2" only; the cluster's UpstreamTlsContext names no
  // protocols, so the HTTP/2 pool offers "h2" (Envoy's fallback for an HTTP/2 pool).
  absl::StatusOr<TestPki> pki = TestPki::create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  FakeH2UpstreamOptions options;
  options.tls_cert_file = pki->cert("server");
  options.tls_key_file = pki->key("server");
  startUpstream(options);
  startProxy(h2Cluster(
      upstream_->port(), "",
      absl::StrCat("transport_socket: {name: envoy.transport_sockets.tls, typed_config: "
                   "{\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                   "UpstreamTlsContext, sni: localhost, common_tls_context: {validation_context: "
                   "{trusted_ca: {filename: \"",
                   pki->ca(),
                   "\"}, match_typed_subject_alt_names: [{san_type: DNS, matcher: "
                   "{exact: localhost}}]}}}}, ")));

  std::vector<HttpResponse> responses = concurrentRequests(5, /*delay_ms=*/300);
  ASSERT_EQ(5u, responses.size());
  for (const HttpResponse& response : responses) {
    EXPECT_EQ(200u, response.status);
    EXPECT_EQ("HTTP/2", response.header("x-upstream-protocol"));
    EXPECT_EQ("h2", response.header("x-upstream-alpn"));
  }
  EXPECT_EQ(1u, upstream_->connectionsAccepted());
  EXPECT_EQ(5u, upstream_->peakConcurrentStreams());
  EXPECT_EQ(1, counter("ssl.handshake"));
  EXPECT_EQ(1, counter("upstream_cx_http2_total"));
}

TEST_F(Http2UpstreamIntegrationTest, AnIdleConnectionClosesAfterTheClustersIdleTimeout) {
  startUpstream();
  // The typed HttpProtocolOptions' common_http_protocol_options.idle_timeout (where Envoy 1.40
  // reads it) applies to HTTP/2 connections without a stream.
  startProxy(
      h2Cluster(upstream_->port(), "", "", "common_http_protocol_options: {idle_timeout: 0.2s}, "));
  absl::StatusOr<HttpResponse> response = httpRequest(port_, HttpRequest());
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(200u, response->status);
  ASSERT_TRUE(proxy_->waitForCounterGe(absl::StrCat(kCluster, "upstream_cx_idle_timeout"), 1));
  EXPECT_TRUE(waitUntil([&] { return upstream_->activeConnections() == 0; }, 10s,
                        "the idle connection closed"));
}

TEST_F(Http2UpstreamIntegrationTest, TheDeprecatedClusterFieldSelectsHttp2Too) {
  startUpstream();
  startProxy(absl::StrCat(
      "{name: h2, type: STATIC, connect_timeout: 1s, http2_protocol_options: {}, "
      "load_assignment: {cluster_name: h2, endpoints: [{lb_endpoints: [{endpoint: {address: "
      "{socket_address: {address: 127.0.0.1, port_value: ",
      upstream_->port(), "}}}}]}]}}"));
  HttpRequest request;
  request.path = "/old-style";
  absl::StatusOr<HttpResponse> response = httpRequest(port_, request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(200u, response->status);
  EXPECT_EQ("HTTP/2", response->header("x-upstream-protocol"));
  EXPECT_EQ(1, counter("upstream_cx_http2_total"));
}

TEST_F(Http2UpstreamIntegrationTest, MaxConcurrentStreamsOpensMoreConnections) {
  startUpstream();
  // Ours: two streams per connection. Five requests at once need three connections.
  startProxy(h2Cluster(upstream_->port(), "max_concurrent_streams: 2"));
  std::vector<HttpResponse> responses = concurrentRequests(5, /*delay_ms=*/300);
  for (const HttpResponse& response : responses) {
    EXPECT_EQ(200u, response.status);
  }
  EXPECT_EQ(2u, upstream_->peakConcurrentStreams());
  EXPECT_EQ(3u, upstream_->connectionsAccepted());
  EXPECT_EQ(3, counter("upstream_cx_http2_total"));
}

TEST_F(Http2UpstreamIntegrationTest, ThePeersStreamLimitIsHonoured) {
  // The server allows one stream at a time (SETTINGS_MAX_CONCURRENT_STREAMS 1); the cluster
  // sets no stream limit of its own, and one connection at most. Three requests at once: all
  // answered, one after the other, never two streams open.
  FakeH2UpstreamOptions options;
  options.max_concurrent_streams = 1;
  startUpstream(options);
  startProxy(
      h2Cluster(upstream_->port(), "", "circuit_breakers: {thresholds: [{max_connections: 1}]}, "));
  // A first request so the server's SETTINGS is known before the burst. (Before it, a new
  // connection assumes the configured limit, as Envoy's pool does.)
  ASSERT_TRUE(httpRequest(port_, HttpRequest()).ok());
  std::vector<HttpResponse> responses = concurrentRequests(3, /*delay_ms=*/100);
  for (const HttpResponse& response : responses) {
    EXPECT_EQ(200u, response.status) << response.body;
  }
  EXPECT_EQ(1u, upstream_->peakConcurrentStreams());
  EXPECT_EQ(1u, upstream_->connectionsAccepted());
}

TEST_F(Http2UpstreamIntegrationTest, GoAwayFromTheUpstreamMidLoadFailsNoRequest) {
  startUpstream();
  startProxy(h2Cluster(upstream_->port()));

  // Ten requests in flight on one connection...
  std::vector<HttpClientPtr> clients;
  for (int i = 0; i < 10; i++) {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = absl::StrCat("/before/", i);
    request.headers = {{"x-fake-delay-ms", "400"}};
    ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(request)).ok());
    clients.push_back(std::move(*client));
  }
  ASSERT_TRUE(upstream_->waitForRequests(10));

  // ...when the upstream shuts the connection down gracefully (GOAWAY).
  upstream_->goAwayAll();
  ASSERT_TRUE(proxy_->waitForCounterGe(absl::StrCat(kCluster, "upstream_cx_close_notify"), 1));

  // New requests go to a new connection while the old streams finish on the old one.
  std::vector<HttpResponse> after = concurrentRequests(10, /*delay_ms=*/50, "/after/");
  for (const HttpResponse& response : after) {
    EXPECT_EQ(200u, response.status);
  }
  for (size_t i = 0; i < clients.size(); i++) {
    absl::StatusOr<HttpResponse> response = clients[i]->readResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(200u, response->status);
    EXPECT_EQ(absl::StrCat("hello from h2\npath: /before/", i, "\n"), response->body);
  }
  EXPECT_EQ(2u, upstream_->connectionsAccepted());
  // The drained connection closes once its last stream is done.
  EXPECT_TRUE(waitUntil([&] { return upstream_->activeConnections() == 1; }, 10s,
                        "the GOAWAY'd connection closed"));
  EXPECT_EQ(0, counter("upstream_rq_rx_reset"));
  EXPECT_EQ(20, counter("upstream_rq_2xx"));
}

TEST_F(Http2UpstreamIntegrationTest, CircuitBreakersBoundStreamsAndConnections) {
  startUpstream();
  // max_requests 2: of four requests at once, two go up and two are refused as overflow.
  startProxy(
      h2Cluster(upstream_->port(), "", "circuit_breakers: {thresholds: [{max_requests: 2}]}, "));
  std::vector<HttpResponse> responses = concurrentRequests(4, /*delay_ms=*/300);
  int ok = 0;
  int overflow = 0;
  for (const HttpResponse& response : responses) {
    if (response.status == 200) {
      ok++;
    } else if (response.status == 503 &&
               response.body ==
                   "upstream connect error or disconnect/reset before headers. reset reason: "
                   "overflow") {
      overflow++;
    }
  }
  EXPECT_EQ(2, ok);
  EXPECT_EQ(2, overflow);
  EXPECT_EQ(2, counter("upstream_rq_pending_overflow"));
}

TEST_F(Http2UpstreamIntegrationTest, MaxConnectionsQueuesAndMaxRequestsPerConnectionRotates) {
  startUpstream();
  // One connection at most, one stream on it: three requests at once wait their turn.
  startProxy(h2Cluster(upstream_->port(), "max_concurrent_streams: 1",
                       "circuit_breakers: {thresholds: [{max_connections: 1}]}, "
                       R"(max_requests_per_connection: 2, )"));
  std::vector<HttpResponse> responses = concurrentRequests(3, /*delay_ms=*/50);
  for (const HttpResponse& response : responses) {
    EXPECT_EQ(200u, response.status);
  }
  EXPECT_EQ(1u, upstream_->peakConcurrentStreams());
  // Two requests per connection: the third needed a second connection.
  EXPECT_EQ(2u, upstream_->connectionsAccepted());
  EXPECT_GE(counter("upstream_cx_overflow"), 1);
  EXPECT_EQ(1, counter("upstream_cx_max_requests"));
}

}  // namespace
}  // namespace Proxy::Integration
