// Applying a large cluster configuration, and what one small change of it costs.
//
//   xds_cluster_scale_bench [--clusters 10000] [--endpoints 100000] [--big 10000]
//                           [--updates 50] [--concurrency 2] [--client-rate-limit 0|1]
//
// The real proxy (--concurrency N, workers running, one listener) gets, over ADS from an
// in-process management server, --clusters EDS clusters in one CDS response and their
// ClusterLoadAssignments, --endpoints endpoints in all, in one EDS response. Cluster "c0" has
// --big endpoints; the last cluster, "probe", has one endpoint, a real upstream that the
// listener's route "/" points at; the rest share the remaining endpoints (addresses in
// 10.0.0.0/8 that no request ever goes to).
//
// Phase 1 prints the time from sending CDS to its ACK, to the EDS request (the proxy asks for
// every assignment), from sending EDS to its ACK, and to the moment the last worker serves "/"
// through "probe" (the EDS response's last assignment: a worker applies updates in order, so
// it then has every cluster); the proxy's CPU time for all of it and its VmHWM/VmRSS.
//
// Phase 2 changes one endpoint of "c0" --updates times (an EDS response carrying only c0's
// assignment), and then the same for a 9-endpoint cluster. Each update is followed on the
// same ADS stream by an RDS update of a direct_response route ("/barrier"); the stream is
// processed in order and each worker runs what the main thread posts in order, so once a
// worker answers "/barrier" with the new body it has applied the EDS update too. Printed: send
// -> ACK (main thread), send -> last worker past it, and the proxy's CPU time per update
// (all threads, including the barrier's small RDS update and the polling requests). The cost
// must follow the size of the changed cluster, not of the whole configuration.

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "test/bench/xds/bench_util.h"
#include "test/integration/fake_upstream.h"

