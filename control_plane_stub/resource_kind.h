#pragma once

// The five xDS resource types the control plane serves, as a small closed enum: type URLs, the
// short names used in logs ("lds"), which ones are wildcard types, and the order in which a
// stream sends them (Envoy's make-before-break order: clusters and their endpoints before the
// listeners and routes that use them).

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

#include "proxy/common/xds_type_urls.h"

namespace Proxy::ControlPlane {

// Declaration order is the send order on an ADS stream: CDS, EDS, LDS, RDS, then SDS (the
// secrets TLS contexts name; a listener or cluster that needs one warms until it comes).
enum class ResourceKind { Cluster, Endpoint, Listener, Route, Secret };

inline constexpr size_t kResourceKindCount = 5;
inline constexpr std::array<ResourceKind, kResourceKindCount> kAllResourceKinds = {
    ResourceKind::Cluster, ResourceKind::Endpoint, ResourceKind::Listener, ResourceKind::Route,
    ResourceKind::Secret};

// The type URLs come from proxy/common/xds_type_urls.h, shared with the xDS client. Route and
// Endpoint keep this file's names for them (ResourceKind::Route, ResourceKind::Endpoint).
using ::Proxy::kClusterTypeUrl;
using ::Proxy::kListenerTypeUrl;
inline constexpr std::string_view kRouteTypeUrl = ::Proxy::kRouteConfigurationTypeUrl;
inline constexpr std::string_view kEndpointTypeUrl = ::Proxy::kClusterLoadAssignmentTypeUrl;
using ::Proxy::kSecretTypeUrl;

inline constexpr size_t index(ResourceKind kind) {
  return static_cast<size_t>(kind);
}

std::string_view typeUrl(ResourceKind kind);
// "cds", "eds", "lds", "rds", "sds".
std::string_view shortName(ResourceKind kind);
// The field of SnapshotFile.resources holding this type: "clusters", "endpoints", ...
std::string_view snapshotField(ResourceKind kind);
// "cluster", "cluster load assignment", "listener", "route configuration" (for messages).
std::string_view displayName(ResourceKind kind);
// nullopt for any other type URL.
std::optional<ResourceKind> kindFromTypeUrl(std::string_view type_url);

// Listener and Cluster: an empty subscription is a wildcard, and a SotW response carries every
// subscribed resource (absence means deletion). Route, Endpoint and Secret are always named.
inline constexpr bool isWildcardType(ResourceKind kind) {
  return kind == ResourceKind::Listener || kind == ResourceKind::Cluster;
}

}  // namespace Proxy::ControlPlane
