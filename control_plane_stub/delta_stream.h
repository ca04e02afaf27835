#pragma once

// The incremental (Delta) xDS protocol of one stream, as a state machine without I/O (see
// sotw_stream.h for how the gRPC layer drives it).
//
// The rules:
// - Subscriptions change only through resource_names_subscribe / _unsubscribe, and every
//   request's changes are applied, whatever its nonce (dropping one would lose the change).
//   "*" subscribes to (or unsubscribes from) the wildcard; the first request of a Listener or
//   Cluster type that subscribes to nothing is a wildcard subscription (legacy wildcard).
// - A name subscribed after the first request is sent (or reported absent) even if the client
//   held it: a client that unsubscribes and subscribes again between two requests sends only
//   the subscription, and may have dropped its copy. A name unsubscribed while the wildcard
//   still covers it is sent again (or reported removed): Envoy then holds it as "ambiguous"
//   and waits for the server to say.
// - ADS: a Cluster response that adds or changes an EDS cluster whose ClusterLoadAssignment the
//   client holds is followed by that assignment again: Envoy warms the new cluster until one
//   arrives, and asks for nothing new.
// - Each resource's version is a stable hash of its contents (snapshot.h), so the server knows
//   exactly what the client holds: a resource is sent when its version differs from the
//   client's, and a resource the client holds that left the snapshot is listed in
//   removed_resources. initial_resource_versions (first request of a type) seeds what the
//   client holds, so a reconnecting client gets only what changed while it was away.
// - A subscribed name that the snapshot lacks is listed once in removed_resources, so the
//   client learns at once that it does not exist (as the SotW side leaves it out of a response
//   instead of waiting for it).
// - The first request of a type is always answered, even by a response with nothing in it, so
//   a client that is current (or subscribed to an empty wildcard) is not left waiting.
// - A NACK is recorded; the rejected resources count as held by the client, so they are not
//   sent again until they change.
// - system_version_info is the snapshot's type version.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control_plane_stub/resource_kind.h"
#include "control_plane_stub/snapshot.h"
#include "control_plane_stub/stream_state.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "proxy/common/time.h"

namespace Proxy::ControlPlane {

class DeltaStreamState {
 public:
  // `only`: the one type a per-type service serves; nullopt for ADS.
  DeltaStreamState(TimeSource& time_source, std::optional<ResourceKind> only);

  RequestOutcome onRequest(const envoy::service::discovery::v3::DeltaDiscoveryRequest& request);

  // The next response due against `snapshot`, in the order CDS, EDS, LDS, RDS; nullopt when
  // the client is up to date. Producing a response records its resources as held by the client.
  std::optional<OutgoingResponse> nextResponse(const Snapshot* snapshot);

  bool hasNode() const { return has_node_; }
  const std::string& nodeId() const { return node_id_; }
  std::vector<TypeStatus> status() const;

 private:
  struct TypeState {
    bool subscribed = false;
    bool wildcard = false;
    std::set<std::string> names;
    // name -> version the client holds (as far as we know).
    std::map<std::string, std::string> client_versions;
    // Subscribed names already reported as absent (in removed_resources).
    std::set<std::string> reported_absent;
    // The first request of the type is still to be answered (even by an empty response).
    bool answer_first = false;
    AckState ack;

    bool interested(const std::string& name) const { return wildcard || names.count(name) != 0; }
  };

  TimeSource& time_source_;
  const std::optional<ResourceKind> only_;
  bool has_node_ = false;
  std::string node_id_;
  uint64_t next_nonce_ = 1;
  std::array<TypeState, kResourceKindCount> types_;
};

}  // namespace Proxy::ControlPlane
