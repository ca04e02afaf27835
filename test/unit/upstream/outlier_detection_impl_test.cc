// The outlier detector's decisions on simulated time: consecutive 5xx / gateway / local-origin
// ejections (what workers report reaches the detector through a post), max_ejection_percent
// and its overflow, the ejection time growing per ejection and shrinking per clean interval,
// success-rate and failure-percentage ejections over an interval's requests, the local-origin
// split, and Envoy's stat names.

#include "proxy/upstream/outlier_detection_impl.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "test/unit/upstream/upstream_test_util.h"
#include "test/unit/xds_client/simulated_dispatcher.h"

namespace Proxy::Upstream::Outlier {
namespace {

using namespace std::chrono_literals;
using envoy::config::cluster::v3::OutlierDetection;

class OutlierDetectorTest : public testing::Test {
 protected:
  void create(const OutlierDetection& proto, size_t host_count) {
    envoy::config::cluster::v3::Cluster cluster;
    cluster.set_name("backend");
    absl::StatusOr<ClusterInfoImplConstSharedPtr> info = ClusterInfoImpl::create(cluster, store_);
    ASSERT_TRUE(info.ok());
    absl::StatusOr<DetectorConfig> config = DetectorConfig::create(proto);
    ASSERT_TRUE(config.ok()) << config.status();
    detector_ = DetectorImpl::create(dispatcher_, *config, *info, [this] { changes_++; });
    hosts_.clear();
    for (size_t i = 0; i < host_count; i++) {
      hosts_.push_back(makeHost(static_cast<uint32_t>(1001 + i)));
    }
    detector_->setHosts(hosts_);
  }

  void TearDown() override {
    detector_.reset();
    hosts_.clear();
    dispatcher_.runUntilIdle();
  }

  // `count` responses with `code` from host `i`, as a worker reports them; then the posts run.
  void respond(size_t i, uint64_t code, int count = 1) {
    for (int n = 0; n < count; n++) {
      putHttpResponseCode(*hosts_[i], code);
    }
    dispatcher_.runUntilIdle();
  }
  bool ejected(size_t i) { return hosts_[i]->healthState().get(HealthFlag::FailedOutlierCheck); }
  uint64_t stat(const std::string& name) {
    return store_.counter("cluster.backend.outlier_detection." + name).value();
  }
  int64_t active() {
    return store_.gauge("cluster.backend.outlier_detection.ejections_active").value();
  }

