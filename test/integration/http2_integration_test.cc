// Downstream HTTP/2 through the real `proxy` binary to an HTTP/1.1 FakeUpstream: curl and nghttp
// as real clients, nghttp2's own client session on a socket for streams with flow control, and
// hand-made frames for the abuse cases (rapid reset, empty-frame flood, oversized headers, DATA
// after END_STREAM). codec_type AUTO throughout, so HTTP/1.1 shares the listener.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "test/integration/body_pattern.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http2_test_client.h"
#include "test/integration/proxy_integration_test_fixture.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Proxy::Test::Http2Headers;
using Proxy::Test::Http2TestClient;

// `length` bytes of the body pattern from offset 0.
std::string patternString(uint64_t length) {
  std::string out(length, '\0');
  fillPattern(0, out.data(), out.size());
  return out;
}

// Http2TestClient on a TCP connection: pump() writes what the client wants to send and feeds it
// what the proxy sent, until a condition holds or the deadline passes.
class Http2Connection {
 public:
  // `rcvbuf` > 0: the socket's receive buffer (SO_RCVBUF), for a peer that never reads.
  Http2Connection(uint32_t port, uint32_t window = 65535, bool manual_window = false,
                  int rcvbuf = 0)
      : client_(window, manual_window) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Http2Connection() { ::close(fd_); }

  Http2TestClient& client() { return client_; }
  bool connected() const { return connected_; }
  bool closed() const { return eof_; }
  // Frames received so far, as raw frames (the client session keeps only what it understood).
  const std::string& received() const { return received_; }

  bool sendRaw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Sends `bytes` without reading anything, until all are sent, the proxy ends the connection
  // or `timeout` passes (a proxy that stops reading). The bytes sent.
  size_t sendWithoutReading(const std::string& bytes, std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    size_t off = 0;
    while (off < bytes.size() && Clock::now() < deadline) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      if ((p.revents & (POLLERR | POLLHUP)) != 0) {
        break;
      }
      const ssize_t n =
          ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    return off;
  }

  // Until `done()` or the deadline (or the proxy closes); raw mode skips the client session.
  testing::AssertionResult pump(const std::function<bool()>& done,
                                std::chrono::milliseconds timeout = 10s, bool raw = false) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!done()) {
      if (!raw) {
        const std::string out = client_.takeOutput();
        if (!out.empty() && !sendRaw(out)) {
          return testing::AssertionFailure() << "send failed";
        }
      }
      if (eof_) {
        return done() ? testing::AssertionSuccess()
                      : testing::AssertionFailure() << "connection closed";
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return testing::AssertionFailure() << "deadline";
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 50))) > 0) {
        char buf[65536];
        const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) {
          eof_ = true;
          continue;
        }
        received_.append(buf, static_cast<size_t>(n));
        if (!raw) {
          client_.feed(std::string_view(buf, static_cast<size_t>(n)));
        }
      }
    }
    return testing::AssertionSuccess();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string received_;
  Http2TestClient client_;
};

// Runs a command line to completion; its stdout.
std::string runCommand(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof(buf), pipe)) > 0) {
    out.append(buf, n);
  }
  ::pclose(pipe);
  return out;
}

class Http2IntegrationTest : public testing::Test {
 protected:
  // The proxy with codec_type AUTO in front of one FakeUpstream; `http2_options` is the
  // http2_protocol_options flow mapping, `hcm_fields` more "key: value" HttpConnectionManager
  // fields.
  void start(const std::string& http2_options = "{}",
             const std::vector<std::string>& hcm_fields = {}) {
    auto upstream = FakeUpstream::create(FakeUpstreamOptions{});
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
    BootstrapSpec spec;
    spec.hcm_fields = {"codec_type: AUTO", "http2_protocol_options: " + http2_options};
    spec.hcm_fields.insert(spec.hcm_fields.end(), hcm_fields.begin(), hcm_fields.end());
    spec.virtual_hosts = {R"({name: all, domains: ["*"], routes: [
        {match: {path: "/ping"}, direct_response: {status: 200, body: {inline_string: "pong"}}},
        {match: {prefix: "/"}, route: {cluster: up}}]})"};
    spec.clusters = {absl::StrCat(
        "{name: up, type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: up, "
        "endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, "
        "port_value: ",
        upstream_->port(), "}}}}]}]}}")};
    ProxyOptions options;
    options.bootstrap_yaml = bootstrapYaml(spec);
    proxy_ = std::make_unique<ProxyProcess>(options);
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort("ingress");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }
  int64_t stat(const std::string& name) {
    absl::StatusOr<int64_t> value = proxy_->counter(name);
    return value.ok() ? *value : -1;
  }
  std::string url(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }

  FakeUpstreamPtr upstream_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

