// auto_config upstream clusters (HttpProtocolOptions.auto_config, Envoy's mixed pool) end to end:
// the front proxy offers ALPN h2 and http/1.1 over TLS and speaks what each upstream's handshake
// chose. The upstreams are real TLS servers that offer one protocol each: a backend proxy
// terminating TLS with alpn_protocols [h2] on one listener and [http/1.1] on another (its own
// stats say which protocol arrived), and openssl s_server offering only http/1.1. The same front
// bootstrap runs through Envoy 1.40 and must count the same protocols.

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "test/integration/proxy_integration_test_fixture.h"
#include "test/integration/tls_test_util.h"

namespace Proxy::Integration {
namespace {

std::string envoyPath() {
  if (const char* env = std::getenv("ENVOY_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  auto path = runCommand(
      {"cat", absl::StrCat(home != nullptr ? home : "", "/.cache/xds-proxy-peers/envoy-path")}, "",
      5s);
  if (!path.ok() || path->exit_code != 0) {
    return "";
  }
  std::string out = path->stdout_text;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

class UpstreamAutoConfigIntegrationTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pki = TestPki::create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new TestPki(*std::move(pki));
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override {
    FakeUpstreamOptions options;
    options.name = "origin";
    auto upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    origin_ = std::move(*upstream);
  }

  // A TLS-terminating listener of the backend that offers only `alpn`, codec AUTO, to origin.
  std::string backendListener(const std::string& name, const std::string& alpn) const {
    return absl::StrReplaceAll(R"(  - name: NAME
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [ALPN]
            tls_certificates: [{certificate_chain: {filename: CERT}, private_key: {filename: KEY}}]
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: NAME
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: origin}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)",
                               {{"NAME", name},
                                {"ALPN", alpn},
                                {"CERT", pki_->cert("server")},
                                {"KEY", pki_->key("server")}});
  }

  std::unique_ptr<ProxyProcess> startBackend() {
    ProxyOptions options;
    options.bootstrap_yaml =
        absl::StrCat("admin:\n  address: {socket_address: {address: 127.0.0.1, port_value: 0}}\n",
                     "static_resources:\n  listeners:\n", backendListener("h2_only", "h2"),
                     backendListener("h1_only", "http/1.1"), "  clusters:\n  - ",
                     staticCluster("origin", {origin_->port()}), "\n");
    auto backend = std::make_unique<ProxyProcess>(options);
    EXPECT_TRUE(backend->start());
    return backend;
  }

  // An auto_config cluster to 127.0.0.1:`port` over TLS verifying the "server" certificate.
  std::string autoCluster(const std::string& name, uint32_t port,
                          const std::string& auto_config = "{}") const {
    return absl::StrCat(
        "{name: ", name,
        R"(, type: STATIC, connect_timeout: 2s, typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, auto_config: )",
        auto_config,
        R"(}}, transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: localhost, common_tls_context: {validation_context: {trusted_ca: {filename: )",
        pki_->ca(), "}}}}}, load_assignment: {cluster_name: ", name,
        ", endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: "
        "127.0.0.1, port_value: ",
        port, "}}}}]}]}}");
  }

  // The front: /h2/... to `to_h2`, everything else to `to_h1`.
  static std::string frontBootstrap(const std::vector<std::string>& clusters) {
    BootstrapSpec spec;
    spec.virtual_hosts = {
        R"({name: all, domains: ["*"], routes: [{match: {prefix: "/h2/"}, route: {cluster: to_h2}}, {match: {prefix: "/"}, route: {cluster: to_h1}}]})"};
    spec.clusters = clusters;
    return bootstrapYaml(spec);
  }

  static std::unique_ptr<ProxyProcess> startFront(const std::string& yaml,
                                                  const std::string& binary = "") {
    ProxyOptions options;
    options.binary = binary;
    options.bootstrap_yaml = yaml;
    auto front = std::make_unique<ProxyProcess>(options);
    EXPECT_TRUE(front->start());
    return front;
  }

  static void expectOk(uint32_t port, const std::string& path) {
    HttpRequest request;
    request.path = path;
    absl::StatusOr<HttpResponse> response = httpRequest(port, request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u) << path << ": " << response->body;
  }

