#include "proxy/router/matchers.h"

#include "absl/strings/numbers.h"

#include "proxy/router/config_utility.h"

namespace Proxy::Router {
namespace {

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

}  // namespace Proxy::Router
