// Building host-set snapshots from ClusterLoadAssignments: health and weights, reuse of the
// Host objects of unchanged endpoints across rebuilds, priorities, and field-named errors.

#include "proxy/upstream/host_impl.h"

#include "gtest/gtest.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {
namespace {

using envoy::config::core::v3::DEGRADED;
using envoy::config::core::v3::DRAINING;
using envoy::config::core::v3::HEALTHY;
using envoy::config::core::v3::TIMEOUT;
using envoy::config::core::v3::UNHEALTHY;
using envoy::config::core::v3::UNKNOWN;

HostSetConstSharedPtr build(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
                            const HostSet* previous = nullptr) {
  absl::StatusOr<HostSetConstSharedPtr> hosts = buildHostSet(cla, previous, "service");
  EXPECT_TRUE(hosts.ok()) << hosts.status();
  return hosts.ok() ? *hosts : nullptr;
}

std::string buildError(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla) {
  absl::StatusOr<HostSetConstSharedPtr> hosts = buildHostSet(cla, nullptr, "service");
  EXPECT_FALSE(hosts.ok());
  return hosts.ok() ? "" : std::string(hosts.status().message());
}

TEST(HostSetBuilderTest, HealthDecidesWhoTheBalancerSees) {
  // One endpoint per EDS health status.
  HostSetConstSharedPtr set = build(makeAssignment("service", {{.port = 1, .health = UNKNOWN},
                                                               {.port = 2, .health = HEALTHY},
                                                               {.port = 3, .health = UNHEALTHY},
                                                               {.port = 4, .health = DRAINING},
                                                               {.port = 5, .health = TIMEOUT},
                                                               {.port = 6, .health = DEGRADED}}));
  ASSERT_NE(nullptr, set);

  // Every endpoint is a host; UNKNOWN and HEALTHY are healthy, DEGRADED is degraded (Envoy
  // sends it load only when the healthy ones fall short), DRAINING is excluded altogether.
  ASSERT_EQ(6u, set->hosts.size());
  std::vector<uint32_t> healthy_ports;
  for (const HostConstSharedPtr& host : set->priorities[0].healthy) {
    healthy_ports.push_back(host->address().port());
  }
  EXPECT_EQ((std::vector<uint32_t>{1, 2}), healthy_ports);
  EXPECT_EQ(2u, set->healthy_host_count);
  ASSERT_EQ(1u, set->priorities.size());
  ASSERT_EQ(1u, set->priorities[0].degraded.size());
  EXPECT_EQ(6u, set->priorities[0].degraded[0]->address().port());
  EXPECT_EQ(5u, set->priorities[0].hosts.size());  // all but the draining one

  // Hosts carry what the endpoint said, and the admin flags read as Envoy's.
  EXPECT_EQ("127.0.0.1:3", set->hosts[2]->address().asString());
  EXPECT_EQ("service", set->hosts[2]->clusterName());
  EXPECT_EQ(HealthStatus::Unhealthy, set->hosts[2]->health());
  EXPECT_EQ(HealthStatus::Unhealthy, set->hosts[4]->health());  // TIMEOUT counts as unhealthy
  EXPECT_EQ("healthy", healthFlagsString(*set->hosts[0]));
  EXPECT_EQ("/failed_eds_health", healthFlagsString(*set->hosts[2]));
  EXPECT_EQ("/eds_status_draining", healthFlagsString(*set->hosts[3]));
  EXPECT_EQ("/degraded_eds_health", healthFlagsString(*set->hosts[5]));

  // Active health checking and outlier detection add theirs, in Envoy's order.
  set->hosts[2]->healthState().set(HealthFlag::FailedOutlierCheck);
  set->hosts[2]->healthState().set(HealthFlag::FailedActiveHc);
  EXPECT_EQ("/failed_active_hc/failed_outlier_check/failed_eds_health",
            healthFlagsString(*set->hosts[2]));
}

TEST(HostSetBuilderTest, WeightDefaultsToOne) {
  HostSetConstSharedPtr set =
      build(makeAssignment("service", {{.port = 1}, {.port = 2, .weight = 7}}));
  ASSERT_NE(nullptr, set);
  EXPECT_EQ(1u, set->hosts[0]->weight());
  EXPECT_EQ(7u, set->hosts[1]->weight());
}

// A list equal to another is that list: one vector behind HostSet::hosts, the priority's
// hosts and its healthy hosts when nothing is excluded or unhealthy (config memory, issue 14).
TEST(HostSetBuilderTest, EqualListsAreOneSharedList) {
  HostSetConstSharedPtr all_healthy =
      build(makeAssignment("service", {{.port = 1}, {.port = 2}, {.port = 3}}));
  ASSERT_NE(nullptr, all_healthy);
  const PriorityHosts& priority = all_healthy->priorities[0];
  EXPECT_TRUE(priority.hosts.sharedWith(all_healthy->hosts));
  EXPECT_TRUE(priority.healthy.sharedWith(priority.hosts));
  EXPECT_TRUE(priority.degraded.empty());
  EXPECT_EQ(3u, priority.healthy.size());

  // One unhealthy host: `healthy` is a list of its own; `hosts` is still the set's.
  HostSetConstSharedPtr one_unhealthy = build(
      makeAssignment("service", {{.port = 1}, {.port = 2, .health = UNHEALTHY}, {.port = 3}}));
  ASSERT_NE(nullptr, one_unhealthy);
  EXPECT_TRUE(one_unhealthy->priorities[0].hosts.sharedWith(one_unhealthy->hosts));
  EXPECT_FALSE(one_unhealthy->priorities[0].healthy.sharedWith(one_unhealthy->hosts));
  EXPECT_EQ(2u, one_unhealthy->priorities[0].healthy.size());

  // A draining host is in the set but not in its priority: two lists.
  HostSetConstSharedPtr draining =
      build(makeAssignment("service", {{.port = 1}, {.port = 2, .health = DRAINING}}));
  ASSERT_NE(nullptr, draining);
  EXPECT_FALSE(draining->priorities[0].hosts.sharedWith(draining->hosts));
  EXPECT_EQ(1u, draining->priorities[0].hosts.size());
  EXPECT_TRUE(draining->priorities[0].healthy.sharedWith(draining->priorities[0].hosts));

  // All degraded: `degraded` is `hosts`, `healthy` is empty.
  HostSetConstSharedPtr degraded =
      build(makeAssignment("service", {{.port = 1, .health = DEGRADED}}));
  ASSERT_NE(nullptr, degraded);
  EXPECT_TRUE(degraded->priorities[0].degraded.sharedWith(degraded->priorities[0].hosts));
  EXPECT_TRUE(degraded->priorities[0].healthy.empty());
}

TEST(HostSetBuilderTest, RebuildReusesHostsOfUnchangedEndpoints) {
  // First snapshot: a (port 1), b (port 2, weight 1), d (port 4).
  HostSetConstSharedPtr first =
      build(makeAssignment("service", {{.port = 1}, {.port = 2}, {.port = 4}}));
  ASSERT_NE(nullptr, first);
  first->hosts[1]->stats().rq_total = 17;

  // Second: a unchanged, b with weight 5, c new (port 3), d gone.
  HostSetConstSharedPtr second = build(
      makeAssignment("service", {{.port = 1}, {.port = 2, .weight = 5}, {.port = 3}}), first.get());
  ASSERT_NE(nullptr, second);
  ASSERT_EQ(3u, second->hosts.size());

  // a is the very same object: workers keep its pools.
  EXPECT_EQ(first->hosts[0], second->hosts[0]);
  // b is a new object (hosts are immutable) that keeps b's counters.
  EXPECT_NE(first->hosts[1], second->hosts[1]);
  EXPECT_EQ(5u, second->hosts[1]->weight());
  EXPECT_EQ(&first->hosts[1]->stats(), &second->hosts[1]->stats());
  EXPECT_EQ(17u, second->hosts[1]->stats().rq_total.load());
  // c is new, with fresh counters.
  EXPECT_EQ(3u, second->hosts[2]->address().port());
  EXPECT_EQ(0u, second->hosts[2]->stats().rq_total.load());
  // A health change also makes a new object.
  HostSetConstSharedPtr third = build(
      makeAssignment("service",
                     {{.port = 1, .health = DRAINING}, {.port = 2, .weight = 5}, {.port = 3}}),
      second.get());
  ASSERT_NE(nullptr, third);
  EXPECT_NE(second->hosts[0], third->hosts[0]);
  EXPECT_EQ(second->hosts[1], third->hosts[1]);
  EXPECT_EQ(second->hosts[2], third->hosts[2]);
  EXPECT_EQ(2u, third->healthy_host_count);
  // The endpoint keeps its health check and outlier state across objects, as its counters.
  EXPECT_EQ(&second->hosts[0]->healthState(), &third->hosts[0]->healthState());
}

TEST(HostSetBuilderTest, ReorderedAndDuplicatedEndpointsKeepTheirHosts) {
  // Endpoints 1, 2, 3, and 3 again (Envoy accepts a duplicate address).
  HostSetConstSharedPtr first =
      build(makeAssignment("service", {{.port = 1}, {.port = 2}, {.port = 3}, {.port = 3}}));
  ASSERT_NE(nullptr, first);
  ASSERT_NE(first->hosts[2], first->hosts[3]);

  // The same endpoints in another order: no position matches, each host is found by address,
  // and each previous host is taken once (both copies of 3 stay, as two objects).
  HostSetConstSharedPtr second = build(
      makeAssignment("service", {{.port = 3}, {.port = 1}, {.port = 3}, {.port = 2}}), first.get());
  ASSERT_NE(nullptr, second);
  EXPECT_EQ(first->hosts[0], second->hosts[1]);
  EXPECT_EQ(first->hosts[1], second->hosts[3]);
  EXPECT_NE(second->hosts[0], second->hosts[2]);
  EXPECT_TRUE((second->hosts[0] == first->hosts[2] && second->hosts[2] == first->hosts[3]) ||
              (second->hosts[0] == first->hosts[3] && second->hosts[2] == first->hosts[2]));

  // One endpoint changes its weight in place and one is replaced: the others stay where they
  // were; the reweighted one is a new object with the old counters, the new one has its own.
  first->hosts[1]->stats().rq_total = 5;
  HostSetConstSharedPtr third = build(
      makeAssignment("service", {{.port = 3}, {.port = 1, .weight = 4}, {.port = 3}, {.port = 9}}),
      second.get());
  ASSERT_NE(nullptr, third);
  EXPECT_EQ(second->hosts[0], third->hosts[0]);
  EXPECT_EQ(second->hosts[2], third->hosts[2]);
  EXPECT_NE(second->hosts[1], third->hosts[1]);
  EXPECT_EQ(&second->hosts[1]->stats(), &third->hosts[1]->stats());
  EXPECT_EQ(4u, third->hosts[1]->weight());
  EXPECT_EQ(9u, third->hosts[3]->address().port());
  EXPECT_EQ(0u, third->hosts[3]->stats().rq_total.load());
}

TEST(HostSetBuilderTest, ANewVersionOfTheClusterKeepsTheCountersAndStartsHealthOver) {
  // A new endpoint's counters and health state (one allocation behind two handles) are its own.
  HostSetConstSharedPtr first = build(makeAssignment("service", {{.port = 1}, {.port = 2}}));
  ASSERT_NE(nullptr, first);
  EXPECT_NE(&first->hosts[0]->stats(), &first->hosts[1]->stats());
  EXPECT_NE(&first->hosts[0]->healthState(), &first->hosts[1]->healthState());
  first->hosts[0]->stats().rq_total = 9;
  first->hosts[0]->healthState().set(HealthFlag::FailedActiveHc);

  // A new version of the cluster: the same counters, a fresh health state (its checks start
  // over), while the old objects keep theirs.
  const HostVector fresh = withFreshHealthState(first->hosts);
  ASSERT_EQ(2u, fresh.size());
  EXPECT_EQ(&first->hosts[0]->stats(), &fresh[0]->stats());
  EXPECT_EQ(9u, fresh[0]->stats().rq_total.load());
  EXPECT_NE(&first->hosts[0]->healthState(), &fresh[0]->healthState());
  EXPECT_FALSE(fresh[0]->healthState().get(HealthFlag::FailedActiveHc));
  EXPECT_TRUE(first->hosts[0]->healthState().get(HealthFlag::FailedActiveHc));

  // The old version goes; the counters live on with the new one.
  const HostStats* stats = &fresh[0]->stats();
  first.reset();
  EXPECT_EQ(stats, &fresh[0]->stats());
  EXPECT_EQ(9u, fresh[0]->stats().rq_total.load());
}

TEST(HostSetBuilderTest, PriorityLoadFollowsEnvoysOverprovisioning) {
  // Priority 0: one unhealthy host; priority 1: two healthy ones. All load fails over to 1.
  HostSetConstSharedPtr set =
      build(makeAssignment("service", {{.port = 1, .health = UNHEALTHY, .priority = 0},
                                       {.port = 2, .priority = 1},
                                       {.port = 3, .priority = 1}}));
  ASSERT_NE(nullptr, set);
  ASSERT_EQ(2u, set->priorities.size());
  EXPECT_EQ(0u, set->priorities[0].healthy_load);
  EXPECT_EQ(100u, set->priorities[1].healthy_load);
  EXPECT_FALSE(set->priorities[1].panic);

  // With a healthy priority-0 host, priority 1 gets nothing.
  set = build(makeAssignment("service", {{.port = 1, .priority = 0}, {.port = 2, .priority = 1}}));
  ASSERT_NE(nullptr, set);
  EXPECT_EQ(100u, set->priorities[0].healthy_load);
  EXPECT_EQ(0u, set->priorities[1].healthy_load);

  // Half of priority 0 healthy: 1.4 x 50% = 70% stays there, 30% spills to priority 1.
  set = build(makeAssignment("service", {{.port = 1, .priority = 0},
                                         {.port = 2, .health = UNHEALTHY, .priority = 0},
                                         {.port = 3, .priority = 1}}));
  ASSERT_NE(nullptr, set);
  EXPECT_EQ(70u, set->priorities[0].healthy_load);
  EXPECT_EQ(30u, set->priorities[1].healthy_load);

  // Four of five healthy: 1.4 x 80% is over 100%, priority 0 keeps everything.
  set = build(makeAssignment(
      "service",
      {{.port = 1}, {.port = 2}, {.port = 3}, {.port = 4}, {.port = 5, .health = UNHEALTHY}}));
  ASSERT_NE(nullptr, set);
  EXPECT_EQ(100u, set->priorities[0].healthy_load);
}

TEST(HostSetBuilderTest, PanicBelowTheThreshold) {
  // One healthy host of three (33% < 50%): priority 0 is in panic and balances over all three.
  HostVector hosts = {makeHost(1), makeHost(2, 1, HealthStatus::Unhealthy),
                      makeHost(3, 1, HealthStatus::Unhealthy)};
  HostSetConstSharedPtr set = computeHostSet(hosts, /*panic_threshold=*/50);
  EXPECT_TRUE(set->priorities[0].panic);
  EXPECT_EQ(100u, set->priorities[0].healthy_load);
  EXPECT_EQ(3u, set->priorities[0].hosts.size());

  // A threshold of 0 disables panic: only the healthy host.
  set = computeHostSet(hosts, /*panic_threshold=*/0);
  EXPECT_FALSE(set->priorities[0].panic);
  EXPECT_EQ(1u, set->priorities[0].healthy.size());

  // Nothing healthy and panic disabled: no load anywhere but the empty healthy list (503).
  set = computeHostSet({makeHost(2, 1, HealthStatus::Unhealthy)}, /*panic_threshold=*/0);
  EXPECT_FALSE(set->priorities[0].panic);
  EXPECT_TRUE(set->priorities[0].healthy.empty());

  // Two priorities both in panic: load by host count (1 host vs 3 hosts: 25% / 75%).
  set = computeHostSet(
      {makeHost(1, 1, HealthStatus::Unhealthy, /*priority=*/0),
       makeHost(2, 1, HealthStatus::Unhealthy, 1), makeHost(3, 1, HealthStatus::Unhealthy, 1),
       makeHost(4, 1, HealthStatus::Unhealthy, 1)},
      /*panic_threshold=*/50);
  EXPECT_TRUE(set->priorities[0].panic);
  EXPECT_TRUE(set->priorities[1].panic);
  EXPECT_EQ(25u, set->priorities[0].healthy_load);
  EXPECT_EQ(75u, set->priorities[1].healthy_load);

  // Active health checking's flag counts like EDS's.
  HostConstSharedPtr checked = makeHost(5);
  checked->healthState().set(HealthFlag::FailedActiveHc);
  set = computeHostSet({makeHost(1), makeHost(2), checked}, /*panic_threshold=*/50);
  EXPECT_EQ(2u, set->priorities[0].healthy.size());
  EXPECT_FALSE(set->priorities[0].panic);
}

TEST(HostSetBuilderTest, NamedEndpointsAreResolved) {
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  auto& named = (*cla.mutable_named_endpoints())["backend-a"];
  named.mutable_address()->mutable_socket_address()->set_address("127.0.0.1");
  named.mutable_address()->mutable_socket_address()->set_port_value(8080);
  cla.add_endpoints()->add_lb_endpoints()->set_endpoint_name("backend-a");
  HostSetConstSharedPtr set = build(cla);
  ASSERT_NE(nullptr, set);
  ASSERT_EQ(1u, set->hosts.size());
  EXPECT_EQ("127.0.0.1:8080", set->hosts[0]->address().asString());

  // An unknown name is an error naming the field.
  cla.mutable_endpoints(0)->mutable_lb_endpoints(0)->set_endpoint_name("backend-b");
  EXPECT_EQ("endpoints[0].lb_endpoints[0].endpoint_name: 'backend-b' is not in named_endpoints",
            buildError(cla));
}

TEST(HostSetBuilderTest, ErrorsNameTheField) {
  // A hostname where an IP is needed (second endpoint of the first locality).
  EXPECT_EQ(
      "endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address: "
      "'backend.local' is not an IP address",
      buildError(makeAssignment("service", {{.port = 1}, {.ip = "backend.local", .port = 2}})));

  // A port out of range.
  EXPECT_EQ(
      "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: 70000 is "
      "not a valid port",
      buildError(makeAssignment("service", {{.port = 70000}})));

  // A zero weight (Envoy requires at least 1).
  auto cla = makeAssignment("service", {{.port = 1}});
  cla.mutable_endpoints(0)->mutable_lb_endpoints(0)->mutable_load_balancing_weight()->set_value(0);
  EXPECT_EQ("endpoints[0].lb_endpoints[0].load_balancing_weight: must be at least 1",
            buildError(cla));

  // A named port.
  cla = makeAssignment("service", {{.port = 1}});
  cla.mutable_endpoints(0)
      ->mutable_lb_endpoints(0)
      ->mutable_endpoint()
      ->mutable_address()
      ->mutable_socket_address()
      ->set_named_port("http");
  EXPECT_EQ(
      "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.named_port: named ports "
      "are not supported",
      buildError(cla));

  // A pipe address, in the second locality.
  cla = makeAssignment("service", {{.port = 1}});
  cla.add_endpoints()->add_lb_endpoints()->mutable_endpoint()->mutable_address()->mutable_pipe();
  EXPECT_EQ(
      "endpoints[1].lb_endpoints[0].endpoint.address: only socket_address is supported for "
      "upstream endpoints",
      buildError(cla));
}

}  // namespace
}  // namespace Proxy::Upstream
