#include "proxy/tls/certificate_info.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <map>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "proxy/common/json.h"

namespace Proxy::Tls {
namespace {

int64_t asn1TimeToUnix(const ASN1_TIME* time) {
  struct tm tm {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    return 0;
  }
  return static_cast<int64_t>(timegm(&tm));
}

struct Registry {
  std::mutex mutex;
  // Ordered by registration, so /certs lists contexts in the order they were built.
  std::map<uint64_t, std::pair<const void*, ContextCertificates>> contexts;
  uint64_t next = 0;
};

Registry& registry() {
  static Registry* const instance = new Registry();
  return *instance;
}

std::string formatTime(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

void appendDetails(std::string& out, const std::vector<CertificateDetails>& list, int64_t now,
                   const std::string& indent) {
  // Envoy's layout: the list's entries one space in, their fields two.
  const std::string entry = indent + " ";
  const std::string field = indent + "  ";
  out += "[";
  for (size_t i = 0; i < list.size(); i++) {
    const CertificateDetails& d = list[i];
    absl::StrAppend(&out, i == 0 ? "\n" : ",\n", entry, "{\n", field,
                    "\"path\": ", Json::quote(d.path), ",\n", field,
                    "\"serial_number\": ", Json::quote(d.serial_number), ",\n", field,
                    "\"subject_alt_names\": [");
    for (size_t s = 0; s < d.subject_alt_names.size(); s++) {
      absl::StrAppend(&out, s == 0 ? "\n" : ",\n", field, " {\n", field, "  ",
                      Json::quote(d.subject_alt_names[s].first), ": ",
                      Json::quote(d.subject_alt_names[s].second), "\n", field, " }");
    }
    const int64_t days = d.not_after > now ? (d.not_after - now) / 86400 : 0;
    absl::StrAppend(&out, d.subject_alt_names.empty() ? "]" : absl::StrCat("\n", field, "]"), ",\n",
                    field, "\"days_until_expiration\": ", Json::quote(std::to_string(days)), ",\n",
                    field, "\"valid_from\": ", Json::quote(formatTime(d.not_before)), ",\n", field,
                    "\"expiration_time\": ", Json::quote(formatTime(d.not_after)), "\n", entry,
                    "}");
  }
  absl::StrAppend(&out, list.empty() ? "]" : absl::StrCat("\n", indent, "]"));
}

}  // namespace

CertificateDetails describeCertificate(X509* cert, std::string path) {
  CertificateDetails d;
  d.path = std::move(path);
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      d.serial_number = absl::AsciiStrToLower(hex);
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  d.not_before = asn1TimeToUnix(X509_get0_notBefore(cert));
  d.not_after = asn1TimeToUnix(X509_get0_notAfter(cert));
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    auto ia5 = [](const ASN1_IA5STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    };
    if (name->type == GEN_DNS) {
      d.subject_alt_names.emplace_back("dns", ia5(name->d.dNSName));
    } else if (name->type == GEN_URI) {
      d.subject_alt_names.emplace_back("uri", ia5(name->d.uniformResourceIdentifier));
    } else if (name->type == GEN_EMAIL) {
      d.subject_alt_names.emplace_back("email", ia5(name->d.rfc822Name));
    } else if (name->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(name->d.iPAddress);
      char buf[INET6_ADDRSTRLEN] = {};
      if (len == 4 || len == 16) {
        inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(name->d.iPAddress), buf,
                  sizeof(buf));
        d.subject_alt_names.emplace_back("ip_address", buf);
      }
    }
  }
  GENERAL_NAMES_free(names);
  return d;
}

void registerContextCertificates(const void* owner, ContextCertificates certificates) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.contexts[r.next++] = {owner, std::move(certificates)};
}

void unregisterContextCertificates(const void* owner) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto it = r.contexts.begin(); it != r.contexts.end(); ++it) {
    if (it->second.first == owner) {
      r.contexts.erase(it);
      return;
    }
  }
}

std::string renderCertificatesJson(std::chrono::system_clock::time_point now) {
  const int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string out = "{\n \"certificates\": [";
  bool first = true;
  for (const auto& [id, entry] : r.contexts) {
    absl::StrAppend(&out, first ? "\n" : ",\n", "  {\n   \"ca_cert\": ");
    appendDetails(out, entry.second.ca_cert, now_s, "   ");
    absl::StrAppend(&out, ",\n   \"cert_chain\": ");
    appendDetails(out, entry.second.cert_chain, now_s, "   ");
    absl::StrAppend(&out, "\n  }");
    first = false;
  }
  absl::StrAppend(&out, first ? "]\n}\n" : "\n ]\n}\n");
  return out;
}

}  // namespace Proxy::Tls
