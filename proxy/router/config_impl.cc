#include "proxy/router/config_impl.h"

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "proxy/common/assert.h"
#include "proxy/config/validation.h"

namespace Proxy::Router {
namespace {

using envoy::config::core::v3::HeaderValueOption;

// Debian's abseil predates absl::string_view == std::string_view.
absl::string_view av(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
re2::StringPiece sp(std::string_view s) {
  return re2::StringPiece(s.data(), s.size());
}

char lowerChar(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = lowerChar(c);
  }
  return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); i++) {
    if (lowerChar(a[i]) != lowerChar(b[i])) {
      return false;
    }
  }
  return true;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// `lower_needle` is already lower-case.
bool containsIgnoreCase(std::string_view haystack, std::string_view lower_needle) {
  if (lower_needle.size() > haystack.size()) {
    return false;
  }
  for (size_t i = 0; i + lower_needle.size() <= haystack.size(); i++) {
    if (equalsIgnoreCase(haystack.substr(i, lower_needle.size()), lower_needle)) {
      return true;
    }
  }
  return false;
}

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

// Header values may hold Envoy's %VARIABLE% formatters. Only "%%" (a literal '%') is applied
// here; other %...% text is kept as written until per-request formatting exists.
std::string formatHeaderValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); i++) {
    out.push_back(value[i]);
    if (value[i] == '%' && i + 1 < value.size() && value[i + 1] == '%') {
      i++;
    }
  }
  return out;
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
  static const std::pair<std::string_view, RetryPolicy::RetryOn> kNames[] = {
      {"5xx", RetryPolicy::k5xx},
      {"gateway-error", RetryPolicy::kGatewayError},
      {"reset", RetryPolicy::kReset},
      {"connect-failure", RetryPolicy::kConnectFailure},
      {"retriable-4xx", RetryPolicy::kRetriable4xx},
      {"refused-stream", RetryPolicy::kRefusedStream},
      {"retriable-status-codes", RetryPolicy::kRetriableStatusCodes},
      {"retriable-headers", RetryPolicy::kRetriableHeaders},
      {"reset-before-request", RetryPolicy::kResetBeforeRequest},
      {"envoy-ratelimited", RetryPolicy::kEnvoyRateLimited},
      {"http3-post-connect-failure", RetryPolicy::kHttp3PostConnectFailure},
  };
  RetryPolicy policy;
  for (absl::string_view token : absl::StrSplit(config.retry_on(), ',')) {
    token = absl::StripAsciiWhitespace(token);
    for (const auto& [name, bit] : kNames) {
      if (token == av(name)) {
        policy.retry_on |= bit;
      }
    }
  }
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
  return policy;
}

// The value of header `name`: a view into `headers`, or when it occurs more than once, all
// values joined with ',' in `storage` (Envoy matches against the joined form).
std::optional<std::string_view> headerValue(const Http::HeaderMap& headers, std::string_view name,
                                            std::string& storage) {
  const Http::HeaderEntry* first = nullptr;
  for (const Http::HeaderEntry& entry : headers) {
    if (entry.key != name) {
      continue;
    }
    if (first == nullptr) {
      first = &entry;
      continue;
    }
    if (storage.empty()) {
      storage = first->value;
    }
    storage.push_back(',');
    storage.append(entry.value);
  }
  if (first == nullptr) {
    return std::nullopt;
  }
  return storage.empty() ? std::string_view(first->value) : std::string_view(storage);
}

bool isGrpcRequest(const Http::RequestHeaderMap& headers) {
  std::string_view content_type = headers.getValue(Http::Headers::ContentType);
  return content_type == "application/grpc" || startsWith(content_type, "application/grpc+") ||
         startsWith(content_type, "application/grpc;");
}

const std::string kEmptyString;
const RetryPolicy kNoRetryPolicy{/*retry_on=*/0};

}  // namespace

// --- StringMatcher ------------------------------------------------------------------------

StringMatcher::StringMatcher(const envoy::type::matcher::v3::StringMatcher& config)
    : ignore_case_(config.ignore_case()) {
  using envoy::type::matcher::v3::StringMatcher;
  switch (config.match_pattern_case()) {
    case StringMatcher::kPrefix:
      type_ = Type::Prefix;
      value_ = config.prefix();
      break;
    case StringMatcher::kSuffix:
      type_ = Type::Suffix;
      value_ = config.suffix();
      break;
    case StringMatcher::kContains:
      type_ = Type::Contains;
      value_ = config.contains();
      break;
    case StringMatcher::kSafeRegex:
      type_ = Type::Regex;
      regex_ = compile(config.safe_regex().regex());
      break;
    default:
      type_ = Type::Exact;
      value_ = config.exact();
      break;
  }
  if (ignore_case_) {
    value_ = lower(value_);
  }
}

