#include "test/integration/control_plane_e2e/e2e_support.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "test/integration/http_client.h"

namespace Proxy::ControlPlaneE2e {
namespace {

using Integration::HttpClient;
using Integration::HttpClientPtr;
using Integration::HttpRequest;
using Integration::HttpResponse;

std::string peersDir() {
  if (const char* dir = std::getenv("PEERS_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache != nullptr && *cache != '\0') {
    return absl::StrCat(cache, "/xds-proxy-peers");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "", "/.cache/xds-proxy-peers");
}

absl::StatusOr<std::string> executable(const std::string& path, const std::string& what) {
  if (::access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(what, " is not installed (no executable '", path,
                                            "'): run deploy/install-peers.sh"));
  }
  return path;
}

std::string listenerYaml(const std::string& name, uint32_t port, XdsMode mode) {
  return absl::StrCat(R"(
  - name: )",
                      name, R"(
    address: { socket_address: { address: 127.0.0.1, port_value: )",
                      port, R"( } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: )",
                      name, R"(
          rds:
            route_config_name: local_route
            config_source: )",
                      configSourceYaml(mode), R"(
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router)");
}

}  // namespace

std::string name(DataPlane data_plane) {
  return data_plane == DataPlane::Proxy ? "Proxy" : "Envoy";
}

std::string name(XdsMode mode) {
  switch (mode) {
    case XdsMode::AdsSotw:
      return "AdsSotw";
    case XdsMode::AdsDelta:
      return "AdsDelta";
    case XdsMode::PerTypeSotw:
      return "PerTypeSotw";
  }
  return "?";
}

void PrintTo(XdsMode mode, std::ostream* out) {
  *out << name(mode);
}

absl::StatusOr<std::string> envoyBinary() {
  if (const char* env = std::getenv("ENVOY_BINARY"); env != nullptr && *env != '\0') {
    return executable(env, "Envoy");
  }
  const std::string path_file = peersDir() + "/envoy-path";
  const std::string path(absl::StripAsciiWhitespace(Integration::readFile(path_file)));
  if (path.empty()) {
    return absl::NotFoundError(
        absl::StrCat("Envoy is not installed (no '", path_file, "'): run deploy/install-peers.sh"));
  }
  return executable(path, "Envoy");
}

absl::StatusOr<std::string> goControlPlaneBinary() {
  if (const char* env = std::getenv("GO_CONTROL_PLANE_BINARY"); env != nullptr && *env != '\0') {
    return executable(env, "the go-control-plane example");
  }
  return executable(peersDir() + "/go-control-plane-example", "the go-control-plane example");
}

std::string configSourceYaml(XdsMode mode) {
  if (mode == XdsMode::PerTypeSotw) {
    return "{ resource_api_version: V3, api_config_source: { api_type: GRPC, "
           "transport_api_version: V3, grpc_services: [{ envoy_grpc: { cluster_name: "
           "xds_cluster } }] } }";
  }
  return "{ ads: {}, resource_api_version: V3 }";
}

std::string dataPlaneBootstrap(XdsMode mode, uint32_t xds_port, const std::string& node) {
  std::string dynamic;
  if (mode == XdsMode::PerTypeSotw) {
    dynamic = absl::StrCat("dynamic_resources:\n  cds_config: ", configSourceYaml(mode),
                           "\n  lds_config: ", configSourceYaml(mode), "\n");
  } else {
    dynamic =
        absl::StrCat(R"(dynamic_resources:
  ads_config:
    api_type: )",
                     mode == XdsMode::AdsDelta ? "DELTA_GRPC" : "GRPC", R"(
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: xds_cluster}
  cds_config: )",
                     configSourceYaml(mode), "\n  lds_config: ", configSourceYaml(mode), "\n");
  }
  return absl::StrCat("node: {id: ", node, R"(, cluster: e2e}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
)",
                      dynamic, R"(static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
                      xds_port, "}}}\n");
}

