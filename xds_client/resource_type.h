#pragma once

// What the client knows about each xDS resource type: its type URL, its message type, where
// its name lives, whether a SotW response carries the whole state of the world, and the
// per-type gRPC methods. A fixed table, not a registry (ARCHITECTURE.md, convention 3).

#include <string>
#include <string_view>

#include "google/protobuf/message.h"
#include "proxy/common/xds_type_urls.h"

namespace Proxy::Xds {

// The type URLs live in proxy/common/xds_type_urls.h (shared with the control plane); these
// make them Xds::kListenerTypeUrl, ... as well.
using ::Proxy::kClusterLoadAssignmentTypeUrl;
using ::Proxy::kClusterTypeUrl;
using ::Proxy::kListenerTypeUrl;
using ::Proxy::kResourceWrapperTypeUrl;
using ::Proxy::kRouteConfigurationTypeUrl;
using ::Proxy::kSecretTypeUrl;

// The ADS methods; per-type methods are in ResourceType.
inline constexpr std::string_view kAdsSotwMethod =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
inline constexpr std::string_view kAdsDeltaMethod =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

struct ResourceType {
  std::string type_url;
  // A default instance of the message; New() makes the ones decoding fills.
  const google::protobuf::Message* prototype = nullptr;
  // The string field holding the resource name: `name`, or `cluster_name` for a
  // ClusterLoadAssignment. Read from the wire when the body does not parse (ARCHITECTURE.md,
  // convention 10).
  const google::protobuf::FieldDescriptor* name_field = nullptr;
  // Listener and Cluster: a SotW response holds every resource, so absence means removal.
  bool all_resources_required_in_sotw = false;
  // "lds", "rds", "cds", "eds", or the message name for other types: stats and logs.
  std::string short_name;
  // Per-type (non-ADS) gRPC methods; empty for types that have none.
  std::string sotw_method;
  std::string delta_method;
  // Order of requests when several types are pending on one ADS stream: CDS, EDS, LDS, RDS
  // (make-before-break, as Envoy orders them).
  int request_order = 100;
};

// The type for `type_url`, or nullptr when it names no message type linked into this binary
// or a message without a string `name` field. The four types the proxy uses are built in;
// any other message type with a `name` field works over ADS. Thread-safe: the table is built
// once and never changes.
const ResourceType* findResourceType(std::string_view type_url);

// "lds" for the Listener type URL, ...; the type URL itself for others.
std::string shortTypeName(std::string_view type_url);

}  // namespace Proxy::Xds
