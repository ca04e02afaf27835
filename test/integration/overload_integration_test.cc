// The overload manager's global downstream connection limit
// (envoy.resource_monitors.global_downstream_max_connections) through the real `proxy` binary
// with two workers: connections over the cap are closed at accept and counted
// (downstream_global_cx_overflow), a listener with ignore_global_conn_limit and the admin
// endpoint keep accepting, and a closed connection gives its slot back. Real sockets,
// 127.0.0.1, port 0, no sleeps.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;

std::string listenerYaml(const std::string& name, bool ignore_limit) {
  return absl::StrCat("  - name: ", name, R"(
    stat_prefix: )",
                      name, R"(
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
)",
                      ignore_limit ? "    ignore_global_conn_limit: true\n" : "",
                      R"(    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: )",
                      name, R"(
          route_config: {name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: up}}]}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)");
}

std::string bootstrap(uint32_t upstream_port) {
  return absl::StrCat(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
  ignore_global_conn_limit: true
overload_manager:
  resource_monitors:
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: 2
static_resources:
  listeners:
)",
                      listenerYaml("ingress", false), listenerYaml("ops", true), R"(  clusters:
  - name: up
    type: STATIC
    connect_timeout: 1s
    load_assignment: {cluster_name: up, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
                      upstream_port, "}}}}]}]}\n");
}

HttpRequest get() {
  HttpRequest request;
  request.path = "/";
  return request;
}

// A keep-alive connection that completed one request (so the proxy has surely accepted it).
std::unique_ptr<HttpClient> openServed(uint32_t port) {
  absl::StatusOr<std::unique_ptr<HttpClient>> client = HttpClient::connect(port);
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) {
    return nullptr;
  }
  absl::StatusOr<HttpResponse> response = (*client)->request(get());
  EXPECT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(200u, response.ok() ? response->status : 0);
  return std::move(*client);
}

TEST(OverloadIntegrationTest, GlobalConnectionLimitClosesTheExcessAtAccept) {
  absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(FakeUpstreamOptions{});
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  ProxyOptions options;
  options.bootstrap_yaml = bootstrap((*upstream)->port());
  options.concurrency = 2;
  ProxyProcess proxy(std::move(options));
  ASSERT_TRUE(proxy.start());
  absl::StatusOr<uint32_t> ingress = proxy.listenerPort("ingress");
  absl::StatusOr<uint32_t> ops = proxy.listenerPort("ops");
  ASSERT_TRUE(ingress.ok() && ops.ok());

  // Two connections take the two slots.
  std::unique_ptr<HttpClient> first = openServed(*ingress);
  std::unique_ptr<HttpClient> second = openServed(*ingress);
  ASSERT_NE(nullptr, first);
  ASSERT_NE(nullptr, second);

  // A third is closed right after accept, without a response, and counted.
  absl::StatusOr<std::unique_ptr<HttpClient>> third = HttpClient::connect(*ingress);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE((*third)->waitForClose(5s));
  EXPECT_TRUE(proxy.waitForCounterGe("listener.ingress.downstream_global_cx_overflow", 1));

  // A listener that ignores the limit, and the admin endpoint (ignore_global_conn_limit), still
  // accept while the limit is reached; their connections take no slot.
  std::unique_ptr<HttpClient> on_ops = openServed(*ops);
  EXPECT_NE(nullptr, on_ops);
  absl::StatusOr<HttpResponse> ready = proxy.adminGet("/ready");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(200u, ready->status);

  // The connections still open keep working.
  absl::StatusOr<HttpResponse> again = first->request(get());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(200u, again->status);

  // Closing one gives its slot back (when the proxy has seen the close): a new connection is
  // served again.
  first.reset();
  EXPECT_TRUE(waitUntil(
      [&] {
        absl::StatusOr<HttpResponse> response = httpRequest(*ingress, get(), 2s);
        return response.ok() && response->status == 200;
      },
      10s, "a slot freed by the closed connection"));
  absl::StatusOr<int64_t> overflow =
      proxy.counter("listener.ingress.downstream_global_cx_overflow");
  ASSERT_TRUE(overflow.ok());
  EXPECT_GE(*overflow, 1);
  absl::StatusOr<int64_t> ops_overflow =
      proxy.counter("listener.ops.downstream_global_cx_overflow");
  EXPECT_TRUE(!ops_overflow.ok() || *ops_overflow == 0);
}

TEST(OverloadIntegrationTest, MonitorsOtherThanTheConnectionLimitAreRefused) {
  ProxyOptions options;
  options.bootstrap_yaml = R"(overload_manager:
  resource_monitors:
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: 0
)";
  ProxyProcess proxy(std::move(options));
  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(0, result->exit_code);
  EXPECT_NE(std::string::npos,
            result->stderr_text.find("overload_manager.resource_monitors[0].typed_config."
                                     "max_active_downstream_connections: must be greater than 0"))
      << result->stderr_text;
}

}  // namespace
}  // namespace Proxy::Integration
