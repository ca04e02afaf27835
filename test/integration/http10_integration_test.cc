// HTTP/1.0 through the real `proxy` binary, byte for byte as Envoy 1.40 answers (recorded from
// the real Envoy with the same bootstrap): refused with 426 unless
// http_protocol_options.accept_http_10; accepted, answered as HTTP/1.0, with the Host that
// default_host_for_http_10 gives a request that has none; never forwarded without a Host.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A plain socket that sends bytes as given and reads responses back as raw bytes (the status
// line's version is part of what is checked, and no client library keeps it).
class RawConnection {
 public:
  explicit RawConnection(uint32_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { ::close(fd_); }

  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  // The next response, head and content-length body, exactly as it came; "" on a deadline or
  // a close before it was complete.
  std::string readResponse() {
    const Clock::time_point deadline = Clock::now() + 10s;
    for (;;) {
      const size_t head_end = pending_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const size_t body_length = contentLength(pending_.substr(0, head_end));
        const size_t total = head_end + 4 + body_length;
        if (pending_.size() >= total) {
          std::string response = pending_.substr(0, total);
          pending_.erase(0, total);
          return response;
        }
      }
      if (!readMore(deadline)) {
        return "";
      }
    }
  }

  // True when the proxy closes the connection before the deadline.
  bool waitForClose() {
    const Clock::time_point deadline = Clock::now() + 5s;
    while (readMore(deadline)) {
    }
    return eof_;
  }

 private:
  static size_t contentLength(const std::string& head) {
    for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
      if (absl::StartsWithIgnoreCase(line, "content-length:")) {
        size_t length = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &length)) {
          return length;
        }
      }
    }
    return 0;
  }

  // Read once (waiting up to the deadline); false on EOF, error or deadline.
  bool readMore(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) != 1) {
      return false;
    }
    char buf[16 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string pending_;
};

// The response without the lines that differ per run (date, generated ids, timings), so that
// a whole response compares as one string.
std::string stable(const std::string& response) {
  std::string out;
  const size_t head_end = response.find("\r\n\r\n");
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(response).substr(0, head_end), "\r\n")) {
    if (absl::StartsWith(line, "date:") || absl::StartsWith(line, "x-echo-x-request-id:") ||
        absl::StartsWith(line, "x-envoy-upstream-service-time:") ||
        absl::StartsWith(line, "x-echo-x-envoy-expected-rq-timeout-ms:")) {
      continue;
    }
    absl::StrAppend(&out, line, "\r\n");
  }
  absl::StrAppend(&out, "\r\n", absl::string_view(response).substr(head_end + 4));
  return out;
}

