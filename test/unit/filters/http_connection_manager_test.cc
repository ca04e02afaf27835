// The HTTP connection manager (proxy/filters/http_connection_manager.cc) driven without sockets:
// its config is built from an HttpConnectionManager YAML by HcmConfig::create, as the listener
// builds it (static route_config); the downstream connection is a FakeConnection on a
// SimulatedDispatcher, so every byte written to the client and every timer is the test's to
// see. The router's upstream leg reaches a fake cluster manager whose one cluster hands out
// FakeUpstreamRequests at the HttpConnPool seam (the real pool needs sockets: it is covered by
// test/unit/upstream/http_conn_pool_impl_test.cc and the integration tests).
//
// Over ~600 lines on purpose: one concept, the connection manager's behaviour seen from its
// connection; every test shares the fixture (config, fake connection, fake pool) at the top.

#include "proxy/filters/http_connection_manager.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gtest/gtest.h"
#include "proxy/config/message_util.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "test/unit/http/codec_test_util.h"
#include "test/unit/network/fake_connection.h"
#include "test/unit/upstream/upstream_test_util.h"
#include "test/unit/xds_client/simulated_dispatcher.h"

namespace Proxy::Filters {
namespace {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

// The Date header of every response: the simulated clock starts one hour after the epoch and
// only moves when a test advances it.
constexpr char kDate[] = "date: Thu, 01 Jan 1970 01:00:00 GMT\r\n";

// The route table every test runs against (plus the fields a test adds to the HCM).
constexpr char kRoutes[] = R"(
route_config:
  name: local
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - match: {path: "/ping"}
      direct_response: {status: 200, body: {inline_string: "pong"}}
      response_headers_to_add: [{header: {key: x-route, value: ping}}]
    - match: {prefix: "/admin"}
      direct_response: {status: 403, body: {inline_string: "denied"}}
    - match: {prefix: "/service"}
      route: {cluster: backend}
http_filters:
- name: envoy.filters.http.router
  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)";

std::string get(const std::string& path, const std::string& extra_headers = "") {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nhost: example.com\r\n", extra_headers, "\r\n");
}

// The proxy's answer to GET /ping, as written to the client.
std::string pong(const std::string& connection_header = "") {
  return absl::StrCat(
      "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nx-route: ping\r\n"
      "server: envoy\r\n",
      kDate, connection_header, "\r\npong");
}

// ---- The upstream seam: a cluster manager with one cluster, "backend", whose pool hands out
// FakeUpstreamRequests. -----------------------------------------------------------------------

// One request the router made of the pool: what it sent upstream, and the handles the test
// answers it through (`pool_callbacks` until ready(), then `decoder`).
struct FakeUpstreamRequest : public Upstream::Cancellable,
                             public Http::RequestEncoder,
                             public Http::Stream {
  FakeUpstreamRequest(Http::ResponseDecoder& decoder, Upstream::HttpPoolCallbacks& callbacks)
      : decoder(decoder), pool_callbacks(callbacks) {}

  // The pool found a connection: the router sends the request now.
  void ready(const Upstream::HostConstSharedPtr& host) { pool_callbacks.onPoolReady(*this, host); }
  // The upstream answers.
  void respond(uint32_t status, std::string_view body) {
    auto headers = std::make_unique<Http::ResponseHeaderMap>();
    headers->setStatus(status);
    headers->addCopy(Http::Headers::ContentLength, std::to_string(body.size()));
    decoder.decodeHeaders(std::move(headers), /*end_stream=*/body.empty());
    if (!body.empty()) {
      Buffer::Instance data;
      data.add(body);
      decoder.decodeData(data, /*end_stream=*/true);
    }
  }

  // Upstream::Cancellable
  void cancel() override { cancelled = true; }
  // Http::RequestEncoder
  void encodeHeaders(const Http::RequestHeaderMap& sent, bool end_stream) override {
    headers = sent;
    headers_end_stream = end_stream;
  }
  void encodeData(Buffer::Instance& data, bool end_stream) override {
    body += data.toString();
    data.drain(data.length());
    body_end_stream = end_stream;
  }
  Http::Stream& getStream() override { return *this; }
  // Http::Stream
  void addCallbacks(Http::StreamCallbacks& added) override { stream_callbacks = &added; }
  void removeCallbacks(Http::StreamCallbacks& removed) override {
    if (stream_callbacks == &removed) {
      stream_callbacks = nullptr;
    }
  }
  void resetStream(Http::StreamResetReason) override { reset = true; }
  void readDisable(bool disable) override { read_disable_count += disable ? 1 : -1; }

  Http::ResponseDecoder& decoder;
  Upstream::HttpPoolCallbacks& pool_callbacks;
  Http::StreamCallbacks* stream_callbacks = nullptr;
  Http::RequestHeaderMap headers;
  bool headers_end_stream = false;
  std::string body;
  bool body_end_stream = false;
  bool cancelled = false;
  bool reset = false;
  int read_disable_count = 0;  // > 0: the router stopped reading the upstream response
};

class FakeCluster : public Upstream::ThreadLocalCluster,
                    public Upstream::LoadBalancer,
                    public Upstream::HttpConnPool {
 public:
  FakeCluster(Upstream::ClusterInfoConstSharedPtr info, Upstream::HostConstSharedPtr host)
      : info_(std::move(info)), host_(std::move(host)), host_set_(Upstream::makeHostSet({host_})) {}

  // Upstream::ThreadLocalCluster
  const Upstream::ClusterInfoConstSharedPtr& info() const override { return info_; }
  const Upstream::HostSetConstSharedPtr& hostSet() const override { return host_set_; }
  Upstream::LoadBalancer& loadBalancer() override { return *this; }
  Upstream::HttpConnPool* httpConnPool(const Upstream::HostConstSharedPtr&) override {
    return this;
  }
  Network::ClientConnectionPtr tcpConnection(const Upstream::HostConstSharedPtr&) override {
    return nullptr;
  }
  // Upstream::LoadBalancer
  Upstream::HostConstSharedPtr chooseHost() override { return host_; }
  // Upstream::HttpConnPool: every request waits for the test's ready().
  Upstream::Cancellable* newStream(Http::ResponseDecoder& decoder,
                                   Upstream::HttpPoolCallbacks& callbacks) override {
    requests.push_back(std::make_unique<FakeUpstreamRequest>(decoder, callbacks));
    return requests.back().get();
  }
  bool hasActiveConnections() const override { return false; }
  void drainConnections() override {}

  const Upstream::HostConstSharedPtr& host() const { return host_; }
  std::vector<std::unique_ptr<FakeUpstreamRequest>> requests;

 private:
  Upstream::ClusterInfoConstSharedPtr info_;
  Upstream::HostConstSharedPtr host_;
  Upstream::HostSetConstSharedPtr host_set_;
};

class FakeClusterManager : public Upstream::ClusterManager {
 public:
  Upstream::ThreadLocalCluster* getThreadLocalCluster(std::string_view name) override {
    auto it = clusters.find(std::string(name));
    return it == clusters.end() ? nullptr : it->second.get();
  }
  std::map<std::string, std::unique_ptr<FakeCluster>> clusters;
};

// ---- The fixture ---------------------------------------------------------------------------

class HttpConnectionManagerTest : public testing::Test {
 protected:
  HttpConnectionManagerTest() {
    envoy::config::cluster::v3::Cluster cluster;
    const absl::Status loaded = Config::loadFromYaml(R"(
name: backend
type: STATIC
connect_timeout: 1s
)",
                                                     cluster);
    EXPECT_TRUE(loaded.ok()) << loaded;
    absl::StatusOr<Upstream::ClusterInfoImplConstSharedPtr> info =
        Upstream::ClusterInfoImpl::create(cluster, store_);
    EXPECT_TRUE(info.ok()) << info.status();
    cluster_manager_.clusters["backend"] =
        std::make_unique<FakeCluster>(*info, Upstream::makeHost(/*port=*/8080));
  }
  ~HttpConnectionManagerTest() override {
    // As the connection handler does: the filter first (it unregisters from the connection),
    // then the connection; streams the manager let go of are deferred deletions.
    filter_.reset();
    connection_.reset();
    dispatcher_.clearDeferredDeleteList();
  }

