// XdsConfig, the glue between the xDS client and the proxy's managers: the real listener,
// cluster and route managers on a simulated dispatcher, and the xDS client's fake transport
// (test/unit/xds_client) playing the management server. Each test is a conversation: what the
// proxy asks for, what the server answers, what the managers then hold.

#include "proxy/server/xds_config.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config/message_util.h"
#include "proxy/thread_local/thread_local_impl.h"
#include "test/unit/xds_client/fake_transport.h"
#include "test/unit/xds_client/simulated_dispatcher.h"
#include "test/unit/xds_client/xds_test_util.h"
#include "xds_client/resource_type.h"

namespace Proxy::Server {
namespace {

using ::Proxy::Test::packed;
using ::Proxy::Test::sotwResponse;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The proxy's bootstrap: ADS to one management server, clusters and listeners over it.
constexpr char kBootstrap[] = R"(
node: {id: proxy-1, cluster: edge}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{google_grpc: {target_uri: "127.0.0.1:18000"}}]
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
)";

template <class T>
T parse(const std::string& yaml) {
  T message;
  const absl::Status status = Config::loadFromYaml(yaml, message);
  EXPECT_TRUE(status.ok()) << status << "\n" << yaml;
  return message;
}

// An HTTP listener on 127.0.0.1 (port 0) whose routes come from RDS `route_config`;
// `source_extra` is added to its rds.config_source ("initial_fetch_timeout: 2s").
envoy::config::listener::v3::Listener httpListener(const std::string& name,
                                                   const std::string& route_config,
                                                   const std::string& source_extra = "") {
  return parse<envoy::config::listener::v3::Listener>(absl::StrCat(R"(
name: )",
                                                                   name, R"(
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress
      rds:
        route_config_name: )",
                                                                   route_config, R"(
        config_source: {ads: {}, resource_api_version: V3, )",
                                                                   source_extra, R"(}
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)"));
}

envoy::config::route::v3::RouteConfiguration routes(const std::string& name) {
  return parse<envoy::config::route::v3::RouteConfiguration>(absl::StrCat("name: ", name, R"(
virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, direct_response: {status: 200}}]}]
)"));
}

