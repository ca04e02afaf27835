#pragma once

// Envoy's match_typed_subject_alt_names: the peer verification on top of the chain check, used
// by the TLS contexts of listeners and clusters (context_impl.h) and by the xDS client's TLS
// channel to an envoy_grpc management server (xds_client/grpc_transport_impl.cc).

#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"
#include "re2/re2.h"

namespace Proxy::Tls {

class SanMatcher {
 public:
  // Errors name the field below `field` ("...san_type", "...matcher.safe_regex.regex").
  static absl::StatusOr<SanMatcher> create(
      const envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher& proto,
      const std::string& field);

  // Whether a subject alt name of OpenSSL type `general_name_type` (GEN_DNS, GEN_URI,
  // GEN_EMAIL, GEN_IPADD with the address as text) matches. An exact DNS matcher also accepts
  // a certificate's "*.example.com" for one label, as Envoy.
  bool matches(int general_name_type, const std::string& san) const;

 private:
  enum class Type { Exact, Prefix, Suffix, Contains, Regex };
  int general_name_type_ = 0;
  Type type_ = Type::Exact;
  bool ignore_case_ = false;
  std::string value_;  // lower-cased with ignore_case_
  std::shared_ptr<const RE2> regex_;
};

// Whether one of `cert`'s subject alt names matches one of `matchers` (one is enough).
bool anySanMatches(X509* cert, const std::vector<SanMatcher>& matchers);

}  // namespace Proxy::Tls