TEST_F(Http2IntegrationTest, CurlAndNghttpWithPriorKnowledgeAndHttp1OnTheSameListener) {
  start();
  // curl with prior knowledge: the request reaches the HTTP/1.1 upstream and back.
  const std::string curl = runCommand(absl::StrCat(
      "curl -s --http2-prior-knowledge -D - -H 'x-client: curl' ", url("/hello"), " 2>&1"));
  EXPECT_NE(curl.find("HTTP/2 200"), std::string::npos) << curl;
  EXPECT_NE(curl.find("x-echo-x-client: curl"), std::string::npos) << curl;
  EXPECT_NE(curl.find("hello from upstream\npath: /hello\n"), std::string::npos) << curl;

  // nghttp, 20 concurrent streams on one connection to a direct response.
  const std::string nghttp = runCommand(absl::StrCat("nghttp -n -s -m 20 ", url("/ping"), " 2>&1"));
  std::vector<std::string> lines = absl::StrSplit(nghttp, '\n');
  int ok = 0;
  for (const std::string& line : lines) {
    ok += line.find(" 200 ") != std::string::npos && line.find("/ping") != std::string::npos;
  }
  EXPECT_EQ(ok, 20) << nghttp;

  // HTTP/1.1 on the same AUTO listener.
  absl::StatusOr<HttpResponse> h1 = httpRequest(port_, HttpRequest{});
  ASSERT_TRUE(h1.ok()) << h1.status();
  EXPECT_EQ(h1->status, 200u);

  EXPECT_TRUE(proxy_->waitForCounterGe("http.ingress_http.downstream_cx_http2_total", 2));
  EXPECT_EQ(stat("http.ingress_http.downstream_cx_http1_total"), 1);
  EXPECT_EQ(stat("http.ingress_http.downstream_rq_http2_total"), 21);
  EXPECT_EQ(stat("http.ingress_http.downstream_cx_protocol_error"), 0);
}