// An EDS cluster; `source_extra` is added to its eds_config.
envoy::config::cluster::v3::Cluster edsCluster(const std::string& name,
                                               const std::string& source_extra = "") {
  return parse<envoy::config::cluster::v3::Cluster>(absl::StrCat("name: ", name, R"(
type: EDS
eds_cluster_config: {eds_config: {ads: {}, resource_api_version: V3, )",
                                                                 source_extra, "}}"));
}

envoy::config::endpoint::v3::ClusterLoadAssignment endpoints(const std::string& name,
                                                             uint32_t port) {
  return ::Proxy::Test::endpoints(name, port);
}

class XdsConfigTest : public ::testing::Test {
 protected:
  XdsConfigTest() {
    tls_.registerThread(dispatcher_, /*main_thread=*/true);
    clusters_ = std::make_unique<Upstream::ClusterManagerImpl>(dispatcher_, tls_, store_);
    routes_ = std::make_unique<Router::RouteConfigProviderManager>(dispatcher_, tls_, store_);
    listeners_ = std::make_unique<Listener::ListenerManagerImpl>(
        dispatcher_, std::vector<Listener::WorkerHandle*>{}, store_, routes_.get(),
        std::chrono::milliseconds(100));
    xds_ = std::make_unique<XdsConfig>(
        dispatcher_, store_, *clusters_, *listeners_, *routes_,
        std::make_unique<::Proxy::Test::FakeTransportFactory>(streams_));
  }

  ~XdsConfigTest() override {
    // As the server tears down: the xDS side first, then listeners (they hold route providers),
    // then the thread-local registry.
    xds_.reset();
    listeners_.reset();
    routes_.reset();
    tls_.shutdownGlobalThreading();
    tls_.shutdownThread();
    clusters_.reset();
    dispatcher_.runUntilIdle();
  }

  // Initialise from kBootstrap and start; `started_` turns true when XdsConfig says so.
  void start() {
    const absl::Status status =
        xds_->initialize(parse<envoy::config::bootstrap::v3::Bootstrap>(kBootstrap));
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_TRUE(xds_->active());
    xds_->start([this] { started_ = true; });
    dispatcher_.runUntilIdle();
    ASSERT_EQ(streams_->all.size(), 1u);
  }

  // Startup with the server answering: no clusters, then `listeners` and their `route_configs`.
  void startWith(const std::vector<envoy::config::listener::v3::Listener>& listeners,
                 const std::vector<std::string>& route_configs) {
    start();
    respond(Xds::kClusterTypeUrl, "1", {});
    std::vector<google::protobuf::Any> any;
    for (const auto& listener : listeners) {
      any.push_back(packed(listener));
    }
    respond(Xds::kListenerTypeUrl, "1", any);
    any.clear();
    for (const auto& name : route_configs) {
      any.push_back(packed(routes(name)));
    }
    if (!any.empty()) {
      respond(Xds::kRouteConfigurationTypeUrl, "1", any);
    }
    ASSERT_TRUE(started_);
    takeRequests();
  }

  // The management server answers (nonces count up: "n1", "n2", ...).
  void respond(std::string_view type_url, const std::string& version,
               const std::vector<google::protobuf::Any>& resources) {
    stream().respond(sotwResponse(type_url, version, absl::StrCat("n", ++nonce_), resources));
    dispatcher_.runUntilIdle();
  }

  // What the proxy asked for since the last call, one line per request, in the order sent:
  // "eds [c1, c2]", "lds [] nonce=n1" (a SotW request carries the last nonce it answers),
  // "cds [] nonce=n2 error=<error_detail.message>" (a NACK).
  std::vector<std::string> takeRequests() {
    std::vector<std::string> out;
    while (stream().pendingRequests() > 0) {
      const auto request = stream().takeRequest();
      std::string line = absl::StrCat(Xds::shortTypeName(request.type_url()), " [",
                                      absl::StrJoin(request.resource_names(), ", "), "]");
      if (!request.response_nonce().empty()) {
        absl::StrAppend(&line, " nonce=", request.response_nonce());
      }
      if (request.has_error_detail()) {
        absl::StrAppend(&line, " error=", request.error_detail().message());
      }
      out.push_back(std::move(line));
    }
    return out;
  }

  ::Proxy::Test::FakeStream& stream() { return *streams_->all.back(); }
  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  int64_t gauge(const std::string& name) { return store_.gauge(name).value(); }
  size_t activeHosts(const std::string& cluster) {
    auto hosts = clusters_->getHostSet(cluster);
    return hosts == nullptr ? 0 : hosts->hosts.size();
  }

  ::Proxy::Test::SimulatedDispatcher dispatcher_;
  Stats::Store store_;
  ThreadLocal::InstanceImpl tls_;
  std::shared_ptr<::Proxy::Test::FakeTransportFactory::Streams> streams_ =
      std::make_shared<::Proxy::Test::FakeTransportFactory::Streams>();
  std::unique_ptr<Upstream::ClusterManagerImpl> clusters_;
  std::unique_ptr<Router::RouteConfigProviderManager> routes_;
  std::unique_ptr<Listener::ListenerManagerImpl> listeners_;
  std::unique_ptr<XdsConfig> xds_;
  bool started_ = false;
  int nonce_ = 0;
};

TEST_F(XdsConfigTest, WithoutDynamicResourcesThereIsNothingToDo) {
  const absl::Status status = xds_->initialize(
      parse<envoy::config::bootstrap::v3::Bootstrap>("node: {id: proxy-1, cluster: edge}"));
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_FALSE(xds_->active());
  dispatcher_.runUntilIdle();
  EXPECT_THAT(streams_->all, IsEmpty());
}

TEST_F(XdsConfigTest, ABadXdsConfigIsRefusedWithItsField) {
  const absl::Status status = xds_->initialize(parse<envoy::config::bootstrap::v3::Bootstrap>(R"(
dynamic_resources:
  cds_config: {ads: {}, resource_api_version: V3}
)"));
  EXPECT_EQ(status.message(),
            "dynamic_resources.cds_config.ads: dynamic_resources.ads_config "
            "is not set");
}

TEST_F(XdsConfigTest, ClustersAndTheirEndpointsFirstThenListenersAndTheirRoutes) {
  // Envoy's order: CDS first; LDS waits.
  start();
  EXPECT_THAT(takeRequests(), ElementsAre("cds []"));

  // A cluster whose endpoints come from EDS: it warms, and LDS still waits for it.
  respond(Xds::kClusterTypeUrl, "1", {packed(edsCluster("c1"))});
  EXPECT_THAT(takeRequests(), ElementsAre("cds [] nonce=n1", "eds [c1]"));
  EXPECT_EQ(clusters_->warmingClusterCount(), 1u);

  // Its endpoints arrive: the cluster is active, and the listeners are asked for.
  respond(Xds::kClusterLoadAssignmentTypeUrl, "1", {packed(endpoints("c1", 8080))});
  EXPECT_EQ(clusters_->warmingClusterCount(), 0u);
  EXPECT_EQ(activeHosts("c1"), 1u);
  EXPECT_THAT(takeRequests(), ElementsAre("eds [c1] nonce=n2", "lds []"));
  EXPECT_FALSE(started_);

  // The first LDS answer ends XdsConfig's part of startup; its listener warms on its routes.
  respond(Xds::kListenerTypeUrl, "1", {packed(httpListener("l1", "r1"))});
  EXPECT_TRUE(started_);
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 1);
  EXPECT_THAT(takeRequests(), ElementsAre("lds [] nonce=n3", "rds [r1]"));

  // The routes arrive: the listener is active.
  respond(Xds::kRouteConfigurationTypeUrl, "1", {packed(routes("r1"))});
  EXPECT_TRUE(listeners_->allWarm());
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1);
  EXPECT_THAT(takeRequests(), ElementsAre("rds [r1] nonce=n4"));
}

