// Downstream TLS end to end: the real proxy binary with envoy.transport_sockets.tls on its
// listener, real TLS peers (curl, openssl s_client) and certificates made by the openssl CLI at
// test time (tls_test_util.h). Each test proves one behaviour a TLS edge proxy is judged by:
// it serves HTTPS, it refuses what it must refuse (plaintext, no/expired/untrusted/wrong-SAN
// client certificates, TLS versions outside its range, a stalled handshake) and counts each in
// Envoy's stats.

#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "test/integration/proxy_integration_test_fixture.h"
#include "test/integration/tls_client_connection.h"
#include "test/integration/tls_test_util.h"

namespace Proxy::Integration {
namespace {

class TlsIntegrationTest : public testing::Test {
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
    options.name = "upstream-1";
    auto upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
  }

  // A bootstrap whose listener "ingress" has one filter chain: `chain_fields` (YAML fields such
  // as transport_socket, one per line, indented by 6) and an HCM routing everything to
  // upstream-1.
  std::string bootstrap(const std::string& chain_fields) const {
    return absl::StrReplaceAll(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - CHAIN_FIELDS
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: service1}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - CLUSTER
)",
                               {{"CHAIN_FIELDS", chain_fields},
                                {"CLUSTER", staticCluster("service1", {upstream_->port()})}});
  }

  // transport_socket: envoy.transport_sockets.tls with `context_fields` added to a
  // DownstreamTlsContext serving the "server" certificate from files.
  std::string tlsTransportSocket(const std::string& context_fields,
                                 const std::string& common_fields = "") const {
    return absl::StrCat(
        R"(transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, )",
        context_fields, context_fields.empty() ? "" : ", ",
        "common_tls_context: {tls_certificates: [{certificate_chain: {filename: ",
        pki_->cert("server"), "}, private_key: {filename: ", pki_->key("server"), "}}]",
        common_fields.empty() ? "" : ", ", common_fields, "}}}");
  }

  std::string validationContext(const std::string& san_matchers) const {
    return absl::StrCat(
        "validation_context: {trusted_ca: {filename: ", pki_->ca(), "}",
        san_matchers.empty() ? "" : ", match_typed_subject_alt_names: ", san_matchers, "}");
  }

  std::unique_ptr<ProxyProcess> startProxy(const std::string& yaml) {
    ProxyOptions options;
    options.bootstrap_yaml = yaml;
    auto proxy = std::make_unique<ProxyProcess>(options);
    EXPECT_TRUE(proxy->start());
    auto port = proxy->listenerPort("ingress");
    EXPECT_TRUE(port.ok()) << port.status();
    port_ = port.ok() ? *port : 0;
    return proxy;
  }

  std::string sslStat(const std::string& name) const {
    return absl::StrCat("listener.127.0.0.1_", port_, ".ssl.", name);
  }

  // One HTTP/1.1 request over `openssl s_client` with `extra` arguments; its stdout (the
  // handshake summary, then the response) and whether a response came back.
  CommandResult sClient(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {"openssl", "s_client", "-connect",
                                     absl::StrCat("127.0.0.1:", port_), "-ign_eof"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto result =
        runCommand(args, "GET /tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  std::vector<std::string> clientCert(const std::string& name) const {
    return {"-cert", pki_->cert(name), "-key", pki_->key(name)};
  }

  static TestPki* pki_;
  FakeUpstreamPtr upstream_;
  uint32_t port_ = 0;
};

TestPki* TlsIntegrationTest::pki_ = nullptr;

TEST_F(TlsIntegrationTest, ServesHttpsAndRefusesPlaintextAndStalledHandshakes) {
  // A TLS listener offering ALPN http/1.1, whose handshakes must finish within 300 ms.
  auto proxy =
      startProxy(bootstrap(absl::StrCat("transport_socket_connect_timeout: 0.3s\n      ",
                                        tlsTransportSocket("", "alpn_protocols: [h2, http/1.1]"))));

  // curl verifies the proxy's certificate against the test CA and gets the upstream's answer.
  auto curl = runCommand({"curl", "-sS", "--http1.1", "--cacert", pki_->ca(), "--resolve",
                          absl::StrCat("localhost:", port_, ":127.0.0.1"),
                          absl::StrCat("https://localhost:", port_, "/over-tls")},
                         "", 10s);
  ASSERT_TRUE(curl.ok()) << curl.status();
  EXPECT_EQ(curl->exit_code, 0) << curl->stderr_text;
  EXPECT_EQ(curl->stdout_text, "hello from upstream-1\npath: /over-tls\n");

  // openssl s_client negotiates http/1.1 by ALPN and verifies the certificate too.
  CommandResult s = sClient({"-alpn", "http/1.1", "-CAfile", pki_->ca(), "-verify_return_error",
                             "-servername", "localhost"});
  EXPECT_TRUE(absl::StrContains(s.stdout_text, "ALPN protocol: http/1.1")) << s.stdout_text;
  EXPECT_TRUE(absl::StrContains(s.stdout_text, "Verify return code: 0 (ok)")) << s.stdout_text;
  EXPECT_TRUE(absl::StrContains(s.stdout_text, "HTTP/1.1 200 OK")) << s.stdout_text;
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("handshake"), 2));
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("versions.TLSv1.3"), 2));
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("curves.X25519"), 2));
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("no_certificate"), 2));

  // Plaintext HTTP to the TLS port: the handshake fails and the connection closes, with no
  // HTTP answer (never a plaintext fallback).
  {
    auto client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->sendRaw("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").ok());
    auto response = (*client)->readResponse();
    EXPECT_FALSE(response.ok());
    EXPECT_TRUE(proxy->waitForCounterGe(sslStat("connection_error"), 1));
  }

  // A peer that connects and never says anything is closed by the handshake timeout.
  {
    auto client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_TRUE((*client)->waitForClose(5s));
    EXPECT_TRUE(
        proxy->waitForCounterGe(absl::StrCat("listener.127.0.0.1_", port_,
                                             ".downstream_cx_transport_socket_connect_timeout"),
                                1));
  }
}

