#include <atomic>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/stats/stats.h"

namespace Proxy::Stats {
namespace {

TEST(StatsTest, CountersAndGaugesKeepTheirIdentity) {
  Store store;
  // The same name always yields the same stat, so hot paths can keep a reference.
  Counter& a = store.counter("cluster.service1.upstream_rq_total");
  Counter& b = store.counter("cluster.service1.upstream_rq_total");
  EXPECT_EQ(&a, &b);
  a.inc();
  b.add(2);
  EXPECT_EQ(a.value(), 3u);

  Gauge& g = store.gauge("server.live");
  g.set(1);
  g.inc();
  g.dec();
  EXPECT_EQ(g.value(), 1);
}

TEST(StatsTest, ScopesPrefixNames) {
  Store store;
  Scope cluster(store, "cluster.service1.");
  cluster.counter("upstream_cx_total").inc();
  cluster.child("worker_0").gauge("downstream_cx_active").set(4);
  EXPECT_EQ(store.counter("cluster.service1.upstream_cx_total").value(), 1u);
  EXPECT_EQ(store.gauge("cluster.service1.worker_0.downstream_cx_active").value(), 4);
}

TEST(StatsTest, RendersEnvoyTextAndPrometheusFormats) {
  Store store;
  store.counter("http.ingress.downstream_rq_total").add(7);
  store.gauge("server.live").set(1);
  store.textReadout("control_plane.identifier").set("cp-1");

  // Envoy's /stats: "name: value" lines in name order; text readouts quoted.
  EXPECT_EQ(store.renderText(),
            "control_plane.identifier: \"cp-1\"\n"
            "http.ingress.downstream_rq_total: 7\n"
            "server.live: 1\n");
  EXPECT_EQ(store.renderPrometheus(),
            "# TYPE envoy_http_ingress_downstream_rq_total counter\n"
            "envoy_http_ingress_downstream_rq_total 7\n"
            "# TYPE envoy_server_live gauge\n"
            "envoy_server_live 1\n");
}

TEST(StatsTest, NamesAreKeptAsInternedPartsAndListedInNameOrder) {
  // A name is two interned parts (up to the last '.', and the rest): a cluster's ~40 stats
  // share "cluster.<name>." and every cluster shares "upstream_rq_total" (issue 14).
  static_assert(sizeof(Counter) <= 40,
                "a Store counter is a value, its cell, two part pointers, a link");
  static_assert(sizeof(Gauge) <= 40,
                "a Store gauge is a value, its cell, two part pointers, a link");
  Store store;
  Counter& a = store.counter("cluster.a.upstream_rq_total");
  Counter& b = store.counter("cluster.b.upstream_rq_total");
  EXPECT_EQ(a.statName().suffix(), b.statName().suffix());
  EXPECT_EQ(a.statName().prefix(),
            store.counter("cluster.a.upstream_cx_total").statName().prefix());
  // Any split finds the same stat; a name without a dot is all suffix.
  EXPECT_EQ(&Scope(store, "cluster.").counter("a.upstream_rq_total"), &a);
  store.counter("uptime").add(3);
  store.counter("cluster.a.b.c").inc();
  std::vector<std::string> names;
  store.forEachCounter([&](const Counter& c) { names.push_back(c.name()); });
  EXPECT_EQ(names, (std::vector<std::string>{"cluster.a.b.c", "cluster.a.upstream_cx_total",
                                             "cluster.a.upstream_rq_total",
                                             "cluster.b.upstream_rq_total", "uptime"}));
  // A stat made outside a Store keeps its own name.
  Counter standalone("lb_healthy_panic");
  EXPECT_EQ(standalone.name(), "lb_healthy_panic");
}

// A block's table as a component defines it (ClusterStats's is PROXY_ALL_CLUSTER_STATS).
#define TEST_BLOCK_STATS(COUNTER, GAUGE) \
  COUNTER(upstream_rq_total)             \
  GAUGE(upstream_cx_active)              \
  COUNTER(membership_change)
constexpr StatSpec kTestSpecs[] = {
    TEST_BLOCK_STATS(PROXY_STAT_SPEC_COUNTER, PROXY_STAT_SPEC_GAUGE)};
constexpr StatTable kTestTable{kTestSpecs, std::size(kTestSpecs)};

// What ClusterStats looks like: one pointer, accessors over the block's cells.
class TestBlockStats {
 public:
  TestBlockStats(Store& store, std::string_view prefix) : cells_(store.block(prefix, kTestTable)) {}
  TEST_BLOCK_STATS(PROXY_STAT_COUNTER_ACCESSOR, PROXY_STAT_GAUGE_ACCESSOR)

