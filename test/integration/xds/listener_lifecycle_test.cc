// Listener lifecycle over LDS/RDS, end to end: the real proxy binary configured only through an
// in-test ADS server, real upstreams, real sockets. Each test is a script of what the
// management server sends and what a client then sees; waits are on ACKs, stats, /ready and
// /config_dump, each with a deadline.

#include <poll.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::XdsIntegration {
namespace {

class XdsListenerTest : public XdsIntegrationTest {
 protected:
  void SetUp() override {
    XdsIntegrationTest::SetUp();
    upstream_a_ = makeUpstream("upstream-a");
    upstream_b_ = makeUpstream("upstream-b");
  }

  FakeUpstreamPtr upstream_a_;
  FakeUpstreamPtr upstream_b_;
};

// The listener's config changed outside its filter chains (a full replace, not in place).
Listener withBufferLimit(Listener listener, uint32_t bytes) {
  listener.mutable_per_connection_buffer_limit_bytes()->set_value(bytes);
  return listener;
}

TEST_F(XdsListenerTest, ListenerWarmsUntilItsRoutesArriveAndReadyWaitsForIt) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));

  // CDS: one static cluster. LDS (asked for only after CDS): a listener whose routes come over
  // RDS.
  ASSERT_TRUE(ads_->waitForSubscription(kClusterType, /*names=*/{}).ok());
  ASSERT_TRUE(applyClusters({staticCluster("cluster_a", {upstream_a_->port()})}));
  ASSERT_TRUE(ads_->waitForSubscription(kListenerType, /*names=*/{}).ok());
  ASSERT_TRUE(applyListeners({rdsListener("ingress", /*route_config_name=*/"routes")}));

  // The proxy asks for the route configuration; the server holds it back. The listener warms,
  // and the server is not ready: its first listeners are part of initialisation.
  ASSERT_TRUE(ads_->waitForSubscription(kRouteType, /*names=*/{"routes"}).ok());
  absl::StatusOr<HttpResponse> ready = proxy_->adminGet("/ready");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 503u);
  EXPECT_EQ(ready->body, "PRE_INITIALIZING\n");
  EXPECT_EQ(stat("listener_manager.total_listeners_warming"), 1);
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 0);
  EXPECT_EQ(stat("listener_manager.workers_started"), 0);
  {
    absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(*proxy_);
    ASSERT_TRUE(dump.ok()) << dump.status();
    const google::protobuf::Struct* ingress = dump->dynamicListener("ingress");
    ASSERT_NE(ingress, nullptr) << dump->json();
    EXPECT_EQ(stringField(*ingress, {"warming_state", "version_info"}), "1");
    EXPECT_EQ(stringField(*ingress, {"warming_state", "listener", "name"}), "ingress");
    EXPECT_EQ(field(*ingress, {"active_state"}), nullptr) << dump->json();
  }

  // RDS arrives: the listener warms, the workers start, /ready turns 200 and requests flow.
  ASSERT_TRUE(applyRoutes({routeConfig("routes", {{"/", "cluster_a"}})}));
  ASSERT_TRUE(waitForReady(200));
  EXPECT_EQ(stat("listener_manager.total_listeners_warming"), 0);
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 1);
  EXPECT_EQ(stat("listener_manager.workers_started"), 1);
  EXPECT_EQ(stat("listener_manager.listener_added"), 1);
  absl::StatusOr<HttpResponse> response = get(listenerPort("ingress"), "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-a");
  {
    absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(*proxy_);
    ASSERT_TRUE(dump.ok()) << dump.status();
    const google::protobuf::Struct* ingress = dump->dynamicListener("ingress");
    ASSERT_NE(ingress, nullptr);
    EXPECT_EQ(stringField(*ingress, {"active_state", "version_info"}), "1");
    EXPECT_EQ(field(*ingress, {"warming_state"}), nullptr) << dump->json();
    EXPECT_EQ(dump->names("RoutesConfigDump", "dynamic_route_configs"),
              std::vector<std::string>{"routes"});
  }

  // A second listener naming the same (already present) routes is added while serving: it
  // needs no warming and serves at once.
  ASSERT_TRUE(applyListeners(
      {rdsListener("ingress", "routes"), rdsListener("second", /*route_config_name=*/"routes")}));
  EXPECT_EQ(stat("listener_manager.listener_added"), 2);
  EXPECT_EQ(stat("listener_manager.listener_modified"), 0);  // "ingress" was identical: no-op
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 2);
  response = get(listenerPort("second"), "/second");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-a");
}

