#pragma once

// End-to-end tests of the real `proxy` binary: each test writes a bootstrap, starts the proxy
// as a child process (listeners and admin on 127.0.0.1:0), points it at FakeUpstreams running
// in this process, and talks to it with a blocking HttpClient. Nothing uses a fixed port and
// nothing sleeps to synchronise: every wait is a condition with a deadline.
//
// Shared by the proxy_integration_test executable's files: proxy_integration_test.cc (routing),
// proxy_connection_integration_test.cc (connection handling and streaming),
// proxy_error_integration_test.cc (error paths), proxy_lifecycle_integration_test.cc (workers,
// signals, admin, validation).

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "test/integration/body_pattern.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"
#include "test/integration/refusing_port.h"

namespace Proxy::Integration {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024 * 1024;

// Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default) and shadow
// memory counts towards RSS, so peak RSS says nothing about buffering there: the streaming
// tests still check every byte, but only assert the memory bound in normal builds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif
constexpr uint64_t kMaxRssGrowthKb = 64 * 1024;

// ---- Bootstrap builders --------------------------------------------------------------------
// Fragments are YAML flow mappings ({key: value, ...}), which do not depend on indentation, so
// a test reads as the config it needs and nothing else.

// A STATIC cluster whose endpoints are 127.0.0.1:<port> for each port.
inline std::string staticCluster(const std::string& name, const std::vector<uint32_t>& ports,
                                 const std::string& lb_policy = "ROUND_ROBIN",
                                 const std::string& connect_timeout = "1s") {
  std::vector<std::string> endpoints;
  for (uint32_t port : ports) {
    endpoints.push_back(absl::StrCat(
        "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ", port, "}}}}"));
  }
  return absl::StrCat("{name: ", name, ", type: STATIC, connect_timeout: ", connect_timeout,
                      ", lb_policy: ", lb_policy, ", load_assignment: {cluster_name: ", name,
                      ", endpoints: [{lb_endpoints: [", absl::StrJoin(endpoints, ", "), "]}]}}");
}

struct BootstrapSpec {
  // Flow mappings, one per virtual host of the inline route_config.
  std::vector<std::string> virtual_hosts;
  // Flow mappings, one per cluster.
  std::vector<std::string> clusters;
  // Extra "key: value" fields of the HttpConnectionManager.
  std::vector<std::string> hcm_fields;
  // Extra "key: value" fields of the listener.
  std::vector<std::string> listener_fields;
  // When set, the listener's only filter is this network filter (a flow mapping) instead of
  // the HTTP connection manager.
  std::string network_filter;
};

constexpr char kStdoutAccessLog[] =
    R"(access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}}])";

constexpr char kListenerName[] = "ingress";
constexpr char kStatPrefix[] = "ingress_http";

inline std::string bootstrapYaml(const BootstrapSpec& spec) {
  std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
)";
  for (const std::string& field : spec.listener_fields) {
    absl::StrAppend(&yaml, "    ", field, "\n");
  }
  absl::StrAppend(&yaml, "    filter_chains:\n    - filters:\n");
  if (!spec.network_filter.empty()) {
    absl::StrAppend(&yaml, "      - ", spec.network_filter, "\n");
  } else {
    absl::StrAppend(&yaml, R"(      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: )",
                    kStatPrefix, "\n");
    for (const std::string& field : spec.hcm_fields) {
      absl::StrAppend(&yaml, "          ", field, "\n");
    }
    absl::StrAppend(&yaml, "          route_config:\n            name: test_routes\n",
                    "            virtual_hosts:\n");
    for (const std::string& vhost : spec.virtual_hosts) {
      absl::StrAppend(&yaml, "            - ", vhost, "\n");
    }
    absl::StrAppend(&yaml, R"(          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)");
  }
  absl::StrAppend(&yaml, "  clusters:\n");
  for (const std::string& cluster : spec.clusters) {
    absl::StrAppend(&yaml, "  - ", cluster, "\n");
  }
  return yaml;
}

class ProxyIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    // Two upstreams that answer "hello from upstream-N" and echo what they received.
    upstream1_ = makeUpstream("upstream-1");
    upstream2_ = makeUpstream("upstream-2");
  }

  static FakeUpstreamPtr makeUpstream(std::string name) {
    FakeUpstreamOptions options;
    options.name = std::move(name);
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    EXPECT_TRUE(upstream.ok()) << upstream.status();
    return upstream.ok() ? std::move(*upstream) : nullptr;
  }

  // The usual routes: /service/1 -> service1 (upstream-1), /service/2 -> service2
  // (upstream-2), anything else has no route.
  BootstrapSpec serviceRoutes() const {
    BootstrapSpec spec;
    spec.virtual_hosts = {R"({name: services, domains: ["*"], routes: [
        {match: {prefix: "/service/1"}, route: {cluster: service1}},
        {match: {prefix: "/service/2"}, route: {cluster: service2}}]})"};
    spec.clusters = {staticCluster("service1", {upstream1_->port()}),
                     staticCluster("service2", {upstream2_->port()})};
    // Envoy's default access log format on stdout: the response flags (UF, UT, NR, ...) land
    // in ProxyProcess::stdoutText().
    spec.hcm_fields = {kStdoutAccessLog};
    return spec;
  }

  // Wait until the access log has a line containing `text` (it is written after the response
  // went out, so a test that has its response may still have to wait for the line).
  testing::AssertionResult waitForAccessLog(const std::string& text) {
    return waitUntil([&] { return proxy_->stdoutText().find(text) != std::string::npos; }, 10s,
                     "access log line containing '" + text + "'");
  }

  // Start the proxy and learn its listener's port; a failure ends the test.
  void startProxy(const BootstrapSpec& spec, uint32_t concurrency = 1) {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrapYaml(spec);
    options.concurrency = concurrency;
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort(kListenerName);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  absl::StatusOr<HttpResponse> get(std::string_view path, std::string_view host = "example.com",
                                   std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest request;
    request.path = std::string(path);
    request.host = std::string(host);
    request.headers = std::move(headers);
    return httpRequest(port_, request);
  }

  std::string statName(const std::string& suffix) const {
    return absl::StrCat("http.", kStatPrefix, ".", suffix);
  }

  // After a bad request the proxy must go on serving: a good request on a new connection.
  void expectServesGoodRequest() {
    absl::StatusOr<HttpResponse> response = get("/service/1/after-bad-request");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u);
    EXPECT_EQ(response->header("x-upstream"), "upstream-1");
  }

  // Send raw bytes on a new connection and read the one response; the connection must then
  // be closed by the proxy.
  HttpResponse sendBadRequest(std::string_view raw_request) {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) {
      return {};
    }
    // The proxy may answer and close before it read everything: a failed send is fine.
    (void)(*client)->sendRaw(raw_request);
    absl::StatusOr<HttpResponse> response = (*client)->readResponse();
    EXPECT_TRUE(response.ok()) << response.status();
    EXPECT_TRUE((*client)->waitForClose(5s)) << "the proxy kept the connection open";
    return response.ok() ? *response : HttpResponse{};
  }

  FakeUpstreamPtr upstream1_;
  FakeUpstreamPtr upstream2_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

}  // namespace Proxy::Integration