// A read pass ends at a short read (an SSL_read shorter than asked with nothing left in
// OpenSSL's buffers: no further read() only to learn EAGAIN, issue 14). That must not hide a
// reset queued behind the request in the same wake-up: the upstream holds its answer for 20 s,
// so only the reset itself can end this request in time.
TEST_F(TlsIntegrationTest, ARequestAndAResetQueuedTogetherAreBothSeen) {
  auto proxy = startProxy(bootstrap(tlsTransportSocket("")));
  auto client = TlsClientConnection::connect(port_);
  ASSERT_NE(client, nullptr);
  // A first exchange: the handshake (and TLS 1.3's tickets) are behind us on both sides.
  EXPECT_EQ(client->get("/first"), 200);

  // The proxy is stopped while the second request and the reset are queued to it.
  ASSERT_TRUE(proxy->sendSignal(SIGSTOP));
  int status = 0;
  ASSERT_EQ(::waitpid(proxy->pid(), &status, WUNTRACED), proxy->pid());
  ASSERT_TRUE(WIFSTOPPED(status));
  ASSERT_TRUE(client->sendThenReset(
      "GET /held HTTP/1.1\r\nHost: localhost\r\nx-fake-delay-ms: 20000\r\n\r\n"));
  ASSERT_TRUE(proxy->sendSignal(SIGCONT));

  // The request was decoded (a stream to reset) and the reset ended it and the connection.
  EXPECT_TRUE(proxy->waitForCounterGe("http.ingress_http.downstream_rq_rx_reset", 1, 5s));
  EXPECT_TRUE(proxy->waitForCounterGe("http.ingress_http.downstream_cx_destroy_remote", 1, 5s));
}

TEST_F(TlsIntegrationTest, AlpnChoosesHttp2OrHttp1OnAnAutoListener) {
  // codec_type AUTO (the default) behind TLS offering h2 and http/1.1: the negotiated ALPN picks
  // the codec, as Envoy's determineNextProtocol does.
  auto proxy = startProxy(bootstrap(tlsTransportSocket("", "alpn_protocols: [h2, http/1.1]")));
  auto curlWith = [&](const std::string& version) {
    auto result =
        runCommand({"curl", "-sS", version, "-w", "|%{http_version}", "--cacert", pki_->ca(),
                    "--resolve", absl::StrCat("localhost:", port_, ":127.0.0.1"),
                    absl::StrCat("https://localhost:", port_, "/alpn")},
                   "", 10s);
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result.ok() ? result->exit_code : -1, 0) << (result.ok() ? result->stderr_text : "");
    return result.ok() ? result->stdout_text : "";
  };
  // curl --http2 offers h2 first: HTTP/2 over TLS, to the HTTP/1.1 upstream and back.
  EXPECT_EQ(curlWith("--http2"), "hello from upstream-1\npath: /alpn\n|2");
  // curl --http1.1 offers only http/1.1: HTTP/1.1.
  EXPECT_EQ(curlWith("--http1.1"), "hello from upstream-1\npath: /alpn\n|1.1");
  // nghttp over TLS (ALPN h2), three streams on one connection.
  auto nghttp = runCommand(
      {"nghttp", "-n", "-s", "-m", "3", absl::StrCat("https://127.0.0.1:", port_, "/nghttp")}, "",
      10s);
  ASSERT_TRUE(nghttp.ok()) << nghttp.status();
  EXPECT_EQ(nghttp->exit_code, 0) << nghttp->stdout_text << nghttp->stderr_text;
  EXPECT_TRUE(proxy->waitForCounterGe("http.ingress_http.downstream_cx_http2_total", 2));
  EXPECT_TRUE(proxy->waitForCounterGe("http.ingress_http.downstream_rq_http2_total", 4));
  EXPECT_TRUE(proxy->waitForCounterGe("http.ingress_http.downstream_cx_http1_total", 1));
  EXPECT_EQ(upstream_->requestsReceived(), 5u);
}

