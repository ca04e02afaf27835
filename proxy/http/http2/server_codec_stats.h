#pragma once

// The HTTP/2 codec's counters, with Envoy's names ("http2.<name>" in the server's root scope for
// downstream connections). Only the ones the codec really increments.

#include "proxy/stats/stats.h"

namespace Proxy::Http::Http2 {

struct ServerCodecStats {
  explicit ServerCodecStats(Stats::Scope scope)
      : rx_reset(scope.counter("rx_reset")),
        tx_reset(scope.counter("tx_reset")),
        header_overflow(scope.counter("header_overflow")),
        rx_messaging_error(scope.counter("rx_messaging_error")),
        outbound_flood(scope.counter("outbound_flood")),
        outbound_control_flood(scope.counter("outbound_control_flood")),
        inbound_empty_frames_flood(scope.counter("inbound_empty_frames_flood")),
        inbound_priority_frames_flood(scope.counter("inbound_priority_frames_flood")),
        inbound_window_update_frames_flood(scope.counter("inbound_window_update_frames_flood")),
        goaway_sent(scope.counter("goaway_sent")),
        streams_active(scope.gauge("streams_active")) {}

  Stats::Counter& rx_reset;            // RST_STREAM received
  Stats::Counter& tx_reset;            // RST_STREAM sent
  Stats::Counter& header_overflow;     // a stream's headers over the HCM's limits: reset
  Stats::Counter& rx_messaging_error;  // HTTP messaging rule violated (invalid header, ...)
  Stats::Counter& outbound_flood;      // too many frames queued for the socket
  Stats::Counter& outbound_control_flood;
  Stats::Counter& inbound_empty_frames_flood;
  Stats::Counter& inbound_priority_frames_flood;
  Stats::Counter& inbound_window_update_frames_flood;
  Stats::Counter& goaway_sent;
  Stats::Gauge& streams_active;
};

}  // namespace Proxy::Http::Http2
