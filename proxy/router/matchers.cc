#include "proxy/router/matchers.h"

#include "absl/strings/numbers.h"

#include "proxy/router/config_utility.h"

namespace Proxy::Router {

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
    value_ = StringUtil::toLower(value_);
  }
}

bool StringMatcher::match(std::string_view value) const {
  switch (type_) {
    case Type::Exact:
      return ignore_case_ ? StringUtil::equalsIgnoreCase(value, value_) : value == value_;
    case Type::Prefix:
      return ignore_case_ ? StringUtil::equalsIgnoreCase(value.substr(0, value_.size()), value_)
                          : StringUtil::startsWith(value, value_);
    case Type::Suffix:
      return ignore_case_ ? value.size() >= value_.size() &&
                                StringUtil::equalsIgnoreCase(
                                    value.substr(value.size() - value_.size()), value_)
                          : StringUtil::endsWith(value, value_);
    case Type::Contains:
      return ignore_case_ ? StringUtil::containsIgnoreCase(value, value_)
                          : value.find(value_) != std::string_view::npos;
    case Type::Regex:
      return RE2::FullMatch(value, *regex_);
  }
  return false;
}

// --- HeaderMatcher ------------------------------------------------------------------------

HeaderMatcher::HeaderMatcher(const envoy::config::route::v3::HeaderMatcher& config)
    : name_(StringUtil::toLower(config.name())),
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
  // A header sent more than once matches when any one of its values does (Envoy 1.40 matches
  // each value on its own; "a" and "b" sent apart do not match "a,b").
  bool present = false;
  bool matched = false;
  for (const Http::HeaderEntry& entry : headers) {
    if (entry.key != name_) {
      continue;
    }
    present = true;
    if (matchValue(entry.value)) {
      matched = true;
      break;
    }
  }
  if (!present && !treat_missing_as_empty_) {
    // Only a presence check can succeed on a missing header: present_match: false, or an
    // inverted present_match: true.
    return type_ == Type::Present && (invert_ ? present_ : !present_);
  }
  if (!present) {
    matched = matchValue(std::string_view());
  }
  return matched != invert_;
}

bool HeaderMatcher::matchValue(std::string_view value) const {
  switch (type_) {
    case Type::Value:
      return value_.empty() || value == value_;
    case Type::Regex:
      return RE2::FullMatch(value, *regex_);
    case Type::Range: {
      int64_t number = 0;
      return absl::SimpleAtoi(asAbsl(value), &number) && number >= range_start_ &&
             number < range_end_;
    }
    case Type::Present:
      return present_;
    case Type::Prefix:
      return StringUtil::startsWith(value, value_);
    case Type::Suffix:
      return StringUtil::endsWith(value, value_);
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

}  // namespace Proxy::Router
