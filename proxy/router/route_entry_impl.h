#pragma once

// The routes of a virtual host (router.h has the contract): RouteEntryImpl, built from one Route
// proto (its match conditions and its forward / redirect / direct_response action), and
// SslRedirectEntry, the redirect a require_tls virtual host answers plain-text requests with.
// Built on the main thread by VirtualHostImpl (config_impl.h); immutable afterwards.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envoy/config/route/v3/route_components.pb.h"

#include "proxy/router/hash_policy_impl.h"
#include "proxy/router/header_mutations.h"
#include "proxy/router/matchers.h"
#include "proxy/router/router.h"

#include <re2/re2.h>

namespace Proxy::Router {

class ConfigImpl;
class VirtualHostImpl;
class RouteEntryImpl;

// A Route of a VirtualHost: its match conditions and its action.
class RouteEntryImpl : public RouteEntry {
 public:
  RouteEntryImpl(const VirtualHostImpl& vhost, const envoy::config::route::v3::Route& route,
                 std::string direct_response_body);
  // Out of line: WeightedClusterEntry is complete only in route_entry_impl.cc.
  ~RouteEntryImpl() override;

  // True when `headers` satisfy this route's match (path, headers, query, ...). `path` is the
  // request's :path, looked up once by the caller for all routes.
  bool matches(const Http::RequestHeaderMap& headers, std::string_view path,
               uint64_t random_value) const;
  // This route, or for weighted clusters the entry of the cluster `random_value` picks.
  const RouteEntry* pick(const Http::RequestHeaderMap& headers, uint64_t random_value) const;

  // The :path this request goes upstream with; nullopt when the route rewrites nothing.
  std::optional<std::string> rewritePath(std::string_view path) const;

  // RouteEntry
  RouteAction action() const override { return action_; }
  const std::string& routeName() const override { return name_; }
  const VirtualHost& virtualHost() const override;
  std::string_view clusterName(const Http::RequestHeaderMap& headers) const override;
  uint32_t clusterNotFoundResponseCode() const override { return cluster_not_found_code_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  std::optional<std::chrono::milliseconds> idleTimeout() const override { return idle_timeout_; }
  const StreamDurationPolicy& streamDurations() const override { return stream_durations_; }
  const RetryPolicy& retryPolicy() const override;
  bool autoHostRewrite() const override { return auto_host_rewrite_; }
  const HashPolicyImpl* hashPolicy() const override { return hash_policy_.get(); }
  void finalizeRequestHeaders(Http::RequestHeaderMap& headers,
                              bool insert_envoy_original_path) const override;
  void finalizeResponseHeaders(Http::ResponseHeaderMap& headers) const override;
  uint32_t responseCode() const override { return response_code_; }
  const std::string& responseBody() const override { return response_body_; }
  std::string redirectLocation(const Http::RequestHeaderMap& headers) const override;
  std::string requestUri(const Http::RequestHeaderMap& headers) const override;

  // For WeightedClusterEntry: the route-level parts of finalizing.
  void finalizeRequestHeadersWith(Http::RequestHeaderMap& headers, bool insert_envoy_original_path,
                                  const HeaderMutations* cluster_mutations,
                                  const std::string* cluster_host_rewrite) const;
  void finalizeResponseHeadersWith(Http::ResponseHeaderMap& headers,
                                   const HeaderMutations* cluster_mutations) const;

 private:
  enum class PathMatch { Prefix, Path, Regex, PathSeparatedPrefix };
  enum class HostRewrite { None, Literal, Header, PathRegex };
  class WeightedClusterEntry;

  bool matchesPath(std::string_view path) const;
  void applyMutations(Http::HeaderMap& headers, const HeaderMutations* cluster_mutations,
                      bool request) const;

  const VirtualHostImpl& vhost_;
  std::string name_;
  RouteAction action_ = RouteAction::Forward;

  // Match.
  PathMatch path_match_ = PathMatch::Prefix;
  std::string path_value_;
  std::unique_ptr<RE2> path_regex_;
  bool case_sensitive_ = true;
  std::vector<HeaderMatcher> header_matchers_;
  std::vector<QueryParameterMatcher> query_matchers_;
  bool grpc_only_ = false;
  bool tls_required_ = false;  // tls_context asks for a presented/validated certificate
  uint64_t runtime_numerator_ = 0;
  uint64_t runtime_denominator_ = 0;  // 0: no runtime_fraction

  // Forward.
  std::string cluster_name_;
  std::string cluster_header_;  // lower-case; set for cluster_header
  std::vector<std::unique_ptr<WeightedClusterEntry>> weighted_clusters_;
  uint64_t total_weight_ = 0;
  std::string random_value_header_;  // weighted_clusters.header_name
  uint32_t cluster_not_found_code_ = 503;
  std::string prefix_rewrite_;
  std::unique_ptr<RE2> regex_rewrite_;
  std::string regex_rewrite_substitution_;
  HostRewrite host_rewrite_ = HostRewrite::None;
  std::string host_rewrite_value_;  // literal, or header name
  std::unique_ptr<RE2> host_rewrite_regex_;
  std::string host_rewrite_substitution_;
  bool auto_host_rewrite_ = false;
  std::chrono::milliseconds timeout_{15000};
  std::optional<std::chrono::milliseconds> idle_timeout_;
  StreamDurationPolicy stream_durations_;
  std::optional<RetryPolicy> retry_policy_;
  std::unique_ptr<HashPolicyImpl> hash_policy_;  // RouteAction.hash_policy, when set

  // Direct response / redirect.
  uint32_t response_code_ = 0;
  std::string response_body_;
  std::string scheme_redirect_;
  std::string host_redirect_;
  std::string port_redirect_;  // ":8080", or empty
  std::string path_redirect_;
  bool path_redirect_has_query_ = false;
  bool strip_query_ = false;

  HeaderMutations request_mutations_;
  HeaderMutations response_mutations_;
};

// The redirect a virtual host with require_tls sends for plain-text requests (Envoy's
// SslRedirectRoute): 301 to https://<host><path>.
class SslRedirectEntry : public RouteEntry {
 public:
  explicit SslRedirectEntry(const VirtualHostImpl& vhost) : vhost_(vhost) {}
  RouteAction action() const override { return RouteAction::Redirect; }
  const std::string& routeName() const override;
  const VirtualHost& virtualHost() const override;
  std::string_view clusterName(const Http::RequestHeaderMap&) const override { return {}; }
  uint32_t clusterNotFoundResponseCode() const override { return 503; }
  std::chrono::milliseconds timeout() const override { return std::chrono::milliseconds(0); }
  std::optional<std::chrono::milliseconds> idleTimeout() const override { return std::nullopt; }
  const StreamDurationPolicy& streamDurations() const override;
  const RetryPolicy& retryPolicy() const override;
  bool autoHostRewrite() const override { return false; }
  void finalizeRequestHeaders(Http::RequestHeaderMap&, bool) const override {}
  void finalizeResponseHeaders(Http::ResponseHeaderMap&) const override {}
  uint32_t responseCode() const override { return 301; }
  const std::string& responseBody() const override;
  std::string redirectLocation(const Http::RequestHeaderMap& headers) const override;
  std::string requestUri(const Http::RequestHeaderMap& headers) const override {
    return redirectLocation(headers);
  }

 private:
  const VirtualHostImpl& vhost_;
};

}  // namespace Proxy::Router
