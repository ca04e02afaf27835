// SDS end to end: the real `control-plane-stub` serves secrets (its snapshot's `secrets`) to a
// data plane — our `proxy`, or the real Envoy as the judge, from the same bootstrap — whose
// static TLS listener serves certificate `server_cert` and whose TLS cluster verifies its
// upstream (openssl s_server) against CA `trusted_ca`, both named with sds_config: over the ADS
// stream, or over an SDS api_config_source (GRPC) without ADS. Certificates are made at test
// time by the openssl CLI (TestPki). The scenario, in one run per data plane and source:
//  1. no secret yet: the data plane warms (not ready) until both arrive, then serves;
//  2. `server_cert` rotated to another certificate under keep-alive load: zero failed
//     requests, a new connection sees the new certificate while a connection opened before
//     the rotation still works;
//  3. a bad PEM for `server_cert` is NACKed (our proxy: naming the secret and the reason) and
//     the certificate before it keeps serving.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "test/integration/control_plane_e2e/control_plane_process.h"
#include "test/integration/control_plane_e2e/e2e_support.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/tls_client_connection.h"
#include "test/integration/tls_test_util.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::ControlPlaneE2e {
namespace {

using Integration::BackgroundProcess;
using Integration::FakeUpstream;
using Integration::FakeUpstreamOptions;
using Integration::FakeUpstreamPtr;
using Integration::TestPki;
using XdsIntegration::PortHolder;

using TlsConnection = Integration::TlsClientConnection;

enum class SdsSource { Ads, Grpc };

struct Param {
  DataPlane data_plane;
  SdsSource source;
};

class SdsE2eTest : public testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = TestPki::create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::make_unique<TestPki>(*std::move(pki));
    FakeUpstreamOptions options;
    options.name = "upstream-a";
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
    // The TLS upstream of cluster `secure_backend`.
    auto server = BackgroundProcess::start({"openssl", "s_server", "-accept", "0", "-www", "-cert",
                                            pki_->cert("server"), "-key", pki_->key("server")});
    ASSERT_TRUE(server.ok()) << server.status();
    auto banner = (*server)->waitForOutput("ACCEPT", 10s);
    ASSERT_TRUE(banner.ok()) << banner.status();
    s_server_port_ = static_cast<uint32_t>(std::stoul(banner->substr(banner->rfind(':') + 1)));
    s_server_ = *std::move(server);
    // A snapshot without the secrets the data plane asks for (a snapshot is never empty).
    ASSERT_TRUE(control_plane_.start(secretsSnapshot("0", "", "")));
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- control-plane-stub log ----\n" << control_plane_.log();
      if (data_plane_ != nullptr) {
        std::cerr << "---- data plane log ----\n" << data_plane_->process().stderrText();
      }
    }
    data_plane_.reset();
    control_plane_.kill();
  }

  bool envoy() const { return GetParam().data_plane == DataPlane::Envoy; }
  std::string node() const { return envoy() ? "sds-envoy" : "sds-proxy"; }

  // Secrets `server_cert` (certificate CERT of the PKI, or `bad_chain` inline) and `trusted_ca`;
  // `cert` empty: only an unrelated secret.
  std::string secretsSnapshot(const std::string& version, const std::string& cert,
                              const std::string& bad_chain) const {
    std::string yaml = absl::StrCat("version: \"", version, "\"\nresources:\n  secrets:\n");
    if (cert.empty()) {
      return yaml + "  - {name: unrelated, validation_context: {trusted_ca: {inline_string: x}}}\n";
    }
    const std::string chain = bad_chain.empty()
                                  ? absl::StrCat("{filename: ", pki_->cert(cert), "}")
                                  : absl::StrCat("{inline_string: \"", bad_chain, "\"}");
    return absl::StrCat(
        yaml, "  - {name: server_cert, tls_certificate: {certificate_chain: ", chain,
        ", private_key: {filename: ", pki_->key(cert), "}}}\n",
        "  - {name: trusted_ca, validation_context: {trusted_ca: {filename: ", pki_->ca(), "}}}\n");
  }

  std::string bootstrap() const {
    const bool ads = GetParam().source == SdsSource::Ads;
    const std::string api =
        "{api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: "
        "{cluster_name: xds_cluster}}]}";
    const std::string sds =
        ads ? "{ads: {}, resource_api_version: V3}"
            : absl::StrCat("{api_config_source: ", api, ", resource_api_version: V3}");
    return absl::StrReplaceAll(
        R"(node: {id: NODE, cluster: sds-e2e}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
DYNAMIC
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: LISTENER_PORT}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificate_sds_secret_configs: [{name: server_cert, sds_config: SDS}]
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/secure"}, route: {cluster: secure_backend}}, {match: {prefix: "/"}, route: {cluster: backend}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: XDS_PORT}}}}]}]
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: UPSTREAM_PORT}}}}]}]
  - name: secure_backend
    type: STATIC
    connect_timeout: 1s
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: localhost
        common_tls_context:
          UPSTREAM_VALIDATION
    load_assignment:
      cluster_name: secure_backend
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: S_SERVER_PORT}}}}]}]
)",
        {{"NODE", node()},
         {"DYNAMIC", ads ? absl::StrCat("dynamic_resources:\n  ads_config: ", api) : std::string()},
         // Envoy 1.40 dies of a SIGSEGV at startup when a static cluster names a secret over
         // ADS (its ADS mux does not exist yet when the primary clusters initialise): with
         // Envoy over ADS, that cluster takes its CA from the file instead.
         {"UPSTREAM_VALIDATION",
          envoy() && ads
              ? absl::StrCat("validation_context: {trusted_ca: {filename: ", pki_->ca(), "}}")
              : absl::StrCat("validation_context_sds_secret_config: {name: trusted_ca, "
                             "sds_config: ",
                             sds, "}")},
         {"SDS", sds},
         {"LISTENER_PORT", absl::StrCat(listener_port_.port())},
         {"XDS_PORT", absl::StrCat(control_plane_.xdsPort())},
         {"UPSTREAM_PORT", absl::StrCat(upstream_->port())},
         {"S_SERVER_PORT", absl::StrCat(s_server_port_)}});
  }

  bool ready() {
    auto response = data_plane_->process().adminGet("/ready");
    return response.ok() && response->status == 200;
  }

  std::string newConnectionCommonName() {
    auto c = TlsConnection::connect(listener_port_.port());
    return c == nullptr ? "(no connection)" : c->peerCommonName();
  }

  std::unique_ptr<TestPki> pki_;
  FakeUpstreamPtr upstream_;
  std::unique_ptr<BackgroundProcess> s_server_;
  uint32_t s_server_port_ = 0;
  PortHolder listener_port_{PortHolder::Mode::ReservedForReusePort};
  ControlPlaneProcess control_plane_;
  std::unique_ptr<DataPlaneProcess> data_plane_;
};