TEST_F(XdsConfigTest, BadResourcesAreNackedByNameAndTheGoodOnesApply) {
  startWith({}, {});

  // One good cluster, one the proxy cannot use: the good one applies (and its endpoints are
  // asked for), the response is NACKed naming the bad one and why.
  auto bad_cluster = edsCluster("bad");
  bad_cluster.set_lb_policy(envoy::config::cluster::v3::Cluster::CLUSTER_PROVIDED);
  respond(Xds::kClusterTypeUrl, "2", {packed(edsCluster("good")), packed(bad_cluster)});
  EXPECT_THAT(takeRequests(),
              ElementsAre("cds [] nonce=n3 error=resource index 1: bad: cluster 'bad': lb_policy: "
                          "unsupported load balancing policy 'CLUSTER_PROVIDED'",
                          "eds [good]"));
  EXPECT_EQ(clusters_->warmingClusterCount(), 1u);
  EXPECT_FALSE(clusters_->isWarming("bad"));

  // The same for listeners; the bad one's error state is what /config_dump shows.
  auto bad_listener = httpListener("bad", "r2");
  bad_listener.clear_address();
  respond(Xds::kListenerTypeUrl, "2", {packed(httpListener("good", "r1")), packed(bad_listener)});
  EXPECT_THAT(
      takeRequests(),
      ElementsAre("lds [] nonce=n4 error=resource index 1: bad: address: required", "rds [r1]"));
  ASSERT_EQ(listeners_->errorStates().count("bad"), 1u);
  EXPECT_EQ(listeners_->errorStates().at("bad").details, "address: required");
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 1);
}

TEST_F(XdsConfigTest, RouteSubscriptionFollowsTheListeners) {
  startWith({httpListener("l1", "r1"), httpListener("l2", "r2")}, {"r1", "r2"});

  // l2 goes away: so does its route configuration from the subscription.
  respond(Xds::kListenerTypeUrl, "2", {packed(httpListener("l1", "r1"))});
  EXPECT_THAT(takeRequests(), ElementsAre("lds [] nonce=n4", "rds [r1] nonce=n3"));

  // A listener naming r1 too changes nothing; one naming r3 adds it.
  respond(Xds::kListenerTypeUrl, "3",
          {packed(httpListener("l1", "r1")), packed(httpListener("l3", "r1")),
           packed(httpListener("l4", "r3"))});
  EXPECT_THAT(takeRequests(), ElementsAre("lds [] nonce=n5", "rds [r1, r3] nonce=n3"));
}

