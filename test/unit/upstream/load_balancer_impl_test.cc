// The load balancers over fixed host sets: rotation and weights for round robin, preference
// for the less loaded host for least request, coverage for random, and null without a healthy
// host. Seeds are fixed, so every run draws the same numbers.

#include "proxy/upstream/load_balancer_impl.h"

#include <algorithm>
#include <map>
#include <set>

#include "gtest/gtest.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {
namespace {

// How often each host (by port) was picked in `picks` picks.
std::map<uint32_t, int> countPicks(LoadBalancer& lb, int picks) {
  std::map<uint32_t, int> counts;
  for (int i = 0; i < picks; i++) {
    HostConstSharedPtr host = lb.chooseHost();
    EXPECT_NE(nullptr, host);
    if (host != nullptr) {
      counts[host->address().port()]++;
    }
  }
  return counts;
}

TEST(RoundRobinLoadBalancerTest, EqualWeightsRotateThroughEveryHost) {
  // Three hosts of weight 1.
  HostSetConstSharedPtr hosts = makeHostSet({makeHost(1001), makeHost(1002), makeHost(1003)});
  RoundRobinLoadBalancer lb(hosts, /*seed=*/42);

  // Nine picks: each host three times, in a fixed cycle of three.
  std::vector<uint32_t> ports;
  for (int i = 0; i < 9; i++) {
    ports.push_back(lb.chooseHost()->address().port());
  }
  for (int i = 3; i < 9; i++) {
    EXPECT_EQ(ports[i - 3], ports[i]) << "pick " << i;
  }
  EXPECT_EQ(3u, std::set<uint32_t>(ports.begin(), ports.begin() + 3).size());
}

TEST(RoundRobinLoadBalancerTest, WeightsSetEachHostsShare) {
  // Weights 1, 2 and 3: over 600 picks, 100, 200 and 300 (EDF is exact to within a pick).
  HostSetConstSharedPtr hosts = makeHostSet(
      {makeHost(1001, /*weight=*/1), makeHost(1002, /*weight=*/2), makeHost(1003, /*weight=*/3)});
  RoundRobinLoadBalancer lb(hosts, /*seed=*/7);

  std::map<uint32_t, int> counts = countPicks(lb, 600);
  EXPECT_NEAR(100, counts[1001], 1);
  EXPECT_NEAR(200, counts[1002], 1);
  EXPECT_NEAR(300, counts[1003], 1);

  // And in every window of 6 picks (one cycle), the weight-3 host is picked 3 times, give or
  // take one: weights interleave instead of coming in bursts.
  std::vector<uint32_t> ports;
  for (int i = 0; i < 60; i++) {
    ports.push_back(lb.chooseHost()->address().port());
  }
  for (size_t start = 0; start + 6 <= ports.size(); start++) {
    const int heavy =
        static_cast<int>(std::count(ports.begin() + start, ports.begin() + start + 6, 1003u));
    EXPECT_NEAR(3, heavy, 1) << "window at " << start;
  }
}

TEST(RoundRobinLoadBalancerTest, StartIsRandomisedPerBalancer) {
  // Sixteen workers' balancers over the same four hosts, seeded differently: their first picks
  // are not all the same host (so the first requests of all workers do not hit one host).
  HostSetConstSharedPtr hosts =
      makeHostSet({makeHost(1001), makeHost(1002), makeHost(1003), makeHost(1004)});
  std::set<uint32_t> first_picks;
  for (uint64_t seed = 1; seed <= 16; seed++) {
    RoundRobinLoadBalancer lb(hosts, seed);
    first_picks.insert(lb.chooseHost()->address().port());
  }
  EXPECT_GT(first_picks.size(), 1u);
}

TEST(RoundRobinLoadBalancerTest, SkipsUnhealthyAndDrainingHosts) {
  // An unhealthy and a draining host are never picked.
  HostSetConstSharedPtr hosts =
      makeHostSet({makeHost(1001), makeHost(1002, /*weight=*/1, HealthStatus::Unhealthy),
                   makeHost(1003, /*weight=*/1, HealthStatus::Draining), makeHost(1004)});
  RoundRobinLoadBalancer lb(hosts, /*seed=*/3);
  std::map<uint32_t, int> counts = countPicks(lb, 10);
  EXPECT_EQ(5, counts[1001]);
  EXPECT_EQ(5, counts[1004]);
  EXPECT_EQ(0u, counts.count(1002));
  EXPECT_EQ(0u, counts.count(1003));
}

TEST(LeastRequestLoadBalancerTest, PrefersTheLessLoadedHost) {
  // Host 1001 has 5 active requests, host 1002 none.
  HostConstSharedPtr busy = makeHost(1001);
  HostConstSharedPtr idle = makeHost(1002);
  busy->stats().rq_active = 5;
  HostSetConstSharedPtr hosts = makeHostSet({busy, idle});

  // Two choices drawn with replacement: the busy host wins only when both draws are it (1/4).
  LeastRequestLoadBalancer p2c(hosts, /*seed=*/11, /*choice_count=*/2);
  std::map<uint32_t, int> counts = countPicks(p2c, 1000);
  EXPECT_GT(counts[1002], 650);
  EXPECT_LT(counts[1002], 850);

  // Ten choices: the busy host is (almost) never picked.
  LeastRequestLoadBalancer p10(hosts, /*seed=*/11, /*choice_count=*/10);
  counts = countPicks(p10, 1000);
  EXPECT_LE(counts[1001], 5);

  // Once the load evens out, both hosts are used again.
  busy->stats().rq_active = 0;
  counts = countPicks(p2c, 1000);
  EXPECT_GT(counts[1001], 400);
  EXPECT_GT(counts[1002], 400);
}

TEST(LeastRequestLoadBalancerTest, WeightsDivideTheLoad) {
  // Weight 4 with 1 active request (4/2 = 2) beats weight 1 with none (1/1 = 1).
  HostConstSharedPtr heavy = makeHost(1001, /*weight=*/4);
  HostConstSharedPtr light = makeHost(1002, /*weight=*/1);
  heavy->stats().rq_active = 1;
  LeastRequestLoadBalancer lb(makeHostSet({heavy, light}), /*seed=*/5, /*choice_count=*/10);
  std::map<uint32_t, int> counts = countPicks(lb, 200);
  EXPECT_GE(counts[1001], 195);
}

TEST(RandomLoadBalancerTest, CoversEveryHost) {
  HostSetConstSharedPtr hosts =
      makeHostSet({makeHost(1001), makeHost(1002), makeHost(1003), makeHost(1004)});
  RandomLoadBalancer lb(hosts, /*seed=*/99);
  std::map<uint32_t, int> counts = countPicks(lb, 400);
  ASSERT_EQ(4u, counts.size());
  for (const auto& [port, count] : counts) {
    EXPECT_GT(count, 50) << "port " << port;
  }
}

TEST(RandomLoadBalancerTest, WeightsSetTheOdds) {
  // Weight 3 against weight 1: about three picks in four.
  RandomLoadBalancer lb(makeHostSet({makeHost(1001, /*weight=*/1), makeHost(1002, /*weight=*/3)}),
                        /*seed=*/8);
  std::map<uint32_t, int> counts = countPicks(lb, 1000);
  EXPECT_GT(counts[1002], 680);
  EXPECT_LT(counts[1002], 820);
}

TEST(LoadBalancerTest, NoHealthyHostGivesNull) {
  // Only an unhealthy and a draining host, panic mode disabled: every policy answers null.
  HostSetConstSharedPtr hosts = makeHostSet({makeHost(1001, /*weight=*/1, HealthStatus::Unhealthy),
                                             makeHost(1002, /*weight=*/1, HealthStatus::Draining)},
                                            /*panic_threshold=*/0);
  for (LbPolicy policy : {LbPolicy::RoundRobin, LbPolicy::LeastRequest, LbPolicy::Random}) {
    LoadBalancerPtr lb = createLoadBalancer(policy, /*least_request_choice_count=*/2, hosts,
                                            /*seed=*/1);
    EXPECT_EQ(nullptr, lb->chooseHost()) << static_cast<int>(policy);
  }
  // And an empty host set too.
  LoadBalancerPtr lb = createLoadBalancer(LbPolicy::RoundRobin, 2, makeHostSet({}), 1);
  EXPECT_EQ(nullptr, lb->chooseHost());
}

TEST(LoadBalancerTest, PanicBalancesOverEveryHostAndCountsIt) {
  // One healthy host of three is below the default 50% threshold: Envoy's panic mode sends to
  // all three (the draining one stays excluded), and lb_healthy_panic counts each pick.
  HostSetConstSharedPtr hosts =
      makeHostSet({makeHost(1001), makeHost(1002, /*weight=*/1, HealthStatus::Unhealthy),
                   makeHost(1003, /*weight=*/1, HealthStatus::Unhealthy),
                   makeHost(1004, /*weight=*/1, HealthStatus::Draining)});
  Stats::Counter panic("lb_healthy_panic");
  RoundRobinLoadBalancer lb(hosts, /*seed=*/1, panic);
  std::map<uint32_t, int> counts = countPicks(lb, 30);
  EXPECT_EQ(10, counts[1001]);
  EXPECT_EQ(10, counts[1002]);
  EXPECT_EQ(10, counts[1003]);
  EXPECT_EQ(0u, counts.count(1004));
  EXPECT_EQ(30u, panic.value());
}

TEST(LoadBalancerTest, PriorityLoadSplitsPicks) {
  // Priority 0: one healthy, one unhealthy host (70% of the load); priority 1: one healthy
  // host (30%). Over many picks each side gets its share.
  HostSetConstSharedPtr hosts =
      makeHostSet({makeHost(1001, 1, HealthStatus::Healthy, /*priority=*/0),
                   makeHost(1002, 1, HealthStatus::Unhealthy, /*priority=*/0),
                   makeHost(2001, 1, HealthStatus::Healthy, /*priority=*/1)});
  for (LbPolicy policy : {LbPolicy::RoundRobin, LbPolicy::LeastRequest, LbPolicy::Random}) {
    LoadBalancerPtr lb = createLoadBalancer(policy, 2, hosts, /*seed=*/7);
    std::map<uint32_t, int> counts = countPicks(*lb, 10000);
    EXPECT_EQ(0u, counts.count(1002)) << static_cast<int>(policy);
    EXPECT_NEAR(7000, counts[1001], 300) << static_cast<int>(policy);
    EXPECT_NEAR(3000, counts[2001], 300) << static_cast<int>(policy);
  }
}

}  // namespace
}  // namespace Proxy::Upstream
