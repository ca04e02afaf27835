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
  static_assert(sizeof(Counter) <= 32, "a Store counter is a value, two part pointers, a link");
  static_assert(sizeof(Gauge) <= 32, "a Store gauge is a value, two part pointers, a link");
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

}  // namespace
}  // namespace Proxy::Stats