TEST_F(XdsConfigTest, EndpointSubscriptionFollowsTheClusters) {
  start();
  respond(Xds::kClusterTypeUrl, "1", {packed(edsCluster("c1")), packed(edsCluster("c2"))});
  EXPECT_THAT(takeRequests(), ElementsAre("cds []", "cds [] nonce=n1", "eds [c1, c2]"));

  // c2 is removed (absent from a SotW CDS response): its endpoints are no longer asked for.
  respond(Xds::kClusterTypeUrl, "2", {packed(edsCluster("c1"))});
  EXPECT_THAT(takeRequests(), ElementsAre("cds [] nonce=n2", "eds [c1]"));
  EXPECT_EQ(counter("cluster_manager.cluster_removed"), 1u);
}

TEST_F(XdsConfigTest, AtStartupClustersWithoutEndpointsStopWarmingAfterTheInitialFetchTimeout) {
  start();
  respond(Xds::kClusterTypeUrl, "1", {packed(edsCluster("c1"))});
  EXPECT_THAT(takeRequests(), ElementsAre("cds []", "cds [] nonce=n1", "eds [c1]"));

  // The endpoints never come. Envoy's default initial fetch timeout is 15 s.
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(14999));
  EXPECT_EQ(clusters_->warmingClusterCount(), 1u);
  EXPECT_THAT(takeRequests(), IsEmpty());
  // Then the cluster serves with no hosts (503 UH), and startup goes on to the listeners.
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_EQ(clusters_->warmingClusterCount(), 0u);
  EXPECT_EQ(activeHosts("c1"), 0u);
  EXPECT_THAT(takeRequests(), ElementsAre("lds []"));
}

TEST_F(XdsConfigTest, AtStartupListenersWaitForTheirRoutesAtMostTheInitialFetchTimeout) {
  start();
  respond(Xds::kClusterTypeUrl, "1", {});
  respond(Xds::kListenerTypeUrl, "1", {packed(httpListener("l1", "r1"))});
  EXPECT_TRUE(started_);

  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(14999));
  EXPECT_FALSE(listeners_->allWarm());
  // The route configuration did not come: the listener serves with no routes (404).
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_TRUE(listeners_->allWarm());
  ASSERT_NE(routes_->find("r1"), nullptr);
  EXPECT_TRUE(routes_->find("r1")->ready());
  EXPECT_EQ(routes_->find("r1")->config(), nullptr);
}

// ----- Initial fetch timeouts of resources subscribed after startup ---------------------------
// Each RDS and EDS name gets its own timer when it is first subscribed, with the
// initial_fetch_timeout of the config source that names it (Envoy's 15 s when unset, 0 = wait
// forever): what does not come by then is given up on, so a listener or cluster that waits for
// it stops warming.

TEST_F(XdsConfigTest, ALaterListenersRoutesAreGivenUpOnAfterTheirOwnInitialFetchTimeout) {
  startWith({httpListener("l1", "r1")}, {"r1"});

  // l2 arrives later and names r2, with a 2 s initial fetch timeout. r2 never comes.
  respond(Xds::kListenerTypeUrl, "2",
          {packed(httpListener("l1", "r1")),
           packed(httpListener("l2", "r2", "initial_fetch_timeout: 2s"))});
  EXPECT_THAT(takeRequests(), ElementsAre("lds [] nonce=n4", "rds [r1, r2] nonce=n3"));
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 1);

  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1999));
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 1);
  // At 2 s l2 stops waiting: it serves with no routes (404) until r2 comes.
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_TRUE(listeners_->allWarm());
  EXPECT_EQ(routes_->find("r2")->config(), nullptr);
  EXPECT_EQ(counter("rds.init_fetch_timeout"), 1u);

  // r2 comes after all: l2 gets its routes.
  respond(Xds::kRouteConfigurationTypeUrl, "2", {packed(routes("r1")), packed(routes("r2"))});
  EXPECT_NE(routes_->find("r2")->config(), nullptr);
}

