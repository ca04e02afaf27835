// The xDS channel over mutual TLS: the real `control-plane-stub` serving xDS with
// --tls-cert/--tls-key/--tls-client-ca, and a data plane — our `proxy`, or the real Envoy as the
// judge, from the same bootstrap — whose ADS stream is a google_grpc service with
// channel_credentials.ssl_credentials (root_certs, cert_chain, private_key). Certificates are
// made at test time with the openssl CLI (TestPki):
//  - with the test CA and a client certificate it trusts, the data plane gets its config over
//    TLS, ACKs it and routes traffic by it;
//  - without a client certificate, or trusting another CA than the one that signed the
//    server's, the handshake fails: the stream closes with an error, again on each retry
//    (grpc.<stat_prefix>.streams_closed_<code>, Envoy's Google gRPC client stats, counted by
//    both), the data plane never connects and the control plane never sees a request from it.

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "test/integration/control_plane_e2e/control_plane_process.h"
#include "test/integration/control_plane_e2e/e2e_support.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/tls_test_util.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::ControlPlaneE2e {
namespace {

using Integration::FakeUpstream;
using Integration::FakeUpstreamOptions;
using Integration::FakeUpstreamPtr;
using Integration::TestPki;
using XdsIntegration::PortHolder;

// What the data plane's ssl_credentials hold (files of the TestPki; empty = field left out).
struct ClientTls {
  std::string root_certs;
  std::string cert_chain;
  std::string private_key;
};

class XdsTlsE2eTest : public testing::TestWithParam<DataPlane> {
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

    // The server certificate has SAN IP:127.0.0.1, the host gRPC checks it against.
    control_plane_.setExtraArgs({"--tls-cert", pki_->cert("server"), "--tls-key",
                                 pki_->key("server"), "--tls-client-ca", pki_->ca()});
    SnapshotSpec spec;
    spec.version = "1";
    spec.listener_port = listener_port_.port();
    spec.routes = {{"/service/1", "service1"}};
    spec.clusters = {{"service1", {upstream_->port()}}};
    ASSERT_TRUE(control_plane_.start(snapshotYaml(spec)));
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

  bool envoy() const { return GetParam() == DataPlane::Envoy; }
  std::string node() const { return envoy() ? "tls-envoy" : "tls-proxy"; }

  // The e2e bootstrap with its ADS service as google_grpc over TLS instead of envoy_grpc.
  std::string bootstrap(const ClientTls& tls) const {
    std::string credentials;
    for (const auto& [field, path] :
         {std::pair{"root_certs", tls.root_certs}, std::pair{"cert_chain", tls.cert_chain},
          std::pair{"private_key", tls.private_key}}) {
      if (!path.empty()) {
        absl::StrAppend(&credentials, field, ": {filename: \"", path, "\"}, ");
      }
    }
    const std::string google_grpc = absl::StrCat(
        "- google_grpc: {target_uri: \"127.0.0.1:", control_plane_.xdsPort(),
        "\", stat_prefix: xds, channel_credentials: {ssl_credentials: {", credentials, "}}}");
    std::string yaml = dataPlaneBootstrap(XdsMode::AdsSotw, control_plane_.xdsPort(), node());
    const std::string envoy_grpc = "- envoy_grpc: {cluster_name: xds_cluster}";
    EXPECT_NE(yaml.find(envoy_grpc), std::string::npos) << yaml;
    return absl::StrReplaceAll(yaml, {{envoy_grpc, google_grpc}});
  }

  testing::AssertionResult startDataPlane(const ClientTls& tls, bool wait_for_ready) {
    data_plane_ = std::make_unique<DataPlaneProcess>(GetParam(), XdsMode::AdsSotw, node(),
                                                     bootstrap(tls), wait_for_ready);
    return data_plane_->start(30s);
  }

  // Streams closed with an error so far: the sum of grpc.<stat_prefix>.streams_closed_1..16
  // (Envoy's Google gRPC client stats, counted by both). Envoy reports a handshake failure as
  // 13 (INTERNAL, its code for a failed stream operation), our proxy as gRPC's own status, 14
  // (UNAVAILABLE): test/conformance/KNOWN_DIFFERENCES.md.
  int64_t streamsClosedWithAnError() {
    int64_t total = 0;
    for (int code = 1; code <= 16; ++code) {
      total +=
          std::max<int64_t>(0, data_plane_->stat(absl::StrCat("grpc.xds.streams_closed_", code)));
    }
    return total;
  }

