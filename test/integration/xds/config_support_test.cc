// Over xDS, the real proxy NACKs what it would otherwise accept and ignore: a field it does not
// implement in a Listener, RouteConfiguration, Cluster or ClusterLoadAssignment, and a route to
// a cluster that does not exist when the route configuration asks for validate_clusters (or is
// inline in a listener). Without validate_clusters, an RDS route to an unknown cluster is
// accepted and answers 503, as in Envoy. The last good config keeps serving throughout.

#include <string>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "gtest/gtest.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::XdsIntegration {
namespace {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

class XdsConfigSupportTest : public XdsIntegrationTest {
 protected:
  void SetUp() override {
    XdsIntegrationTest::SetUp();
    upstream_ = makeUpstream("upstream-a");
  }
  void TearDown() override {
    XdsIntegrationTest::TearDown();
    upstream_.reset();
  }

  // CDS cluster_a (EDS, endpoints from ClusterLoadAssignment "svc_a"), LDS "ingress" whose
  // routes come from RDS "routes" (everything to cluster_a); ready and serving.
  testing::AssertionResult serve() {
    return initialize(
        {edsCluster("cluster_a", "svc_a")}, {loadAssignment("svc_a", {upstream_->port()})},
        {rdsListener("ingress", "routes")}, {routeConfig("routes", {{"/", "cluster_a"}})});
  }

  // The good config still serves.
  void expectStillServing() {
    absl::StatusOr<HttpResponse> response = get(listenerPort("ingress"), "/still");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u);
  }

  FakeUpstreamPtr upstream_;
};

TEST_F(XdsConfigSupportTest, AnUnimplementedFieldOfEachResourceTypeIsNackedWithItsPath) {
  ASSERT_TRUE(startProxy());
  ASSERT_TRUE(serve());

  // CDS: custom (extension) health checkers are not implemented.
  Cluster cluster = edsCluster("cluster_a", "svc_a");
  auto* check = cluster.add_health_checks();
  check->mutable_timeout()->set_seconds(1);
  check->mutable_interval()->set_seconds(1);
  check->mutable_unhealthy_threshold()->set_value(1);
  check->mutable_healthy_threshold()->set_value(1);
  check->mutable_custom_health_check()->set_name("envoy.health_checkers.redis");
  absl::StatusOr<std::string> nack = ads_->waitForNack(kClusterType, sendClusters({cluster}));
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(*nack,
            "resource index 0: cluster_a: cluster 'cluster_a': "
            "health_checks[0].custom_health_check: not supported");

  // EDS: the assignment's policy (overprovisioning, drops) is not implemented.
  auto assignment = loadAssignment("svc_a", {upstream_->port()});
  assignment.mutable_policy()->mutable_overprovisioning_factor()->set_value(140);
  nack = ads_->waitForNack(kEndpointType, sendEndpoints({assignment}));
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(*nack,
            "resource index 0: svc_a: cluster_load_assignment 'svc_a': policy: not supported");

  // LDS: the HTTP connection manager's delayed_close_timeout.
  Listener listener = rdsListener("ingress", "routes");
  HttpConnectionManager hcm;
  ASSERT_TRUE(listener.filter_chains(0).filters(0).typed_config().UnpackTo(&hcm));
  hcm.mutable_delayed_close_timeout()->set_seconds(10);
  listener.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  nack = ads_->waitForNack(kListenerType, sendListeners({listener}));
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(*nack,
            "resource index 0: ingress: filter_chains[0].filters[0].typed_config."
            "delayed_close_timeout: not supported");

  // RDS: a virtual host's include_request_attempt_count (no x-envoy-attempt-count header).
  RouteConfiguration routes = routeConfig("routes", {{"/", "cluster_a"}});
  routes.mutable_virtual_hosts(0)->set_include_request_attempt_count(true);
  nack = ads_->waitForNack(kRouteType, sendRoutes({routes}));
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(*nack,
            "resource index 0: routes: virtual_hosts[0].include_request_attempt_count: not "
            "supported");

  // Every last good version still serves.
  expectStillServing();
  EXPECT_EQ(stat("cluster_manager.cds.update_rejected"), 1);
  EXPECT_EQ(stat("listener_manager.lds.update_rejected"), 1);
}

TEST_F(XdsConfigSupportTest, AnRdsRouteToAnUnknownClusterAnswers503) {
  // Envoy: validate_clusters defaults to false for RDS, so the cluster may come later.
  ASSERT_TRUE(startProxy());
  ASSERT_TRUE(serve());
  ASSERT_TRUE(applyRoutes({routeConfig("routes", {{"/", "nosuch"}})}));
  absl::StatusOr<HttpResponse> response = get(listenerPort("ingress"), "/x");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  ASSERT_TRUE(waitForAccessLog("\"GET /x HTTP/1.1\" 503 NC"));
}

TEST_F(XdsConfigSupportTest, AnRdsRouteToAnUnknownClusterIsNackedWithValidateClusters) {
  // Envoy rejects the update: "route: unknown cluster 'nosuch'".
  ASSERT_TRUE(startProxy());
  ASSERT_TRUE(serve());
  RouteConfiguration routes = routeConfig("routes", {{"/a", "cluster_a"}, {"/", "nosuch"}});
  routes.mutable_validate_clusters()->set_value(true);
  absl::StatusOr<std::string> nack = ads_->waitForNack(kRouteType, sendRoutes({routes}));
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(*nack,
            "resource index 0: routes: virtual_hosts[0].routes[1].route.cluster: route: unknown "
            "cluster 'nosuch' (route configuration 'routes')");
  EXPECT_EQ(stat("http.rds.routes.update_rejected"), 1);
  expectStillServing();

  // A cluster that is only warming counts (Envoy's cluster manager knows it already).
  ASSERT_TRUE(applyClusters({edsCluster("cluster_a", "svc_a"), edsCluster("later", "svc_later")}));
  RouteConfiguration to_warming = routeConfig("routes", {{"/", "later"}});
  to_warming.mutable_validate_clusters()->set_value(true);
  ASSERT_TRUE(applyRoutes({to_warming}));
}

TEST_F(XdsConfigSupportTest, AListenerWithAnInlineRouteToAnUnknownClusterIsNacked) {
  // Envoy: validate_clusters defaults to true for a route_config inline in a listener.
  ASSERT_TRUE(startProxy());
  ASSERT_TRUE(serve());
  Listener listener = rdsListener("inline", "unused");
  HttpConnectionManager hcm;
  ASSERT_TRUE(listener.filter_chains(0).filters(0).typed_config().UnpackTo(&hcm));
  *hcm.mutable_route_config() = routeConfig("inline_routes", {{"/", "nosuch"}});
  listener.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  absl::StatusOr<std::string> nack =
      ads_->waitForNack(kListenerType, sendListeners({rdsListener("ingress", "routes"), listener}));
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(*nack,
            "resource index 1: inline: filter_chains[0].filters[0].typed_config.route_config."
            "virtual_hosts[0].routes[0].route.cluster: route: unknown cluster 'nosuch' (route "
            "configuration 'inline_routes')");
  expectStillServing();

  // With validate_clusters: false it is accepted, and answers 503.
  hcm.mutable_route_config()->mutable_validate_clusters()->set_value(false);
  listener.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  ASSERT_TRUE(applyListeners({rdsListener("ingress", "routes"), listener}));
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_active", 2));
  absl::StatusOr<HttpResponse> response = get(listenerPort("inline"), "/x");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
}

}  // namespace
}  // namespace Proxy::XdsIntegration
