#include "control_plane_stub/resource_kind.h"

namespace Proxy::ControlPlane {

std::string_view typeUrl(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::Cluster:
      return kClusterTypeUrl;
    case ResourceKind::Endpoint:
      return kEndpointTypeUrl;
    case ResourceKind::Listener:
      return kListenerTypeUrl;
    case ResourceKind::Route:
      return kRouteTypeUrl;
    case ResourceKind::Secret:
      return kSecretTypeUrl;
  }
  return "";
}

std::string_view shortName(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::Cluster:
      return "cds";
    case ResourceKind::Endpoint:
      return "eds";
    case ResourceKind::Listener:
      return "lds";
    case ResourceKind::Route:
      return "rds";
    case ResourceKind::Secret:
      return "sds";
  }
  return "";
}

std::string_view snapshotField(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::Cluster:
      return "clusters";
    case ResourceKind::Endpoint:
      return "endpoints";
    case ResourceKind::Listener:
      return "listeners";
    case ResourceKind::Route:
      return "routes";
    case ResourceKind::Secret:
      return "secrets";
  }
  return "";
}

std::string_view displayName(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::Cluster:
      return "cluster";
    case ResourceKind::Endpoint:
      return "cluster load assignment";
    case ResourceKind::Listener:
      return "listener";
    case ResourceKind::Route:
      return "route configuration";
    case ResourceKind::Secret:
      return "secret";
  }
  return "";
}

std::optional<ResourceKind> kindFromTypeUrl(std::string_view type_url) {
  for (ResourceKind kind : kAllResourceKinds) {
    if (type_url == typeUrl(kind)) {
      return kind;
    }
  }
  return std::nullopt;
}

}  // namespace Proxy::ControlPlane