  // The data plane was refused: its ADS stream closed with an error at least twice (the first
  // attempt and a retry), never OK, it never connected, and the control plane never had a
  // stream from it.
  void expectRefused() {
    ASSERT_TRUE(Integration::waitUntil([&] { return streamsClosedWithAnError() >= 2; }, 20s,
                                       "two failed xDS streams"));
    EXPECT_EQ(data_plane_->stat("grpc.xds.streams_closed_0"), 0);
    EXPECT_EQ(data_plane_->stat("control_plane.connected_state"), 0);
    absl::StatusOr<google::protobuf::Struct> lds = control_plane_.typeStatus(node(), "lds");
    EXPECT_FALSE(lds.ok()) << "the control plane has an LDS stream from " << node();
  }

  std::unique_ptr<TestPki> pki_;
  FakeUpstreamPtr upstream_;
  PortHolder listener_port_{PortHolder::Mode::ReservedForReusePort};
  ControlPlaneProcess control_plane_;
  std::unique_ptr<DataPlaneProcess> data_plane_;
};

TEST_P(XdsTlsE2eTest, MutualTlsCarriesTheConfig) {
  ASSERT_TRUE(startDataPlane(ClientTls{pki_->ca(), pki_->cert("client"), pki_->key("client")},
                             /*wait_for_ready=*/true));
  for (const char* type : {"lds", "rds", "cds", "eds"}) {
    EXPECT_TRUE(control_plane_.waitForAck(node(), type, "1")) << type;
  }
  EXPECT_TRUE(data_plane_->waitForConnectedState(1));
  EXPECT_EQ(data_plane_->stat("grpc.xds.streams_total"), 1);
  EXPECT_EQ(streamsClosedWithAnError(), 0);
  EXPECT_TRUE(waitForUpstream(listener_port_.port(), "/service/1", "upstream-a"));
}

TEST_P(XdsTlsE2eTest, NoClientCertificateIsRefused) {
  ASSERT_TRUE(startDataPlane(ClientTls{pki_->ca(), "", ""}, /*wait_for_ready=*/false));
  expectRefused();
}

TEST_P(XdsTlsE2eTest, AServerCertificateFromAnotherCaIsRefused) {
  ASSERT_TRUE(startDataPlane(
      ClientTls{pki_->dir() + "/untrusted_ca.pem", pki_->cert("client"), pki_->key("client")},
      /*wait_for_ready=*/false));
  expectRefused();
}

// The same with the ADS service as envoy_grpc on a cluster whose transport_socket is Envoy's TLS
// socket (an UpstreamTlsContext). Envoy's rules, not gRPC's: the chain is checked only against
// trusted_ca, the name only by match_typed_subject_alt_names.
class XdsEnvoyGrpcTlsE2eTest : public XdsTlsE2eTest {
 protected:
  // `context`: the UpstreamTlsContext's fields (a flow mapping's inside).
  testing::AssertionResult startWithContext(const std::string& context, bool wait_for_ready) {
    std::string yaml = dataPlaneBootstrap(XdsMode::AdsSotw, control_plane_.xdsPort(), node());
    const std::string anchor = "  - name: xds_cluster\n    type: STATIC\n    connect_timeout: 1s\n";
    EXPECT_NE(yaml.find(anchor), std::string::npos) << yaml;
    yaml = absl::StrReplaceAll(
        yaml,
        {{anchor, absl::StrCat(anchor,
                               "    transport_socket: {name: envoy.transport_sockets.tls, "
                               "typed_config: {\"@type\": type.googleapis.com/"
                               "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, ",
                               context, "}}\n")}});
    data_plane_ = std::make_unique<DataPlaneProcess>(GetParam(), XdsMode::AdsSotw, node(), yaml,
                                                     wait_for_ready);
    return data_plane_->start(30s);
  }

  std::string clientCertificate() const {
    return absl::StrCat("tls_certificates: [{certificate_chain: {filename: \"",
                        pki_->cert("client"), "\"}, private_key: {filename: \"",
                        pki_->key("client"), "\"}}]");
  }

