#include "proxy/stream_info/stream_info.h"

#include <string_view>
#include <utility>

namespace Proxy::StreamInfo {

namespace {

constexpr std::pair<ResponseFlag, std::string_view> kNames[] = {
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
    {UpstreamRetryLimitExceeded, "URX"},
};

std::string_view flagName(uint32_t flag) {
  for (const auto& [known, name] : kNames) {
    if (known == flag) {
      return name;
    }
  }
  return "";
}

}  // namespace

std::string responseFlagsToString(uint32_t flags) {
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

std::string responseFlagsToString(const StreamInfo& info) {
  std::string out;
  uint32_t printed = 0;
  for (uint8_t i = 0; i < info.flag_order_size; i++) {
    const uint32_t flag = 1u << info.flag_order[i];
    if (!out.empty()) {
      out.push_back(',');
    }
    out.append(flagName(flag));
    printed |= flag;
  }
  const uint32_t rest = info.response_flags & ~printed;
  if (rest != 0) {
    if (!out.empty()) {
      out.push_back(',');
    }
    out.append(responseFlagsToString(rest));
  }
  return out.empty() ? "-" : out;
}

}  // namespace Proxy::StreamInfo