  // Builds the HCM from `hcm_fields` (YAML lines of HttpConnectionManager) plus kRoutes, and
  // a connection accepted with `buffer_limit` (the listener's per_connection_buffer_limit).
  void start(const std::string& hcm_fields = "", uint32_t buffer_limit = 1024 * 1024) {
    HttpConnectionManager proto;
    const absl::Status loaded = Config::loadFromYaml(
        absl::StrCat("stat_prefix: ingress_http\n", hcm_fields, kRoutes), proto);
    ASSERT_TRUE(loaded.ok()) << loaded;
    absl::StatusOr<HcmConfigConstSharedPtr> config =
        HcmConfig::create(proto, store_, /*rds=*/nullptr);
    ASSERT_TRUE(config.ok()) << config.status();
    // A second start() in one test is a new connection: the previous one goes first.
    filter_.reset();
    connection_.reset();
    dispatcher_.clearDeferredDeleteList();
    connection_ = std::make_unique<Network::FakeConnection>(
        dispatcher_, *Network::Address::fromIpPort("10.0.0.7", 40000),
        *Network::Address::fromIpPort("127.0.0.1", 10000));
    connection_->setBufferLimits(buffer_limit);
    filter_ = createHttpConnectionManager(*config, HcmContext{cluster_manager_, buffer_limit},
                                          *connection_);
    connection_->setReadFilter(filter_.get());
  }

  // The client sends `bytes`; the event loop then runs until it has nothing left to do.
  void send(std::string_view bytes) {
    connection_->send(bytes);
    dispatcher_.runUntilIdle();
  }
  // The client reads everything the proxy wrote so far (and the loop runs what that unblocks).
  std::string read() {
    std::string out = connection_->take();
    dispatcher_.runUntilIdle();
    return out;
  }

  uint64_t counter(const std::string& name) {
    return store_.counter(absl::StrCat("http.ingress_http.", name)).value();
  }
  int64_t gauge(const std::string& name) {
    return store_.gauge(absl::StrCat("http.ingress_http.", name)).value();
  }
  bool closed() const { return connection_->state() == Network::Connection::State::Closed; }
  FakeCluster& backend() { return *cluster_manager_.clusters["backend"]; }

  ::Proxy::Test::SimulatedDispatcher dispatcher_;
  Stats::Store store_;
  FakeClusterManager cluster_manager_;
  std::unique_ptr<Network::FakeConnection> connection_;
  NetworkFilterPtr filter_;
};

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
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nserver: envoy\r\n",
                                 kDate, "\r\n"));
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
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"
                                 "server: envoy\r\n",
                                 kDate, "connection: close\r\n\r\n"));
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
  EXPECT_EQ(read(), absl::StrCat(pong(), "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n",
                                 "server: envoy\r\n", kDate, "\r\n"));
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
  EXPECT_EQ(read(), absl::StrCat("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                                 "server: envoy\r\n",
                                 kDate, "\r\n"));
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
