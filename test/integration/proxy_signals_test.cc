// The real `proxy` binary and the signals an operator sends it: SIGHUP, SIGUSR1 and SIGUSR2
// must not kill it (SIGUSR1 reopens the access logs, as Envoy does, for log rotation), and
// SIGTERM closes the listen sockets at once — new connections are refused instead of queueing
// in a backlog nobody accepts — while requests in flight finish.

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;

// One listener routing everything to one upstream, with a file access log at `access_log`
// (Envoy's default format), admin and listener on 127.0.0.1:0.
std::string bootstrap(uint32_t upstream_port, const std::string& access_log) {
  return absl::StrCat(R"(admin:
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
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: )",
                      access_log, R"(
          route_config:
            name: routes
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: upstream, timeout: 60s}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
                      upstream_port, "}}}\n");
}

class ProxySignalsTest : public testing::Test {
 protected:
  void SetUp() override {
    FakeUpstreamOptions options;
    options.name = "upstream-1";
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
    char tmpl[] = "/tmp/proxy_signals_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    access_log_ = dir_ + "/access.log";
  }
  void TearDown() override {
    proxy_.reset();  // stops it (SIGTERM) and checks its exit first
    std::filesystem::remove_all(dir_);
  }

  void startProxy(uint32_t concurrency, uint32_t drain_time_s) {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrap(upstream_->port(), access_log_);
    options.concurrency = concurrency;
    options.drain_time_s = drain_time_s;
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort("ingress");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // GET `path`; the upstream answers after `delay_ms`.
  static HttpRequest request(const std::string& path, int delay_ms = 0) {
    HttpRequest request;
    request.path = path;
    if (delay_ms > 0) {
      request.headers = {{"x-fake-delay-ms", std::to_string(delay_ms)}};
    }
    return request;
  }

  testing::AssertionResult waitForStderr(const std::string& text) {
    return waitUntil([&] { return absl::StrContains(proxy_->stderrText(), text); }, 10s,
                     "'" + text + "' in the proxy's log");
  }
  testing::AssertionResult waitForLine(const std::string& file, const std::string& text) {
    return waitUntil([&] { return absl::StrContains(readFile(file), text); }, 10s,
                     "'" + text + "' in " + file);
  }

  FakeUpstreamPtr upstream_;
  std::unique_ptr<ProxyProcess> proxy_;
  std::string dir_;
  std::string access_log_;
  uint32_t port_ = 0;
};

TEST_F(ProxySignalsTest, HupUsr1AndUsr2DoNotKillTheProxyMidResponse) {
  startProxy(/*concurrency=*/1, /*drain_time_s=*/5);

  // A request the upstream answers after 1 s: in flight while the signals arrive.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(request("/in-flight", 1000))).ok());
  ASSERT_TRUE(upstream_->waitForRequests(1));

  // SIGHUP is eaten with a line in the log (Envoy's words), SIGUSR2 is ignored, SIGUSR1
  // reopens the access logs.
  ASSERT_TRUE(proxy_->sendSignal(SIGHUP));
  ASSERT_TRUE(waitForStderr("caught and eating SIGHUP. See documentation for how to hot restart."));
  ASSERT_TRUE(proxy_->sendSignal(SIGUSR2));
  ASSERT_TRUE(waitForStderr("caught SIGUSR2: ignored"));
  ASSERT_TRUE(proxy_->sendSignal(SIGUSR1));
  ASSERT_TRUE(waitForStderr("caught SIGUSR1. Reopening access logs."));

  // The response still arrives whole, and the proxy serves on.
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_TRUE(absl::StrContains(response->body, "hello from upstream-1")) << response->body;
  EXPECT_TRUE(proxy_->running());
  absl::StatusOr<HttpResponse> next = httpRequest(port_, request("/after-signals"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->status, 200u);
  absl::StatusOr<HttpResponse> ready = proxy_->adminGet("/ready");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 200u);
}

TEST_F(ProxySignalsTest, Usr1ReopensTheAccessLogAfterItWasRotatedAway) {
  startProxy(/*concurrency=*/2, /*drain_time_s=*/5);

  // A first request is logged to the configured path.
  absl::StatusOr<HttpResponse> first = httpRequest(port_, request("/before-rotation"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(waitForLine(access_log_, "\"GET /before-rotation HTTP/1.1\" 200"));

  // logrotate renames the file away, then signals the proxy.
  const std::string rotated = access_log_ + ".1";
  ASSERT_EQ(std::rename(access_log_.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(proxy_->sendSignal(SIGUSR1));
  ASSERT_TRUE(waitForStderr("caught SIGUSR1. Reopening access logs."));

  // The next requests (on both workers) go to a new file at the original path; the rotated
  // file keeps what it had and gets nothing more.
  for (int i = 0; i < 4; i++) {
    absl::StatusOr<HttpResponse> after = httpRequest(port_, request(absl::StrCat("/after-", i)));
    ASSERT_TRUE(after.ok()) << after.status();
    ASSERT_TRUE(waitForLine(access_log_, absl::StrCat("\"GET /after-", i, " HTTP/1.1\" 200")));
  }
  const std::string old_lines = readFile(rotated);
  EXPECT_TRUE(absl::StrContains(old_lines, "/before-rotation")) << old_lines;
  EXPECT_FALSE(absl::StrContains(old_lines, "/after-")) << old_lines;
  EXPECT_FALSE(absl::StrContains(readFile(access_log_), "/before-rotation"));
}

// True when a connect to 127.0.0.1:`port` is refused (RST), false when it is accepted by the
// kernel (whether or not anybody then accepts it).
bool connectRefused(uint32_t port) {
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port, 2s);
  return !client.ok() && absl::StrContains(client.status().message(), "refused");
}

TEST_F(ProxySignalsTest, SigtermRefusesNewConnectionsAtOnceWhileInFlightRequestsFinish) {
  // Two workers, so two SO_REUSEPORT listen sockets, and a drain time far longer than the test.
  startProxy(/*concurrency=*/2, /*drain_time_s=*/60);
  ASSERT_FALSE(connectRefused(port_));

  // A request the upstream answers after 3 s is in flight.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->setTimeout(30s);
  ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(request("/slow", 3000))).ok());
  ASSERT_TRUE(upstream_->waitForRequests(1));

  // SIGTERM: the listen sockets close at once. A new client is refused (it does not sit in
  // a backlog nobody accepts from until the drain ends), while the slow request is still
  // being answered.
  ASSERT_TRUE(proxy_->sendSignal(SIGTERM));
  EXPECT_TRUE(waitUntil([&] { return connectRefused(port_); }, 2s, "connects to be refused"));
  EXPECT_EQ(upstream_->responsesStarted(), 0u) << "the slow request finished first";

  // The request in flight finishes, then the process exits cleanly.
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  absl::StatusOr<int> exit_code = proxy_->waitForExit(30s);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

}  // namespace
}  // namespace Proxy::Integration
