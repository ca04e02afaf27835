// File-watched secrets, end to end, as Envoy keeps them: the real proxy binary serves a TLS
// listener whose certificate is a secret read from a file (sds_config.path_config_source: a
// DiscoveryResponse holding the Secret); certificates are made by the openssl CLI at test time
// (tls_test_util.h) and clients are real TLS clients (openssl s_client, and an OpenSSL client
// that holds one keep-alive connection open across the rotations). Rotations are what operators
// do: a new file moved over the old one, and Kubernetes' `..data` symlink swap in a
// watched_directory. Each time new connections get the new certificate, the connection opened
// before keeps working, and a bad PEM is refused while the previous certificate keeps serving.

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/proxy_integration_test_fixture.h"
#include "test/integration/tls_client_connection.h"
#include "test/integration/tls_test_util.h"

namespace Proxy::Integration {
namespace {

class SdsFileIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::make_unique<TestPki>(*std::move(pki));
    dir_ = pki_->dir() + "/sds";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
    FakeUpstreamOptions options;
    options.name = "backend";
    auto upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
  }

  void TearDown() override {
    if (HasFailure() && proxy_ != nullptr) {
      std::cerr << "---- proxy log ----\n" << proxy_->stderrText();
    }
  }

  static void writeFile(const std::string& path, const std::string& contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
    ASSERT_TRUE(out.good()) << path;
  }
  // Written beside `path`, then renamed over it: the atomic replacement the watch sees.
  static void replaceFile(const std::string& path, const std::string& contents) {
    writeFile(path + ".tmp", contents);
    ASSERT_EQ(std::rename((path + ".tmp").c_str(), path.c_str()), 0) << path;
  }
  // The proxy logged `text` (it logs before counting: call after waiting for the counter).
  testing::AssertionResult logged(const std::string& text) {
    const std::string log = proxy_->stderrText();
    if (absl::StrContains(log, text)) {
      return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << "no '" << text << "' in the log";
  }
  static std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // A DiscoveryResponse holding secret `server_cert`: certificate `chain`, key `key` (files).
  static std::string secretFile(const std::string& chain, const std::string& key,
                                const std::string& extra = "") {
    return absl::StrCat(
        "resources:\n- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
        "Secret\n  name: server_cert\n  tls_certificate: {certificate_chain: {filename: ",
        chain, "}, private_key: {filename: ", key, "}", extra, "}\n");
  }

  // Starts the proxy: listener "ingress" serves TLS with secret `server_cert` from
  // `path_config_source` (a flow mapping), routing to the fake upstream.
  void startProxy(const std::string& path_config_source) {
    const std::string yaml =
        absl::StrReplaceAll(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, common_tls_context: {tls_certificate_sds_secret_configs: [{name: server_cert, sds_config: {path_config_source: SOURCE}}]}}}
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
                            {{"SOURCE", path_config_source},
                             {"CLUSTER", staticCluster("backend", {upstream_->port()})}});
    ProxyOptions options;
    options.bootstrap_yaml = yaml;
    proxy_ = std::make_unique<ProxyProcess>(options);
    ASSERT_TRUE(proxy_->start());
    auto port = proxy_->listenerPort("ingress");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // The CN of the certificate a new connection gets, as openssl s_client reports it, after one
  // request through it (200 from the upstream).
  std::string newConnectionSubject() {
    auto result = runCommand({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port_),
                              "-servername", "localhost", "-ign_eof"},
                             "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
    if (!result.ok() || !absl::StrContains(result->stdout_text, "HTTP/1.1 200 ")) {
      return "(failed)";
    }
    // "subject=CN = server2" (OpenSSL 3).
    const size_t at = result->stdout_text.find("subject=CN = ");
    if (at == std::string::npos) {
      return "(no subject)";
    }
    const size_t end = result->stdout_text.find('\n', at);
    return result->stdout_text.substr(at + 13, end - at - 13);
  }

  std::unique_ptr<TestPki> pki_;
  std::string dir_;
  FakeUpstreamPtr upstream_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

TEST_F(SdsFileIntegrationTest, PathConfigSourceFileMovedOverRotatesAndABadOneIsRejected) {
  // The secret file names the certificate "server"; no watched_directory: the file itself is
  // watched for moves, as Envoy does.
  const std::string path = dir_ + "/sds.yaml";
  writeFile(path, secretFile(pki_->cert("server"), pki_->key("server")));
  startProxy(absl::StrCat("{path: ", path, "}"));
  EXPECT_TRUE(proxy_->waitForCounterGe("sds.server_cert.update_success", 1));
  EXPECT_EQ(newConnectionSubject(), "server");

  // A keep-alive connection opened before the rotation.
  auto kept = TlsClientConnection::connect(port_);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->peerCommonName(), "server");
  EXPECT_EQ(kept->get("/before"), 200);

