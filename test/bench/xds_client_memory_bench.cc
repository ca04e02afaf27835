// What the xDS client keeps once a large configuration is applied (issue 14): the heap in use
// (glibc's count, mapped chunks included) after the client applied N clusters (a wildcard CDS
// watch) and their N assignments of 10 endpoints (one EDS watch naming them all, as the proxy's),
// over ADS against a fake transport, after the watchers dropped what they were handed. That is the
// cache, the subscriptions and what the stream remembers. Deterministic, unlike a process's VmHWM.
//
//   cmake --build <dir> --target xds_client_memory_bench &&
//   <dir>/test/unit/xds_client/xds_client_memory_bench [--clusters 10000]
//
// Printed for SotW with short names ("c<i>": inline in a std::string) and Istio's
// ("outbound|8080||service-<i>.namespace.svc.cluster.local"), and for Delta (short names, a
// 16-hex-digit version per resource).

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "spdlog/spdlog.h"
#include "test/unit/xds_client/fake_transport.h"
#include "test/unit/xds_client/simulated_dispatcher.h"
#include "xds_client/xds_client_impl.h"

namespace Proxy::Xds {
namespace {

class CountingWatcher : public Watcher {
 public:
  absl::Status onConfigUpdate(const std::vector<DecodedResource>& added,
                              const std::vector<std::string>&, const std::string&) override {
    received += added.size();
    return absl::OkStatus();
  }
  void onConfigUpdateFailed(FailureReason) override {}
  size_t received = 0;
};

envoy::config::cluster::v3::Cluster cluster(const std::string& name) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name(name);
  cluster.set_type(envoy::config::cluster::v3::Cluster::EDS);
  cluster.mutable_eds_cluster_config()->mutable_eds_config()->mutable_ads();
  cluster.mutable_connect_timeout()->set_seconds(1);
  return cluster;
}

envoy::config::endpoint::v3::ClusterLoadAssignment assignment(const std::string& name,
                                                              int first_endpoint) {
  envoy::config::endpoint::v3::ClusterLoadAssignment assignment;
  assignment.set_cluster_name(name);
  auto* locality = assignment.add_endpoints();
  for (int e = first_endpoint; e < first_endpoint + 10; ++e) {
    auto* address = locality->add_lb_endpoints()
                        ->mutable_endpoint()
                        ->mutable_address()
                        ->mutable_socket_address();
    address->set_address(absl::StrCat("10.", (e >> 16) & 255, ".", (e >> 8) & 255, ".", e & 255));
    address->set_port_value(8080);
  }
  return assignment;
}

// Allocated chunks, and the large allocations malloc maps on their own.
size_t heapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

void measure(int clusters, bool long_names, bool delta) {
  std::vector<std::string> names;
  envoy::service::discovery::v3::DiscoveryResponse cds;
  cds.set_type_url(std::string(kClusterTypeUrl));
  cds.set_version_info("1");
  cds.set_nonce("cds-1");
  envoy::service::discovery::v3::DiscoveryResponse eds;
  eds.set_type_url(std::string(kClusterLoadAssignmentTypeUrl));
  eds.set_version_info("1");
  eds.set_nonce("eds-1");
  // Delta: each resource has its own version (16 hex digits, as a hash would give).
  envoy::service::discovery::v3::DeltaDiscoveryResponse delta_cds;
  delta_cds.set_type_url(cds.type_url());
  delta_cds.set_nonce("cds-1");
  envoy::service::discovery::v3::DeltaDiscoveryResponse delta_eds;
  delta_eds.set_type_url(eds.type_url());
  delta_eds.set_nonce("eds-1");
  for (int i = 0; i < clusters; ++i) {
    names.push_back(long_names
                        ? absl::StrCat("outbound|8080||service-", i, ".namespace.svc.cluster.local")
                        : absl::StrCat("c", i));
    if (delta) {
      auto* resource = delta_cds.add_resources();
      resource->set_name(names.back());
      resource->set_version(absl::StrFormat("%016x", 2 * i + 1));
      resource->mutable_resource()->PackFrom(cluster(names.back()));
      resource = delta_eds.add_resources();
      resource->set_name(names.back());
      resource->set_version(absl::StrFormat("%016x", 2 * i + 2));
      resource->mutable_resource()->PackFrom(assignment(names.back(), i * 10));
    } else {
      cds.add_resources()->PackFrom(cluster(names.back()));
      eds.add_resources()->PackFrom(assignment(names.back(), i * 10));
    }
  }
  const std::string cds_bytes = delta ? delta_cds.SerializeAsString() : cds.SerializeAsString();
  const std::string eds_bytes = delta ? delta_eds.SerializeAsString() : eds.SerializeAsString();
  cds.Clear();
  eds.Clear();
  delta_cds.Clear();
  delta_eds.Clear();

  Test::SimulatedDispatcher dispatcher;
  Stats::Store store;
  auto streams = std::make_shared<Test::FakeTransportFactory::Streams>();
  XdsClientConfig config;
  config.node.set_id("bench");
  config.ads = XdsStreamConfig{"bench", delta, RateLimitSettings{/*enabled=*/false, 0, 0}};
  XdsTypeConfig ads;
  ads.ads = true;
  config.types[std::string(kClusterTypeUrl)] = ads;
  config.types[std::string(kClusterLoadAssignmentTypeUrl)] = ads;
  CountingWatcher cds_watcher;
  CountingWatcher eds_watcher;
  malloc_trim(0);
  const size_t before = heapInUse();
  {
    auto client = std::make_unique<XdsClientImpl>(
        dispatcher, config, std::make_unique<Test::FakeTransportFactory>(streams),
        Stats::Scope(store, ""));
    auto cds_watch = client->watch(kClusterTypeUrl, {}, cds_watcher).value();
    dispatcher.runUntilIdle();
    Test::FakeStream& stream = *streams->all.at(0);
    stream.respondBytes(cds_bytes);
    // The proxy's EDS watch names every cluster, created from the CDS update.
    auto eds_watch = client->watch(kClusterLoadAssignmentTypeUrl, names, eds_watcher).value();
    dispatcher.runUntilIdle();
    stream.respondBytes(eds_bytes);
    dispatcher.runUntilIdle();
    while (stream.pendingRequests() > 0) {
      stream.takeRequestBytes();  // what the server would have read
    }
    const size_t after = heapInUse();
    if (cds_watcher.received != static_cast<size_t>(clusters) ||
        eds_watcher.received != static_cast<size_t>(clusters)) {
      std::cerr << "the watchers did not get every resource\n";
      std::exit(1);
    }
    std::cout << absl::StrFormat(
        "%s, %d clusters + %d assignments, %s names (wire: %.0f bytes per cluster + "
        "assignment): %.2f MB retained, %.0f bytes per cluster + assignment\n",
        delta ? "Delta" : "SotW", clusters, clusters, long_names ? "long" : "short",
        static_cast<double>(cds_bytes.size() + eds_bytes.size()) / clusters,
        static_cast<double>(after - before) / (1 << 20),
        static_cast<double>(after - before) / clusters);
  }
}

}  // namespace
}  // namespace Proxy::Xds

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int clusters = 10000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--clusters") == 0) {
      clusters = std::atoi(argv[i + 1]);
    }
  }
  Proxy::Xds::measure(clusters, /*long_names=*/false, /*delta=*/false);
  Proxy::Xds::measure(clusters, /*long_names=*/true, /*delta=*/false);
  Proxy::Xds::measure(clusters, /*long_names=*/false, /*delta=*/true);
  return 0;
}
