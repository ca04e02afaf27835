// Locality-weighted balancing (locality_wrr.h, the localities of computeHostSet(), the
// balancers' locality pick): Envoy's effective locality weights, the EDF locality scheduler, and
// the share of picks each locality of a host set gets, with Envoy's expectations.

#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/upstream/load_balancer_impl.h"
#include "proxy/upstream/locality_wrr.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {
namespace {

// A host on `port` in locality zone `zone` whose LocalityLbEndpoints has `locality_weight`.
HostConstSharedPtr localityHost(uint32_t port, const std::string& zone, uint32_t locality_weight,
                                HealthStatus health = HealthStatus::Healthy,
                                uint32_t priority = 0) {
  envoy::config::core::v3::Locality locality;
  locality.set_region("r");
  locality.set_zone(zone);
  return std::make_shared<HostImpl>(loopback(port), /*hostname=*/"", /*cluster_name=*/"test",
                                    /*weight=*/1, priority, health, /*stats=*/nullptr,
                                    /*health_state=*/nullptr,
                                    HostLocality{localityKey(locality), locality_weight});
}

// Picks per host port over `picks` picks of a round-robin balancer.
std::map<uint32_t, int> countPicks(const HostSetConstSharedPtr& set, int picks, uint64_t seed = 7) {
  RoundRobinLoadBalancer lb(set, seed);
  std::map<uint32_t, int> counts;
  for (int i = 0; i < picks; i++) {
    HostConstSharedPtr host = lb.chooseHost();
    counts[host == nullptr ? 0 : host->address().port()]++;
  }
  return counts;
}

TEST(LocalityWrrTest, EffectiveWeightIsWeightTimesOverprovisionedAvailability) {
  // Envoy's effectiveLocalityWeight(): weight x min(1, 1.4 x eligible / hosts).
  EXPECT_DOUBLE_EQ(3.0, effectiveLocalityWeight(/*weight=*/3, /*eligible=*/2, /*total=*/2));
  // Half the hosts: 1.4 x 0.5 = 0.7 of the weight.
  EXPECT_DOUBLE_EQ(0.7, effectiveLocalityWeight(1, 1, 2));
  EXPECT_DOUBLE_EQ(2.1, effectiveLocalityWeight(3, 1, 2));
  // Three of four: 1.05, capped at 1.
  EXPECT_DOUBLE_EQ(5.0, effectiveLocalityWeight(5, 3, 4));
  // No eligible host, no weight, no host: nothing.
  EXPECT_DOUBLE_EQ(0.0, effectiveLocalityWeight(4, 0, 3));
  EXPECT_DOUBLE_EQ(0.0, effectiveLocalityWeight(0, 2, 2));
  EXPECT_DOUBLE_EQ(0.0, effectiveLocalityWeight(4, 0, 0));
  // Another overprovisioning factor (100: no headroom).
  EXPECT_DOUBLE_EQ(0.5, effectiveLocalityWeight(1, 1, 2, /*overprovisioning_factor=*/100));
}

TEST(LocalityWrrTest, SchedulerGivesEachLocalityItsWeightShareWithinOnePick) {
  // Weights 1, 3, 0 and 2: over every prefix of picks each locality's count stays within one
  // of its share (earliest deadline first); the weightless one is never picked.
  std::mt19937_64 rng(42);
  LocalityScheduler scheduler({1.0, 3.0, 0.0, 2.0}, rng);
  std::vector<int> counts(4, 0);
  for (int pick = 1; pick <= 600; pick++) {
    std::optional<uint32_t> index = scheduler.pick();
    ASSERT_TRUE(index.has_value());
    counts[*index]++;
    EXPECT_NEAR(counts[0], pick * 1.0 / 6, 1.0) << pick;
    EXPECT_NEAR(counts[1], pick * 3.0 / 6, 1.0) << pick;
    EXPECT_NEAR(counts[3], pick * 2.0 / 6, 1.0) << pick;
  }
  EXPECT_EQ(0, counts[2]);

  // No locality with weight: no pick (the balancer then uses the whole list, as Envoy).
  LocalityScheduler none({0.0, 0.0}, rng);
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.pick().has_value());
}