bool StringMatcher::match(std::string_view value) const {
  switch (type_) {
    case Type::Exact:
      return ignore_case_ ? equalsIgnoreCase(value, value_) : value == value_;
    case Type::Prefix:
      return ignore_case_ ? equalsIgnoreCase(value.substr(0, value_.size()), value_)
                          : startsWith(value, value_);
    case Type::Suffix:
      return ignore_case_ ? value.size() >= value_.size() &&
                                equalsIgnoreCase(value.substr(value.size() - value_.size()), value_)
                          : endsWith(value, value_);
    case Type::Contains:
      return ignore_case_ ? containsIgnoreCase(value, value_)
                          : value.find(value_) != std::string_view::npos;
    case Type::Regex:
      return RE2::FullMatch(sp(value), *regex_);
  }
  return false;
}

// --- HeaderMatcher ------------------------------------------------------------------------

HeaderMatcher::HeaderMatcher(const envoy::config::route::v3::HeaderMatcher& config)
    : name_(lower(config.name())),
      invert_(config.invert_match()),
      treat_missing_as_empty_(config.treat_missing_header_as_empty()) {
  using envoy::config::route::v3::HeaderMatcher;
  switch (config.header_match_specifier_case()) {
    case HeaderMatcher::kExactMatch:
      type_ = Type::Value;
      value_ = config.exact_match();
      break;
    case HeaderMatcher::kSafeRegexMatch:
      type_ = Type::Regex;
      regex_ = compile(config.safe_regex_match().regex());
      break;
    case HeaderMatcher::kRangeMatch:
      type_ = Type::Range;
      range_start_ = config.range_match().start();
      range_end_ = config.range_match().end();
      break;
    case HeaderMatcher::kPresentMatch:
      type_ = Type::Present;
      present_ = config.present_match();
      break;
    case HeaderMatcher::kPrefixMatch:
      type_ = Type::Prefix;
      value_ = config.prefix_match();
      break;
    case HeaderMatcher::kSuffixMatch:
      type_ = Type::Suffix;
      value_ = config.suffix_match();
      break;
    case HeaderMatcher::kContainsMatch:
      type_ = Type::Contains;
      value_ = config.contains_match();
      break;
    case HeaderMatcher::kStringMatch:
      type_ = Type::StringMatch;
      string_match_.emplace(config.string_match());
      break;
    default:
      // No specifier: the header must be present (Envoy's legacy behaviour).
      type_ = Type::Present;
      present_ = true;
      break;
  }
}

bool HeaderMatcher::match(const Http::HeaderMap& headers) const {
  std::string storage;
  const std::optional<std::string_view> value = headerValue(headers, name_, storage);
  if (!value.has_value() && !treat_missing_as_empty_) {
    // Only a presence check can succeed on a missing header: present_match: false, or an
    // inverted present_match: true.
    return type_ == Type::Present && (invert_ ? present_ : !present_);
  }
  return matchValue(value.value_or(std::string_view())) != invert_;
}

bool HeaderMatcher::matchValue(std::string_view value) const {
  switch (type_) {
    case Type::Value:
      return value_.empty() || value == value_;
    case Type::Regex:
      return RE2::FullMatch(sp(value), *regex_);
    case Type::Range: {
      int64_t number = 0;
      return absl::SimpleAtoi(av(value), &number) && number >= range_start_ && number < range_end_;
    }
    case Type::Present:
      return present_;
    case Type::Prefix:
      return startsWith(value, value_);
    case Type::Suffix:
      return endsWith(value, value_);
    case Type::Contains:
      return value.find(value_) != std::string_view::npos;
    case Type::StringMatch:
      return string_match_->match(value);
  }
  return false;
}

// --- QueryParameterMatcher ----------------------------------------------------------------

QueryParameterMatcher::QueryParameterMatcher(
    const envoy::config::route::v3::QueryParameterMatcher& config)
    : name_(config.name()) {
  if (config.has_present_match()) {
    present_match_ = config.present_match();
  } else if (config.has_string_match()) {
    string_match_.emplace(config.string_match());
  }
}

bool QueryParameterMatcher::match(std::string_view query) const {
  // The first parameter with this name decides, as Envoy's getFirstValue.
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = param.find('=');
    if (param.substr(0, eq) != name_) {
      continue;
    }
    if (present_match_.has_value()) {
      return *present_match_;
    }
    if (!string_match_.has_value()) {
      return true;  // no matcher: presence is enough
    }
    return string_match_->match(eq == std::string_view::npos ? std::string_view()
                                                             : param.substr(eq + 1));
  }
  return false;
}

