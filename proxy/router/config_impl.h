#pragma once

// The route table built from a RouteConfiguration proto (router.h has the contract).
// Everything that can be decided at build time is: regexes are compiled, domains lower-cased
// and sorted into exact / suffix-wildcard / prefix-wildcard tables, header values formatted,
// direct response bodies read. Matching then only compares bytes.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/type/matcher/v3/string.pb.h"

#include "proxy/router/router.h"

#include <re2/re2.h>

namespace Proxy::Router {

// exact / prefix / suffix / contains / safe_regex, optionally ignoring case.
class StringMatcher {
 public:
  explicit StringMatcher(const envoy::type::matcher::v3::StringMatcher& config);
  bool match(std::string_view value) const;

 private:
  enum class Type { Exact, Prefix, Suffix, Contains, Regex };
  Type type_;
  bool ignore_case_;
  std::string value_;  // lower-cased when ignore_case_
  std::unique_ptr<RE2> regex_;
};

// One RouteMatch.headers entry (Envoy's HeaderUtility::HeaderData semantics).
class HeaderMatcher {
 public:
  explicit HeaderMatcher(const envoy::config::route::v3::HeaderMatcher& config);
  bool match(const Http::HeaderMap& headers) const;

 private:
  enum class Type { Value, Regex, Range, Present, Prefix, Suffix, Contains, StringMatch };
  bool matchValue(std::string_view value) const;

  std::string name_;  // lower-case
  Type type_;
  std::string value_;
  std::unique_ptr<RE2> regex_;
  int64_t range_start_ = 0;
  int64_t range_end_ = 0;
  bool present_ = true;
  bool invert_ = false;
  bool treat_missing_as_empty_ = false;
  std::optional<StringMatcher> string_match_;
};

// One RouteMatch.query_parameters entry. Values are compared undecoded, as Envoy does.
class QueryParameterMatcher {
 public:
  explicit QueryParameterMatcher(const envoy::config::route::v3::QueryParameterMatcher& config);
  bool match(std::string_view query) const;

 private:
  std::string name_;
  std::optional<bool> present_match_;
  std::optional<StringMatcher> string_match_;
};

// request/response_headers_to_add/remove of one level of the table.
class HeaderMutations {
 public:
  using HeaderValueOptions =
      google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>;
  using HeaderNames = google::protobuf::RepeatedPtrField<std::string>;

  HeaderMutations() = default;
  HeaderMutations(const HeaderValueOptions& to_add, const HeaderNames& to_remove);

  // Removes first, then adds in configuration order (Envoy's HeaderParser order).
  void apply(Http::HeaderMap& headers) const;
  bool empty() const { return to_add_.empty() && to_remove_.empty(); }

 private:
  using Action = envoy::config::core::v3::HeaderValueOption::HeaderAppendAction;
  struct Entry {
    std::string key;    // lower-case
    std::string value;  // formatted at build time
    Action action;
  };
  std::vector<Entry> to_add_;
  std::vector<std::string> to_remove_;  // lower-case
};

class ConfigImpl;
class VirtualHostImpl;
class RouteEntryImpl;

// A Route of a VirtualHost: its match conditions and its action.
class RouteEntryImpl : public RouteEntry {
 public:
  RouteEntryImpl(const VirtualHostImpl& vhost, const envoy::config::route::v3::Route& route,
                 std::string direct_response_body);

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
  const RetryPolicy& retryPolicy() const override;
  bool autoHostRewrite() const override { return auto_host_rewrite_; }
  void finalizeRequestHeaders(Http::RequestHeaderMap& headers,
                              bool insert_envoy_original_path) const override;
  void finalizeResponseHeaders(Http::ResponseHeaderMap& headers) const override;
  uint32_t responseCode() const override { return response_code_; }
  const std::string& responseBody() const override { return response_body_; }
  std::string redirectLocation(const Http::RequestHeaderMap& headers) const override;

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
  std::optional<RetryPolicy> retry_policy_;

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
  const RetryPolicy& retryPolicy() const override;
  bool autoHostRewrite() const override { return false; }
  void finalizeRequestHeaders(Http::RequestHeaderMap&, bool) const override {}
  void finalizeResponseHeaders(Http::ResponseHeaderMap&) const override {}
  uint32_t responseCode() const override { return 301; }
  const std::string& responseBody() const override;
  std::string redirectLocation(const Http::RequestHeaderMap& headers) const override;