TEST_F(XdsListenerTest, ModifiedListenerServesTheNewConfigWhileAnInFlightRequestCompletes) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/3));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()}),
                          staticCluster("cluster_b", {upstream_b_->port()})},
                         /*endpoints=*/{}, {rdsListener("ingress", "routes_a")},
                         {routeConfig("routes_a", {{"/", "cluster_a"}})}));
  const uint32_t port = listenerPort("ingress");

  // A slow request on the current version: upstream-a answers it 1 s after receiving it.
  absl::StatusOr<HttpClientPtr> slow = HttpClient::connect(port);
  ASSERT_TRUE(slow.ok()) << slow.status();
  HttpRequest slow_request;
  slow_request.path = "/slow";
  slow_request.headers = {{"x-fake-delay-ms", "1000"}};
  ASSERT_TRUE((*slow)->sendRaw(HttpClient::serialize(slow_request)).ok());
  ASSERT_TRUE(upstream_a_->waitForRequests(1));

  // The listener changes (a listener-level field and its route configuration): a new version
  // warms on routes_b, then replaces the old one, which drains.
  const std::string nonce =
      sendListeners({withBufferLimit(rdsListener("ingress", "routes_b"), 64 * 1024)});
  ASSERT_TRUE(ads_->waitForSubscription(kRouteType, {"routes_a", "routes_b"}).ok());
  ASSERT_TRUE(waitForAck(kListenerType, nonce));
  ASSERT_TRUE(applyRoutes({routeConfig("routes_a", {{"/", "cluster_a"}}),
                           routeConfig("routes_b", {{"/", "cluster_b"}})}));
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_draining", 1));
  EXPECT_EQ(stat("listener_manager.listener_modified"), 1);
  EXPECT_EQ(stat("listener_manager.listener_in_place_updated"), 0);
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 1);

  // Same address, same port (the new version took over the sockets), new routes.
  EXPECT_EQ(listenerPort("ingress"), port);
  absl::StatusOr<HttpResponse> fresh = get(port, "/fresh");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->status, 200u);
  EXPECT_EQ(fresh->header("x-upstream"), "upstream-b");

  // The in-flight request on the old version completes normally; then its connection, which
  // belongs to the draining version, is closed.
  absl::StatusOr<HttpResponse> slow_response = (*slow)->readResponse();
  ASSERT_TRUE(slow_response.ok()) << slow_response.status();
  EXPECT_EQ(slow_response->status, 200u);
  EXPECT_EQ(slow_response->header("x-upstream"), "upstream-a");
  EXPECT_TRUE((*slow)->waitForClose(10s));
  const size_t mark = ads_->requestMark();
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_draining", 0));

  // With the old version gone, nothing uses routes_a any more: the proxy unsubscribes.
  EXPECT_TRUE(ads_->waitForSubscription(kRouteType, {"routes_b"}, 10s, mark).ok());
}

TEST_F(XdsListenerTest, ListenerMovedToAnotherAddressStopsListeningOnTheOldOne) {
  // A long drain window (10 s): the old port must refuse at once, not when the drain ends.
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/10));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()})}, /*endpoints=*/{},
                         {rdsListener("ingress", "routes")},
                         {routeConfig("routes", {{"/", "cluster_a"}})}));
  const uint32_t old_port = listenerPort("ingress");

  // An idle keep-alive connection on the old address.
  absl::StatusOr<HttpClientPtr> idle = HttpClient::connect(old_port);
  ASSERT_TRUE(idle.ok()) << idle.status();
  HttpRequest request;
  request.path = "/before";
  absl::StatusOr<HttpResponse> response = (*idle)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();

  // The listener moves to another port: a full replace with new sockets.
  PortHolder new_port(PortHolder::Mode::ReservedForReusePort);
  ASSERT_TRUE(applyListeners({rdsListener("ingress", "routes", new_port.port())}));
  EXPECT_EQ(stat("listener_manager.listener_modified"), 1);
  EXPECT_EQ(listenerPort("ingress"), new_port.port());
  response = get(new_port.port(), "/moved");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);

  // Nobody accepts on the old address any more, so it must not keep completing handshakes
  // into a backlog nobody reads: new connections are refused well before the drain ends.
  ASSERT_TRUE(Integration::waitUntil([&] { return !HttpClient::connect(old_port, 1s).ok(); }, 5s,
                                     "connects to the old address being refused"));
  EXPECT_EQ(stat("listener_manager.total_listeners_draining"), 1);
  // The connection accepted before the move is drained (closed while idle), not cut.
  EXPECT_TRUE((*idle)->waitForClose(15s));
}