TEST(Http2UseDownstreamProtocolTest, EachRequestGoesUpstreamInTheProtocolItArrivedIn) {
  // The backend is a second proxy whose AUTO listener answers HTTP/1.1 and h2c alike and counts
  // which it got. The front proxy's cluster says use_downstream_protocol_config: an HTTP/1.1
  // request must reach the backend as HTTP/1.1 and an HTTP/2 one as HTTP/2, each on its own
  // pool, as Envoy's ClusterInfo::upstreamHttpProtocol decides.
  BootstrapSpec backend_spec;
  backend_spec.hcm_fields = {"codec_type: AUTO"};
  backend_spec.virtual_hosts = {
      R"({name: all, domains: ["*"], routes: [{match: {prefix: "/"}, direct_response: {status: 200, body: {inline_string: backend}}}]})"};
  ProxyOptions backend_options;
  backend_options.bootstrap_yaml = bootstrapYaml(backend_spec);
  ProxyProcess backend(backend_options);
  ASSERT_TRUE(backend.start());
  absl::StatusOr<uint32_t> backend_port = backend.listenerPort("ingress");
  ASSERT_TRUE(backend_port.ok()) << backend_port.status();

  BootstrapSpec front_spec;
  front_spec.hcm_fields = {"codec_type: AUTO"};
  front_spec.virtual_hosts = {
      R"({name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: up}}]})"};
  front_spec.clusters = {absl::StrCat(
      R"({name: up, type: STATIC, connect_timeout: 1s, typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, use_downstream_protocol_config: {http_protocol_options: {}, http2_protocol_options: {max_concurrent_streams: 50}}}}, load_assignment: {cluster_name: up, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
      *backend_port, "}}}}]}]}}")};
  ProxyOptions front_options;
  front_options.bootstrap_yaml = bootstrapYaml(front_spec);
  ProxyProcess front(front_options);
  ASSERT_TRUE(front.start());
  absl::StatusOr<uint32_t> port = front.listenerPort("ingress");
  ASSERT_TRUE(port.ok()) << port.status();

  absl::StatusOr<HttpResponse> h1 = httpRequest(*port, HttpRequest{});
  ASSERT_TRUE(h1.ok()) << h1.status();
  EXPECT_EQ(h1->status, 200u);
  EXPECT_EQ(h1->body, "backend");
  const std::string h2 = runCommand(
      absl::StrCat("curl -s --http2-prior-knowledge -D - http://127.0.0.1:", *port, "/h2 2>&1"));
  EXPECT_NE(h2.find("HTTP/2 200"), std::string::npos) << h2;
  EXPECT_NE(h2.find("backend"), std::string::npos) << h2;

  EXPECT_TRUE(backend.waitForCounterGe("http.ingress_http.downstream_cx_http2_total", 1));
  EXPECT_EQ(backend.counter("http.ingress_http.downstream_cx_http1_total").value_or(-1), 1);
  EXPECT_EQ(backend.counter("http.ingress_http.downstream_rq_http2_total").value_or(-1), 1);
  EXPECT_EQ(front.counter("cluster.up.upstream_cx_http2_total").value_or(-1), 1);
  EXPECT_EQ(front.counter("cluster.up.upstream_cx_total").value_or(-1), 2);
}

TEST_F(Http2IntegrationTest, ASlowStreamDoesNotStallTheOthersAndLargeBodiesFlowBothWays) {
  // Small windows, so flow control works during the test.
  start("{initial_stream_window_size: 65535, initial_connection_window_size: 1048576}");
  Http2Connection connection(port_, /*window=*/65535, /*manual_window=*/true);
  ASSERT_TRUE(connection.connected());
  Http2TestClient& client = connection.client();

  // Stream A downloads 4 MiB but its reader never opens its window past the first 64 KiB.
  Http2Headers slow = Http2TestClient::get("/slow");
  slow.emplace_back("x-fake-response-bytes", std::to_string(4 << 20));
  const int32_t a = client.request(slow);
  ASSERT_TRUE(connection.pump([&] { return client.result(a).body.size() >= 65535; }));

  // Meanwhile stream B uploads 3 MiB (the proxy's windows pace it) and 20 small GETs pass.
  const std::string upload = patternString(3 << 20);
  const int32_t b = client.request(Http2TestClient::post("/upload"), upload);
  std::vector<int32_t> small;
  for (int i = 0; i < 20; i++) {
    small.push_back(client.request(Http2TestClient::get(absl::StrCat("/small/", i))));
  }
  ASSERT_TRUE(connection.pump([&] {
    // The client reads what the other streams got (A stays stalled).
    client.consume(b, client.result(b).body.size());
    for (int32_t id : small) {
      client.consume(id, client.result(id).body.size());
    }
    if (!client.result(b).ended) {
      return false;
    }
    for (int32_t id : small) {
      if (!client.result(id).ended) {
        return false;
      }
    }
    return true;
  }));
  EXPECT_EQ(client.result(b).header(":status"), "200");
  EXPECT_EQ(client.result(b).header("x-request-body-bytes"), std::to_string(3 << 20));
  EXPECT_EQ(client.result(b).header("x-request-body-fnv1a"), patternDigest(3 << 20));
  EXPECT_FALSE(client.result(a).ended);
  EXPECT_EQ(client.result(a).body.size(), 65535u);

  // A's reader catches up: the whole 4 MiB arrives, intact.
  size_t consumed = 0;
  ASSERT_TRUE(connection.pump(
      [&] {
        const size_t got = client.result(a).body.size();
        client.consume(a, got - consumed);
        consumed = got;
        return client.result(a).ended;
      },
      30s));
  EXPECT_EQ(client.result(a).body.size(), static_cast<size_t>(4 << 20));
  EXPECT_EQ(client.result(a).body, patternString(4 << 20));
}