namespace Proxy::XdsBench {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::route::v3::RouteConfiguration;
using XdsIntegration::kClusterType;
using XdsIntegration::kEndpointType;
using XdsIntegration::kListenerType;
using XdsIntegration::kRouteType;

// "/barrier" answers `barrier_body`; everything else goes to cluster "probe".
RouteConfiguration routes(const std::string& barrier_body) {
  RouteConfiguration config;
  config.set_name("routes");
  auto* vhost = config.add_virtual_hosts();
  vhost->set_name("all");
  vhost->add_domains("*");
  auto* barrier = vhost->add_routes();
  barrier->mutable_match()->set_prefix("/barrier");
  barrier->mutable_direct_response()->set_status(200);
  barrier->mutable_direct_response()->mutable_body()->set_inline_string(barrier_body);
  auto* probe = vhost->add_routes();
  probe->mutable_match()->set_prefix("/");
  probe->mutable_route()->set_cluster("probe");
  return config;
}

// Endpoint number `n` of the whole configuration: a distinct address nobody connects to.
void setEndpoint(envoy::config::endpoint::v3::LbEndpoint& lb_endpoint, uint32_t n) {
  auto* address = lb_endpoint.mutable_endpoint()->mutable_address()->mutable_socket_address();
  address->set_address(absl::StrFormat("10.%d.%d.%d", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff));
  address->set_port_value(8000 + (n >> 24));
}

ClusterLoadAssignment assignment(const std::string& name, uint32_t first, uint32_t count) {
  ClusterLoadAssignment cla;
  cla.set_cluster_name(name);
  auto* locality = cla.add_endpoints();
  for (uint32_t i = 0; i < count; i++) {
    setEndpoint(*locality->add_lb_endpoints(), first + i);
  }
  return cla;
}

struct Phase2Result {
  std::vector<double> ack_us;
  std::vector<double> workers_us;
  double cpu_ms_per_update;
};

int run(int argc, char** argv) {
  const uint32_t clusters = static_cast<uint32_t>(intFlag(argc, argv, "clusters", 10000));
  const uint32_t endpoints = static_cast<uint32_t>(intFlag(argc, argv, "endpoints", 100000));
  const uint32_t big = static_cast<uint32_t>(intFlag(argc, argv, "big", 10000));
  const int updates = static_cast<int>(intFlag(argc, argv, "updates", 50));
  const uint32_t concurrency = static_cast<uint32_t>(intFlag(argc, argv, "concurrency", 2));
  check(clusters >= 3 && endpoints > big + clusters,
        "need clusters >= 3, endpoints > big + clusters");

  Integration::FakeUpstreamOptions upstream_options;
  upstream_options.name = "probe";
  auto upstream = Integration::FakeUpstream::create(upstream_options);
  check(upstream.ok(), "upstream");

  AdsServer ads;
  const bool client_rate_limit = intFlag(argc, argv, "client-rate-limit", 0) != 0;
  std::unique_ptr<ProxyProcess> proxy = startProxy(ads, concurrency, client_rate_limit);
  check(ads.waitForSubscription(kClusterType, {}).ok(), "CDS request");
  applyAndWait(ads, kClusterType, "0", std::vector<Cluster>{});
  check(ads.waitForSubscription(kListenerType, {}).ok(), "LDS request");
  applyAndWait(ads, kListenerType, "1",
               std::vector{XdsIntegration::rdsListener("ingress", "routes")});
  check(ads.waitForSubscription(kRouteType, {"routes"}).ok(), "RDS request");
  int route_version = 0;
  applyAndWait(ads, kRouteType, absl::StrCat(++route_version), std::vector{routes("b0")});
  check(Integration::waitUntil(
            [&] {
              auto ready = proxy->adminGet("/ready");
              return ready.ok() && ready->status == 200;
            },
            std::chrono::seconds(10), "/ready"),
        "/ready");
  absl::StatusOr<uint32_t> port = proxy->listenerPort("ingress");
  check(port.ok(), "listener port");
  std::vector<HttpClientPtr> workers = connectionPerWorker(*proxy, *port, concurrency);

  // The configuration: c0 (big), c1 .. c<clusters-2> (the rest of the endpoints), probe.
  std::vector<Cluster> cds;
  std::vector<ClusterLoadAssignment> eds;
  const uint32_t small_clusters = clusters - 2;
  const uint32_t rest = endpoints - big - 1;
  uint32_t next_endpoint = 0;
  cds.push_back(XdsIntegration::edsCluster("c0"));
  eds.push_back(assignment("c0", next_endpoint, big));
  next_endpoint += big;
  for (uint32_t c = 1; c <= small_clusters; c++) {
    const uint32_t count = rest / small_clusters + (c <= rest % small_clusters ? 1 : 0);
    const std::string name = absl::StrCat("c", c);
    cds.push_back(XdsIntegration::edsCluster(name));
    eds.push_back(assignment(name, next_endpoint, count));
    next_endpoint += count;
  }
  cds.push_back(XdsIntegration::edsCluster("probe"));
  eds.push_back(XdsIntegration::loadAssignment("probe", {(*upstream)->port()}));
  next_endpoint += 1;
  size_t cds_bytes = 0;
  size_t eds_bytes = 0;
  for (const Cluster& c : cds) {
    cds_bytes += c.ByteSizeLong();
  }
  for (const ClusterLoadAssignment& c : eds) {
    eds_bytes += c.ByteSizeLong();
  }

  // ---- Phase 1: everything at once ----
  const pid_t pid = proxy->pid();
  const uint64_t hwm_before = procStatusKb(pid, "VmHWM");
  const uint64_t rss_before = procStatusKb(pid, "VmRSS");
  const double cpu_before = cpuMillis(pid);
  const size_t mark = ads.requestMark();
  const std::string cds_nonce = ads.sendResources(kClusterType, "1", cds);
  const Clock::time_point cds_sent = ads.lastSendTime();
  absl::StatusOr<XdsIntegration::DiscoveryRequest> eds_request = ads.waitForRequest(
      kEndpointType,
      [&](const XdsIntegration::DiscoveryRequest& r) {
        return static_cast<uint32_t>(r.resource_names_size()) == clusters;
      },
      std::chrono::minutes(5), mark);
  check(eds_request.ok(), "EDS request for every cluster");
  const Clock::time_point eds_requested = Clock::now();
  testing::AssertionResult cds_acked =
      ads.waitForAck(kClusterType, cds_nonce, "1", std::chrono::minutes(5));
  check(cds_acked, cds_acked.message());
  const Clock::time_point cds_ack = *ads.replyTime(kClusterType, cds_nonce);
  const std::string eds_nonce = ads.sendResources(kEndpointType, "1", eds);
  const Clock::time_point eds_sent = ads.lastSendTime();
  testing::AssertionResult eds_acked =
      ads.waitForAck(kEndpointType, eds_nonce, "1", std::chrono::minutes(5));
  check(eds_acked, eds_acked.message());
  const Clock::time_point eds_ack = *ads.replyTime(kEndpointType, eds_nonce);
  Integration::HttpRequest probe;
  probe.path = "/probe";
  Clock::time_point last_worker{};
  for (uint32_t w = 0; w < concurrency; w++) {
    for (;;) {
      absl::StatusOr<Integration::HttpResponse> response = workers[w]->request(probe);
      check(response.ok(), absl::StrCat("probe: ", response.status().message()));
      if (response->status == 200) {
        break;
      }
      check(Clock::now() - eds_sent < std::chrono::minutes(5), "probe never served");
    }
    last_worker = Clock::now();
  }
  const double cpu_after = cpuMillis(pid);
  std::cout << absl::StrFormat(
      "Apply %u clusters with %u endpoints (CDS %.1f MB + EDS %.1f MB of resources), "
      "--concurrency %u:\n",
      clusters, next_endpoint, cds_bytes / 1e6, eds_bytes / 1e6, concurrency);
  std::cout << absl::StrFormat("  CDS send -> ACK:                    %9.1f ms\n",
                               micros(cds_ack - cds_sent) / 1000);
  std::cout << absl::StrFormat("  CDS send -> EDS request (%u names): %9.1f ms\n", clusters,
                               micros(eds_requested - cds_sent) / 1000);
  std::cout << absl::StrFormat("  EDS send -> ACK:                    %9.1f ms\n",
                               micros(eds_ack - eds_sent) / 1000);
  std::cout << absl::StrFormat("  EDS send -> last worker serving:    %9.1f ms\n",
                               micros(last_worker - eds_sent) / 1000);
  std::cout << absl::StrFormat("  CDS send -> last worker serving:    %9.1f ms\n",
                               micros(last_worker - cds_sent) / 1000);
  std::cout << absl::StrFormat("  proxy CPU time (all threads):       %9.1f ms\n",
                               cpu_after - cpu_before);
  std::cout << absl::StrFormat("  VmHWM %.1f MB -> %.1f MB, VmRSS %.1f MB -> %.1f MB\n",
                               hwm_before / 1024.0, procStatusKb(pid, "VmHWM") / 1024.0,
                               rss_before / 1024.0, procStatusKb(pid, "VmRSS") / 1024.0);

  // ---- Phase 2: one endpoint of one cluster ----
  int eds_version = 1;
  Integration::HttpRequest barrier;
  barrier.path = "/barrier";
  auto changeOne = [&](ClusterLoadAssignment cla, uint32_t moved_endpoint) {
    Phase2Result result;
    const double cpu_start = cpuMillis(pid);
    for (int i = 0; i < updates; i++) {
      // Endpoint 0 moves to a new address every time (never one the cluster had).
      setEndpoint(*cla.mutable_endpoints(0)->mutable_lb_endpoints(0),
                  moved_endpoint + static_cast<uint32_t>(i));
      const std::string version = absl::StrCat(++eds_version);
      const std::string nonce = ads.sendResources(kEndpointType, version, std::vector{cla});
      const Clock::time_point sent = ads.lastSendTime();
      const std::string body = absl::StrCat("b", ++route_version);
      ads.sendResources(kRouteType, absl::StrCat(route_version), std::vector{routes(body)});
      for (uint32_t w = 0; w < concurrency; w++) {
        for (;;) {
          absl::StatusOr<Integration::HttpResponse> response = workers[w]->request(barrier);
          check(response.ok(), absl::StrCat("barrier: ", response.status().message()));
          if (response->body == body) {
            break;
          }
        }
      }
      result.workers_us.push_back(micros(Clock::now() - sent));
      testing::AssertionResult acked = ads.waitForAck(kEndpointType, nonce, version);
      check(acked, acked.message());
      result.ack_us.push_back(micros(*ads.replyTime(kEndpointType, nonce) - sent));
    }
    result.cpu_ms_per_update = (cpuMillis(pid) - cpu_start) / updates;
    return result;
  };
  // Addresses beyond every endpoint of the configuration.
  const Phase2Result big_result = changeOne(eds[0], endpoints + 1000);
  const Phase2Result small_result = changeOne(eds[1], endpoints + 1000 + updates);
  for (const auto& [label, result, size] :
       {std::tuple{"c0", &big_result, big},
        std::tuple{"c1", &small_result,
                   static_cast<uint32_t>(eds[1].endpoints(0).lb_endpoints_size())}}) {
    std::cout << absl::StrFormat(
        "Change 1 endpoint of %s (%u endpoints), %d updates, with %u "
        "clusters / %u endpoints loaded:\n",
        label, size, updates, clusters, next_endpoint);
    std::cout << "  send -> ACK:              " << percentiles(result->ack_us) << "\n";
    std::cout << "  send -> every worker has: " << percentiles(result->workers_us) << "\n";
    std::cout << absl::StrFormat("  proxy CPU per update:     %.2f ms\n",
                                 result->cpu_ms_per_update);
  }
  std::cout << absl::StrFormat("VmHWM at the end: %.1f MB\n", procStatusKb(pid, "VmHWM") / 1024.0);
  return 0;
}

}  // namespace
}  // namespace Proxy::XdsBench

int main(int argc, char** argv) {
  return Proxy::XdsBench::run(argc, argv);
}