  // A new version of the file, moved over it, names "server2": new connections get it.
  replaceFile(path, secretFile(pki_->cert("server2"), pki_->key("server2")));
  EXPECT_TRUE(proxy_->waitForCounterGe("sds.server_cert.update_success", 2));
  EXPECT_EQ(newConnectionSubject(), "server2");
  // The connection from before is untouched.
  EXPECT_EQ(kept->get("/after"), 200);
  EXPECT_EQ(kept->peerCommonName(), "server");

  // A version whose key is not its certificate's: rejected, named, "server2" keeps serving.
  replaceFile(path, secretFile(pki_->cert("server2"), pki_->key("client")));
  EXPECT_TRUE(proxy_->waitForCounterGe("sds.server_cert.update_rejected", 1));
  EXPECT_TRUE(logged("sds: secret 'server_cert' rejected: file '" + path +
                     "': tls_certificate.private_key: does not match the certificate chain"));
  EXPECT_EQ(newConnectionSubject(), "server2");
  // A file that is not a DiscoveryResponse at all: the same.
  replaceFile(path,
              "resources: [{\"@type\": type.googleapis.com/envoy.config.cluster.v3."
              "Cluster, name: c}]\n");
  EXPECT_TRUE(proxy_->waitForCounterGe("sds.server_cert.update_rejected", 2));
  EXPECT_TRUE(logged("sds: secret 'server_cert' rejected: file '" + path +
                     "': resources[0] is not a Secret"));
  EXPECT_EQ(newConnectionSubject(), "server2");
  EXPECT_EQ(kept->get("/still"), 200);
}

TEST_F(SdsFileIntegrationTest, KubernetesSymlinkSwapInAWatchedDirectoryRotatesTheCertificate) {
  // A Kubernetes secret volume: the files live in a timestamped directory, `..data` points at
  // it, and each visible name is a symlink through `..data`. An update writes a new directory
  // and renames a new `..data` symlink over the old one: one atomic move in the volume.
  auto version = [this](const std::string& name, const std::string& cert, const std::string& key) {
    const std::string d = dir_ + "/" + name;
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
    writeFile(d + "/tls.crt", readFile(cert));
    writeFile(d + "/tls.key", readFile(key));
    // The secret file names the visible paths and watches the volume for the swap.
    writeFile(d + "/sds.yaml", secretFile(dir_ + "/tls.crt", dir_ + "/tls.key",
                                          absl::StrCat(", watched_directory: {path: ", dir_, "}")));
  };
  auto swapTo = [this](const std::string& name) {
    const std::string tmp = dir_ + "/..data_tmp";
    ASSERT_EQ(::symlink(name.c_str(), tmp.c_str()), 0);
    ASSERT_EQ(std::rename(tmp.c_str(), (dir_ + "/..data").c_str()), 0);
  };
  version("..2026_12_07_a", pki_->cert("server"), pki_->key("server"));
  ASSERT_EQ(::symlink("..2026_12_07_a", (dir_ + "/..data").c_str()), 0);
  for (const char* file : {"tls.crt", "tls.key", "sds.yaml"}) {
    ASSERT_EQ(::symlink(absl::StrCat("..data/", file).c_str(), (dir_ + "/" + file).c_str()), 0);
  }
  startProxy(absl::StrCat("{path: ", dir_, "/sds.yaml, watched_directory: {path: ", dir_, "}}"));
  EXPECT_EQ(newConnectionSubject(), "server");
  auto kept = TlsClientConnection::connect(port_);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->get("/before"), 200);

  // The swap: the secret is the same, its files are new; new connections get "server2".
  version("..2026_12_07_b", pki_->cert("server2"), pki_->key("server2"));
  swapTo("..2026_12_07_b");
  EXPECT_TRUE(
      proxy_->waitForCounterGe(absl::StrCat("listener.127.0.0.1_", port_,
                                            ".server_ssl_socket_factory.ssl_context_update_by_sds"),
                               1));
  EXPECT_EQ(newConnectionSubject(), "server2");
  EXPECT_EQ(kept->get("/after"), 200);
  EXPECT_EQ(kept->peerCommonName(), "server");

  // A swap to a certificate that does not parse: a failed key rotation, "server2" serves on.
  version("..2026_12_07_c", pki_->cert("server2"), pki_->key("server2"));
  writeFile(dir_ + "/..2026_12_07_c/tls.crt", "-----BEGIN CERTIFICATE-----\nbad\n");
  swapTo("..2026_12_07_c");
  EXPECT_TRUE(proxy_->waitForCounterGe("sds.server_cert.key_rotation_failed", 1));
  EXPECT_TRUE(logged("sds: secret 'server_cert' rejected: file '" + dir_ +
                     "/sds.yaml': tls_certificate.certificate_chain"));
  EXPECT_EQ(newConnectionSubject(), "server2");
  EXPECT_EQ(kept->get("/still"), 200);
}

