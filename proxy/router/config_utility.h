#pragma once

// Small helpers shared by the route table's files (matchers, header mutations, route entries,
// virtual hosts): string and path utilities, regex compilation, duration and retry policy
// conversion. Internal to proxy_router. Pure functions: safe from any thread.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "envoy/config/route/v3/route_components.pb.h"
#include "google/protobuf/duration.pb.h"

#include "proxy/common/string_util.h"
#include "proxy/common/string_view.h"
#include "proxy/http/header_map.h"
#include "proxy/router/router.h"

#include <re2/re2.h>

namespace Proxy::Router {

// The path without "?query" and "#fragment" (Envoy's PathUtil::removeQueryAndFragment).
std::string_view stripQuery(std::string_view path);
// Where ":port" starts in an authority, or npos (IPv6-aware, as Envoy's getPortStart).
size_t portStart(std::string_view host);

std::chrono::milliseconds toMillis(const google::protobuf::Duration& d);
// A regex that validateRouteConfiguration already compiled with the same options.
std::unique_ptr<RE2> compile(const std::string& regex);

// The scheme a request arrived with, as Envoy's redirects see it: x-forwarded-proto (the
// connection manager sets it), else :scheme, else http.
std::string_view requestScheme(const Http::RequestHeaderMap& headers);

RetryPolicy parseRetryPolicy(const envoy::config::route::v3::RetryPolicy& config);

}  // namespace Proxy::Router