TEST_F(TlsIntegrationTest, MutualTlsRequiresATrustedUnexpiredClientCertificateWithTheRightSan) {
  // Client certificates are required, must chain to the test CA and carry the SAN
  // DNS client.example.com.
  auto proxy = startProxy(bootstrap(tlsTransportSocket(
      "require_client_certificate: true",
      validationContext(R"([{san_type: DNS, matcher: {exact: client.example.com}}])"))));

  // The right certificate: served.
  CommandResult ok = sClient(clientCert("client"));
  EXPECT_TRUE(absl::StrContains(ok.stdout_text, "HTTP/1.1 200 OK")) << ok.stdout_text;

  // No certificate, an untrusted one, an expired one, a wrong SAN: no response, each counted.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, clientCert("client_untrusted"), clientCert("client_expired"),
        clientCert("client_wrong_san")}) {
    CommandResult refused = sClient(args);
    EXPECT_FALSE(absl::StrContains(refused.stdout_text, "HTTP/1.1")) << refused.stdout_text;
  }
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("fail_verify_no_cert"), 1));
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("fail_verify_error"), 2));
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("fail_verify_san"), 1));
  // Envoy 1.40 with the same config and peers counts exactly these: one handshake, and
  // verification failures are not connection errors.
  auto handshakes = proxy->counter(sslStat("handshake"));
  ASSERT_TRUE(handshakes.ok()) << handshakes.status();
  EXPECT_EQ(*handshakes, 1);
  auto errors = proxy->counter(sslStat("connection_error"));
  ASSERT_TRUE(errors.ok()) << errors.status();
  EXPECT_EQ(*errors, 0);

  // /certs lists the context's CA and certificate chain as Envoy's does.
  auto certs = proxy->adminGet("/certs");
  ASSERT_TRUE(certs.ok()) << certs.status();
  for (const std::string& expected :
       {absl::StrCat("\"ca_cert\": [\n    {\n     \"path\": \"", pki_->ca(), "\""),
        absl::StrCat("\"cert_chain\": [\n    {\n     \"path\": \"", pki_->cert("server"),
                     "\",\n     \"serial_number\": \"1000\""),
        std::string("{\n       \"dns\": \"localhost\"\n      }"),
        std::string("{\n       \"ip_address\": \"127.0.0.1\"\n      }")}) {
    EXPECT_TRUE(absl::StrContains(certs->body, expected)) << expected << "\nin\n" << certs->body;
  }
  // The certificates were made for 30 days moments ago: 30 within their first second, then 29.
  EXPECT_TRUE(absl::StrContains(certs->body, "\"days_until_expiration\": \"29\"") ||
              absl::StrContains(certs->body, "\"days_until_expiration\": \"30\""))
      << certs->body;
}

TEST_F(TlsIntegrationTest, TlsParametersBoundVersionsAndCiphersAndRenegotiationIsRefused) {
  // TLS 1.2 only, one cipher suite.
  auto proxy = startProxy(bootstrap(
      tlsTransportSocket("",
                         "tls_params: {tls_maximum_protocol_version: TLSv1_2, cipher_suites: "
                         "[ECDHE-ECDSA-AES128-GCM-SHA256], ecdh_curves: [P-256]}")));

  // A TLS 1.3-only client cannot connect.
  CommandResult v13 = sClient({"-tls1_3"});
  EXPECT_FALSE(absl::StrContains(v13.stdout_text, "HTTP/1.1")) << v13.stdout_text;
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("connection_error"), 1));

  // A default client gets TLS 1.2 with the configured cipher, counted per version and cipher.
  CommandResult v12 = sClient({});
  EXPECT_TRUE(absl::StrContains(v12.stdout_text, "HTTP/1.1 200 OK")) << v12.stdout_text;
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("versions.TLSv1.2"), 1));
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("ciphers.ECDHE-ECDSA-AES128-GCM-SHA256"), 1));
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("curves.P-256"), 1));

  // A client-initiated renegotiation ("R" on s_client's stdin) is refused: no second request
  // is answered on that connection.
  auto renegotiate =
      runCommand({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_), "-tls1_2"},
                 "R\n", 10s);
  ASSERT_TRUE(renegotiate.ok()) << renegotiate.status();
  EXPECT_TRUE(
      absl::StrContains(renegotiate->stdout_text + renegotiate->stderr_text, "no renegotiation"))
      << renegotiate->stdout_text << renegotiate->stderr_text;
}

