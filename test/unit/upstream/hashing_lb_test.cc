// RING_HASH and MAGLEV: the rings and tables are Envoy's (the expected placements below are the
// ones Envoy 1.40's own tests assert for the same host lists), consistent hashing moves only the
// removed host's keys, and the worker-side balancer follows Envoy's priority, panic and
// no-hash rules.

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/load_balancing_policies/maglev/v3/maglev.pb.h"
#include "envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.pb.h"
#include "gtest/gtest.h"
#include "proxy/common/hash_util.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "proxy/upstream/maglev_lb.h"
#include "proxy/upstream/ring_hash_lb.h"
#include "proxy/upstream/thread_aware_lb_impl.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {
namespace {

// A request whose hash policy produced `hash` (or nothing).
class FixedHashContext : public LoadBalancerContext {
 public:
  explicit FixedHashContext(std::optional<uint64_t> hash) : hash_(hash) {}
  std::optional<uint64_t> computeHashKey() override {
    calls++;
    return hash_;
  }
  int calls = 0;

 private:
  std::optional<uint64_t> hash_;
};

// The snapshot of `hosts` with the cluster manager's structures for `policy`.
HostSetConstSharedPtr hashedSet(const HostVector& hosts, LbPolicy policy,
                                const HashLbConfig& config, HashingLbStats* stats = nullptr,
                                uint32_t panic_threshold = 50) {
  std::shared_ptr<HostSet> set = computeHostSet(hosts, panic_threshold);
  buildHashingLoadBalancers(*set, policy, config, stats);
  return set;
}

HostVector hostsOnPorts(uint32_t first, uint32_t count) {
  HostVector hosts;
  for (uint32_t port = first; port < first + count; port++) {
    hosts.push_back(makeHost(port));
  }
  return hosts;
}

uint32_t portFor(LoadBalancer& lb, std::optional<uint64_t> hash, uint32_t attempt = 0) {
  FixedHashContext context(hash);
  HostConstSharedPtr host = lb.chooseHostFor(context, attempt);
  return host == nullptr ? 0 : host->address().port();
}

TEST(HashUtilTest, XxHash64IsDebiansLibxxhash) {
  // The reference values of XXH64 (seed 0): the empty string and "a".
  EXPECT_EQ(0xef46db3751d8e999ULL, HashUtil::xxHash64(""));
  EXPECT_EQ(0xd24ec4f1a98c6e5bULL, HashUtil::xxHash64("a"));
  // Several values chain the seed (Envoy's span form): one value is the plain hash.
  EXPECT_EQ(HashUtil::xxHash64("a"), HashUtil::xxHash64(std::vector<std::string_view>{"a"}));
  EXPECT_EQ(HashUtil::xxHash64("b", HashUtil::xxHash64("a")),
            HashUtil::xxHash64(std::vector<std::string_view>{"a", "b"}));
}

TEST(RingHashTableTest, SixHostsMinimumRingTwelveIsEnvoysRing) {
  // Envoy's RingHashLoadBalancerTest.Basic: hosts 127.0.0.1:90..95, minimum_ring_size 12, two
  // entries per host. Its ring, sorted: :94 833437586790550860, :92 928266305478181108, :90
  // 1033482794131418490, :95 3551244743356806947, :93 3851675632748031481, ...
  Stats::Store store;
  HashingLbStats stats(Stats::Scope(store, "cluster.c."), LbPolicy::RingHash);
  HashLbConfig config;
  config.min_ring_size = 12;
  HostSetConstSharedPtr set = hashedSet(hostsOnPorts(90, 6), LbPolicy::RingHash, config, &stats);
  ASSERT_EQ(1u, set->hashing.size());
  const auto& ring = static_cast<const RingHashTable&>(*set->hashing[0]).entries();
  ASSERT_EQ(12u, ring.size());
  EXPECT_EQ(833437586790550860ULL, ring[0].hash);
  EXPECT_EQ(94u, ring[0].host->address().port());
  EXPECT_EQ(3551244743356806947ULL, ring[3].hash);
  EXPECT_EQ(95u, ring[3].host->address().port());
  EXPECT_EQ(16117243373044804889ULL, ring[11].hash);
  EXPECT_EQ(90u, ring[11].host->address().port());
  EXPECT_EQ(12, store.gauge("cluster.c.ring_hash_lb.size").value());
  EXPECT_EQ(2, store.gauge("cluster.c.ring_hash_lb.min_hashes_per_host").value());
  EXPECT_EQ(2, store.gauge("cluster.c.ring_hash_lb.max_hashes_per_host").value());

  // Envoy's picks: 0 and the largest hash wrap to the first entry (:94); an entry's own hash is
  // that entry's host, one more is the next entry's.
  ThreadAwareLoadBalancer lb(set, /*seed=*/1, Stats::CounterRef());
  EXPECT_EQ(94u, portFor(lb, 0));
  EXPECT_EQ(94u, portFor(lb, UINT64_MAX));
  EXPECT_EQ(95u, portFor(lb, 3551244743356806947ULL));
  EXPECT_EQ(93u, portFor(lb, 3551244743356806948ULL));
  EXPECT_EQ(90u, portFor(lb, 16117243373044804880ULL));
  // A retry attempt steps along the ring: the entry after :95's is :93's.
  EXPECT_EQ(93u, portFor(lb, 3551244743356806947ULL, /*attempt=*/1));
}

TEST(RingHashTableTest, Murmur2IsEnvoysRing) {
  // Envoy's RingHashLoadBalancerTest.BasicWithMurmur2: hosts :80..85; the first entry is :85 at
  // 1358027074129602068.
  HashLbConfig config;
  config.min_ring_size = 12;
  config.hash_function = HashLbConfig::HashFunction::MurmurHash2;
  HostSetConstSharedPtr set = hashedSet(hostsOnPorts(80, 6), LbPolicy::RingHash, config);
  const auto& ring = static_cast<const RingHashTable&>(*set->hashing[0]).entries();
  ASSERT_EQ(12u, ring.size());
  EXPECT_EQ(1358027074129602068ULL, ring[0].hash);
  ThreadAwareLoadBalancer lb(set, 1, Stats::CounterRef());
  EXPECT_EQ(85u, portFor(lb, 0));
  EXPECT_EQ(85u, portFor(lb, UINT64_MAX));
  EXPECT_EQ(85u, portFor(lb, 1358027074129602068ULL));
  EXPECT_EQ(83u, portFor(lb, 1358027074129602069ULL));
  EXPECT_EQ(82u, portFor(lb, 10150910876324007730ULL));
}

TEST(RingHashTableTest, WeightsScaleTheEntries) {
  // Weights 1 and 3 with the default minimum of 1024 entries: the light host gets its quarter
  // (256 entries), the heavy one three times as many.
  HostSetConstSharedPtr set =
      hashedSet({makeHost(1001, 1), makeHost(1002, 3)}, LbPolicy::RingHash, HashLbConfig{});
  const auto& ring = static_cast<const RingHashTable&>(*set->hashing[0]);
  EXPECT_EQ(1024u, ring.entries().size());
  EXPECT_EQ(256u, ring.minHashesPerHost());
  EXPECT_EQ(768u, ring.maxHashesPerHost());
  // Weights 1 and 1000: the light host gets a whole number of entries (ceil(1024 / 1001) = 2),
  // the heavy one 1000 times as many: the ring grows past the minimum.
  set = hashedSet({makeHost(1001, 1), makeHost(1002, 1000)}, LbPolicy::RingHash, HashLbConfig{});
  const auto& lopsided = static_cast<const RingHashTable&>(*set->hashing[0]);
  EXPECT_EQ(2002u, lopsided.entries().size());
  EXPECT_EQ(2u, lopsided.minHashesPerHost());
  EXPECT_EQ(2000u, lopsided.maxHashesPerHost());
  // ... and the maximum caps the ring.
  HashLbConfig capped;
  capped.max_ring_size = 100;
  set = hashedSet({makeHost(1001, 1), makeHost(1002, 3)}, LbPolicy::RingHash, capped);
  EXPECT_EQ(100u, static_cast<const RingHashTable&>(*set->hashing[0]).entries().size());
}

TEST(MaglevTableTest, SixHostsTableSevenIsEnvoysTable) {
  // Envoy's MaglevLoadBalancerTest.Basic: hosts :90..95, table size 7; slot i holds
  // :92 :94 :90 :91 :95 :90 :93, and hash h picks slot h % 7.
  Stats::Store store;
  HashingLbStats stats(Stats::Scope(store, "cluster.c."), LbPolicy::Maglev);
  HashLbConfig config;
  config.maglev_table_size = 7;
  HostSetConstSharedPtr set = hashedSet(hostsOnPorts(90, 6), LbPolicy::Maglev, config, &stats);
  ThreadAwareLoadBalancer lb(set, 1, Stats::CounterRef());
  const std::vector<uint32_t> expected = {92, 94, 90, 91, 95, 90, 93};
  for (uint64_t h = 0; h < 3 * expected.size(); h++) {
    EXPECT_EQ(expected[h % expected.size()], portFor(lb, h)) << h;
  }
  EXPECT_EQ(1, store.gauge("cluster.c.maglev_lb.min_entries_per_host").value());
  EXPECT_EQ(2, store.gauge("cluster.c.maglev_lb.max_entries_per_host").value());
  // Retry attempts flip the hash (Envoy's BasicWithRetryHostPredicate): 10 -> :91, then :90,
  // then :95.
  EXPECT_EQ(91u, portFor(lb, 10, 0));
  EXPECT_EQ(90u, portFor(lb, 10, 1));
  EXPECT_EQ(95u, portFor(lb, 10, 2));
  // The host order of the list does not matter (Envoy sorts by address first).
  HostVector reversed = hostsOnPorts(90, 6);
  std::reverse(reversed.begin(), reversed.end());
  ThreadAwareLoadBalancer lb2(hashedSet(reversed, LbPolicy::Maglev, config), 1,
                              Stats::CounterRef());
  for (uint64_t h = 0; h < expected.size(); h++) {
    EXPECT_EQ(expected[h], portFor(lb2, h)) << h;
  }
}

TEST(MaglevTableTest, WeightedIsEnvoysTable) {
  // Envoy's MaglevLoadBalancerTest.Weighted: :90 weight 1, :91 weight 2, table 17.
  HashLbConfig config;
  config.maglev_table_size = 17;
  HostSetConstSharedPtr set =
      hashedSet({makeHost(90, 1), makeHost(91, 2)}, LbPolicy::Maglev, config);
  const auto& table = static_cast<const MaglevTable&>(*set->hashing[0]);
  EXPECT_EQ(6u, table.minEntriesPerHost());
  EXPECT_EQ(11u, table.maxEntriesPerHost());
  ThreadAwareLoadBalancer lb(set, 1, Stats::CounterRef());
  const std::vector<uint32_t> expected = {91, 90, 90, 91, 90, 91, 91, 90, 91,
                                          91, 91, 91, 91, 90, 91, 90, 91};
  for (uint64_t h = 0; h < expected.size(); h++) {
    EXPECT_EQ(expected[h], portFor(lb, h)) << h;
  }
}

TEST(MaglevTableTest, TableSizeMustBePrime) {
  EXPECT_TRUE(isPrime(65537));
  EXPECT_TRUE(isPrime(5000011));
  EXPECT_FALSE(isPrime(65536));
  EXPECT_FALSE(isPrime(1));
}

// Consistent hashing: with N hosts, removing one moves only the keys it had (about 1/N of them);
// every other key stays where it was.
void expectRemovalMovesOnlyTheRemovedHostsKeys(LbPolicy policy) {
  constexpr uint32_t kHosts = 8;
  constexpr int kKeys = 4000;
  HostVector hosts = hostsOnPorts(2000, kHosts);
  ThreadAwareLoadBalancer before(hashedSet(hosts, policy, HashLbConfig{}), 1, Stats::CounterRef());
  const HostConstSharedPtr removed = hosts[3];
  hosts.erase(hosts.begin() + 3);
  ThreadAwareLoadBalancer after(hashedSet(hosts, policy, HashLbConfig{}), 1, Stats::CounterRef());

  int moved = 0;
  int on_removed = 0;
  for (int k = 0; k < kKeys; k++) {
    const uint64_t hash = HashUtil::xxHash64(absl::StrCat("user-", k));
    const uint32_t old_port = portFor(before, hash);
    const uint32_t new_port = portFor(after, hash);
    if (old_port == removed->address().port()) {
      on_removed++;
      continue;  // had to move
    }
    if (old_port != new_port) {
      moved++;
    }
  }
  // The removed host had about 1/8 of the keys. Maglev keeps (almost) every other key in
  // place; Envoy's ring gives each host ceil(1024 / N) entries, so with one host fewer each
  // survivor gains entries (128 -> 147) and those take a few more keys (about 8% here), still
  // far from the 7/8 that modulo hashing would move.
  EXPECT_NEAR(kKeys / kHosts, on_removed, kKeys / kHosts / 2) << static_cast<int>(policy);
  EXPECT_LE(moved, policy == LbPolicy::Maglev ? kKeys / 100 : kKeys / 10)
      << static_cast<int>(policy);
}

TEST(HashingLoadBalancerTest, RingHashRemovalMovesOnlyAboutOneNth) {
  expectRemovalMovesOnlyTheRemovedHostsKeys(LbPolicy::RingHash);
}

TEST(HashingLoadBalancerTest, MaglevRemovalMovesOnlyAboutOneNth) {
  expectRemovalMovesOnlyTheRemovedHostsKeys(LbPolicy::Maglev);
}

TEST(HashingLoadBalancerTest, SpreadsKeysEvenly) {
  // 4 hosts, 8000 keys: each host gets its quarter within 15%.
  for (LbPolicy policy : {LbPolicy::RingHash, LbPolicy::Maglev}) {
    ThreadAwareLoadBalancer lb(hashedSet(hostsOnPorts(3000, 4), policy, HashLbConfig{}), 1,
                               Stats::CounterRef());
    std::map<uint32_t, int> counts;
    for (int k = 0; k < 8000; k++) {
      counts[portFor(lb, HashUtil::xxHash64(absl::StrCat("k", k)))]++;
    }
    ASSERT_EQ(4u, counts.size()) << static_cast<int>(policy);
    for (const auto& [port, count] : counts) {
      EXPECT_NEAR(2000, count, 300) << static_cast<int>(policy) << " port " << port;
    }
  }
}

TEST(HashingLoadBalancerTest, NoHashKeyPicksAtRandom) {
  // Without a hash (no policy, or none found its input) a random value is hashed instead, as in
  // Envoy: picks spread over every host, and chooseHost() does the same.
  ThreadAwareLoadBalancer lb(hashedSet(hostsOnPorts(4000, 3), LbPolicy::RingHash, HashLbConfig{}),
                             /*seed=*/5, Stats::CounterRef());
  std::set<uint32_t> seen;
  FixedHashContext none(std::nullopt);
  for (int i = 0; i < 200; i++) {
    seen.insert(lb.chooseHostFor(none, 0)->address().port());
    seen.insert(lb.chooseHost()->address().port());
  }
  EXPECT_EQ((std::set<uint32_t>{4000, 4001, 4002}), seen);
  EXPECT_EQ(200, none.calls);
}

TEST(HashingLoadBalancerTest, UnhealthyHostsLeaveTheRingUntilPanic) {
  // Two healthy hosts of three: the ring is over the healthy ones only.
  HostVector hosts = {makeHost(5000), makeHost(5001), makeHost(5002, 1, HealthStatus::Unhealthy)};
  Stats::Counter panic("lb_healthy_panic");
  ThreadAwareLoadBalancer lb(hashedSet(hosts, LbPolicy::Maglev, HashLbConfig{}), 1, panic);
  std::set<uint32_t> seen;
  for (uint64_t h = 0; h < 500; h++) {
    seen.insert(portFor(lb, h * 7919));
  }
  EXPECT_EQ((std::set<uint32_t>{5000, 5001}), seen);
  EXPECT_EQ(0u, panic.value());

  // One healthy of three is below the 50% panic threshold: the table is over all three, and
  // each pick counts as a panic pick.
  hosts[1] = makeHost(5001, 1, HealthStatus::Unhealthy);
  ThreadAwareLoadBalancer in_panic(hashedSet(hosts, LbPolicy::Maglev, HashLbConfig{}), 1, panic);
  seen.clear();
  for (uint64_t h = 0; h < 500; h++) {
    seen.insert(portFor(in_panic, h * 7919));
  }
  EXPECT_EQ((std::set<uint32_t>{5000, 5001, 5002}), seen);
  EXPECT_EQ(500u, panic.value());
}

TEST(HashingLoadBalancerTest, PriorityChosenByTheHash) {
  // Priority 0 has one healthy host of two (70% of the load), priority 1 one healthy host
  // (30%). The hash picks the priority: h % 100 + 1 <= 70 stays in priority 0, as Envoy.
  HostVector hosts = {makeHost(6000, 1, HealthStatus::Healthy, 0),
                      makeHost(6001, 1, HealthStatus::Unhealthy, 0),
                      makeHost(7000, 1, HealthStatus::Healthy, 1)};
  ThreadAwareLoadBalancer lb(hashedSet(hosts, LbPolicy::RingHash, HashLbConfig{}), 1,
                             Stats::CounterRef());
  EXPECT_EQ(6000u, portFor(lb, 69));   // 70
  EXPECT_EQ(7000u, portFor(lb, 70));   // 71
  EXPECT_EQ(6000u, portFor(lb, 100));  // 1
}

TEST(HashingLoadBalancerTest, EmptyAndOtherPoliciesHaveNoStructure) {
  // No host: no pick (and no crash), through the factory too.
  LoadBalancerPtr lb =
      createLoadBalancer(LbPolicy::Maglev, 2, hashedSet({}, LbPolicy::Maglev, HashLbConfig{}), 1);
  EXPECT_EQ(nullptr, lb->chooseHost());
  ThreadAwareLoadBalancer empty(hashedSet({}, LbPolicy::RingHash, HashLbConfig{}), 1,
                                Stats::CounterRef());
  EXPECT_EQ(0u, portFor(empty, 1));
  // Other policies carry no ring or table in their snapshots.
  EXPECT_TRUE(hashedSet(hostsOnPorts(1, 2), LbPolicy::RoundRobin, HashLbConfig{})->hashing.empty());
}

// ---- configuration ----

envoy::config::cluster::v3::Cluster clusterConfig() {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name("c");
  cluster.set_type(envoy::config::cluster::v3::Cluster::STATIC);
  return cluster;
}

std::string configError(const envoy::config::cluster::v3::Cluster& cluster) {
  Stats::Store store;
  return std::string(ClusterInfoImpl::create(cluster, store).status().message());
}

TEST(HashingLbConfigTest, LbPolicyFormWithEnvoysDefaultsLimitsAndMessages) {
  using envoy::config::cluster::v3::Cluster;
  Stats::Store store;
  // RING_HASH with nothing else: Envoy's defaults.
  Cluster cluster = clusterConfig();
  cluster.set_lb_policy(Cluster::RING_HASH);
  auto info = ClusterInfoImpl::create(cluster, store);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(LbPolicy::RingHash, (*info)->lbPolicy());
  EXPECT_EQ(1024u, (*info)->hashLbConfig().min_ring_size);
  EXPECT_EQ(8388608u, (*info)->hashLbConfig().max_ring_size);
  EXPECT_EQ(HashLbConfig::HashFunction::XxHash, (*info)->hashLbConfig().hash_function);

  // Bounds and their order, with Envoy's message.
  cluster.mutable_ring_hash_lb_config()->mutable_minimum_ring_size()->set_value(20);
  cluster.mutable_ring_hash_lb_config()->mutable_maximum_ring_size()->set_value(10);
  EXPECT_EQ(
      "cluster 'c': ring_hash_lb_config: ring hash: minimum_ring_size (20) > "
      "maximum_ring_size (10)",
      configError(cluster));
  cluster.mutable_ring_hash_lb_config()->mutable_maximum_ring_size()->set_value(8388609);
  EXPECT_EQ(
      "cluster 'c': ring_hash_lb_config.maximum_ring_size: must be less than or equal to "
      "8388608",
      configError(cluster));

  // MAGLEV: 65537 by default; the table size must be prime.
  cluster = clusterConfig();
  cluster.set_lb_policy(Cluster::MAGLEV);
  info = ClusterInfoImpl::create(cluster, store);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(65537u, (*info)->hashLbConfig().maglev_table_size);
  cluster.mutable_maglev_lb_config()->mutable_table_size()->set_value(65536);
  EXPECT_EQ(
      "cluster 'c': maglev_lb_config.table_size: The table size of maglev must be prime "
      "number",
      configError(cluster));
  cluster.mutable_maglev_lb_config()->mutable_table_size()->set_value(5000101);
  EXPECT_EQ("cluster 'c': maglev_lb_config.table_size: must be less than or equal to 5000011",
            configError(cluster));
}

TEST(HashingLbConfigTest, TypedLoadBalancingPolicyForms) {
  using envoy::extensions::load_balancing_policies::maglev::v3::Maglev;
  using envoy::extensions::load_balancing_policies::ring_hash::v3::RingHash;
  Stats::Store store;
  // envoy.load_balancing_policies.ring_hash: its own sizes and hash function.
  RingHash ring;
  ring.mutable_minimum_ring_size()->set_value(12);
  ring.set_hash_function(RingHash::MURMUR_HASH_2);
  envoy::config::cluster::v3::Cluster cluster = clusterConfig();
  auto* policy = cluster.mutable_load_balancing_policy()->add_policies();
  policy->mutable_typed_extension_config()->set_name("envoy.load_balancing_policies.ring_hash");
  policy->mutable_typed_extension_config()->mutable_typed_config()->PackFrom(ring);
  auto info = ClusterInfoImpl::create(cluster, store);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(LbPolicy::RingHash, (*info)->lbPolicy());
  EXPECT_EQ(12u, (*info)->hashLbConfig().min_ring_size);
  EXPECT_EQ(HashLbConfig::HashFunction::MurmurHash2, (*info)->hashLbConfig().hash_function);

  ring.mutable_minimum_ring_size()->set_value(0);
  policy->mutable_typed_extension_config()->mutable_typed_config()->PackFrom(ring);
  EXPECT_EQ(
      "cluster 'c': load_balancing_policy.policies[0].typed_extension_config.typed_config."
      "minimum_ring_size: must be greater than or equal to 1",
      configError(cluster));

  // envoy.load_balancing_policies.maglev.
  Maglev maglev;
  maglev.mutable_table_size()->set_value(7);
  policy->mutable_typed_extension_config()->set_name("envoy.load_balancing_policies.maglev");
  policy->mutable_typed_extension_config()->mutable_typed_config()->PackFrom(maglev);
  info = ClusterInfoImpl::create(cluster, store);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(LbPolicy::Maglev, (*info)->lbPolicy());
  EXPECT_EQ(7u, (*info)->hashLbConfig().maglev_table_size);
  maglev.mutable_table_size()->set_value(9);
  policy->mutable_typed_extension_config()->mutable_typed_config()->PackFrom(maglev);
  EXPECT_EQ(
      "cluster 'c': load_balancing_policy.policies[0].typed_extension_config.typed_config."
      "table_size: The table size of maglev must be prime number",
      configError(cluster));
}

}  // namespace
}  // namespace Proxy::Upstream