 private:
  const VirtualHostImpl& vhost_;
};

class VirtualHostImpl : public VirtualHost {
 public:
  VirtualHostImpl(const ConfigImpl& config, const envoy::config::route::v3::VirtualHost& vhost);

  // Builds the routes (separate from the constructor: a route's direct response body may fail
  // to load).
  absl::Status addRoutes(const envoy::config::route::v3::VirtualHost& vhost,
                         const std::string& path, size_t max_body_size);

  const RouteEntry* route(const Http::RequestHeaderMap& headers, uint64_t random_value) const;

  const std::string& name() const override { return name_; }
  const ConfigImpl& config() const { return config_; }
  const HeaderMutations& requestMutations() const { return request_mutations_; }
  const HeaderMutations& responseMutations() const { return response_mutations_; }
  const RetryPolicy& retryPolicy() const { return retry_policy_; }

 private:
  enum class TlsRequirement { None, ExternalOnly, All };

  const ConfigImpl& config_;
  std::string name_;
  std::vector<std::unique_ptr<RouteEntryImpl>> routes_;
  TlsRequirement require_tls_ = TlsRequirement::None;
  SslRedirectEntry ssl_redirect_;
  RetryPolicy retry_policy_;  // retry_on == 0 when the virtual host has none
  HeaderMutations request_mutations_;
  HeaderMutations response_mutations_;
};

class ConfigImpl : public Config {
 public:
  // Validates `config` (Proxy::Config::validateRouteConfiguration: errors name the field, e.g.
  // "virtual_hosts[0].routes[2].match.safe_regex: invalid regex '(': missing ): (") and builds
  // the table. Main thread.
  static absl::StatusOr<std::shared_ptr<const ConfigImpl>> create(
      const envoy::config::route::v3::RouteConfiguration& config);

  // Config
  const RouteEntry* route(const Http::RequestHeaderMap& headers,
                          uint64_t random_value) const override;
  const std::string& name() const override { return name_; }

  // The virtual host `host` (an :authority value) selects, or nullptr. Exposed for tests.
  const VirtualHostImpl* virtualHostFor(std::string_view host) const;

  bool mostSpecificHeaderMutationsWins() const { return most_specific_wins_; }
  const HeaderMutations& requestMutations() const { return request_mutations_; }
  const HeaderMutations& responseMutations() const { return response_mutations_; }

 private:
  explicit ConfigImpl(const envoy::config::route::v3::RouteConfiguration& config);

  // Wildcard tables: suffix/prefix length, longest first, then the lower-cased text.
  using WildcardMap = std::map<size_t, absl::flat_hash_map<std::string, const VirtualHostImpl*>,
                               std::greater<size_t>>;

  const VirtualHostImpl* findWildcard(std::string_view host, const WildcardMap& map,
                                      bool suffix) const;

  std::string name_;
  std::vector<std::unique_ptr<VirtualHostImpl>> virtual_hosts_;
  absl::flat_hash_map<std::string, const VirtualHostImpl*> exact_;
  WildcardMap suffix_wildcards_;  // "*.example.com" -> ".example.com"
  WildcardMap prefix_wildcards_;  // "www.example.*" -> "www.example."
  const VirtualHostImpl* default_ = nullptr;
  bool ignore_port_ = false;
  bool most_specific_wins_ = false;
  HeaderMutations request_mutations_;
  HeaderMutations response_mutations_;
};

}  // namespace Proxy::Router
