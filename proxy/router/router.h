#pragma once

// The route table of an HTTP connection manager: which virtual host and route a request
// matches, and what to do with it (forward to a cluster, answer directly, redirect).
//
// A Config is built once on the main thread from a RouteConfiguration (config_impl.h) and is
// immutable afterwards; workers share it through a shared_ptr<const Config> and read it without
// locks. Everything a Config hands out lives as long as the Config.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/header_map.h"

namespace Proxy::Router {

// What a matched route does.
enum class RouteAction {
  Forward,         // proxy to clusterName()
  DirectResponse,  // answer with responseCode() / responseBody()
  Redirect,        // answer responseCode() with a Location of redirectLocation()
};

// A route's retry_policy, parsed; the router filter decides how to apply it.
struct RetryPolicy {
  // retry_on conditions (Envoy's names); unknown names are ignored, as Envoy does.
  enum RetryOn : uint32_t {
    k5xx = 1u << 0,                       // "5xx"
    kGatewayError = 1u << 1,              // "gateway-error"
    kReset = 1u << 2,                     // "reset"
    kConnectFailure = 1u << 3,            // "connect-failure"
    kRetriable4xx = 1u << 4,              // "retriable-4xx"
    kRefusedStream = 1u << 5,             // "refused-stream"
    kRetriableStatusCodes = 1u << 6,      // "retriable-status-codes"
    kRetriableHeaders = 1u << 7,          // "retriable-headers"
    kResetBeforeRequest = 1u << 8,        // "reset-before-request"
    kEnvoyRateLimited = 1u << 9,          // "envoy-ratelimited"
    kHttp3PostConnectFailure = 1u << 10,  // "http3-post-connect-failure"
  };

  uint32_t retry_on = 0;                         // 0: no retries
  uint32_t num_retries = 1;                      // Envoy's default when a policy exists
  std::chrono::milliseconds per_try_timeout{0};  // 0: the route timeout applies
  std::chrono::milliseconds per_try_idle_timeout{0};
  std::vector<uint32_t> retriable_status_codes;
  std::chrono::milliseconds base_interval{25};  // Envoy's defaults
  std::chrono::milliseconds max_interval{250};
};

class VirtualHost {
 public:
  virtual ~VirtualHost() = default;
  virtual const std::string& name() const = 0;
};

// A matched route. For weighted_clusters, route() returns the entry of the cluster it picked,
// so every accessor answers for this request.
class RouteEntry {
 public:
  virtual ~RouteEntry() = default;

  virtual RouteAction action() const = 0;
  // Route.name (may be empty).
  virtual const std::string& routeName() const = 0;
  virtual const VirtualHost& virtualHost() const = 0;

  // --- RouteAction::Forward ---------------------------------------------------------------
  // The upstream cluster: the configured name, or for cluster_header the value of that request
  // header (a view into `headers`, empty when the header is missing).
  virtual std::string_view clusterName(const Http::RequestHeaderMap& headers) const = 0;
  // Status to answer when the cluster does not exist (cluster_not_found_response_code).
  virtual uint32_t clusterNotFoundResponseCode() const = 0;
  // Upstream response timeout (RouteAction.timeout, default 15s); 0 disables it.
  virtual std::chrono::milliseconds timeout() const = 0;
  // RouteAction.idle_timeout when set (0 disables the stream idle timeout).
  virtual std::optional<std::chrono::milliseconds> idleTimeout() const = 0;
  // The route's retry policy, else the virtual host's, else an empty one (retry_on == 0).
  virtual const RetryPolicy& retryPolicy() const = 0;
  // auto_host_rewrite: the router sets :authority to the chosen upstream host's hostname.
  virtual bool autoHostRewrite() const = 0;

  // Applies, before the request goes upstream: the request header mutations of every level
  // (most specific first, so that the least specific wins an overwrite, unless the
  // RouteConfiguration sets most_specific_header_mutations_wins), then the host rewrite, then
  // the path rewrite (prefix_rewrite / regex_rewrite; the query string is kept). When the path
  // changes and `insert_envoy_original_path` is set, the old one goes to x-envoy-original-path.
  virtual void finalizeRequestHeaders(Http::RequestHeaderMap& headers,
                                      bool insert_envoy_original_path) const = 0;
  // Applies the response header mutations, in the same order as the request's. Also for direct
  // responses and redirects.
  virtual void finalizeResponseHeaders(Http::ResponseHeaderMap& headers) const = 0;

  // --- RouteAction::DirectResponse and RouteAction::Redirect --------------------------------
  // The status to answer with (direct_response.status, or the redirect's response_code).
  virtual uint32_t responseCode() const = 0;
  // direct_response.body (empty for redirects).
  virtual const std::string& responseBody() const = 0;
  // The Location for a redirect of this request; empty for other actions.
  virtual std::string redirectLocation(const Http::RequestHeaderMap& headers) const = 0;
  // The request's URI as this route's redirect settings would rewrite it (Envoy's newUri):
  // the redirect's Location, and for a 201/3xx direct_response the request's own URI.
  virtual std::string requestUri(const Http::RequestHeaderMap& headers) const = 0;
};

class Config {
 public:
  virtual ~Config() = default;

  // The route for a request, or nullptr when no virtual host or no route matches (the caller
  // answers 404). `random_value` comes from the caller's own RNG and picks among weighted
  // clusters (and decides runtime_fraction matches), so workers never share RNG state.
  // Safe from any thread. Does not allocate unless a matched header occurs more than once.
  virtual const RouteEntry* route(const Http::RequestHeaderMap& headers,
                                  uint64_t random_value) const = 0;

  // RouteConfiguration.name.
  virtual const std::string& name() const = 0;
};

using ConfigConstSharedPtr = std::shared_ptr<const Config>;

}  // namespace Proxy::Router
