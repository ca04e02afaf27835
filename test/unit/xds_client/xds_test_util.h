#pragma once

// Helpers for xds_client tests: resources and responses in a line, a watcher that records
// what it is told as readable event strings, and proto comparison with a readable diff.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proxy/common/string_view.h"
#include "xds_client/xds_client.h"

namespace Proxy::Test {

inline google::protobuf::Any packed(const google::protobuf::Message& message) {
  google::protobuf::Any any;
  any.PackFrom(message);
  return any;
}

inline envoy::config::listener::v3::Listener listener(const std::string& name, uint32_t port) {
  envoy::config::listener::v3::Listener l;
  l.set_name(name);
  l.mutable_address()->mutable_socket_address()->set_address("127.0.0.1");
  l.mutable_address()->mutable_socket_address()->set_port_value(port);
  return l;
}

inline envoy::config::cluster::v3::Cluster edsCluster(const std::string& name) {
  envoy::config::cluster::v3::Cluster c;
  c.set_name(name);
  c.set_type(envoy::config::cluster::v3::Cluster::EDS);
  c.mutable_eds_cluster_config()->mutable_eds_config()->mutable_ads();
  return c;
}

inline envoy::config::route::v3::RouteConfiguration routeConfig(const std::string& name,
                                                                const std::string& cluster) {
  envoy::config::route::v3::RouteConfiguration r;
  r.set_name(name);
  auto* vhost = r.add_virtual_hosts();
  vhost->set_name("all");
  vhost->add_domains("*");
  auto* route = vhost->add_routes();
  route->mutable_match()->set_prefix("/");
  route->mutable_route()->set_cluster(cluster);
  return r;
}

inline envoy::config::endpoint::v3::ClusterLoadAssignment endpoints(const std::string& cluster,
                                                                    uint32_t port) {
  envoy::config::endpoint::v3::ClusterLoadAssignment a;
  a.set_cluster_name(cluster);
  auto* address = a.add_endpoints()->add_lb_endpoints()->mutable_endpoint()->mutable_address();
  address->mutable_socket_address()->set_address("127.0.0.1");
  address->mutable_socket_address()->set_port_value(port);
  return a;
}

// A SotW response: sotwResponse(kListenerTypeUrl, /*version_info=*/"1", /*nonce=*/"A", {...}).
inline envoy::service::discovery::v3::DiscoveryResponse sotwResponse(
    std::string_view type_url, const std::string& version_info, const std::string& nonce,
    const std::vector<google::protobuf::Any>& resources) {
  envoy::service::discovery::v3::DiscoveryResponse response;
  response.set_type_url(std::string(type_url));
  response.set_version_info(version_info);
  response.set_nonce(nonce);
  for (const auto& any : resources) {
    *response.add_resources() = any;
  }
  return response;
}

// A Delta resource: deltaResource("c1", /*version=*/"v1", edsCluster("c1")).
inline envoy::service::discovery::v3::Resource deltaResource(
    const std::string& name, const std::string& version, const google::protobuf::Message& body) {
  envoy::service::discovery::v3::Resource resource;
  resource.set_name(name);
  resource.set_version(version);
  resource.mutable_resource()->PackFrom(body);
  return resource;
}

inline envoy::service::discovery::v3::DeltaDiscoveryResponse deltaResponse(
    std::string_view type_url, const std::string& nonce,
    const std::vector<envoy::service::discovery::v3::Resource>& resources,
    const std::vector<std::string>& removed) {
  envoy::service::discovery::v3::DeltaDiscoveryResponse response;
  response.set_type_url(std::string(type_url));
  response.set_nonce(nonce);
  for (const auto& resource : resources) {
    *response.add_resources() = resource;
  }
  for (const auto& name : removed) {
    response.add_removed_resources(name);
  }
  return response;
}

// Compares with a text-format proto; the failure message is MessageDifferencer's report.
template <class T>
::testing::AssertionResult protoEquals(const T& actual, const std::string& expected_text) {
  T expected;
  if (!google::protobuf::TextFormat::ParseFromString(expected_text, &expected)) {
    return ::testing::AssertionFailure() << "expected text does not parse: " << expected_text;
  }
  google::protobuf::util::MessageDifferencer differencer;
  std::string report;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(expected, actual)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "protos differ:\n"
                                       << report << "actual:\n"
                                       << actual.DebugString();
}

// Takes initial_resource_versions out of a Delta request, to compare it through the generated
// API: in TSAN builds protobuf's map_field.h gives MapFieldBase another layout than Debian's
// uninstrumented libprotobuf has, so reflection (TextFormat, MessageDifferencer) on a map
// crashes there. The rest of the request is compared with protoEquals.
inline std::map<std::string, std::string> takeInitialResourceVersions(
    envoy::service::discovery::v3::DeltaDiscoveryRequest& request) {
  std::map<std::string, std::string> versions(request.initial_resource_versions().begin(),
                                              request.initial_resource_versions().end());
  request.clear_initial_resource_versions();
  return versions;
}

// Records what the client tells it as one string per event, e.g.
//   "update version='2' added=[listener_a] removed=[listener_b]"
//   "failed FetchTimedOut"
// and answers with `verdict` (OK by default).
class RecordingWatcher : public Xds::Watcher {
 public:
  absl::Status onConfigUpdate(const std::vector<Xds::DecodedResource>& added_or_updated,
                              const std::vector<std::string>& removed,
                              const std::string& version) override {
    std::vector<std::string> names;
    for (const auto& resource : added_or_updated) {
      names.push_back(resource.name);
      last_resources.push_back(resource);
    }
    events.push_back(absl::StrCat("update version='", version, "' added=[",
                                  absl::StrJoin(names, ", "), "] removed=[",
                                  absl::StrJoin(removed, ", "), "]"));
    return verdict ? verdict(added_or_updated) : absl::OkStatus();
  }

  void onConfigUpdateFailed(Xds::FailureReason reason) override {
    events.push_back(absl::StrCat("failed ", asAbsl(Xds::failureReasonName(reason))));
  }

  // The events since the last call.
  std::vector<std::string> take() {
    auto result = std::move(events);
    events.clear();
    return result;
  }

  std::vector<std::string> events;
  std::vector<Xds::DecodedResource> last_resources;
  std::function<absl::Status(const std::vector<Xds::DecodedResource>&)> verdict;
};

}  // namespace Proxy::Test
