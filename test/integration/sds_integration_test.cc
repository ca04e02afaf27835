// Secrets named by TLS contexts, end to end: the real proxy binary, real TLS peers (openssl
// s_client, openssl s_server) and certificates made by the openssl CLI at test time
// (tls_test_util.h). Here the secrets come from the bootstrap (static_resources.secrets,
// referenced by name without sds_config); SDS over xDS is in control_plane_e2e/sds_e2e_test.cc.

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

class SdsIntegrationTest : public testing::Test {
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

  // A tls_certificate secret NAME from the files of the PKI's certificate CERT and key KEY.
  static std::string certificateSecret(const std::string& name, const std::string& cert,
                                       const std::string& key) {
    return absl::StrCat("{name: ", name,
                        ", tls_certificate: {certificate_chain: {filename: ", pki_->cert(cert),
                        "}, private_key: {filename: ", pki_->key(key), "}}}");
  }
  static std::string caSecret(const std::string& name) {
    return absl::StrCat("{name: ", name,
                        ", validation_context: {trusted_ca: {filename: ", pki_->ca(), "}}}");
  }

  // Listener "ingress" (TLS: the chain's `context` fields of a DownstreamTlsContext) routing to
  // cluster "backend" (`cluster`), with static_resources.secrets `secrets`.
  static std::string bootstrap(const std::string& context, const std::string& cluster,
                               const std::string& secrets) {
    return absl::StrReplaceAll(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  secrets: SECRETS
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, CONTEXT}}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: backend}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - CLUSTER
)",
                               {{"SECRETS", secrets}, {"CONTEXT", context}, {"CLUSTER", cluster}});
  }

  static absl::StatusOr<ProcessResult> validate(const std::string& yaml) {
    ProxyOptions options;
    options.bootstrap_yaml = yaml;
    ProxyProcess proxy(options);
    return proxy.runToCompletion({"--mode", "validate"});
  }

  static TestPki* pki_;
};

TestPki* SdsIntegrationTest::pki_ = nullptr;

TEST_F(SdsIntegrationTest, StaticSecretsServeMutualTlsDownstreamAndUpstream) {
  // openssl s_server as the upstream, requiring a client certificate from the test CA.
  auto server = BackgroundProcess::start({"openssl", "s_server", "-accept", "0", "-www", "-cert",
                                          pki_->cert("server"), "-key", pki_->key("server"),
                                          "-Verify", "1", "-CAfile", pki_->ca()});
  ASSERT_TRUE(server.ok()) << server.status();
  auto banner = (*server)->waitForOutput("ACCEPT", 10s);
  ASSERT_TRUE(banner.ok()) << banner.status();
  const uint32_t upstream_port =
      static_cast<uint32_t>(std::stoul(banner->substr(banner->rfind(':') + 1)));

  // Every certificate and CA of both sides comes from a named secret: the listener serves
  // "server_cert" and requires client certificates trusted by "trusted_ca"; the cluster
  // presents "client_cert" and verifies the upstream against "trusted_ca".
  std::string cluster = staticCluster("backend", {upstream_port});
  cluster.pop_back();
  cluster +=
      R"(, transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: localhost, common_tls_context: {tls_certificate_sds_secret_configs: [{name: client_cert}], validation_context_sds_secret_config: {name: trusted_ca}}}}})";
  const std::string context =
      "require_client_certificate: true, common_tls_context: {tls_certificate_sds_secret_configs: "
      "[{name: server_cert}], validation_context_sds_secret_config: {name: trusted_ca}}";
  const std::string secrets = absl::StrCat(
      "[", certificateSecret("server_cert", "server", "server"), ", ",
      certificateSecret("client_cert", "client", "client"), ", ", caSecret("trusted_ca"), "]");
  ProxyOptions options;
  options.bootstrap_yaml = bootstrap(context, cluster, secrets);
  ProxyProcess proxy(options);
  ASSERT_TRUE(proxy.start());
  auto port = proxy.listenerPort("ingress");
  ASSERT_TRUE(port.ok()) << port.status();

  // A client with the "client" certificate, verifying the proxy against the CA: the request
  // goes through to s_server over the cluster's mutual TLS (its status page names TLSv1.3).
  auto ok = runCommand({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", *port),
                        "-ign_eof", "-CAfile", pki_->ca(), "-verify_return_error", "-cert",
                        pki_->cert("client"), "-key", pki_->key("client")},
                       "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(absl::StrContains(ok->stdout_text, "Verify return code: 0 (ok)")) << ok->stdout_text;
  EXPECT_TRUE(absl::StrContains(ok->stdout_text, "HTTP/1.1 200 ")) << ok->stdout_text;
  EXPECT_TRUE(absl::StrContains(ok->stdout_text, "TLSv1.3")) << ok->stdout_text;
  EXPECT_TRUE(proxy.waitForCounterGe("cluster.backend.ssl.handshake", 1));

  // Without a client certificate: refused, as the validation_context secret requires.
  auto refused =
      runCommand({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", *port), "-ign_eof"},
                 "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_FALSE(absl::StrContains(refused->stdout_text, "HTTP/1.1")) << refused->stdout_text;
  EXPECT_TRUE(proxy.waitForCounterGe(
      absl::StrCat("listener.127.0.0.1_", *port, ".ssl.fail_verify_no_cert"), 1));
}

TEST_F(SdsIntegrationTest, BadStaticSecretsAndReferencesAreRefusedNamingThem) {
  const std::string cluster = staticCluster("backend", {1});
  const std::string context =
      "common_tls_context: {tls_certificate_sds_secret_configs: [{name: server_cert}]}";
  struct Case {
    std::string context;
    std::string secrets;
    std::string error;
  };
  const std::vector<Case> cases = {
      // A reference to a secret nobody defined.
      {context, "[]",
       "static_resources.listeners[0] ('ingress'): filter_chains[0].transport_socket."
       "typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name: unknown "
       "static secret 'server_cert'"},
      // A secret whose key is not its certificate's: refused with the secret's name.
      {context, absl::StrCat("[", certificateSecret("server_cert", "server", "client"), "]"),
       "static_resources.secrets[0] ('server_cert'): tls_certificate.private_key: does not "
       "match the certificate chain"},
      // A CA secret where a certificate is expected.
      {context, absl::StrCat("[", caSecret("server_cert"), "]"),
       "tls_certificate_sds_secret_configs[0].name: secret 'server_cert' is not a "
       "tls_certificate"},
      // Two secrets of one name.
      {context, absl::StrCat("[", caSecret("ca"), ", ", caSecret("ca"), "]"),
       "static_resources.secrets[1] ('ca'): duplicate secret name"},
      // What the proxy does not implement is refused, not ignored.
      {context, absl::StrCat("[{name: server_cert, generic_secret: {secret: {inline_string: x}}}]"),
       "static_resources.secrets[0].generic_secret: not supported"},
  };
  for (const Case& c : cases) {
    auto result = validate(bootstrap(c.context, cluster, c.secrets));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->exit_code, 0);
    EXPECT_TRUE(absl::StrContains(result->stderr_text, c.error))
        << "expected: " << c.error << "\ngot: " << result->stderr_text;
  }
}

}  // namespace
}  // namespace Proxy::Integration
