// The HTTP connection manager (proxy/filters/http_connection_manager.cc) driven without sockets:
// its config is built from an HttpConnectionManager YAML by HcmConfig::create, as the listener
// builds it (static route_config); the downstream connection is a FakeConnection on a
// SimulatedDispatcher, so every byte written to the client and every timer is the test's to
// see. The router's upstream leg reaches a fake cluster manager whose one cluster hands out
// FakeUpstreamRequests at the HttpConnPool seam (the real pool needs sockets: it is covered by
// test/unit/upstream/http_conn_pool_impl_test.cc and the integration tests).
//
// This file: through the router to the upstream seam, and the idle timeout.

#include "test/unit/filters/http_connection_manager_test_fixture.h"

namespace Proxy::Filters {
namespace {

// ---- Through the router to the upstream seam -----------------------------------------------

TEST_F(HttpConnectionManagerTest, ForwardedRequestAndResponse) {
  start();

  // GET /service/1 matches the route to "backend": the router asks the pool for a stream.
  send(get("/service/1", "x-client: a\r\n"));
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];

  // The pool is ready: the request goes upstream with the headers the manager and the router
  // add (x-forwarded-proto, a fresh x-request-id, the route's 15 s timeout).
  upstream.ready(backend().host());
  EXPECT_TRUE(upstream.headers_end_stream);
  const std::string request_id(upstream.headers.getValue(Http::Headers::XRequestId));
  EXPECT_EQ(request_id.size(), 36u) << request_id;
  upstream.headers.remove(Http::Headers::XRequestId);
  EXPECT_EQ(Http::dump(upstream.headers),
            ":method: GET\n:path: /service/1\n:scheme: http\n:authority: example.com\nx-client: a\n"
            "x-forwarded-proto: http\nx-envoy-expected-rq-timeout-ms: 15000\n");

  // The upstream answers 201 after 5 ms: the client gets it with the service time.
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(5));
  upstream.respond(201, "made");
  dispatcher_.runUntilIdle();
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 201 Created\r\ncontent-length: 4\r\n"
                                 "x-envoy-upstream-service-time: 5\r\nserver: envoy\r\n"
                                 "date: Thu, 01 Jan 1970 01:00:00 GMT\r\n\r\nmade"));
  EXPECT_EQ(counter("downstream_rq_2xx"), 1u);
  EXPECT_EQ(store_.counter("cluster.backend.upstream_rq_2xx").value(), 1u);
  EXPECT_FALSE(upstream.reset);
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
}

TEST_F(HttpConnectionManagerTest, TrailersGoEndToEndWithEnableTrailers) {
  start("http_protocol_options: {enable_trailers: true}\n");

  // A chunked upload ends with a trailer before the pool has a connection: body and trailers
  // are held by the router.
  send(
      "POST /service/up HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nx-sum: 7\r\n\r\n");
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];

  // The pool is ready: headers (not ending the request), the body, then the trailers.
  upstream.ready(backend().host());
  EXPECT_FALSE(upstream.headers_end_stream);
  EXPECT_EQ(upstream.body, "hello");
  EXPECT_EQ(Http::dump(upstream.trailers), "x-sum: 7\n");
  EXPECT_TRUE(upstream.body_end_stream);

  // The upstream answers with a body and trailers: the client gets them chunked.
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->setStatus(200);
  upstream.decoder.decodeHeaders(std::move(headers), /*end_stream=*/false);
  Buffer::Instance body;
  body.add("ok");
  upstream.decoder.decodeData(body, /*end_stream=*/false);
  auto trailers = std::make_unique<Http::ResponseTrailerMap>();
  trailers->addCopy("grpc-status", "0");
  upstream.decoder.decodeTrailers(std::move(trailers));
  dispatcher_.runUntilIdle();
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 200 OK\r\nx-envoy-upstream-service-time: 0\r\n"
                                 "server: envoy\r\n",
                                 kDate,
                                 "transfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
                                 "grpc-status: 0\r\n\r\n"));
  EXPECT_EQ(counter("downstream_rq_2xx"), 1u);
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
}

