#pragma once

// Helpers for the control plane's tests: snapshot YAML in a line, requests with labelled
// fields, and responses decoded from their wire bytes into one readable line, so a test reads
//   EXPECT_EQ(describe(*response), "lds version='1' nonce='1' [ingress]");

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control_plane_stub/resource_kind.h"
#include "control_plane_stub/snapshot.h"
#include "control_plane_stub/snapshot_loader.h"
#include "control_plane_stub/stream_state.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gtest/gtest.h"
#include "proxy/common/time.h"

namespace Proxy::ControlPlane::TestUtil {

// A time that only moves when told to.
class FakeTimeSource : public TimeSource {
 public:
  SystemTime systemTime() override { return system_; }
  MonotonicTime monotonicTime() override { return monotonic_; }
  void advance(std::chrono::milliseconds by) {
    system_ += by;
    monotonic_ += by;
  }

 private:
  SystemTime system_ = SystemTime(std::chrono::seconds(1700000000));
  MonotonicTime monotonic_ = MonotonicTime(std::chrono::seconds(1000));
};

// The demo's shape: listener "ingress" on 127.0.0.1:10000 whose HTTP connection manager gets
// route configuration "local_route" over RDS; local_route sends /<cluster> to each cluster;
// each cluster is an EDS cluster whose ClusterLoadAssignment has one endpoint on 127.0.0.1 at
// the given port.
inline std::string snapshotYaml(
    const std::string& version,
    const std::map<std::string, uint32_t>& endpoints = {{"service1", 8081}, {"service2", 8082}},
    const std::string& node = "") {
  std::string yaml = absl::StrCat("version: \"", version, "\"\n");
  if (!node.empty()) {
    absl::StrAppend(&yaml, "node: \"", node, "\"\n");
  }
  absl::StrAppend(&yaml, R"(resources:
  listeners:
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
  for (const auto& [cluster, port] : endpoints) {
    absl::StrAppend(&yaml, "      - match: { prefix: \"/", cluster,
                    "\" }\n        route: { cluster: ", cluster, " }\n");
  }
  if (endpoints.empty()) {
    absl::StrAppend(&yaml,
                    "      - match: { prefix: \"/\" }\n        direct_response: { status: 404 }\n");
  }
  if (endpoints.empty()) {
    return yaml;
  }
  absl::StrAppend(&yaml, "  clusters:\n");
  for (const auto& [cluster, port] : endpoints) {
    absl::StrAppend(&yaml, "  - name: ", cluster,
                    "\n    type: EDS\n    connect_timeout: 1s\n"
                    "    eds_cluster_config: { eds_config: { ads: {} } }\n");
  }
  absl::StrAppend(&yaml, "  endpoints:\n");
  for (const auto& [cluster, port] : endpoints) {
    absl::StrAppend(&yaml, "  - cluster_name: ", cluster,
                    "\n    endpoints:\n    - lb_endpoints:\n      - endpoint: { address: { "
                    "socket_address: { address: 127.0.0.1, port_value: ",
                    port, " } } }\n");
  }
  return yaml;
}

inline SnapshotFile parseOrDie(const std::string& yaml) {
  absl::StatusOr<SnapshotFile> file =
      parseSnapshot(yaml, SnapshotFormat::Yaml, ValidationMode::Proxy);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *file : SnapshotFile();
}

// A snapshot built from YAML, replacing `previous` (type versions carry over).
inline SnapshotConstSharedPtr makeSnapshot(const std::string& yaml,
                                           const Snapshot* previous = nullptr) {
  return Snapshot::create(parseOrDie(yaml), previous);
}

// A SotW request: sotwRequest(kListenerTypeUrl, /*version_info=*/"1", /*names=*/{},
// /*nonce=*/"1").
inline envoy::service::discovery::v3::DiscoveryRequest sotwRequest(
    std::string_view type_url, const std::string& version_info,
    const std::vector<std::string>& names, const std::string& nonce,
    const std::string& node_id = "") {
  envoy::service::discovery::v3::DiscoveryRequest request;
  request.set_type_url(std::string(type_url));
  request.set_version_info(version_info);
  for (const std::string& name : names) {
    request.add_resource_names(name);
  }
  request.set_response_nonce(nonce);
  if (!node_id.empty()) {
    request.mutable_node()->set_id(node_id);
  }
  return request;
}

// The same request with error_detail set: a NACK.
inline envoy::service::discovery::v3::DiscoveryRequest withError(
    envoy::service::discovery::v3::DiscoveryRequest request, const std::string& message) {
  request.mutable_error_detail()->set_code(3);  // INVALID_ARGUMENT
  request.mutable_error_detail()->set_message(message);
  return request;
}

inline envoy::service::discovery::v3::DeltaDiscoveryRequest deltaRequest(
    std::string_view type_url, const std::vector<std::string>& subscribe,
    const std::vector<std::string>& unsubscribe, const std::string& nonce,
    const std::map<std::string, std::string>& initial_versions = {},
    const std::string& node_id = "") {
  envoy::service::discovery::v3::DeltaDiscoveryRequest request;
  request.set_type_url(std::string(type_url));
  for (const std::string& name : subscribe) {
    request.add_resource_names_subscribe(name);
  }
  for (const std::string& name : unsubscribe) {
    request.add_resource_names_unsubscribe(name);
  }
  request.set_response_nonce(nonce);
  for (const auto& [name, version] : initial_versions) {
    (*request.mutable_initial_resource_versions())[name] = version;
  }
  if (!node_id.empty()) {
    request.mutable_node()->set_id(node_id);
  }
  return request;
}

inline std::string shortTypeOf(const std::string& type_url) {
  std::optional<ResourceKind> kind = kindFromTypeUrl(type_url);
  return kind.has_value() ? std::string(shortName(*kind)) : type_url;
}

// The name inside an Any of one of our four types.
inline std::string anyName(const google::protobuf::Any& any) {
  std::optional<ResourceKind> kind = kindFromTypeUrl(any.type_url());
  if (!kind.has_value()) {
    return absl::StrCat("<", any.type_url(), ">");
  }
  std::unique_ptr<google::protobuf::Message> message;
  switch (*kind) {
    case ResourceKind::Cluster:
      message = std::make_unique<envoy::config::cluster::v3::Cluster>();
      break;
    case ResourceKind::Endpoint:
      message = std::make_unique<envoy::config::endpoint::v3::ClusterLoadAssignment>();
      break;
    case ResourceKind::Listener:
      message = std::make_unique<envoy::config::listener::v3::Listener>();
      break;
    case ResourceKind::Route:
      message = std::make_unique<envoy::config::route::v3::RouteConfiguration>();
      break;
  }
  if (!any.UnpackTo(message.get())) {
    return "<undecodable>";
  }
  return resourceName(*kind, *message);
}

// "lds version='1' nonce='1' [ingress]", read back from a DiscoveryResponse.
inline std::string describe(const envoy::service::discovery::v3::DiscoveryResponse& response) {
  std::vector<std::string> names;
  for (const auto& any : response.resources()) {
    names.push_back(anyName(any));
  }
  return absl::StrCat(shortTypeOf(response.type_url()), " version='", response.version_info(),
                      "' nonce='", response.nonce(), "' [", absl::StrJoin(names, ", "), "]");
}

// "eds version='2' nonce='3' [service1] removed=[service2]", read back from a
// DeltaDiscoveryResponse (each resource's version is checked against its name by the caller
// when it matters).
inline std::string describe(const envoy::service::discovery::v3::DeltaDiscoveryResponse& response) {
  std::vector<std::string> names;
  for (const auto& resource : response.resources()) {
    EXPECT_EQ(resource.name(), anyName(resource.resource()));
    names.push_back(resource.name());
  }
  return absl::StrCat(shortTypeOf(response.type_url()), " version='",
                      response.system_version_info(), "' nonce='", response.nonce(), "' [",
                      absl::StrJoin(names, ", "), "] removed=[",
                      absl::StrJoin(response.removed_resources(), ", "), "]");
}

// A response decoded from the bytes the stream would write.
inline envoy::service::discovery::v3::DiscoveryResponse decodeSotw(
    const OutgoingResponse& response) {
  envoy::service::discovery::v3::DiscoveryResponse decoded;
  EXPECT_TRUE(decoded.ParseFromString(response.serialize()));
  return decoded;
}
inline envoy::service::discovery::v3::DeltaDiscoveryResponse decodeDelta(
    const OutgoingResponse& response) {
  envoy::service::discovery::v3::DeltaDiscoveryResponse decoded;
  EXPECT_TRUE(decoded.ParseFromString(response.serialize()));
  return decoded;
}

}  // namespace Proxy::ControlPlane::TestUtil