TEST_F(XdsListenerTest, RemovedListenerDrainsItsConnectionsAndItsPortRefuses) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/2));
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()})}, /*endpoints=*/{},
                         {rdsListener("ingress", "routes"), rdsListener("other", "routes")},
                         {routeConfig("routes", {{"/", "cluster_a"}})}));
  const uint32_t port = listenerPort("ingress");

  // An idle keep-alive connection on the listener that goes away.
  absl::StatusOr<HttpClientPtr> idle = HttpClient::connect(port);
  ASSERT_TRUE(idle.ok()) << idle.status();
  HttpRequest request;
  request.path = "/before";
  absl::StatusOr<HttpResponse> response = (*idle)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200u);

  // LDS without "ingress": it stops accepting at once and drains.
  ASSERT_TRUE(applyListeners({rdsListener("other", "routes")}));
  EXPECT_EQ(stat("listener_manager.listener_removed"), 1);
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 1);
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_draining", 1));
  ASSERT_TRUE(Integration::waitUntil([&] { return !HttpClient::connect(port, 1s).ok(); }, 5s,
                                     "connects to the removed listener's port being refused"));

  // The idle connection is closed within the drain time (--drain-time-s 2), and the draining
  // version is gone after it.
  EXPECT_TRUE((*idle)->waitForClose(10s));
  EXPECT_GE(stat("http.ingress.downstream_cx_drain_close"), 1);
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_draining", 0));

  // The other listener never noticed.
  response = get(listenerPort("other"), "/other");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
}

TEST_F(XdsListenerTest, FilterChainOnlyUpdateIsInPlaceAndKeepsConnectionsOnUnchangedChains) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/1));
  const Listener original = rdsListener("ingress", "routes");
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()})}, /*endpoints=*/{},
                         {original}, {routeConfig("routes", {{"/", "cluster_a"}})}));
  const uint32_t port = listenerPort("ingress");

  // An idle keep-alive connection, accepted on the listener's only filter chain.
  absl::StatusOr<HttpClientPtr> idle = HttpClient::connect(port);
  ASSERT_TRUE(idle.ok()) << idle.status();
  HttpRequest request;
  request.path = "/before";
  absl::StatusOr<HttpResponse> response = (*idle)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 200u);

  // Only the filter chains change: a default filter chain is added, the existing chain stays
  // byte for byte. The update is in place; nothing the connection uses drains.
  Listener with_default = original;
  *with_default.mutable_default_filter_chain() = rdsFilterChain("routes", "ingress_default");
  ASSERT_TRUE(applyListeners({with_default}));
  EXPECT_EQ(stat("listener_manager.listener_in_place_updated"), 1);
  EXPECT_EQ(stat("listener_manager.listener_modified"), 1);
  // The old version's drain window (1 s) passes completely.
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_draining", 1));
  ASSERT_TRUE(waitForStat("listener_manager.total_listeners_draining", 0));

  // The connection is still open and still works.
  request.path = "/after";
  response = (*idle)->request(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-upstream"), "upstream-a");
  EXPECT_EQ(stat("http.ingress.downstream_cx_drain_close"), 0);
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 1);
  EXPECT_EQ(listenerPort("ingress"), port);

  // Now the chain the connection uses changes (its stat_prefix): still in place, but this
  // connection's chain is gone, so it drains and is closed; new connections use the new chain.
  Listener changed_chain = with_default;
  *changed_chain.mutable_filter_chains(0) = rdsFilterChain("routes", "ingress_v2");
  ASSERT_TRUE(applyListeners({changed_chain}));
  EXPECT_EQ(stat("listener_manager.listener_in_place_updated"), 2);
  EXPECT_TRUE((*idle)->waitForClose(10s));
  response = get(port, "/new-chain");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(stat("http.ingress_v2.downstream_rq_2xx"), 1);
}

