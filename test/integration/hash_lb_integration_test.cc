// RING_HASH and MAGLEV end to end: the real `proxy` binary in front of four fake upstreams, with
// routes hashing a header, a cookie (generated with Set-Cookie when absent), the source IP and
// a query parameter. Then the same bootstrap through the real Envoy 1.40: each of many hash keys
// reaches the same upstream through both, the proof that the rings, tables and request hashes
// are Envoy's. 127.0.0.1, port 0, no sleeps.

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;

constexpr int kUpstreams = 4;

// The listener and its routes, and one cluster per policy over the same four upstreams.
std::string bootstrap(const std::vector<uint32_t>& ports) {
  std::string endpoints;
  for (uint32_t port : ports) {
    absl::StrAppend(&endpoints, "{endpoint: {address: {socket_address: {address: 127.0.0.1, ",
                    "port_value: ", port, "}}}},");
  }
  auto cluster = [&](const std::string& name, const std::string& policy_fields) {
    return absl::StrCat("  - {name: ", name, ", type: STATIC, connect_timeout: 1s, ", policy_fields,
                        ", load_assignment: {cluster_name: ", name,
                        ", endpoints: [{lb_endpoints: [", endpoints, "]}]}}\n");
  };
  auto routes = [](const std::string& cluster) {
    const std::string p = "/" + cluster;
    return absl::StrCat("{match: {prefix: \"", p, "/header\"}, route: {cluster: ", cluster,
                        ", hash_policy: [{header: {header_name: x-user}}]}},",
                        "{match: {prefix: \"", p, "/cookie\"}, route: {cluster: ", cluster,
                        ", hash_policy: [{cookie: {name: session, ttl: 3600s, path: /}}]}},",
                        "{match: {prefix: \"", p, "/ip\"}, route: {cluster: ", cluster,
                        ", hash_policy: [{connection_properties: {source_ip: true}}]}},",
                        "{match: {prefix: \"", p, "/query\"}, route: {cluster: ", cluster,
                        ", hash_policy: [{query_parameter: {name: user}}]}},",
                        "{match: {prefix: \"", p, "/both\"}, route: {cluster: ", cluster,
                        ", hash_policy: [{header: {header_name: x-user}, terminal: true}, ",
                        "{query_parameter: {name: user}}]}},");
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
          route_config: {name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [)",
                      routes("ring"), routes("maglev"), routes("typed"), R"(]}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
)",
                      cluster("ring", "lb_policy: RING_HASH"),
                      cluster("maglev", "lb_policy: MAGLEV"),
                      // The typed form: Maglev with a small table, ring-hash's sibling.
                      cluster("typed",
                              "load_balancing_policy: {policies: [{typed_extension_config: "
                              "{name: envoy.load_balancing_policies.maglev, typed_config: "
                              "{\"@type\": type.googleapis.com/"
                              "envoy.extensions.load_balancing_policies.maglev.v3.Maglev, "
                              "table_size: 307}}}]}"));
}

std::string envoyPath() {
  if (const char* env = std::getenv("ENVOY_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  return std::string(absl::StripAsciiWhitespace(
      readFile(absl::StrCat(home != nullptr ? home : "", "/.cache/xds-proxy-peers/envoy-path"))));
}

class HashLbIntegrationTest : public testing::Test {
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

  // Starts `binary` (empty: our proxy) with the bootstrap; its listener port.
  uint32_t start(std::unique_ptr<ProxyProcess>& process, const std::string& binary,
                 uint32_t concurrency = 2) {
    ProxyOptions options;
    options.binary = binary;
    options.bootstrap_yaml = bootstrap(ports_);
    options.concurrency = concurrency;
    process = std::make_unique<ProxyProcess>(std::move(options));
    EXPECT_TRUE(process->start());
    absl::StatusOr<uint32_t> port = process->listenerPort("ingress");
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : 0;
  }

  static HttpResponse get(uint32_t port, const std::string& path,
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest request;
    request.path = path;
    request.headers = std::move(headers);
    absl::StatusOr<HttpResponse> response = httpRequest(port, request);
    EXPECT_TRUE(response.ok()) << path << ": " << response.status();
    return response.ok() ? *response : HttpResponse{};
  }

  // Which upstream answered (x-upstream: uN).
  static std::string upstreamOf(uint32_t port, const std::string& path,
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpResponse response = get(port, path, std::move(headers));
    EXPECT_EQ(200u, response.status) << path;
    return response.header("x-upstream");
  }

  std::vector<FakeUpstreamPtr> upstreams_;
  std::vector<uint32_t> ports_;
};

