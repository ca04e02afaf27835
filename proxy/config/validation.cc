#include "proxy/config/validation.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include <google/protobuf/util/message_differencer.h>
#include <re2/re2.h>

namespace Proxy::Config {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::core::v3::Address;
using envoy::config::core::v3::ApiConfigSource;
using envoy::config::core::v3::ConfigSource;
using envoy::config::core::v3::HeaderValueOption;
using envoy::config::core::v3::SocketAddress;
using envoy::config::listener::v3::FilterChain;
using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;
using google::protobuf::RepeatedPtrField;

#define RETURN_IF_ERROR(expr)      \
  do {                             \
    absl::Status status_ = (expr); \
    if (!status_.ok()) {           \
      return status_;              \
    }                              \
  } while (false)

std::string join(const std::string& path, absl::string_view field) {
  return path.empty() ? std::string(field) : absl::StrCat(path, ".", field);
}

std::string at(const std::string& path, absl::string_view field, int index) {
  return absl::StrCat(join(path, field), "[", index, "]");
}

absl::Status error(const std::string& path, absl::string_view message) {
  return absl::InvalidArgumentError(path.empty() ? std::string(message)
                                                 : absl::StrCat(path, ": ", message));
}

bool isPositive(const google::protobuf::Duration& d) {
  return d.seconds() > 0 || (d.seconds() == 0 && d.nanos() > 0);
}

bool isNegative(const google::protobuf::Duration& d) {
  return d.seconds() < 0 || d.nanos() < 0;
}

// RFC 7230 token characters; header names may also be HTTP/2 pseudo-headers (":path").
bool isValidHeaderName(absl::string_view name) {
  if (absl::StartsWith(name, ":")) {
    name.remove_prefix(1);
  }
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// A value must not smuggle a second header or line into the request.
bool isValidHeaderValue(absl::string_view value) {
  return value.find_first_of(absl::string_view("\r\n\0", 3)) == absl::string_view::npos;
}

// Envoy's rule for header mutations: pseudo-headers and Host are off limits.
bool isModifiableHeader(absl::string_view name) {
  return !absl::StartsWith(name, ":") && !absl::EqualsIgnoreCase(name, "host");
}

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

absl::Status validateSocketAddress(const std::string& path, const Address& address,
                                   bool is_endpoint) {
  if (address.has_pipe() || address.has_envoy_internal_address()) {
    return error(path, "only socket_address is supported");
  }
  if (!address.has_socket_address()) {
    return error(join(path, "socket_address"), "required");
  }
  const std::string sa_path = join(path, "socket_address");
  const SocketAddress& sa = address.socket_address();
  if (sa.protocol() != SocketAddress::TCP) {
    return error(join(sa_path, "protocol"), "only TCP is supported");
  }
  if (!sa.resolver_name().empty()) {
    return error(join(sa_path, "resolver_name"), "custom resolvers are not supported");
  }
  if (sa.address().empty()) {
    return error(join(sa_path, "address"), "required");
  }
  in6_addr buf;
  if (inet_pton(AF_INET, sa.address().c_str(), &buf) != 1 &&
      inet_pton(AF_INET6, sa.address().c_str(), &buf) != 1) {
    // Envoy's wording; we resolve no names (STRICT_DNS/LOGICAL_DNS clusters are unsupported).
    return error(join(sa_path, "address"), absl::StrCat("malformed IP address: ", sa.address()));
  }
  if (sa.port_specifier_case() == SocketAddress::kNamedPort) {
    return error(join(sa_path, "named_port"), "named ports are not supported");
  }
  if (sa.port_value() > 65535) {
    return error(join(sa_path, "port_value"),
                 absl::StrCat(sa.port_value(), " is out of range (0-65535)"));
  }
  if (is_endpoint && sa.port_value() == 0) {
    return error(join(sa_path, "port_value"), "an endpoint needs a port between 1 and 65535");
  }
  return absl::OkStatus();
}

absl::Status validateApiConfigSourceAt(const std::string& path, const ApiConfigSource& api) {
  switch (api.api_type()) {
    case ApiConfigSource::GRPC:
    case ApiConfigSource::DELTA_GRPC:
    case ApiConfigSource::AGGREGATED_GRPC:
    case ApiConfigSource::AGGREGATED_DELTA_GRPC:
      break;
    default:
      return error(
          join(path, "api_type"),
          absl::StrCat("unsupported api type '", ApiConfigSource::ApiType_Name(api.api_type()),
                       "' (expected GRPC or DELTA_GRPC)"));
  }
  if (api.grpc_services().empty()) {
    return error(join(path, "grpc_services"), "at least one gRPC service is required");
  }
  for (int i = 0; i < api.grpc_services_size(); i++) {
    const auto& service = api.grpc_services(i);
    const std::string sp = at(path, "grpc_services", i);
    if (service.has_envoy_grpc()) {
      if (service.envoy_grpc().cluster_name().empty()) {
        return error(join(sp, "envoy_grpc.cluster_name"), "required");
      }
    } else if (service.has_google_grpc()) {
      if (service.google_grpc().target_uri().empty()) {
        return error(join(sp, "google_grpc.target_uri"), "required");
      }
    } else {
      return error(sp, "one of envoy_grpc or google_grpc is required");
    }
  }
  return absl::OkStatus();
}

absl::Status validateConfigSourceAt(const std::string& path, const ConfigSource& source) {
  switch (source.config_source_specifier_case()) {
    case ConfigSource::kAds:
    case ConfigSource::kSelf:
      return absl::OkStatus();
    case ConfigSource::kApiConfigSource:
      return validateApiConfigSourceAt(join(path, "api_config_source"), source.api_config_source());
    case ConfigSource::kPath:
    case ConfigSource::kPathConfigSource:
      return error(path,
                   "file-based config sources are not supported (use ads or api_config_source)");
    default:
      return error(path, "one of ads, api_config_source or self is required");
  }
}

// A config source inside a resource (an HCM's rds, an EDS cluster's eds_config): RDS and EDS
// are fetched over ADS when there is one, else from the server LDS/CDS use, with the
// client's initial fetch timeout (xds_client/config.cc, server/xds_config.cc). A source that
// names another server, or its own timeout, would be silently ignored: refused instead.
absl::Status validateResourceConfigSourceAt(const std::string& path, const ConfigSource& source) {
  RETURN_IF_ERROR(validateConfigSourceAt(path, source));
  if (source.has_api_config_source()) {
    return error(join(path, "api_config_source"),
                 "not supported (RDS and EDS come over ADS, or from the server that sent the "
                 "listener or cluster: use ads or self)");
  }
  if (source.has_initial_fetch_timeout()) {
    return error(join(path, "initial_fetch_timeout"), "not supported");
  }
  if (source.resource_api_version() == envoy::config::core::v3::V2) {
    return error(join(path, "resource_api_version"), "V3 is required (got V2)");
  }
  return absl::OkStatus();
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
  if (action.has_retry_policy()) {
    RETURN_IF_ERROR(validateRetryPolicy(join(path, "retry_policy"), action.retry_policy()));
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

absl::Status validateHcmAt(const std::string& path, const HttpConnectionManager& hcm) {
  if (hcm.stat_prefix().empty()) {
    return error(join(path, "stat_prefix"), "required");
  }
  if (hcm.codec_type() != HttpConnectionManager::AUTO &&
      hcm.codec_type() != HttpConnectionManager::HTTP1) {
    return error(join(path, "codec_type"),
                 absl::StrCat("unsupported codec type '",
                              HttpConnectionManager::CodecType_Name(hcm.codec_type()),
                              "' (only AUTO and HTTP1)"));
  }
  switch (hcm.route_specifier_case()) {
    case HttpConnectionManager::kRds:
      if (!hcm.rds().has_config_source()) {
        return error(join(path, "rds.config_source"), "required");
      }
      RETURN_IF_ERROR(validateResourceConfigSourceAt(join(path, "rds.config_source"),
                                                     hcm.rds().config_source()));
      if (hcm.rds().route_config_name().empty()) {
        return error(join(path, "rds.route_config_name"), "required");
      }
      break;
    case HttpConnectionManager::kRouteConfig:
      RETURN_IF_ERROR(validateRouteConfigurationAt(join(path, "route_config"), hcm.route_config()));
      break;
    default:
      return error(path, "one of rds or route_config is required");
  }

  const auto& filters = hcm.http_filters();
  if (filters.empty()) {
    return error(join(path, "http_filters"),
                 "the last HTTP filter must be envoy.filters.http.router; none is configured");
  }
  for (int i = 0; i < filters.size(); i++) {
    const HttpFilter& filter = filters.Get(i);
    const std::string fp = at(path, "http_filters", i);
    const bool last = i == filters.size() - 1;
    if (isRouterFilter(filter)) {
      if (!last) {
        return error(fp, absl::StrCat("terminal filter named '", filter.name(),
                                      "' must be the last filter in a http filter chain"));
      }
      continue;
    }
    // Envoy skips an optional filter it does not know; so do we.
    if (filter.is_optional() && !last) {
      continue;
    }
    if (filter.is_optional()) {
      return error(fp, absl::StrCat("non-terminal filter named '", filter.name(),
                                    "' is the last filter in a http filter chain"));
    }
    if (filter.has_config_discovery()) {
      return error(join(fp, "config_discovery"), "filter config discovery is not supported");
    }
    if (!filter.has_typed_config()) {
      return error(fp, absl::StrCat("unsupported HTTP filter '", filter.name(), "'"));
    }
    return error(join(fp, "typed_config"), absl::StrCat("unsupported HTTP filter type '",
                                                        filter.typed_config().type_url(), "'"));
  }
  return absl::OkStatus();
}

absl::Status validateTcpProxyAt(const std::string& path, const TcpProxy& tcp) {
  if (tcp.stat_prefix().empty()) {
    return error(join(path, "stat_prefix"), "required");
  }
  switch (tcp.cluster_specifier_case()) {
    case TcpProxy::kCluster:
      if (tcp.cluster().empty()) {
        return error(join(path, "cluster"), "must not be empty");
      }
      break;
    case TcpProxy::kWeightedClusters: {
      const auto& clusters = tcp.weighted_clusters().clusters();
      if (clusters.empty()) {
        return error(join(path, "weighted_clusters.clusters"), "at least one cluster is required");
      }
      for (int i = 0; i < clusters.size(); i++) {
        const std::string cp = at(path, "weighted_clusters.clusters", i);
        if (clusters.Get(i).name().empty()) {
          return error(join(cp, "name"), "required");
        }
        if (clusters.Get(i).weight() == 0) {
          return error(join(cp, "weight"), "must be at least 1");
        }
      }
      break;
    }
    default:
      return error(path, "one of cluster or weighted_clusters is required");
  }
  if (tcp.has_tunneling_config()) {
    return error(join(path, "tunneling_config"), "tunneling is not supported");
  }
  if (tcp.has_on_demand()) {
    return error(join(path, "on_demand"), "on-demand cluster discovery is not supported");
  }
  return absl::OkStatus();
}

absl::Status validateFilterChain(const std::string& path, const FilterChain& chain) {
  if (chain.has_transport_socket()) {
    const auto& ts = chain.transport_socket();
    if (!ts.has_typed_config() || typeName(ts.typed_config()) != kRawBufferTypeName) {
      return error(
          join(path, "transport_socket"),
          absl::StrCat("unsupported transport socket type '",
                       ts.has_typed_config() ? ts.typed_config().type_url() : ts.name(), "'"));
    }
  }
  if (chain.use_proxy_proto().value()) {
    return error(join(path, "use_proxy_proto"), "the PROXY protocol is not supported");
  }
  const auto& filters = chain.filters();
  if (filters.empty()) {
    return error(join(path, "filters"), "at least one network filter is required");
  }
  for (int i = 0; i < filters.size(); i++) {
    const auto& filter = filters.Get(i);
    const std::string fp = at(path, "filters", i);
    const std::string tp = join(fp, "typed_config");
    if (filter.has_config_discovery()) {
      return error(join(fp, "config_discovery"), "filter config discovery is not supported");
    }
    if (!filter.has_typed_config()) {
      return error(tp, "required");
    }
    switch (networkFilterType(filter)) {
      case NetworkFilterType::HttpConnectionManager: {
        absl::StatusOr<HttpConnectionManager> hcm = unpackHcm(filter);
        if (!hcm.ok()) {
          return error(
              tp, absl::StrCat("unable to parse ", std::string(typeName(filter.typed_config()))));
        }
        RETURN_IF_ERROR(validateHcmAt(tp, *hcm));
        break;
      }
      case NetworkFilterType::TcpProxy: {
        absl::StatusOr<TcpProxy> tcp = unpackTcpProxy(filter);
        if (!tcp.ok()) {
          return error(
              tp, absl::StrCat("unable to parse ", std::string(typeName(filter.typed_config()))));
        }
        RETURN_IF_ERROR(validateTcpProxyAt(tp, *tcp));
        break;
      }
      case NetworkFilterType::Unsupported:
        return error(tp, absl::StrCat("unsupported network filter type '",
                                      filter.typed_config().type_url(), "'"));
    }
    // Both filters we support are terminal: nothing may follow them.
    if (i != filters.size() - 1) {
      return error(fp, absl::StrCat("terminal filter named '", filter.name(), "' of type '",
                                    std::string(typeName(filter.typed_config())),
                                    "' must be the last filter in a network filter chain"));
    }
  }
  return absl::OkStatus();
}

absl::Status validateClusterLoadAssignmentAt(
    const std::string& path, const envoy::config::endpoint::v3::ClusterLoadAssignment& cla) {
  using envoy::config::endpoint::v3::LbEndpoint;
  using envoy::config::endpoint::v3::LocalityLbEndpoints;
  for (int i = 0; i < cla.endpoints_size(); i++) {
    const LocalityLbEndpoints& locality = cla.endpoints(i);
    const std::string lp = at(path, "endpoints", i);
    if (locality.lb_config_case() != LocalityLbEndpoints::LB_CONFIG_NOT_SET) {
      return error(lp,
                   "load_balancer_endpoints and leds_cluster_locality_config are not "
                   "supported (use lb_endpoints)");
    }
    if (locality.has_load_balancing_weight() && locality.load_balancing_weight().value() == 0) {
      return error(join(lp, "load_balancing_weight"), "must be at least 1");
    }
    for (int j = 0; j < locality.lb_endpoints_size(); j++) {
      const LbEndpoint& lb = locality.lb_endpoints(j);
      const std::string ep = at(lp, "lb_endpoints", j);
      switch (lb.host_identifier_case()) {
        case LbEndpoint::kEndpoint:
          if (!lb.endpoint().has_address()) {
            return error(join(ep, "endpoint.address"), "required");
          }
          RETURN_IF_ERROR(validateSocketAddress(join(ep, "endpoint.address"),
                                                lb.endpoint().address(),
                                                /*is_endpoint=*/true));
          break;
        case LbEndpoint::kEndpointName:
          return error(join(ep, "endpoint_name"), "named endpoints are not supported");
        default:
          return error(join(ep, "endpoint"), "required");
      }
      if (lb.has_load_balancing_weight() && lb.load_balancing_weight().value() == 0) {
        return error(join(ep, "load_balancing_weight"), "must be at least 1");
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

static absl::Status validateListenerValues(const Listener& listener, const std::string& path);
static absl::Status validateClusterValues(const Cluster& cluster, const std::string& path);

absl::Status validateListener(const Listener& listener, const std::string& path) {
  RETURN_IF_ERROR(validateListenerValues(listener, path));
  return checkSupportedFields(listener, path);
}

static absl::Status validateListenerValues(const Listener& listener, const std::string& path) {
  if (listener.has_api_listener()) {
    return error(join(path, "api_listener"), "not supported");
  }
  if (listener.has_internal_listener()) {
    return error(join(path, "internal_listener"), "not supported");
  }
  if (!listener.has_address()) {
    return error(join(path, "address"), "required");
  }
  RETURN_IF_ERROR(
      validateSocketAddress(join(path, "address"), listener.address(), /*is_endpoint=*/false));
  if (!listener.additional_addresses().empty()) {
    return error(join(path, "additional_addresses"), "not supported");
  }
  if (listener.filter_chains().empty() && !listener.has_default_filter_chain()) {
    return error(join(path, "filter_chains"), "no filter chains specified");
  }
  for (int i = 0; i < listener.filter_chains_size(); i++) {
    RETURN_IF_ERROR(validateFilterChain(at(path, "filter_chains", i), listener.filter_chains(i)));
    for (int j = 0; j < i; j++) {
      if (google::protobuf::util::MessageDifferencer::Equals(
              listener.filter_chains(i).filter_chain_match(),
              listener.filter_chains(j).filter_chain_match())) {
        return error(at(path, "filter_chains", i),
                     absl::StrCat("has the same filter_chain_match as filter_chains[", j, "]"));
      }
    }
  }
  if (listener.has_default_filter_chain()) {
    RETURN_IF_ERROR(
        validateFilterChain(join(path, "default_filter_chain"), listener.default_filter_chain()));
  }
  return absl::OkStatus();
}

absl::Status validateCluster(const Cluster& cluster, const std::string& path,
                             const FieldCheckContext& context) {
  RETURN_IF_ERROR(validateClusterValues(cluster, path));
  return checkSupportedFields(cluster, path, context);
}

static absl::Status validateClusterValues(const Cluster& cluster, const std::string& path) {
  if (cluster.name().empty()) {
    return error(join(path, "name"), "required");
  }
  if (cluster.has_cluster_type()) {
    return error(join(path, "cluster_type"), "custom cluster types are not supported");
  }
  switch (cluster.type()) {
    case Cluster::STATIC:
      if (!cluster.has_load_assignment()) {
        return error(join(path, "load_assignment"), "required for a STATIC cluster");
      }
      break;
    case Cluster::EDS:
      if (!cluster.has_eds_cluster_config() || !cluster.eds_cluster_config().has_eds_config()) {
        return error(join(path, "eds_cluster_config"),
                     "cannot create an EDS cluster without an EDS config");
      }
      RETURN_IF_ERROR(validateResourceConfigSourceAt(join(path, "eds_cluster_config.eds_config"),
                                                     cluster.eds_cluster_config().eds_config()));
      break;
    default:
      return error(join(path, "type"), absl::StrCat("unsupported cluster type '",
                                                    Cluster::DiscoveryType_Name(cluster.type()),
                                                    "' (only STATIC and EDS are supported)"));
  }
  if (cluster.has_load_assignment()) {
    RETURN_IF_ERROR(
        validateClusterLoadAssignmentAt(join(path, "load_assignment"), cluster.load_assignment()));
  }
  if (cluster.has_connect_timeout() && !isPositive(cluster.connect_timeout())) {
    return error(join(path, "connect_timeout"), "must be greater than 0s");
  }
  switch (cluster.lb_policy()) {
    case Cluster::ROUND_ROBIN:
    case Cluster::LEAST_REQUEST:
    case Cluster::RANDOM:
      break;
    default: {
      const std::string& name = Cluster::LbPolicy_Name(cluster.lb_policy());
      return error(join(path, "lb_policy"),
                   absl::StrCat("unsupported load balancing policy '",
                                name.empty() ? std::to_string(cluster.lb_policy()) : name, "'"));
    }
  }
  if (cluster.has_transport_socket()) {
    const auto& ts = cluster.transport_socket();
    if (!ts.has_typed_config() || typeName(ts.typed_config()) != kRawBufferTypeName) {
      return error(
          join(path, "transport_socket"),
          absl::StrCat("unsupported transport socket type '",
                       ts.has_typed_config() ? ts.typed_config().type_url() : ts.name(), "'"));
    }
  }
  if (!cluster.transport_socket_matches().empty()) {
    return error(join(path, "transport_socket_matches"), "not supported");
  }
  for (const auto& [name, options] : cluster.typed_extension_protocol_options()) {
    const std::string op =
        absl::StrCat(join(path, "typed_extension_protocol_options"), "['", name, "']");
    if (name != kHttpProtocolOptionsName) {
      return error(op, "unsupported protocol options");
    }
    HttpProtocolOptions http_options;
    if (!options.Is<HttpProtocolOptions>() || !options.UnpackTo(&http_options)) {
      return error(op, absl::StrCat("expected type '", typeUrl<HttpProtocolOptions>(), "', got '",
                                    options.type_url(), "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status validateRouteConfiguration(const RouteConfiguration& rc, const std::string& path) {
  RETURN_IF_ERROR(validateRouteConfigurationAt(path, rc));
  return checkSupportedFields(rc, path);
}

absl::Status validateClusterLoadAssignment(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& cla, const std::string& path) {
  RETURN_IF_ERROR(validateClusterLoadAssignmentAt(path, cla));
  return checkSupportedFields(cla, path);
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

absl::Status validateHttpConnectionManager(const HttpConnectionManager& hcm,
                                           const std::string& path) {
  return validateHcmAt(path, hcm);
}

absl::Status validateTcpProxy(const TcpProxy& tcp_proxy, const std::string& path) {
  return validateTcpProxyAt(path, tcp_proxy);
}

absl::Status validateConfigSource(const ConfigSource& source, const std::string& path) {
  return validateConfigSourceAt(path, source);
}

absl::Status validateApiConfigSource(const ApiConfigSource& source, const std::string& path) {
  return validateApiConfigSourceAt(path, source);
}

absl::Status validateAddress(const Address& address, const std::string& path) {
  return validateSocketAddress(path, address, /*is_endpoint=*/false);
}

absl::StatusOr<std::string> readDataSource(const envoy::config::core::v3::DataSource& source,
                                           const std::string& what, size_t max_size) {
  using envoy::config::core::v3::DataSource;
  std::string data;
  switch (source.specifier_case()) {
    case DataSource::kInlineString:
      data = source.inline_string();
      break;
    case DataSource::kInlineBytes:
      data = source.inline_bytes();
      break;
    case DataSource::kFilename: {
      std::ifstream file(source.filename(), std::ios::in | std::ios::binary);
      if (!file) {
        return error(
            join(what, "filename"),
            absl::StrCat("unable to read file '", source.filename(), "': ", std::strerror(errno)));
      }
      std::stringstream contents;
      contents << file.rdbuf();
      data = contents.str();
      break;
    }
    case DataSource::kEnvironmentVariable: {
      const char* value = std::getenv(source.environment_variable().c_str());
      if (value == nullptr) {
        return error(join(what, "environment_variable"),
                     absl::StrCat("environment variable '", source.environment_variable(),
                                  "' does not exist"));
      }
      data = value;
      break;
    }
    default:
      return error(
          what, "one of filename, inline_bytes, inline_string or environment_variable is required");
  }
  if (data.size() > max_size) {
    return error(what, absl::StrCat("size is ", data.size(), " bytes; maximum is ", max_size));
  }
  return data;
}

}  // namespace Proxy::Config
