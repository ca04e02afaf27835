// Tests of the integration harness itself: FakeUpstream served through the proxy's own
// network and HTTP/1 libraries, talked to by HttpClient directly (no proxy in between). When
// an integration test fails, these say whether to suspect the harness or the proxy.

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/body_pattern.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/refusing_port.h"

namespace Proxy::Integration {
namespace {

class FakeUpstreamTest : public testing::Test {
 protected:
  void SetUp() override {
    FakeUpstreamOptions options;
    options.name = "upstream-1";
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
  }

  FakeUpstreamPtr upstream_;
};

TEST_F(FakeUpstreamTest, AnswersWithGreetingAndEchoesHeaders) {
  HttpRequest request;
  request.path = "/service/1/x";
  request.host = "echo.example";
  request.headers = {{"x-custom", "value-1"}};
  absl::StatusOr<HttpResponse> response = httpRequest(upstream_->port(), request);
  ASSERT_TRUE(response.ok()) << response.status();

  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->body, "hello from upstream-1\npath: /service/1/x\n");
  EXPECT_EQ(response->header("x-upstream"), "upstream-1");
  EXPECT_EQ(response->header("x-echo-method"), "GET");
  EXPECT_EQ(response->header("x-echo-path"), "/service/1/x");
  EXPECT_EQ(response->header("x-echo-authority"), "echo.example");
  EXPECT_EQ(response->header("x-echo-x-custom"), "value-1");
  EXPECT_EQ(response->header("x-request-body-bytes"), "0");
}

TEST_F(FakeUpstreamTest, CountsOneConnectionForKeepAliveRequests) {
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(upstream_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  for (int i = 0; i < 5; i++) {
    absl::StatusOr<HttpResponse> response = (*client)->request(HttpRequest{});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_TRUE(response->keep_alive);
  }
  EXPECT_EQ(upstream_->connectionsAccepted(), 1u);
  EXPECT_EQ(upstream_->requestsReceived(), 5u);
  EXPECT_EQ(upstream_->activeConnections(), 1);

  // Closing the client is seen by the upstream.
  client->reset();
  EXPECT_TRUE(upstream_->waitForActiveConnections(0));
}

TEST_F(FakeUpstreamTest, AnswersPipelinedRequestsInOrder) {
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(upstream_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest a;
  a.path = "/a";
  HttpRequest b;
  b.path = "/b";
  ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(a) + HttpClient::serialize(b)).ok());
  absl::StatusOr<HttpResponse> first = (*client)->readResponse();
  absl::StatusOr<HttpResponse> second = (*client)->readResponse();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->header("x-echo-path"), "/a");
  EXPECT_EQ(second->header("x-echo-path"), "/b");
}

TEST_F(FakeUpstreamTest, DigestsAChunkedUpload) {
  constexpr uint64_t kBytes = 8 * 1024 * 1024 + 7;  // not a multiple of the chunk size
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(upstream_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest request;
  request.method = "POST";
  absl::StatusOr<HttpResponse> response =
      (*client)->chunkedUpload(request, kBytes, /*chunk_size=*/10000);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->header("x-request-body-bytes"), std::to_string(kBytes));
  EXPECT_EQ(response->header("x-request-body-fnv1a"), patternDigest(kBytes));
  EXPECT_EQ(response->header("x-echo-transfer-encoding"), "chunked");
}

TEST_F(FakeUpstreamTest, StreamsALargeResponse) {
  constexpr uint64_t kBytes = 32 * 1024 * 1024;
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(upstream_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->setBodyKeepLimit(16);
  HttpRequest request;
  request.headers = {{"x-fake-response-bytes", std::to_string(kBytes)}};
  absl::StatusOr<HttpResponse> response = (*client)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body_bytes, kBytes);
  EXPECT_EQ(response->body, "abcdefghijklmnop");
  EXPECT_EQ(response->body_fnv1a, patternDigest(kBytes));

  // The connection is still usable afterwards.
  absl::StatusOr<HttpResponse> next = (*client)->request(HttpRequest{});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->status, 200u);
}

TEST_F(FakeUpstreamTest, DelaysAndSetsStatusOnRequest) {
  HttpRequest request;
  request.headers = {{"x-fake-delay-ms", "50"}, {"x-fake-status", "201"}};
  absl::StatusOr<HttpResponse> response = httpRequest(upstream_->port(), request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201u);
}

TEST_F(FakeUpstreamTest, ClosesWithoutResponding) {
  HttpRequest request;
  request.headers = {{"x-fake-close", "1"}};
  absl::StatusOr<HttpResponse> response = httpRequest(upstream_->port(), request);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  EXPECT_EQ(upstream_->responsesStarted(), 0u);
}

TEST_F(FakeUpstreamTest, HonoursConnectionClose) {
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(upstream_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest request;
  request.headers = {{"connection", "close"}};
  absl::StatusOr<HttpResponse> response = (*client)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_FALSE(response->keep_alive);
  EXPECT_TRUE((*client)->waitForClose(5s));
}

TEST(HttpClientTest, ReportsARefusedConnection) {
  RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0u);
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(refusing.port());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace Proxy::Integration
