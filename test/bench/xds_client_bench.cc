// What one State-of-the-World CDS response of N clusters costs the xDS client:
//  - BM_DecodeSotwResponse: bytes -> typed, hashed resources (the gRPC thread's part);
//  - BM_MainThreadHandOver: the main thread's part alone: subscription bookkeeping, the cache
//    (which frees the previous version's messages), handing the resources to a watcher, and
//    building the ACK;
//  - BM_DecodeAndHandOver: both, back to back.
// The watcher does nothing: this measures the client, not the owner.
//
//   cmake --build <dir> --target xds_client_bench && <dir>/test/unit/xds_client/xds_client_bench

#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "spdlog/spdlog.h"
#include "test/unit/xds_client/fake_transport.h"
#include "test/unit/xds_client/simulated_dispatcher.h"
#include "xds_client/decoder.h"
#include "xds_client/xds_client_impl.h"

namespace Proxy::Xds {
namespace {

// A cluster as a control plane typically sends it: EDS over ADS, HTTP/2, circuit breakers.
envoy::config::cluster::v3::Cluster benchCluster(int i) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name("outbound|8080||service-" + std::to_string(i) + ".namespace.svc.cluster.local");
  cluster.set_type(envoy::config::cluster::v3::Cluster::EDS);
  auto* eds = cluster.mutable_eds_cluster_config();
  eds->mutable_eds_config()->mutable_ads();
  eds->mutable_eds_config()->set_resource_api_version(envoy::config::core::v3::V3);
  eds->set_service_name(cluster.name());
  cluster.mutable_connect_timeout()->set_seconds(10);
  cluster.set_lb_policy(envoy::config::cluster::v3::Cluster::LEAST_REQUEST);
  auto* thresholds = cluster.mutable_circuit_breakers()->add_thresholds();
  thresholds->mutable_max_connections()->set_value(4294967295u);
  thresholds->mutable_max_requests()->set_value(4294967295u);
  envoy::extensions::upstreams::http::v3::HttpProtocolOptions options;
  options.mutable_explicit_http_config()->mutable_http2_protocol_options();
  (*cluster.mutable_typed_extension_protocol_options())
      ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
          .PackFrom(options);
  return cluster;
}

std::string responseBytes(int clusters, const std::string& version) {
  envoy::service::discovery::v3::DiscoveryResponse response;
  response.set_type_url(std::string(kClusterTypeUrl));
  response.set_version_info(version);
  response.set_nonce("nonce-" + version);
  for (int i = 0; i < clusters; ++i) {
    response.add_resources()->PackFrom(benchCluster(i));
  }
  return response.SerializeAsString();
}

void BM_DecodeSotwResponse(benchmark::State& state) {
  const std::string bytes = responseBytes(static_cast<int>(state.range(0)), "1");
  for (auto _ : state) {
    auto decoded = decodeResponse(bytes, /*delta=*/false);
    benchmark::DoNotOptimize(decoded);
    if (decoded->resources.size() != static_cast<size_t>(state.range(0))) {
      state.SkipWithError("not every cluster decoded");
    }
  }
  state.counters["bytes"] = static_cast<double>(bytes.size());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_DecodeSotwResponse)->Arg(10000)->Unit(benchmark::kMillisecond);

class CountingWatcher : public Watcher {
 public:
  absl::Status onConfigUpdate(const std::vector<DecodedResource>& added,
                              const std::vector<std::string>&, const std::string&) override {
    received = added.size();
    return absl::OkStatus();
  }
  void onConfigUpdateFailed(FailureReason) override {}
  size_t received = 0;
};

void BM_DecodeAndHandOver(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);  // no ACK log lines in the loop
  const int clusters = static_cast<int>(state.range(0));
  // Two versions, alternated, so every iteration is a real update with a new nonce.
  const std::string bytes[2] = {responseBytes(clusters, "1"), responseBytes(clusters, "2")};

  Test::SimulatedDispatcher dispatcher;
  Stats::Store store;
  auto streams = std::make_shared<Test::FakeTransportFactory::Streams>();
  XdsClientConfig config;
  config.node.set_id("bench");
  config.ads = XdsStreamConfig{"bench", false, RateLimitSettings{/*enabled=*/false, 0, 0}};
  XdsTypeConfig cds;
  cds.ads = true;
  config.types[std::string(kClusterTypeUrl)] = cds;
  auto client = std::make_unique<XdsClientImpl>(
      dispatcher, config, std::make_unique<Test::FakeTransportFactory>(streams),
      Stats::Scope(store, ""));
  CountingWatcher watcher;
  auto watch = client->watch(kClusterTypeUrl, {}, watcher);
  dispatcher.runUntilIdle();
  Test::FakeStream& stream = *streams->all.at(0);

  const bool main_thread_only = state.range(1) != 0;
  int i = 0;
  for (auto _ : state) {
    if (main_thread_only) {
      state.PauseTiming();
      auto decoded = decodeResponse(bytes[i++ % 2], /*delta=*/false);
      state.ResumeTiming();
      stream.respondDecoded(std::move(decoded));  // hand over + watcher
    } else {
      stream.respondBytes(bytes[i++ % 2]);  // decode + hand over + watcher
    }
    dispatcher.runUntilIdle();  // the ACK
    if (watcher.received != static_cast<size_t>(clusters)) {
      state.SkipWithError("the watcher did not get every cluster");
    }
  }
  state.SetItemsProcessed(state.iterations() * clusters);
  watch->reset();
  client.reset();
}
BENCHMARK(BM_DecodeAndHandOver)
    ->Name("BM_MainThreadHandOver")
    ->Args({10000, 1})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeAndHandOver)->Args({10000, 0})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace Proxy::Xds

BENCHMARK_MAIN();