class Http10IntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    FakeUpstreamOptions options;
    options.name = "up1";
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
  }

  // One listener: /up to the fake upstream, anything else answered "hello" by the proxy.
  // `protocol_options` is the connection manager's http_protocol_options ("" for none).
  void startProxy(const std::string& protocol_options) {
    ProxyOptions options;
    options.bootstrap_yaml = absl::StrCat(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
)",
                                          protocol_options.empty() ? "" : "          ",
                                          protocol_options, protocol_options.empty() ? "" : "\n",
                                          R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: "/up"}, route: {cluster: up}}
              - {match: {prefix: "/"}, direct_response: {status: 200, body: {inline_string: "hello"}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - {name: up, type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: up, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
                                          upstream_->port(), "}}}}]}]}}\n");
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort("ingress");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // Send `request` on a new connection; the one response, then whether the proxy closed.
  std::string exchange(const std::string& request, bool* closed) {
    RawConnection connection(port_);
    EXPECT_TRUE(connection.connected());
    EXPECT_TRUE(connection.send(request));
    const std::string response = connection.readResponse();
    *closed = connection.waitForClose();
    return stable(response);
  }

  int64_t counter(const std::string& name) {
    absl::StatusOr<int64_t> value = proxy_->counter(name);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *value : -1;
  }

  FakeUpstreamPtr upstream_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

// The greeting the fake upstream answers GET `path` with, as the proxy forwards it to an
// HTTP/1.0 client (`status_line`, `host` the upstream saw, `connection` header).
std::string upstreamResponse(const std::string& status_line, const std::string& path,
                             const std::string& host, const std::string& connection) {
  const std::string body = absl::StrCat("hello from up1\npath: ", path, "\n");
  return absl::StrCat(
      status_line, "\r\nx-upstream: up1\r\nx-echo-method: GET\r\nx-echo-path: ", path,
      "\r\nx-echo-scheme: http\r\nx-echo-authority: ", host,
      "\r\nx-echo-x-forwarded-proto: http\r\nx-request-body-bytes: 0\r\n"
      "x-request-body-fnv1a: cbf29ce484222325\r\ncontent-length: ",
      body.size(), "\r\nserver: envoy\r\nconnection: ", connection, "\r\n\r\n", body);
}

TEST_F(Http10IntegrationTest, RefusedWith426ByDefault) {
  startProxy("");

  // With or without Host, HTTP/1.0 is answered 426 (as HTTP/1.1), and the connection closes.
  for (const std::string request :
       {"GET /up/a HTTP/1.0\r\n\r\n", "GET /up/a HTTP/1.0\r\nHost: h\r\n\r\n"}) {
    bool closed = false;
    EXPECT_EQ(exchange(request, &closed),
              "HTTP/1.1 426 Upgrade Required\r\ncontent-type: text/plain\r\n"
              "content-length: 16\r\nserver: envoy\r\nconnection: close\r\n\r\nUpgrade Required");
    EXPECT_TRUE(closed);
  }
  // Nothing reached the upstream; Envoy counts a protocol error each time.
  EXPECT_EQ(upstream_->requestsReceived(), 0u);
  EXPECT_EQ(counter("http.ingress_http.downstream_cx_protocol_error"), 2);
}

TEST_F(Http10IntegrationTest, AcceptedWithoutHostTakesTheDefaultHostAndIsAnsweredAsHttp10) {
  startProxy(
      R"(http_protocol_options: {accept_http_10: true, default_host_for_http_10: "default.example"})");

  // No Host: the upstream sees the default one. The response says HTTP/1.0 and the
  // connection closes (no keep-alive asked for).
  bool closed = false;
  EXPECT_EQ(exchange("GET /up/a HTTP/1.0\r\n\r\n", &closed),
            upstreamResponse("HTTP/1.0 200 OK", "/up/a", "default.example", "close"));
  EXPECT_TRUE(closed);

  // A Host of its own is kept; so is an absolute-form target's.
  EXPECT_EQ(exchange("GET /up/b HTTP/1.0\r\nHost: given.example\r\n\r\n", &closed),
            upstreamResponse("HTTP/1.0 200 OK", "/up/b", "given.example", "close"));
  EXPECT_EQ(exchange("GET http://abs.example/up/f HTTP/1.0\r\n\r\n", &closed),
            upstreamResponse("HTTP/1.0 200 OK", "/up/f", "abs.example", "close"));

  // The proxy's own answers are HTTP/1.0 too.
  EXPECT_EQ(exchange("GET / HTTP/1.0\r\n\r\n", &closed),
            "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n"
            "server: envoy\r\nconnection: close\r\n\r\nhello");
  EXPECT_TRUE(closed);
}

TEST_F(Http10IntegrationTest, AcceptedKeepAliveServesTheNextRequestOnTheSameConnection) {
  startProxy(
      R"(http_protocol_options: {accept_http_10: true, default_host_for_http_10: "default.example"})");

  RawConnection connection(port_);
  ASSERT_TRUE(connection.connected());
  ASSERT_TRUE(connection.send("GET /up/c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_EQ(stable(connection.readResponse()),
            upstreamResponse("HTTP/1.0 200 OK", "/up/c", "default.example", "keep-alive"));
  // The second one does not ask for keep-alive: answered, then closed.
  ASSERT_TRUE(connection.send("GET /up/d HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(stable(connection.readResponse()),
            upstreamResponse("HTTP/1.0 200 OK", "/up/d", "default.example", "close"));
  EXPECT_TRUE(connection.waitForClose());
}

TEST_F(Http10IntegrationTest, AcceptedWithoutHostOrDefaultIs400WithoutBody) {
  startProxy("http_protocol_options: {accept_http_10: true}");

  // Never forwarded without a Host: 400 with no body, and the connection closes even when the
  // client asked to keep it.
  for (const std::string request :
       {"GET /up/a HTTP/1.0\r\n\r\n", "GET /up/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"}) {
    bool closed = false;
    EXPECT_EQ(exchange(request, &closed),
              "HTTP/1.0 400 Bad Request\r\nserver: envoy\r\ncontent-length: 0\r\n"
              "connection: close\r\n\r\n");
    EXPECT_TRUE(closed);
  }
  EXPECT_EQ(upstream_->requestsReceived(), 0u);
  // Envoy checks the Host in the connection manager: not a protocol error.
  EXPECT_EQ(counter("http.ingress_http.downstream_cx_protocol_error"), 0);
  EXPECT_EQ(counter("http.ingress_http.downstream_rq_4xx"), 2);
}

TEST_F(Http10IntegrationTest, AnEmptyHostIsForwardedEmpty) {
  startProxy("http_protocol_options: {accept_http_10: true}");

  // "Host:" with nothing after it is a Host all the same, in HTTP/1.0 and 1.1: the upstream
  // gets an empty one, not none.
  bool closed = false;
  EXPECT_EQ(exchange("GET /up/h HTTP/1.0\r\nHost:\r\n\r\n", &closed),
            upstreamResponse("HTTP/1.0 200 OK", "/up/h", "", "close"));
  EXPECT_EQ(exchange("GET /up/i HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n", &closed),
            upstreamResponse("HTTP/1.1 200 OK", "/up/i", "", "close"));
  EXPECT_EQ(upstream_->requestsReceived(), 2u);
}

TEST_F(Http10IntegrationTest, OtherHttpProtocolOptionsAreRefusedByName) {
  // Only accept_http_10, default_host_for_http_10 and enable_trailers are implemented; any other
  // field of http_protocol_options stops the proxy with its path.
  for (const std::string field : {"header_key_format: {proper_case_words: {}}",
                                  "allow_chunked_length: true", "send_fully_qualified_url: true"}) {
    ProxyOptions options;
    options.bootstrap_yaml = absl::StrCat(R"(static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          http_protocol_options: {accept_http_10: true, )",
                                          field, R"(}
          route_config: {virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, direct_response: {status: 200}}]}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)");
    ProxyProcess proxy(options);
    absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->exit_code, 0);
    const std::string name = std::string(
        absl::StripAsciiWhitespace(std::vector<std::string>(absl::StrSplit(field, ':')).front()));
    EXPECT_EQ(absl::StripAsciiWhitespace(result->stderr_text),
              absl::StrCat("error: static_resources.listeners[0].filter_chains[0].filters[0]."
                           "typed_config.http_protocol_options.",
                           name, ": not supported"));
  }
}

}  // namespace
}  // namespace Proxy::Integration
