#include "proxy/filters/conn_manager_utility.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proxy/common/string_view.h"

namespace Proxy::Filters::ConnManagerUtility {
namespace {

// x-envoy-* request headers a client outside the trusted network may not set: removed from
// every external request (Envoy's ConnectionManagerUtility::cleanInternalHeaders), and these
// also only at the edge.
constexpr std::string_view kEdgeOnlyInternalHeaders[] = {
    "x-envoy-decorator-operation",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-original-path",
};
constexpr std::string_view kInternalHeaders[] = {
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-force-trace",
    "x-envoy-ip-tags",
    "x-envoy-original-url",
    "x-envoy-hedge-on-per-try-timeout",
};

constexpr std::string_view kXEnvoyInternal = "x-envoy-internal";
constexpr std::string_view kXEnvoyExternalAddress = "x-envoy-external-address";
constexpr std::string_view kXForwardedHost = "x-forwarded-host";

// Parses an IPv4 or IPv6 address; false when `ip` is neither.
bool parseIp(std::string_view ip, bool& v6, std::array<uint8_t, 16>& bytes) {
  const std::string text(ip);
  bytes.fill(0);
  if (inet_pton(AF_INET, text.c_str(), bytes.data()) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) {
    v6 = true;
    return true;
  }
  return false;
}

// The last address of x-forwarded-for, and whether it is the only one (Envoy's
// getLastAddressFromXFF with no trusted hops). Empty when absent or not an IP address.
std::string lastXffAddress(const Http::RequestHeaderMap& headers, bool& single) {
  single = false;
  const std::string_view xff = headers.getValue(Http::Headers::XForwardedFor);
  if (xff.empty()) {
    return {};
  }
  const size_t comma = xff.rfind(',');
  const absl::string_view trimmed = absl::StripAsciiWhitespace(
      asAbsl(comma == std::string_view::npos ? xff : xff.substr(comma + 1)));
  bool v6 = false;
  std::array<uint8_t, 16> bytes;
  if (!parseIp(asStd(trimmed), v6, bytes)) {
    return {};
  }
  single = comma == std::string_view::npos;
  return std::string(trimmed);
}

void appendXff(Http::RequestHeaderMap& headers, std::string_view address) {
  const std::string_view existing = headers.getValue(Http::Headers::XForwardedFor);
  if (existing.empty()) {
    headers.setCopy(Http::Headers::XForwardedFor, address);
    return;
  }
  headers.setCopy(Http::Headers::XForwardedFor,
                  absl::StrCat(asAbsl(existing), ",", asAbsl(address)));
}

}  // namespace

bool parseCidrRange(std::string_view address, uint32_t length, CidrRange& out) {
  if (!parseIp(address, out.v6, out.prefix)) {
    return false;
  }
  if (length > (out.v6 ? 128u : 32u)) {
    return false;
  }
  out.length = length;
  return true;
}

bool isInternalAddress(std::string_view ip, const std::vector<CidrRange>& ranges) {
  bool v6 = false;
  std::array<uint8_t, 16> bytes;
  if (ranges.empty() || !parseIp(ip, v6, bytes)) {
    return false;
  }
  for (const CidrRange& range : ranges) {
    if (range.v6 != v6) {
      continue;
    }
    uint32_t bits = range.length;
    bool match = true;
    for (size_t i = 0; bits > 0; i++, bits = bits >= 8 ? bits - 8 : 0) {
      const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
      if ((bytes[i] & mask) != (range.prefix[i] & mask)) {
        match = false;
        break;
      }
    }
    if (match) {
      return true;
    }
  }
  return false;
}

bool isLoopbackAddress(std::string_view ip) {
  bool v6 = false;
  std::array<uint8_t, 16> bytes;
  if (!parseIp(ip, v6, bytes)) {
    return false;
  }
  if (!v6) {
    return bytes[0] == 127;
  }
  static const std::array<uint8_t, 16> kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0,
                                                      0, 0, 0, 0, 0, 0, 0, 1};
  return bytes == kV6Loopback;
}

std::string localAddress() {
  std::string found;
  struct ifaddrs* interfaces = nullptr;
  if (getifaddrs(&interfaces) != 0) {
    return "127.0.0.1";
  }
  for (struct ifaddrs* ifa = interfaces; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const struct sockaddr_in*>(ifa->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) == nullptr) {
      continue;
    }
    found = text;
    if (!isLoopbackAddress(found)) {
      break;
    }
  }
  freeifaddrs(interfaces);
  return found.empty() ? "127.0.0.1" : found;
}

void stripPortFromHost(Http::RequestHeaderMap& headers, std::optional<uint32_t> listener_port) {
  const std::string_view host = headers.host();
  const size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) {
    return;
  }
  const size_t v6_end = host.rfind(']');
  if (v6_end != std::string_view::npos && v6_end > colon) {
    return;  // "[::1]": the colon is the address's own
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(asAbsl(host.substr(colon + 1)), &port)) {
    return;
  }
  if (listener_port.has_value() && port != *listener_port) {
    return;
  }
  headers.setCopy(Http::Headers::Authority, std::string(host.substr(0, colon)));
}

