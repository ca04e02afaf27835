// End-to-end tests of behaviour the conformance corpus (test/conformance/) found to differ from
// Envoy 1.40, one test per fix: the real `proxy` binary, a FakeUpstream that echoes what it
// received as x-echo-* response headers, and a blocking client. 127.0.0.1, port 0, no sleeps.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"
#include "test/integration/refusing_port.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;

constexpr char kListenerName[] = "ingress";

std::string staticCluster(const std::string& name, uint32_t port) {
  return absl::StrCat("{name: ", name, ", type: STATIC, connect_timeout: 1s, load_assignment: ",
                      "{cluster_name: ", name, ", endpoints: [{lb_endpoints: [{endpoint: ",
                      "{address: {socket_address: {address: 127.0.0.1, port_value: ", port,
                      "}}}}]}]}}");
}

// One listener whose HCM has the given extra fields and routes (YAML flow sequences), and the
// given clusters.
std::string bootstrap(const std::string& routes, const std::vector<std::string>& clusters,
                      const std::vector<std::string>& hcm_fields = {}) {
  std::string yaml = R"(admin:
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
)";
  for (const std::string& field : hcm_fields) {
    absl::StrAppend(&yaml, "          ", field, "\n");
  }
  absl::StrAppend(
      &yaml,
      "          route_config: {name: r, virtual_hosts: [{name: v, domains: [\"*\"], routes: ",
      routes, "}]}\n", R"(          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
)");
  for (const std::string& cluster : clusters) {
    absl::StrAppend(&yaml, "  - ", cluster, "\n");
  }
  return yaml;
}

class EnvoyParityIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    FakeUpstreamOptions options;
    options.name = "upstream";
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
  }

  void startProxy(const std::string& yaml) {
    ProxyOptions options;
    options.bootstrap_yaml = yaml;
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort(kListenerName);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // The usual routes: everything to the fake upstream (cluster "up").
  void startForwarding(const std::vector<std::string>& hcm_fields = {},
                       const std::string& route_extra = "") {
    startProxy(
        bootstrap(absl::StrCat("[{match: {prefix: \"/\"}, route: {cluster: up", route_extra, "}}]"),
                  {staticCluster("up", upstream_->port())}, hcm_fields));
  }

  HttpResponse get(std::string path, std::vector<std::pair<std::string, std::string>> headers = {},
                   std::string host = "example.com") {
    HttpRequest request;
    request.path = std::move(path);
    request.host = std::move(host);
    request.headers = std::move(headers);
    absl::StatusOr<HttpResponse> response = httpRequest(port_, request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{};
  }

  FakeUpstreamPtr upstream_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

TEST_F(EnvoyParityIntegrationTest, EveryResponseHasADateAndTheUpstreamsIsKept) {
  startProxy(bootstrap(R"([{match: {prefix: "/direct"}, direct_response: {status: 200}},
                           {match: {prefix: "/"}, route: {cluster: up}}])",
                       {staticCluster("up", upstream_->port())}));

  // A proxied response and a direct response both get an IMF-fixdate Date.
  for (const char* path : {"/proxied", "/direct"}) {
    HttpResponse response = get(path);
    EXPECT_EQ(response.status, 200u) << path;
    const std::string date = response.header("date");
    EXPECT_EQ(date.size(), 29u) << path << ": " << date;
    EXPECT_EQ(date.substr(date.size() - 4), " GMT") << path;
  }
}

TEST_F(EnvoyParityIntegrationTest, ExpectedTimeoutHeaderAndClientTimeoutHeaders) {
  // Addresses in 10/8 are internal, so their x-envoy-* headers are honoured.
  startProxy(bootstrap(R"([{match: {prefix: "/short"}, route: {cluster: up, timeout: 2.5s}},
                           {match: {prefix: "/"}, route: {cluster: up}}])",
                       {staticCluster("up", upstream_->port())},
                       {"internal_address_config: {cidr_ranges: [{address_prefix: 10.0.0.0, "
                        "prefix_len: 8}]}"}));

  // The upstream learns the route timeout: 15 s by default, or the route's.
  EXPECT_EQ(get("/").header("x-echo-x-envoy-expected-rq-timeout-ms"), "15000");
  EXPECT_EQ(get("/short").header("x-echo-x-envoy-expected-rq-timeout-ms"), "2500");

  // An internal client may ask for its own timeout; the header is consumed.
  HttpResponse internal =
      get("/", {{"x-forwarded-for", "10.1.2.3"}, {"x-envoy-upstream-rq-timeout-ms", "1234"}});
  EXPECT_EQ(internal.header("x-echo-x-envoy-expected-rq-timeout-ms"), "1234");
  EXPECT_FALSE(internal.hasHeader("x-echo-x-envoy-upstream-rq-timeout-ms"));
  EXPECT_EQ(internal.header("x-echo-x-envoy-internal"), "true");

  // An external one may not: the header is removed, the route's timeout stands.
  HttpResponse external =
      get("/", {{"x-forwarded-for", "192.0.2.9"}, {"x-envoy-upstream-rq-timeout-ms", "1234"}});
  EXPECT_EQ(external.header("x-echo-x-envoy-expected-rq-timeout-ms"), "15000");
  EXPECT_FALSE(external.hasHeader("x-echo-x-envoy-upstream-rq-timeout-ms"));
  EXPECT_FALSE(external.hasHeader("x-echo-x-envoy-internal"));
}