// --- HeaderMutations ----------------------------------------------------------------------

HeaderMutations::HeaderMutations(const HeaderValueOptions& to_add, const HeaderNames& to_remove) {
  for (const HeaderValueOption& option : to_add) {
    const auto& header = option.header();
    std::string value =
        formatHeaderValue(header.value().empty() ? header.raw_value() : header.value());
    // Envoy drops a header whose value formats to nothing, unless asked to keep it.
    if (value.empty() && !option.keep_empty_value()) {
      continue;
    }
    Action action = option.append_action();
    if (option.has_append()) {
      action = option.append().value() ? HeaderValueOption::APPEND_IF_EXISTS_OR_ADD
                                       : HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD;
    }
    to_add_.push_back(Entry{lower(header.key()), std::move(value), action});
  }
  for (const std::string& name : to_remove) {
    to_remove_.push_back(lower(name));
  }
}

void HeaderMutations::apply(Http::HeaderMap& headers) const {
  for (const std::string& name : to_remove_) {
    headers.remove(name);
  }
  for (const Entry& entry : to_add_) {
    switch (entry.action) {
      case HeaderValueOption::ADD_IF_ABSENT:
        if (!headers.has(entry.key)) {
          headers.addCopy(entry.key, entry.value);
        }
        break;
      case HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD:
        headers.setCopy(entry.key, entry.value);
        break;
      case HeaderValueOption::OVERWRITE_IF_EXISTS:
        if (headers.has(entry.key)) {
          headers.setCopy(entry.key, entry.value);
        }
        break;
      default:  // APPEND_IF_EXISTS_OR_ADD
        headers.addCopy(entry.key, entry.value);
        break;
    }
  }
}

// --- RouteEntryImpl::WeightedClusterEntry -------------------------------------------------

// One cluster of weighted_clusters: answers for the cluster-specific parts and defers to its
// route for everything else.
class RouteEntryImpl::WeightedClusterEntry : public RouteEntry {
 public:
  WeightedClusterEntry(const RouteEntryImpl& parent,
                       const envoy::config::route::v3::WeightedCluster::ClusterWeight& config)
      : parent_(parent),
        name_(config.name()),
        cluster_header_(lower(config.cluster_header())),
        weight_(config.weight().value()),
        host_rewrite_(config.host_rewrite_literal()),
        request_mutations_(config.request_headers_to_add(), config.request_headers_to_remove()),
        response_mutations_(config.response_headers_to_add(), config.response_headers_to_remove()) {
  }

  uint64_t weight() const { return weight_; }

  RouteAction action() const override { return RouteAction::Forward; }
  const std::string& routeName() const override { return parent_.routeName(); }
  const VirtualHost& virtualHost() const override { return parent_.virtualHost(); }
  std::string_view clusterName(const Http::RequestHeaderMap& headers) const override {
    return cluster_header_.empty() ? std::string_view(name_) : headers.getValue(cluster_header_);
  }
  uint32_t clusterNotFoundResponseCode() const override {
    return parent_.clusterNotFoundResponseCode();
  }
  std::chrono::milliseconds timeout() const override { return parent_.timeout(); }
  std::optional<std::chrono::milliseconds> idleTimeout() const override {
    return parent_.idleTimeout();
  }
  const RetryPolicy& retryPolicy() const override { return parent_.retryPolicy(); }
  bool autoHostRewrite() const override { return parent_.autoHostRewrite(); }
  void finalizeRequestHeaders(Http::RequestHeaderMap& headers,
                              bool insert_envoy_original_path) const override {
    parent_.finalizeRequestHeadersWith(headers, insert_envoy_original_path, &request_mutations_,
                                       &host_rewrite_);
  }
  void finalizeResponseHeaders(Http::ResponseHeaderMap& headers) const override {
    parent_.finalizeResponseHeadersWith(headers, &response_mutations_);
  }
  uint32_t responseCode() const override { return 0; }
  const std::string& responseBody() const override { return kEmptyString; }
  std::string redirectLocation(const Http::RequestHeaderMap&) const override { return {}; }

 private:
  const RouteEntryImpl& parent_;
  const std::string name_;
  const std::string cluster_header_;
  const uint64_t weight_;
  const std::string host_rewrite_;
  const HeaderMutations request_mutations_;
  const HeaderMutations response_mutations_;
};

// --- RouteEntryImpl -----------------------------------------------------------------------