TEST_F(XdsConfigTest, ALaterListenersRoutesWaitEnvoysDefaultWhenItsSourceSetsNoTimeout) {
  startWith({httpListener("l1", "r1")}, {"r1"});
  dispatcher_.advanceTimeAndRun(std::chrono::minutes(10));

  respond(Xds::kListenerTypeUrl, "2",
          {packed(httpListener("l1", "r1")), packed(httpListener("l2", "r2"))});
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(14999));
  EXPECT_FALSE(listeners_->allWarm());
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_TRUE(listeners_->allWarm());
}

TEST_F(XdsConfigTest, AZeroInitialFetchTimeoutWaitsForTheRoutesForever) {
  startWith({httpListener("l1", "r1")}, {"r1"});

  respond(Xds::kListenerTypeUrl, "2",
          {packed(httpListener("l1", "r1")),
           packed(httpListener("l2", "r2", "initial_fetch_timeout: 0s"))});
  dispatcher_.advanceTimeAndRun(std::chrono::hours(1));
  EXPECT_FALSE(listeners_->allWarm());
  EXPECT_EQ(counter("rds.init_fetch_timeout"), 0u);

  respond(Xds::kRouteConfigurationTypeUrl, "2", {packed(routes("r1")), packed(routes("r2"))});
  EXPECT_TRUE(listeners_->allWarm());
}

TEST_F(XdsConfigTest, ALaterClustersEndpointsAreGivenUpOnAfterTheirOwnInitialFetchTimeout) {
  // At startup c1 gets its endpoints.
  start();
  respond(Xds::kClusterTypeUrl, "1", {packed(edsCluster("c1"))});
  respond(Xds::kClusterLoadAssignmentTypeUrl, "1", {packed(endpoints("c1", 8080))});
  respond(Xds::kListenerTypeUrl, "1", {});
  takeRequests();

  // c2 arrives later, with a 3 s initial fetch timeout; its endpoints never come.
  respond(Xds::kClusterTypeUrl, "2",
          {packed(edsCluster("c1")), packed(edsCluster("c2", "initial_fetch_timeout: 3s"))});
  EXPECT_THAT(takeRequests(), ElementsAre("cds [] nonce=n4", "eds [c1, c2] nonce=n2"));
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(2999));
  EXPECT_TRUE(clusters_->isWarming("c2"));
  // At 3 s c2 stops warming with no hosts (503 UH); c1 keeps its endpoints.
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_FALSE(clusters_->isWarming("c2"));
  EXPECT_NE(clusters_->getClusterInfo("c2"), nullptr);
  EXPECT_EQ(activeHosts("c2"), 0u);
  EXPECT_EQ(activeHosts("c1"), 1u);
  EXPECT_EQ(counter("cluster_manager.eds.init_fetch_timeout"), 1u);
}

TEST_F(XdsConfigTest, ALaterClustersEndpointsWaitEnvoysDefaultWhenItsSourceSetsNoTimeout) {
  start();
  respond(Xds::kClusterTypeUrl, "1", {packed(edsCluster("c1"))});
  respond(Xds::kClusterLoadAssignmentTypeUrl, "1", {packed(endpoints("c1", 8080))});
  respond(Xds::kListenerTypeUrl, "1", {});
  dispatcher_.advanceTimeAndRun(std::chrono::minutes(10));

  respond(Xds::kClusterTypeUrl, "2", {packed(edsCluster("c1")), packed(edsCluster("c2"))});
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(14999));
  EXPECT_TRUE(clusters_->isWarming("c2"));
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_FALSE(clusters_->isWarming("c2"));
}

TEST_F(XdsConfigTest, EndpointsThatArriveInTimeAreNotGivenUpOn) {
  startWith({}, {});
  respond(Xds::kClusterTypeUrl, "2", {packed(edsCluster("c2", "initial_fetch_timeout: 3s"))});

  // The endpoints come after 1 s: the timer stops, nothing is given up at 3 s.
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(1));
  respond(Xds::kClusterLoadAssignmentTypeUrl, "1", {packed(endpoints("c2", 8080))});
  EXPECT_EQ(activeHosts("c2"), 1u);
  dispatcher_.advanceTimeAndRun(std::chrono::hours(1));
  EXPECT_EQ(activeHosts("c2"), 1u);
  EXPECT_EQ(counter("cluster_manager.eds.init_fetch_timeout"), 0u);
}