TEST_F(HashLbIntegrationTest, EachHashPolicyKeepsAKeyOnOneUpstream) {
  // Two workers: each connection may land on either, and a key still goes to one upstream.
  std::unique_ptr<ProxyProcess> proxy;
  const uint32_t port = start(proxy, "");
  for (const std::string cluster : {"ring", "maglev"}) {
    SCOPED_TRACE(cluster);
    // Header: the same x-user always reaches the same upstream; many users spread out.
    std::set<std::string> seen;
    for (int user = 0; user < 24; user++) {
      const std::string path = "/" + cluster + "/header";
      const std::string first = upstreamOf(port, path, {{"x-user", absl::StrCat("user", user)}});
      EXPECT_EQ(first, upstreamOf(port, path, {{"x-user", absl::StrCat("user", user)}}));
      seen.insert(first);
    }
    EXPECT_GE(seen.size(), 3u);

    // Query parameter: the same.
    const std::string alice = upstreamOf(port, "/" + cluster + "/query?user=alice&x=1");
    for (int i = 0; i < 3; i++) {
      EXPECT_EQ(alice, upstreamOf(port, "/" + cluster + "/query?x=2&user=alice"));
    }

    // Source IP: every connection comes from 127.0.0.1, so one upstream takes them all.
    const std::string by_ip = upstreamOf(port, "/" + cluster + "/ip");
    for (int i = 0; i < 3; i++) {
      EXPECT_EQ(by_ip, upstreamOf(port, "/" + cluster + "/ip"));
    }

    // terminal: with x-user present the query parameter is not mixed in.
    EXPECT_EQ(upstreamOf(port, "/" + cluster + "/header", {{"x-user", "bob"}}),
              upstreamOf(port, "/" + cluster + "/both?user=zed", {{"x-user", "bob"}}));

    // Cookie: without one, the proxy makes one (Envoy's format) and hashes it; sending it back
    // keeps the client on the upstream that answered the first request.
    HttpResponse first = get(port, "/" + cluster + "/cookie");
    ASSERT_EQ(200u, first.status);
    const std::string set_cookie = first.header("set-cookie");
    ASSERT_TRUE(absl::StartsWith(set_cookie, "session=\"")) << set_cookie;
    ASSERT_TRUE(absl::EndsWith(set_cookie, "\"; Max-Age=3600; Path=/; HttpOnly")) << set_cookie;
    const std::string value = set_cookie.substr(9, 16);
    EXPECT_EQ(absl::StrCat("session=\"", value, "\"; Max-Age=3600; Path=/; HttpOnly"), set_cookie);
    for (int i = 0; i < 3; i++) {
      HttpResponse again =
          get(port, "/" + cluster + "/cookie", {{"cookie", absl::StrCat("session=", value)}});
      EXPECT_EQ(first.header("x-upstream"), again.header("x-upstream"));
      EXPECT_FALSE(again.hasHeader("set-cookie"));
    }
  }
  // Envoy's gauges for the structures built.
  absl::StatusOr<std::map<std::string, int64_t>> stats = proxy->stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(256, (*stats)["cluster.ring.ring_hash_lb.min_hashes_per_host"]);
  EXPECT_EQ(1024, (*stats)["cluster.ring.ring_hash_lb.size"]);
  EXPECT_GE((*stats)["cluster.maglev.maglev_lb.min_entries_per_host"], 16384);
}

TEST_F(HashLbIntegrationTest, SameKeysReachTheSameUpstreamsAsEnvoy) {
  const std::string envoy = envoyPath();
  if (envoy.empty()) {
    GTEST_SKIP() << "Envoy is not installed (deploy/install-peers.sh)";
  }
  // The same bootstrap, the same four upstreams, through both.
  std::unique_ptr<ProxyProcess> ours;
  std::unique_ptr<ProxyProcess> theirs;
  const uint32_t our_port = start(ours, "", /*concurrency=*/1);
  const uint32_t envoy_port = start(theirs, envoy, /*concurrency=*/1);
  ASSERT_NE(0u, our_port);
  ASSERT_NE(0u, envoy_port);

  int compared = 0;
  std::set<std::string> seen;
  for (const std::string cluster : {"ring", "maglev", "typed"}) {
    for (int key = 0; key < 60; key++) {
      const std::string user = absl::StrCat("key-", key);
      // Header, query parameter and a cookie the client already has.
      const std::string header_path = "/" + cluster + "/header";
      const std::string via_header = upstreamOf(our_port, header_path, {{"x-user", user}});
      EXPECT_EQ(upstreamOf(envoy_port, header_path, {{"x-user", user}}), via_header)
          << cluster << " header " << user;
      const std::string query_path = absl::StrCat("/", cluster, "/query?user=", user);
      EXPECT_EQ(upstreamOf(envoy_port, query_path), upstreamOf(our_port, query_path))
          << cluster << " query " << user;
      const std::string cookie_path = "/" + cluster + "/cookie";
      const std::vector<std::pair<std::string, std::string>> cookie = {
          {"cookie", absl::StrCat("a=b; session=\"", user, "\"")}};
      EXPECT_EQ(upstreamOf(envoy_port, cookie_path, cookie),
                upstreamOf(our_port, cookie_path, cookie))
          << cluster << " cookie " << user;
      seen.insert(via_header);
      compared += 3;
    }
    // Source IP (127.0.0.1 for both).
    EXPECT_EQ(upstreamOf(envoy_port, "/" + cluster + "/ip"),
              upstreamOf(our_port, "/" + cluster + "/ip"))
        << cluster;
  }
  EXPECT_EQ(540, compared);
  EXPECT_EQ(static_cast<size_t>(kUpstreams), seen.size());

  // A generated cookie has Envoy's shape in both (its value hashes each one's own addresses).
  const std::string ours_cookie = get(our_port, "/ring/cookie").header("set-cookie");
  const std::string envoy_cookie = get(envoy_port, "/ring/cookie").header("set-cookie");
  EXPECT_EQ(envoy_cookie.size(), ours_cookie.size()) << envoy_cookie << " / " << ours_cookie;
  EXPECT_EQ(envoy_cookie.substr(25), ours_cookie.substr(25));
}

}  // namespace
}  // namespace Proxy::Integration