RouteEntryImpl::RouteEntryImpl(const VirtualHostImpl& vhost,
                               const envoy::config::route::v3::Route& route,
                               std::string direct_response_body)
    : vhost_(vhost),
      name_(route.name()),
      request_mutations_(route.request_headers_to_add(), route.request_headers_to_remove()),
      response_mutations_(route.response_headers_to_add(), route.response_headers_to_remove()) {
  using envoy::config::route::v3::RouteMatch;
  const RouteMatch& match = route.match();
  switch (match.path_specifier_case()) {
    case RouteMatch::kPath:
      path_match_ = PathMatch::Path;
      path_value_ = match.path();
      break;
    case RouteMatch::kSafeRegex:
      path_match_ = PathMatch::Regex;
      path_regex_ = compile(match.safe_regex().regex());
      break;
    case RouteMatch::kPathSeparatedPrefix:
      path_match_ = PathMatch::PathSeparatedPrefix;
      path_value_ = match.path_separated_prefix();
      break;
    default:
      path_match_ = PathMatch::Prefix;
      path_value_ = match.prefix();
      break;
  }
  case_sensitive_ = !match.has_case_sensitive() || match.case_sensitive().value();
  for (const auto& header : match.headers()) {
    header_matchers_.emplace_back(header);
  }
  for (const auto& param : match.query_parameters()) {
    query_matchers_.emplace_back(param);
  }
  grpc_only_ = match.has_grpc();
  // No TLS yet: a certificate is never presented nor validated.
  tls_required_ = match.has_tls_context() && (match.tls_context().presented().value() ||
                                              match.tls_context().validated().value());
  // runtime_fraction uses its default_value (there is no runtime layer to override it).
  if (match.has_runtime_fraction()) {
    const auto& fraction = match.runtime_fraction().default_value();
    runtime_numerator_ = fraction.numerator();
    switch (fraction.denominator()) {
      case envoy::type::v3::FractionalPercent::TEN_THOUSAND:
        runtime_denominator_ = 10000;
        break;
      case envoy::type::v3::FractionalPercent::MILLION:
        runtime_denominator_ = 1000000;
        break;
      default:
        runtime_denominator_ = 100;
        break;
    }
  }

  switch (route.action_case()) {
    case envoy::config::route::v3::Route::kRoute: {
      using envoy::config::route::v3::RouteAction;
      const RouteAction& ra = route.route();
      action_ = Router::RouteAction::Forward;
      switch (ra.cluster_specifier_case()) {
        case RouteAction::kClusterHeader:
          cluster_header_ = lower(ra.cluster_header());
          break;
        case RouteAction::kWeightedClusters:
          for (const auto& cluster : ra.weighted_clusters().clusters()) {
            weighted_clusters_.push_back(std::make_unique<WeightedClusterEntry>(*this, cluster));
            total_weight_ += weighted_clusters_.back()->weight();
          }
          random_value_header_ = lower(ra.weighted_clusters().header_name());
          break;
        default:
          cluster_name_ = ra.cluster();
          break;
      }
      switch (ra.cluster_not_found_response_code()) {
        case RouteAction::NOT_FOUND:
          cluster_not_found_code_ = 404;
          break;
        case RouteAction::INTERNAL_SERVER_ERROR:
          cluster_not_found_code_ = 500;
          break;
        default:
          cluster_not_found_code_ = 503;
          break;
      }
      prefix_rewrite_ = ra.prefix_rewrite();
      if (ra.has_regex_rewrite()) {
        regex_rewrite_ = compile(ra.regex_rewrite().pattern().regex());
        regex_rewrite_substitution_ = ra.regex_rewrite().substitution();
      }
      switch (ra.host_rewrite_specifier_case()) {
        case RouteAction::kHostRewriteLiteral:
          host_rewrite_ = HostRewrite::Literal;
          host_rewrite_value_ = ra.host_rewrite_literal();
          break;
        case RouteAction::kHostRewriteHeader:
          host_rewrite_ = HostRewrite::Header;
          host_rewrite_value_ = lower(ra.host_rewrite_header());
          break;
        case RouteAction::kHostRewritePathRegex:
          host_rewrite_ = HostRewrite::PathRegex;
          host_rewrite_regex_ = compile(ra.host_rewrite_path_regex().pattern().regex());
          host_rewrite_substitution_ = ra.host_rewrite_path_regex().substitution();
          break;
        case RouteAction::kAutoHostRewrite:
          auto_host_rewrite_ = ra.auto_host_rewrite().value();
          break;
        default:
          break;
      }
      if (ra.has_timeout()) {
        timeout_ = toMillis(ra.timeout());
      }
      if (ra.has_idle_timeout()) {
        idle_timeout_ = toMillis(ra.idle_timeout());
      }
      if (ra.has_retry_policy()) {
        retry_policy_ = parseRetryPolicy(ra.retry_policy());
      }
      break;
    }
    case envoy::config::route::v3::Route::kRedirect: {
      using envoy::config::route::v3::RedirectAction;
      const RedirectAction& redirect = route.redirect();
      action_ = Router::RouteAction::Redirect;
      switch (redirect.response_code()) {
        case RedirectAction::FOUND:
          response_code_ = 302;
          break;
        case RedirectAction::SEE_OTHER:
          response_code_ = 303;
          break;
        case RedirectAction::TEMPORARY_REDIRECT:
          response_code_ = 307;
          break;
        case RedirectAction::PERMANENT_REDIRECT:
          response_code_ = 308;
          break;
        default:
          response_code_ = 301;
          break;
      }
      scheme_redirect_ = redirect.https_redirect() ? "https" : redirect.scheme_redirect();
      host_redirect_ = redirect.host_redirect();
      if (redirect.port_redirect() != 0) {
        port_redirect_ = absl::StrCat(":", redirect.port_redirect());
      }
      path_redirect_ = redirect.path_redirect();
      path_redirect_has_query_ = path_redirect_.find('?') != std::string::npos;
      prefix_rewrite_ = redirect.prefix_rewrite();
      if (redirect.has_regex_rewrite()) {
        regex_rewrite_ = compile(redirect.regex_rewrite().pattern().regex());
        regex_rewrite_substitution_ = redirect.regex_rewrite().substitution();
      }
      strip_query_ = redirect.strip_query();
      break;
    }
    default:  // direct_response (validation admits nothing else)
      action_ = Router::RouteAction::DirectResponse;
      response_code_ = route.direct_response().status();
      response_body_ = std::move(direct_response_body);
      break;
  }
}

