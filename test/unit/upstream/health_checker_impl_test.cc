// The health checker's state machine on simulated time (HealthCheckerImplBase with a session
// the test completes by hand): first results count at once, thresholds afterwards, an active
// failure fails at once, timeouts and network failures count toward the threshold, the next
// check comes after no_traffic_interval until the cluster has traffic and after interval (or
// the edge intervals) then, the first round, the stats; and the config's errors.

#include "proxy/upstream/health_checker_impl.h"

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "test/unit/upstream/upstream_test_util.h"
#include "test/unit/xds_client/simulated_dispatcher.h"

namespace Proxy::Upstream {
namespace {

using namespace std::chrono_literals;
using envoy::config::core::v3::HealthCheck;

// A checker whose sessions record each check and let the test decide its result.
class ManualChecker : public HealthCheckerImplBase {
 public:
  class ManualSession : public Session {
   public:
    ManualSession(ManualChecker& parent, HostConstSharedPtr host)
        : Session(parent, std::move(host)) {}
    void onInterval() override { checks_sent++; }
    void onTimeout() override { timeouts++; }
    void pass() { handleSuccess(); }
    void fail(FailureType type, bool retriable = false) { handleFailure(type, retriable); }

    int checks_sent = 0;
    int timeouts = 0;
  };

  using HealthCheckerImplBase::HealthCheckerImplBase;

  ManualSession& session(uint32_t port) { return *sessions_by_port.at(port); }
  std::map<uint32_t, ManualSession*> sessions_by_port;

 protected:
  SessionPtr createSession(HostConstSharedPtr host) override {
    auto session = std::make_unique<ManualSession>(*this, host);
    sessions_by_port[host->address().port()] = session.get();
    return session;
  }
};

HealthCheck httpCheck() {
  HealthCheck check;
  check.mutable_timeout()->set_seconds(1);
  check.mutable_interval()->set_seconds(10);
  check.mutable_no_traffic_interval()->set_seconds(60);
  check.mutable_unhealthy_threshold()->set_value(2);
  check.mutable_healthy_threshold()->set_value(2);
  check.mutable_http_health_check()->set_path("/healthz");
  return check;
}

class HealthCheckerTest : public testing::Test {
 protected:
  void SetUp() override {
    envoy::config::cluster::v3::Cluster cluster;
    cluster.set_name("backend");
    absl::StatusOr<ClusterInfoImplConstSharedPtr> info = ClusterInfoImpl::create(cluster, store_);
    ASSERT_TRUE(info.ok()) << info.status();
    info_ = *info;
    absl::StatusOr<HealthCheckConfig> config = HealthCheckConfig::create(httpCheck(), "hc");
    ASSERT_TRUE(config.ok()) << config.status();
    checker_ = std::make_unique<ManualChecker>(
        dispatcher_, *config, info_, [this] { health_changes_++; }, [this] { initial_rounds_++; });
  }

  void TearDown() override { checker_.reset(); }

  bool failed(const HostConstSharedPtr& host) {
    return host->healthState().get(HealthFlag::FailedActiveHc);
  }
  uint64_t counter(const std::string& name) {
    return store_.counter("cluster.backend.health_check." + name).value();
  }
  int64_t healthyGauge() { return store_.gauge("cluster.backend.health_check.healthy").value(); }

