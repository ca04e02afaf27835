#pragma once

// Loading the bootstrap config at startup, as Envoy does: the file named by -c, with
// --config-yaml merged over it, node identity from --service-node/--service-cluster/
// --service-zone, then the checks the protos cannot express (validation.h).
// Main thread, before anything else runs.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"

#include <vector>

#include "proxy/config/field_support.h"
#include "proxy/config/options.h"

namespace Proxy::Config {

using Bootstrap = envoy::config::bootstrap::v3::Bootstrap;

// Loads, completes and validates the bootstrap. Errors are one line with the field's path:
//   static_resources.clusters[0].lb_policy: unsupported load balancing policy 'RING_HASH'
// A static listener without a name is named "listener_<index>" (Envoy would use a UUID).
absl::StatusOr<Bootstrap> loadBootstrap(const Options& options);

// The checks of loadBootstrap on an already parsed bootstrap: every static listener and
// cluster (validation.h), unique listener names and addresses, unique cluster names, and
// xDS config sources that refer to something that exists (ads needs ads_config; an envoy_grpc
// service needs a static cluster of that name).
absl::Status validateBootstrap(const Bootstrap& bootstrap);

// Every field of `bootstrap` the proxy would refuse as not implemented (field_support.h), with
// the context validateBootstrap uses (a gRPC service's static cluster may ask for HTTP/2).
std::vector<UnsupportedField> findUnsupportedBootstrapFields(const Bootstrap& bootstrap);

}  // namespace Proxy::Config
