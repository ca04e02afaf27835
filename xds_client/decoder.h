#pragma once

// Turns the bytes of a DiscoveryResponse / DeltaDiscoveryResponse into typed resources.
// Stateless and thread-safe: the gRPC transport runs it on gRPC's threads so that the main
// thread only does the protocol bookkeeping. Problems are collected per resource, keeping the
// resource's name whenever it can be read (ARCHITECTURE.md, convention 10), so the NACK names the
// right resource and its last good version keeps serving.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "xds_client/xds_client.h"

namespace Proxy::Xds {

// A resource of the response that cannot be used.
struct ResourceError {
  size_t index = 0;
  std::string name;  // empty when it could not be read
  std::string reason;

  // "resource index 2: listener_0: reason", or "resource index 2: reason" without a name.
  std::string format() const;
};

struct DecodedResponse {
  bool delta = false;
  // Not OK when the response itself does not parse; type_url and nonce are then what could be
  // salvaged from the wire (possibly empty) and nothing else is set.
  absl::Status status;
  std::string type_url;
  // SotW version_info, or Delta system_version_info.
  std::string version;
  std::string nonce;
  // The resource type of type_url; nullptr when unknown (then no resource was decoded).
  const ResourceType* type = nullptr;

  // The usable resources, in response order.
  std::vector<DecodedResource> resources;
  std::vector<ResourceError> errors;
  // Names present in the response whose last good version stays: resources in `errors` that
  // have a name, and TTL heartbeats. A SotW Listener/Cluster response does not remove them.
  std::vector<std::string> kept_names;
  // False when some resource's name could not be read: a SotW response then removes nothing,
  // since the unreadable resource may be one we have.
  bool all_names_known = true;
  // Delta: removed_resources, plus subscribed names the server reports as not existing
  // (a Resource with neither body nor ttl).
  std::vector<std::string> removed;
  // Resources without a body but with a ttl: TTL refreshes, not updates.
  size_t heartbeats = 0;
  size_t wire_bytes = 0;
};
using DecodedResponsePtr = std::unique_ptr<DecodedResponse>;

// Decode one response of the given flavour. Never fails: problems are in the result.
DecodedResponsePtr decodeResponse(std::string_view bytes, bool delta);

// The hash DecodedResource::hash holds, for owners comparing with bytes they hold.
uint64_t hashResourceBytes(std::string_view bytes);

}  // namespace Proxy::Xds