  static TestPki* pki_;
  FakeUpstreamPtr origin_;
};

TestPki* UpstreamAutoConfigIntegrationTest::pki_ = nullptr;

TEST_F(UpstreamAutoConfigIntegrationTest, TheUpstreamsAlpnChoosesHttp2OrHttp1AsInEnvoy) {
  auto backend = startBackend();
  auto h2_port = backend->listenerPort("h2_only");
  auto h1_port = backend->listenerPort("h1_only");
  ASSERT_TRUE(h2_port.ok() && h1_port.ok());
  const std::string yaml = frontBootstrap(
      {autoCluster("to_h2", *h2_port,
                   "{http_protocol_options: {}, http2_protocol_options: {max_concurrent_streams: "
                   "100}}"),
       autoCluster("to_h1", *h1_port)});

  // Ours: four requests at once to each cluster, sent before any upstream connection exists:
  // they wait on the first connection's handshake. HTTP/2 carries all four on that one
  // connection; HTTP/1.1 takes them one per connection (the first on the adopted one).
  auto front = startFront(yaml);
  auto port = front->listenerPort("ingress");
  ASSERT_TRUE(port.ok()) << port.status();
  for (const std::string prefix : {"/h2/", "/h1/"}) {
    std::vector<std::unique_ptr<HttpClient>> clients;
    for (int i = 0; i < 4; i++) {
      auto client = HttpClient::connect(*port);
      ASSERT_TRUE(client.ok()) << client.status();
      ASSERT_TRUE(
          (*client)
              ->sendRaw(absl::StrCat("GET ", prefix, i, " HTTP/1.1\r\nHost: example.com\r\n\r\n"))
              .ok());
      clients.push_back(std::move(*client));
    }
    for (auto& client : clients) {
      absl::StatusOr<HttpResponse> response = client->readResponse();
      ASSERT_TRUE(response.ok()) << response.status();
      EXPECT_EQ(response->status, 200u) << response->body;
      EXPECT_TRUE(absl::StartsWith(response->body, "hello from origin")) << response->body;
    }
  }
  // Then one more each, on the pooled connections.
  expectOk(*port, "/h2/again");
  expectOk(*port, "/h1/again");

  // What arrived at the backend, per listener: HTTP/2 on the h2-only one, HTTP/1.1 on the other.
  EXPECT_TRUE(backend->waitForCounterGe("http.h2_only.downstream_rq_http2_total", 5));
  EXPECT_EQ(backend->counter("http.h2_only.downstream_cx_http2_total").value_or(-1), 1);
  EXPECT_EQ(backend->counter("http.h2_only.downstream_rq_http1_total").value_or(-1), 0);
  EXPECT_TRUE(backend->waitForCounterGe("http.h1_only.downstream_rq_http1_total", 5));
  EXPECT_EQ(backend->counter("http.h1_only.downstream_rq_http2_total").value_or(-1), 0);
  // The front's own count, with Envoy's names.
  EXPECT_EQ(front->counter("cluster.to_h2.upstream_cx_http2_total").value_or(-1), 1);
  EXPECT_EQ(front->counter("cluster.to_h2.upstream_cx_http1_total").value_or(-1), 0);
  EXPECT_EQ(front->counter("cluster.to_h2.upstream_cx_total").value_or(-1), 1);
  const int64_t h1_connections = front->counter("cluster.to_h1.upstream_cx_total").value_or(-1);
  EXPECT_GE(h1_connections, 1);
  EXPECT_LE(h1_connections, 4);
  EXPECT_EQ(front->counter("cluster.to_h1.upstream_cx_http1_total").value_or(-1), h1_connections);
  EXPECT_EQ(front->counter("cluster.to_h1.upstream_cx_http2_total").value_or(-1), 0);
  EXPECT_EQ(front->counter("cluster.to_h1.upstream_rq_total").value_or(-1), 5);
  EXPECT_EQ(front->counter("cluster.to_h2.ssl.handshake").value_or(-1), 1);

  // Envoy 1.40 with the same bootstrap, one request after the other: the same protocols, each
  // on one kept-alive connection, counted under the same names.
  const std::string envoy = envoyPath();
  if (envoy.empty()) {
    GTEST_SKIP() << "Envoy is not installed (deploy/install-peers.sh)";
  }
  std::unique_ptr<ProxyProcess> fronts[2] = {startFront(yaml), startFront(yaml, envoy)};
  for (auto& f : fronts) {
    auto f_port = f->listenerPort("ingress");
    ASSERT_TRUE(f_port.ok()) << f_port.status();
    for (const char* path : {"/h2/a", "/h2/b", "/h1/a", "/h1/b"}) {
      expectOk(*f_port, path);
    }
  }
  // (Envoy also counts upstream_cx_total twice for the first connection, once as its TCP
  // client and once as the HTTP client that takes it over; ours counts connections:
  // KNOWN_DIFFERENCES.md.)
  for (const char* name : {"to_h2.upstream_cx_http2_total", "to_h2.upstream_cx_http1_total",
                           "to_h1.upstream_cx_http1_total", "to_h1.upstream_cx_http2_total",
                           "to_h2.upstream_rq_total", "to_h1.upstream_rq_total"}) {
    const std::string stat = absl::StrCat("cluster.", name);
    EXPECT_EQ(fronts[0]->counter(stat).value_or(-1), fronts[1]->counter(stat).value_or(-2)) << stat;
  }
  EXPECT_EQ(fronts[0]->counter("cluster.to_h2.upstream_cx_http2_total").value_or(-1), 1);
  EXPECT_EQ(fronts[0]->counter("cluster.to_h1.upstream_cx_http1_total").value_or(-1), 1);
  EXPECT_EQ(fronts[0]->counter("cluster.to_h1.upstream_cx_total").value_or(-1), 1);
}

TEST_F(UpstreamAutoConfigIntegrationTest, OpensslServerOfferingOnlyHttp1GetsHttp1) {
  // openssl s_server -www offering only http/1.1: it answers every request with a status page
  // (its TLS session) and closes the connection.
  auto server = BackgroundProcess::start({"openssl", "s_server", "-accept", "0", "-www", "-cert",
                                          pki_->cert("server"), "-key", pki_->key("server"),
                                          "-alpn", "http/1.1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto banner = (*server)->waitForOutput("ACCEPT", 10s);
  ASSERT_TRUE(banner.ok()) << banner.status();
  const uint32_t server_port =
      static_cast<uint32_t>(std::stoul(banner->substr(banner->rfind(':') + 1)));

  auto front = startFront(frontBootstrap(
      {autoCluster("to_h1", server_port), staticCluster("to_h2", {origin_->port()})}));
  auto port = front->listenerPort("ingress");
  ASSERT_TRUE(port.ok()) << port.status();
  HttpRequest request;
  request.path = "/";
  absl::StatusOr<HttpResponse> response = httpRequest(*port, request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_TRUE(absl::StrContains(response->body, "TLSv1.3")) << response->body;
  EXPECT_EQ(front->counter("cluster.to_h1.upstream_cx_http1_total").value_or(-1), 1);
  EXPECT_EQ(front->counter("cluster.to_h1.upstream_cx_http2_total").value_or(-1), 0);
}

TEST_F(UpstreamAutoConfigIntegrationTest, AutoConfigWithoutTlsIsRefusedWithEnvoysWords) {
  // ALPN needs TLS: a plaintext auto_config cluster is refused, by Envoy as by us.
  const std::string yaml = frontBootstrap(
      {absl::StrCat(
           R"({name: to_h1, type: STATIC, typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, auto_config: {}}}, load_assignment: {cluster_name: to_h1, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
           origin_->port(), "}}}}]}]}}"),
       staticCluster("to_h2", {origin_->port()})});
  const std::string words =
      "ALPN configured for cluster to_h1 which has a non-ALPN transport socket";
  std::vector<std::string> binaries = {""};
  if (const std::string envoy = envoyPath(); !envoy.empty()) {
    binaries.push_back(envoy);
  }
  for (const std::string& binary : binaries) {
    ProxyOptions options;
    options.binary = binary;
    options.bootstrap_yaml = yaml;
    ProxyProcess process(options);
    absl::StatusOr<ProcessResult> result = process.runToCompletion({"--mode", "validate"});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->exit_code, 0) << binary;
    EXPECT_TRUE(absl::StrContains(result->stdout_text + result->stderr_text, words))
        << binary << ": " << result->stderr_text;
  }
}

}  // namespace
}  // namespace Proxy::Integration
