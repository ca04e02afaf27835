#pragma once

// The route table of an HTTP connection manager: which virtual host and route a request
// matches, and what to do with it (forward to a cluster, answer directly, redirect). At the end,
// the router filter (router.cc) that acts on the matched route for one stream.
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

namespace Proxy {
namespace Buffer {
class Instance;
}
namespace Event {
class Dispatcher;
class Timer;
}  // namespace Event
namespace StreamInfo {
struct StreamInfo;
}
namespace Stats {
class Counter;
}
namespace Upstream {
class ClusterManager;
}
}  // namespace Proxy

namespace Proxy::Router {

class HashPolicyImpl;

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
  // retry_host_predicate envoy.retry_host_predicates.previous_hosts: a retry avoids the hosts
  // earlier attempts went to, picking again up to host_selection_max_attempts times (Envoy's
  // host_selection_retry_max_attempts, which defaults to 1).
  bool avoid_previous_hosts = false;
  uint32_t host_selection_max_attempts = 1;
};

// How a route bounds a stream's lifetime, gRPC's grpc-timeout included (Envoy's RouteEntry
// maxStreamDuration / grpcTimeoutHeaderMax / grpcTimeoutHeaderOffset / maxGrpcTimeout /
// grpcTimeoutOffset / usingNewTimeouts).
struct StreamDurationPolicy {
  // RouteAction.max_stream_duration is present (Envoy's "new timeouts"): the connection manager's
  // stream duration timer bounds the stream, the route `timeout` no longer applies, and the
  // deprecated max_grpc_timeout / grpc_timeout_offset are ignored.
  bool using_new_timeouts = false;
  // max_stream_duration.max_stream_duration: replaces the connection manager's (0: none).
  std::optional<std::chrono::milliseconds> max_stream_duration;
  // max_stream_duration.grpc_timeout_header_max: a gRPC request's grpc-timeout becomes its stream
  // duration, capped by this (0: no cap).
  std::optional<std::chrono::milliseconds> grpc_timeout_header_max;
  // max_stream_duration.grpc_timeout_header_offset: taken off that grpc-timeout.
  std::optional<std::chrono::milliseconds> grpc_timeout_header_offset;
  // The deprecated RouteAction.max_grpc_timeout (0: grpc-timeout uncapped) and
  // grpc_timeout_offset: the router's timeout for a gRPC request comes from its grpc-timeout.
  std::optional<std::chrono::milliseconds> max_grpc_timeout;
  std::optional<std::chrono::milliseconds> grpc_timeout_offset;
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
  // RouteAction.max_stream_duration and the gRPC timeouts.
  virtual const StreamDurationPolicy& streamDurations() const = 0;
  // The route's retry policy, else the virtual host's, else an empty one (retry_on == 0).
  virtual const RetryPolicy& retryPolicy() const = 0;
  // auto_host_rewrite: the router sets :authority to the chosen upstream host's hostname.
  virtual bool autoHostRewrite() const = 0;
  // RouteAction.hash_policy, for RING_HASH / MAGLEV clusters; null when the route has none.
  virtual const HashPolicyImpl* hashPolicy() const { return nullptr; }

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

// --- The router filter ------------------------------------------------------------------------
// The HTTP connection manager's one HTTP filter (Envoy's source/common/router/router.cc): the
// upstream leg of one stream. It acts on the route the connection manager matched (404, redirect,
// direct response, or forward), picks the cluster and host, asks the worker's connection pool for
// an upstream stream, sends the request, forwards the response back through FilterCallbacks, and
// owns the upstream timeouts. The connection manager keeps the downstream side: the codec, the
// request's header handling, local replies, downstream flow control and the access log.

// The counters the router bumps; they live in the connection manager's "http.<stat_prefix>."
// scope (HcmStats).
struct FilterStats {
  Stats::Counter& no_route;
  Stats::Counter& no_cluster;
  Stats::Counter& rq_redirect;
  Stats::Counter& rq_direct_response;
  Stats::Counter& downstream_rq_timeout;
};

// Per connection, immutable; outlives every filter made with it.
struct FilterConfig {
  Upstream::ClusterManager& cluster_manager;
  uint32_t per_connection_buffer_limit;
  bool suppress_envoy_headers;
  FilterStats stats;
};

// What the router needs from the connection manager's stream (Envoy's
// StreamDecoderFilterCallbacks).
class FilterCallbacks {
 public:
  virtual ~FilterCallbacks() = default;
  // The request's headers, complete (and normalised) before Filter::decodeHeaders().
  virtual Http::RequestHeaderMap& requestHeaders() = 0;
  // The route the connection manager matched; null when none did.
  virtual const RouteEntry* route() const = 0;
  virtual StreamInfo::StreamInfo& streamInfo() = 0;
  // True once the whole request was received from the client.
  virtual bool requestComplete() const = 0;
  virtual Event::Dispatcher& dispatcher() = 0;
  // The connection's route timer (HTTP/1: one stream at a time), for this stream to arm.
  virtual Event::Timer& routeTimer() = 0;
  // Answers the client locally (or cuts the connection when the response has started).
  // `overloaded`: the reply says x-envoy-overloaded: true (a request the pool dropped).
  virtual void sendLocalReply(uint32_t code, std::string_view body, uint32_t flag,
                              std::string_view details, bool overloaded = false) = 0;
  // The response to send the client: the upstream's, or a redirect.
  virtual void encodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) = 0;
  virtual void encodeData(Buffer::Instance& data, bool end_stream) = 0;
  // Ends the response with the upstream's trailers.
  virtual void encodeTrailers(Http::ResponseTrailerMapPtr&& trailers) = 0;
  // Upstream backpressure: stop / resume reading the client.
  virtual void readDisableDownstream(bool disable) = 0;
};

// One per stream, created when the stream is; the connection manager calls it.
class Filter {
 public:
  virtual ~Filter() = default;
  // The request headers were decoded and the route matched: answer locally, or start the
  // upstream request.
  virtual void decodeHeaders() = 0;
  // Request body for the upstream (the connection manager has counted it and checked that the
  // stream still wants it).
  virtual void decodeData(Buffer::Instance& data, bool end_stream) = 0;
  // The request's trailers, which end it (after onRequestComplete()); the connection manager
  // owns the map and keeps it for the whole stream.
  virtual void decodeTrailers(Http::RequestTrailerMap& trailers) = 0;
  // The whole request was received (requestComplete() is now true).
  virtual void onRequestComplete() = 0;
  // The whole response was sent to the client.
  virtual void onResponseComplete() = 0;
  // The connection's route timer fired for this stream.
  virtual void onRouteTimeout() = 0;
  // Abandons the upstream request (pool request or upstream stream) and the route timer.
  virtual void resetUpstream() = 0;
  // Downstream backpressure: stop / resume reading the upstream response.
  virtual void readDisableUpstream(bool disable) = 0;
  // The stream is over: the upstream connection may serve other requests from now on.
  virtual void onStreamComplete() = 0;
};

using FilterPtr = std::unique_ptr<Filter>;

FilterPtr createFilter(const FilterConfig& config, FilterCallbacks& callbacks);

}  // namespace Proxy::Router