TEST_F(HttpConnectionManagerTest, TrailersArriveAfterThePoolIsReady) {
  start("http_protocol_options: {enable_trailers: true}\n");

  // The head first; the pool is ready before the body: body and trailers go straight through.
  send("POST /service/up HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n");
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  EXPECT_FALSE(upstream.headers_end_stream);
  send("3\r\nabc\r\n0\r\nx-a: 1\r\nx-b: 2\r\n\r\n");
  EXPECT_EQ(upstream.body, "abc");
  EXPECT_EQ(Http::dump(upstream.trailers), "x-a: 1\nx-b: 2\n");
  EXPECT_TRUE(upstream.body_end_stream);
}

TEST_F(HttpConnectionManagerTest, UpstreamSlowerThanTheRouteTimeoutIs504) {
  start();

  send(get("/service/slow"));
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());

  // 15 s (the route's default timeout) pass without an answer: 504, the upstream stream is
  // reset, and the client connection stays usable.
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(15));
  EXPECT_TRUE(upstream.reset);
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 504 Gateway Timeout\r\ncontent-type: text/plain\r\n"
                                 "content-length: 24\r\nserver: envoy\r\n"
                                 "date: Thu, 01 Jan 1970 01:00:15 GMT\r\n\r\n"
                                 "upstream request timeout"));
  EXPECT_EQ(counter("downstream_rq_timeout"), 1u);
  EXPECT_EQ(counter("downstream_rq_5xx"), 1u);
  send(get("/ping"));
  EXPECT_EQ(read().substr(0, 17), "HTTP/1.1 200 OK\r\n");
}

TEST_F(HttpConnectionManagerTest, ClientHangingUpCancelsThePendingPoolRequest) {
  start();

  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);

  // The client goes away while the pool looks for a connection: the pool request is
  // cancelled, and the stream counted as reset by the client.
  connection_->remoteClose();
  EXPECT_TRUE(backend().requests[0]->cancelled);
  EXPECT_EQ(counter("downstream_rq_rx_reset"), 1u);
  EXPECT_EQ(counter("downstream_cx_destroy_active_rq"), 1u);
  EXPECT_EQ(gauge("downstream_rq_active"), 0);
}

TEST_F(HttpConnectionManagerTest, UnknownClusterIs503) {
  // The route names "backend"; this cluster manager has none.
  cluster_manager_.clusters.clear();
  start();

  send(get("/service/1"));
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 503 Service Unavailable\r\nserver: envoy\r\n", kDate,
                                 "content-length: 0\r\n\r\n"));
  EXPECT_EQ(counter("no_cluster"), 1u);
  EXPECT_EQ(counter("downstream_rq_5xx"), 1u);
}