  Proxy::Test::SimulatedDispatcher dispatcher_;
  Stats::Store store_;
  std::shared_ptr<DetectorImpl> detector_;
  HostVector hosts_;
  int changes_ = 0;
};

OutlierDetection consecutive(uint32_t max_ejection_percent) {
  OutlierDetection proto;
  proto.mutable_consecutive_5xx()->set_value(3);
  proto.mutable_interval()->set_seconds(1);
  proto.mutable_base_ejection_time()->set_seconds(10);
  proto.mutable_max_ejection_time()->set_seconds(25);
  proto.mutable_max_ejection_percent()->set_value(max_ejection_percent);
  return proto;
}

TEST_F(OutlierDetectorTest, Consecutive5xxEjectsWithAGrowingEjectionTime) {
  create(consecutive(/*max_ejection_percent=*/50), 3);

  // Two 5xx and a 200: the run is broken, nothing happens.
  respond(0, 503, 2);
  respond(0, 200);
  respond(0, 500, 2);
  EXPECT_FALSE(ejected(0));

  // The third in a row ejects host 0; the workers learn it from the next snapshot.
  respond(0, 500);
  EXPECT_TRUE(ejected(0));
  EXPECT_EQ(1, changes_);
  EXPECT_EQ(1, active());
  EXPECT_EQ(1u, stat("ejections_detected_consecutive_5xx"));
  EXPECT_EQ(1u, stat("ejections_enforced_consecutive_5xx"));
  EXPECT_EQ(1u, stat("ejections_enforced_total"));
  EXPECT_EQ(1u, stat("ejections_total"));
  EXPECT_EQ(1u, stat("ejections_consecutive_5xx"));

  // A second host would make 2 of 3 (67% > 50%): detected, not ejected, counted as overflow.
  respond(1, 503, 3);
  EXPECT_FALSE(ejected(1));
  EXPECT_EQ(1u, stat("ejections_overflow"));
  EXPECT_EQ(2u, stat("ejections_detected_consecutive_5xx"));
  // 503s are gateway errors too; that detector's enforcement defaults to 0%.
  respond(1, 503, 2);
  EXPECT_EQ(1u, stat("ejections_detected_consecutive_gateway_failure"));
  EXPECT_EQ(0u, stat("ejections_enforced_consecutive_gateway_failure"));

  // The first ejection lasts base_ejection_time (10 s), checked at each interval (1 s).
  dispatcher_.advanceTimeAndRun(9s);
  EXPECT_TRUE(ejected(0));
  dispatcher_.advanceTimeAndRun(1s);
  EXPECT_FALSE(ejected(0));
  EXPECT_EQ(0, active());

  // Ejected again at once: the second one lasts 2 x 10 s.
  respond(0, 502, 3);
  EXPECT_TRUE(ejected(0));
  dispatcher_.advanceTimeAndRun(19s);
  EXPECT_TRUE(ejected(0));
  dispatcher_.advanceTimeAndRun(1s);
  EXPECT_FALSE(ejected(0));

  // The third would be 30 s, but max_ejection_time caps it at 25 s.
  respond(0, 500, 3);
  dispatcher_.advanceTimeAndRun(24s);
  EXPECT_TRUE(ejected(0));
  dispatcher_.advanceTimeAndRun(1s);
  EXPECT_FALSE(ejected(0));

  // Every clean interval takes one step off: after 3 s clean the back-off is back from 3 to
  // 0 + the new ejection's 1, so the next ejection lasts 10 s again.
  dispatcher_.advanceTimeAndRun(3s);
  respond(0, 500, 3);
  dispatcher_.advanceTimeAndRun(10s);
  EXPECT_FALSE(ejected(0));
}

TEST_F(OutlierDetectorTest, DefaultMaxEjectionPercentProtectsSmallClusters) {
  // Envoy's default 10%: with three hosts even one ejection is 33%, so none happens...
  OutlierDetection proto = consecutive(10);
  proto.clear_max_ejection_percent();
  create(proto, 3);
  respond(2, 503, 3);
  EXPECT_FALSE(ejected(2));
  EXPECT_EQ(1u, stat("ejections_overflow"));

  // ...unless always_eject_one_host says the first one may go.
  proto.mutable_always_eject_one_host()->set_value(true);
  create(proto, 3);
  respond(2, 503, 3);
  EXPECT_TRUE(ejected(2));
  respond(1, 503, 3);
  EXPECT_FALSE(ejected(1));
}

TEST_F(OutlierDetectorTest, LocalOriginErrorsCountAsGatewayErrorsUnlessSplit) {
  // Without the split, a refused connection is a 503 for the consecutive_5xx counter.
  create(consecutive(100), 2);
  for (int i = 0; i < 3; i++) {
    putResult(*hosts_[0], Result::LocalOriginConnectFailed);
  }
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(ejected(0));
  EXPECT_EQ(1u, stat("ejections_enforced_consecutive_5xx"));

  // With it, they have their own counter (consecutive_local_origin_failure, default 5) and
  // a successful connection resets it; 5xx responses no longer see them.
  OutlierDetection proto = consecutive(100);
  proto.set_split_external_local_origin_errors(true);
  create(proto, 2);
  for (int i = 0; i < 4; i++) {
    putResult(*hosts_[0], Result::LocalOriginConnectFailed);
  }
  putResult(*hosts_[0], Result::LocalOriginConnectSuccess);
  for (int i = 0; i < 4; i++) {
    putResult(*hosts_[0], Result::LocalOriginConnectFailed);
  }
  dispatcher_.runUntilIdle();
  EXPECT_FALSE(ejected(0));
  putResult(*hosts_[0], Result::LocalOriginTimeout);
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(ejected(0));
  EXPECT_EQ(1u, stat("ejections_enforced_consecutive_local_origin_failure"));
}

TEST_F(OutlierDetectorTest, ARouterTimeoutCountsAsTheStatusItAnsweredWith) {
  // The router reports a timed-out attempt as LocalOriginTimeout with the status it answered
  // (504, or 204 for x-envoy-upstream-rq-timeout-alt-response). Without the split that status
  // is what counts: two 504s and a 204 (a success) leave the counter at zero...
  create(consecutive(100), 2);
  putResult(*hosts_[0], Result::LocalOriginTimeout, 504);
  putResult(*hosts_[0], Result::LocalOriginTimeout, 504);
  putResult(*hosts_[0], Result::LocalOriginTimeout, 204);
  putResult(*hosts_[0], Result::LocalOriginTimeout, 504);
  putResult(*hosts_[0], Result::LocalOriginTimeout, 504);
  dispatcher_.runUntilIdle();
  EXPECT_FALSE(ejected(0));
  // ...and a third 504 in a row ejects, as a gateway failure too.
  putResult(*hosts_[0], Result::LocalOriginTimeout, 504);
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(ejected(0));
  EXPECT_EQ(1u, stat("ejections_enforced_consecutive_5xx"));
}

TEST_F(OutlierDetectorTest, SuccessRateAndFailurePercentage) {
  // Envoy's example: success rates {50, 100, 100, 100, 100} have mean 90 and stdev 20, so
  // with the default factor 1.9 the threshold is 90 - 38 = 52.
  const auto [mean, threshold] =
      DetectorImpl::successRateThreshold({50, 100, 100, 100, 100}, /*stdev_factor=*/1.9);
  EXPECT_DOUBLE_EQ(90, mean);
  EXPECT_DOUBLE_EQ(52, threshold);

  // Five hosts (success_rate_minimum_hosts), 100 requests each in one interval
  // (success_rate_request_volume): host 0 answers half of them with 500.
  OutlierDetection proto;
  proto.mutable_interval()->set_seconds(1);
  proto.mutable_max_ejection_percent()->set_value(100);
  proto.mutable_consecutive_5xx()->set_value(1000);
  create(proto, 5);
  for (int n = 0; n < 50; n++) {
    respond(0, 500);
    respond(0, 200);
  }
  for (size_t i = 1; i < 5; i++) {
    respond(i, 200, 100);
  }
  dispatcher_.advanceTimeAndRun(1s);
  EXPECT_TRUE(ejected(0));
  EXPECT_DOUBLE_EQ(90, detector_->successRateAverage(false));
  EXPECT_DOUBLE_EQ(52, detector_->successRateEjectionThreshold(false));
  EXPECT_DOUBLE_EQ(100, DetectorImpl::hostSuccessRate(*hosts_[1], false));
  EXPECT_EQ(1u, stat("ejections_enforced_success_rate"));
  EXPECT_EQ(1u, stat("ejections_success_rate"));

  // Failure percentage (enforcement off by default): 60 requests, 90% failed (>= 85%).
  proto.mutable_enforcing_failure_percentage()->set_value(100);
  proto.mutable_enforcing_success_rate()->set_value(0);
  create(proto, 5);
  respond(3, 503, 54);
  respond(3, 200, 6);
  for (size_t i : {0, 1, 2, 4}) {
    respond(i, 200, 60);
  }
  dispatcher_.advanceTimeAndRun(1s);
  EXPECT_TRUE(ejected(3));
  EXPECT_EQ(1u, stat("ejections_enforced_failure_percentage"));
}

TEST_F(OutlierDetectorTest, PassingActiveCheckBringsAnEjectedHostBack) {
  create(consecutive(100), 2);
  respond(1, 500, 3);
  EXPECT_TRUE(ejected(1));
  detector_->onActiveHealthCheckSuccess(*hosts_[1]);
  EXPECT_FALSE(ejected(1));
  EXPECT_EQ(0, active());
}

TEST(OutlierDetectorConfigTest, ErrorsNameTheField) {
  OutlierDetection proto;
  proto.mutable_max_ejection_percent()->set_value(101);
  EXPECT_EQ("outlier_detection.max_ejection_percent: 101 is above 100",
            DetectorConfig::create(proto).status().message());
  proto = OutlierDetection();
  proto.mutable_interval();
  EXPECT_EQ("outlier_detection.interval: must be greater than 0",
            DetectorConfig::create(proto).status().message());
}

}  // namespace
}  // namespace Proxy::Upstream::Outlier
