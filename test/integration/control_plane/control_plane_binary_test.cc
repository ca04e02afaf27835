// The control-plane-stub binary itself, as a child process: its flags, the snapshot file and its
// reloads (SIGHUP), signals, the admin API's limits (413, alias bombs). The control plane
// in-process: control_plane_integration_test.cc.

#include "test/integration/control_plane/control_plane_test_fixtures.h"

#include <string>
#include <utility>
#include <vector>

namespace Proxy::ControlPlane {
namespace {

// "Billion laughs": ten levels of anchors, each a list of ten aliases of the level below, in a
// field the schema accepts anything in (a cluster's metadata is a google.protobuf.Struct).
// 600 bytes of text that expand to 10^10 nodes.
std::string aliasBomb(const std::string& version) {
  std::string yaml = absl::StrCat("version: \"", version, R"("
resources:
  clusters:
  - name: bomb
    type: STATIC
    connect_timeout: 1s
    metadata:
      filter_metadata:
        laughs:
          l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
)");
  for (int level = 1; level <= 9; level++) {
    const std::string below = absl::StrCat("*l", level - 1);
    absl::StrAppend(&yaml, "          l", level, ": &l", level, " [", below);
    for (int i = 1; i < 10; i++) {
      absl::StrAppend(&yaml, ", ", below);
    }
    absl::StrAppend(&yaml, "]\n");
  }
  return yaml;
}

TEST_F(ControlPlaneBinaryTest, ServesReloadsAndStopsOnSigterm) {
  writeSnapshot(snapshotYaml("1"));
  TestUtil::ChildProcess process(
      CONTROL_PLANE_BINARY,
      {"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0", "--snapshot",
       dir_ + "/snapshot.yaml", "--port-file", dir_ + "/ports", "--watch-interval-ms", "50"},
      dir_ + "/stdout.log", dir_ + "/stderr.log");

  // The port file says where it listens, once it serves.
  std::string ports;
  ASSERT_TRUE(waitUntil(
      [&] {
        ports = readFile(dir_ + "/ports");
        return !ports.empty() || !process.running();
      },
      kTimeout, "the port file"));
  ASSERT_TRUE(absl::StartsWith(ports, "xds=127.0.0.1:")) << ports << log();
  const std::string xds = ports.substr(4, ports.find(' ') - 4);
  EXPECT_TRUE(absl::StrContains(log(), "control-plane-stub ready: xds=" + xds));

  XdsTestChannel channel(xds);
  XdsTestStream ads(channel, std::string(kAdsSotwMethod));
  send(ads, sotwRequest(kEndpointTypeUrl, "", {"service1"}, "", "proxy-b"));
  EXPECT_EQ(next(ads), "eds version='1' nonce='1' [service1]");

  // Editing the file pushes the change.
  writeSnapshot(snapshotYaml("2", {{"service1", 9001}, {"service2", 8082}}));
  EXPECT_EQ(next(ads), "eds version='2' nonce='2' [service1]");

  // A broken file is refused with its reason; the previous snapshot keeps serving.
  writeSnapshot("version: \"3\"\nresources:\n  clusters:\n  - name: x\n    typo: 1\n");
  ASSERT_TRUE(waitUntil(
      [&] {
        return absl::StrContains(
            log(),
            "rejected, still serving the previous snapshot: resources.clusters[0]: "
            "unknown field 'typo' (line 4, column 5)");
      },
      kTimeout, "the rejection in the log"));

  // One line per stream open and (after SIGTERM) close, and per ACK.
  send(ads, sotwRequest(kEndpointTypeUrl, "2", {"service1"}, "2"));
  ASSERT_TRUE(waitUntil(
      [&] {
        return absl::StrContains(log(),
                                 "xds ACK: stream=1 node='proxy-b' type=eds version='2' nonce='2'");
      },
      kTimeout, "the ACK in the log"));
  process.signal(SIGTERM);
  EXPECT_EQ(process.waitForExit(kTimeout), std::optional<int>(0));
  EXPECT_TRUE(absl::StrContains(log(), "xds stream 1 open: method=StreamAggregatedResources"));
  EXPECT_TRUE(absl::StrContains(log(), "xds stream 1 closed: node='proxy-b' requests=2"));
  EXPECT_TRUE(absl::StrContains(log(), "control-plane-stub stopped"));
}

TEST_F(ControlPlaneBinaryTest, BadStartsFailWithAMessage) {
  // A snapshot file that does not parse: exit 1, the reason on stderr.
  writeSnapshot("resources:\n  listeners: 7\n");
  TestUtil::ChildProcess bad_file(CONTROL_PLANE_BINARY,
                                  {"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
                                   "--snapshot", dir_ + "/snapshot.yaml"},
                                  dir_ + "/stdout.log", dir_ + "/stderr.log");
  EXPECT_EQ(bad_file.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_TRUE(absl::StrContains(log(), "error: --snapshot '" + dir_ + "/snapshot.yaml': "))
      << log();

  // An unknown flag.
  TestUtil::ChildProcess bad_flag(CONTROL_PLANE_BINARY, {"--no-such-flag"}, dir_ + "/stdout.log",
                                  dir_ + "/stderr.log");
  EXPECT_EQ(bad_flag.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_EQ(log(), "error: unknown or incomplete option '--no-such-flag' (see --help)\n");

  // TLS flags: a certificate without its key, a client CA without a certificate, a file that
  // cannot be read.
  const std::vector<std::pair<std::vector<std::string>, std::string>> tls_cases = {
      {{"--tls-cert", dir_ + "/cert.pem"}, "error: --tls-cert and --tls-key go together\n"},
      {{"--tls-client-ca", dir_ + "/ca.pem"},
       "error: --tls-client-ca needs --tls-cert and --tls-key\n"},
      {{"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0", "--tls-cert",
        dir_ + "/missing.pem", "--tls-key", dir_ + "/missing.key"},
       "error: --tls-cert: cannot read '" + dir_ + "/missing.pem'\n"},
  };
  for (const auto& [args, error] : tls_cases) {
    TestUtil::ChildProcess bad_tls(CONTROL_PLANE_BINARY, args, dir_ + "/stdout.log",
                                   dir_ + "/stderr.log");
    EXPECT_EQ(bad_tls.waitForExit(kTimeout), std::optional<int>(1)) << args[0];
    EXPECT_EQ(log(), error);
  }
}

}  // namespace
}  // namespace Proxy::ControlPlane

namespace Proxy::ControlPlane {
namespace {

TEST_F(ControlPlaneBinaryTest, AliasBombIsRefusedAtOnceAndCostsNoMemory) {
  startStub({});
  ASSERT_EQ(admin("PUT", "/v1/snapshot", snapshotYaml("1")).status, 200u);

  // Ten levels of aliases in a PUT: 400 at once, naming the reason and where it happened.
  const std::string bomb = aliasBomb("2");
  ASSERT_LT(bomb.size(), 1024u);
  HttpResponse response = admin("PUT", "/v1/snapshot", bomb);
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(response.body,
            "yaml aliases would add more than 1000000 nodes to the document (limit reached at "
            "line 15, column 55)\n");

  // An alias inside the node it names would be a cycle: refused too.
  // (Not a raw string literal: field_support_test loads those with the proxy's own YAML
  // loader, which has no such guard.)
  response = admin("PUT", "/v1/snapshot",
                   "version: \"3\"\n"
                   "resources:\n"
                   "  clusters:\n"
                   "  - name: loop\n"
                   "    type: STATIC\n"
                   "    connect_timeout: 1s\n"
                   "    metadata: {filter_metadata: {x: {self: &self [*self]}}}\n");
  EXPECT_EQ(response.status, 400u);
  EXPECT_EQ(response.body,
            "yaml alias at line 7, column 51 names a node that contains it (a cycle)\n");

  // The server answers at once and still serves version 1; the bomb cost no memory.
  response = admin("GET", "/healthz");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.body, "ok\n");
  EXPECT_NE(admin("GET", "/v1/snapshot").body.find("\"version\": \"1\""), std::string::npos);
  if (kRssIsMeaningful) {
    EXPECT_LT(stubPeakRssKb(), 200u * 1024);
  }

