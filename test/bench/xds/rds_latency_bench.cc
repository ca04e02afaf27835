// How long an RDS update takes to reach every worker, end to end.
//
//   xds_rds_latency_bench [--updates 1000] [--concurrency 2] [--client-rate-limit 0|1]
//
// The real proxy (--concurrency N) is configured over ADS by an in-process management server:
// one listener whose RDS route configuration answers every request with a direct_response
// body naming its version. The benchmark holds one keep-alive connection on each worker (told
// apart by the per-worker listener stats). For each of --updates updates it sends the route
// configuration with a new body and, from the moment the response is handed to gRPC, keeps
// sending requests on every worker's connection that has not yet answered with the new body.
// A worker "serves" the update when its connection first answers with it; the update's
// latency is the time until the last worker does. The resolution is one request round trip on
// loopback (tens of microseconds), and the time includes gRPC's transport in both processes,
// so it is an upper bound of "main thread receives the update -> last worker serves it".
// Also printed: the first worker's time, and the time until the ACK arrives (the main thread
// applied the update and published it; workers may still be switching).

#include <iostream>

#include "absl/strings/str_cat.h"
#include "test/bench/xds/bench_util.h"

namespace Proxy::XdsBench {
namespace {

using XdsIntegration::directResponseRoutes;
using XdsIntegration::kClusterType;
using XdsIntegration::kListenerType;
using XdsIntegration::kRouteType;
using XdsIntegration::rdsListener;

int run(int argc, char** argv) {
  const int updates = static_cast<int>(intFlag(argc, argv, "updates", 1000));
  const uint32_t concurrency = static_cast<uint32_t>(intFlag(argc, argv, "concurrency", 2));

  AdsServer ads;
  const bool client_rate_limit = intFlag(argc, argv, "client-rate-limit", 0) != 0;
  std::unique_ptr<ProxyProcess> proxy = startProxy(ads, concurrency, client_rate_limit);

  // Envoy's initialisation: no clusters; one listener; its routes at version 0.
  check(ads.waitForSubscription(kClusterType, {}).ok(), "CDS request");
  applyAndWait(ads, kClusterType, "1", std::vector<envoy::config::cluster::v3::Cluster>{});
  check(ads.waitForSubscription(kListenerType, {}).ok(), "LDS request");
  applyAndWait(ads, kListenerType, "1", std::vector{rdsListener("ingress", "routes")});
  check(ads.waitForSubscription(kRouteType, {"routes"}).ok(), "RDS request");
  applyAndWait(ads, kRouteType, "0", std::vector{directResponseRoutes("routes", "v0")});
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

  std::vector<double> last_us;
  std::vector<double> first_us;
  std::vector<double> ack_us;
  uint64_t polls = 0;
  Integration::HttpRequest request;
  request.path = "/";
  for (int i = 1; i <= updates; i++) {
    const std::string body = absl::StrCat("v", i);
    const std::string version = absl::StrCat(i);
    const std::string nonce =
        ads.sendResources(kRouteType, version, std::vector{directResponseRoutes("routes", body)});
    const Clock::time_point sent = ads.lastSendTime();
    std::vector<bool> serving(concurrency, false);
    uint32_t pending = concurrency;
    Clock::time_point first{};
    Clock::time_point last{};
    while (pending > 0) {
      for (uint32_t w = 0; w < concurrency; w++) {
        if (serving[w]) {
          continue;
        }
        absl::StatusOr<Integration::HttpResponse> response = workers[w]->request(request);
        polls++;
        check(response.ok() && response->status == 200,
              absl::StrCat("request on worker ", w, ": ",
                           response.ok() ? absl::StrCat(response->status)
                                         : std::string(response.status().message())));
        if (response->body == body) {
          const Clock::time_point now = Clock::now();
          serving[w] = true;
          pending--;
          if (first == Clock::time_point{}) {
            first = now;
          }
          last = now;
        }
      }
      check(Clock::now() - sent < std::chrono::seconds(30), "update never reached a worker");
    }
    testing::AssertionResult acked = ads.waitForAck(kRouteType, nonce, version);
    check(acked, acked.message());
    last_us.push_back(micros(last - sent));
    first_us.push_back(micros(first - sent));
    ack_us.push_back(micros(*ads.replyTime(kRouteType, nonce) - sent));
  }

  std::cout << "RDS update -> serving, " << updates << " updates, --concurrency " << concurrency
            << " (" << polls << " polling requests)\n"
            << "  last worker serving:  " << percentiles(last_us) << "\n"
            << "  first worker serving: " << percentiles(first_us) << "\n"
            << "  ACK received:         " << percentiles(ack_us) << "\n";
  return 0;
}

}  // namespace
}  // namespace Proxy::XdsBench

int main(int argc, char** argv) {
  return Proxy::XdsBench::run(argc, argv);
}
