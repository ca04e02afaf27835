// Fuzzes what a management server can send: the bytes of a DiscoveryResponse (first input byte
// even) or a DeltaDiscoveryResponse (odd), decoded as the xDS client's transport does, then
// every usable resource put through the checks the proxy runs before applying it (listener,
// cluster and endpoint validation; route tables are built). Never a crash, a leak or a hang;
// every rejected resource has a reason.

#include <cstdint>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "proxy/config/validation.h"
#include "proxy/router/config_impl.h"
#include "test/fuzz/fuzz_util.h"
#include "xds_client/decoder.h"
#include "xds_client/resource_type.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace Proxy;
  // Invalid UTF-8 in a string field is one of the things the decoder must refuse; protobuf
  // also logs each one, which would drown the fuzzer's output.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  if (size == 0) {
    return 0;
  }
  const bool delta = data[0] & 1;
  Xds::DecodedResponsePtr response = Xds::decodeResponse(
      std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), delta);
  FUZZ_CHECK(response != nullptr);
  for (const Xds::ResourceError& error : response->errors) {
    FUZZ_CHECK(!error.reason.empty());
  }
  for (const Xds::DecodedResource& resource : response->resources) {
    FUZZ_CHECK(resource.message != nullptr);
    const std::string_view type_url = response->type_url;
    absl::Status status;
    if (type_url == Xds::kListenerTypeUrl) {
      status = Config::validateListener(resource.as<envoy::config::listener::v3::Listener>());
    } else if (type_url == Xds::kClusterTypeUrl) {
      status = Config::validateCluster(resource.as<envoy::config::cluster::v3::Cluster>());
    } else if (type_url == Xds::kClusterLoadAssignmentTypeUrl) {
      status = Config::validateClusterLoadAssignment(
          resource.as<envoy::config::endpoint::v3::ClusterLoadAssignment>());
    } else if (type_url == Xds::kRouteConfigurationTypeUrl) {
      status =
          Router::ConfigImpl::create(resource.as<envoy::config::route::v3::RouteConfiguration>())
              .status();
    }
    if (!status.ok()) {
      FUZZ_CHECK(!status.message().empty());
    }
  }
  return 0;
}
