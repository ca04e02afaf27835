// The HTTP connection manager (proxy/filters/http_connection_manager.cc) driven without sockets:
// its config is built from an HttpConnectionManager YAML by HcmConfig::create, as the listener
// builds it (static route_config); the downstream connection is a FakeConnection on a
// SimulatedDispatcher, so every byte written to the client and every timer is the test's to
// see. The router's upstream leg reaches a fake cluster manager whose one cluster hands out
// FakeUpstreamRequests at the HttpConnPool seam (the real pool needs sockets: it is covered by
// test/unit/upstream/http_conn_pool_impl_test.cc and the integration tests).
//
// This file: local replies, path normalisation, pipelining, drain and flow control.

#include "test/unit/filters/http_connection_manager_test_fixture.h"

namespace Proxy::Filters {
namespace {

// ---- Local replies: direct responses, 404, protocol errors ---------------------------------

TEST_F(HttpConnectionManagerTest, DirectResponseRouteIsAnsweredOnTheConnection) {
  start();

  // GET /ping matches the direct_response route: its status, its body as text/plain, the
  // route's response header, then Server and Date. The connection stays open.
  send(get("/ping"));
  EXPECT_EQ(read(), pong());
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
  EXPECT_TRUE(connection_->readEnabled());

  // Counted as Envoy does.
  EXPECT_EQ(counter("downstream_rq_total"), 1u);
  EXPECT_EQ(counter("downstream_rq_http1_total"), 1u);
  EXPECT_EQ(counter("downstream_rq_2xx"), 1u);
  EXPECT_EQ(counter("downstream_rq_completed"), 1u);
  EXPECT_EQ(counter("rq_direct_response"), 1u);
  EXPECT_EQ(gauge("downstream_rq_active"), 0);
  EXPECT_EQ(counter("downstream_cx_rx_bytes_total"), get("/ping").size());
  EXPECT_EQ(counter("downstream_cx_tx_bytes_total"), pong().size());
  // Nothing went upstream.
  EXPECT_TRUE(backend().requests.empty());
}

TEST_F(HttpConnectionManagerTest, NoRouteIs404WithEnvoysEmptyBody) {
  start();

  // /nowhere matches no route: Envoy's 404 has no body (route_not_found, flag NR).
  send(get("/nowhere"));
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 404 Not Found\r\nserver: envoy\r\n", kDate,
                                 "content-length: 0\r\n\r\n"));
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
  EXPECT_EQ(counter("no_route"), 1u);
  EXPECT_EQ(counter("downstream_rq_4xx"), 1u);

  // The connection still serves the next request.
  send(get("/ping"));
  EXPECT_EQ(read(), pong());
}

TEST_F(HttpConnectionManagerTest, MalformedRequestIs400AndCloses) {
  start();

  // A space inside the request target: the codec cannot parse it. The answer carries the
  // reason phrase as its body and "connection: close"; the connection closes once it is read.
  send("GET /a b HTTP/1.1\r\nhost: example.com\r\n\r\n");
  EXPECT_EQ(connection_->state(), Network::Connection::State::Closing);
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n"
                                 "content-length: 11\r\nserver: envoy\r\n",
                                 kDate, "connection: close\r\n\r\nBad Request"));
  EXPECT_TRUE(closed());
  EXPECT_EQ(connection_->events(),
            std::vector<Network::ConnectionEvent>{Network::ConnectionEvent::LocalClose});
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 1u);
  EXPECT_EQ(counter("downstream_rq_4xx"), 1u);
  EXPECT_EQ(counter("downstream_cx_destroy_local"), 1u);
}

TEST_F(HttpConnectionManagerTest, Http10Is426UnlessAccepted) {
  start();

  // By default HTTP/1.0 is refused with 426 (answered as HTTP/1.1, the version to upgrade
  // to), a protocol error, and the connection closes.
  send("GET /ping HTTP/1.0\r\nhost: example.com\r\n\r\n");
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 426 Upgrade Required\r\ncontent-type: text/plain\r\n"
                                 "content-length: 16\r\nserver: envoy\r\n",
                                 kDate, "connection: close\r\n\r\nUpgrade Required"));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 1u);
}

