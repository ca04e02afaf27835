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
};

// "UF,URX"-style string as Envoy prints %RESPONSE_FLAGS%; "-" when none.
std::string responseFlagsToString(uint32_t flags);

struct StreamInfo {
  MonotonicTime start_monotonic;
  SystemTime start_system;
  MonotonicTime end_monotonic;
  uint32_t response_code = 0;
  uint32_t response_flags = 0;
  uint64_t bytes_received = 0;  // request body bytes
  uint64_t bytes_sent = 0;      // response body bytes
  std::string upstream_host;    // "ip:port", empty when none was chosen
  std::string upstream_cluster;
  std::string response_code_details;
  Network::Address downstream_remote;
  // The downstream request's HTTP version, once its headers were decoded (%PROTOCOL%).
  std::optional<Http::Protocol> protocol;

  void setFlag(ResponseFlag flag) { response_flags |= flag; }
  bool hasFlag(ResponseFlag flag) const { return (response_flags & flag) != 0; }
};

}  // namespace Proxy::StreamInfo