TEST_F(Http2IntegrationTest, AResetStreamLeavesTheOthersRunning) {
  start();
  Http2Connection connection(port_);
  Http2TestClient& client = connection.client();
  // A waits 5 s for its upstream; B is quick. The client resets A.
  Http2Headers delayed = Http2TestClient::get("/delayed");
  delayed.emplace_back("x-fake-delay-ms", "5000");
  const int32_t a = client.request(delayed);
  ASSERT_TRUE(connection.pump([&] { return upstream_->requestsReceived() >= 1; }));
  client.reset(a);
  const int32_t b = client.request(Http2TestClient::get("/quick"));
  ASSERT_TRUE(connection.pump([&] { return client.result(b).ended; }));
  EXPECT_EQ(client.result(b).header(":status"), "200");
  EXPECT_FALSE(client.result(a).ended);
  EXPECT_TRUE(proxy_->waitForCounterGe("http2.rx_reset", 1));
  EXPECT_TRUE(proxy_->waitForCounterGe("http.ingress_http.downstream_rq_rx_reset", 1));
  EXPECT_FALSE(connection.closed());
}

TEST_F(Http2IntegrationTest, RapidResetClosesTheConnection) {
  start();
  Http2Connection connection(port_);
  // CVE-2023-44487: 600 streams opened and reset at once, none waiting for a response (each
  // would take 5 s upstream).
  std::string burst = Http2TestClient::preface();
  for (uint32_t i = 0; i < 600; i++) {
    const uint32_t id = 1 + 2 * i;
    burst += Http2TestClient::rawFrame(
        NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id,
        Http2TestClient::hpackLiteral({{":method", "GET"},
                                       {":scheme", "http"},
                                       {":path", "/attack"},
                                       {":authority", "h"},
                                       {"x-fake-delay-ms", "5000"}}));
    burst += Http2TestClient::rawFrame(NGHTTP2_RST_STREAM, 0, id, std::string("\0\0\0\x8", 4));
  }
  ASSERT_TRUE(connection.sendRaw(burst));
  // The proxy closes the connection (Envoy's premature reset check) and counts it.
  EXPECT_TRUE(connection.pump([&] { return connection.closed(); }, 10s, /*raw=*/true));
  EXPECT_TRUE(
      proxy_->waitForCounterGe("http.ingress_http.downstream_rq_too_many_premature_resets", 1));
  // Other connections are served.
  absl::StatusOr<HttpResponse> h1 = httpRequest(port_, HttpRequest{.path = "/ping"});
  ASSERT_TRUE(h1.ok()) << h1.status();
  EXPECT_EQ(h1->status, 200u);
}

