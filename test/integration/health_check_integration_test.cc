// Endpoint health end to end: the real proxy binary, its clusters' active health checks against
// FakeUpstreams that fail and recover on command, and refused ports. Each test asserts what the
// upstreams saw (their traffic, health checks excluded), what the client got, /clusters'
// health_flags and the stats, as Envoy names them.

#include <map>
#include <string>
#include <vector>

#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

// `cluster` (a flow mapping) with `fields` added.
std::string withFields(const std::string& cluster, const std::string& fields) {
  return absl::StrCat("{", fields, ", ", cluster.substr(1));
}

// A quick HTTP health check: every 100 ms whether or not the cluster has traffic, one result
// flips a host.
constexpr char kHttpHealthCheck[] =
    "health_checks: [{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, "
    "unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: {path: /healthz}}]";

class HealthCheckIntegrationTest : public ProxyIntegrationTest {
 protected:
  void SetUp() override {
    ProxyIntegrationTest::SetUp();
    upstream3_ = makeUpstream("upstream-3");
  }

  // One route, everything to `cluster`.
  BootstrapSpec routeAllTo(const std::string& cluster) {
    BootstrapSpec spec;
    spec.virtual_hosts = {absl::StrCat(R"({name: all, domains: ["*"], routes: [
        {match: {prefix: "/"}, route: {cluster: )",
                                       cluster, "}}]}")};
    return spec;
  }

  // `count` requests to `path`: how many each upstream answered (by x-upstream; "" for a
  // response that no upstream gave).
  std::map<std::string, int> distribution(int count, const std::string& path = "/") {
    std::map<std::string, int> seen;
    for (int i = 0; i < count; i++) {
      absl::StatusOr<HttpResponse> response = get(path);
      EXPECT_TRUE(response.ok()) << response.status();
      if (response.ok()) {
        seen[response->header("x-upstream")]++;
      }
    }
    return seen;
  }

  // health_flags of the host on `port` in /clusters ("healthy", "/failed_active_hc", ...).
  std::string healthFlags(const std::string& cluster, uint32_t port) {
    absl::StatusOr<HttpResponse> clusters = proxy_->adminGet("/clusters");
    if (!clusters.ok()) {
      return "";
    }
    const std::string key = absl::StrCat(cluster, "::127.0.0.1:", port, "::health_flags::");
    for (absl::string_view line : absl::StrSplit(clusters->body, '\n')) {
      if (absl::ConsumePrefix(&line, key)) {
        return std::string(line);
      }
    }
    return "";
  }

  testing::AssertionResult waitForFlags(const std::string& cluster, uint32_t port,
                                        const std::string& flags) {
    return waitUntil([&] { return healthFlags(cluster, port) == flags; }, 10s,
                     absl::StrCat(cluster, " host ", port, " health_flags ", flags));
  }

  FakeUpstreamPtr upstream3_;
};

TEST_F(HealthCheckIntegrationTest, FailingHttpCheckTakesAnEndpointOutUntilItRecovers) {
  // upstream-3 answers 503 (its health check too) before the proxy starts.
  upstream3_->setStatus(503);
  BootstrapSpec spec = routeAllTo("service");
  spec.clusters = {withFields(
      staticCluster("service", {upstream1_->port(), upstream2_->port(), upstream3_->port()}),
      kHttpHealthCheck)};
  startProxy(spec);

  // The cluster warmed until its first round, so from the first request on upstream-3 is out:
  // round robin over the two healthy ones only.
  EXPECT_EQ(healthFlags("service", upstream1_->port()), "healthy");
  EXPECT_EQ(healthFlags("service", upstream3_->port()), "/failed_active_hc");
  std::map<std::string, int> seen = distribution(30);
  EXPECT_EQ(15, seen["upstream-1"]);
  EXPECT_EQ(15, seen["upstream-2"]);
  EXPECT_EQ(0u, upstream3_->trafficReceived());
  EXPECT_GE(upstream3_->healthChecksReceived(), 1u);

  // Envoy's stats: 2 hosts pass, checks went out, upstream-3's 503 failed it.
  absl::StatusOr<std::map<std::string, int64_t>> stats = proxy_->stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(2, (*stats)["cluster.service.health_check.healthy"]);
  EXPECT_GE((*stats)["cluster.service.health_check.attempt"], 3);
  EXPECT_GE((*stats)["cluster.service.health_check.failure"], 1);
  EXPECT_EQ(0, (*stats)["cluster.service.health_check.network_failure"]);
  EXPECT_EQ(2, (*stats)["cluster.service.membership_healthy"]);
  EXPECT_EQ(3, (*stats)["cluster.service.membership_total"]);

  // upstream-3 recovers: the next check passes and it takes its share again.
  upstream3_->setStatus(0);
  ASSERT_TRUE(waitForFlags("service", upstream3_->port(), "healthy"));
  seen = distribution(30);
  EXPECT_EQ(10, seen["upstream-1"]);
  EXPECT_EQ(10, seen["upstream-2"]);
  EXPECT_EQ(10, seen["upstream-3"]);

  // And fails again: out again.
  upstream1_->setStatus(500);
  ASSERT_TRUE(waitForFlags("service", upstream1_->port(), "/failed_active_hc"));
  const uint64_t before = upstream1_->trafficReceived();
  seen = distribution(20);
  EXPECT_EQ(0, seen["upstream-1"]);
  EXPECT_EQ(before, upstream1_->trafficReceived());
}

TEST_F(HealthCheckIntegrationTest, TcpCheckPayloadsAndPanicMode) {
  // A TCP check that sends an HTTP request as its payload and wants "HTTP/1.1 200" back.
  // upstream-2 and upstream-3 answer 503: only upstream-1 passes, 1 of 3 hosts.
  upstream2_->setStatus(503);
  upstream3_->setStatus(503);
  const std::string tcp_check =
      absl::StrCat("health_checks: [{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, ",
                   "unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {",
                   // "GET /healthz HTTP/1.1\r\nhost: x\r\nuser-agent: Envoy/HC\r\n\r\n"
                   "send: {text: 474554202f6865616c74687a20485454502f312e310d0a686f73743a20780d0a",
                   "757365722d6167656e743a20456e766f792f48430d0a0d0a}, ",
                   // "HTTP/1.1 200"
                   "receive: [{text: 485454502f312e3120323030}]}}]");
  const std::vector<uint32_t> ports = {upstream1_->port(), upstream2_->port(), upstream3_->port()};
  BootstrapSpec spec;
  spec.virtual_hosts = {R"({name: all, domains: ["*"], routes: [
      {match: {prefix: "/panic"}, route: {cluster: panicking}},
      {match: {prefix: "/strict"}, route: {cluster: strict}}]})"};
  spec.clusters = {
      // 33% healthy is below the default 50% panic threshold.
      withFields(staticCluster("panicking", ports), tcp_check),
      // The same hosts with panic mode disabled.
      withFields(
          staticCluster("strict", ports),
          absl::StrCat(tcp_check, ", common_lb_config: {healthy_panic_threshold: {value: 0}}"))};
  startProxy(spec);
  EXPECT_EQ(healthFlags("panicking", upstream1_->port()), "healthy");
  // A 503 never matches the payload: the check times out (Envoy's flag for that too).
  EXPECT_EQ(healthFlags("panicking", upstream2_->port()), "/failed_active_hc/active_hc_timeout");
  EXPECT_EQ(healthFlags("strict", upstream3_->port()), "/failed_active_hc/active_hc_timeout");

  // Panic (Envoy's rule): too few healthy hosts, so all of them share the load again.
  std::map<std::string, int> seen = distribution(30, "/panic");
  EXPECT_EQ(10, seen["upstream-1"]);
  EXPECT_EQ(10, seen["upstream-2"]);
  EXPECT_EQ(10, seen["upstream-3"]);
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.panicking.lb_healthy_panic", 30));

  // Panic disabled: the one healthy host takes everything.
  seen = distribution(30, "/strict");
  EXPECT_EQ(30, seen["upstream-1"]);
  absl::StatusOr<int64_t> strict_panics = proxy_->counter("cluster.strict.lb_healthy_panic");
  ASSERT_TRUE(strict_panics.ok());
  EXPECT_EQ(0, *strict_panics);
}