TEST_F(SdsFileIntegrationTest, ABadFirstVersionServesNothingUntilAGoodFileIsMovedIn) {
  // The file holds another secret than the one the listener names (Envoy: "Unexpected SDS
  // secret"). As in Envoy, the listener starts anyway and its handshakes fail.
  const std::string path = dir_ + "/sds.yaml";
  writeFile(path, absl::StrReplaceAll(secretFile(pki_->cert("server"), pki_->key("server")),
                                      {{"name: server_cert", "name: another"}}));
  startProxy(absl::StrCat("{path: ", path, "}"));
  EXPECT_TRUE(proxy_->waitForCounterGe("sds.server_cert.update_rejected", 1));
  EXPECT_TRUE(logged("sds: secret 'server_cert' rejected: file '" + path +
                     "': holds secret 'another', expected 'server_cert'"));
  EXPECT_EQ(newConnectionSubject(), "(failed)");
  EXPECT_TRUE(proxy_->waitForCounterGe(
      absl::StrCat("listener.127.0.0.1_", port_,
                   ".server_ssl_socket_factory.downstream_context_secrets_not_ready"),
      1));

  // The right file moved in: served from the next connection on.
  replaceFile(path, secretFile(pki_->cert("server"), pki_->key("server")));
  EXPECT_TRUE(proxy_->waitForCounterGe("sds.server_cert.update_success", 1));
  EXPECT_EQ(newConnectionSubject(), "server");
}

TEST_F(SdsFileIntegrationTest, BadFileSecretsAreRefusedNamingTheFile) {
  // Each refused when the bootstrap loads (--mode validate), naming the field and the file.
  const std::string good = dir_ + "/good.yaml";
  writeFile(good, secretFile(pki_->cert("server"), pki_->key("server")));
  const std::string ref =
      "filter_chains[0].transport_socket.typed_config.common_tls_context."
      "tls_certificate_sds_secret_configs[0].sds_config.path_config_source";
  struct Case {
    std::string source;
    std::string error;
  };
  const std::vector<Case> cases = {
      // The file must exist when the config loads, as in Envoy.
      {absl::StrCat("{path: ", dir_, "/missing.yaml}"),
       absl::StrCat(ref, ".path: '", dir_, "/missing.yaml' does not exist")},
      // A watched directory that does not exist.
      {absl::StrCat("{path: ", good, ", watched_directory: {path: ", dir_, "/nowhere}}"),
       absl::StrCat(ref, ".watched_directory.path: cannot watch '", dir_, "/nowhere/'")},
  };
  for (const Case& c : cases) {
    const std::string yaml = absl::StrReplaceAll(
        R"(static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket: {name: envoy.transport_sockets.tls, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, common_tls_context: {tls_certificate_sds_secret_configs: [{name: server_cert, sds_config: {path_config_source: SOURCE}}]}}}
      filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: backend}
  clusters:
  - {name: backend, type: STATIC, load_assignment: {cluster_name: backend, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]}}
)",
        {{"SOURCE", c.source}});
    ProxyOptions options;
    options.bootstrap_yaml = yaml;
    auto result = ProxyProcess(options).runToCompletion({"--mode", "validate"});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_NE(result->exit_code, 0);
    EXPECT_TRUE(absl::StrContains(result->stderr_text, c.error))
        << "expected: " << c.error << "\ngot: " << result->stderr_text;
  }

  // A static secret does not watch its files in Envoy: watched_directory there is refused.
  const std::string yaml = absl::StrCat(
      "static_resources:\n  secrets:\n  - {name: s, tls_certificate: {certificate_chain: "
      "{filename: ",
      pki_->cert("server"), "}, private_key: {filename: ", pki_->key("server"),
      "}, watched_directory: {path: ", dir_, "}}}\n");
  ProxyOptions options;
  options.bootstrap_yaml = yaml;
  auto result = ProxyProcess(options).runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(absl::StrContains(result->stderr_text,
                                "static_resources.secrets[0] ('s'): tls_certificate."
                                "watched_directory: not supported for a static secret"))
      << result->stderr_text;
}

}  // namespace
}  // namespace Proxy::Integration
