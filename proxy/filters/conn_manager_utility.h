#pragma once
// What the connection manager does to a request's headers before routing and to a response's
// before sending, as Envoy's ConnectionManagerUtility: hop-by-hop sanitising (Connection, TE),
// x-forwarded-for / x-forwarded-proto, internal vs external vs edge requests, x-envoy-* header
// sanitising, x-request-id. Pure functions over a header map: worker thread, no state.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/header_map.h"

namespace Proxy::Filters {

// One CIDR range of HttpConnectionManager.internal_address_config.
struct CidrRange {
  bool v6 = false;
  std::array<uint8_t, 16> prefix{};  // network byte order; first 4 bytes for IPv4
  uint32_t length = 0;
};

// The parts of the HCM config that decide how request headers are mutated.
struct RequestHeaderPolicy {
  bool use_remote_address = false;
  bool skip_xff_append = false;
  bool generate_request_id = true;
  bool preserve_external_request_id = false;
  // Addresses whose requests are internal (internal_address_config.cidr_ranges). Envoy treats
  // no address as internal unless configured.
  std::vector<CidrRange> internal_ranges;
  // What x-forwarded-for gets when the peer is a loopback address: the machine's first
  // non-loopback IPv4 address (Envoy's LocalInfo address); see localAddress().
  std::string local_address;
};

namespace ConnManagerUtility {

// Envoy's Http::Utility::sanitizeConnectionHeader: removes the headers the Connection header
// nominates (keeping "te: trailers"). False when the nomination is hostile or too long (ten or
// more tokens, x-forwarded-for/-host/-proto, a pseudo-header): the request gets a 400.
bool sanitizeConnectionHeader(Http::RequestHeaderMap& headers);

// TE is hop-by-hop: only "trailers" may pass.
void sanitizeTeHeader(Http::RequestHeaderMap& headers);

struct MutationResult {
  bool internal = false;  // the request comes from inside (x-envoy-internal: true)
  bool edge = false;      // external, and this proxy is the first hop (use_remote_address)
};

// x-forwarded-for/-proto, x-envoy-internal / x-envoy-external-address, sanitising of x-envoy-*
// headers on external requests, x-request-id. `remote_ip` is the peer's address as text;
// `secure`: the connection is TLS (x-forwarded-proto https); `uuid` makes a fresh request id.
MutationResult mutateRequestHeaders(Http::RequestHeaderMap& headers, std::string_view remote_ip,
                                    bool secure, const RequestHeaderPolicy& policy,
                                    std::string_view (*uuid)());

// Drops ":port" from :authority: any port, or only `listener_port` when given (Envoy's
// Utility::stripPortFromHost; an IPv6 literal without a port is left alone).
void stripPortFromHost(Http::RequestHeaderMap& headers, std::optional<uint32_t> listener_port);

// True when `ip` (text) lies in one of `ranges`.
bool isInternalAddress(std::string_view ip, const std::vector<CidrRange>& ranges);
bool isLoopbackAddress(std::string_view ip);

// Parses "10.0.0.0" + 8 into a range; false for a bad address or length.
bool parseCidrRange(std::string_view address, uint32_t length, CidrRange& out);

// The machine's first non-loopback IPv4 address, else "127.0.0.1" (Envoy's
// Network::Utility::getLocalAddress(v4)). Reads the interfaces: main thread, at config time.
std::string localAddress();

}  // namespace ConnManagerUtility
}  // namespace Proxy::Filters