TEST_F(HealthCheckIntegrationTest, PriorityFailoverFollowsHealth) {
  // Priority 0: upstream-1 (failing its check) and a refused port; priority 1: upstream-2.
  upstream1_->setStatus(503);
  RefusingPort refused;
  BootstrapSpec spec = routeAllTo("tiered");
  spec.clusters = {absl::StrCat(
      "{name: tiered, type: STATIC, connect_timeout: 1s, ", kHttpHealthCheck,
      ", load_assignment: {cluster_name: tiered, endpoints: [", "{priority: 0, lb_endpoints: [",
      "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ", upstream1_->port(),
      "}}}}, ", "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ",
      refused.port(), "}}}}]}, ", "{priority: 1, lb_endpoints: [",
      "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ", upstream2_->port(),
      "}}}}]}]}}")};
  startProxy(spec);
  EXPECT_EQ(healthFlags("tiered", refused.port()), "/failed_active_hc");

  // Nothing healthy in priority 0: everything fails over to priority 1.
  std::map<std::string, int> seen = distribution(20);
  EXPECT_EQ(20, seen["upstream-2"]);
  EXPECT_EQ(0u, upstream1_->trafficReceived());

  // upstream-1 recovers: half of priority 0 is healthy, and Envoy's overprovisioning factor
  // (1.4) keeps 70% of the load there; 30% spills to priority 1. The refused host gets none.
  upstream1_->setStatus(0);
  ASSERT_TRUE(waitForFlags("tiered", upstream1_->port(), "healthy"));
  seen = distribution(200);
  EXPECT_EQ(200, seen["upstream-1"] + seen["upstream-2"]);
  EXPECT_GT(seen["upstream-1"], 110);  // 140 expected
  EXPECT_LT(seen["upstream-1"], 170);
}

