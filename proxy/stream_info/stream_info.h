#pragma once

// What happened to one request, for stats and the access log. Lives in the stream. Its own
// library (proxy_stream_info, as Envoy's source/common/stream_info) over proxy_common and
// proxy_network only: the connection manager (proxy_filters) owns it, the router filter
// (proxy_router) sets response flags in it, and neither depends on the other's library for it.

#include <cstdint>
#include <optional>
#include <string>

#include "proxy/common/time.h"
#include "proxy/http/protocol.h"
#include "proxy/network/address.h"

namespace Proxy::StreamInfo {

// Envoy's response flags, with their access-log short names.
enum ResponseFlag : uint32_t {
  NoRouteFound = 0x1,                      // NR
  NoHealthyUpstream = 0x2,                 // UH
  UpstreamConnectionFailure = 0x4,         // UF
  UpstreamOverflow = 0x8,                  // UO
  UpstreamRequestTimeout = 0x10,           // UT
  NoClusterFound = 0x20,                   // NC
  UpstreamConnectionTermination = 0x40,    // UC
  DownstreamConnectionTermination = 0x80,  // DC
  LocalReset = 0x100,                      // LR
  UpstreamRemoteReset = 0x200,             // UR
  StreamIdleTimeout = 0x400,               // SI
  DownstreamProtocolError = 0x800,         // DPE
  UpstreamProtocolError = 0x1000,          // UPE
  DurationTimeout = 0x2000,                // DT
  UpstreamRetryLimitExceeded = 0x4000,     // URX
};

// "UF,UO"-style string as Envoy prints %RESPONSE_FLAGS%; "-" when none.
std::string responseFlagsToString(uint32_t flags);
struct StreamInfo;
// The same for a stream: Envoy 1.40 prints the flags in the order they were set ("URX,UF": the
// router gave up retrying, then answered the connect failure), then any set without setFlag().
std::string responseFlagsToString(const StreamInfo& info);

struct StreamInfo {
  MonotonicTime start_monotonic;
  SystemTime start_system;
  MonotonicTime end_monotonic;
  uint32_t response_code = 0;
  uint32_t response_flags = 0;
  uint64_t bytes_received = 0;  // request body bytes
  uint64_t bytes_sent = 0;      // response body bytes
  // The chosen host's address (invalid when none was): formatted ("ip:port") only when an
  // access log asks for it, not per request.
  Network::Address upstream_host;
  std::string upstream_cluster;
  std::string response_code_details;
  Network::Address downstream_remote;
  Network::Address downstream_local;  // the address the client connected to
  // The downstream request's HTTP version, once its headers were decoded (%PROTOCOL%).
  std::optional<Http::Protocol> protocol;
  // Bit indexes of the flags in the order setFlag() set them.
  uint8_t flag_order[16];
  uint8_t flag_order_size = 0;

  // One flag or none (0), remembering the order.
  void setFlag(uint32_t flag) {
    if (flag == 0 || (response_flags & flag) == flag) {
      return;
    }
    if (flag_order_size < sizeof(flag_order)) {
      flag_order[flag_order_size++] = static_cast<uint8_t>(__builtin_ctz(flag));
    }
    response_flags |= flag;
  }
  bool hasFlag(ResponseFlag flag) const { return (response_flags & flag) != 0; }
};

}  // namespace Proxy::StreamInfo
