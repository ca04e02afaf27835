#pragma once

// A route's hash_policy (RouteAction.hash_policy): what of a request RING_HASH and MAGLEV
// clusters hash, with Envoy's hashes (source/common/http/hash_policy.cc's behaviour), so that a
// request picks the same host here as in Envoy. Built on the main thread with the route table,
// immutable, evaluated on workers.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envoy/config/route/v3/route_components.pb.h"
#include "proxy/http/header_map.h"
#include "proxy/network/address.h"

namespace Proxy::Router {

class HashPolicyImpl {
 public:
  explicit HashPolicyImpl(
      const google::protobuf::RepeatedPtrField<envoy::config::route::v3::RouteAction::HashPolicy>&
          policies);

  // Makes the cookie a cookie policy with a ttl asks for when the request has none: returns
  // its value (the router also sends it to the client as Set-Cookie).
  using AddCookieCb = std::function<std::string(const std::string& name, const std::string& path,
                                                std::chrono::seconds ttl)>;

  // The request's hash, or nullopt when no policy found its input. Policies are evaluated in
  // order; each hash found is combined as Envoy does (the previous value rotated left by one,
  // xor the new one), and a `terminal` policy that produced a hash ends the walk.
  std::optional<uint64_t> generateHash(const Network::Address& downstream_remote,
                                       const Http::RequestHeaderMap& headers,
                                       const AddCookieCb& add_cookie) const;

 private:
  enum class Kind { Header, Cookie, SourceIp, QueryParameter };
  struct Method {
    Kind kind;
    std::string name;  // header (lower case), cookie or query parameter name
    bool terminal = false;
    std::optional<std::chrono::seconds> ttl;  // cookie: generate one when absent
    std::string path;                         // cookie: its Path
  };
  std::optional<uint64_t> evaluate(const Method& method, const Network::Address& downstream_remote,
                                   const Http::RequestHeaderMap& headers,
                                   const AddCookieCb& add_cookie) const;

  std::vector<Method> methods_;
};

// The value of cookie `name` in the request's cookie headers (surrounding double quotes
// removed), or "" when absent: Envoy's Utility::parseCookieValue.
std::string parseCookieValue(const Http::RequestHeaderMap& headers, std::string_view name);

// The first value of query parameter `name` in `path` (not decoded), as Envoy's
// QueryParamsMulti::getFirstValue; "" for a parameter without '='.
std::optional<std::string_view> firstQueryParameter(std::string_view path, std::string_view name);

// Set-Cookie's value for a generated cookie: name="value"; Max-Age=N; Path=P; HttpOnly (Max-Age
// only when the ttl is not 0, Path only when given), Envoy's makeSetCookieValue.
std::string makeSetCookieValue(std::string_view name, std::string_view value, std::string_view path,
                               std::chrono::seconds max_age);

}  // namespace Proxy::Router
