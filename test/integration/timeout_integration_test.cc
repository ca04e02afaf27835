// End-to-end tests of the real `proxy` binary: the route's and the connection manager's timeouts
// against faulty upstreams (one that accepts and never answers, one that trickles its body) and
// a slow client. Statuses, bodies, response flags and stats are Envoy 1.40's, checked by running
// the same configs through it. Every timeout is configured short, so each test takes well under
// a second of waiting. The harness is proxy_integration_test_fixture.h.

#include <poll.h>

#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

// A request upstream-1 never answers (it holds it for a minute).
const std::vector<std::pair<std::string, std::string>> kNeverAnswer = {
    {"x-fake-delay-ms", "60000"}};

class TimeoutIntegrationTest : public ProxyIntegrationTest {
 protected:
  // One virtual host whose routes all go to service1 (upstream-1), each with `route_fields`
  // added to its route action; the HCM gets `hcm_fields` and the stdout access log.
  BootstrapSpec spec(const std::vector<std::pair<std::string, std::string>>& routes,
                     std::vector<std::string> hcm_fields = {}) {
    std::vector<std::string> entries;
    for (const auto& [prefix, route_fields] : routes) {
      entries.push_back(absl::StrCat("{match: {prefix: \"", prefix,
                                     "\"}, route: {cluster: service1", route_fields, "}}"));
    }
    BootstrapSpec spec;
    spec.virtual_hosts = {absl::StrCat("{name: services, domains: [\"*\"], routes: [",
                                       absl::StrJoin(entries, ", "), "]}")};
    spec.clusters = {staticCluster("service1", {upstream1_->port()})};
    spec.hcm_fields = std::move(hcm_fields);
    spec.hcm_fields.push_back(kStdoutAccessLog);
    return spec;
  }

  int64_t counterValue(const std::string& name) {
    absl::StatusOr<int64_t> value = proxy_->counter(name);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *value : -1;
  }
};

TEST_F(TimeoutIntegrationTest, RouteTimeoutAnswers504WithUTAndZeroDisablesIt) {
  // /timed has a 200 ms route timeout; /untimed disables it (0s), so only the stream idle
  // timeout (300 ms here) ends a request upstream-1 never answers.
  startProxy(spec({{"/timed", ", timeout: 0.2s"}, {"/untimed", ", timeout: 0s"}},
                  {"stream_idle_timeout: 0.3s"}));

  // The route timeout: Envoy's 504, body and flag UT.
  absl::StatusOr<HttpResponse> timed = get("/timed", "example.com", kNeverAnswer);
  ASSERT_TRUE(timed.ok()) << timed.status();
  EXPECT_EQ(timed->status, 504u);
  EXPECT_EQ(timed->body, "upstream request timeout");
  EXPECT_TRUE(waitForAccessLog("\"GET /timed HTTP/1.1\" 504 UT "));
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.service1.upstream_rq_timeout", 1));

  // No route timeout: the stream idle timeout fires instead. The whole request was received,
  // so Envoy 1.40 answers 504 "stream timeout" with flag SI.
  absl::StatusOr<HttpResponse> untimed = get("/untimed", "example.com", kNeverAnswer);
  ASSERT_TRUE(untimed.ok()) << untimed.status();
  EXPECT_EQ(untimed->status, 504u);
  EXPECT_EQ(untimed->body, "stream timeout");
  EXPECT_TRUE(waitForAccessLog("\"GET /untimed HTTP/1.1\" 504 SI "));
  EXPECT_EQ(counterValue(statName("downstream_rq_idle_timeout")), 1);
  EXPECT_EQ(counterValue("cluster.service1.upstream_rq_timeout"), 1);
}

