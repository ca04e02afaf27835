#pragma once

// The type URLs of the xDS resources, in one place for everything that speaks xDS: the client
// (xds_client/resource_type.h) and the reference management server
// (control_plane_stub/resource_kind.h) both take them from here. Upstream's exact strings
// (wire compatibility with Envoy is the contract: README.md).
//
// Plain character arrays: constants that convert to std::string_view (the project's string view)
// and go into absl::StrCat as they are.

namespace Proxy {

inline constexpr char kListenerTypeUrl[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr char kRouteConfigurationTypeUrl[] =
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr char kClusterTypeUrl[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr char kClusterLoadAssignmentTypeUrl[] =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr char kSecretTypeUrl[] =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
// The wrapper a SotW server may put around a resource (for a TTL) and that Delta always uses.
inline constexpr char kResourceWrapperTypeUrl[] =
    "type.googleapis.com/envoy.service.discovery.v3.Resource";

}  // namespace Proxy