TEST_F(TlsIntegrationTest, BadTlsConfigIsRefusedNamingTheField) {
  // A certificate file that does not exist.
  {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrap(absl::StrCat(
        R"(transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, common_tls_context: {tls_certificates: [{certificate_chain: {filename: /nonexistent.pem}, private_key: {filename: )",
        pki_->key("server"), "}}]}}}"));
    ProxyProcess proxy(options);
    auto result = proxy.runToCompletion({"--mode", "validate"});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->exit_code, 0);
    EXPECT_TRUE(absl::StrContains(
        result->stderr_text,
        "filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0]."
        "certificate_chain: cannot read file '/nonexistent.pem'"))
        << result->stderr_text;
  }
  // A key that is not the certificate's.
  {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrap(absl::StrCat(
        R"(transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, common_tls_context: {tls_certificates: [{certificate_chain: {filename: )",
        pki_->cert("server"), "}, private_key: {filename: ", pki_->key("client"), "}}]}}}"));
    ProxyProcess proxy(options);
    auto result = proxy.runToCompletion({"--mode", "validate"});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->exit_code, 0);
    EXPECT_TRUE(absl::StrContains(result->stderr_text,
                                  "tls_certificates[0].private_key: does not match the "
                                  "certificate chain"))
        << result->stderr_text;
  }
  // A field the proxy does not implement (require_sni) is refused, not ignored.
  {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrap(tlsTransportSocket("require_sni: true"));
    ProxyProcess proxy(options);
    auto result = proxy.runToCompletion({"--mode", "validate"});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->exit_code, 0);
    EXPECT_TRUE(absl::StrContains(result->stderr_text,
                                  "transport_socket.typed_config.require_sni: not supported"))
        << result->stderr_text;
  }
}

TEST_F(TlsIntegrationTest, OnePortChoosesTheCertificateBySniAndServesPlaintextToo) {
  // One listener, the tls_inspector, three chains: server.example.com (certificate "server"),
  // *.wild.example.com (certificate "server2") and plaintext (transport_protocol raw_buffer).
  const std::string hcm = absl::StrCat(
      R"({name: envoy.filters.network.http_connection_manager, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, stat_prefix: ingress_http, route_config: {virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: service1}}]}]}, http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]}})");
  auto tls_with = [this](const std::string& cert) {
    return absl::StrCat(
        R"({name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, common_tls_context: {tls_certificates: [{certificate_chain: {filename: )",
        pki_->cert(cert), "}, private_key: {filename: ", pki_->key(cert), "}}]}}}");
  };
  const std::string yaml = absl::StrReplaceAll(
      R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    listener_filters_timeout: 0.3s
    filter_chains:
    - filter_chain_match: {server_names: [server.example.com]}
      transport_socket: TLS_SERVER
      filters: [HCM]
    - filter_chain_match: {server_names: ["*.wild.example.com"]}
      transport_socket: TLS_SERVER2
      filters: [HCM]
    - filter_chain_match: {transport_protocol: raw_buffer}
      filters: [HCM]
  clusters:
  - CLUSTER
)",
      {{"TLS_SERVER2", tls_with("server2")},
       {"TLS_SERVER", tls_with("server")},
       {"HCM", hcm},
       {"CLUSTER", staticCluster("service1", {upstream_->port()})}});
  auto proxy = startProxy(yaml);

  // SNI server.example.com: the "server" certificate, and the request is served.
  CommandResult exact = sClient({"-servername", "server.example.com"});
  EXPECT_TRUE(absl::StrContains(exact.stdout_text, "subject=CN = server\n")) << exact.stdout_text;
  EXPECT_TRUE(absl::StrContains(exact.stdout_text, "HTTP/1.1 200 OK")) << exact.stdout_text;

  // SNI a.wild.example.com matches the wildcard chain: the "server2" certificate.
  CommandResult wild = sClient({"-servername", "a.wild.example.com"});
  EXPECT_TRUE(absl::StrContains(wild.stdout_text, "subject=CN = server2")) << wild.stdout_text;
  EXPECT_TRUE(absl::StrContains(wild.stdout_text, "HTTP/1.1 200 OK")) << wild.stdout_text;

  // Plaintext HTTP on the same port takes the raw_buffer chain.
  {
    auto client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = "/plain";
    auto response = (*client)->request(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
  }

  // An SNI no chain names: no filter chain matches and the connection is closed.
  CommandResult unknown = sClient({"-servername", "unknown.example.org"});
  EXPECT_FALSE(absl::StrContains(unknown.stdout_text, "HTTP/1.1")) << unknown.stdout_text;
  const std::string listener = absl::StrCat("listener.127.0.0.1_", port_, ".");
  EXPECT_TRUE(proxy->waitForCounterGe(listener + "no_filter_chain_match", 1));

  // A client that connects and stays silent is closed by listener_filters_timeout.
  {
    auto client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_TRUE((*client)->waitForClose(5s));
    EXPECT_TRUE(proxy->waitForCounterGe(listener + "downstream_pre_cx_timeout", 1));
  }
  EXPECT_TRUE(proxy->waitForCounterGe(sslStat("handshake"), 2));
}