TEST_F(TimeoutIntegrationTest, StreamIdleTimeoutCutsATrickleOnlyWhenItStalls) {
  startProxy(spec({{"/", ", timeout: 0s"}}, {"stream_idle_timeout: 0.3s"}));

  // 5 bytes, one every 20 ms: the stream is never idle for 300 ms, the response completes.
  absl::StatusOr<HttpResponse> steady =
      get("/steady", "example.com", {{"x-fake-response-bytes", "5"}, {"x-fake-trickle-ms", "20"}});
  ASSERT_TRUE(steady.ok()) << steady.status();
  EXPECT_EQ(steady->status, 200u);
  EXPECT_EQ(steady->body_bytes, 5u);

  // One byte, then nothing for 10 s: the response started, so the proxy can only cut the
  // connection (a reset sent: downstream_rq_tx_reset), flag SI.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest stalled;
  stalled.path = "/stalled";
  stalled.headers = {{"x-fake-response-bytes", "5"}, {"x-fake-trickle-ms", "10000"}};
  ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(stalled)).ok());
  EXPECT_TRUE((*client)->waitForClose(5s));
  EXPECT_TRUE(waitForAccessLog("\"GET /stalled HTTP/1.1\" 200 SI "));
  EXPECT_EQ(counterValue(statName("downstream_rq_idle_timeout")), 1);
  EXPECT_EQ(counterValue(statName("downstream_rq_tx_reset")), 1);
}

TEST_F(TimeoutIntegrationTest, RouteIdleTimeoutReplacesTheStreamIdleTimeout) {
  // The connection manager's stream idle timeout is a minute; /short's route says 200 ms.
  // /off's says 0 (none), so its 300 ms route timeout is what ends it.
  startProxy(spec({{"/short", ", timeout: 0s, idle_timeout: 0.2s"},
                   {"/off", ", timeout: 0.3s, idle_timeout: 0s"}},
                  {"stream_idle_timeout: 60s"}));

  absl::StatusOr<HttpResponse> short_idle = get("/short", "example.com", kNeverAnswer);
  ASSERT_TRUE(short_idle.ok()) << short_idle.status();
  EXPECT_EQ(short_idle->status, 504u);
  EXPECT_EQ(short_idle->body, "stream timeout");
  EXPECT_TRUE(waitForAccessLog("\"GET /short HTTP/1.1\" 504 SI "));

  absl::StatusOr<HttpResponse> off = get("/off", "example.com", kNeverAnswer);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->status, 504u);
  EXPECT_EQ(off->body, "upstream request timeout");
  EXPECT_TRUE(waitForAccessLog("\"GET /off HTTP/1.1\" 504 UT "));
}

TEST_F(TimeoutIntegrationTest, RequestTimeoutAndMaxStreamDuration) {
  // request_timeout 300 ms: the whole request must arrive in time. max_stream_duration 400 ms:
  // the whole exchange must end in time.
  startProxy(
      spec({{"/", ", timeout: 0s"}},
           {"request_timeout: 0.3s", "common_http_protocol_options: {max_stream_duration: 0.4s}"}));

  // A body that promises 10 bytes and sends 2: 408 "request timeout", and the connection
  // closes (the rest of the request cannot be skipped), saying so.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)
                  ->sendRaw("POST /upload HTTP/1.1\r\nhost: example.com\r\n"
                            "content-length: 10\r\n\r\nab")
                  .ok());
  absl::StatusOr<HttpResponse> partial = (*client)->readResponse();
  ASSERT_TRUE(partial.ok()) << partial.status();
  EXPECT_EQ(partial->status, 408u);
  EXPECT_EQ(partial->body, "request timeout");
  EXPECT_EQ(partial->header("connection"), "close");
  EXPECT_TRUE((*client)->waitForClose(5s));
  EXPECT_EQ(counterValue(statName("downstream_rq_timeout")), 1);

  // A complete request upstream-1 never answers: the request timeout no longer runs, the
  // stream's lifetime ends it: Envoy's 504 "downstream duration timeout", no flag.
  absl::StatusOr<HttpResponse> hung = get("/hung", "example.com", kNeverAnswer);
  ASSERT_TRUE(hung.ok()) << hung.status();
  EXPECT_EQ(hung->status, 504u);
  EXPECT_EQ(hung->body, "downstream duration timeout");
  EXPECT_TRUE(waitForAccessLog("\"GET /hung HTTP/1.1\" 504 - "));
  EXPECT_EQ(counterValue(statName("downstream_rq_max_duration_reached")), 1);
  EXPECT_EQ(counterValue(statName("downstream_rq_timeout")), 1);
}

