// The RDS providers (RouteConfigProviderManager, RdsRouteConfigProvider) on the main thread of a
// simulated dispatcher: sharing by name, the names the RDS subscription follows, building and
// publishing route tables, rejections, readiness. Publishing to real worker threads is covered
// by test/integration/xds/rds_thread_local_test.cc.

#include "proxy/router/rds_impl.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/config/route/v3/route.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config/message_util.h"
#include "proxy/thread_local/thread_local_impl.h"
#include "test/unit/xds_client/simulated_dispatcher.h"

namespace Proxy::Router {
namespace {

using envoy::config::route::v3::RouteConfiguration;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Every request gets `status` as a direct response.
RouteConfiguration directResponse(const std::string& name, int status) {
  RouteConfiguration config;
  const absl::Status loaded = Proxy::Config::loadFromYaml(absl::StrCat("name: ", name, R"(
virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, direct_response: {status: )",
                                                                       status, "}}]}]"),
                                                          config);
  EXPECT_TRUE(loaded.ok()) << loaded;
  return config;
}

class RouteConfigProviderManagerTest : public ::testing::Test {
 protected:
  RouteConfigProviderManagerTest() {
    tls_.registerThread(dispatcher_, /*main_thread=*/true);
    manager_ = std::make_unique<RouteConfigProviderManager>(dispatcher_, tls_, store_);
    manager_->setNamesChangedCallback(
        [this](const std::vector<std::string>& names) { subscriptions_.push_back(names); });
  }
  ~RouteConfigProviderManagerTest() override {
    manager_.reset();
    tls_.shutdownGlobalThreading();
    tls_.shutdownThread();
    dispatcher_.runUntilIdle();
  }

  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  // The names the RDS subscription was told about since the last call.
  std::vector<std::vector<std::string>> takeSubscriptions() {
    auto out = std::move(subscriptions_);
    subscriptions_.clear();
    return out;
  }

  ::Proxy::Test::SimulatedDispatcher dispatcher_;
  Stats::Store store_;
  ThreadLocal::InstanceImpl tls_;
  std::unique_ptr<RouteConfigProviderManager> manager_;
  std::vector<std::vector<std::string>> subscriptions_;
};

TEST_F(RouteConfigProviderManagerTest, ProvidersAreSharedByNameAndTheSubscriptionFollowsThem) {
  // Two listeners name "a", one names "b": two providers.
  RdsRouteConfigProviderSharedPtr a1 = manager_->getOrCreate("a");
  RdsRouteConfigProviderSharedPtr a2 = manager_->getOrCreate("a");
  RdsRouteConfigProviderSharedPtr b = manager_->getOrCreate("b");
  EXPECT_EQ(a1, a2);
  EXPECT_EQ(manager_->find("a"), a1);
  EXPECT_THAT(manager_->names(), ElementsAre("a", "b"));
  // The subscription hears once, on the next loop iteration, for the whole burst.
  EXPECT_THAT(takeSubscriptions(), IsEmpty());
  dispatcher_.runUntilIdle();
  EXPECT_THAT(takeSubscriptions(), ElementsAre(ElementsAre("a", "b")));

  // One holder of "a" lets go: nothing changes. The last holder of "b" does: "b" goes.
  a2.reset();
  b.reset();
  EXPECT_EQ(manager_->find("b"), nullptr);
  dispatcher_.runUntilIdle();
  EXPECT_THAT(takeSubscriptions(), ElementsAre(ElementsAre("a")));
  EXPECT_THAT(manager_->names(), ElementsAre("a"));
}

TEST_F(RouteConfigProviderManagerTest, AnUpdateBuildsTheTableAndPublishesIt) {
  RdsRouteConfigProviderSharedPtr provider = manager_->getOrCreate("a");
  EXPECT_FALSE(provider->ready());
  EXPECT_EQ(provider->config(), nullptr);

  // Version 1 arrives: validated and built now, published to every thread by the slot;
  // `done` runs once every thread has it.
  bool published = false;
  const absl::Status status = provider->onConfigUpdate(
      directResponse("a", 200), /*version_info=*/"1", [&] { published = true; });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(provider->ready());
  EXPECT_EQ(provider->versionInfo(), "1");
  EXPECT_EQ(provider->proto().name(), "a");
  EXPECT_EQ(provider->lastUpdated(), dispatcher_.timeSource().systemTime());
  dispatcher_.runUntilIdle();
  EXPECT_TRUE(published);
  std::shared_ptr<const Router::Config> v1 = provider->config();
  ASSERT_NE(v1, nullptr);
  EXPECT_EQ(counter("http.rds.a.update_success"), 1u);
  EXPECT_EQ(counter("http.rds.a.config_reload"), 1u);

  // The same configuration again (a SotW response resending it): only the version moves.
  ASSERT_TRUE(provider->onConfigUpdate(directResponse("a", 200), "2").ok());
  dispatcher_.runUntilIdle();
  EXPECT_EQ(provider->versionInfo(), "2");
  EXPECT_EQ(provider->config(), v1);
  EXPECT_EQ(counter("http.rds.a.update_empty"), 1u);
  EXPECT_EQ(counter("http.rds.a.config_reload"), 1u);

  // A different one replaces the table; a request holding v1 keeps it until it is done.
  ASSERT_TRUE(provider->onConfigUpdate(directResponse("a", 503), "3").ok());
  dispatcher_.runUntilIdle();
  EXPECT_NE(provider->config(), v1);
  EXPECT_EQ(counter("http.rds.a.config_reload"), 2u);
}

TEST_F(RouteConfigProviderManagerTest, ABadUpdateIsRejectedAndTheLastGoodTableStays) {
  RdsRouteConfigProviderSharedPtr provider = manager_->getOrCreate("a");
  ASSERT_TRUE(provider->onConfigUpdate(directResponse("a", 200), "1").ok());
  dispatcher_.runUntilIdle();
  std::shared_ptr<const Router::Config> good = provider->config();

  // Another route configuration's name.
  EXPECT_EQ(provider->onConfigUpdate(directResponse("b", 200), "2").message(),
            "name: expected route configuration 'a', got 'b'");
  // A table that does not build: the field is named relative to the RouteConfiguration.
  RouteConfiguration broken = directResponse("a", 200);
  broken.mutable_virtual_hosts(0)
      ->mutable_routes(0)
      ->mutable_match()
      ->mutable_safe_regex()
      ->set_regex("(");
  EXPECT_EQ(provider->onConfigUpdate(broken, "3").message(),
            "virtual_hosts[0].routes[0].match.safe_regex: invalid regex '(': missing ): (");

  dispatcher_.runUntilIdle();
  EXPECT_EQ(provider->config(), good);
  EXPECT_EQ(provider->versionInfo(), "1");
  EXPECT_EQ(counter("http.rds.a.update_rejected"), 2u);
}

TEST_F(RouteConfigProviderManagerTest, ReadyCallbacksRunOnceAndCanBeCancelled) {
  RdsRouteConfigProviderSharedPtr provider = manager_->getOrCreate("a");
  // Two listeners wait for "a"; one of them goes away before it is ready.
  int first = 0;
  int second = 0;
  std::shared_ptr<void> first_handle = provider->addReadyCallback([&] { ++first; });
  std::shared_ptr<void> second_handle = provider->addReadyCallback([&] { ++second; });
  second_handle.reset();

  // The initial fetch gave up: ready, with no routes (every request gets 404).
  provider->onConfigUpdateFailed();
  EXPECT_TRUE(provider->ready());
  EXPECT_EQ(provider->config(), nullptr);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0);

