// The listener manager's state machine on the main thread: warming on RDS, no-op updates,
// rejections with error state, static listeners, removal. Worker-side behaviour (sockets
// handed over, draining) is covered end to end in test/integration/xds.

#include <memory>
#include <string>

#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "gtest/gtest.h"
#include "proxy/config/message_util.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/listener/listener_manager.h"
#include "proxy/router/rds_impl.h"
#include "proxy/thread_local/thread_local_impl.h"

namespace Proxy::Listener {
namespace {

using envoy::config::listener::v3::Listener;

// An HTTP listener on 127.0.0.1:<port> whose routes come inline or from RDS `rds_name`.
Listener httpListener(const std::string& name, uint32_t port, const std::string& rds_name,
                      const std::string& stat_prefix = "ingress") {
  const std::string routes =
      rds_name.empty() ? R"(route_config: {name: local, virtual_hosts: [{name: all, domains: ["*"],
               routes: [{match: {prefix: "/"}, direct_response: {status: 200}}]}]})"
                       : "rds: {route_config_name: " + rds_name +
                             ", config_source: {ads: {}, resource_api_version: V3}}";
  const std::string yaml = "name: " + name +
                           "\naddress: {socket_address: {address: 127.0.0.1, port_value: " +
                           std::to_string(port) + "}}\n" + R"(filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: )" + stat_prefix +
                           "\n      " + routes + R"(
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";
  Listener listener;
  const absl::Status status = Config::loadFromYaml(yaml, listener);
  EXPECT_TRUE(status.ok()) << status;
  return listener;
}

class ListenerManagerTest : public testing::Test {
 protected:
  ListenerManagerTest() {
    tls_.registerThread(dispatcher_, /*main_thread=*/true);
    rds_ = std::make_unique<Router::RouteConfigProviderManager>(dispatcher_, tls_, store_);
    manager_ =
        std::make_unique<ListenerManagerImpl>(dispatcher_, std::vector<WorkerHandle*>{}, store_,
                                              rds_.get(), std::chrono::milliseconds(100));
  }
  ~ListenerManagerTest() override {
    manager_.reset();
    rds_.reset();
    tls_.shutdownGlobalThreading();
    tls_.shutdownThread();
  }

  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  int64_t gauge(const std::string& name) { return store_.gauge(name).value(); }

  RealTimeSource time_;
  Event::DispatcherImpl dispatcher_{"main", time_};
  ThreadLocal::InstanceImpl tls_;
  Stats::Store store_;
  std::unique_ptr<Router::RouteConfigProviderManager> rds_;
  std::unique_ptr<ListenerManagerImpl> manager_;
};

TEST_F(ListenerManagerTest, InlineRoutesAreWarmAtOnceAndIdenticalUpdatesAreNoOps) {
  // A listener with inline routes has nothing to wait for.
  auto added = manager_->addOrUpdateListener(httpListener("a", 0, ""), /*version_info=*/"1",
                                             /*added_via_api=*/true);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(*added);
  EXPECT_TRUE(manager_->allWarm());
  EXPECT_EQ(counter("listener_manager.listener_added"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1);

  // The same resource again (say, a SotW response resending every listener) changes nothing.
  auto again = manager_->addOrUpdateListener(httpListener("a", 0, ""), /*version_info=*/"2",
                                             /*added_via_api=*/true);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(counter("listener_manager.listener_modified"), 0u);
  EXPECT_EQ(counter("listener_manager.listener_create_success"), 1u);
}

TEST_F(ListenerManagerTest, ListenerWarmsUntilItsRouteConfigurationArrives) {
  // The listener names RDS "routes_a": it waits for it.
  ASSERT_TRUE(manager_->addOrUpdateListener(httpListener("a", 0, "routes_a"), "1", true).ok());
  EXPECT_FALSE(manager_->allWarm());
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 1);
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 0);
  bool all_warm = false;
  manager_->setAllWarmCallback([&] { all_warm = true; });

  // RDS delivers the route configuration: the listener becomes active.
  envoy::config::route::v3::RouteConfiguration routes;
  ASSERT_TRUE(Config::loadFromYaml(R"(name: routes_a
virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: c}}]}])",
                                   routes)
                  .ok());
  ASSERT_TRUE(rds_->find("routes_a")->onConfigUpdate(routes, /*version_info=*/"7").ok());
  EXPECT_TRUE(all_warm);
  EXPECT_TRUE(manager_->allWarm());
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 0);
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1);
}