TEST_F(TimeoutIntegrationTest, SlowlorisIsCutOffByTheRequestHeadersTimeout) {
  startProxy(spec({{"/", ""}}, {"request_headers_timeout: 0.5s"}));

  // A client that sends its headers one byte every 50 ms, forever: each byte is activity, but
  // the headers never complete. The proxy answers 408 and closes within the 500 ms.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE((*client)->sendRaw("GET /slow HTTP/1.1\r\n").ok());
  for (int i = 0; i < 100; i++) {
    // Pace the bytes by waiting for the proxy's answer for 50 ms at a time.
    pollfd readable{(*client)->fd(), POLLIN, 0};
    if (::poll(&readable, 1, 50) > 0) {
      break;
    }
    ASSERT_TRUE((*client)->sendRaw("x").ok());
  }
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 408u);
  EXPECT_EQ(response->body, "request header timeout");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE((*client)->waitForClose(5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_EQ(counterValue(statName("downstream_rq_header_timeout")), 1);
  EXPECT_EQ(upstream1_->requestsReceived(), 0u);
}

TEST_F(TimeoutIntegrationTest, ConnectionIdleTimeoutAndMaxConnectionDuration) {
  // Downstream: keep-alive connections close after 300 ms idle, or 600 ms of life (then the
  // drain sequence: the response in flight says "connection: close"; an idle connection
  // closes after drain_timeout). Upstream: pooled connections close after 200 ms idle.
  BootstrapSpec config = spec({{"/", ""}}, {"common_http_protocol_options: {idle_timeout: 0.3s, "
                                            "max_connection_duration: 0.6s}",
                                            "drain_timeout: 0.1s"});
  config.clusters = {absl::StrCat(staticCluster("service1", {upstream1_->port()}).substr(0, 1),
                                  "common_http_protocol_options: {idle_timeout: 0.2s}, ",
                                  staticCluster("service1", {upstream1_->port()}).substr(1))};
  startProxy(config);

  // An idle keep-alive connection is closed after 300 ms.
  absl::StatusOr<HttpClientPtr> idle = HttpClient::connect(port_);
  ASSERT_TRUE(idle.ok()) << idle.status();
  HttpRequest request;
  request.path = "/first";
  absl::StatusOr<HttpResponse> first = (*idle)->request(request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->keep_alive);
  EXPECT_TRUE((*idle)->waitForClose(5s));
  EXPECT_TRUE(proxy_->waitForCounterGe(statName("downstream_cx_idle_timeout"), 1));
  // Its upstream connection, idle in the pool, closed after 200 ms.
  EXPECT_TRUE(upstream1_->waitForActiveConnections(0));
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.service1.upstream_cx_idle_timeout", 1));

  // A busy connection at the 600 ms mark: the response in flight is its last.
  absl::StatusOr<HttpClientPtr> busy = HttpClient::connect(port_);
  ASSERT_TRUE(busy.ok()) << busy.status();
  request.path = "/slow";
  request.headers = {{"x-fake-delay-ms", "800"}};
  absl::StatusOr<HttpResponse> last = (*busy)->request(request);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->status, 200u);
  EXPECT_EQ(last->header("connection"), "close");
  EXPECT_TRUE((*busy)->waitForClose(5s));
  EXPECT_EQ(counterValue(statName("downstream_cx_max_duration_reached")), 1);
  // A new upstream connection served it: the pooled one had been closed.
  EXPECT_EQ(upstream1_->connectionsAccepted(), 2u);
}

TEST_F(TimeoutIntegrationTest, OptionsAsteriskIsANonRelativePath404) {
  startProxy(spec({{"/", ""}}));

  // "OPTIONS *" is the only request whose path is not origin-form after the codec: Envoy
  // answers 404 and counts it; the connection stays usable.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->sendRaw("OPTIONS * HTTP/1.1\r\nhost: example.com\r\n\r\n").ok());
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404u);
  EXPECT_TRUE(response->keep_alive);
  EXPECT_EQ(counterValue(statName("downstream_rq_non_relative_path")), 1);
  EXPECT_EQ(upstream1_->requestsReceived(), 0u);
}

}  // namespace
}  // namespace Proxy::Integration