bool sanitizeConnectionHeader(Http::RequestHeaderMap& headers) {
  constexpr size_t kMaxNominatedHeaders = 10;
  constexpr size_t kMaxTeValueSize = 256;
  const std::string connection(headers.getValue(Http::Headers::Connection));
  if (connection.empty()) {
    return true;
  }
  std::vector<absl::string_view> tokens = absl::StrSplit(connection, ',', absl::SkipWhitespace());
  if (tokens.size() >= kMaxNominatedHeaders) {
    return false;
  }
  std::vector<std::string> kept;
  for (absl::string_view raw : tokens) {
    const std::string token = absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
    // Connection options rather than header names: the codec acts on them.
    if (token == "close" || token == "http2-settings" || token == "keep-alive" ||
        token == "upgrade" || token == "connection") {
      kept.push_back(token);
      continue;
    }
    // Nominating x-forwarded-* would hide where the request came from; a pseudo-header can
    // never be nominated.
    if (token == Http::Headers::XForwardedFor || token == kXForwardedHost ||
        token == Http::Headers::XForwardedProto || absl::StartsWith(token, ":")) {
      return false;
    }
    if (token == Http::Headers::Te) {
      const std::string_view te = headers.getValue(Http::Headers::Te);
      if (te.size() >= kMaxTeValueSize) {
        return false;
      }
      bool trailers = false;
      for (absl::string_view value : absl::StrSplit(asAbsl(te), ',')) {
        trailers |= absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(value), "trailers");
      }
      if (trailers) {
        headers.setCopy(Http::Headers::Te, "trailers");
        kept.push_back(token);
        continue;
      }
    }
    headers.remove(token);
  }
  // The codec reads the remaining options (close, keep-alive, upgrade).
  if (kept.empty()) {
    headers.remove(Http::Headers::Connection);
  } else if (kept.size() != tokens.size()) {
    std::string value;
    for (const std::string& token : kept) {
      absl::StrAppend(&value, value.empty() ? "" : ",", token);
    }
    headers.setCopy(Http::Headers::Connection, value);
  }
  return true;
}

void sanitizeTeHeader(Http::RequestHeaderMap& headers) {
  const std::string_view te = headers.getValue(Http::Headers::Te);
  if (te.empty()) {
    headers.remove(Http::Headers::Te);
    return;
  }
  for (absl::string_view value : absl::StrSplit(asAbsl(te), ',')) {
    if (absl::StripAsciiWhitespace(value) == "trailers") {
      headers.setCopy(Http::Headers::Te, "trailers");
      return;
    }
  }
  headers.remove(Http::Headers::Te);
}

MutationResult mutateRequestHeaders(Http::RequestHeaderMap& headers, std::string_view remote_ip,
                                    bool secure, const RequestHeaderPolicy& policy,
                                    std::string_view (*uuid)()) {
  const std::string_view scheme = secure ? "https" : "http";
  // Only this proxy says whether a request is internal.
  headers.remove(kXEnvoyInternal);

  std::string final_remote;
  bool single_xff = false;
  if (policy.use_remote_address) {
    // The edge: the peer is the client, and it is appended to x-forwarded-for (a loopback peer
    // is a local client, and stands for this machine).
    single_xff = !headers.has(Http::Headers::XForwardedFor);
    final_remote = std::string(remote_ip);
    if (!policy.skip_xff_append) {
      appendXff(headers,
                isLoopbackAddress(remote_ip) ? std::string_view(policy.local_address) : remote_ip);
    }
    headers.setCopy(Http::Headers::XForwardedProto, scheme);
  } else {
    // Behind a trusted proxy: the client is the last x-forwarded-for address.
    final_remote = lastXffAddress(headers, single_xff);
  }
  if (!headers.has(Http::Headers::XForwardedProto)) {
    headers.setCopy(Http::Headers::XForwardedProto, scheme);
  }

  MutationResult result;
  result.internal = single_xff && !final_remote.empty() &&
                    isInternalAddress(final_remote, policy.internal_ranges);
  result.edge = !result.internal && policy.use_remote_address;
  if (result.internal) {
    headers.setCopy(kXEnvoyInternal, "true");
  } else {
    if (result.edge) {
      for (std::string_view name : kEdgeOnlyInternalHeaders) {
        headers.remove(name);
      }
    }
    for (std::string_view name : kInternalHeaders) {
      headers.remove(name);
    }
  }
  if (result.edge) {
    headers.setCopy(kXEnvoyExternalAddress, final_remote);
  }
  if (policy.generate_request_id && ((result.edge && !policy.preserve_external_request_id) ||
                                     !headers.has(Http::Headers::XRequestId))) {
    headers.setCopy(Http::Headers::XRequestId, uuid());
  }
  return result;
}

}  // namespace Proxy::Filters::ConnManagerUtility
