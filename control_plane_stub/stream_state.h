#pragma once

// What the SotW and Delta protocol state machines (sotw_stream.h, delta_stream.h) share: the
// outcome of a request, a response ready to be written, and the per-type ACK bookkeeping.
// None of this is thread-safe; the gRPC stream that owns a state machine locks around it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control_plane_stub/resource_kind.h"
#include "control_plane_stub/snapshot_cache.h"
#include "proxy/common/time.h"

namespace Proxy::ControlPlane {

// What one request turned out to be: for the stream's log line and the cache's NACK record.
struct RequestOutcome {
  enum class Kind {
    Request,      // the first request of a type, a change of names, or a repeat
    Ack,          // answers the last response without error_detail
    Nack,         // answers the last response with error_detail
    StaleNonce,   // SotW: answers a response that has since been superseded; ignored
    UnknownType,  // a type URL this server does not serve; ignored
    WrongType,    // a per-type stream (LDS, ...) asked for another type; the stream ends
  };
  Kind kind = Kind::Request;
  std::string type_url;
  std::string version;  // Ack: the version acked; Nack: the version rejected
  std::string nonce;
  std::string message;  // Nack: error_detail.message; WrongType: why
  // This was the first request carrying the node id (it becomes the stream's node).
  bool learned_node = false;
};

// A response ready for the wire: the serialized message in pieces that are written one after
// the other. A SotW response's first piece (everything but the nonce) is shared between every
// stream that gets the same resources.
struct OutgoingResponse {
  ResourceKind kind = ResourceKind::Cluster;
  std::string version;
  std::string nonce;
  std::vector<std::shared_ptr<const std::string>> pieces;
  // For logs and tests: the resources sent (names) and, for Delta, the names removed.
  std::vector<std::string> resource_names;
  std::vector<std::string> removed;

  size_t byteSize() const;
  // The pieces joined: the serialized DiscoveryResponse / DeltaDiscoveryResponse.
  std::string serialize() const;
};

// The ACK/NACK bookkeeping of one type on one stream.
struct AckState {
  // The nonce of the last response of this type; "" before the first.
  std::string nonce;
  // The last response is neither ACKed nor NACKed yet.
  bool awaiting_ack = false;
  std::string sent_version;
  std::string acked_version;
  std::optional<SystemTime> acked_at;
  std::optional<NackRecord> last_nack;

  // Records that a response with `version` and `nonce` is being sent.
  void onSent(std::string version, std::string new_nonce) {
    sent_version = std::move(version);
    nonce = std::move(new_nonce);
    awaiting_ack = true;
  }
  // True when `response_nonce` answers the response still awaiting an ACK or NACK.
  bool answers(std::string_view response_nonce) const {
    return awaiting_ack && !nonce.empty() && response_nonce == nonce;
  }
  void fillStatus(TypeStatus& status) const {
    status.sent_version = sent_version;
    status.pending_nonce = awaiting_ack ? nonce : "";
    status.acked_version = acked_version;
    status.acked_at = acked_at;
    status.last_nack = last_nack;
  }
};

}  // namespace Proxy::ControlPlane