TEST_F(HealthCheckIntegrationTest, EdsHealthStatusCombinesWithActiveChecks) {
  // The load assignment says upstream-2 is UNHEALTHY (EDS's health_status; a STATIC cluster's
  // load_assignment is the same message); upstream-3 fails its active check.
  upstream3_->setStatus(503);
  BootstrapSpec spec = routeAllTo("mixed");
  spec.clusters = {absl::StrCat(
      "{name: mixed, type: STATIC, connect_timeout: 1s, ", kHttpHealthCheck,
      ", load_assignment: {cluster_name: mixed, endpoints: [{lb_endpoints: [",
      "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ", upstream1_->port(),
      "}}}}, ",
      "{health_status: UNHEALTHY, endpoint: {address: {socket_address: {address: 127.0.0.1, "
      "port_value: ",
      upstream2_->port(), "}}}}, ",
      "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ", upstream3_->port(),
      "}}}}]}]}}")};
  spec.hcm_fields = {};
  // With 1 of 3 healthy the cluster would panic; make the threshold lower.
  spec.clusters[0] =
      withFields(spec.clusters[0], "common_lb_config: {healthy_panic_threshold: {value: 25}}");
  startProxy(spec);

  // Both flags show; upstream-2 is still actively checked (it passes), yet stays out.
  EXPECT_EQ(healthFlags("mixed", upstream2_->port()), "/failed_eds_health");
  EXPECT_EQ(healthFlags("mixed", upstream3_->port()), "/failed_active_hc");
  EXPECT_TRUE(waitUntil([&] { return upstream2_->healthChecksReceived() >= 1; }, 10s,
                        "a health check of the EDS-unhealthy host"));
  std::map<std::string, int> seen = distribution(10);
  EXPECT_EQ(10, seen["upstream-1"]);
  EXPECT_EQ(0u, upstream2_->trafficReceived());
  EXPECT_EQ(0u, upstream3_->trafficReceived());
}

// Outlier detection: 3 consecutive 5xx eject a host for 1 s (interval 0.1 s); one host of three
// may go (max_ejection_percent 50: Envoy's default 10% would let none go).
constexpr char kOutlierDetection[] =
    "outlier_detection: {consecutive_5xx: 3, interval: 0.1s, base_ejection_time: 1s, "
    "max_ejection_percent: 50}";

TEST_F(HealthCheckIntegrationTest, Consecutive5xxEjectsAnEndpointUntilItsTimeIsUp) {
  // upstream-3 answers every request with 503.
  upstream3_->setStatus(503);
  BootstrapSpec spec = routeAllTo("service");
  spec.clusters = {withFields(
      staticCluster("service", {upstream1_->port(), upstream2_->port(), upstream3_->port()}),
      kOutlierDetection)};
  startProxy(spec);

  // Round robin sends it every third request until its third 503 in a row: then the workers
  // report, the main thread ejects it, and the next snapshot leaves it out.
  ASSERT_TRUE(waitUntil(
      [&] {
        (void)get("/");
        return healthFlags("service", upstream3_->port()) == "/failed_outlier_check";
      },
      10s, "upstream-3 ejected"));
  const uint64_t before = upstream3_->trafficReceived();
  EXPECT_GE(before, 3u);
  std::map<std::string, int> seen = distribution(30);
  EXPECT_EQ(15, seen["upstream-1"]);
  EXPECT_EQ(15, seen["upstream-2"]);
  EXPECT_EQ(before, upstream3_->trafficReceived());

  // Envoy's stats for it.
  absl::StatusOr<std::map<std::string, int64_t>> stats = proxy_->stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(1, (*stats)["cluster.service.outlier_detection.ejections_active"]);
  EXPECT_EQ(1, (*stats)["cluster.service.outlier_detection.ejections_enforced_total"]);
  EXPECT_EQ(1, (*stats)["cluster.service.outlier_detection.ejections_enforced_consecutive_5xx"]);
  EXPECT_EQ(1, (*stats)["cluster.service.outlier_detection.ejections_detected_consecutive_5xx"]);
  EXPECT_EQ(2, (*stats)["cluster.service.membership_healthy"]);

  // It recovers; after base_ejection_time (checked every interval) it is back in rotation.
  upstream3_->setStatus(0);
  ASSERT_TRUE(waitForFlags("service", upstream3_->port(), "healthy"));
  seen = distribution(30);
  EXPECT_EQ(10, seen["upstream-3"]);
  EXPECT_TRUE(proxy_->waitForCounterGe("cluster.service.outlier_detection.ejections_total", 1));
  absl::StatusOr<int64_t> active =
      proxy_->counter("cluster.service.outlier_detection.ejections_active");
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(0, *active);
}

