// Locality-weighted load balancing end to end: the real `proxy` binary in front of five fake
// upstreams in three localities (weights 1 and 3, and one without a weight), then the same
// bootstrap through the real Envoy 1.40; the shares each locality gets are compared.
// 127.0.0.1, port 0, no sleeps.

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

constexpr int kUpstreams = 5;
constexpr int kRequests = 400;

// Zone "a" (load_balancing_weight 1): u0, u1; zone "b" (weight 3): u2, u3; zone "c" (no
// weight): u4. A static cluster with locality_weighted_lb_config.
std::string bootstrap(const std::vector<uint32_t>& ports) {
  auto endpoint = [&](int i) {
    return absl::StrCat("{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ",
                        ports[i], "}}}}");
  };
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
          route_config: {name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: zoned}}]}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: zoned
    type: STATIC
    connect_timeout: 1s
    common_lb_config: {locality_weighted_lb_config: {}}
    load_assignment:
      cluster_name: zoned
      endpoints:
      - {locality: {region: r, zone: a}, load_balancing_weight: 1, lb_endpoints: [)",
                      endpoint(0), ", ", endpoint(1), R"(]}
      - {locality: {region: r, zone: b}, load_balancing_weight: 3, lb_endpoints: [)",
                      endpoint(2), ", ", endpoint(3), R"(]}
      - {locality: {region: r, zone: c}, lb_endpoints: [)",
                      endpoint(4), "]}\n");
}

std::string envoyPath() {
  if (const char* env = std::getenv("ENVOY_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  return std::string(absl::StripAsciiWhitespace(
      readFile(absl::StrCat(home != nullptr ? home : "", "/.cache/xds-proxy-peers/envoy-path"))));
}

class LocalityLbIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kUpstreams; i++) {
      FakeUpstreamOptions options;
      options.name = absl::StrCat("u", i);
      absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
      ASSERT_TRUE(upstream.ok()) << upstream.status();
      ports_.push_back((*upstream)->port());
      upstreams_.push_back(std::move(*upstream));
    }
  }

  // Starts `binary` (empty: our proxy) with one worker, so that one scheduler sees every pick.
  uint32_t start(std::unique_ptr<ProxyProcess>& process, const std::string& binary) {
    ProxyOptions options;
    options.binary = binary;
    options.bootstrap_yaml = bootstrap(ports_);
    options.concurrency = 1;
    process = std::make_unique<ProxyProcess>(std::move(options));
    EXPECT_TRUE(process->start());
    absl::StatusOr<uint32_t> port = process->listenerPort("ingress");
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : 0;
  }

  // Requests per upstream (x-upstream: uN) over kRequests requests.
  static std::map<std::string, int> spread(uint32_t port) {
    std::map<std::string, int> counts;
    for (int i = 0; i < kRequests; i++) {
      HttpRequest request;
      request.path = absl::StrCat("/", i);
      absl::StatusOr<HttpResponse> response = httpRequest(port, request);
      EXPECT_TRUE(response.ok()) << response.status();
      if (response.ok()) {
        EXPECT_EQ(200u, response->status);
        counts[response->header("x-upstream")]++;
      }
    }
    return counts;
  }

  std::vector<FakeUpstreamPtr> upstreams_;
  std::vector<uint32_t> ports_;
};

TEST_F(LocalityLbIntegrationTest, LocalitiesShareRequestsByWeightAsInEnvoy) {
  // Our proxy: 400 requests split 1:3 between zones a and b (each zone's scheduler is earliest
  // deadline first, so the split is exact within one request: tolerance 2), round robin within
  // a zone, and zone c, which has no weight, gets nothing.
  std::unique_ptr<ProxyProcess> ours;
  const uint32_t our_port = start(ours, "");
  ASSERT_NE(0u, our_port);
  std::map<std::string, int> our_counts = spread(our_port);
  const int our_a = our_counts["u0"] + our_counts["u1"];
  const int our_b = our_counts["u2"] + our_counts["u3"];
  EXPECT_NEAR(kRequests / 4, our_a, 2);
  EXPECT_NEAR(kRequests * 3 / 4, our_b, 2);
  EXPECT_NEAR(our_counts["u0"], our_counts["u1"], 2);
  EXPECT_NEAR(our_counts["u2"], our_counts["u3"], 2);
  EXPECT_EQ(0, our_counts["u4"]);

  // The real Envoy with the same bootstrap and upstreams: the same shares (tolerance 2 each).
  const std::string envoy = envoyPath();
  if (envoy.empty()) {
    GTEST_SKIP() << "Envoy is not installed (deploy/install-peers.sh)";
  }
  std::unique_ptr<ProxyProcess> theirs;
  const uint32_t envoy_port = start(theirs, envoy);
  ASSERT_NE(0u, envoy_port);
  std::map<std::string, int> envoy_counts = spread(envoy_port);
  const int envoy_a = envoy_counts["u0"] + envoy_counts["u1"];
  const int envoy_b = envoy_counts["u2"] + envoy_counts["u3"];
  std::cout << "zone a / b / c: ours " << our_a << " / " << our_b << " / " << our_counts["u4"]
            << ", envoy " << envoy_a << " / " << envoy_b << " / " << envoy_counts["u4"] << "\n";
  EXPECT_NEAR(envoy_a, our_a, 2);
  EXPECT_NEAR(envoy_b, our_b, 2);
  EXPECT_EQ(envoy_counts["u4"], our_counts["u4"]);
}

}  // namespace
}  // namespace Proxy::Integration