const VirtualHost& RouteEntryImpl::virtualHost() const {
  return vhost_;
}

const RetryPolicy& RouteEntryImpl::retryPolicy() const {
  return retry_policy_.has_value() ? *retry_policy_ : vhost_.retryPolicy();
}

std::string_view RouteEntryImpl::clusterName(const Http::RequestHeaderMap& headers) const {
  if (!cluster_header_.empty()) {
    return headers.getValue(cluster_header_);
  }
  return cluster_name_;
}

bool RouteEntryImpl::matchesPath(std::string_view path) const {
  switch (path_match_) {
    case PathMatch::Prefix:
      return case_sensitive_ ? startsWith(path, path_value_)
                             : equalsIgnoreCase(path.substr(0, path_value_.size()), path_value_);
    case PathMatch::Path: {
      const std::string_view p = stripQuery(path);
      return case_sensitive_ ? p == path_value_ : equalsIgnoreCase(p, path_value_);
    }
    case PathMatch::Regex:
      return RE2::FullMatch(sp(stripQuery(path)), *path_regex_);
    case PathMatch::PathSeparatedPrefix: {
      const std::string_view p = stripQuery(path);
      const std::string_view head = p.substr(0, path_value_.size());
      if (!(case_sensitive_ ? head == path_value_ : equalsIgnoreCase(head, path_value_))) {
        return false;
      }
      return p.size() == path_value_.size() || p[path_value_.size()] == '/';
    }
  }
  return false;
}

bool RouteEntryImpl::matches(const Http::RequestHeaderMap& headers, std::string_view path,
                             uint64_t random_value) const {
  if (!matchesPath(path)) {
    return false;
  }
  if (runtime_denominator_ != 0 && random_value % runtime_denominator_ >= runtime_numerator_) {
    return false;
  }
  for (const HeaderMatcher& matcher : header_matchers_) {
    if (!matcher.match(headers)) {
      return false;
    }
  }
  if (!query_matchers_.empty()) {
    const size_t q = path.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view() : path.substr(q + 1);
    query = query.substr(0, query.find('#'));
    for (const QueryParameterMatcher& matcher : query_matchers_) {
      if (!matcher.match(query)) {
        return false;
      }
    }
  }
  if (grpc_only_ && !isGrpcRequest(headers)) {
    return false;
  }
  return !tls_required_;
}

const RouteEntry* RouteEntryImpl::pick(const Http::RequestHeaderMap& headers,
                                       uint64_t random_value) const {
  if (weighted_clusters_.empty()) {
    return this;
  }
  if (!random_value_header_.empty()) {
    // A request may carry its own "random" value, to pin a client to one cluster.
    uint64_t from_header = 0;
    if (absl::SimpleAtoi(av(headers.getValue(random_value_header_)), &from_header)) {
      random_value = from_header;
    }
  }
  // Envoy's walk: cluster i owns [sum of earlier weights, that + weight_i).
  const uint64_t selected = random_value % total_weight_;
  uint64_t end = 0;
  for (const auto& cluster : weighted_clusters_) {
    end += cluster->weight();
    if (selected < end) {
      return cluster.get();
    }
  }
  return weighted_clusters_.back().get();  // unreachable: total_weight_ is the sum
}