TEST_F(HealthCheckIntegrationTest, RouteTimeoutsCountAgainstTheHostThatDidNotAnswer) {
  // upstream-3 holds every request for 2 s; the route gives up after 100 ms with a 504. Each
  // timeout counts once against upstream-3 (Envoy's router: LocalOriginTimeout as its 504), so
  // the third in a row ejects it and the others keep serving.
  upstream3_->setDelay(2s);
  BootstrapSpec spec;
  spec.virtual_hosts = {R"({name: all, domains: ["*"], routes: [
      {match: {prefix: "/"}, route: {cluster: service, timeout: 0.1s}}]})"};
  spec.clusters = {withFields(
      staticCluster("service", {upstream1_->port(), upstream2_->port(), upstream3_->port()}),
      kOutlierDetection)};
  startProxy(spec);

  int timeouts = 0;
  ASSERT_TRUE(waitUntil(
      [&] {
        absl::StatusOr<HttpResponse> response = get("/");
        if (response.ok() && response->status == 504) {
          timeouts++;
        }
        return healthFlags("service", upstream3_->port()) == "/failed_outlier_check";
      },
      10s, "upstream-3 ejected"));
  EXPECT_EQ(3, timeouts);
  EXPECT_TRUE(proxy_->waitForCounterGe(
      "cluster.service.outlier_detection.ejections_enforced_consecutive_5xx", 1));
  std::map<std::string, int> seen = distribution(10);
  EXPECT_EQ(10, seen["upstream-1"] + seen["upstream-2"]);
}

TEST_F(HealthCheckIntegrationTest, RefusedConnectionsEjectAnEndpointOnEveryWorker) {
  // One endpoint refuses connections. Without split_external_local_origin_errors each refused
  // connection counts as a 503 (Envoy's rule), so three eject it. Two workers: the reports of
  // both reach the one detector, and both get the snapshot without it.
  RefusingPort refused;
  BootstrapSpec spec = routeAllTo("service");
  spec.clusters = {
      withFields(staticCluster("service", {upstream1_->port(), upstream2_->port(), refused.port()}),
                 kOutlierDetection)};
  startProxy(spec, /*concurrency=*/2);
  ASSERT_TRUE(waitUntil(
      [&] {
        (void)get("/");
        return healthFlags("service", refused.port()) == "/failed_outlier_check";
      },
      10s, "the refusing endpoint ejected"));

  // From now on every request is answered by a live upstream, whichever worker takes it.
  std::map<std::string, int> seen = distribution(40);
  EXPECT_EQ(40, seen["upstream-1"] + seen["upstream-2"]);
  EXPECT_GT(seen["upstream-1"], 0);
  EXPECT_GT(seen["upstream-2"], 0);
}

TEST_F(HealthCheckIntegrationTest, PassingHealthCheckBringsAnEjectedEndpointBack) {
  // Both mechanisms: upstream-3 answers its traffic with 500 but passes its health checks.
  // Ejected by outlier detection, it comes back at its next passing check
  // (successful_active_health_check_uneject_host, on by default), long before the 30 s
  // base_ejection_time.
  BootstrapSpec spec = routeAllTo("service");
  spec.clusters = {withFields(
      withFields(
          staticCluster("service", {upstream1_->port(), upstream2_->port(), upstream3_->port()}),
          "outlier_detection: {consecutive_5xx: 3, interval: 0.1s, base_ejection_time: 30s, "
          "max_ejection_percent: 50}"),
      "health_checks: [{timeout: 1s, interval: 0.2s, no_traffic_interval: 0.2s, "
      "unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: {path: /healthz}}]")};
  startProxy(spec);
  upstream3_->setTrafficStatus(500);
  ASSERT_TRUE(waitUntil(
      [&] {
        (void)get("/");
        absl::StatusOr<int64_t> ejections =
            proxy_->counter("cluster.service.outlier_detection.ejections_enforced_total");
        return ejections.ok() && *ejections >= 1;
      },
      10s, "upstream-3 ejected"));
  // No more traffic: only a passing health check can bring it back within the test.
  EXPECT_TRUE(waitUntil(
      [&] {
        absl::StatusOr<int64_t> active =
            proxy_->counter("cluster.service.outlier_detection.ejections_active");
        return active.ok() && *active == 0;
      },
      10s, "upstream-3 back"));
  EXPECT_EQ(healthFlags("service", upstream3_->port()), "healthy");
}

}  // namespace
}  // namespace Proxy::Integration