TEST_F(ListenerManagerTest, RouteConfigurationThatNeverComesStillLetsTheListenerWarm) {
  ASSERT_TRUE(manager_->addOrUpdateListener(httpListener("a", 0, "missing"), "1", true).ok());
  EXPECT_FALSE(manager_->allWarm());
  // The initial fetch timed out: Envoy warms the listener with no routes.
  rds_->find("missing")->onConfigUpdateFailed();
  EXPECT_TRUE(manager_->allWarm());
}

TEST_F(ListenerManagerTest, DuplicateAddressIsRejectedWithErrorStateAndTheOtherKeepsServing) {
  // Listener "a" owns a fixed port (we learn a free one from a port-0 bind first).
  ASSERT_TRUE(manager_->addOrUpdateListener(httpListener("probe", 0, ""), "1", true).ok());
  uint32_t port = 0;
  manager_->forEachActive(
      [&](const ListenerManagerImpl::ListenerView& l) { port = l.config.address().port(); });
  ASSERT_TRUE(manager_->removeListener("probe"));
  ASSERT_TRUE(manager_->addOrUpdateListener(httpListener("a", port, ""), "1", true).ok());

  // Listener "b" on the same address is rejected, naming the field and the owner.
  auto b = manager_->addOrUpdateListener(httpListener("b", port, ""), "2", true);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(),
            "address: '127.0.0.1:" + std::to_string(port) + "' is already used by listener 'a'");
  EXPECT_EQ(counter("listener_manager.listener_create_failure"), 1u);
  ASSERT_EQ(manager_->errorStates().count("b"), 1u);
  EXPECT_EQ(manager_->errorStates().at("b").details, std::string(b.status().message()));
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1);
}

TEST_F(ListenerManagerTest, BadFilterIsRejectedAndThePreviousVersionStays) {
  ASSERT_TRUE(manager_->addOrUpdateListener(httpListener("a", 0, ""), "1", true).ok());
  // Version 2 of "a" has an HTTP filter we do not have.
  Listener bad = httpListener("a", 0, "");
  auto* hcm_any = bad.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config();
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  ASSERT_TRUE(hcm_any->UnpackTo(&hcm));
  auto* filter = hcm.add_http_filters();
  filter->set_name("envoy.filters.http.lua");
  hcm.mutable_http_filters()->SwapElements(0, 1);
  hcm_any->PackFrom(hcm);

  auto result = manager_->addOrUpdateListener(bad, "2", true);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(std::string(result.status().message()).find("http_filters[0]"), std::string::npos)
      << result.status();
  // Version 1 is still the active one.
  std::string version;
  manager_->forEachActive(
      [&](const ListenerManagerImpl::ListenerView& l) { version = l.version_info; });
  EXPECT_EQ(version, "1");
}

TEST_F(ListenerManagerTest, StaticListenersCannotBeReplacedOrRemovedByTheApi) {
  ASSERT_TRUE(manager_->addOrUpdateListener(httpListener("s", 0, ""), "", false).ok());
  auto update = manager_->addOrUpdateListener(httpListener("s", 0, "", "other"), "1", true);
  ASSERT_FALSE(update.ok());
  EXPECT_EQ(update.status().message(), "cannot update a static listener (from the bootstrap)");
  EXPECT_FALSE(manager_->removeListener("s"));
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1);
}

TEST_F(ListenerManagerTest, RemovingAWarmingListenerDropsIt) {
  ASSERT_TRUE(manager_->addOrUpdateListener(httpListener("a", 0, "routes_a"), "1", true).ok());
  ASSERT_TRUE(manager_->removeListener("a"));
  EXPECT_TRUE(manager_->allWarm());
  EXPECT_EQ(counter("listener_manager.listener_removed"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 0);
  EXPECT_FALSE(manager_->removeListener("a"));
}

}  // namespace
}  // namespace Proxy::Listener
