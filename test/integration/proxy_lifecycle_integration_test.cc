// End-to-end tests of the real `proxy` binary: workers, signals, admin, and --mode validate.
// The harness (bootstraps, the fixture) is proxy_integration_test_fixture.h.

#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

// ---- Workers, signals, admin, validation ------------------------------------------------------

TEST_F(ProxyIntegrationTest, ConcurrencyTwoSpreadsConnectionsOverBothWorkers) {
  startProxy(serviceRoutes(), /*concurrency=*/2);

  // 64 connections open at once. Each worker has its own SO_REUSEPORT socket and the kernel
  // picks one by hashing the 4-tuple; with 64 different source ports the chance that one
  // worker gets none is 2 * 2^-64, i.e. never.
  constexpr int kConnections = 64;
  std::vector<HttpClientPtr> clients;
  for (int i = 0; i < kConnections; i++) {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
    ASSERT_TRUE(client.ok()) << client.status();
    clients.push_back(std::move(*client));
  }
  for (HttpClientPtr& client : clients) {
    HttpRequest request;
    request.path = "/service/1";
    ASSERT_TRUE(client->sendRaw(HttpClient::serialize(request)).ok());
  }
  for (HttpClientPtr& client : clients) {
    absl::StatusOr<HttpResponse> response = client->readResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u);
  }

  // Per-worker listener stats: both got connections, and together all of them.
  const std::string listener = absl::StrCat("listener.127.0.0.1_", port_);
  absl::StatusOr<int64_t> worker0 = proxy_->counter(listener + ".worker_0.downstream_cx_total");
  absl::StatusOr<int64_t> worker1 = proxy_->counter(listener + ".worker_1.downstream_cx_total");
  ASSERT_TRUE(worker0.ok()) << worker0.status();
  ASSERT_TRUE(worker1.ok()) << worker1.status();
  EXPECT_GT(*worker0, 0);
  EXPECT_GT(*worker1, 0);
  EXPECT_EQ(*worker0 + *worker1, kConnections);
  absl::StatusOr<int64_t> total = proxy_->counter(listener + ".downstream_cx_total");
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, kConnections);
}

TEST_F(ProxyIntegrationTest, SigtermLetsAnInFlightRequestFinish) {
  startProxy(serviceRoutes());

  // A request the upstream answers after 1 s.
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  HttpRequest request;
  request.path = "/service/1/slow";
  request.headers = {{"x-fake-delay-ms", "1000"}};
  ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(request)).ok());

  // Once the upstream has it (in flight), ask the proxy to stop.
  ASSERT_TRUE(upstream1_->waitForRequests(1));
  ASSERT_TRUE(proxy_->sendSignal(SIGTERM));

  // The request still completes, and then the process exits cleanly (within the drain time).
  absl::StatusOr<HttpResponse> response = (*client)->readResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  absl::StatusOr<int> exit_code = proxy_->waitForExit(20s);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

TEST_F(ProxyIntegrationTest, AdminEndpointsAnswer) {
  startProxy(serviceRoutes());
  ASSERT_TRUE(get("/service/1").ok());

  for (std::string_view path : {"/ready", "/stats", "/stats/prometheus", "/config_dump",
                                "/listeners", "/clusters", "/server_info"}) {
    absl::StatusOr<HttpResponse> response = proxy_->adminGet(path);
    ASSERT_TRUE(response.ok()) << path << ": " << response.status();
    EXPECT_EQ(response->status, 200u) << path;
  }
  absl::StatusOr<HttpResponse> ready = proxy_->adminGet("/ready");
  EXPECT_EQ(absl::StripAsciiWhitespace(ready->body), "LIVE");
  // Prometheus exposition format, with Envoy's "envoy_" prefix.
  absl::StatusOr<HttpResponse> prometheus = proxy_->adminGet("/stats/prometheus");
  EXPECT_NE(prometheus->body.find("# TYPE envoy_"), std::string::npos) << prometheus->body;
  // The config dump names our clusters.
  absl::StatusOr<HttpResponse> dump = proxy_->adminGet("/config_dump");
  EXPECT_NE(dump->body.find("service2"), std::string::npos);
}

TEST_F(ProxyIntegrationTest, QuitQuitQuitExitsCleanly) {
  startProxy(serviceRoutes());

  absl::StatusOr<HttpResponse> response = proxy_->adminPost("/quitquitquit");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  absl::StatusOr<int> exit_code = proxy_->waitForExit(20s);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

// Options that only carry a bootstrap (for runToCompletion()).
ProxyOptions withBootstrap(std::string yaml) {
  ProxyOptions options;
  options.bootstrap_yaml = std::move(yaml);
  return options;
}

TEST_F(ProxyIntegrationTest, ValidateModeAcceptsAGoodBootstrap) {
  ProxyProcess proxy(withBootstrap(bootstrapYaml(serviceRoutes())));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
}

// The non-empty lines of `text`.
std::vector<std::string> lines(const std::string& text) {
  return absl::StrSplit(absl::StripAsciiWhitespace(text), '\n', absl::SkipEmpty());
}

TEST_F(ProxyIntegrationTest, ValidateModeRejectsAnUnknownFieldInOneLine) {
  // A field Envoy's API does not have, inside the first cluster.
  std::string yaml = bootstrapYaml(serviceRoutes());
  const std::string needle = "{name: service1, ";
  ASSERT_NE(yaml.find(needle), std::string::npos);
  yaml.replace(yaml.find(needle), needle.size(), "{name: service1, bogus_field: 1, ");
  ProxyProcess proxy(withBootstrap(yaml));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  // One line, naming the field.
  const std::vector<std::string> error = lines(result->stderr_text);
  ASSERT_EQ(error.size(), 1u) << result->stderr_text;
  EXPECT_NE(error[0].find("bogus_field"), std::string::npos) << error[0];
}

TEST_F(ProxyIntegrationTest, ValidateModeRejectsABadValueInOneLine) {
  // An enum value that does not exist.
  std::string yaml = bootstrapYaml(serviceRoutes());
  const std::string needle = "lb_policy: ROUND_ROBIN";
  ASSERT_NE(yaml.find(needle), std::string::npos);
  yaml.replace(yaml.find(needle), needle.size(), "lb_policy: SOMETIMES");
  ProxyProcess proxy(withBootstrap(yaml));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  const std::vector<std::string> error = lines(result->stderr_text);
  ASSERT_EQ(error.size(), 1u) << result->stderr_text;
  EXPECT_NE(error[0].find("lb_policy"), std::string::npos) << error[0];
}

TEST_F(ProxyIntegrationTest, BadBootstrapFailsStartupWithExitCodeNonZero) {
  // Not YAML at all: the proxy refuses to start (without --mode validate too).
  ProxyProcess proxy(withBootstrap("static_resources: [unclosed"));

  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  EXPECT_EQ(lines(result->stderr_text).size(), 1u) << result->stderr_text;
}

}  // namespace
}  // namespace Proxy::Integration