TEST_F(XdsListenerTest, DrainWindowEndClosesConnectionsOnRemovedChainsAcrossInPlaceUpdates) {
  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/1));
  const Listener original = rdsListener("ingress", "routes");
  ASSERT_TRUE(initialize({staticCluster("cluster_a", {upstream_a_->port()})}, /*endpoints=*/{},
                         {original}, {routeConfig("routes", {{"/", "cluster_a"}})}));
  const uint32_t port = listenerPort("ingress");

  // Two connections with a request in flight that upstream-a answers only after 10 s, far
  // beyond the 1 s drain window.
  std::vector<HttpClientPtr> busy;
  for (int i = 0; i < 2; i++) {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port);
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = absl::StrCat("/long/", i);
    request.headers = {{"x-fake-delay-ms", "10000"}};
    ASSERT_TRUE((*client)->sendRaw(HttpClient::serialize(request)).ok());
    busy.push_back(*std::move(client));
  }
  ASSERT_TRUE(upstream_a_->waitForRequests(2));
  auto anyReadable = [&] {
    for (HttpClientPtr& client : busy) {
      pollfd pfd{client->fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 0) > 0) {
        return true;
      }
    }
    return false;
  };

  // In-place update 1 replaces the chain both connections use: they drain. Then, as a busy
  // management server might, more in-place updates follow (a default chain added, removed,
  // added, ...), each well inside the previous one's drain window, until the connections are
  // closed or 6 drain windows have passed.
  Listener v2 = original;
  *v2.mutable_filter_chains(0) = rdsFilterChain("routes", "ingress_v2");
  ASSERT_TRUE(applyListeners({v2}));
  Listener v2_with_default = v2;
  *v2_with_default.mutable_default_filter_chain() = rdsFilterChain("routes", "ingress_default");
  const auto deadline = std::chrono::steady_clock::now() + 6s;
  int updates = 1;
  while (!anyReadable() && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(applyListeners({updates % 2 == 1 ? v2_with_default : v2}));
    updates++;
  }
  EXPECT_TRUE(anyReadable()) << "the drained connections were still open after " << updates
                             << " in-place updates over 6 drain windows";
  EXPECT_EQ(stat("listener_manager.listener_in_place_updated"), updates);

  // The first drain window's end closed both connections without their responses.
  for (HttpClientPtr& client : busy) {
    absl::StatusOr<HttpResponse> response = client->readResponse();
    EXPECT_FALSE(response.ok()) << "a drained connection outlived its drain window and got its "
                                   "response after "
                                << updates << " in-place updates";
  }
  // New connections use the newest chain.
  absl::StatusOr<HttpResponse> response = get(port, "/new");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(stat("http.ingress_v2.downstream_rq_2xx"), 1);
}