TEST_P(SdsE2eTest, WarmsUntilSecretsArriveRotatesUnderLoadAndNacksABadPem) {
  data_plane_ = std::make_unique<DataPlaneProcess>(GetParam().data_plane, XdsMode::AdsSotw, node(),
                                                   bootstrap(), /*wait_for_ready=*/false);
  ASSERT_TRUE(data_plane_->start(30s));

  // 1. The data plane asks for both secrets and is not ready without them.
  ASSERT_TRUE(Integration::waitUntil(
      [&] {
        auto names = control_plane_.subscribedNames(node(), "sds");
        const std::vector<std::string> want =
            envoy() && GetParam().source == SdsSource::Ads
                ? std::vector<std::string>{"server_cert"}
                : std::vector<std::string>{"server_cert", "trusted_ca"};
        return names.ok() && *names == want;
      },
      20s, "the SDS subscription to server_cert and trusted_ca"));
  EXPECT_FALSE(ready());
  // They arrive: it becomes ready and serves "server" over TLS, and reaches the TLS upstream
  // verified against the CA secret.
  ASSERT_TRUE(control_plane_.putSnapshot(secretsSnapshot("1", "server", "")).ok());
  ASSERT_TRUE(Integration::waitUntil([&] { return ready(); }, 20s, "ready"));
  EXPECT_EQ(newConnectionCommonName(), "server");
  for (const char* path : {"/secure", "/plain"}) {
    // (s_server answers HTTP/1.0 and closes: a connection per request.)
    auto c = TlsConnection::connect(listener_port_.port());
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->get(path), 200) << path;
  }

  // 2. Rotation under load: keep-alive clients (one connection each, opened before the
  // rotation) and a client opening a new connection per request, all the while.
  auto before = TlsConnection::connect(listener_port_.port());
  ASSERT_NE(before, nullptr);
  ASSERT_EQ(before->get("/before"), 200);
  std::atomic<bool> stop{false};
  std::atomic<int> requests{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> load;
  for (int i = 0; i < 3; i++) {
    load.emplace_back([&, keep_alive = i < 2] {
      std::unique_ptr<TlsConnection> c;
      while (!stop.load()) {
        if (c == nullptr || !keep_alive) {
          c = TlsConnection::connect(listener_port_.port());
        }
        const int status = c != nullptr ? c->get("/load") : -1;
        requests++;
        if (status != 200) {
          failures++;
          c.reset();
        }
      }
    });
  }
  ASSERT_TRUE(Integration::waitUntil([&] { return requests.load() >= 20; }, 20s, "load"));
  ASSERT_TRUE(control_plane_.putSnapshot(secretsSnapshot("2", "server2", "")).ok());
  ASSERT_TRUE(control_plane_.waitForAck(node(), "sds", "2"));
  EXPECT_EQ(newConnectionCommonName(), "server2");
  const int at_rotation = requests.load();
  ASSERT_TRUE(Integration::waitUntil([&] { return requests.load() >= at_rotation + 20; }, 20s,
                                     "load after the rotation"));
  stop = true;
  for (std::thread& t : load) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0) << "of " << requests.load();
  // The connection from before the rotation still works, with the old certificate.
  EXPECT_EQ(before->get("/after"), 200);
  EXPECT_EQ(before->peerCommonName(), "server");

  // 3. A bad PEM: NACKed, and "server2" keeps serving.
  ASSERT_TRUE(
      control_plane_.putSnapshot(secretsSnapshot("3", "server2", "not a certificate")).ok());
  // (Envoy opens an SDS stream per secret without ADS: the NACK is on server_cert's.)
  google::protobuf::Struct nacked;
  ASSERT_TRUE(Integration::waitUntil(
      [&] {
        auto statuses = control_plane_.typeStatuses(node(), "sds");
        for (const auto& status :
             statuses.ok() ? *statuses : std::vector<google::protobuf::Struct>{}) {
          if (status.fields().count("last_nack") > 0 &&
              status.fields().at("last_nack").has_struct_value()) {
            nacked = status;
            return true;
          }
        }
        return false;
      },
      20s, "the NACK of version 3"));
  const google::protobuf::Struct* status = &nacked;
  const auto& nack = status->fields().at("last_nack").struct_value().fields();
  EXPECT_EQ(nack.at("version").string_value(), "3");
  if (!envoy()) {
    EXPECT_EQ(nack.at("message").string_value(),
              "resource index 0: server_cert: tls_certificate.certificate_chain: no PEM "
              "certificate found");
  }
  EXPECT_EQ(newConnectionCommonName(), "server2");
  EXPECT_EQ(status->fields().at("acked_version").string_value(), "2");
}

INSTANTIATE_TEST_SUITE_P(DataPlanes, SdsE2eTest,
                         testing::Values(Param{DataPlane::Proxy, SdsSource::Ads},
                                         Param{DataPlane::Proxy, SdsSource::Grpc},
                                         Param{DataPlane::Envoy, SdsSource::Ads},
                                         Param{DataPlane::Envoy, SdsSource::Grpc}),
                         [](const testing::TestParamInfo<Param>& info) {
                           return name(info.param.data_plane) + (info.param.source == SdsSource::Ads
                                                                     ? "OverAds"
                                                                     : "OverSdsStream");
                         });

}  // namespace
}  // namespace Proxy::ControlPlaneE2e
