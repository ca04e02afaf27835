#include "proxy/router/hash_policy_impl.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proxy/common/hash_util.h"

namespace Proxy::Router {

using envoy::config::route::v3::RouteAction;

namespace {

// Calls `fn` with each `separator`-separated piece of `text` (std::string_view: Debian's abseil
// has its own string_view type, so absl::StrSplit does not take ours).
template <class Fn>
void forEachPiece(std::string_view text, char separator, Fn fn) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    fn(text.substr(start, end - start));
    start = end + 1;
  }
}

}  // namespace

HashPolicyImpl::HashPolicyImpl(
    const google::protobuf::RepeatedPtrField<RouteAction::HashPolicy>& policies) {
  for (const RouteAction::HashPolicy& policy : policies) {
    Method method;
    method.terminal = policy.terminal();
    switch (policy.policy_specifier_case()) {
      case RouteAction::HashPolicy::kHeader:
        method.kind = Kind::Header;
        method.name = absl::AsciiStrToLower(policy.header().header_name());
        break;
      case RouteAction::HashPolicy::kCookie:
        method.kind = Kind::Cookie;
        method.name = policy.cookie().name();
        method.path = policy.cookie().path();
        if (policy.cookie().has_ttl()) {
          method.ttl = std::chrono::seconds(policy.cookie().ttl().seconds());
        }
        break;
      case RouteAction::HashPolicy::kConnectionProperties:
        if (!policy.connection_properties().source_ip()) {
          continue;  // source_ip: false asks for nothing (Envoy adds no method either)
        }
        method.kind = Kind::SourceIp;
        break;
      case RouteAction::HashPolicy::kQueryParameter:
        method.kind = Kind::QueryParameter;
        method.name = policy.query_parameter().name();
        break;
      default:
        continue;  // refused by validation (filter_state): never reaches here
    }
    methods_.push_back(std::move(method));
  }
}

std::optional<uint64_t> HashPolicyImpl::generateHash(const Network::Address& downstream_remote,
                                                     const Http::RequestHeaderMap& headers,
                                                     const AddCookieCb& add_cookie) const {
  std::optional<uint64_t> hash;
  for (const Method& method : methods_) {
    const std::optional<uint64_t> next = evaluate(method, downstream_remote, headers, add_cookie);
    if (next.has_value()) {
      // Rotating keeps two identical policies from cancelling each other out.
      const uint64_t previous = hash.has_value() ? ((*hash << 1) | (*hash >> 63)) : 0;
      hash = previous ^ *next;
    }
    if (method.terminal && hash.has_value()) {
      break;
    }
  }
  return hash;
}

std::optional<uint64_t> HashPolicyImpl::evaluate(const Method& method,
                                                 const Network::Address& downstream_remote,
                                                 const Http::RequestHeaderMap& headers,
                                                 const AddCookieCb& add_cookie) const {
  switch (method.kind) {
    case Kind::Header: {
      std::vector<std::string_view> values;
      for (const Http::HeaderEntry& entry : headers) {
        if (entry.key == method.name) {
          values.emplace_back(entry.value);
        }
      }
      if (values.empty()) {
        return std::nullopt;
      }
      // The same hash whatever the order of repeated headers.
      std::sort(values.begin(), values.end());
      return HashUtil::xxHash64(values);
    }
    case Kind::Cookie: {
      std::string value = parseCookieValue(headers, method.name);
      if (value.empty()) {
        if (!method.ttl.has_value() || !add_cookie) {
          return std::nullopt;
        }
        value = add_cookie(method.name, method.path, *method.ttl);
      }
      return HashUtil::xxHash64(value);
    }
    case Kind::SourceIp: {
      if (!downstream_remote.valid()) {
        return std::nullopt;
      }
      const std::string ip = downstream_remote.ip();
      if (ip.empty()) {
        return std::nullopt;
      }
      return HashUtil::xxHash64(ip);
    }
    case Kind::QueryParameter: {
      const std::optional<std::string_view> value =
          firstQueryParameter(headers.path(), method.name);
      if (!value.has_value()) {
        return std::nullopt;
      }
      return HashUtil::xxHash64(*value);
    }
  }
  return std::nullopt;
}

std::string parseCookieValue(const Http::RequestHeaderMap& headers, std::string_view name) {
  for (const Http::HeaderEntry& entry : headers) {
    if (entry.key != "cookie") {
      continue;
    }
    std::optional<std::string> found;
    forEachPiece(entry.value, ';', [&](std::string_view pair) {
      if (found.has_value()) {
        return;
      }
      while (!pair.empty() && absl::ascii_isspace(static_cast<unsigned char>(pair.front()))) {
        pair.remove_prefix(1);
      }
      const size_t equals = pair.find('=');
      if (equals == std::string_view::npos || pair.substr(0, equals) != name) {
        return;
      }
      std::string_view value = pair.substr(equals + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      found = std::string(value);
    });
    if (found.has_value()) {
      return *found;
    }
  }
  return "";
}

std::optional<std::string_view> firstQueryParameter(std::string_view path, std::string_view name) {
  const size_t question = path.find('?');
  if (question == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view query = path.substr(question + 1);
  const size_t fragment = query.find('#');
  if (fragment != std::string_view::npos) {
    query = query.substr(0, fragment);
  }
  std::optional<std::string_view> found;
  forEachPiece(query, '&', [&](std::string_view param) {
    if (found.has_value() || param.empty()) {
      return;
    }
    const size_t equals = param.find('=');
    const std::string_view key = equals == std::string_view::npos ? param : param.substr(0, equals);
    if (key == name) {
      found = equals == std::string_view::npos ? std::string_view() : param.substr(equals + 1);
    }
  });
  return found;
}

std::string makeSetCookieValue(std::string_view name, std::string_view value, std::string_view path,
                               std::chrono::seconds max_age) {
  std::string out = std::string(name) + "=\"" + std::string(value) + "\"";
  if (max_age.count() != 0) {
    absl::StrAppend(&out, "; Max-Age=", max_age.count());
  }
  if (!path.empty()) {
    out += "; Path=";
    out += path;
  }
  absl::StrAppend(&out, "; HttpOnly");
  return out;
}

}  // namespace Proxy::Router
