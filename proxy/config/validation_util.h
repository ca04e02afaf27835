#pragma once

// What the validation files (route_validation.cc, listener_validation.cc, cluster_validation.cc)
// share (besides field_path.h's paths and errors): checks on durations and header names
// and values, socket addresses and config sources. Internal to proxy_config: callers include
// validation.h. Pure functions: safe from any thread.

#include <string>
#include <string_view>

#include "absl/status/status.h"

#include "envoy/config/core/v3/address.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "google/protobuf/duration.pb.h"

#include "proxy/common/header_utility.h"
#include "proxy/common/status.h"
#include "proxy/config/field_path.h"

namespace Proxy::Config {

bool isPositive(const google::protobuf::Duration& d);
bool isNegative(const google::protobuf::Duration& d);

// Header names in a config may also be HTTP/2 pseudo-headers (":path").
inline bool isValidHeaderName(std::string_view name) {
  return HeaderUtility::isValidHeaderName(name, /*allow_pseudo=*/true);
}
using HeaderUtility::isValidHeaderValue;
// Envoy's rule for header mutations: pseudo-headers and Host are off limits.
bool isModifiableHeader(std::string_view name);

// A TCP socket_address with an IP literal (or, with `allow_hostname`, a DNS name: the endpoints
// of STRICT_DNS / LOGICAL_DNS clusters); an endpoint's also needs a port other than 0.
absl::Status validateSocketAddress(const std::string& path,
                                   const envoy::config::core::v3::Address& address,
                                   bool is_endpoint, bool allow_hostname = false);

absl::Status validateApiConfigSourceAt(const std::string& path,
                                       const envoy::config::core::v3::ApiConfigSource& api);
absl::Status validateConfigSourceAt(const std::string& path,
                                    const envoy::config::core::v3::ConfigSource& source);
// A config source inside a resource (an HCM's rds, an EDS cluster's eds_config): ads or self.
absl::Status validateResourceConfigSourceAt(const std::string& path,
                                            const envoy::config::core::v3::ConfigSource& source);

// The checks of a route configuration's values, without the supported-fields walk (an inline
// route_config is walked as part of its listener). In route_validation.cc.
absl::Status validateRouteConfigurationAt(const std::string& path,
                                          const envoy::config::route::v3::RouteConfiguration& rc);

}  // namespace Proxy::Config