TEST_F(TlsIntegrationTest, UpstreamTlsVerifiesTheServerPresentsAClientCertificateAndResumes) {
  // openssl s_server as the upstream: it requires a client certificate from the test CA and
  // answers every request with a status page (-www), closing the connection after each; -msg
  // prints the TLS messages it receives (the alerts).
  auto server = BackgroundProcess::start({"openssl", "s_server", "-accept", "0", "-www", "-cert",
                                          pki_->cert("server"), "-key", pki_->key("server"),
                                          "-Verify", "1", "-CAfile", pki_->ca(), "-msg"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto banner = (*server)->waitForOutput("ACCEPT", 10s);
  ASSERT_TRUE(banner.ok()) << banner.status();
  const std::string after = banner->substr(banner->rfind(':') + 1);
  const uint32_t upstream_port = static_cast<uint32_t>(std::stoul(after));

  // Two clusters on that server, both presenting the "client" certificate: "secure" expects
  // the server's SAN localhost, "pinned_elsewhere" a SAN the server does not have.
  auto upstream_tls = [this](const std::string& san) {
    return absl::StrCat(
        R"(transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: localhost, common_tls_context: {tls_certificates: [{certificate_chain: {filename: )",
        pki_->cert("client"), "}, private_key: {filename: ", pki_->key("client"),
        "}}], validation_context: {trusted_ca: {filename: ", pki_->ca(),
        "}, match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: ", san, "}}]}}}}");
  };
  auto cluster = [&](const std::string& name, const std::string& san) {
    std::string c = staticCluster(name, {upstream_port});
    c.pop_back();  // the closing brace: add the transport socket inside
    return absl::StrCat(c, ", ", upstream_tls(san), "}");
  };
  const std::string yaml = absl::StrReplaceAll(
      R"(admin:
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
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/wrong"}, route: {cluster: pinned_elsewhere}}, {match: {prefix: "/"}, route: {cluster: secure}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - SECURE
  - PINNED
)",
      {{"SECURE", cluster("secure", "localhost")},
       {"PINNED", cluster("pinned_elsewhere", "nobody.example.com")}});
  auto proxy = startProxy(yaml);

  // Plaintext in, TLS out: s_server's page comes back, twice (a new upstream connection each
  // time, the second resuming the first one's session).
  for (int i = 0; i < 2; i++) {
    auto client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = "/";
    auto response = (*client)->request(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_TRUE(absl::StrContains(response->body, "TLSv1.3")) << response->body;
  }
  EXPECT_TRUE(proxy->waitForCounterGe("cluster.secure.ssl.handshake", 2));
  EXPECT_TRUE(proxy->waitForCounterGe("cluster.secure.ssl.session_reused", 1));

  // The server's certificate lacks the SAN the other cluster pins: refused, 503, with the alert
  // Envoy sends, certificate_unknown.
  {
    auto client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = "/wrong";
    auto response = (*client)->request(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 503);
  }
  EXPECT_TRUE(proxy->waitForCounterGe("cluster.pinned_elsewhere.ssl.fail_verify_san", 1));
  auto alert = (*server)->waitForOutput("Alert [length 0002], fatal certificate_unknown", 10s);
  EXPECT_TRUE(alert.ok()) << alert.status();
  EXPECT_EQ(proxy->counter("cluster.pinned_elsewhere.ssl.connection_error").value_or(-1), 0);
}

}  // namespace
}  // namespace Proxy::Integration
