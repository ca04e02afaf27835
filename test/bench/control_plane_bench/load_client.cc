// control_plane_load_client: N ADS streams from one process against a running
// control-plane-stub, ACKing like Envoy; then, per round, PUT a snapshot that moves every
// endpoint and measure the time from the PUT to the last stream receiving the new version.
//
//   control_plane_load_client --xds 127.0.0.1:18000 --admin 127.0.0.1:18001
//       --streams 1000 --streams-per-channel 100 --rounds 10 --clusters 2 --endpoints 10
//
// Streams use gRPC's callback API (no thread per stream); responses are decoded and ACKed on
// gRPC's threads. Each stream subscribes to every cluster (CDS), their assignments (EDS, by
// name), every listener (LDS) and the route configuration (RDS), as the demo proxy does.
// Not a test: run it through run.sh.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "test/integration/control_plane/xds_test_client.h"
#include "test/integration/http_client.h"

namespace {

using Clock = std::chrono::steady_clock;
using Proxy::ControlPlane::TestUtil::XdsTestChannel;
using Proxy::ControlPlane::TestUtil::XdsTestStream;

constexpr std::string_view kAdsMethod =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
constexpr std::string_view kCds = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
constexpr std::string_view kEds =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
constexpr std::string_view kLds = "type.googleapis.com/envoy.config.listener.v3.Listener";
constexpr std::string_view kRds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

struct Flags {
  std::string xds = "127.0.0.1:18000";
  std::string admin = "127.0.0.1:18001";
  int streams = 1000;
  int streams_per_channel = 100;
  int rounds = 10;
  int clusters = 2;
  int endpoints = 10;
  int timeout_s = 60;
};

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string clusterName(int i) {
  return absl::StrCat("service", i + 1);
}

// The demo's shape with `clusters` EDS clusters of `endpoints` endpoints each. Round r moves
// every endpoint's port, so only EDS changes between rounds.
std::string snapshotYaml(const Flags& flags, int round) {
  std::string yaml = absl::StrCat("version: \"", round, "\"\nresources:\n", R"(  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          rds: { route_config_name: local_route, config_source: { ads: {} } }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  routes:
  - name: local_route
    virtual_hosts:
    - name: all
      domains: ["*"]
      routes:
)");
  for (int c = 0; c < flags.clusters; c++) {
    absl::StrAppend(&yaml, "      - match: { prefix: \"/", clusterName(c), "\" }\n",
                    "        route: { cluster: ", clusterName(c), " }\n");
  }
  absl::StrAppend(&yaml, "  clusters:\n");
  for (int c = 0; c < flags.clusters; c++) {
    absl::StrAppend(&yaml, "  - name: ", clusterName(c),
                    "\n    type: EDS\n    connect_timeout: 1s\n"
                    "    eds_cluster_config: { eds_config: { ads: {} } }\n");
  }
  absl::StrAppend(&yaml, "  endpoints:\n");
  for (int c = 0; c < flags.clusters; c++) {
    absl::StrAppend(&yaml, "  - cluster_name: ", clusterName(c),
                    "\n    endpoints:\n    - lb_endpoints:\n");
    for (int e = 0; e < flags.endpoints; e++) {
      absl::StrAppend(&yaml,
                      "      - endpoint: { address: { socket_address: { address: 127.0.0.1, "
                      "port_value: ",
                      20000 + (round * 997 + c * 101 + e) % 40000, " } } }\n");
    }
  }
  return yaml;
}

envoy::service::discovery::v3::DiscoveryRequest request(std::string_view type_url,
                                                        const std::vector<std::string>& names,
                                                        const std::string& version,
                                                        const std::string& nonce) {
  envoy::service::discovery::v3::DiscoveryRequest r;
  r.set_type_url(std::string(type_url));
  for (const std::string& name : names) {
    r.add_resource_names(name);
  }
  r.set_version_info(version);
  r.set_response_nonce(nonce);
  return r;
}

// What one stream saw: the last EDS version (as a round number) and when it arrived.
struct StreamRecord {
  std::atomic<int> eds_round{-1};
  std::atomic<int64_t> eds_arrival_ns{0};
  std::atomic<int> responses{0};
};

bool put(const Flags& flags, const std::string& body, std::string* error) {
  const size_t colon = flags.admin.rfind(':');
  uint32_t port = 0;
  if (!absl::SimpleAtoi(flags.admin.substr(colon + 1), &port)) {
    *error = "bad --admin";
    return false;
  }
  Proxy::Integration::HttpRequest request;
  request.method = "PUT";
  request.path = "/v1/snapshot";
  request.host = "127.0.0.1";
  request.body = body;
  absl::StatusOr<Proxy::Integration::HttpResponse> response =
      Proxy::Integration::httpRequest(port, request, std::chrono::seconds(30));
  if (!response.ok()) {
    *error = std::string(response.status().message());
    return false;
  }
  if (response->status != 200) {
    *error = absl::StrCat("HTTP ", response->status, ": ", response->body);
    return false;
  }
  return true;
}

bool parseFlags(int argc, char** argv, Flags& flags) {
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    auto value = [&](int& out) {
      return i + 1 < argc && absl::SimpleAtoi(argv[++i], &out) && out > 0;
    };
    bool ok = true;
    if (arg == "--xds" && i + 1 < argc) {
      flags.xds = argv[++i];
    } else if (arg == "--admin" && i + 1 < argc) {
      flags.admin = argv[++i];
    } else if (arg == "--streams") {
      ok = value(flags.streams);
    } else if (arg == "--streams-per-channel") {
      ok = value(flags.streams_per_channel);
    } else if (arg == "--rounds") {
      ok = value(flags.rounds);
    } else if (arg == "--clusters") {
      ok = value(flags.clusters);
    } else if (arg == "--endpoints") {
      ok = value(flags.endpoints);
    } else if (arg == "--timeout-s") {
      ok = value(flags.timeout_s);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "usage: %s [--xds HOST:PORT] [--admin HOST:PORT] [--streams N] "
                   "[--streams-per-channel K] [--rounds R] [--clusters C] [--endpoints E] "
                   "[--timeout-s S]\n",
                   argv[0]);
      return false;
    }
  }
  return true;
}