TEST_F(HttpConnectionManagerTest, AcceptedHttp10IsAnsweredAsHttp10) {
  start(
      R"(http_protocol_options: {accept_http_10: true, default_host_for_http_10: "default.example"})"
      "\n");

  // Accepted, without Host: routed with the default host and answered in HTTP/1.0; without
  // keep-alive the connection closes after the response.
  send("GET /ping HTTP/1.0\r\n\r\n");
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n"
                                 "content-length: 4\r\nx-route: ping\r\nserver: envoy\r\n",
                                 kDate, "connection: close\r\n\r\npong"));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 0u);
  EXPECT_EQ(counter("downstream_rq_2xx"), 1u);
}

// ---- Path normalisation --------------------------------------------------------------------

TEST_F(HttpConnectionManagerTest, NormalisedPathIsWhatTheRouteTableSees) {
  start("normalize_path: true\nmerge_slashes: true\n");

  // /public/../admin and //admin are /admin to the route table: the 403 rule holds.
  for (const char* bypass : {"/public/../admin/secret", "//admin/secret", "/%61dmin/secret"}) {
    send(get(bypass));
    EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n"
                                   "content-length: 6\r\nserver: envoy\r\n",
                                   kDate, "\r\ndenied"))
        << bypass;
  }
  EXPECT_EQ(counter("downstream_rq_4xx"), 3u);
}

TEST_F(HttpConnectionManagerTest, EscapedSlashesAreRejectedWith400AndClose) {
  start("path_with_escaped_slashes_action: REJECT_REQUEST\n");

  // REJECT_REQUEST: 400 with an empty body, and the connection closes (as Envoy does).
  send(get("/public%2F..%2Fadmin/secret"));
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 400 Bad Request\r\nserver: envoy\r\n", kDate,
                                 "content-length: 0\r\nconnection: close\r\n\r\n"));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_rq_failed_path_normalization"), 1u);
  // Not a protocol error: the request was well-formed.
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 0u);
}

TEST_F(HttpConnectionManagerTest, EscapedSlashesAreRedirectedTo307AndTheConnectionStays) {
  start(
      "normalize_path: true\nmerge_slashes: true\n"
      "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT\n");

  // UNESCAPE_AND_REDIRECT: a 307 to the unescaped, normalised path, query untouched.
  send(get("/public%2f..%2fadmin/secret?a=%2F"));
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 307 Temporary Redirect\r\n"
                                 "location: /admin/secret?a=%2F\r\ncontent-length: 0\r\n"
                                 "server: envoy\r\n",
                                 kDate, "\r\n"));
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
  EXPECT_EQ(counter("downstream_rq_redirected_with_normalized_path"), 1u);
  EXPECT_EQ(counter("downstream_rq_3xx"), 1u);

  // Following it on the same connection lands on the rule.
  send(get("/admin/secret?a=%2F"));
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n"
                                 "content-length: 6\r\nserver: envoy\r\n",
                                 kDate, "\r\ndenied"));
}

// ---- Pipelining, connection: close, stats ------------------------------------------------

TEST_F(HttpConnectionManagerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();

  // Two requests in one read: both answered, in order, in one go (both are direct).
  send(absl::StrCat(get("/ping"), get("/nowhere")));
  EXPECT_EQ(read(), absl::StrCat(pong(), "HTTP/1.1 404 Not Found\r\nserver: envoy\r\n", kDate,
                                 "content-length: 0\r\n\r\n"));
  EXPECT_EQ(counter("downstream_rq_total"), 2u);
  EXPECT_EQ(counter("downstream_rq_2xx"), 1u);
  EXPECT_EQ(counter("downstream_rq_4xx"), 1u);
  EXPECT_EQ(connection_->unreadBytes(), 0u);
}