TEST_F(EnvoyParityIntegrationTest, TimeoutAltResponseIsA204WithoutContentLength) {
  startProxy(bootstrap(R"([{match: {prefix: "/"}, route: {cluster: up, timeout: 0.2s}}])",
                       {staticCluster("up", upstream_->port())},
                       {"internal_address_config: {cidr_ranges: [{address_prefix: 10.0.0.0, "
                        "prefix_len: 8}]}"}));
  // The upstream answers after 2 s; the route gives up after 0.2 s with a 204, not a 504.
  HttpResponse response = get("/", {{"x-forwarded-for", "10.1.2.3"},
                                    {"x-envoy-upstream-rq-timeout-alt-response", "1"},
                                    {"x-fake-delay-ms", "2000"}});
  EXPECT_EQ(response.status, 204u);
  EXPECT_FALSE(response.hasHeader("content-length"));
}

TEST_F(EnvoyParityIntegrationTest, ConnectionRefusedBodyNamesARemoteConnectionFailure) {
  RefusingPort refusing;
  startProxy(bootstrap(R"([{match: {prefix: "/"}, route: {cluster: refused}}])",
                       {staticCluster("refused", refusing.port())}));
  HttpResponse response = get("/");
  EXPECT_EQ(response.status, 503u);
  EXPECT_EQ(response.body,
            "upstream connect error or disconnect/reset before headers. reset "
            "reason: remote connection failure");
}

TEST_F(EnvoyParityIntegrationTest, CreatedAndRedirectingDirectResponsesCarryLocation) {
  startProxy(bootstrap(R"([{match: {prefix: "/made"}, direct_response: {status: 201}},
                           {match: {prefix: "/moved"}, direct_response: {status: 302}},
                           {match: {prefix: "/"}, direct_response: {status: 200}}])",
                       {staticCluster("up", upstream_->port())}));
  EXPECT_EQ(get("/made/it?x=1", {}, "example.com:8080").header("location"),
            "http://example.com:8080/made/it?x=1");
  EXPECT_EQ(get("/moved", {{"x-forwarded-proto", "https"}}).header("location"),
            "https://example.com/moved");
  EXPECT_FALSE(get("/plain").hasHeader("location"));
}

TEST_F(EnvoyParityIntegrationTest, EdgeRequestsAreSanitisedAndMarkedExternal) {
  startForwarding({"use_remote_address: true"});
  HttpResponse response = get("/", {{"x-envoy-retry-on", "5xx"},
                                    {"x-envoy-original-path", "/forged"},
                                    {"x-envoy-internal", "true"},
                                    {"x-custom", "kept"}});
  // The client's x-envoy-* control headers are gone; its own headers are not.
  EXPECT_FALSE(response.hasHeader("x-echo-x-envoy-retry-on"));
  EXPECT_FALSE(response.hasHeader("x-echo-x-envoy-original-path"));
  EXPECT_FALSE(response.hasHeader("x-echo-x-envoy-internal"));
  EXPECT_EQ(response.header("x-echo-x-custom"), "kept");
  // The request is external: the proxy says where it came from. A loopback client stands for
  // this machine in x-forwarded-for (Envoy appends its local address), so that is not checked
  // here (conn_manager_utility_test covers it).
  EXPECT_EQ(response.header("x-echo-x-envoy-external-address"), "127.0.0.1");
  EXPECT_EQ(response.header("x-echo-x-forwarded-proto"), "http");
}

TEST_F(EnvoyParityIntegrationTest, ConnectionNominatedHeadersAreHopByHop) {
  startForwarding();
  // Nominated headers do not reach the upstream; TE passes only as "trailers".
  HttpResponse response =
      get("/", {{"connection", "x-a, te"}, {"x-a", "1"}, {"x-b", "2"}, {"te", "gzip, trailers"}});
  EXPECT_EQ(response.status, 200u);
  EXPECT_FALSE(response.hasHeader("x-echo-x-a"));
  EXPECT_EQ(response.header("x-echo-x-b"), "2");
  EXPECT_EQ(response.header("x-echo-te"), "trailers");
  EXPECT_FALSE(get("/", {{"te", "gzip"}}).hasHeader("x-echo-te"));

  // Nominating x-forwarded-for would hide the client: refused, and the connection closes.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)
                  ->sendRaw("GET / HTTP/1.1\r\nhost: example.com\r\n"
                            "connection: x-forwarded-for\r\n\r\n")
                  .ok());
  absl::StatusOr<HttpResponse> refused = (*client)->readResponse();
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 400u);
  EXPECT_EQ(refused->body, "Bad Request");
  EXPECT_TRUE((*client)->waitForClose(5s));
  EXPECT_EQ(upstream_->requestsReceived(), 2u);
}

TEST_F(EnvoyParityIntegrationTest, RouteHostRewriteKeepsTheOriginalHost) {
  startForwarding({}, ", host_rewrite_literal: backend.internal");
  HttpResponse response = get("/", {{"x-envoy-original-host", "forged"}}, "public.example.com");
  EXPECT_EQ(response.header("x-echo-authority"), "backend.internal");
  EXPECT_EQ(response.header("x-echo-x-envoy-original-host"), "public.example.com");
}

TEST_F(EnvoyParityIntegrationTest, MissingHostIsA400WithoutBody) {
  startForwarding();
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->sendRaw("GET / HTTP/1.1\r\nx-a: 1\r\n\r\n").ok());
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400u);
  EXPECT_EQ(response->body, "");
  EXPECT_EQ(response->header("content-length"), "0");
}

TEST_F(EnvoyParityIntegrationTest, StripMatchingHostPortDropsOnlyTheListenersPort) {
  startForwarding({"strip_matching_host_port: true"});
  EXPECT_EQ(get("/", {}, absl::StrCat("api.example.com:", port_)).header("x-echo-authority"),
            "api.example.com");
  EXPECT_EQ(get("/", {}, "api.example.com:9999").header("x-echo-authority"),
            "api.example.com:9999");
}

}  // namespace
}  // namespace Proxy::Integration