TEST_F(Http2IntegrationTest, ControlFrameFloodsFromAPeerThatNeverReadsAndContinuationFloods) {
  // Envoy's max_outbound_control_frames: a peer that sends PINGs or SETTINGS and never reads
  // makes the proxy queue their ACKs; past the limit the connection is closed and counted
  // (http2.outbound_control_flood), as Envoy 1.40 does (checked by hand with the same frames).
  start("{max_outbound_control_frames: 100}");
  for (const bool settings : {false, true}) {
    Http2Connection connection(port_, 65535, false, /*rcvbuf=*/4096);
    std::string flood = Http2TestClient::preface();
    for (uint64_t i = 0; i < 50000; i++) {
      flood += settings ? Http2TestClient::rawFrame(NGHTTP2_SETTINGS, 0, 0, "")
                        : Http2TestClient::rawFrame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
    }
    connection.sendWithoutReading(flood, 10s);
    EXPECT_TRUE(connection.pump([&] { return connection.closed(); }, 10s, /*raw=*/true))
        << (settings ? "SETTINGS" : "PING");
    EXPECT_TRUE(proxy_->waitForCounterGe("http2.outbound_control_flood", settings ? 2 : 1));
  }

  // A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames.
  // nghttp2's limit (8 CONTINUATION frames per block) ends the connection long before the
  // header list limit would (Envoy 1.40 waits for its 60 KiB list limit).
  {
    Http2Connection connection(port_);
    std::string flood =
        Http2TestClient::preface() +
        Http2TestClient::rawFrame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1,
                                  Http2TestClient::hpackLiteral({{":method", "GET"},
                                                                 {":scheme", "http"},
                                                                 {":path", "/ping"},
                                                                 {":authority", "h"}}));
    for (int i = 0; i < 5000; i++) {
      flood += Http2TestClient::rawFrame(NGHTTP2_CONTINUATION, 0, 1,
                                         Http2TestClient::hpackLiteral({{"x-a", "b"}}));
    }
    connection.sendWithoutReading(flood, 10s);
    EXPECT_TRUE(connection.pump([&] { return connection.closed(); }, 10s, /*raw=*/true));
    EXPECT_TRUE(proxy_->waitForCounterGe("http.ingress_http.downstream_cx_protocol_error", 1));
  }

  // Nothing else on the worker was affected.
  absl::StatusOr<HttpResponse> h1 = httpRequest(port_, HttpRequest{.path = "/ping"});
  ASSERT_TRUE(h1.ok()) << h1.status();
  EXPECT_EQ(h1->status, 200u);
  const std::string h2 =
      runCommand(absl::StrCat("curl -s --http2-prior-knowledge ", url("/ping"), " 2>&1"));
  EXPECT_EQ(h2, "pong");
}

TEST_F(Http2IntegrationTest, EmptyFrameFloodOversizedHeadersBadPseudoHeaderAndDataAfterEndStream) {
  start("{}", {"max_request_headers_kb: 1"});
  const Http2Headers get_h = {
      {":method", "GET"}, {":scheme", "http"}, {":path", "/ping"}, {":authority", "h"}};

  // Empty DATA frames on an open stream: the connection is closed, the counter moves.
  {
    Http2Connection connection(port_);
    ASSERT_TRUE(
        connection.sendRaw(Http2TestClient::preface() +
                           Http2TestClient::rawFrame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
                                                     Http2TestClient::hpackLiteral(get_h)) +
                           Http2TestClient::rawFrame(NGHTTP2_DATA, 0, 1, "") +
                           Http2TestClient::rawFrame(NGHTTP2_DATA, 0, 1, "")));
    EXPECT_TRUE(connection.pump([&] { return connection.closed(); }, 10s, /*raw=*/true));
    EXPECT_TRUE(proxy_->waitForCounterGe("http2.inbound_empty_frames_flood", 1));
  }

  // Headers over max_request_headers_kb (1 KiB): that stream is reset, the next one served.
  {
    Http2Connection connection(port_);
    Http2TestClient& client = connection.client();
    Http2Headers big = Http2TestClient::get("/ping");
    big.emplace_back("x-big", std::string(2000, 'a'));
    const int32_t bad = client.request(big);
    const int32_t good = client.request(Http2TestClient::get("/ping"));
    ASSERT_TRUE(connection.pump([&] { return client.result(good).ended; }));
    EXPECT_EQ(client.result(bad).reset_code, NGHTTP2_INTERNAL_ERROR);
    EXPECT_EQ(client.result(good).body, "pong");
    EXPECT_TRUE(proxy_->waitForCounterGe("http2.header_overflow", 1));
  }

  // An unknown pseudo-header: the connection is closed, as Envoy 1.40 does by default.
  {
    Http2Connection connection(port_);
    Http2Headers bad = get_h;
    bad.emplace_back(":foo", "x");
    ASSERT_TRUE(
        connection.sendRaw(Http2TestClient::preface() +
                           Http2TestClient::rawFrame(
                               NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                               1, Http2TestClient::hpackLiteral(bad))));
    EXPECT_TRUE(connection.pump([&] { return connection.closed(); }, 10s, /*raw=*/true));
    EXPECT_TRUE(proxy_->waitForCounterGe("http2.rx_messaging_error", 1));
    EXPECT_TRUE(proxy_->waitForCounterGe("http.ingress_http.downstream_cx_protocol_error", 1));
  }

  // DATA after END_STREAM: GOAWAY(STREAM_CLOSED), then the connection closes.
  {
    Http2Connection connection(port_);
    ASSERT_TRUE(
        connection.sendRaw(Http2TestClient::preface() +
                           Http2TestClient::rawFrame(
                               NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                               1, Http2TestClient::hpackLiteral(get_h)) +
                           Http2TestClient::rawFrame(NGHTTP2_DATA, 0, 1, "late")));
    EXPECT_TRUE(connection.pump([&] { return connection.closed(); }, 10s, /*raw=*/true));
    const auto frames = Http2TestClient::parseFrames(connection.received());
    const auto goaway = Http2TestClient::findFrame(frames, NGHTTP2_GOAWAY);
    ASSERT_TRUE(goaway.has_value());
    EXPECT_EQ(goaway->errorCode(), NGHTTP2_STREAM_CLOSED);
  }
}