std::optional<std::string> RouteEntryImpl::rewritePath(std::string_view path) const {
  if (!prefix_rewrite_.empty()) {
    // What the match consumed: the configured prefix, or for exact/regex matches the whole path
    // without its query (Envoy's currentUrlPathAfterRewriteWithMatchedPath).
    const size_t matched =
        (path_match_ == PathMatch::Prefix || path_match_ == PathMatch::PathSeparatedPrefix)
            ? std::min(path_value_.size(), path.size())
            : stripQuery(path).size();
    std::string out = prefix_rewrite_;
    out.append(path.substr(matched));
    return out;
  }
  if (regex_rewrite_ != nullptr) {
    const std::string_view just_path = stripQuery(path);
    std::string out(just_path);
    RE2::GlobalReplace(&out, *regex_rewrite_, regex_rewrite_substitution_);
    out.append(path.substr(just_path.size()));
    return out;
  }
  return std::nullopt;
}

void RouteEntryImpl::applyMutations(Http::HeaderMap& headers,
                                    const HeaderMutations* cluster_mutations, bool request) const {
  const ConfigImpl& config = vhost_.config();
  // Most specific first: the least specific level gets the last word on an overwrite (Envoy's
  // default), or the reverse with most_specific_header_mutations_wins.
  const HeaderMutations* levels[] = {
      cluster_mutations,
      request ? &request_mutations_ : &response_mutations_,
      request ? &vhost_.requestMutations() : &vhost_.responseMutations(),
      request ? &config.requestMutations() : &config.responseMutations(),
  };
  if (config.mostSpecificHeaderMutationsWins()) {
    for (auto it = std::rbegin(levels); it != std::rend(levels); ++it) {
      if (*it != nullptr) {
        (*it)->apply(headers);
      }
    }
  } else {
    for (const HeaderMutations* level : levels) {
      if (level != nullptr) {
        level->apply(headers);
      }
    }
  }
}

void RouteEntryImpl::finalizeRequestHeaders(Http::RequestHeaderMap& headers,
                                            bool insert_envoy_original_path) const {
  finalizeRequestHeadersWith(headers, insert_envoy_original_path, nullptr, nullptr);
}

void RouteEntryImpl::finalizeRequestHeadersWith(Http::RequestHeaderMap& headers,
                                                bool insert_envoy_original_path,
                                                const HeaderMutations* cluster_mutations,
                                                const std::string* cluster_host_rewrite) const {
  applyMutations(headers, cluster_mutations, /*request=*/true);

  if (cluster_host_rewrite != nullptr && !cluster_host_rewrite->empty()) {
    headers.setCopy(Http::Headers::Authority, *cluster_host_rewrite);
  } else {
    switch (host_rewrite_) {
      case HostRewrite::Literal:
        headers.setCopy(Http::Headers::Authority, host_rewrite_value_);
        break;
      case HostRewrite::Header: {
        // Copied first: setCopy may reallocate the storage the view points into.
        const std::string host(headers.getValue(host_rewrite_value_));
        if (!host.empty()) {
          headers.setCopy(Http::Headers::Authority, host);
        }
        break;
      }
      case HostRewrite::PathRegex: {
        std::string host(stripQuery(headers.path()));
        RE2::GlobalReplace(&host, *host_rewrite_regex_, host_rewrite_substitution_);
        headers.setCopy(Http::Headers::Authority, host);
        break;
      }
      case HostRewrite::None:
        break;
    }
  }

  std::optional<std::string> path = rewritePath(headers.path());
  if (path.has_value()) {
    if (insert_envoy_original_path) {
      headers.setCopy(Http::Headers::XEnvoyOriginalPath, std::string(headers.path()));
    }
    headers.setCopy(Http::Headers::Path, *path);
  }
}

void RouteEntryImpl::finalizeResponseHeaders(Http::ResponseHeaderMap& headers) const {
  finalizeResponseHeadersWith(headers, nullptr);
}

void RouteEntryImpl::finalizeResponseHeadersWith(Http::ResponseHeaderMap& headers,
                                                 const HeaderMutations* cluster_mutations) const {
  applyMutations(headers, cluster_mutations, /*request=*/false);
}