TEST_F(XdsListenerTest, BadListenersAreNackedWhileTheGoodOnesInTheSameResponseApply) {
  // A port another process (here: the test) listens on without SO_REUSEPORT: binding it fails.
  PortHolder taken(PortHolder::Mode::Listening);
  // A free port number for two listeners that both ask for it.
  PortHolder shared(PortHolder::Mode::ReservedForReusePort);
  ASSERT_NE(taken.port(), 0u);
  ASSERT_NE(shared.port(), 0u);

  ASSERT_TRUE(startProxy(/*concurrency=*/2, /*drain_time_s=*/1));
  ASSERT_TRUE(ads_->waitForSubscription(kClusterType, {}).ok());
  ASSERT_TRUE(applyClusters({staticCluster("cluster_a", {upstream_a_->port()})}));
  ASSERT_TRUE(ads_->waitForSubscription(kListenerType, {}).ok());

  // One LDS response: two good listeners and three bad ones.
  Listener unknown_filter = rdsListener("unknown_filter", "routes");
  unknown_filter.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->set_type_url(
      "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy");
  const std::string nonce = sendListeners({
      rdsListener("good", "routes"),                       // index 0
      rdsListener("first", "routes", shared.port()),       // index 1
      rdsListener("duplicate", "routes", shared.port()),   // index 2: same address as "first"
      rdsListener("port_in_use", "routes", taken.port()),  // index 3: bind fails
      unknown_filter,                                      // index 4
  });
  absl::StatusOr<std::string> nack = ads_->waitForNack(kListenerType, nonce);
  ASSERT_TRUE(nack.ok()) << nack.status();
  const std::string duplicate_error =
      absl::StrCat("address: '127.0.0.1:", shared.port(), "' is already used by listener 'first'");
  const std::string bind_error =
      absl::StrCat("address: cannot bind '127.0.0.1:", taken.port(), "': Address already in use");
  const std::string filter_error =
      "filter_chains[0].filters[0].typed_config: unsupported network filter type "
      "'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy'";
  EXPECT_EQ(*nack, absl::StrCat("resource index 2: duplicate: ", duplicate_error,
                                "; resource index 3: port_in_use: ", bind_error,
                                "; resource index 4: unknown_filter: ", filter_error));

  // The good listeners were applied: once their routes arrive they serve.
  ASSERT_TRUE(ads_->waitForSubscription(kRouteType, {"routes"}).ok());
  ASSERT_TRUE(applyRoutes({routeConfig("routes", {{"/", "cluster_a"}})}));
  ASSERT_TRUE(waitForReady(200));
  for (const std::string name : {"good", "first"}) {
    absl::StatusOr<HttpResponse> response = get(listenerPort(name), "/" + name);
    ASSERT_TRUE(response.ok()) << name << ": " << response.status();
    EXPECT_EQ(response->status, 200u) << name;
  }
  EXPECT_EQ(stat("listener_manager.total_listeners_active"), 2);
  EXPECT_EQ(stat("listener_manager.listener_create_failure"), 3);
  EXPECT_EQ(stat("listener_manager.lds.update_rejected"), 1);

  // Each bad listener shows its failed config, with the reason, as error_state.
  absl::StatusOr<ConfigDump> dump = ConfigDump::fetch(*proxy_);
  ASSERT_TRUE(dump.ok()) << dump.status();
  const std::vector<std::pair<std::string, std::string>> expected_errors = {
      {"duplicate", duplicate_error},
      {"port_in_use", bind_error},
      {"unknown_filter", filter_error}};
  for (const auto& [name, details] : expected_errors) {
    const google::protobuf::Struct* listener = dump->dynamicListener(name);
    ASSERT_NE(listener, nullptr) << name << " not in " << dump->json();
    EXPECT_EQ(stringField(*listener, {"error_state", "details"}), details);
    EXPECT_EQ(stringField(*listener, {"error_state", "failed_configuration", "name"}), name);
    EXPECT_FALSE(stringField(*listener, {"error_state", "last_update_attempt"}).empty());
    EXPECT_EQ(field(*listener, {"active_state"}), nullptr) << name;
  }
  // The filter we do not know is shown by its type (the rest of that config prints in full).
  EXPECT_NE(
      dump->json().find(
          R"({"@type":"type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"})"),
      std::string::npos)
      << dump->json();

  // A bad update of a serving listener is NACKed and the previous version keeps serving.
  Listener broken_good = rdsListener("good", "routes");
  broken_good.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->set_type_url(
      "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy");
  const uint32_t good_port = listenerPort("good");
  const std::string nonce2 =
      sendListeners({broken_good, rdsListener("first", "routes", shared.port())});
  nack = ads_->waitForNack(kListenerType, nonce2);
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(*nack, absl::StrCat("resource index 0: good: ", filter_error));
  EXPECT_EQ(stat("listener_manager.lds.update_rejected"), 2);
  EXPECT_EQ(stat("listener_manager.listener_create_failure"), 4);
  absl::StatusOr<HttpResponse> response = get(good_port, "/still-good");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  dump = ConfigDump::fetch(*proxy_);
  ASSERT_TRUE(dump.ok()) << dump.status();
  const google::protobuf::Struct* good = dump->dynamicListener("good");
  ASSERT_NE(good, nullptr);
  EXPECT_EQ(stringField(*good, {"active_state", "version_info"}), "1");
  EXPECT_EQ(stringField(*good, {"error_state", "details"}), filter_error);
}

}  // namespace
}  // namespace Proxy::XdsIntegration