std::string snapshotYaml(const SnapshotSpec& spec) {
  std::string yaml = absl::StrCat("version: \"", spec.version, "\"\nresources:\n  listeners:",
                                  listenerYaml("ingress", spec.listener_port, spec.mode));
  for (const auto& [listener, port] : spec.extra_listeners) {
    absl::StrAppend(&yaml, listenerYaml(listener, port, spec.mode));
  }
  absl::StrAppend(&yaml, R"(
  routes:
  - name: local_route
    virtual_hosts:
    - name: e2e
      domains: ["*"]
      routes:)");
  for (const auto& [prefix, cluster] : spec.routes) {
    absl::StrAppend(&yaml, "\n      - match: { prefix: \"", prefix, "\" }\n        route: { ",
                    "cluster: ", cluster, " }");
  }
  absl::StrAppend(&yaml, "\n  clusters:");
  std::map<std::string, std::vector<uint32_t>> assignments;
  for (const auto& [cluster, ports] : spec.clusters) {
    auto service = spec.eds_service_names.find(cluster);
    auto timeout = spec.connect_timeouts.find(cluster);
    absl::StrAppend(&yaml, "\n  - name: ", cluster, R"(
    type: EDS
    connect_timeout: )",
                    timeout != spec.connect_timeouts.end() ? timeout->second : "1s", R"(
    lb_policy: ROUND_ROBIN
    eds_cluster_config:
      eds_config: )",
                    configSourceYaml(spec.mode));
    if (service != spec.eds_service_names.end()) {
      absl::StrAppend(&yaml, "\n      service_name: ", service->second);
    }
    assignments.emplace(service != spec.eds_service_names.end() ? service->second : cluster, ports);
  }
  absl::StrAppend(&yaml, "\n  endpoints:");
  for (const auto& [assignment, ports] : assignments) {
    absl::StrAppend(&yaml, "\n  - cluster_name: ", assignment,
                    "\n    endpoints:\n    - lb_endpoints:");
    for (uint32_t port : ports) {
      absl::StrAppend(&yaml, "\n      - endpoint: { address: { socket_address: ",
                      "{ address: 127.0.0.1, port_value: ", port, " } } }");
    }
  }
  absl::StrAppend(&yaml, "\n");
  return yaml;
}

// --- DataPlaneProcess ---------------------------------------------------------------------

DataPlaneProcess::DataPlaneProcess(DataPlane kind, XdsMode mode, std::string node,
                                   uint32_t xds_port)
    : DataPlaneProcess(kind, mode, node, dataPlaneBootstrap(mode, xds_port, node),
                       /*wait_for_ready=*/true) {}

DataPlaneProcess::DataPlaneProcess(DataPlane kind, XdsMode mode, std::string node,
                                   std::string bootstrap_yaml, bool wait_for_ready)
    : kind_(kind), mode_(mode), node_(std::move(node)) {
  Integration::ProxyOptions options;
  options.bootstrap_yaml = std::move(bootstrap_yaml);
  options.wait_for_ready = wait_for_ready;
  options.concurrency = 2;
  options.drain_time_s = 2;
  if (kind == DataPlane::Envoy) {
    absl::StatusOr<std::string> envoy = envoyBinary();
    options.binary = envoy.ok() ? *envoy : "/nonexistent/envoy";
  }
  process_ = std::make_unique<Integration::ProxyProcess>(std::move(options));
}

testing::AssertionResult DataPlaneProcess::start(std::chrono::milliseconds timeout) {
  if (kind_ == DataPlane::Envoy) {
    if (absl::StatusOr<std::string> envoy = envoyBinary(); !envoy.ok()) {
      return testing::AssertionFailure() << envoy.status().message();
    }
  }
  return process_->start(timeout);
}

int64_t DataPlaneProcess::stat(const std::string& stat_name) {
  absl::StatusOr<int64_t> value = process_->counter(stat_name);
  return value.ok() ? *value : -1;
}

testing::AssertionResult DataPlaneProcess::waitForStat(const std::string& stat_name,
                                                       int64_t at_least,
                                                       std::chrono::milliseconds timeout) {
  return process_->waitForCounterGe(stat_name, at_least, timeout);
}

std::vector<std::string> DataPlaneProcess::updateSuccessStats(const SnapshotSpec& spec) const {
  std::vector<std::string> names = {"listener_manager.lds.update_success",
                                    "cluster_manager.cds.update_success"};
  if (kind_ == DataPlane::Envoy) {
    names.push_back("http.ingress.rds.local_route.update_success");
    for (const auto& [cluster, ports] : spec.clusters) {
      names.push_back(absl::StrCat("cluster.", cluster, ".update_success"));
    }
  } else {
    names.push_back("http.rds.local_route.update_success");
    names.push_back("cluster_manager.eds.update_success");
  }
  return names;
}