TEST_F(HttpConnectionManagerTest, ExpectContinueIsAnsweredBeforeTheBody) {
  start();

  // A POST that waits for "100 Continue" before sending its body: the manager answers it
  // itself, and the upstream never sees the Expect header.
  send(
      "POST /service/1 HTTP/1.1\r\nhost: example.com\r\ncontent-length: 4\r\n"
      "expect: 100-continue\r\n\r\n");
  EXPECT_EQ(read(), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  EXPECT_FALSE(upstream.headers.has(Http::Headers::Expect));
  EXPECT_FALSE(upstream.headers_end_stream);

  // The body follows and goes upstream as it comes.
  send("data");
  EXPECT_EQ(upstream.body, "data");
  EXPECT_TRUE(upstream.body_end_stream);
}

TEST_F(HttpConnectionManagerTest, RequestBodyBeyondTheBufferLimitWaitsForThePool) {
  start("", /*buffer_limit=*/64);

  // A 200-byte upload, of which 100 bytes arrive before the pool has a connection: they are
  // held, and being over the 64-byte limit they stop reading from the client.
  send(
      absl::StrCat("POST /service/upload HTTP/1.1\r\nhost: example.com\r\n"
                   "content-length: 200\r\n\r\n",
                   std::string(100, 'a')));
  ASSERT_EQ(backend().requests.size(), 1u);
  EXPECT_FALSE(connection_->readEnabled());
  EXPECT_EQ(counter("downstream_flow_control_paused_reading_total"), 1u);

  // The rest arrives meanwhile and waits in the connection.
  send(std::string(100, 'b'));
  EXPECT_EQ(connection_->unreadBytes(), 100u);

  // The pool is ready: headers and the held body go upstream, reading resumes, and the rest
  // of the body follows, ending the request.
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  EXPECT_FALSE(upstream.headers_end_stream);
  EXPECT_EQ(counter("downstream_flow_control_resumed_reading_total"), 1u);
  dispatcher_.runUntilIdle();
  EXPECT_EQ(upstream.body, absl::StrCat(std::string(100, 'a'), std::string(100, 'b')));
  EXPECT_TRUE(upstream.body_end_stream);
  EXPECT_TRUE(connection_->readEnabled());
}

TEST_F(HttpConnectionManagerTest, PoolFailureIs503WithEnvoysBody) {
  start();

  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);

  // The pool cannot connect: Envoy's 503 and body; the client connection stays usable.
  backend().requests[0]->pool_callbacks.onPoolFailure(
      Upstream::PoolFailureReason::ConnectionFailure, "upstream_connect_failure", backend().host());
  const std::string body =
      "upstream connect error or disconnect/reset before headers. reset reason: remote "
      "connection failure";
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                                 "content-length: ",
                                 body.size(), "\r\nserver: envoy\r\n", kDate, "\r\n", body));
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
  EXPECT_EQ(counter("downstream_rq_5xx"), 1u);
}

TEST_F(HttpConnectionManagerTest, UpstreamResetBeforeTheResponseIs503) {
  start();

  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  ASSERT_NE(upstream.stream_callbacks, nullptr);

  // The upstream connection drops before any response byte.
  upstream.stream_callbacks->onResetStream(Http::StreamResetReason::ConnectionTermination);
  const std::string body =
      "upstream connect error or disconnect/reset before headers. reset reason: connection "
      "termination";
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                                 "content-length: ",
                                 body.size(), "\r\nserver: envoy\r\n", kDate, "\r\n", body));
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
}

TEST_F(HttpConnectionManagerTest, UpstreamResetMidResponseCutsTheClientConnection) {
  start();

  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());

  // Headers and half the body have gone to the client when the upstream connection drops:
  // on HTTP/1 the only way to say so is to close the client's connection.
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->setStatus(200);
  headers->addCopy(Http::Headers::ContentLength, "10");
  upstream.decoder.decodeHeaders(std::move(headers), /*end_stream=*/false);
  Buffer::Instance half;
  half.add("01234");
  upstream.decoder.decodeData(half, /*end_stream=*/false);
  upstream.stream_callbacks->onResetStream(Http::StreamResetReason::ConnectionTermination);
  dispatcher_.runUntilIdle();
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n"
                                 "x-envoy-upstream-service-time: 0\r\nserver: envoy\r\n",
                                 kDate, "\r\n01234"));
  EXPECT_TRUE(closed());
}

TEST_F(HttpConnectionManagerTest, ResponseBeforeTheWholeRequestClosesTheConnection) {
  start();

  // A direct response to a POST whose body has not all arrived: the rest cannot be skipped
  // reliably, so the response says "connection: close" and the connection closes.
  send("POST /ping HTTP/1.1\r\nhost: example.com\r\ncontent-length: 10\r\n\r\n01234");
  EXPECT_EQ(read(), pong("connection: close\r\n"));
  EXPECT_TRUE(closed());

  // Upstream, the same: the upstream answering early also loses its stream (it is not
  // reusable with a half-sent body).
  start();
  send("POST /service/1 HTTP/1.1\r\nhost: example.com\r\ncontent-length: 10\r\n\r\n01234");
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  EXPECT_EQ(upstream.body, "01234");
  upstream.respond(413, "");
  dispatcher_.runUntilIdle();
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n"
                                 "x-envoy-upstream-service-time: 0\r\nserver: envoy\r\n",
                                 kDate, "connection: close\r\n\r\n"));
  EXPECT_TRUE(upstream.reset);
  EXPECT_TRUE(closed());
}