std::string RouteEntryImpl::redirectLocation(const Http::RequestHeaderMap& headers) const {
  if (action_ != Router::RouteAction::Redirect) {
    return {};
  }
  // Envoy's Http::Utility::newUri, step by step.
  const std::string_view scheme =
      scheme_redirect_.empty() ? requestScheme(headers) : std::string_view(scheme_redirect_);

  std::string_view host = host_redirect_;
  if (host.empty()) {
    host = headers.host();
    // Drop the request's port when a port is configured, or when the scheme changes and the
    // port was the old scheme's default (http://a:80 -> https://a, not https://a:80).
    const size_t port = portStart(host);
    if (port != std::string_view::npos) {
      const std::string_view request_port = host.substr(port);
      const std::string_view request_scheme = requestScheme(headers);
      bool remove_port = !port_redirect_.empty();
      if (scheme != request_scheme) {
        remove_port |= request_scheme == "https" && request_port == ":443";
        remove_port |= request_scheme == "http" && request_port == ":80";
      }
      if (remove_port) {
        host = host.substr(0, port);
      }
    }
  }

  std::string path;
  if (!path_redirect_.empty()) {
    path = path_redirect_;
    // A query in path_redirect replaces the request's; otherwise the request's query is kept.
    const std::string_view current = headers.path();
    const size_t q = current.find('?');
    if (!path_redirect_has_query_ && q != std::string_view::npos) {
      path.append(current.substr(q));
    }
  } else {
    std::optional<std::string> rewritten = rewritePath(headers.path());
    path = rewritten.has_value() ? std::move(*rewritten) : std::string(headers.path());
  }
  if (!startsWith(path, "/")) {
    path.insert(0, "/");
  }
  if (!path_redirect_has_query_ && strip_query_) {
    path.erase(std::min(path.find('?'), path.size()));
  }
  return absl::StrCat(av(scheme), "://", av(host), port_redirect_, path);
}

// --- SslRedirectEntry ---------------------------------------------------------------------

const std::string& SslRedirectEntry::routeName() const {
  return kEmptyString;
}
const VirtualHost& SslRedirectEntry::virtualHost() const {
  return vhost_;
}
const RetryPolicy& SslRedirectEntry::retryPolicy() const {
  return kNoRetryPolicy;
}
const std::string& SslRedirectEntry::responseBody() const {
  return kEmptyString;
}

std::string SslRedirectEntry::redirectLocation(const Http::RequestHeaderMap& headers) const {
  // Envoy's createSslRedirectPath: the host is kept as sent, port included.
  return absl::StrCat("https://", av(headers.host()), av(headers.path()));
}

// --- VirtualHostImpl ----------------------------------------------------------------------

VirtualHostImpl::VirtualHostImpl(const ConfigImpl& config,
                                 const envoy::config::route::v3::VirtualHost& vhost)
    : config_(config),
      name_(vhost.name()),
      ssl_redirect_(*this),
      request_mutations_(vhost.request_headers_to_add(), vhost.request_headers_to_remove()),
      response_mutations_(vhost.response_headers_to_add(), vhost.response_headers_to_remove()) {
  switch (vhost.require_tls()) {
    case envoy::config::route::v3::VirtualHost::EXTERNAL_ONLY:
      require_tls_ = TlsRequirement::ExternalOnly;
      break;
    case envoy::config::route::v3::VirtualHost::ALL:
      require_tls_ = TlsRequirement::All;
      break;
    default:
      require_tls_ = TlsRequirement::None;
      break;
  }
  if (vhost.has_retry_policy()) {
    retry_policy_ = parseRetryPolicy(vhost.retry_policy());
  }
}

absl::Status VirtualHostImpl::addRoutes(const envoy::config::route::v3::VirtualHost& vhost,
                                        const std::string& path, size_t max_body_size) {
  for (int i = 0; i < vhost.routes_size(); i++) {
    const auto& route = vhost.routes(i);
    std::string body;
    if (route.has_direct_response() && route.direct_response().has_body()) {
      absl::StatusOr<std::string> read = ::Proxy::Config::readDataSource(
          route.direct_response().body(),
          absl::StrCat(path, ".routes[", i, "].direct_response.body"), max_body_size);
      if (!read.ok()) {
        return read.status();
      }
      body = std::move(*read);
    }
    routes_.push_back(std::make_unique<RouteEntryImpl>(*this, route, std::move(body)));
  }
  return absl::OkStatus();
}

