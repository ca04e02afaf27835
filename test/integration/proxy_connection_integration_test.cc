// End-to-end tests of the real `proxy` binary: connection handling (keep-alive, pipelining,
// Connection: close, 100-continue) and streaming large bodies in bounded memory.
// The harness (bootstraps, the fixture) is proxy_integration_test_fixture.h.

#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

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

}  // namespace
}  // namespace Proxy::Integration