TEST_F(XdsConfigTest, ClustersAddedTogetherAreGivenUpOnOneByOneByTheirOwnTimeouts) {
  startWith({}, {});
  // Four clusters in one response: c2 and c3 wait 3 s (one timer), c4 5 s, c5 forever.
  respond(Xds::kClusterTypeUrl, "2",
          {packed(edsCluster("c2", "initial_fetch_timeout: 3s")),
           packed(edsCluster("c3", "initial_fetch_timeout: 3s")),
           packed(edsCluster("c4", "initial_fetch_timeout: 5s")),
           packed(edsCluster("c5", "initial_fetch_timeout: 0s"))});
  // c2's endpoints come in time; c3 leaves before its timeout and comes back at 2 s with a
  // new one (3 s more).
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(1));
  respond(Xds::kClusterLoadAssignmentTypeUrl, "1", {packed(endpoints("c2", 8080))});
  respond(Xds::kClusterTypeUrl, "3",
          {packed(edsCluster("c2", "initial_fetch_timeout: 3s")),
           packed(edsCluster("c4", "initial_fetch_timeout: 5s")),
           packed(edsCluster("c5", "initial_fetch_timeout: 0s"))});
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(1));
  respond(Xds::kClusterTypeUrl, "4",
          {packed(edsCluster("c2", "initial_fetch_timeout: 3s")),
           packed(edsCluster("c3", "initial_fetch_timeout: 3s")),
           packed(edsCluster("c4", "initial_fetch_timeout: 5s")),
           packed(edsCluster("c5", "initial_fetch_timeout: 0s"))});

  // 3 s: the first timer fires with nobody left to give up on.
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1500));
  EXPECT_EQ(counter("cluster_manager.eds.init_fetch_timeout"), 0u);
  EXPECT_TRUE(clusters_->isWarming("c3"));
  // 5 s: c3 (its second wait ends) and c4 are given up on, each counted.
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1500));
  EXPECT_FALSE(clusters_->isWarming("c3"));
  EXPECT_FALSE(clusters_->isWarming("c4"));
  EXPECT_EQ(counter("cluster_manager.eds.init_fetch_timeout"), 2u);
  EXPECT_EQ(activeHosts("c2"), 1u);
  dispatcher_.advanceTimeAndRun(std::chrono::hours(1));
  EXPECT_TRUE(clusters_->isWarming("c5"));
  EXPECT_EQ(counter("cluster_manager.eds.init_fetch_timeout"), 2u);
}

TEST_F(XdsConfigTest, ANameSubscribedAgainGetsANewTimer) {
  startWith({httpListener("l1", "r1")}, {"r1"});

  // l2 (r2, 2 s) comes and goes before its timer fires, then comes back.
  respond(Xds::kListenerTypeUrl, "2",
          {packed(httpListener("l1", "r1")),
           packed(httpListener("l2", "r2", "initial_fetch_timeout: 2s"))});
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(1));
  respond(Xds::kListenerTypeUrl, "3", {packed(httpListener("l1", "r1"))});
  dispatcher_.advanceTimeAndRun(std::chrono::seconds(5));
  EXPECT_EQ(counter("rds.init_fetch_timeout"), 0u);
  respond(Xds::kListenerTypeUrl, "4",
          {packed(httpListener("l1", "r1")),
           packed(httpListener("l2", "r2", "initial_fetch_timeout: 2s"))});
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1999));
  EXPECT_FALSE(listeners_->allWarm());
  dispatcher_.advanceTimeAndRun(std::chrono::milliseconds(1));
  EXPECT_TRUE(listeners_->allWarm());
  EXPECT_EQ(counter("rds.init_fetch_timeout"), 1u);
}

}  // namespace
}  // namespace Proxy::Server