  std::string trustedCa() const {
    return absl::StrCat("trusted_ca: {filename: \"", pki_->ca(), "\"}");
  }

  // Two connection attempts failed (the first and a retry: Envoy counts its xDS cluster's
  // connections, our proxy logs each closed stream), and the data plane never got a stream up.
  void expectRefused() {
    if (envoy()) {
      ASSERT_TRUE(data_plane_->waitForStat("cluster.xds_cluster.upstream_cx_total", 2));
    } else {
      ASSERT_TRUE(Integration::waitUntil(
          [&] {
            // "xds: ADS stream to <target> closed: <status>", one per failed stream.
            const std::string log = data_plane_->process().stderrText();
            size_t count = 0;
            for (size_t at = log.find(" closed: "); at != std::string::npos;
                 at = log.find(" closed: ", at + 1)) {
              count++;
            }
            return count >= 2;
          },
          20s, "two failed xDS streams"));
    }
    if (!envoy()) {
      // Envoy's envoy_grpc client says connected as soon as it has started a stream, before
      // the connection's handshake; ours once the stream is up.
      EXPECT_EQ(data_plane_->stat("control_plane.connected_state"), 0);
    }
    absl::StatusOr<google::protobuf::Struct> lds = control_plane_.typeStatus(node(), "lds");
    EXPECT_FALSE(lds.ok()) << "the control plane has an LDS stream from " << node();
  }
};

TEST_P(XdsEnvoyGrpcTlsE2eTest, TrustedCaClientCertificateAndSanMatcherCarryTheConfig) {
  ASSERT_TRUE(startWithContext(
      absl::StrCat("sni: xds.test, common_tls_context: {", clientCertificate(),
                   ", validation_context: {", trustedCa(),
                   ", match_typed_subject_alt_names: [{san_type: IP_ADDRESS, matcher: {exact: "
                   "\"127.0.0.1\"}}]}}"),
      /*wait_for_ready=*/true));
  for (const char* type : {"lds", "rds", "cds", "eds"}) {
    EXPECT_TRUE(control_plane_.waitForAck(node(), type, "1")) << type;
  }
  EXPECT_TRUE(data_plane_->waitForConnectedState(1));
  EXPECT_TRUE(waitForUpstream(listener_port_.port(), "/service/1", "upstream-a"));
}

TEST_P(XdsEnvoyGrpcTlsE2eTest, WithoutTrustedCaTheServerIsNotVerified) {
  // Envoy verifies nothing without a validation context; the certificate is from the test CA,
  // which this data plane was not told about, and the config arrives all the same.
  ASSERT_TRUE(startWithContext(absl::StrCat("common_tls_context: {", clientCertificate(), "}"),
                               /*wait_for_ready=*/true));
  EXPECT_TRUE(control_plane_.waitForAck(node(), "lds", "1"));
}

TEST_P(XdsEnvoyGrpcTlsE2eTest, ASanMismatchIsRefused) {
  ASSERT_TRUE(startWithContext(
      absl::StrCat("common_tls_context: {", clientCertificate(), ", validation_context: {",
                   trustedCa(),
                   ", match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: "
                   "xds.other.test}}]}}"),
      /*wait_for_ready=*/false));
  expectRefused();
  if (envoy()) {
    EXPECT_GE(data_plane_->stat("cluster.xds_cluster.ssl.fail_verify_san"), 1);
  }
}

TEST_P(XdsEnvoyGrpcTlsE2eTest, NoClientCertificateIsRefused) {
  ASSERT_TRUE(startWithContext(
      absl::StrCat("common_tls_context: {validation_context: {", trustedCa(), "}}"),
      /*wait_for_ready=*/false));
  expectRefused();
}

INSTANTIATE_TEST_SUITE_P(DataPlanes, XdsEnvoyGrpcTlsE2eTest,
                         testing::Values(DataPlane::Proxy, DataPlane::Envoy),
                         [](const testing::TestParamInfo<DataPlane>& info) {
                           return name(info.param);
                         });

INSTANTIATE_TEST_SUITE_P(DataPlanes, XdsTlsE2eTest,
                         testing::Values(DataPlane::Proxy, DataPlane::Envoy),
                         [](const testing::TestParamInfo<DataPlane>& info) {
                           return name(info.param);
                         });

}  // namespace
}  // namespace Proxy::ControlPlaneE2e
