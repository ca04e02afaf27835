// Fuzzes what a request can make the router do: path normalisation (every option combination,
// chosen by the first input byte) and then route matching over a fixed table that uses every
// kind of matcher, rewrite, redirect and header mutation the proxy implements. The rest of the
// input is the request: ":path", then ":authority", then "name: value" header lines, one per
// line. Invariants: a normalised path still starts with '/' (unless it was not a path at all), a
// matched route answers every accessor, a rewrite keeps a path that starts with '/'.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "envoy/config/route/v3/route.pb.h"
#include "proxy/config/message_util.h"
#include "proxy/http/header_map.h"
#include "proxy/http/path_normalization.h"
#include "proxy/router/config_impl.h"
#include "test/fuzz/fuzz_util.h"

namespace {

constexpr std::string_view kRoutes = R"(
name: fuzz_routes
virtual_hosts:
- name: admin
  domains: ["admin.example.com", "admin.example.com:8080"]
  routes:
  - match: { prefix: "/" }
    direct_response: { status: 403, body: { inline_string: "denied" } }
- name: wildcard
  domains: ["*.example.com", "www.example.*"]
  request_headers_to_add:
  - header: { key: x-vhost, value: wildcard }
    append_action: OVERWRITE_IF_EXISTS_OR_ADD
  routes:
  - match: { safe_regex: { regex: "^/v[0-9]+/([a-z]+)/(.*)$" } }
    route:
      cluster: versioned
      regex_rewrite: { pattern: { regex: "^/v[0-9]+/([a-z]+)/(.*)$" }, substitution: "/\\1?rest=\\2" }
  - match: { path: "/exact", case_sensitive: false }
    redirect: { path_redirect: "/elsewhere", response_code: PERMANENT_REDIRECT, strip_query: true }
  - match: { prefix: "/" }
    route: { cluster: wildcard, host_rewrite_literal: "upstream.internal" }
- name: default
  domains: ["*"]
  response_headers_to_add:
  - header: { key: x-served-by, value: fuzz }
  routes:
  - match: { prefix: "/admin" }
    direct_response: { status: 403 }
  - match:
      prefix: "/api/"
      headers:
      - name: x-canary
        string_match: { exact: "1" }
      - name: x-absent
        present_match: false
    route: { cluster: canary, prefix_rewrite: "/" }
  - match:
      prefix: "/search"
      query_parameters:
      - name: q
        string_match: { prefix: "a", ignore_case: true }
    route: { cluster: search }
  - match: { path_separated_prefix: "/files" }
    route: { cluster_header: x-cluster }
  - match: { prefix: "/redirect" }
    redirect: { host_redirect: "example.org", port_redirect: 8443, scheme_redirect: https }
  - match: { prefix: "/" }
    route:
      weighted_clusters:
        clusters:
        - { name: a, weight: 30 }
        - { name: b, weight: 70 }
)";

const Proxy::Router::ConfigImpl& table() {
  static const std::shared_ptr<const Proxy::Router::ConfigImpl> built = [] {
    envoy::config::route::v3::RouteConfiguration proto;
    absl::Status status = Proxy::Config::loadFromYaml(kRoutes, proto);
    FUZZ_CHECK(status.ok());
    auto created = Proxy::Router::ConfigImpl::create(proto);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", std::string(created.status().message()).c_str());
    }
    FUZZ_CHECK(created.ok());
    return *created;
  }();
  return *built;
}

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    out.push_back(text.substr(0, end));
    if (end == std::string_view::npos) {
      break;
    }
    text.remove_prefix(end + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace Proxy;
  if (size < 2) {
    return 0;
  }
  const Router::ConfigImpl& config = table();
  Http::PathNormalizationOptions options;
  options.normalize_path = data[0] & 1;
  options.merge_slashes = data[0] & 2;
  options.escaped_slashes_action = static_cast<Http::EscapedSlashesAction>((data[0] >> 2) & 3);
  const uint64_t random_value = data[0] >> 4;
  const std::vector<std::string_view> request =
      lines(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  if (request.size() < 2 || request[0].empty()) {
    return 0;
  }

  Http::RequestHeaderMap headers;
  std::string path(request[0]);
  const Http::PathNormalizationResult normalized = Http::normalizeRequestPath(path, options);
  if (normalized.path.has_value()) {
    if (path[0] == '/') {
      FUZZ_CHECK(!normalized.path->empty() && (*normalized.path)[0] == '/');
    }
    path = *normalized.path;
  }
  if (normalized.action != Http::PathNormalizationAction::Continue) {
    return 0;  // answered 400 or 307 before routing
  }
  headers.addCopy(Http::Headers::Method, "GET");
  headers.addCopy(Http::Headers::Path, path);
  headers.addCopy(Http::Headers::Authority, request[1]);
  headers.addCopy(Http::Headers::Scheme, "http");
  for (size_t i = 2; i < request.size(); i++) {
    const size_t colon = request[i].find(':');
    if (colon == std::string_view::npos || colon == 0) {
      continue;
    }
    std::string_view value = request[i].substr(colon + 1);
    while (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
    headers.addCopy(request[i].substr(0, colon), value);
  }

  const Router::RouteEntry* route = config.route(headers, random_value);
  if (route == nullptr) {
    return 0;  // 404
  }
  (void)route->routeName();
  (void)route->virtualHost().name();
  switch (route->action()) {
    case Router::RouteAction::Forward: {
      (void)route->clusterName(headers);
      const bool was_path = path[0] == '/';
      route->finalizeRequestHeaders(headers, /*insert_envoy_original_path=*/true);
      if (was_path) {
        const std::string_view rewritten = headers.path();
        FUZZ_CHECK(!rewritten.empty() && rewritten[0] == '/');
      }
      break;
    }
    case Router::RouteAction::Redirect:
      FUZZ_CHECK(!route->redirectLocation(headers).empty());
      break;
    default:
      (void)route->responseCode();
      (void)route->responseBody();
      break;
  }
  Http::ResponseHeaderMap response;
  response.setStatus(200);
  route->finalizeResponseHeaders(response);
  return 0;
}
