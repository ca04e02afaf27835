#pragma once

// Reading an envoy.config.core.v3.DataSource (inline bytes/string, a file, an environment
// variable): direct response bodies, TLS certificates and keys, the management server's
// credentials. In proxy_config_base with field_path, so that xds_client can use it without
// the rest of the config library.

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/core/v3/base.pb.h"

namespace Proxy::Config {

// The contents of a DataSource (inline bytes/string, a file read now, or an environment
// variable). `what` names the field in error messages. Larger than `max_size` -> error.
absl::StatusOr<std::string> readDataSource(const envoy::config::core::v3::DataSource& source,
                                           const std::string& what, size_t max_size);

}  // namespace Proxy::Config