// The stream timers are each stream's own on HTTP/2, as in Envoy: one connection carries a stream
// that times out idle, one whose request times out, and one that stays busy past both deadlines.
TEST_F(Http2IntegrationTest, StreamTimeoutsEndOnlyTheirOwnStream) {
  start("{}", {"stream_idle_timeout: 0.4s", "request_timeout: 0.2s"});
  Http2Connection connection(port_);
  Http2TestClient& client = connection.client();
  const Clock::time_point begin = Clock::now();

  // hung: a complete GET the upstream never answers; only its idle timer can end it.
  Http2Headers hung = Http2TestClient::get("/hung");
  hung.emplace_back("x-fake-delay-ms", "60000");
  const int32_t hung_id = client.request(hung);
  // stalled: a POST that sends 2 bytes and never ends; its request timer (200 ms) ends it.
  const int32_t stalled_id = client.openRequest(Http2TestClient::post("/stalled"), "ab");
  // steady: 8 bytes, one every 100 ms (800 ms in all): never idle for 400 ms. If the idle timer
  // were the connection's, steady's bytes would keep re-arming it and hung would never end.
  Http2Headers steady = Http2TestClient::get("/steady");
  steady.emplace_back("x-fake-response-bytes", "8");
  steady.emplace_back("x-fake-trickle-ms", "100");
  const int32_t steady_id = client.request(steady);

  ASSERT_TRUE(connection.pump([&] { return client.result(hung_id).ended; }));
  // Envoy's stream idle timeout once the request is complete: 504 "stream timeout".
  EXPECT_EQ(client.result(hung_id).header(":status"), "504");
  EXPECT_EQ(client.result(hung_id).body, "stream timeout");
  // The request timeout came first, on its own stream: 408, then RST_STREAM NO_ERROR (the rest
  // of the request is not wanted).
  ASSERT_TRUE(connection.pump([&] { return client.result(stalled_id).reset_code.has_value(); }));
  EXPECT_EQ(client.result(stalled_id).header(":status"), "408");
  EXPECT_EQ(client.result(stalled_id).body, "request timeout");
  EXPECT_EQ(client.result(stalled_id).reset_code, NGHTTP2_NO_ERROR);
  // steady is still running, and completes intact.
  EXPECT_FALSE(client.result(steady_id).ended);
  ASSERT_TRUE(connection.pump([&] { return client.result(steady_id).ended; }));
  EXPECT_EQ(client.result(steady_id).header(":status"), "200");
  EXPECT_EQ(client.result(steady_id).body, patternString(8));
  // It outlived hung's 400 ms idle deadline (its first byte goes at once, the 8th ~700 ms in).
  EXPECT_GE(Clock::now() - begin, 500ms);

  // The connection goes on: a new stream is served.
  const int32_t after = client.request(Http2TestClient::get("/ping"));
  ASSERT_TRUE(connection.pump([&] { return client.result(after).ended; }));
  EXPECT_EQ(client.result(after).body, "pong");
  EXPECT_FALSE(connection.closed());
  EXPECT_EQ(stat("http.ingress_http.downstream_rq_idle_timeout"), 1);
  EXPECT_EQ(stat("http.ingress_http.downstream_rq_timeout"), 1);
  EXPECT_EQ(stat("http.ingress_http.downstream_cx_idle_timeout"), 0);
}