TEST_F(HttpConnectionManagerTest, ClientHangingUpMidResponseResetsTheUpstream) {
  start();

  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->setStatus(200);
  upstream.decoder.decodeHeaders(std::move(headers), /*end_stream=*/false);

  // The client leaves while the response streams: the upstream stream is reset.
  connection_->remoteClose();
  EXPECT_TRUE(upstream.reset);
  EXPECT_EQ(counter("downstream_rq_rx_reset"), 1u);
  EXPECT_EQ(counter("downstream_cx_destroy_active_rq"), 1u);
}

TEST_F(HttpConnectionManagerTest, IdleTimeoutClosesOnlyAnIdleConnection) {
  start("common_http_protocol_options: {idle_timeout: 10s}\n");

  // A request in flight for 9 s, then answered: the idle time starts over from there.
  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(9));
  upstream.respond(200, "ok");
  dispatcher_.runUntilIdle();
  read();
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(9));
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);

  // 10 s without a request: closed, and counted.
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(1));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_idle_timeout"), 1u);
}

TEST_F(HttpConnectionManagerTest, BytesThatStartNoRequestDoNotStopTheIdleTimeout) {
  start("common_http_protocol_options: {idle_timeout: 10s}\n");

  // An empty line is not a request (the codec skips it): the connection is still idle, and
  // 10 s later it is closed as Envoy would (its idle timer stops only when a stream begins).
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(5));
  send("\r\n");
  EXPECT_EQ(counter("downstream_rq_total"), 0u);
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(5));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_idle_timeout"), 1u);
}

TEST_F(HttpConnectionManagerTest, HeadToADirectResponseHasItsLengthButNoBody) {
  start();

  // HEAD /ping: the headers GET would get (content-length included), no body; the
  // connection stays usable for the next request.
  send("HEAD /ping HTTP/1.1\r\nhost: example.com\r\n\r\n");
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                                 "content-length: 4\r\nx-route: ping\r\nserver: envoy\r\n",
                                 kDate, "\r\n"));
  send(get("/ping"));
  EXPECT_EQ(read(), pong());
}

TEST_F(HttpConnectionManagerTest, MalformedBodyMidUpstreamRequestIs400AndResetsTheUpstream) {
  start();

  // A chunked upload: the first chunk goes upstream...
  send(
      "POST /service/1 HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n"
      "4\r\nabcd\r\n");
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  EXPECT_EQ(upstream.body, "abcd");

  // ...then a chunk size that is not hex: the client gets the codec's 400 and the connection
  // closes; the upstream request is abandoned.
  send("zz\r\n");
  EXPECT_TRUE(upstream.reset);
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n"
                                 "content-length: 11\r\nserver: envoy\r\n",
                                 kDate, "connection: close\r\n\r\nBad Request"));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 1u);
  EXPECT_EQ(gauge("downstream_rq_active"), 0);
}

TEST_F(HttpConnectionManagerTest, ProtocolErrorAfterTheResponseStartedCutsTheConnection) {
  start();

  send(
      "POST /service/1 HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n"
      "4\r\nabcd\r\n");
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  // The upstream starts answering while the upload goes on: the response says "connection:
  // close", since it began before the request ended.
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->setStatus(200);
  upstream.decoder.decodeHeaders(std::move(headers), /*end_stream=*/false);
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 200 OK\r\nx-envoy-upstream-service-time: 0\r\n"
                                 "server: envoy\r\n",
                                 kDate, "transfer-encoding: chunked\r\nconnection: close\r\n\r\n"));

  // Then a malformed chunk: with the response under way, a protocol error can only end the
  // connection, at once.
  send("zz\r\n");
  EXPECT_TRUE(closed());
  EXPECT_EQ(read(), "");
  EXPECT_TRUE(upstream.reset);
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 1u);
  EXPECT_EQ(gauge("downstream_rq_active"), 0);
}

}  // namespace
}  // namespace Proxy::Filters
