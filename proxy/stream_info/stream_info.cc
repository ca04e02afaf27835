#include "proxy/stream_info/stream_info.h"

#include <string_view>
#include <utility>

namespace Proxy::StreamInfo {

std::string responseFlagsToString(uint32_t flags) {
  static constexpr std::pair<ResponseFlag, std::string_view> kNames[] = {
      {NoRouteFound, "NR"},
      {NoHealthyUpstream, "UH"},
      {UpstreamConnectionFailure, "UF"},
      {UpstreamOverflow, "UO"},
      {UpstreamRequestTimeout, "UT"},
      {NoClusterFound, "NC"},
      {UpstreamConnectionTermination, "UC"},
      {DownstreamConnectionTermination, "DC"},
      {LocalReset, "LR"},
      {UpstreamRemoteReset, "UR"},
      {StreamIdleTimeout, "SI"},
      {DownstreamProtocolError, "DPE"},
      {UpstreamProtocolError, "UPE"},
      {DurationTimeout, "DT"},
  };
  std::string out;
  for (const auto& [flag, name] : kNames) {
    if ((flags & flag) != 0) {
      if (!out.empty()) {
        out.push_back(',');
      }
      out.append(name);
    }
  }
  return out.empty() ? "-" : out;
}

}  // namespace Proxy::StreamInfo
