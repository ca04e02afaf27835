#include "proxy/config/validation.h"

// The checks validation.h and validation_util.h declare that belong to no one resource type:
// field paths and errors, durations, header names and values, socket addresses, config sources
// and data sources. Each resource type's checks are in its own file: route_validation.cc,
// listener_validation.cc, cluster_validation.cc (clusters and their endpoints).

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "proxy/common/string_util.h"
#include "proxy/config/validation_util.h"

namespace Proxy::Config {

using envoy::config::core::v3::Address;
using envoy::config::core::v3::ApiConfigSource;
using envoy::config::core::v3::ConfigSource;
using envoy::config::core::v3::SocketAddress;

bool isPositive(const google::protobuf::Duration& d) {
  return d.seconds() > 0 || (d.seconds() == 0 && d.nanos() > 0);
}

bool isNegative(const google::protobuf::Duration& d) {
  return d.seconds() < 0 || d.nanos() < 0;
}

// Envoy's rule for header mutations: pseudo-headers and Host are off limits.
bool isModifiableHeader(std::string_view name) {
  return !StringUtil::startsWith(name, ":") && !StringUtil::equalsIgnoreCase(name, "host");
}

absl::Status validateSocketAddress(const std::string& path, const Address& address,
                                   bool is_endpoint, bool allow_hostname) {
  if (address.has_pipe() || address.has_envoy_internal_address()) {
    return error(path, "only socket_address is supported");
  }
  if (!address.has_socket_address()) {
    return error(join(path, "socket_address"), "required");
  }
  const std::string sa_path = join(path, "socket_address");
  const SocketAddress& sa = address.socket_address();
  if (sa.protocol() != SocketAddress::TCP) {
    return error(join(sa_path, "protocol"), "only TCP is supported");
  }
  if (!sa.resolver_name().empty()) {
    return error(join(sa_path, "resolver_name"), "custom resolvers are not supported");
  }
  if (sa.address().empty()) {
    return error(join(sa_path, "address"), "required");
  }
  in6_addr buf;
  if (!allow_hostname && inet_pton(AF_INET, sa.address().c_str(), &buf) != 1 &&
      inet_pton(AF_INET6, sa.address().c_str(), &buf) != 1) {
    // Envoy's wording: only the endpoints of DNS clusters are resolved.
    return error(join(sa_path, "address"), absl::StrCat("malformed IP address: ", sa.address()));
  }
  if (sa.port_specifier_case() == SocketAddress::kNamedPort) {
    return error(join(sa_path, "named_port"), "named ports are not supported");
  }
  if (sa.port_value() > 65535) {
    return error(join(sa_path, "port_value"),
                 absl::StrCat(sa.port_value(), " is out of range (0-65535)"));
  }
  if (is_endpoint && sa.port_value() == 0) {
    return error(join(sa_path, "port_value"), "an endpoint needs a port between 1 and 65535");
  }
  return absl::OkStatus();
}

absl::Status validateApiConfigSourceAt(const std::string& path, const ApiConfigSource& api) {
  switch (api.api_type()) {
    case ApiConfigSource::GRPC:
    case ApiConfigSource::DELTA_GRPC:
    case ApiConfigSource::AGGREGATED_GRPC:
    case ApiConfigSource::AGGREGATED_DELTA_GRPC:
      break;
    default:
      return error(
          join(path, "api_type"),
          absl::StrCat("unsupported api type '", ApiConfigSource::ApiType_Name(api.api_type()),
                       "' (expected GRPC or DELTA_GRPC)"));
  }
  if (api.grpc_services().empty()) {
    return error(join(path, "grpc_services"), "at least one gRPC service is required");
  }
  for (int i = 0; i < api.grpc_services_size(); i++) {
    const auto& service = api.grpc_services(i);
    const std::string sp = at(path, "grpc_services", i);
    if (service.has_envoy_grpc()) {
      if (service.envoy_grpc().cluster_name().empty()) {
        return error(join(sp, "envoy_grpc.cluster_name"), "required");
      }
    } else if (service.has_google_grpc()) {
      if (service.google_grpc().target_uri().empty()) {
        return error(join(sp, "google_grpc.target_uri"), "required");
      }
    } else {
      return error(sp, "one of envoy_grpc or google_grpc is required");
    }
  }
  return absl::OkStatus();
}

absl::Status validateConfigSourceAt(const std::string& path, const ConfigSource& source) {
  switch (source.config_source_specifier_case()) {
    case ConfigSource::kAds:
    case ConfigSource::kSelf:
      return absl::OkStatus();
    case ConfigSource::kApiConfigSource:
      return validateApiConfigSourceAt(join(path, "api_config_source"), source.api_config_source());
    case ConfigSource::kPath:
    case ConfigSource::kPathConfigSource:
      return error(path,
                   "file-based config sources are not supported (use ads or api_config_source)");
    default:
      return error(path, "one of ads, api_config_source or self is required");
  }
}

// A config source inside a resource (an HCM's rds, an EDS cluster's eds_config): RDS and EDS
// are fetched over ADS when there is one, else from the server LDS/CDS use. Whether an
// api_config_source names that same server depends on the bootstrap: checked against it by
// checkResourceConfigSources (bootstrap.h). Its initial_fetch_timeout bounds the wait for that
// resource (server/xds_config.cc).
absl::Status validateResourceConfigSourceAt(const std::string& path, const ConfigSource& source) {
  RETURN_IF_ERROR(validateConfigSourceAt(path, source));
  if (source.has_initial_fetch_timeout() && isNegative(source.initial_fetch_timeout())) {
    return error(join(path, "initial_fetch_timeout"), "must not be negative");
  }
  if (source.resource_api_version() == envoy::config::core::v3::V2) {
    return error(join(path, "resource_api_version"), "V3 is required (got V2)");
  }
  return absl::OkStatus();
}

absl::Status validateConfigSource(const ConfigSource& source, const std::string& path) {
  return validateConfigSourceAt(path, source);
}

absl::Status validateApiConfigSource(const ApiConfigSource& source, const std::string& path) {
  return validateApiConfigSourceAt(path, source);
}

absl::Status validateAddress(const Address& address, const std::string& path) {
  return validateSocketAddress(path, address, /*is_endpoint=*/false);
}

}  // namespace Proxy::Config