  // Aliases that add a few nodes (one cluster's eds_cluster_config shared by the other) are
  // fine.
  std::string shared = snapshotYaml("4");
  const std::string eds = "eds_cluster_config: { eds_config: { ads: {} } }";
  const size_t first = shared.find(eds);
  const size_t second = shared.find(eds, first + 1);
  ASSERT_NE(second, std::string::npos);
  shared.replace(second, eds.size(), "eds_cluster_config: *eds");
  shared.replace(first, eds.size(), "eds_cluster_config: &eds { eds_config: { ads: {} } }");
  response = admin("PUT", "/v1/snapshot", shared);
  EXPECT_EQ(response.status, 200u) << response.body;
}

TEST_F(ControlPlaneBinaryTest, AliasBombInTheSnapshotFileFailsTheStartAndIsNotReloaded) {
  // At start: exit 1 with the reason.
  writeSnapshot(aliasBomb("1"));
  TestUtil::ChildProcess bad_start(CONTROL_PLANE_BINARY,
                                   {"--xds-address", "127.0.0.1:0", "--admin-address",
                                    "127.0.0.1:0", "--snapshot", dir_ + "/snapshot.yaml"},
                                   dir_ + "/stdout.log", dir_ + "/stderr.log");
  EXPECT_EQ(bad_start.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_EQ(log(), absl::StrCat("error: --snapshot '", dir_,
                                "/snapshot.yaml': yaml aliases would add more than 1000000 "
                                "nodes to the document (limit reached at line 15, column 55)\n"));

  // On reload: refused, the previous snapshot keeps serving.
  writeSnapshot(snapshotYaml("1"));
  startStub({"--snapshot", dir_ + "/snapshot.yaml", "--watch-interval-ms", "50"});
  writeSnapshot(aliasBomb("2"));
  ASSERT_TRUE(waitUntil(
      [&] {
        return absl::StrContains(log(),
                                 "rejected, still serving the previous snapshot: yaml aliases "
                                 "would add more than 1000000 nodes to the document");
      },
      kTimeout, "the rejection in the log"))
      << log();
  EXPECT_NE(admin("GET", "/v1/snapshot").body.find("\"version\": \"1\""), std::string::npos);
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);
}

// A snapshot of about `bytes` bytes: one EDS cluster whose ClusterLoadAssignment has as many
// endpoints as it takes, each with a hostname naming its index (padded to about 1 KB) and a
// port derived from it, so any endpoint lost or spliced in shows.
struct BigSnapshot {
  std::string yaml;
  size_t endpoints = 0;
};
BigSnapshot bigSnapshot(const std::string& version, size_t bytes) {
  BigSnapshot big;
  big.yaml = absl::StrCat("version: \"", version, R"("
resources:
  clusters:
  - {name: big, type: EDS, connect_timeout: 1s, eds_cluster_config: {eds_config: {ads: {}}}}
  endpoints:
  - cluster_name: big
    endpoints:
    - lb_endpoints:
)");
  const std::string padding(960, 'x');
  while (big.yaml.size() < bytes) {
    absl::StrAppend(&big.yaml, "      - endpoint: {hostname: endpoint-", big.endpoints, "-",
                    padding, ", address: {socket_address: {address: 127.0.0.1, port_value: ",
                    1 + big.endpoints % 65535, "}}}\n");
    big.endpoints++;
  }
  return big;
}

// What the stub serves (GET /v1/snapshot) is exactly `big`: every endpoint, in order.
testing::AssertionResult servesExactly(const std::string& json, const std::string& version,
                                       const BigSnapshot& big) {
  SnapshotFile served;
  if (!google::protobuf::util::JsonStringToMessage(json, &served).ok()) {
    return testing::AssertionFailure()
           << "GET /v1/snapshot is not a snapshot: " << json.substr(0, 200);
  }
  if (served.version() != version) {
    return testing::AssertionFailure() << "serves version '" << served.version() << "'";
  }
  if (served.resources().endpoints_size() != 1 ||
      served.resources().endpoints(0).endpoints_size() != 1) {
    return testing::AssertionFailure() << "not one locality of one assignment";
  }
  const auto& lb_endpoints = served.resources().endpoints(0).endpoints(0).lb_endpoints();
  if (static_cast<size_t>(lb_endpoints.size()) != big.endpoints) {
    return testing::AssertionFailure()
           << "serves " << lb_endpoints.size() << " endpoints of " << big.endpoints;
  }
  const std::string padding(960, 'x');
  for (int i = 0; i < lb_endpoints.size(); i++) {
    const auto& endpoint = lb_endpoints[i].endpoint();
    if (endpoint.hostname() != absl::StrCat("endpoint-", i, "-", padding) ||
        endpoint.address().socket_address().port_value() != 1u + i % 65535) {
      return testing::AssertionFailure()
             << "endpoint " << i << " is '" << endpoint.hostname().substr(0, 20) << "'";
    }
  }
  return testing::AssertionSuccess();
}

TEST_F(ControlPlaneBinaryTest, BigSnapshotsAreAppliedWholeOrRefusedWith413) {
  constexpr uint64_t kMB = 1000 * 1000;
  constexpr uint64_t kLimit = 16 * 1024 * 1024;
  startStub({"--max-snapshot-bytes", std::to_string(kLimit)});
  const std::string too_big =
      absl::StrCat("request body exceeds the limit of ", kLimit, " bytes (--max-snapshot-bytes)\n");
  const std::string url = absl::StrCat("http://127.0.0.1:", admin_port_, "/v1/snapshot");

  for (uint64_t size : {1 * kMB, 4 * kMB, 8 * kMB, 20 * kMB}) {
    SCOPED_TRACE(absl::StrCat(size / kMB, " MB"));

    // curl sends "Expect: 100-continue" and waits for the interim response before the body
    // (asked for explicitly, whatever this curl's own threshold is).
    const std::string curl_version = absl::StrCat("curl-", size / kMB);
    const BigSnapshot by_curl = bigSnapshot(curl_version, size);
    std::ofstream(dir_ + "/body.yaml") << by_curl.yaml;
    TestUtil::ChildProcess curl(
        "/usr/bin/curl",
        {"-sS", "-X", "PUT", "--data-binary", "@" + dir_ + "/body.yaml", "-H",
         "Expect: 100-continue", "-H", "Content-Type: application/yaml", "-o", dir_ + "/curl-body",
         "-w", "%{http_code}", "--max-time", "60", url},
        dir_ + "/curl-status", dir_ + "/curl-stderr");
    ASSERT_EQ(curl.waitForExit(90s), std::optional<int>(0)) << readFile(dir_ + "/curl-stderr");
    if (size <= kLimit) {
      EXPECT_EQ(readFile(dir_ + "/curl-status"), "200") << readFile(dir_ + "/curl-body");
      EXPECT_TRUE(servesExactly(admin("GET", "/v1/snapshot").body, curl_version, by_curl));
    } else {
      EXPECT_EQ(readFile(dir_ + "/curl-status"), "413");
      EXPECT_EQ(readFile(dir_ + "/curl-body"), too_big);
    }

    // A plain client: no Expect, the whole body written before it reads anything.
    const std::string raw_version = absl::StrCat("raw-", size / kMB);
    const BigSnapshot by_raw = bigSnapshot(raw_version, size);
    HttpResponse response = admin("PUT", "/v1/snapshot", by_raw.yaml);
    if (size <= kLimit) {
      EXPECT_EQ(response.status, 200u) << response.body;
      EXPECT_TRUE(servesExactly(admin("GET", "/v1/snapshot").body, raw_version, by_raw));
    } else {
      EXPECT_EQ(response.status, 413u);
      EXPECT_EQ(response.body, too_big);
      // Refused whole: what served before still serves.
      EXPECT_TRUE(
          servesExactly(admin("GET", "/v1/snapshot").body, "raw-8", bigSnapshot("raw-8", 8 * kMB)));
    }
  }

  // A chunked body (no length announced) over the limit: 413 once the limit is crossed.
  absl::StatusOr<Integration::HttpClientPtr> client = Integration::HttpClient::connect(admin_port_);
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->setTimeout(kTimeout);
  HttpRequest put;
  put.method = "PUT";
  put.path = "/v1/snapshot";
  put.host = "127.0.0.1";
  absl::StatusOr<HttpResponse> chunked = (*client)->chunkedUpload(put, 20 * kMB);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  EXPECT_EQ(chunked->status, 413u);
  EXPECT_EQ(chunked->body, too_big);
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);
}

TEST_F(ControlPlaneBinaryTest, SighupReloadsTheSnapshotFileAndUsrSignalsAreIgnored) {
  // The file is not watched (interval 0): only a signal makes the stub look at it again.
  writeSnapshot(snapshotYaml("1"));
  startStub({"--snapshot", dir_ + "/snapshot.yaml", "--watch-interval-ms", "0"});

  // SIGUSR1 and SIGUSR2 are ignored, each with a line in the log.
  stub_->signal(SIGUSR1);
  ASSERT_TRUE(waitUntil([&] { return absl::StrContains(log(), "caught SIGUSR1: ignored"); },
                        kTimeout, "SIGUSR1 in the log"))
      << log();
  stub_->signal(SIGUSR2);
  ASSERT_TRUE(waitUntil([&] { return absl::StrContains(log(), "caught SIGUSR2: ignored"); },
                        kTimeout, "SIGUSR2 in the log"))
      << log();
  EXPECT_TRUE(stub_->running());
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);