double ms(int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!parseFlags(argc, argv, flags)) {
    return 2;
  }
  std::vector<std::string> eds_names;
  for (int c = 0; c < flags.clusters; c++) {
    eds_names.push_back(clusterName(c));
  }

  // Round 0: the snapshot every stream starts from.
  std::string error;
  if (!put(flags, snapshotYaml(flags, 0), &error)) {
    std::fprintf(stderr, "PUT of the initial snapshot failed: %s\n", error.c_str());
    return 1;
  }

  // Open the streams. Each ACKs every response from gRPC's thread, with the same names.
  const int channel_count =
      (flags.streams + flags.streams_per_channel - 1) / flags.streams_per_channel;
  std::vector<std::unique_ptr<XdsTestChannel>> channels;
  for (int i = 0; i < channel_count; i++) {
    channels.push_back(std::make_unique<XdsTestChannel>(flags.xds));
  }
  std::vector<std::unique_ptr<StreamRecord>> records;
  std::vector<std::unique_ptr<XdsTestStream>> streams;
  const auto open_start = Clock::now();
  for (int i = 0; i < flags.streams; i++) {
    records.push_back(std::make_unique<StreamRecord>());
    StreamRecord* record = records.back().get();
    auto on_message = [record, &eds_names](XdsTestStream& stream, const std::string& bytes) {
      const int64_t arrival = nowNs();
      envoy::service::discovery::v3::DiscoveryResponse response;
      if (!response.ParseFromString(bytes)) {
        return;
      }
      record->responses++;
      std::vector<std::string> names;
      if (response.type_url() == kEds) {
        int round = -1;
        if (absl::SimpleAtoi(response.version_info(), &round)) {
          record->eds_arrival_ns = arrival;
          record->eds_round = round;
        }
        names = eds_names;
      } else if (response.type_url() == kRds) {
        names = {"local_route"};
      }
      stream.send(request(response.type_url(), names, response.version_info(), response.nonce())
                      .SerializeAsString());
    };
    streams.push_back(std::make_unique<XdsTestStream>(*channels[i % channel_count],
                                                      std::string(kAdsMethod), on_message));
    XdsTestStream& stream = *streams.back();
    auto first = request(kCds, {}, "", "");
    first.mutable_node()->set_id(absl::StrCat("load-", i));
    stream.send(first.SerializeAsString());
    stream.send(request(kEds, eds_names, "", "").SerializeAsString());
    stream.send(request(kLds, {}, "", "").SerializeAsString());
    stream.send(request(kRds, {"local_route"}, "", "").SerializeAsString());
  }

  auto wait_round = [&](int round) -> bool {
    const auto deadline = Clock::now() + std::chrono::seconds(flags.timeout_s);
    for (;;) {
      int behind = 0;
      for (const auto& record : records) {
        if (record->eds_round.load() < round) {
          behind++;
        }
      }
      if (behind == 0) {
        return true;
      }
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "round %d: %d of %d streams never got the new version\n", round,
                     behind, flags.streams);
        return false;
      }
      // Polling is how the client notices the last arrival; the arrival times themselves are
      // taken on gRPC's threads, so the poll interval does not enter the measurement.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  if (!wait_round(0)) {
    return 1;
  }
  const double open_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - open_start).count();
  std::printf("%d streams on %d connections subscribed and holding version 0 after %.1f ms\n",
              flags.streams, channel_count, open_ms);
  std::printf("snapshot: %d EDS clusters x %d endpoints; each round moves every endpoint\n",
              flags.clusters, flags.endpoints);
  std::printf("%-6s %12s %12s %12s %12s\n", "round", "PUT->200 ms", "first ms", "median ms",
              "last ms");

  std::vector<double> lasts;
  for (int round = 1; round <= flags.rounds; round++) {
    const std::string body = snapshotYaml(flags, round);
    const int64_t t0 = nowNs();
    if (!put(flags, body, &error)) {
      std::fprintf(stderr, "round %d: PUT failed: %s\n", round, error.c_str());
      return 1;
    }
    const int64_t t_put = nowNs();
    if (!wait_round(round)) {
      return 1;
    }
    std::vector<int64_t> arrivals;
    for (const auto& record : records) {
      arrivals.push_back(record->eds_arrival_ns.load() - t0);
    }
    std::sort(arrivals.begin(), arrivals.end());
    const double last = ms(arrivals.back());
    lasts.push_back(last);
    std::printf("%-6d %12.2f %12.2f %12.2f %12.2f\n", round, ms(t_put - t0), ms(arrivals.front()),
                ms(arrivals[arrivals.size() / 2]), last);
  }
  std::sort(lasts.begin(), lasts.end());
  std::printf(
      "PUT /v1/snapshot -> last of %d streams has the new version: min %.2f ms, median %.2f ms, "
      "max %.2f ms (%d rounds)\n",
      flags.streams, lasts.front(), lasts[lasts.size() / 2], lasts.back(), flags.rounds);

  streams.clear();
  return 0;
}