  Proxy::Test::SimulatedDispatcher dispatcher_;
  Stats::Store store_;
  ClusterInfoImplConstSharedPtr info_;
  std::unique_ptr<ManualChecker> checker_;
  int health_changes_ = 0;
  int initial_rounds_ = 0;
};

TEST_F(HealthCheckerTest, FirstRoundThenThresholdsAndIntervals) {
  // Two hosts: both start failed and pending, and are checked at once.
  HostConstSharedPtr a = makeHost(1001);
  HostConstSharedPtr b = makeHost(1002);
  checker_->setHosts({a, b});
  EXPECT_TRUE(failed(a));
  EXPECT_TRUE(a->healthState().get(HealthFlag::PendingActiveHc));
  EXPECT_EQ(1, checker_->session(1001).checks_sent);
  EXPECT_EQ(1, checker_->session(1002).checks_sent);
  EXPECT_EQ(2u, counter("attempt"));
  EXPECT_FALSE(checker_->initialRoundDone());

  // a passes: healthy at once (the first result skips healthy_threshold). b's connection
  // fails: it stays failed, no longer pending. The round is complete.
  checker_->session(1001).pass();
  checker_->session(1002).fail(HealthCheckerImplBase::FailureType::Network);
  EXPECT_FALSE(failed(a));
  EXPECT_TRUE(failed(b));
  EXPECT_FALSE(b->healthState().get(HealthFlag::PendingActiveHc));
  EXPECT_TRUE(checker_->initialRoundDone());
  dispatcher_.runUntilIdle();
  EXPECT_EQ(1, health_changes_);  // coalesced: one rebuild for both results
  EXPECT_EQ(1, initial_rounds_);
  EXPECT_EQ(1u, counter("success"));
  EXPECT_EQ(1u, counter("failure"));
  EXPECT_EQ(1u, counter("network_failure"));
  EXPECT_EQ(1, healthyGauge());

  // The cluster never opened an upstream connection: the next checks wait no_traffic_interval.
  dispatcher_.advanceTimeAndRun(59s);
  EXPECT_EQ(1, checker_->session(1001).checks_sent);
  dispatcher_.advanceTimeAndRun(1s);
  EXPECT_EQ(2, checker_->session(1001).checks_sent);

  // With traffic, interval (10 s) applies from the next result on.
  info_->stats().upstream_cx_total().inc();
  checker_->session(1001).fail(HealthCheckerImplBase::FailureType::Network);
  EXPECT_FALSE(failed(a));  // 1 of unhealthy_threshold 2: pending
  dispatcher_.advanceTimeAndRun(10s);
  EXPECT_EQ(3, checker_->session(1001).checks_sent);
  // No answer: the timeout (1 s) aborts the check and counts a network failure; that is the
  // second in a row, so a fails, with the timeout flag.
  dispatcher_.advanceTimeAndRun(1s);
  EXPECT_EQ(1, checker_->session(1001).timeouts);
  EXPECT_TRUE(failed(a));
  EXPECT_TRUE(a->healthState().get(HealthFlag::ActiveHcTimeout));
  dispatcher_.runUntilIdle();
  EXPECT_EQ(2, health_changes_);
  EXPECT_EQ(0, healthyGauge());

  // Recovery takes healthy_threshold (2) passes.
  dispatcher_.advanceTimeAndRun(10s);
  checker_->session(1001).pass();
  EXPECT_TRUE(failed(a));
  dispatcher_.advanceTimeAndRun(10s);
  checker_->session(1001).pass();
  EXPECT_FALSE(failed(a));
  EXPECT_FALSE(a->healthState().get(HealthFlag::ActiveHcTimeout));

  // An active failure (a bad HTTP status) fails a healthy host at once; a retriable one counts
  // toward the threshold like a network failure.
  dispatcher_.advanceTimeAndRun(10s);
  checker_->session(1001).fail(HealthCheckerImplBase::FailureType::Active, /*retriable=*/true);
  EXPECT_FALSE(failed(a));
  dispatcher_.advanceTimeAndRun(10s);
  checker_->session(1001).pass();
  dispatcher_.advanceTimeAndRun(10s);
  checker_->session(1001).fail(HealthCheckerImplBase::FailureType::Active);
  EXPECT_TRUE(failed(a));
}

TEST_F(HealthCheckerTest, HostsComeAndGo) {
  // The first round waits for both hosts; removing the unchecked one completes it.
  HostConstSharedPtr a = makeHost(1001);
  HostConstSharedPtr b = makeHost(1002);
  checker_->setHosts({a, b});
  checker_->session(1001).pass();
  EXPECT_FALSE(checker_->initialRoundDone());
  checker_->setHosts({a});
  EXPECT_TRUE(checker_->initialRoundDone());
  dispatcher_.runUntilIdle();
  EXPECT_EQ(1, initial_rounds_);

  // A Host object replaced by another for the same endpoint (same health state) keeps its
  // session and its state; a new endpoint starts failed and gets a session of its own.
  HostConstSharedPtr c = makeHost(1003);
  checker_->setHosts({a, c});
  EXPECT_FALSE(failed(a));
  EXPECT_TRUE(failed(c));
  EXPECT_EQ(1, checker_->session(1001).checks_sent);
  EXPECT_EQ(1, checker_->session(1003).checks_sent);
  EXPECT_EQ(1, healthyGauge());
}

TEST(HealthCheckConfigTest, ErrorsNameTheField) {
  auto error = [](const HealthCheck& check) {
    absl::StatusOr<HealthCheckConfig> config = HealthCheckConfig::create(check, "health_checks[0]");
    return config.ok() ? std::string("ok") : std::string(config.status().message());
  };
  HealthCheck check = httpCheck();
  EXPECT_EQ("ok", error(check));

  check.clear_timeout();
  EXPECT_EQ("health_checks[0].timeout: must be greater than 0", error(check));

  check = httpCheck();
  check.clear_unhealthy_threshold();
  EXPECT_EQ("health_checks[0].unhealthy_threshold: required", error(check));

  check = httpCheck();
  auto* range = check.mutable_http_health_check()->add_expected_statuses();
  range->set_start(200);
  range->set_end(700);
  EXPECT_EQ(
      "health_checks[0].http_health_check.expected_statuses[0]: invalid http status range: "
      "expecting end <= 600, but found 700",
      error(check));

  check = httpCheck();
  check.mutable_tcp_health_check()->mutable_send()->set_text("zz");
  EXPECT_EQ("health_checks[0].tcp_health_check.send: invalid hex string 'zz'", error(check));

  check = httpCheck();
  check.mutable_grpc_health_check()->add_initial_metadata();
  EXPECT_EQ("health_checks[0].grpc_health_check.initial_metadata: not supported", error(check));

  // Defaults: Envoy's expected 200 only, GET, and the optional intervals from `interval`.
  absl::StatusOr<HealthCheckConfig> config = HealthCheckConfig::create(httpCheck(), "hc");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ((std::vector<std::pair<int64_t, int64_t>>{{200, 201}}), config->expected_statuses);
  EXPECT_EQ("GET", config->method);
  EXPECT_EQ(10000, config->unhealthy_edge_interval.count());
  EXPECT_EQ(60000, config->no_traffic_healthy_interval.count());
}

}  // namespace
}  // namespace Proxy::Upstream
