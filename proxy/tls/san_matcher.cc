#include "proxy/tls/san_matcher.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace Proxy::Tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher;

absl::Status fieldError(const std::string& field, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

// Envoy's DNS SAN rule: a certificate's "*.example.com" matches one label in place of '*'
// (exact matchers only).
bool dnsWildcardMatch(const std::string& san, const std::string& name) {
  if (san.size() < 3 || san[0] != '*' || san[1] != '.') {
    return false;
  }
  const size_t dot = name.find('.');
  return dot != std::string::npos && dot > 0 &&
         absl::EqualsIgnoreCase(absl::string_view(name).substr(dot),
                                absl::string_view(san).substr(1));
}

}  // namespace

absl::StatusOr<SanMatcher> SanMatcher::create(const SubjectAltNameMatcher& proto,
                                              const std::string& field) {
  SanMatcher m;
  switch (proto.san_type()) {
    case SubjectAltNameMatcher::DNS:
      m.general_name_type_ = GEN_DNS;
      break;
    case SubjectAltNameMatcher::URI:
      m.general_name_type_ = GEN_URI;
      break;
    case SubjectAltNameMatcher::EMAIL:
      m.general_name_type_ = GEN_EMAIL;
      break;
    case SubjectAltNameMatcher::IP_ADDRESS:
      m.general_name_type_ = GEN_IPADD;
      break;
    default:
      return fieldError(field + ".san_type", "one of DNS, URI, EMAIL or IP_ADDRESS is required");
  }
  const auto& sm = proto.matcher();
  m.ignore_case_ = sm.ignore_case();
  switch (sm.match_pattern_case()) {
    case envoy::type::matcher::v3::StringMatcher::kExact:
      m.type_ = Type::Exact;
      m.value_ = sm.exact();
      break;
    case envoy::type::matcher::v3::StringMatcher::kPrefix:
      m.type_ = Type::Prefix;
      m.value_ = sm.prefix();
      break;
    case envoy::type::matcher::v3::StringMatcher::kSuffix:
      m.type_ = Type::Suffix;
      m.value_ = sm.suffix();
      break;
    case envoy::type::matcher::v3::StringMatcher::kContains:
      m.type_ = Type::Contains;
      m.value_ = sm.contains();
      break;
    case envoy::type::matcher::v3::StringMatcher::kSafeRegex: {
      m.type_ = Type::Regex;
      auto regex = std::make_shared<const RE2>(sm.safe_regex().regex());
      if (!regex->ok()) {
        return fieldError(field + ".matcher.safe_regex.regex", regex->error());
      }
      m.regex_ = std::move(regex);
      break;
    }
    default:
      return fieldError(field + ".matcher", "a match pattern is required");
  }
  if (m.ignore_case_) {
    m.value_ = absl::AsciiStrToLower(m.value_);
  }
  return m;
}

bool SanMatcher::matches(int general_name_type, const std::string& san) const {
  if (general_name_type != general_name_type_) {
    return false;
  }
  const std::string subject = ignore_case_ ? absl::AsciiStrToLower(san) : san;
  switch (type_) {
    case Type::Exact:
      return subject == value_ ||
             (general_name_type_ == GEN_DNS && dnsWildcardMatch(subject, value_));
    case Type::Prefix:
      return absl::StartsWith(subject, value_);
    case Type::Suffix:
      return absl::EndsWith(subject, value_);
    case Type::Contains:
      return absl::StrContains(subject, value_);
    case Type::Regex:
      return RE2::FullMatch(san, *regex_);
  }
  return false;
}

bool anySanMatches(X509* cert, const std::vector<SanMatcher>& matchers) {
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) {
    return false;
  }
  bool matched = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && !matched; i++) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    std::string value;
    if (name->type == GEN_DNS || name->type == GEN_URI || name->type == GEN_EMAIL) {
      const ASN1_IA5STRING* str = name->d.ia5;
      value.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(str)),
                   static_cast<size_t>(ASN1_STRING_length(str)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      const int len = ASN1_STRING_length(ip);
      if (len == 4 || len == 16) {
        inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), buf, sizeof(buf));
      }
      value = buf;
    } else {
      continue;
    }
    for (const SanMatcher& m : matchers) {
      if (m.matches(name->type, value)) {
        matched = true;
        break;
      }
    }
  }
  GENERAL_NAMES_free(names);
  return matched;
}

}  // namespace Proxy::Tls
