#pragma once

// The match conditions of a route, compiled at build time: string matchers, header matchers and
// query parameter matchers (Envoy's Matchers::StringMatcherImpl, HeaderUtility::HeaderData and
// ConfigUtility::QueryParameterMatcher). Immutable once built: safe from any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/type/matcher/v3/string.pb.h"

#include "proxy/http/header_map.h"

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

}  // namespace Proxy::Router