TEST_F(HttpConnectionManagerTest, PipelinedRequestWaitsForTheUpstreamResponseBeforeIt) {
  start();

  // The first request goes upstream; the second one, in the same read, waits in the
  // connection's buffer with reading disabled: nothing of it is parsed yet.
  send(absl::StrCat(get("/service/1"), get("/ping")));
  ASSERT_EQ(backend().requests.size(), 1u);
  EXPECT_EQ(connection_->unreadBytes(), get("/ping").size());
  EXPECT_FALSE(connection_->readEnabled());
  EXPECT_EQ(counter("downstream_rq_total"), 1u);
  EXPECT_EQ(read(), "");

  // The upstream answers the first: its response goes out, then the second is answered.
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  upstream.respond(200, "one");
  dispatcher_.runUntilIdle();
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n"
                                 "x-envoy-upstream-service-time: 0\r\nserver: envoy\r\n",
                                 kDate, "\r\none", pong()));
  EXPECT_EQ(counter("downstream_rq_total"), 2u);
  EXPECT_EQ(counter("downstream_rq_2xx"), 2u);
  EXPECT_TRUE(connection_->readEnabled());
  EXPECT_EQ(connection_->unreadBytes(), 0u);
}

TEST_F(HttpConnectionManagerTest, ConnectionCloseIsHonoured) {
  start();

  // The client asks to close: the response says so, and a request pipelined behind it is
  // never answered.
  send(absl::StrCat(get("/ping", "connection: close\r\n"), get("/ping")));
  EXPECT_EQ(read(), pong("connection: close\r\n"));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_rq_total"), 1u);
  EXPECT_EQ(counter("downstream_cx_destroy_local"), 1u);
}

TEST_F(HttpConnectionManagerTest, DownstreamStatsCountEachOutcome) {
  start();

  // A 200, a 403, a 404 on one connection; then a protocol error on a second one.
  send(get("/ping"));
  send(get("/admin"));
  send(get("/nowhere"));
  read();
  EXPECT_EQ(counter("downstream_cx_total"), 1u);
  EXPECT_EQ(gauge("downstream_cx_active"), 1);
  EXPECT_EQ(counter("downstream_rq_total"), 3u);
  EXPECT_EQ(counter("downstream_rq_completed"), 3u);
  EXPECT_EQ(counter("downstream_rq_2xx"), 1u);
  EXPECT_EQ(counter("downstream_rq_4xx"), 2u);
  EXPECT_EQ(counter("downstream_rq_5xx"), 0u);
  EXPECT_EQ(counter("rq_direct_response"), 2u);
  EXPECT_EQ(counter("no_route"), 1u);
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 0u);

  // The client hangs up; the manager goes with the connection.
  connection_->remoteClose();
  EXPECT_EQ(counter("downstream_cx_destroy_remote"), 1u);
  filter_.reset();
  EXPECT_EQ(gauge("downstream_cx_active"), 0);
  EXPECT_EQ(counter("downstream_cx_destroy"), 1u);

  // A second connection sends garbage: a protocol error, answered 400.
  start();
  send("NOT HTTP\r\n\r\n");
  EXPECT_EQ(counter("downstream_cx_total"), 2u);
  EXPECT_EQ(counter("downstream_cx_protocol_error"), 1u);
  EXPECT_EQ(read().substr(0, 25), "HTTP/1.1 400 Bad Request\r");
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_rq_4xx"), 3u);
}

// ---- Drain ---------------------------------------------------------------------------------

TEST_F(HttpConnectionManagerTest, DrainClosesAnIdleConnection) {
  start();
  send(get("/ping"));
  EXPECT_EQ(read(), pong());

  // Draining with no request in flight closes now.
  filter_->startDrain(std::chrono::milliseconds(0));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_drain_close"), 1u);
}