  // SIGHUP reads the snapshot file now.
  writeSnapshot(snapshotYaml("2", {{"service1", 9001}, {"service2", 8082}}));
  stub_->signal(SIGHUP);
  ASSERT_TRUE(waitUntil(
      [&] {
        return admin("GET", "/v1/snapshot").body.find("\"version\": \"2\"") != std::string::npos;
      },
      kTimeout, "version 2 to be served"))
      << log();
  EXPECT_TRUE(absl::StrContains(
      log(), "caught SIGHUP: reloading the snapshot file '" + dir_ + "/snapshot.yaml'"));
  // A bad file on SIGHUP is refused like any reload; the stub keeps serving.
  writeSnapshot("resources:\n  listeners: 7\n");
  stub_->signal(SIGHUP);
  ASSERT_TRUE(waitUntil(
      [&] { return absl::StrContains(log(), "rejected, still serving the previous snapshot"); },
      kTimeout, "the rejection in the log"))
      << log();
  EXPECT_TRUE(stub_->running());
  EXPECT_NE(admin("GET", "/v1/snapshot").body.find("\"version\": \"2\""), std::string::npos);

  // SIGTERM still stops it cleanly.
  stub_->signal(SIGTERM);
  EXPECT_EQ(stub_->waitForExit(kTimeout), std::optional<int>(0));
}

TEST_F(ControlPlaneBinaryTest, SighupWithoutASnapshotFileIsIgnored) {
  startStub({});
  stub_->signal(SIGHUP);
  ASSERT_TRUE(waitUntil(
      [&] { return absl::StrContains(log(), "caught SIGHUP: no --snapshot file, ignored"); },
      kTimeout, "SIGHUP in the log"))
      << log();
  EXPECT_TRUE(stub_->running());
  EXPECT_EQ(admin("GET", "/healthz").status, 200u);
}

TEST_F(ControlPlaneBinaryTest, SnapshotFileOverTheLimitFailsTheStart) {
  writeSnapshot(bigSnapshot("1", 2 * 1024 * 1024).yaml);
  TestUtil::ChildProcess process(
      CONTROL_PLANE_BINARY,
      {"--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0", "--snapshot",
       dir_ + "/snapshot.yaml", "--max-snapshot-bytes", "1048576"},
      dir_ + "/stdout.log", dir_ + "/stderr.log");
  EXPECT_EQ(process.waitForExit(kTimeout), std::optional<int>(1));
  EXPECT_TRUE(absl::StrContains(log(),
                                "snapshot.yaml': the file is larger than the limit of "
                                "1048576 bytes (--max-snapshot-bytes)\n"))
      << log();
}

}  // namespace
}  // namespace Proxy::ControlPlane