// The GOAWAY frames in `bytes` (a server's), by their last stream id.
std::vector<uint32_t> goAwayLastStreamIds(const std::string& bytes) {
  std::vector<uint32_t> ids;
  for (const auto& frame : Http2TestClient::parseFrames(bytes)) {
    if (frame.type == NGHTTP2_GOAWAY && frame.payload.size() >= 4) {
      const auto* p = reinterpret_cast<const uint8_t*>(frame.payload.data());
      ids.push_back((static_cast<uint32_t>(p[0] & 0x7f) << 24) | (p[1] << 16) | (p[2] << 8) | p[3]);
    }
  }
  return ids;
}

// The connection's idle_timeout is the connection's: it runs only while no stream is active,
// then Envoy's drain sequence (as Envoy 1.40 does on HTTP/2): the GOAWAY shutdown notice (last
// stream id 2^31-1), the final GOAWAY after drain_timeout, the close. max_connection_duration
// starts the same sequence, and the streams in flight finish before the close.
TEST_F(Http2IntegrationTest, ConnectionIdleTimeoutRunsOnlyWhileNoStreamIsActive) {
  start("{}", {"common_http_protocol_options: {idle_timeout: 0.3s, max_connection_duration: 1.5s}",
               "drain_timeout: 0.2s"});
  {
    Http2Connection connection(port_);
    Http2TestClient& client = connection.client();
    // One stream busy for 800 ms, more than twice the idle timeout: the connection stays.
    Http2Headers slow = Http2TestClient::get("/slow");
    slow.emplace_back("x-fake-delay-ms", "800");
    const int32_t slow_id = client.request(slow);
    ASSERT_TRUE(connection.pump([&] { return client.result(slow_id).ended; }));
    EXPECT_EQ(client.result(slow_id).header(":status"), "200");
    EXPECT_EQ(stat("http.ingress_http.downstream_cx_idle_timeout"), 0);
    EXPECT_FALSE(client.goawayCode().has_value());
    // Now no stream is active: 300 ms later the shutdown notice, 200 ms after it the final
    // GOAWAY (NO_ERROR, the last stream it took), and the close.
    const Clock::time_point idle_since = Clock::now();
    ASSERT_TRUE(connection.pump([&] { return connection.closed(); }, 5s));
    EXPECT_GE(Clock::now() - idle_since, 450ms);
    EXPECT_EQ(goAwayLastStreamIds(connection.received()),
              (std::vector<uint32_t>{0x7fffffff, static_cast<uint32_t>(slow_id)}));
    EXPECT_EQ(client.goawayCode(), NGHTTP2_NO_ERROR);
    EXPECT_EQ(stat("http.ingress_http.downstream_cx_idle_timeout"), 1);
  }
  {
    // A stream of 2 s outlives the connection's 1.5 s: the shutdown notice, the final GOAWAY
    // naming the stream, and the stream still completes before the close.
    Http2Connection connection(port_);
    Http2TestClient& client = connection.client();
    Http2Headers slow = Http2TestClient::get("/slow");
    slow.emplace_back("x-fake-delay-ms", "2000");
    const int32_t slow_id = client.request(slow);
    ASSERT_TRUE(connection.pump([&] { return client.goawayCode().has_value(); }, 5s));
    ASSERT_TRUE(connection.pump([&] { return client.result(slow_id).ended; }, 5s));
    EXPECT_EQ(client.result(slow_id).header(":status"), "200");
    ASSERT_TRUE(connection.pump([&] { return connection.closed(); }, 5s));
    EXPECT_EQ(goAwayLastStreamIds(connection.received()),
              (std::vector<uint32_t>{0x7fffffff, static_cast<uint32_t>(slow_id)}));
    EXPECT_TRUE(
        proxy_->waitForCounterGe("http.ingress_http.downstream_cx_max_duration_reached", 1));
  }
}

}  // namespace
}  // namespace Proxy::Integration
