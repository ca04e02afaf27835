#include "proxy/config/validation.h"

// validateRouteConfiguration and what it checks: virtual hosts and domains, route matches
// (regexes, string, header and query parameter matchers), route actions (weighted clusters,
// rewrites, retry policies), redirects, direct responses, header mutations at every level; and
// Envoy's validate_clusters (validateRouteClusters).

#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.pb.h"

#include "proxy/config/validation_util.h"

#include <re2/re2.h>

namespace Proxy::Config {
namespace {

using envoy::config::core::v3::HeaderValueOption;
using envoy::config::route::v3::RouteConfiguration;
using google::protobuf::RepeatedPtrField;

absl::Status validateRegex(const std::string& path,
                           const envoy::type::matcher::v3::RegexMatcher& matcher) {
  if (matcher.regex().empty()) {
    return error(join(path, "regex"), "required");
  }
  RE2 re(matcher.regex(), RE2::Quiet);
  if (!re.ok()) {
    return error(path, absl::StrCat("invalid regex '", matcher.regex(), "': ", re.error()));
  }
  return absl::OkStatus();
}

absl::Status validateRegexRewrite(
    const std::string& path, const envoy::type::matcher::v3::RegexMatchAndSubstitute& rewrite) {
  if (!rewrite.has_pattern()) {
    return error(join(path, "pattern"), "required");
  }
  RETURN_IF_ERROR(validateRegex(join(path, "pattern"), rewrite.pattern()));
  RE2 re(rewrite.pattern().regex(), RE2::Quiet);
  std::string err;
  if (!re.CheckRewriteString(rewrite.substitution(), &err)) {
    return error(join(path, "substitution"),
                 absl::StrCat("invalid substitution '", rewrite.substitution(), "': ", err));
  }
  return absl::OkStatus();
}

absl::Status validateStringMatcher(const std::string& path,
                                   const envoy::type::matcher::v3::StringMatcher& matcher) {
  using envoy::type::matcher::v3::StringMatcher;
  switch (matcher.match_pattern_case()) {
    case StringMatcher::kExact:
      return absl::OkStatus();
    case StringMatcher::kPrefix:
      return matcher.prefix().empty() ? error(join(path, "prefix"), "must not be empty")
                                      : absl::OkStatus();
    case StringMatcher::kSuffix:
      return matcher.suffix().empty() ? error(join(path, "suffix"), "must not be empty")
                                      : absl::OkStatus();
    case StringMatcher::kContains:
      return matcher.contains().empty() ? error(join(path, "contains"), "must not be empty")
                                        : absl::OkStatus();
    case StringMatcher::kSafeRegex:
      return validateRegex(join(path, "safe_regex"), matcher.safe_regex());
    default:
      return error(path, "one of exact, prefix, suffix, safe_regex or contains is required");
  }
}

absl::Status validateHeadersToAdd(const std::string& path,
                                  const RepeatedPtrField<HeaderValueOption>& options) {
  for (int i = 0; i < options.size(); i++) {
    const HeaderValueOption& option = options.Get(i);
    const std::string op = absl::StrCat(path, "[", i, "]");
    if (!option.has_header()) {
      return error(join(op, "header"), "required");
    }
    const std::string& key = option.header().key();
    if (key.empty()) {
      return error(join(op, "header.key"), "required");
    }
    if (!isValidHeaderName(key)) {
      return error(join(op, "header.key"), absl::StrCat("invalid header name '", key, "'"));
    }
    if (!isModifiableHeader(key)) {
      return error(join(op, "header.key"), ":-prefixed or host headers may not be modified");
    }
    if (!isValidHeaderValue(option.header().value()) ||
        !isValidHeaderValue(option.header().raw_value())) {
      return error(join(op, "header.value"), "header values must not contain CR, LF or NUL");
    }
    if (!option.header().value().empty() && !option.header().raw_value().empty()) {
      return error(join(op, "header"), "only one of value and raw_value may be set");
    }
    if (option.has_append() &&
        option.append_action() != HeaderValueOption::APPEND_IF_EXISTS_OR_ADD) {
      return error(op, "Both append and append_action are set and it's not allowed");
    }
  }
  return absl::OkStatus();
}

absl::Status validateHeadersToRemove(const std::string& path,
                                     const RepeatedPtrField<std::string>& names) {
  for (int i = 0; i < names.size(); i++) {
    const std::string np = absl::StrCat(path, "[", i, "]");
    if (!isValidHeaderName(names.Get(i))) {
      return error(np, absl::StrCat("invalid header name '", names.Get(i), "'"));
    }
    if (!isModifiableHeader(names.Get(i))) {
      return error(np, ":-prefixed or host headers may not be removed");
    }
  }
  return absl::OkStatus();
}

// The four mutation lists every level of a route table carries.
template <class T>
absl::Status validateHeaderMutations(const std::string& path, const T& config) {
  RETURN_IF_ERROR(
      validateHeadersToAdd(join(path, "request_headers_to_add"), config.request_headers_to_add()));
  RETURN_IF_ERROR(validateHeadersToRemove(join(path, "request_headers_to_remove"),
                                          config.request_headers_to_remove()));
  RETURN_IF_ERROR(validateHeadersToAdd(join(path, "response_headers_to_add"),
                                       config.response_headers_to_add()));
  return validateHeadersToRemove(join(path, "response_headers_to_remove"),
                                 config.response_headers_to_remove());
}

// RouteAction.hash_policy[i]: the proto's rules (a policy is required; names not empty).
absl::Status validateHashPolicy(const std::string& path,
                                const envoy::config::route::v3::RouteAction::HashPolicy& policy) {
  using HashPolicy = envoy::config::route::v3::RouteAction::HashPolicy;
  switch (policy.policy_specifier_case()) {
    case HashPolicy::kHeader:
      if (policy.header().header_name().empty()) {
        return error(join(path, "header.header_name"), "must not be empty");
      }
      break;
    case HashPolicy::kCookie:
      if (policy.cookie().name().empty()) {
        return error(join(path, "cookie.name"), "must not be empty");
      }
      if (isNegative(policy.cookie().ttl())) {
        return error(join(path, "cookie.ttl"), "must not be negative");
      }
      break;
    case HashPolicy::kQueryParameter:
      if (policy.query_parameter().name().empty()) {
        return error(join(path, "query_parameter.name"), "must not be empty");
      }
      break;
    case HashPolicy::kConnectionProperties:
    case HashPolicy::kFilterState:  // refused by the field table
      break;
    case HashPolicy::POLICY_SPECIFIER_NOT_SET:
      return error(path,
                   "one of header, cookie, connection_properties, query_parameter or filter_state "
                   "is required");
  }
  return absl::OkStatus();
}

absl::Status validateRetryPolicy(const std::string& path,
                                 const envoy::config::route::v3::RetryPolicy& policy) {
  if (isNegative(policy.per_try_timeout())) {
    return error(join(path, "per_try_timeout"), "must not be negative");
  }
  if (isNegative(policy.per_try_idle_timeout())) {
    return error(join(path, "per_try_idle_timeout"), "must not be negative");
  }
  if (policy.has_retry_back_off()) {
    const auto& back_off = policy.retry_back_off();
    if (!isPositive(back_off.base_interval())) {
      return error(join(path, "retry_back_off.base_interval"), "must be greater than 0s");
    }
    if (back_off.has_max_interval()) {
      const auto& base = back_off.base_interval();
      const auto& max = back_off.max_interval();
      if (!isPositive(max)) {
        return error(join(path, "retry_back_off.max_interval"), "must be greater than 0s");
      }
      if (max.seconds() < base.seconds() ||
          (max.seconds() == base.seconds() && max.nanos() < base.nanos())) {
        return error(join(path, "retry_back_off.max_interval"),
                     "must be greater than or equal to the base_interval");
      }
    }
  }
  // The one retry host predicate the router implements.
  for (int i = 0; i < policy.retry_host_predicate_size(); i++) {
    const auto& predicate = policy.retry_host_predicate(i);
    const bool previous_hosts =
        predicate.has_typed_config()
            ? predicate.typed_config()
                  .Is<envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate>()
            : predicate.name() == "envoy.retry_host_predicates.previous_hosts";
    if (!previous_hosts) {
      return error(
          at(path, "retry_host_predicate", i),
          absl::StrCat("'", predicate.name(),
                       "': not supported (only envoy.retry_host_predicates.previous_hosts)"));
    }
  }
  if (policy.host_selection_retry_max_attempts() < 0) {
    return error(join(path, "host_selection_retry_max_attempts"), "must not be negative");
  }
  for (int i = 0; i < policy.retriable_status_codes_size(); i++) {
    const uint32_t code = policy.retriable_status_codes(i);
    if (code < 100 || code > 599) {
      return error(at(path, "retriable_status_codes", i),
                   absl::StrCat(code, " is not an HTTP status code"));
    }
  }
  return absl::OkStatus();
}

absl::Status validateHeaderMatcher(const std::string& path,
                                   const envoy::config::route::v3::HeaderMatcher& matcher) {
  using envoy::config::route::v3::HeaderMatcher;
  if (matcher.name().empty()) {
    return error(join(path, "name"), "required");
  }
  if (!isValidHeaderName(matcher.name())) {
    return error(join(path, "name"), absl::StrCat("invalid header name '", matcher.name(), "'"));
  }
  switch (matcher.header_match_specifier_case()) {
    case HeaderMatcher::kSafeRegexMatch:
      return validateRegex(join(path, "safe_regex_match"), matcher.safe_regex_match());
    case HeaderMatcher::kStringMatch:
      return validateStringMatcher(join(path, "string_match"), matcher.string_match());
    case HeaderMatcher::kPrefixMatch:
      return matcher.prefix_match().empty() ? error(join(path, "prefix_match"), "must not be empty")
                                            : absl::OkStatus();
    case HeaderMatcher::kSuffixMatch:
      return matcher.suffix_match().empty() ? error(join(path, "suffix_match"), "must not be empty")
                                            : absl::OkStatus();
    case HeaderMatcher::kContainsMatch:
      return matcher.contains_match().empty()
                 ? error(join(path, "contains_match"), "must not be empty")
                 : absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

absl::Status validateRouteMatch(const std::string& path,
                                const envoy::config::route::v3::RouteMatch& match) {
  using envoy::config::route::v3::RouteMatch;
  switch (match.path_specifier_case()) {
    case RouteMatch::kPrefix:
    case RouteMatch::kPath:
      break;
    case RouteMatch::kSafeRegex:
      RETURN_IF_ERROR(validateRegex(join(path, "safe_regex"), match.safe_regex()));
      break;
    case RouteMatch::kPathSeparatedPrefix: {
      const std::string& p = match.path_separated_prefix();
      if (p.size() < 2 || p.find_first_of("?#") != std::string::npos || p.back() == '/') {
        return error(join(path, "path_separated_prefix"),
                     absl::StrCat("invalid value '", p,
                                  "': must not contain '?' or '#' and must not end with '/'"));
      }
      break;
    }
    case RouteMatch::kConnectMatcher:
      return error(join(path, "connect_matcher"), "CONNECT is not supported");
    case RouteMatch::kPathMatchPolicy:
      return error(join(path, "path_match_policy"), "path match extensions are not supported");
    default:
      return error(path, "one of prefix, path, safe_regex or path_separated_prefix is required");
  }
  for (int i = 0; i < match.headers_size(); i++) {
    RETURN_IF_ERROR(validateHeaderMatcher(at(path, "headers", i), match.headers(i)));
  }
  for (int i = 0; i < match.query_parameters_size(); i++) {
    const auto& qp = match.query_parameters(i);
    const std::string qpath = at(path, "query_parameters", i);
    if (qp.name().empty()) {
      return error(join(qpath, "name"), "required");
    }
    if (qp.has_string_match()) {
      RETURN_IF_ERROR(validateStringMatcher(join(qpath, "string_match"), qp.string_match()));
    }
  }
  return absl::OkStatus();
}

absl::Status validateWeightedClusters(const std::string& path,
                                      const envoy::config::route::v3::WeightedCluster& wc) {
  if (wc.clusters().empty()) {
    return error(join(path, "clusters"), "at least one cluster is required");
  }
  uint64_t sum = 0;
  for (int i = 0; i < wc.clusters_size(); i++) {
    const auto& cw = wc.clusters(i);
    const std::string cp = at(path, "clusters", i);
    if (cw.name().empty() && cw.cluster_header().empty()) {
      return error(cp, "At least one of name or cluster_header need to be specified");
    }
    if (!cw.name().empty() && !cw.cluster_header().empty()) {
      return error(cp, "Only one of name or cluster_header can be specified");
    }
    if (!cw.cluster_header().empty() && !isValidHeaderName(cw.cluster_header())) {
      return error(join(cp, "cluster_header"),
                   absl::StrCat("invalid header name '", cw.cluster_header(), "'"));
    }
    RETURN_IF_ERROR(validateHeaderMutations(cp, cw));
    sum += cw.weight().value();
  }
  if (sum == 0) {
    return error(path, "Sum of weights in the weighted_cluster must be greater than 0.");
  }
  if (sum > std::numeric_limits<uint32_t>::max()) {
    return error(path, "The sum of weights of all weighted clusters of route exceeds 4294967295");
  }
  if (wc.has_total_weight() && wc.total_weight().value() != sum) {
    return error(path, absl::StrCat("Sum of weights in the weighted_cluster should add up to ",
                                    wc.total_weight().value()));
  }
  if (!wc.header_name().empty() && !isValidHeaderName(wc.header_name())) {
    return error(join(path, "header_name"),
                 absl::StrCat("invalid header name '", wc.header_name(), "'"));
  }
  return absl::OkStatus();
}

absl::Status validateRouteAction(const std::string& path,
                                 const envoy::config::route::v3::RouteAction& action) {
  using envoy::config::route::v3::RouteAction;
  switch (action.cluster_specifier_case()) {
    case RouteAction::kCluster:
      if (action.cluster().empty()) {
        return error(join(path, "cluster"), "must not be empty");
      }
      break;
    case RouteAction::kClusterHeader:
      if (!isValidHeaderName(action.cluster_header())) {
        return error(join(path, "cluster_header"),
                     absl::StrCat("invalid header name '", action.cluster_header(), "'"));
      }
      break;
    case RouteAction::kWeightedClusters:
      RETURN_IF_ERROR(
          validateWeightedClusters(join(path, "weighted_clusters"), action.weighted_clusters()));
      break;
    case RouteAction::kClusterSpecifierPlugin:
    case RouteAction::kInlineClusterSpecifierPlugin:
      return error(path, "cluster specifier plugins are not supported");
    default:
      return error(path, "one of cluster, cluster_header or weighted_clusters is required");
  }
  if (!RouteAction::ClusterNotFoundResponseCode_IsValid(action.cluster_not_found_response_code())) {
    return error(join(path, "cluster_not_found_response_code"),
                 absl::StrCat("invalid value ", action.cluster_not_found_response_code()));
  }
  if (!action.prefix_rewrite().empty() && action.has_regex_rewrite()) {
    return error(path, "Cannot specify both prefix_rewrite and regex_rewrite");
  }
  if (action.has_path_rewrite_policy()) {
    return error(join(path, "path_rewrite_policy"), "path rewrite extensions are not supported");
  }
  if (!isValidHeaderValue(action.prefix_rewrite())) {
    return error(join(path, "prefix_rewrite"), "must not contain CR, LF or NUL");
  }
  if (action.has_regex_rewrite()) {
    RETURN_IF_ERROR(validateRegexRewrite(join(path, "regex_rewrite"), action.regex_rewrite()));
  }
  switch (action.host_rewrite_specifier_case()) {
    case RouteAction::kHostRewriteLiteral:
      if (!isValidHeaderValue(action.host_rewrite_literal())) {
        return error(join(path, "host_rewrite_literal"), "must not contain CR, LF or NUL");
      }
      break;
    case RouteAction::kHostRewriteHeader:
      if (!isValidHeaderName(action.host_rewrite_header())) {
        return error(join(path, "host_rewrite_header"),
                     absl::StrCat("invalid header name '", action.host_rewrite_header(), "'"));
      }
      break;
    case RouteAction::kHostRewritePathRegex:
      RETURN_IF_ERROR(validateRegexRewrite(join(path, "host_rewrite_path_regex"),
                                           action.host_rewrite_path_regex()));
      break;
    default:
      break;
  }
  if (isNegative(action.timeout())) {
    return error(join(path, "timeout"), "must not be negative");
  }
  if (isNegative(action.idle_timeout())) {
    return error(join(path, "idle_timeout"), "must not be negative");
  }
  if (isNegative(action.max_grpc_timeout())) {
    return error(join(path, "max_grpc_timeout"), "must not be negative");
  }
  if (isNegative(action.grpc_timeout_offset())) {
    return error(join(path, "grpc_timeout_offset"), "must not be negative");
  }
  const std::string msd_path = join(path, "max_stream_duration");
  const auto& msd = action.max_stream_duration();
  if (isNegative(msd.max_stream_duration())) {
    return error(join(msd_path, "max_stream_duration"), "must not be negative");
  }
  if (isNegative(msd.grpc_timeout_header_max())) {
    return error(join(msd_path, "grpc_timeout_header_max"), "must not be negative");
  }
  if (isNegative(msd.grpc_timeout_header_offset())) {
    return error(join(msd_path, "grpc_timeout_header_offset"), "must not be negative");
  }
  if (action.has_retry_policy()) {
    RETURN_IF_ERROR(validateRetryPolicy(join(path, "retry_policy"), action.retry_policy()));
  }
  for (int i = 0; i < action.hash_policy_size(); i++) {
    RETURN_IF_ERROR(validateHashPolicy(absl::StrCat(join(path, "hash_policy"), "[", i, "]"),
                                       action.hash_policy(i)));
  }
  return absl::OkStatus();
}

absl::Status validateRedirect(const std::string& path,
                              const envoy::config::route::v3::RedirectAction& redirect) {
  using envoy::config::route::v3::RedirectAction;
  if (redirect.port_redirect() > 65535) {
    return error(join(path, "port_redirect"),
                 absl::StrCat(redirect.port_redirect(), " is out of range (0-65535)"));
  }
  if (!RedirectAction::RedirectResponseCode_IsValid(redirect.response_code())) {
    return error(join(path, "response_code"),
                 absl::StrCat("invalid value ", redirect.response_code()));
  }
  for (const std::string* field : {&redirect.host_redirect(), &redirect.path_redirect(),
                                   &redirect.prefix_rewrite(), &redirect.scheme_redirect()}) {
    if (!isValidHeaderValue(*field)) {
      return error(path, "redirect fields must not contain CR, LF or NUL");
    }
  }
  if (redirect.has_regex_rewrite()) {
    RETURN_IF_ERROR(validateRegexRewrite(join(path, "regex_rewrite"), redirect.regex_rewrite()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status validateRouteConfigurationAt(const std::string& path, const RouteConfiguration& rc) {
  if (rc.has_vhds()) {
    return error(join(path, "vhds"), "VHDS is not supported");
  }
  if (!rc.cluster_specifier_plugins().empty()) {
    return error(join(path, "cluster_specifier_plugins"),
                 "cluster specifier plugins are not supported");
  }
  RETURN_IF_ERROR(validateHeaderMutations(path, rc));
  const size_t max_body = rc.has_max_direct_response_body_size_bytes()
                              ? rc.max_direct_response_body_size_bytes().value()
                              : kDefaultMaxDirectResponseBodySize;

  // Domains are matched case-insensitively, so duplicates are found on the lower-cased form.
  absl::flat_hash_set<std::string> domains;
  for (int v = 0; v < rc.virtual_hosts_size(); v++) {
    const auto& vhost = rc.virtual_hosts(v);
    const std::string vp = at(path, "virtual_hosts", v);
    if (vhost.name().empty()) {
      return error(join(vp, "name"), "required");
    }
    if (vhost.domains().empty()) {
      return error(join(vp, "domains"), "at least one domain is required");
    }
    for (int d = 0; d < vhost.domains_size(); d++) {
      const std::string domain = absl::AsciiStrToLower(vhost.domains(d));
      const std::string dp = at(vp, "domains", d);
      if (domain.empty()) {
        return error(dp, "must not be empty");
      }
      if (!domains.insert(domain).second) {
        // Envoy's messages, word for word.
        if (domain == "*") {
          return error(
              dp, absl::StrCat("Only a single wildcard domain is permitted in route ", rc.name()));
        }
        return error(dp, absl::StrCat("Only unique values for domains are permitted. Duplicate "
                                      "entry of domain ",
                                      domain, " in route ", rc.name()));
      }
    }
    RETURN_IF_ERROR(validateHeaderMutations(vp, vhost));
    if (vhost.has_retry_policy()) {
      RETURN_IF_ERROR(validateRetryPolicy(join(vp, "retry_policy"), vhost.retry_policy()));
    }
    for (int r = 0; r < vhost.routes_size(); r++) {
      const auto& route = vhost.routes(r);
      const std::string rp = at(vp, "routes", r);
      if (!route.has_match()) {
        return error(join(rp, "match"), "required");
      }
      RETURN_IF_ERROR(validateRouteMatch(join(rp, "match"), route.match()));
      RETURN_IF_ERROR(validateHeaderMutations(rp, route));
      switch (route.action_case()) {
        case envoy::config::route::v3::Route::kRoute:
          RETURN_IF_ERROR(validateRouteAction(join(rp, "route"), route.route()));
          break;
        case envoy::config::route::v3::Route::kRedirect:
          RETURN_IF_ERROR(validateRedirect(join(rp, "redirect"), route.redirect()));
          break;
        case envoy::config::route::v3::Route::kDirectResponse: {
          const auto& dr = route.direct_response();
          if (dr.status() < 200 || dr.status() >= 600) {
            return error(join(rp, "direct_response.status"),
                         absl::StrCat(dr.status(), " is out of range [200, 600)"));
          }
          if (dr.has_body()) {
            absl::StatusOr<std::string> body =
                readDataSource(dr.body(), join(rp, "direct_response.body"), max_body);
            if (!body.ok()) {
              return body.status();
            }
          }
          break;
        }
        case envoy::config::route::v3::Route::kFilterAction:
          return error(join(rp, "filter_action"), "not supported");
        case envoy::config::route::v3::Route::kNonForwardingAction:
          return error(join(rp, "non_forwarding_action"), "not supported");
        default:
          return error(rp, "one of route, redirect or direct_response is required");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status validateRouteConfiguration(const RouteConfiguration& rc, const std::string& path) {
  RETURN_IF_ERROR(validateRouteConfigurationAt(path, rc));
  return checkSupportedFields(rc, path);
}

bool validatesClusters(const RouteConfiguration& rc, bool inline_default) {
  return rc.has_validate_clusters() ? rc.validate_clusters().value() : inline_default;
}

absl::Status validateRouteClusters(const RouteConfiguration& rc,
                                   const std::function<bool(std::string_view)>& cluster_exists,
                                   const std::string& path) {
  // Envoy's words ("route: unknown cluster 'x'"), then the route configuration they are in.
  auto unknown = [&rc](const std::string& field_path, absl::string_view what,
                       const std::string& name) {
    return error(field_path, absl::StrCat("route: unknown ", what, " '", name,
                                          "' (route configuration '", rc.name(), "')"));
  };
  for (int v = 0; v < rc.virtual_hosts_size(); v++) {
    const auto& vhost = rc.virtual_hosts(v);
    for (int r = 0; r < vhost.routes_size(); r++) {
      const auto& route = vhost.routes(r);
      if (!route.has_route()) {
        continue;
      }
      const std::string rp = join(at(at(path, "virtual_hosts", v), "routes", r), "route");
      const auto& action = route.route();
      if (action.cluster_specifier_case() == envoy::config::route::v3::RouteAction::kCluster &&
          !cluster_exists(action.cluster())) {
        return unknown(join(rp, "cluster"), "cluster", action.cluster());
      }
      if (action.has_weighted_clusters()) {
        const auto& clusters = action.weighted_clusters().clusters();
        for (int i = 0; i < clusters.size(); i++) {
          if (!clusters.Get(i).name().empty() && !cluster_exists(clusters.Get(i).name())) {
            return unknown(join(at(join(rp, "weighted_clusters"), "clusters", i), "name"),
                           "weighted cluster", clusters.Get(i).name());
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace Proxy::Config
