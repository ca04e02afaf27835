#include "proxy/router/config_utility.h"

#include <algorithm>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "proxy/common/assert.h"
#include "proxy/router/retry_state.h"

namespace Proxy::Router {

// The path without "?query" and "#fragment" (Envoy's PathUtil::removeQueryAndFragment).
std::string_view stripQuery(std::string_view path) {
  return path.substr(0, path.find_first_of("?#"));
}

// Where ":port" starts in an authority, or npos (IPv6-aware, as Envoy's getPortStart).
size_t portStart(std::string_view host) {
  const size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) {
    return std::string_view::npos;
  }
  const size_t v6_end = host.rfind(']');
  if (v6_end == std::string_view::npos || v6_end < colon) {
    return colon;
  }
  return std::string_view::npos;
}

std::chrono::milliseconds toMillis(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

std::unique_ptr<RE2> compile(const std::string& regex) {
  auto re = std::make_unique<RE2>(regex, RE2::Quiet);
  // validateRouteConfiguration compiled the same pattern with the same options.
  RELEASE_ASSERT(re->ok(), "regex passed validation but does not compile");
  return re;
}

// The scheme a request arrived with, as Envoy's redirects see it: x-forwarded-proto (the
// connection manager sets it), else :scheme, else http.
std::string_view requestScheme(const Http::RequestHeaderMap& headers) {
  std::string_view scheme = headers.getValue(Http::Headers::XForwardedProto);
  if (scheme.empty()) {
    scheme = headers.scheme();
  }
  return scheme.empty() ? std::string_view("http") : scheme;
}

RetryPolicy parseRetryPolicy(const envoy::config::route::v3::RetryPolicy& config) {
  RetryPolicy policy;
  policy.retry_on = parseRetryOn(config.retry_on());
  if (config.has_num_retries()) {
    policy.num_retries = config.num_retries().value();
  }
  policy.per_try_timeout = toMillis(config.per_try_timeout());
  policy.per_try_idle_timeout = toMillis(config.per_try_idle_timeout());
  policy.retriable_status_codes.assign(config.retriable_status_codes().begin(),
                                       config.retriable_status_codes().end());
  if (config.has_retry_back_off()) {
    policy.base_interval = toMillis(config.retry_back_off().base_interval());
    // Envoy: max_interval defaults to 10 times base_interval.
    policy.max_interval = config.retry_back_off().has_max_interval()
                              ? toMillis(config.retry_back_off().max_interval())
                              : policy.base_interval * 10;
  }
  // validateRetryPolicy() let only previous_hosts through.
  policy.avoid_previous_hosts = config.retry_host_predicate_size() > 0;
  if (config.host_selection_retry_max_attempts() > 0) {
    policy.host_selection_max_attempts =
        static_cast<uint32_t>(std::min<int64_t>(config.host_selection_retry_max_attempts(), 100));
  }
  return policy;
}

}  // namespace Proxy::Router
