#include "proxy/router/route_entry_impl.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "proxy/grpc/common.h"
#include "proxy/router/config_impl.h"
#include "proxy/router/config_utility.h"

namespace Proxy::Router {
namespace {

const std::string kEmptyString;
constexpr std::string_view kXEnvoyOriginalHost = "x-envoy-original-host";
const RetryPolicy kNoRetryPolicy{/*retry_on=*/0};

}  // namespace

// --- RouteEntryImpl::WeightedClusterEntry -------------------------------------------------

// One cluster of weighted_clusters: answers for the cluster-specific parts and defers to its
// route for everything else.
class RouteEntryImpl::WeightedClusterEntry : public RouteEntry {
 public:
  WeightedClusterEntry(const RouteEntryImpl& parent,
                       const envoy::config::route::v3::WeightedCluster::ClusterWeight& config)
      : parent_(parent),
        name_(config.name()),
        cluster_header_(StringUtil::toLower(config.cluster_header())),
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
  const StreamDurationPolicy& streamDurations() const override { return parent_.streamDurations(); }
  const RetryPolicy& retryPolicy() const override { return parent_.retryPolicy(); }
  bool autoHostRewrite() const override { return parent_.autoHostRewrite(); }
  const HashPolicyImpl* hashPolicy() const override { return parent_.hashPolicy(); }
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
  std::string requestUri(const Http::RequestHeaderMap& headers) const override {
    return parent_.requestUri(headers);
  }

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
          cluster_header_ = StringUtil::toLower(ra.cluster_header());
          break;
        case RouteAction::kWeightedClusters:
          for (const auto& cluster : ra.weighted_clusters().clusters()) {
            weighted_clusters_.push_back(std::make_unique<WeightedClusterEntry>(*this, cluster));
            total_weight_ += weighted_clusters_.back()->weight();
          }
          random_value_header_ = StringUtil::toLower(ra.weighted_clusters().header_name());
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
          host_rewrite_value_ = StringUtil::toLower(ra.host_rewrite_header());
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
      if (ra.has_max_stream_duration()) {
        const auto& msd = ra.max_stream_duration();
        stream_durations_.using_new_timeouts = true;
        if (msd.has_max_stream_duration()) {
          stream_durations_.max_stream_duration = toMillis(msd.max_stream_duration());
        }
        if (msd.has_grpc_timeout_header_max()) {
          stream_durations_.grpc_timeout_header_max = toMillis(msd.grpc_timeout_header_max());
        }
        if (msd.has_grpc_timeout_header_offset()) {
          stream_durations_.grpc_timeout_header_offset = toMillis(msd.grpc_timeout_header_offset());
        }
      }
      if (ra.has_max_grpc_timeout()) {
        stream_durations_.max_grpc_timeout = toMillis(ra.max_grpc_timeout());
      }
      if (ra.has_grpc_timeout_offset()) {
        stream_durations_.grpc_timeout_offset = toMillis(ra.grpc_timeout_offset());
      }
      if (ra.has_retry_policy()) {
        retry_policy_ = parseRetryPolicy(ra.retry_policy());
      }
      if (!ra.hash_policy().empty()) {
        hash_policy_ = std::make_unique<HashPolicyImpl>(ra.hash_policy());
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

RouteEntryImpl::~RouteEntryImpl() = default;

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
      return case_sensitive_
                 ? StringUtil::startsWith(path, path_value_)
                 : StringUtil::equalsIgnoreCase(path.substr(0, path_value_.size()), path_value_);
    case PathMatch::Path: {
      const std::string_view p = stripQuery(path);
      return case_sensitive_ ? p == path_value_ : StringUtil::equalsIgnoreCase(p, path_value_);
    }
    case PathMatch::Regex:
      return RE2::FullMatch(stripQuery(path), *path_regex_);
    case PathMatch::PathSeparatedPrefix: {
      const std::string_view p = stripQuery(path);
      const std::string_view head = p.substr(0, path_value_.size());
      if (!(case_sensitive_ ? head == path_value_
                            : StringUtil::equalsIgnoreCase(head, path_value_))) {
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
  if (grpc_only_ && !Grpc::isGrpcRequestHeaders(headers)) {
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
    if (absl::SimpleAtoi(asAbsl(headers.getValue(random_value_header_)), &from_header)) {
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
    // A route-level rewrite keeps the client's host in x-envoy-original-host (as Envoy does; a
    // weighted cluster's host_rewrite_literal above does not).
    std::optional<std::string> host;
    switch (host_rewrite_) {
      case HostRewrite::Literal:
        host = host_rewrite_value_;
        break;
      case HostRewrite::Header: {
        const std::string_view value = headers.getValue(host_rewrite_value_);
        if (!value.empty()) {
          host = std::string(value);
        }
        break;
      }
      case HostRewrite::PathRegex: {
        host = std::string(stripQuery(headers.path()));
        RE2::GlobalReplace(&*host, *host_rewrite_regex_, host_rewrite_substitution_);
        break;
      }
      case HostRewrite::None:
        break;
    }
    if (host.has_value()) {
      if (insert_envoy_original_path) {
        headers.setCopy(kXEnvoyOriginalHost, std::string(headers.host()));
      }
      headers.setCopy(Http::Headers::Authority, *host);
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
  return requestUri(headers);
}

std::string RouteEntryImpl::requestUri(const Http::RequestHeaderMap& headers) const {
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
  if (!StringUtil::startsWith(path, "/")) {
    path.insert(0, "/");
  }
  if (!path_redirect_has_query_ && strip_query_) {
    path.erase(std::min(path.find('?'), path.size()));
  }
  return absl::StrCat(asAbsl(scheme), "://", asAbsl(host), port_redirect_, path);
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
const StreamDurationPolicy& SslRedirectEntry::streamDurations() const {
  static const StreamDurationPolicy kNone;
  return kNone;
}
const std::string& SslRedirectEntry::responseBody() const {
  return kEmptyString;
}

std::string SslRedirectEntry::redirectLocation(const Http::RequestHeaderMap& headers) const {
  // Envoy's createSslRedirectPath: the host is kept as sent, port included.
  return absl::StrCat("https://", asAbsl(headers.host()), asAbsl(headers.path()));
}

}  // namespace Proxy::Router
