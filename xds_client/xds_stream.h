#pragma once

// One xDS stream (ADS, or one resource type's own service): opening it, reconnecting with
// jittered backoff, the request rate limit, and building SotW / Delta requests from the
// TypeState of the types it serves. What a response means (apply, ACK, NACK) is decided by the
// client (XdsClientImpl), which owns the streams; gRPC's XdsClient calls this an AdsCall.
// Main thread only.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"
#include "xds_client/backoff.h"
#include "xds_client/config.h"
#include "xds_client/transport.h"
#include "xds_client/type_state.h"

namespace Proxy::Xds {

// gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED).
inline constexpr size_t kGrpcStatusCodes = 17;

class XdsStream : public XdsTransport::EventHandler {
 public:
  // What the stream tells its owner. Main thread.
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // A decoded response arrived on `stream`.
    virtual void onStreamResponse(XdsStream& stream, DecodedResponsePtr response) = 0;
    // The stream closed (it reconnects after its backoff); its types' watchers should hear.
    virtual void onStreamFailure(XdsStream& stream) = 0;
    // The stream opened or connected: the connected_state gauge may change.
    virtual void onStreamStateChanged() = 0;
    // Requests are due: flush every stream on the next loop iteration (one batch).
    virtual void scheduleFlush() = 0;
  };

  // `client_config` (node, backoff) must outlive the stream; so must `callbacks`.
  // `rate_limit_enforced` counts requests the rate limit held back. With a google_grpc
  // stat_prefix, the stream counts Envoy's Google gRPC client stats in `scope`
  // (grpc.<stat_prefix>.streams_total, .streams_closed_<gRPC status code>).
  XdsStream(const XdsClientConfig& client_config, XdsStreamConfig config, std::string method,
            std::string label, Event::Dispatcher& main, XdsTransportFactory& transport_factory,
            Stats::Counter& rate_limit_enforced, Stats::Scope& scope, Callbacks& callbacks);
  // Cancels the stream (the transport waits for gRPC to let go of it).
  ~XdsStream() override;

  // Serve `type` on this stream. Requests go out in request_order (CDS, EDS, LDS, RDS).
  void addType(TypeState& type);

  bool perType() const { return per_type_; }
  void setPerType() { per_type_ = true; }
  const std::vector<TypeState*>& types() const { return types_; }
  const std::string& label() const { return label_; }
  bool delta() const { return config_.delta; }
  bool started() const { return started_; }
  bool connected() const { return connected_; }
  bool hasWatches() const;

  // Open the stream if it is not open and not waiting to retry.
  void maybeConnect();
  // Send every pending request, in type order, as far as the rate limit allows.
  void flush();

  // XdsTransport::EventHandler
  void onConnected() override;
  void onResponse(DecodedResponsePtr response) override;
  void onStreamClosed(const absl::Status& status) override;

 private:
  void connect();
  // May note that a changed subscription came back to what was sent.
  bool hasSomethingToSend(TypeState& type) const;
  void sendSotw(TypeState& type);
  void sendDelta(TypeState& type);

  const XdsClientConfig& client_config_;
  const XdsStreamConfig config_;
  const std::string method_;
  const std::string label_;
  Event::Dispatcher& main_;
  XdsTransportFactory& transport_factory_;
  Stats::Counter& rate_limit_enforced_;
  // Envoy's Google gRPC client stats; null without a google_grpc stat_prefix.
  Stats::Counter* streams_total_ = nullptr;
  std::array<Stats::Counter*, kGrpcStatusCodes> streams_closed_{};
  Callbacks& callbacks_;
  bool per_type_ = false;
  std::vector<TypeState*> types_;  // by request_order

  XdsTransportPtr transport_;  // null between streams
  Event::TimerPtr retry_timer_;
  Event::TimerPtr drain_timer_;
  JitteredBackoff backoff_;
  // Lives across reconnects, as Envoy's does: reconnecting does not refill it.
  TokenBucket bucket_;
  uint64_t attempt_ = 0;
  bool started_ = false;
  bool first_message_ = true;
  bool connected_ = false;
  bool got_response_ = false;
};

}  // namespace Proxy::Xds
