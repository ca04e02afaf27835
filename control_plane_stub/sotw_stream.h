#pragma once

// The state-of-the-world (SotW) protocol of one stream, as a state machine without I/O: feed
// it requests, ask it for the next response against the current snapshot. The gRPC layer
// calls nextResponse() whenever the stream can write (after a request, a snapshot change, or a
// finished write), so only one response is in flight per stream and a newer snapshot simply
// supersedes an older one that was never written.
//
// The rules (go-control-plane's SotW cache, with its known flaws fixed):
// - Subscriptions: Listener and Cluster are wildcard types: a first request with no names (and
//   the requests after it that keep sending none) subscribes to everything, "*" does too, and
//   names select resources. Route and Endpoint are always named; "*" is a wildcard there too
//   and an empty list means no interest.
// - A type is answered when the snapshot's type version (or contents) differs from what the
//   stream last sent, or when a request names resources this stream has not answered for (the
//   client is told about the new names at once, even at an unchanged version, as the xDS spec
//   requires). On the first request of a type, a version_info equal to the snapshot's type
//   version is trusted for a wildcard subscription: a client that reconnects is not resent the
//   listeners and clusters it has. Named resources are compared with what this stream sent,
//   as go-control-plane does: a reconnecting client's names may include some it never received
//   (the xDS spec allows the shortcut only where the client cannot subscribe to new names).
// - Named subscriptions get the requested resources that exist. Names the snapshot lacks are
//   left out and the response is sent anyway, so a client learns at once that they are missing
//   (Envoy then initialises the route or cluster as empty) instead of waiting forever, which is
//   what go-control-plane does when any requested name is missing.
// - A request whose response_nonce is not the nonce of the last response of its type is stale:
//   ignored entirely (the client will answer the newer response).
// - ACK: response_nonce matches and no error_detail. NACK: with error_detail; the rejected
//   version (type version and contents) is never sent again on this stream, neither in answer
//   to later requests nor when names are added; the next different snapshot is sent normally.
//   (go-control-plane answers the NACK's request with the same version: a loop.)
// - The first request's node id is the stream's node; later node fields are ignored.
// - Make before break on ADS (routes are not warmed: the xDS spec leaves it to the server to
//   update clusters before the routes that use them, and to remove them only after):
//   an update of listeners or routes waits while a CDS or EDS response is not yet ACKed (or
//   NACKed), so a route never points at a cluster the client is still warming; and while a
//   listener or route update is due or not yet ACKed, CDS responses keep the clusters the
//   client holds that the new snapshot dropped (from the snapshot they came from, at the new
//   type version), so a route never points at a removed cluster. The removal follows once the
//   listeners and routes are ACKed. Per-type streams cannot order across types and do neither.
// - ADS: a CDS response that adds or changes an EDS cluster whose ClusterLoadAssignment the
//   client already watches is followed by EDS again, even at an unchanged version. Envoy warms
//   the new cluster until it receives an assignment and subscribes to nothing new (its
//   subscription already has the name), so without it the cluster would warm until its initial
//   fetch timeout. (On per-type streams Envoy opens a new EDS stream for each new cluster.)

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

class SotwStreamState {
 public:
  // `only`: the one type a per-type service (LDS, RDS, CDS, EDS) serves; nullopt for ADS.
  SotwStreamState(TimeSource& time_source, std::optional<ResourceKind> only);

  // Applies one request. `snapshot` (may be null) is the one currently serving the stream's
  // node; it is only read to trust a reconnecting client's version_info.
  RequestOutcome onRequest(const envoy::service::discovery::v3::DiscoveryRequest& request,
                           const Snapshot* snapshot);

  // The next response due against `snapshot`, in the order CDS, EDS, LDS, RDS; nullopt when
  // the client has everything (or there is no snapshot). Producing a response records it as
  // sent.
  std::optional<OutgoingResponse> nextResponse(const Snapshot* snapshot);

  bool hasNode() const { return has_node_; }
  const std::string& nodeId() const { return node_id_; }
  // The types requested so far, in send order.
  std::vector<TypeStatus> status() const;

 private:
  struct TypeState {
    bool subscribed = false;
    bool wildcard = false;
    // Still in "legacy wildcard" mode: every request so far had no names.
    bool legacy_wildcard = false;
    std::set<std::string> names;
    // Named subscriptions: the names this stream answered for (those still requested).
    std::set<std::string> sent_names;
    // A request added names: answer even if the version did not change.
    bool names_added = false;
    // EDS on ADS: a cluster using a watched assignment changed; send it again.
    bool resend = false;
    // What the client holds: the type version and type hash of the last response (or of the
    // version it reported on its first request).
    bool known = false;
    uint64_t sent_hash = 0;
    // The contents the client rejected, never to be sent again.
    std::optional<std::pair<std::string, uint64_t>> nacked;
    AckState ack;
  };

  // A cluster the client holds, and the snapshot that owns its bytes.
  struct HeldCluster {
    SnapshotConstSharedPtr owner;
    const Resource* resource = nullptr;
  };

  bool needsResponse(ResourceKind kind, const TypeState& state, const Snapshot& snapshot) const;
  OutgoingResponse buildResponse(ResourceKind kind, TypeState& state, const Snapshot& snapshot);
  // Make before break (ADS only): a CDS or EDS response awaits its ACK or NACK.
  bool clustersInFlight() const;
  // Make before break (ADS only): a listener or route update is due or awaits its ACK.
  bool routesPending(const Snapshot& snapshot) const;

  TimeSource& time_source_;
  const std::optional<ResourceKind> only_;
  bool has_node_ = false;
  std::string node_id_;
  uint64_t next_nonce_ = 1;
  std::array<TypeState, kResourceKindCount> types_;
  // ADS only: the clusters of the last CDS response, by name, and whether it kept some that
  // the snapshot no longer has (their removal is still to be sent). A NACK puts back those of
  // the last ACKed response.
  std::map<std::string, HeldCluster> held_clusters_;
  std::map<std::string, HeldCluster> acked_clusters_;
  bool kept_clusters_ = false;
};

}  // namespace Proxy::ControlPlane