TEST_F(HttpConnectionManagerTest, DrainWithSpreadStartsWithinTheSpread) {
  start();

  // With a spread the connection picks its moment within it: open before, closed by the end.
  filter_->startDrain(std::chrono::milliseconds(1000));
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1000));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_drain_close"), 1u);
}

TEST_F(HttpConnectionManagerTest, DrainAddsConnectionCloseToTheResponseInFlight) {
  start();

  // A request is with the upstream when draining starts: it is not cut short.
  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);
  filter_->startDrain(std::chrono::milliseconds(0));
  EXPECT_EQ(connection_->state(), Network::Connection::State::Open);

  // Its response carries "connection: close", and the connection closes after it.
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  upstream.respond(200, "ok");
  dispatcher_.runUntilIdle();
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                                 "x-envoy-upstream-service-time: 0\r\nserver: envoy\r\n",
                                 kDate, "connection: close\r\n\r\nok"));
  EXPECT_TRUE(closed());
  EXPECT_EQ(counter("downstream_cx_drain_close"), 1u);
}

// ---- Flow control --------------------------------------------------------------------------

TEST_F(HttpConnectionManagerTest, WriteBufferAboveHighWatermarkPausesReadingUntilLow) {
  // A 64-byte buffer limit: one pong the client has not read puts the write buffer above the
  // high watermark.
  start("", /*buffer_limit=*/64);

  // Two pipelined pings, the client reading nothing: the first is answered, the second waits
  // (reading paused) until the client has read.
  send(absl::StrCat(get("/ping"), get("/ping")));
  EXPECT_EQ(connection_->pendingWriteBytes(), pong().size());
  EXPECT_FALSE(connection_->readEnabled());
  EXPECT_EQ(connection_->unreadBytes(), get("/ping").size());
  EXPECT_EQ(counter("downstream_rq_total"), 1u);
  EXPECT_EQ(counter("downstream_flow_control_paused_reading_total"), 1u);
  EXPECT_EQ(counter("downstream_flow_control_resumed_reading_total"), 0u);

  // The client reads: below the low watermark, reading resumes and the second is answered.
  EXPECT_EQ(read(), pong());
  EXPECT_EQ(counter("downstream_flow_control_resumed_reading_total"), 1u);
  EXPECT_EQ(counter("downstream_rq_total"), 2u);
  EXPECT_EQ(read(), pong());
  EXPECT_EQ(counter("downstream_flow_control_paused_reading_total"), 2u);
  EXPECT_EQ(connection_->unreadBytes(), 0u);
}

TEST_F(HttpConnectionManagerTest, SlowClientStopsReadingTheUpstreamResponse) {
  start("", /*buffer_limit=*/64);

  // A proxied request whose response the client does not read.
  send(get("/service/1"));
  ASSERT_EQ(backend().requests.size(), 1u);
  FakeUpstreamRequest& upstream = *backend().requests[0];
  upstream.ready(backend().host());
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->setStatus(200);
  headers->addCopy(Http::Headers::ContentLength, "200");
  upstream.decoder.decodeHeaders(std::move(headers), /*end_stream=*/false);
  Buffer::Instance body;
  body.add(std::string(100, 'x'));
  upstream.decoder.decodeData(body, /*end_stream=*/false);

  // Above the high watermark: the router stops reading the upstream.
  EXPECT_EQ(upstream.read_disable_count, 1);

  // The client reads: below the low watermark, the upstream is read again.
  read();
  EXPECT_EQ(upstream.read_disable_count, 0);
  body.add(std::string(100, 'y'));
  upstream.decoder.decodeData(body, /*end_stream=*/true);
  EXPECT_EQ(read(), std::string(100, 'y'));
  EXPECT_EQ(counter("downstream_rq_2xx"), 1u);
}

}  // namespace
}  // namespace Proxy::Filters