 private:
  enum : size_t { TEST_BLOCK_STATS(PROXY_STAT_INDEX, PROXY_STAT_INDEX) };
  StatCell* const cells_;
};

TEST(StatsTest, BlockStatsAreListedAndRenderedAmongTheOthersInNameOrder) {
  Store store;
  // Two blocks, a Store stat sorting between their names, and one after them all.
  TestBlockStats b(store, "cluster.b.");
  TestBlockStats a(store, "cluster.a.");
  store.counter("cluster.a.z_total").add(9);
  store.counter("cluster.a.lb_healthy_panic").add(5);
  a.upstream_rq_total().add(3);
  a.upstream_cx_active().inc();
  a.upstream_cx_active().inc();
  b.membership_change().inc();
  b.upstream_cx_active().dec();  // a gauge may go below zero
  static_assert(sizeof(TestBlockStats) == sizeof(void*), "a block's stats are one pointer");

  std::vector<std::string> counters;
  store.forEachCounter(
      [&](const Counter& c) { counters.push_back(c.name() + "=" + std::to_string(c.value())); });
  EXPECT_EQ(counters, (std::vector<std::string>{
                          "cluster.a.lb_healthy_panic=5", "cluster.a.membership_change=0",
                          "cluster.a.upstream_rq_total=3", "cluster.a.z_total=9",
                          "cluster.b.membership_change=1", "cluster.b.upstream_rq_total=0"}));
  std::vector<std::string> gauges;
  store.forEachGauge(
      [&](const Gauge& g) { gauges.push_back(g.name() + "=" + std::to_string(g.value())); });
  EXPECT_EQ(gauges, (std::vector<std::string>{"cluster.a.upstream_cx_active=2",
                                              "cluster.b.upstream_cx_active=-1"}));

  EXPECT_EQ(store.renderText(),
            "cluster.a.lb_healthy_panic: 5\n"
            "cluster.a.membership_change: 0\n"
            "cluster.a.upstream_cx_active: 2\n"
            "cluster.a.upstream_rq_total: 3\n"
            "cluster.a.z_total: 9\n"
            "cluster.b.membership_change: 1\n"
            "cluster.b.upstream_cx_active: -1\n"
            "cluster.b.upstream_rq_total: 0\n");
  const std::string prometheus = store.renderPrometheus();
  EXPECT_NE(prometheus.find("# TYPE envoy_cluster_a_upstream_rq_total counter\n"
                            "envoy_cluster_a_upstream_rq_total 3\n"
                            "# TYPE envoy_cluster_a_z_total counter\n"),
            std::string::npos)
      << prometheus;
  EXPECT_NE(prometheus.find("# TYPE envoy_cluster_b_upstream_cx_active gauge\n"
                            "envoy_cluster_b_upstream_cx_active -1\n"),
            std::string::npos)
      << prometheus;
}

TEST(StatsTest, ABlockStatLookedUpByNameIsTheBlocksCell) {
  Store store;
  TestBlockStats stats(store, "cluster.a.");
  stats.upstream_rq_total().add(2);
  // The name finds one Store object over the block's cell: both sides see each other's updates.
  Counter& by_name = store.counter("cluster.a.upstream_rq_total");
  EXPECT_EQ(&by_name, &store.counter("cluster.a.upstream_rq_total"));
  EXPECT_EQ(&by_name, &Scope(store, "cluster.").counter("a.upstream_rq_total"));
  EXPECT_EQ(by_name.value(), 2u);
  by_name.inc();
  EXPECT_EQ(stats.upstream_rq_total().value(), 3u);
  Gauge& active = store.gauge("cluster.a.upstream_cx_active");
  active.set(7);
  EXPECT_EQ(stats.upstream_cx_active().value(), 7);
  // A block's gauge name asked for as a counter is a Store counter of its own, as for any name
  // used with both kinds.
  Counter& other_kind = store.counter("cluster.a.upstream_cx_active");
  other_kind.inc();
  EXPECT_EQ(stats.upstream_cx_active().value(), 7);
  // Looking a stat up does not list it twice.
  int listed = 0;
  store.forEachCounter([&](const Counter& c) {
    if (c.name() == "cluster.a.upstream_rq_total") {
      listed++;
      EXPECT_EQ(c.value(), 3u);
    }
  });
  EXPECT_EQ(listed, 1);
}

TEST(StatsTest, ABlockReAddedUnderItsPrefixKeepsItsValues) {
  Store store;
  // A cluster's stats, then the cluster updated or removed and added again under its name.
  auto first = std::make_unique<TestBlockStats>(store, "cluster.a.");
  first->upstream_rq_total().add(4);
  first->upstream_cx_active().set(2);
  first.reset();
  TestBlockStats again(store, "cluster.a.");
  EXPECT_EQ(again.upstream_rq_total().value(), 4u);
  EXPECT_EQ(again.upstream_cx_active().value(), 2);
  again.upstream_rq_total().inc();
  EXPECT_EQ(store.counter("cluster.a.upstream_rq_total").value(), 5u);
  // Another prefix is another block.
  TestBlockStats b(store, "cluster.b.");
  EXPECT_EQ(b.upstream_rq_total().value(), 0u);
  EXPECT_EQ(store.renderText(),
            "cluster.a.membership_change: 0\n"
            "cluster.a.upstream_cx_active: 2\n"
            "cluster.a.upstream_rq_total: 5\n"
            "cluster.b.membership_change: 0\n"
            "cluster.b.upstream_cx_active: 0\n"
            "cluster.b.upstream_rq_total: 0\n");
}

TEST(StatsTest, AStatLookedUpBeforeItsBlockMovesIntoIt) {
  Store store;
  // A name read (and even counted) before its cluster existed.
  Counter& early = store.counter("cluster.a.upstream_rq_total");
  early.add(6);
  Gauge& early_gauge = store.gauge("cluster.a.upstream_cx_active");
  early_gauge.set(-3);
  TestBlockStats stats(store, "cluster.a.");
  // The block starts from those values and the early references now update the block.
  EXPECT_EQ(stats.upstream_rq_total().value(), 6u);
  EXPECT_EQ(stats.upstream_cx_active().value(), -3);
  early.inc();
  stats.upstream_rq_total().inc();
  EXPECT_EQ(early.value(), 8u);
  EXPECT_EQ(stats.upstream_rq_total().value(), 8u);
  early_gauge.inc();
  EXPECT_EQ(stats.upstream_cx_active().value(), -2);
  EXPECT_EQ(&store.counter("cluster.a.upstream_rq_total"), &early);
  EXPECT_EQ(store.renderText(),
            "cluster.a.membership_change: 0\n"
            "cluster.a.upstream_cx_active: -2\n"
            "cluster.a.upstream_rq_total: 8\n");
}

TEST(StatsTest, ConcurrentUpdatesAreNotLost) {
  Store store;
  Counter& counter = store.counter("listener.total");
  Gauge& gauge = store.gauge("listener.active");
  // Workers update stats with relaxed atomics and no lock; every increment must count.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; i++) {
        counter.inc();
        gauge.inc();
        gauge.dec();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(counter.value(), 400000u);
  EXPECT_EQ(gauge.value(), 0);
}

TEST(StatsTest, ConcurrentBlockUpdatesAreNotLostWhileAdminReads) {
  Store store;
  TestBlockStats stats(store, "cluster.a.");
  std::atomic<bool> done{false};
  // Workers update the block's cells with no lock while admin lists and renders the Store and
  // another cluster's block is created.
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; i++) {
        stats.upstream_rq_total().inc();
        stats.upstream_cx_active().inc();
        stats.upstream_cx_active().dec();
      }
    });
  }
  std::thread admin([&] {
    int round = 0;
    while (!done.load()) {
      EXPECT_FALSE(store.renderText().empty());
      TestBlockStats other(store, "cluster.other" + std::to_string(round++) + ".");
      other.membership_change().inc();
    }
  });
  for (auto& t : threads) {
    t.join();
  }
  done = true;
  admin.join();
  EXPECT_EQ(store.counter("cluster.a.upstream_rq_total").value(), 300000u);
  EXPECT_EQ(stats.upstream_cx_active().value(), 0);
}

}  // namespace
}  // namespace Proxy::Stats