TEST(LocalityWrrTest, HostSetCarriesEachPrioritysLocalitiesInEnvoysOrder) {
  // Zone "b" first in the list, "a" second: localities are sorted (Envoy's LocalityLess).
  HostSetConstSharedPtr set =
      computeHostSet({localityHost(1, "b", 3), localityHost(2, "b", 3, HealthStatus::Unhealthy),
                      localityHost(3, "a", 1), localityHost(4, "c", 2, HealthStatus::Degraded)},
                     /*panic_threshold=*/50, /*locality_weighted=*/true);
  ASSERT_EQ(1u, set->priorities.size());
  const auto& localities = set->priorities[0].localities;
  ASSERT_EQ(3u, localities.size());
  EXPECT_EQ(1u, localities[0].healthy.size());  // a
  EXPECT_DOUBLE_EQ(1.0, localities[0].healthy_weight);
  EXPECT_DOUBLE_EQ(0.0, localities[0].degraded_weight);
  EXPECT_EQ(1u, localities[1].healthy.size());  // b: one of two hosts healthy
  EXPECT_DOUBLE_EQ(2.1, localities[1].healthy_weight);
  EXPECT_DOUBLE_EQ(0.0, localities[2].healthy_weight);  // c: its only host is degraded
  EXPECT_DOUBLE_EQ(2.0, localities[2].degraded_weight);

  // Without locality_weighted_lb_config nothing is computed.
  EXPECT_TRUE(computeHostSet({localityHost(1, "b", 3)}, 50)->priorities[0].localities.empty());
}

TEST(LocalityWrrTest, PicksFollowLocalityWeightsThenRoundRobinWithin) {
  // Zone a (weight 1): ports 1, 2; zone b (weight 3): ports 3, 4; zone c (no weight): port 5.
  HostSetConstSharedPtr set =
      computeHostSet({localityHost(1, "a", 1), localityHost(2, "a", 1), localityHost(3, "b", 3),
                      localityHost(4, "b", 3), localityHost(5, "c", 0)},
                     /*panic_threshold=*/50, /*locality_weighted=*/true);
  std::map<uint32_t, int> counts = countPicks(set, 800);
  // 1:3 between the zones, within one pick over 800; round robin splits each zone evenly.
  EXPECT_NEAR(200, counts[1] + counts[2], 1);
  EXPECT_NEAR(600, counts[3] + counts[4], 1);
  EXPECT_NEAR(100, counts[1], 1);
  EXPECT_NEAR(300, counts[3], 1);
  EXPECT_EQ(0, counts[5]);  // a locality without weight gets no traffic
}

TEST(LocalityWrrTest, UnhealthyHostsShrinkTheirLocalitysShare) {
  // Zone b loses one of its two hosts: 3 x 0.7 = 2.1 against zone a's 1 (Envoy's numbers).
  HostSetConstSharedPtr set =
      computeHostSet({localityHost(1, "a", 1), localityHost(2, "a", 1), localityHost(3, "b", 3),
                      localityHost(4, "b", 3, HealthStatus::Unhealthy)},
                     /*panic_threshold=*/50, /*locality_weighted=*/true);
  std::map<uint32_t, int> counts = countPicks(set, 3100);
  EXPECT_NEAR(1000, counts[1] + counts[2], 1);
  EXPECT_NEAR(2100, counts[3], 1);
  EXPECT_EQ(0, counts[4]);
}

TEST(LocalityWrrTest, NoWeightedLocalityFallsBackToEveryHealthyHost) {
  // No LocalityLbEndpoints has a weight: Envoy's scheduler is empty and the priority's healthy
  // hosts all serve.
  HostSetConstSharedPtr set =
      computeHostSet({localityHost(1, "a", 0), localityHost(2, "b", 0)}, 50, true);
  std::map<uint32_t, int> counts = countPicks(set, 100);
  EXPECT_EQ(50, counts[1]);
  EXPECT_EQ(50, counts[2]);
}

TEST(LocalityWrrTest, PanicIgnoresLocalities) {
  // One healthy host of four (25% < 50%): panic balances over all hosts of the priority,
  // localities aside, as Envoy's hostSourceToUse().
  HostSetConstSharedPtr set =
      computeHostSet({localityHost(1, "a", 1), localityHost(2, "b", 100, HealthStatus::Unhealthy),
                      localityHost(3, "b", 100, HealthStatus::Unhealthy),
                      localityHost(4, "b", 100, HealthStatus::Unhealthy)},
                     50, true);
  ASSERT_TRUE(set->priorities[0].panic);
  std::map<uint32_t, int> counts = countPicks(set, 400);
  for (uint32_t port = 1; port <= 4; port++) {
    EXPECT_EQ(100, counts[port]) << port;
  }
}

TEST(LocalityWrrTest, EachPriorityHasItsOwnLocalities) {
  // Priority 0 has no healthy host: priority 1 takes the load, split 1:3 by its localities.
  HostSetConstSharedPtr set = computeHostSet({localityHost(1, "a", 5, HealthStatus::Unhealthy, 0),
                                              localityHost(2, "a", 1, HealthStatus::Healthy, 1),
                                              localityHost(3, "b", 3, HealthStatus::Healthy, 1)},
                                             /*panic_threshold=*/0, true);
  std::map<uint32_t, int> counts = countPicks(set, 400);
  EXPECT_EQ(0, counts[1]);
  EXPECT_NEAR(100, counts[2], 1);
  EXPECT_NEAR(300, counts[3], 1);
}

}  // namespace
}  // namespace Proxy::Upstream