std::vector<std::string> DataPlaneProcess::connectedStateStats() const {
  if (kind_ == DataPlane::Envoy && mode_ == XdsMode::PerTypeSotw) {
    return {"listener_manager.lds.control_plane.connected_state",
            "cluster_manager.cds.control_plane.connected_state"};
  }
  return {"control_plane.connected_state"};
}

testing::AssertionResult DataPlaneProcess::waitForConnectedState(
    int64_t value, std::chrono::milliseconds timeout) {
  std::string last;
  testing::AssertionResult reached = Integration::waitUntil(
      [&] {
        last.clear();
        bool all = true;
        for (const std::string& gauge : connectedStateStats()) {
          const int64_t current = stat(gauge);
          absl::StrAppend(&last, gauge, "=", current, " ");
          all = all && current == value;
        }
        return all;
      },
      timeout, absl::StrCat("connected_state ", value));
  if (!reached) {
    reached << " (last: " << last << ")";
  }
  return reached;
}

// --- LoadLoop -----------------------------------------------------------------------------

LoadLoop::LoadLoop(uint32_t port, std::vector<std::string> paths, int clients)
    : port_(port), paths_(std::move(paths)) {
  for (int i = 0; i < clients; i++) {
    threads_.emplace_back([this, i] { run(i); });
  }
}

LoadLoop::~LoadLoop() {
  stop();
}

void LoadLoop::stop() {
  stop_ = true;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

uint64_t LoadLoop::answered(const std::string& path, const std::string& upstream) {
  std::lock_guard<std::mutex> lock(mutex_);
  return answered_[{path, upstream}];
}

std::string LoadLoop::failureSamples() {
  std::lock_guard<std::mutex> lock(mutex_);
  return absl::StrJoin(failure_samples_, "\n");
}

testing::AssertionResult LoadLoop::waitForMoreRequests(uint64_t count) {
  const uint64_t target = requests() + count;
  return Integration::waitUntil([&] { return requests() >= target; }, 20s,
                                absl::StrCat(count, " more requests of the load loop"));
}

testing::AssertionResult LoadLoop::waitForAnswer(const std::string& path,
                                                 const std::string& upstream) {
  const uint64_t before = answered(path, upstream);
  return Integration::waitUntil(
      [&] { return answered(path, upstream) > before; }, 20s,
      absl::StrCat("the load loop to see ", path, " answered by ", upstream));
}

void LoadLoop::fail(const std::string& what) {
  failures_++;
  std::lock_guard<std::mutex> lock(mutex_);
  if (failure_samples_.size() < 10) {
    failure_samples_.push_back(what);
  }
}

void LoadLoop::run(int client_index) {
  HttpClientPtr client;
  for (size_t i = client_index; !stop_; i++) {
    if (client == nullptr) {
      absl::StatusOr<HttpClientPtr> connected = HttpClient::connect(port_);
      if (!connected.ok()) {
        fail(absl::StrCat("connect: ", connected.status().ToString()));
        continue;
      }
      client = std::move(*connected);
    }
    HttpRequest request;
    request.path = paths_[i % paths_.size()];
    absl::StatusOr<HttpResponse> response = client->request(request);
    requests_++;
    if (!response.ok()) {
      fail(absl::StrCat(request.path, ": ", response.status().ToString()));
      client.reset();
      continue;
    }
    if (response->status < 200 || response->status >= 300) {
      fail(absl::StrCat(request.path, ": HTTP ", response->status, " ", response->body));
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      answered_[{request.path, response->header("x-upstream")}]++;
    }
    if (!response->keep_alive) {
      client.reset();
    }
  }
}

std::string upstreamFor(uint32_t port, const std::string& path) {
  HttpRequest request;
  request.path = path;
  absl::StatusOr<HttpResponse> response = Integration::httpRequest(port, request, 10s);
  if (!response.ok()) {
    return response.status().ToString();
  }
  if (response->status != 200) {
    return absl::StrCat("HTTP ", response->status);
  }
  return response->header("x-upstream");
}

testing::AssertionResult waitForUpstream(uint32_t port, const std::string& path,
                                         const std::string& upstream,
                                         std::chrono::milliseconds timeout) {
  std::string last;
  testing::AssertionResult routed =
      Integration::waitUntil([&] { return (last = upstreamFor(port, path)) == upstream; }, timeout,
                             absl::StrCat(path, " to be answered by ", upstream));
  if (!routed) {
    routed << " (last: " << last << ")";
  }
  return routed;
}

}  // namespace Proxy::ControlPlaneE2e
