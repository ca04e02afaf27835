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
// service needs a static cluster of that name) and that the proxy serves
// (checkResourceConfigSources).
absl::Status validateBootstrap(const Bootstrap& bootstrap);

// The xDS config sources inside a listener (each HTTP connection manager's rds.config_source)
// or a cluster (eds_cluster_config.eds_config), checked against the bootstrap's
// dynamic_resources. The proxy fetches RDS and EDS on one stream each: ADS when ads_config is
// set, else the stream of lds_config (RDS) or cds_config (EDS). So `ads` needs ads_config, and an
// api_config_source is served by that stream when it names the same gRPC service with the same
// protocol (GRPC or AGGREGATED_GRPC: SotW; DELTA_GRPC or AGGREGATED_DELTA_GRPC: Delta), V3, and
// no rate limit of its own. Another server is refused ("... is not supported"): the proxy would
// otherwise ask the wrong server. `path` is prepended to the field paths ("" for an xDS
// resource, whose NACK names it).
absl::Status checkResourceConfigSources(const envoy::config::listener::v3::Listener& listener,
                                        const Bootstrap::DynamicResources& dynamic,
                                        const std::string& path = "");
absl::Status checkResourceConfigSources(const envoy::config::cluster::v3::Cluster& cluster,
                                        const Bootstrap::DynamicResources& dynamic,
                                        const std::string& path = "");

// Every field of `bootstrap` the proxy would refuse as not implemented (field_support.h).
std::vector<UnsupportedField> findUnsupportedBootstrapFields(const Bootstrap& bootstrap);

}  // namespace Proxy::Config