  // The route configuration comes after all: no callback runs again.
  ASSERT_TRUE(provider->onConfigUpdate(directResponse("a", 200), "1").ok());
  EXPECT_EQ(first, 1);
  // A listener that asks once it is ready is told at once.
  int late = 0;
  provider->addReadyCallback([&] { ++late; });
  EXPECT_EQ(late, 1);
}

TEST_F(RouteConfigProviderManagerTest, ClustersAreCheckedOnlyWhenTheConfigurationAsks) {
  manager_->setClusterExistsCallback([](std::string_view name) { return name == "known"; });
  RdsRouteConfigProviderSharedPtr provider = manager_->getOrCreate("a");
  RouteConfiguration config = directResponse("a", 200);
  config.mutable_virtual_hosts(0)->mutable_routes(0)->mutable_route()->set_cluster("unknown");

  // Envoy's default over RDS: not checked (a request to a missing cluster gets 503).
  EXPECT_TRUE(provider->onConfigUpdate(config, "1").ok());
  // validate_clusters: true: refused, naming the route and the cluster.
  config.mutable_validate_clusters()->set_value(true);
  EXPECT_EQ(provider->onConfigUpdate(config, "2").message(),
            "virtual_hosts[0].routes[0].route.cluster: route: unknown cluster 'unknown' (route "
            "configuration 'a')");
  EXPECT_EQ(provider->versionInfo(), "1");
}

TEST_F(RouteConfigProviderManagerTest, TheProviderKeepsTheConfigSourceOfTheListenerThatMadeIt) {
  // The first listener's rds.config_source says 2 s; a second listener naming the same route
  // configuration shares the provider, and the first one's source (what XdsConfig times).
  envoy::config::core::v3::ConfigSource first;
  first.mutable_ads();
  first.mutable_initial_fetch_timeout()->set_seconds(2);
  envoy::config::core::v3::ConfigSource second;
  second.mutable_ads();
  RdsRouteConfigProviderSharedPtr a = manager_->getOrCreate("a", first);
  EXPECT_EQ(manager_->getOrCreate("a", second), a);
  EXPECT_EQ(a->configSource().initial_fetch_timeout().seconds(), 2);
  // Without one (static listeners in tests): no initial_fetch_timeout, Envoy's default applies.
  EXPECT_FALSE(manager_->getOrCreate("b")->configSource().has_initial_fetch_timeout());
}

}  // namespace
}  // namespace Proxy::Router
