// initial_fetch_timeout of the resources named after startup, end to end: the real proxy
// binary, configured only through an in-test ADS server. A listener or cluster added while
// serving waits for its route configuration or endpoints at most the initial_fetch_timeout of
// the config source that names them, then serves without them (404, 503), as Envoy does.
// Waits are on stats with deadlines, never sleeps.

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "gtest/gtest.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::XdsIntegration {
namespace {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

class XdsInitialFetchTimeoutTest : public XdsIntegrationTest {
 protected:
  void SetUp() override {
    XdsIntegrationTest::SetUp();
    upstream_ = makeUpstream("upstream-a");
  }

  FakeUpstreamPtr upstream_;
};

// `listener` with rds.config_source.initial_fetch_timeout set to `seconds`.
Listener withRdsInitialFetchTimeout(Listener listener, int64_t seconds) {
  auto* typed_config =
      listener.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config();
  HttpConnectionManager hcm;
  EXPECT_TRUE(typed_config->UnpackTo(&hcm));
  hcm.mutable_rds()->mutable_config_source()->mutable_initial_fetch_timeout()->set_seconds(seconds);
  typed_config->PackFrom(hcm);
  return listener;
}

TEST_F(XdsInitialFetchTimeoutTest, ALaterListenerWhoseRoutesNeverComeServes404AfterItsTimeout) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_->port()})}, /*endpoints=*/{},
                         {rdsListener("first", "routes_a")},
                         {routeConfig("routes_a", {{"/", "cluster_a"}})}));

  // While serving, a second listener names routes_b with a 1 s initial fetch timeout. The
  // server never sends routes_b: the listener warms, then gives up on it.
  ASSERT_TRUE(applyListeners(
      {rdsListener("first", "routes_a"),
       withRdsInitialFetchTimeout(rdsListener("second", "routes_b"), /*seconds=*/1)}));
  ASSERT_TRUE(ads_->waitForSubscription(kRouteType, {"routes_a", "routes_b"}).ok());
  EXPECT_EQ(stat("listener_manager.total_listeners_warming"), 1);
  ASSERT_TRUE(waitForStat("rds.init_fetch_timeout", 1));
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_warming", 0));
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 2);

  // It serves with no routes: 404 (NR), and the first listener is untouched.
  absl::StatusOr<HttpResponse> response = get(listenerPort("second"), "/anything");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404u);
  response = get(listenerPort("first"), "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
}

TEST_F(XdsInitialFetchTimeoutTest, ALaterClusterWhoseEndpointsNeverComeServes503AfterItsTimeout) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  const RouteConfiguration routes =
      routeConfig("routes", {{"/eds", "eds_cluster"}, {"/", "cluster_a"}});
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_->port()})}, /*endpoints=*/{},
                         {rdsListener("ingress", "routes")}, {routes}));

  // While serving, CDS adds an EDS cluster whose eds_config has a 1 s initial fetch timeout.
  // The server never sends its endpoints: the cluster warms, then becomes active with no hosts.
  Cluster eds = edsCluster("eds_cluster");
  eds.mutable_eds_cluster_config()
      ->mutable_eds_config()
      ->mutable_initial_fetch_timeout()
      ->set_seconds(1);
  ASSERT_TRUE(applyClusters({staticCluster("cluster_a", {upstream_->port()}), eds}));
  ASSERT_TRUE(ads_->waitForSubscription(kEndpointType, {"eds_cluster"}).ok());
  ASSERT_TRUE(waitForStat("cluster_manager.eds.init_fetch_timeout", 1));
  ASSERT_TRUE(waitForStat("cluster_manager.warming_clusters", 0));
  EXPECT_EQ(stat("cluster.eds_cluster.membership_total"), 0);

  // A request routed to it finds the cluster but no host: 503.
  absl::StatusOr<HttpResponse> response = get(listenerPort("ingress"), "/eds/nothing");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  response = get(listenerPort("ingress"), "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
}

}  // namespace
}  // namespace Proxy::XdsIntegration
