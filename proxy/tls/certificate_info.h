#pragma once

// What /certs shows (Envoy's admin endpoint): every TLS context alive in the process, with its
// trusted CA certificates and its own certificate chain: path, serial number, subject alt
// names, validity. Contexts register themselves when built and leave when destroyed; the
// registry is read on the main thread (admin) and written wherever contexts live and die.

#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace Proxy::Tls {

struct CertificateDetails {
  std::string path;  // the file, or "<inline>"
  std::string serial_number;
  // ("dns" | "uri" | "email" | "ip_address", value), as Envoy's JSON names them.
  std::vector<std::pair<std::string, std::string>> subject_alt_names;
  int64_t not_before = 0;  // seconds since the epoch
  int64_t not_after = 0;
};

CertificateDetails describeCertificate(X509* cert, std::string path);

// The certificates of one context, as the context registers them.
struct ContextCertificates {
  std::vector<CertificateDetails> ca_cert;
  std::vector<CertificateDetails> cert_chain;
};

void registerContextCertificates(const void* owner, ContextCertificates certificates);
void unregisterContextCertificates(const void* owner);

// Envoy's /certs JSON at `now`.
std::string renderCertificatesJson(std::chrono::system_clock::time_point now);

}  // namespace Proxy::Tls