const RouteEntry* VirtualHostImpl::route(const Http::RequestHeaderMap& headers,
                                         uint64_t random_value) const {
  if (require_tls_ != TlsRequirement::None && requestScheme(headers) != "https") {
    const bool internal = headers.getValue("x-envoy-internal") == "true";
    if (require_tls_ == TlsRequirement::All || !internal) {
      return &ssl_redirect_;
    }
  }
  const std::string_view path = headers.path();
  for (const auto& route : routes_) {
    if (route->matches(headers, path, random_value)) {
      return route->pick(headers, random_value);
    }
  }
  return nullptr;
}

// --- ConfigImpl ---------------------------------------------------------------------------

ConfigImpl::ConfigImpl(const envoy::config::route::v3::RouteConfiguration& config)
    : name_(config.name()),
      ignore_port_(config.ignore_port_in_host_matching()),
      most_specific_wins_(config.most_specific_header_mutations_wins()),
      request_mutations_(config.request_headers_to_add(), config.request_headers_to_remove()),
      response_mutations_(config.response_headers_to_add(), config.response_headers_to_remove()) {}

absl::StatusOr<std::shared_ptr<const ConfigImpl>> ConfigImpl::create(
    const envoy::config::route::v3::RouteConfiguration& config) {
  absl::Status status = ::Proxy::Config::validateRouteConfiguration(config);
  if (!status.ok()) {
    return status;
  }
  std::shared_ptr<ConfigImpl> impl(new ConfigImpl(config));
  const size_t max_body = config.has_max_direct_response_body_size_bytes()
                              ? config.max_direct_response_body_size_bytes().value()
                              : ::Proxy::Config::kDefaultMaxDirectResponseBodySize;
  for (int i = 0; i < config.virtual_hosts_size(); i++) {
    const auto& vhost_config = config.virtual_hosts(i);
    auto vhost = std::make_unique<VirtualHostImpl>(*impl, vhost_config);
    status = vhost->addRoutes(vhost_config, absl::StrCat("virtual_hosts[", i, "]"), max_body);
    if (!status.ok()) {
      return status;
    }
    // Validation rejected duplicate domains, so every insertion below is new.
    for (const std::string& domain_config : vhost_config.domains()) {
      const std::string domain = lower(domain_config);
      if (domain == "*") {
        impl->default_ = vhost.get();
      } else if (domain.front() == '*') {
        impl->suffix_wildcards_[domain.size() - 1].emplace(domain.substr(1), vhost.get());
      } else if (domain.back() == '*') {
        impl->prefix_wildcards_[domain.size() - 1].emplace(domain.substr(0, domain.size() - 1),
                                                           vhost.get());
      } else {
        impl->exact_.emplace(domain, vhost.get());
      }
    }
    impl->virtual_hosts_.push_back(std::move(vhost));
  }
  return std::shared_ptr<const ConfigImpl>(std::move(impl));
}

const VirtualHostImpl* ConfigImpl::findWildcard(std::string_view host, const WildcardMap& map,
                                                bool suffix) const {
  // Longest wildcard first; the '*' must stand for at least one character.
  for (const auto& [length, domains] : map) {
    if (length >= host.size()) {
      continue;
    }
    const std::string_view key =
        suffix ? host.substr(host.size() - length) : host.substr(0, length);
    auto it = domains.find(av(key));
    if (it != domains.end()) {
      return it->second;
    }
  }
  return nullptr;
}

const VirtualHostImpl* ConfigImpl::virtualHostFor(std::string_view host) const {
  if (ignore_port_) {
    host = host.substr(0, portStart(host));
  }
  // Lower-case into a stack buffer: no allocation for any sane host name.
  char buffer[256];
  std::string large;
  std::string_view lowered;
  if (host.size() <= sizeof(buffer)) {
    for (size_t i = 0; i < host.size(); i++) {
      buffer[i] = lowerChar(host[i]);
    }
    lowered = std::string_view(buffer, host.size());
  } else {
    large = lower(host);
    lowered = large;
  }
  // Envoy's order: exact, longest suffix wildcard, longest prefix wildcard, then "*".
  auto it = exact_.find(av(lowered));
  if (it != exact_.end()) {
    return it->second;
  }
  if (const VirtualHostImpl* v = findWildcard(lowered, suffix_wildcards_, /*suffix=*/true)) {
    return v;
  }
  if (const VirtualHostImpl* v = findWildcard(lowered, prefix_wildcards_, /*suffix=*/false)) {
    return v;
  }
  return default_;
}

const RouteEntry* ConfigImpl::route(const Http::RequestHeaderMap& headers,
                                    uint64_t random_value) const {
  const VirtualHostImpl* vhost = virtualHostFor(headers.host());
  return vhost == nullptr ? nullptr : vhost->route(headers, random_value);
}

}  // namespace Proxy::Router
