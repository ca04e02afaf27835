#include "proxy/tls/context_impl.h"

#include <arpa/inet.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "proxy/tls/certificate_info.h"

namespace Proxy::Tls {
namespace {

using envoy::config::core::v3::DataSource;
using envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext;
using envoy::extensions::transport_sockets::tls::v3::CommonTlsContext;
using envoy::extensions::transport_sockets::tls::v3::TlsParameters;

// Envoy's defaults (BoringSSL's "[a|b]" equal-preference groups written as OpenSSL lists).
constexpr const char* kDefaultServerCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
constexpr const char* kDefaultCurves = "X25519:P-256";

// The most recent OpenSSL error as text (and the queue cleared).
std::string sslErrors() {
  std::string out;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

absl::Status fieldError(const std::string& field, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

absl::StatusOr<std::string> readDataSource(const DataSource& source, const std::string& field) {
  switch (source.specifier_case()) {
    case DataSource::kFilename: {
      std::ifstream in(source.filename(), std::ios::binary);
      if (!in) {
        return fieldError(field, absl::StrCat("cannot read file '", source.filename(), "'"));
      }
      std::stringstream content;
      content << in.rdbuf();
      return content.str();
    }
    case DataSource::kInlineBytes:
      return source.inline_bytes();
    case DataSource::kInlineString:
      return source.inline_string();
    case DataSource::kEnvironmentVariable: {
      const char* value = std::getenv(source.environment_variable().c_str());
      if (value == nullptr) {
        return fieldError(field, absl::StrCat("environment variable '",
                                              source.environment_variable(), "' is not set"));
      }
      return std::string(value);
    }
    default:
      return fieldError(field,
                        "one of filename, inline_bytes, inline_string or "
                        "environment_variable is required");
  }
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

BioPtr memBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate of a PEM bundle, in order.
absl::StatusOr<std::vector<X509Ptr>> parseCertificates(const std::string& pem,
                                                       const std::string& field) {
  BioPtr bio = memBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the read that ended the loop
  if (certs.empty()) {
    return fieldError(field, "no PEM certificate found");
  }
  return certs;
}

int protocolVersion(TlsParameters::TlsProtocol protocol, int automatic) {
  switch (protocol) {
    case TlsParameters::TLSv1_0:
      return TLS1_VERSION;
    case TlsParameters::TLSv1_1:
      return TLS1_1_VERSION;
    case TlsParameters::TLSv1_2:
      return TLS1_2_VERSION;
    case TlsParameters::TLSv1_3:
      return TLS1_3_VERSION;
    default:
      return automatic;
  }
}

absl::Status applyTlsParams(SSL_CTX* ctx, const TlsParameters& params, bool is_server) {
  const std::string field = "common_tls_context.tls_params";
  const int min_version = protocolVersion(params.tls_minimum_protocol_version(), TLS1_2_VERSION);
  const int max_version = protocolVersion(params.tls_maximum_protocol_version(), TLS1_3_VERSION);
  if (min_version > max_version) {
    return fieldError(field + ".tls_minimum_protocol_version",
                      "must not be above tls_maximum_protocol_version");
  }
  if (min_version < TLS1_2_VERSION) {
    // TLS 1.0/1.1 need OpenSSL's security level 0, which Debian's OpenSSL 3 refuses by policy.
    return fieldError(field + ".tls_minimum_protocol_version", "TLS 1.0 and 1.1 are not supported");
  }
  SSL_CTX_set_min_proto_version(ctx, min_version);
  SSL_CTX_set_max_proto_version(ctx, max_version);

  // cipher_suites: TLS 1.2 names (OpenSSL's, which are BoringSSL's), "[a|b]" groups flattened;
  // TLS 1.3 names (TLS_AES_...) go to the TLS 1.3 list.
  std::vector<std::string> tls12;
  std::vector<std::string> tls13;
  for (int i = 0; i < params.cipher_suites_size(); i++) {
    std::string suite = absl::StrReplaceAll(params.cipher_suites(i), {{"[", ""}, {"]", ""}});
    for (absl::string_view name : absl::StrSplit(suite, '|', absl::SkipEmpty())) {
      const std::string one(name);
      const bool v13 = absl::StartsWith(one, "TLS_");
      SSL_CTX* probe = SSL_CTX_new(TLS_method());
      const int ok = v13 ? SSL_CTX_set_ciphersuites(probe, one.c_str())
                         : SSL_CTX_set_cipher_list(probe, one.c_str());
      SSL_CTX_free(probe);
      ERR_clear_error();
      if (ok != 1) {
        return fieldError(absl::StrCat(field, ".cipher_suites[", i, "]"),
                          absl::StrCat("unknown cipher suite '", one, "'"));
      }
      (v13 ? tls13 : tls12).push_back(one);
    }
  }
  const std::string list12 =
      tls12.empty() ? std::string(kDefaultServerCiphers) : absl::StrJoin(tls12, ":");
  if (SSL_CTX_set_cipher_list(ctx, list12.c_str()) != 1) {
    return fieldError(field + ".cipher_suites", sslErrors());
  }
  if (!tls13.empty() && SSL_CTX_set_ciphersuites(ctx, absl::StrJoin(tls13, ":").c_str()) != 1) {
    return fieldError(field + ".cipher_suites", sslErrors());
  }
  std::vector<std::string> curves(params.ecdh_curves().begin(), params.ecdh_curves().end());
  for (size_t i = 0; i < curves.size(); i++) {
    SSL_CTX* probe = SSL_CTX_new(TLS_method());
    const int ok = SSL_CTX_set1_groups_list(probe, curves[i].c_str());
    SSL_CTX_free(probe);
    ERR_clear_error();
    if (ok != 1) {
      return fieldError(absl::StrCat(field, ".ecdh_curves[", i, "]"),
                        absl::StrCat("unknown curve '", curves[i], "'"));
    }
  }
  const std::string groups = curves.empty() ? kDefaultCurves : absl::StrJoin(curves, ":");
  if (SSL_CTX_set1_groups_list(ctx, groups.c_str()) != 1) {
    return fieldError(field + ".ecdh_curves", sslErrors());
  }
  (void)is_server;
  return absl::OkStatus();
}

}  // namespace

TlsStats::TlsStats(Stats::Scope s)
    : scope(s),
      handshake(s.counter("handshake")),
      connection_error(s.counter("connection_error")),
      fail_verify_no_cert(s.counter("fail_verify_no_cert")),
      fail_verify_san(s.counter("fail_verify_san")),
      fail_verify_error(s.counter("fail_verify_error")),
      no_certificate(s.counter("no_certificate")),
      session_reused(s.counter("session_reused")) {}

ContextImpl::~ContextImpl() {
  unregisterContextCertificates(this);
  SSL_SESSION_free(session_);
  SSL_CTX_free(ctx_);
}

absl::StatusOr<std::shared_ptr<ContextImpl>> ContextImpl::createServer(
    const DownstreamTlsContext& proto) {
  std::shared_ptr<ContextImpl> context(new ContextImpl());
  if (proto.common_tls_context().tls_certificates_size() == 0) {
    return fieldError("common_tls_context.tls_certificates",
                      "a server TLS context needs at least one certificate");
  }
  absl::Status status = context->init(proto.common_tls_context(), /*is_server=*/true,
                                      proto.require_client_certificate().value());
  if (!status.ok()) {
    return status;
  }
  return context;
}

absl::StatusOr<std::shared_ptr<ContextImpl>> ContextImpl::createClient(
    const UpstreamTlsContext& proto) {
  std::shared_ptr<ContextImpl> context(new ContextImpl());
  context->sni_ = proto.sni();
  absl::Status status = context->init(proto.common_tls_context(), /*is_server=*/false,
                                      /*require_client_certificate=*/false);
  if (!status.ok()) {
    return status;
  }
  return context;
}

absl::Status ContextImpl::init(const CommonTlsContext& common, bool is_server,
                               bool require_client_certificate) {
  is_server_ = is_server;
  require_client_certificate_ = require_client_certificate;
  ContextCertificates listed;  // for /certs, registered once the context is complete
  auto where = [](const DataSource& source) {
    return source.specifier_case() == DataSource::kFilename ? source.filename()
                                                            : std::string("<inline>");
  };
  ctx_ = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
  if (ctx_ == nullptr) {
    return absl::InternalError(absl::StrCat("SSL_CTX_new: ", sslErrors()));
  }
  // Partial writes and a moving write buffer: the connection hands SSL_write the linearized
  // front of a Buffer::Instance, which may sit in another slice between a retry and the next. The
  // record buffers stay with the connection (SSL_MODE_RELEASE_BUFFERS would free and allocate them
  // around every record of a keep-alive connection: ~34 KiB per idle TLS connection is the price),
  // and read-ahead takes a record's header and body (and what follows) in one read() instead of
  // two. Renegotiation is refused (a client-initiated one is an attack surface and Envoy
  // refuses it too); an EOF without close_notify reads as an ordinary EOF.
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx_, 1);
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (absl::Status s = applyTlsParams(ctx_, common.tls_params(), is_server); !s.ok()) {
    return s;
  }

  for (int i = 0; i < common.tls_certificates_size(); i++) {
    const auto& cert = common.tls_certificates(i);
    const std::string field = absl::StrCat("common_tls_context.tls_certificates[", i, "]");
    if (!cert.has_certificate_chain()) {
      return fieldError(field + ".certificate_chain", "is required");
    }
    if (!cert.has_private_key()) {
      return fieldError(field + ".private_key", "is required");
    }
    auto chain_pem = readDataSource(cert.certificate_chain(), field + ".certificate_chain");
    if (!chain_pem.ok()) {
      return chain_pem.status();
    }
    auto certs = parseCertificates(*chain_pem, field + ".certificate_chain");
    if (!certs.ok()) {
      return certs.status();
    }
    listed.cert_chain.push_back(
        describeCertificate((*certs)[0].get(), where(cert.certificate_chain())));
    if (SSL_CTX_use_certificate(ctx_, (*certs)[0].get()) != 1) {
      return fieldError(field + ".certificate_chain", sslErrors());
    }
    SSL_CTX_clear_chain_certs(ctx_);
    for (size_t c = 1; c < certs->size(); c++) {
      if (SSL_CTX_add1_chain_cert(ctx_, (*certs)[c].get()) != 1) {
        return fieldError(field + ".certificate_chain", sslErrors());
      }
    }
    auto key_pem = readDataSource(cert.private_key(), field + ".private_key");
    if (!key_pem.ok()) {
      return key_pem.status();
    }
    BioPtr bio = memBio(*key_pem);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) {
      ERR_clear_error();
      return fieldError(field + ".private_key", "no PEM private key found");
    }
    const int used = SSL_CTX_use_PrivateKey(ctx_, key);
    EVP_PKEY_free(key);
    if (used != 1 || SSL_CTX_check_private_key(ctx_) != 1) {
      ERR_clear_error();
      return fieldError(field + ".private_key", "does not match the certificate chain");
    }
  }

  if (common.has_validation_context()) {
    const CertificateValidationContext& vc = common.validation_context();
    const std::string field = "common_tls_context.validation_context";
    if (!vc.has_trusted_ca()) {
      return fieldError(field + ".trusted_ca", "is required");
    }
    auto ca_pem = readDataSource(vc.trusted_ca(), field + ".trusted_ca");
    if (!ca_pem.ok()) {
      return ca_pem.status();
    }
    auto cas = parseCertificates(*ca_pem, field + ".trusted_ca");
    if (!cas.ok()) {
      return cas.status();
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    for (const X509Ptr& ca : *cas) {
      X509_STORE_add_cert(store, ca.get());
      listed.ca_cert.push_back(describeCertificate(ca.get(), where(vc.trusted_ca())));
    }
    if (vc.has_crl()) {
      auto crl_pem = readDataSource(vc.crl(), field + ".crl");
      if (!crl_pem.ok()) {
        return crl_pem.status();
      }
      BioPtr crl_bio = memBio(*crl_pem);
      int crls = 0;
      while (X509_CRL* crl = PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr)) {
        X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        crls++;
      }
      ERR_clear_error();
      if (crls == 0) {
        return fieldError(field + ".crl", "no PEM CRL found");
      }
      // As Envoy: every certificate of the chain is checked unless only_verify_leaf_cert_crl.
      X509_STORE_set_flags(store, vc.only_verify_leaf_cert_crl()
                                      ? X509_V_FLAG_CRL_CHECK
                                      : X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    for (int i = 0; i < vc.match_typed_subject_alt_names_size(); i++) {
      auto m = SanMatcher::create(vc.match_typed_subject_alt_names(i),
                                  absl::StrCat(field, ".match_typed_subject_alt_names[", i, "]"));
      if (!m.ok()) {
        return m.status();
      }
      san_matchers_.push_back(*std::move(m));
    }
    has_validation_ = true;
  } else if (require_client_certificate) {
    return fieldError("common_tls_context.validation_context",
                      "require_client_certificate needs a validation_context with trusted_ca");
  }

  if (is_server) {
    // A client certificate is asked for only when there is something to verify it against.
    int mode = SSL_VERIFY_NONE;
    if (has_validation_) {
      mode = SSL_VERIFY_PEER | (require_client_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    }
    SSL_CTX_set_verify(ctx_, mode, nullptr);
    // Sessions resume only within the same context (OpenSSL refuses to resume a session of a
    // verifying server without one).
    static const unsigned char kSessionContext[] = "xds-proxy";
    SSL_CTX_set_session_id_context(ctx_, kSessionContext, sizeof(kSessionContext) - 1);
  } else {
    // Without a validation context an upstream's certificate is not verified (Envoy's default).
    SSL_CTX_set_verify(ctx_, has_validation_ ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_app_data(ctx_, this);
    SSL_CTX_sess_set_new_cb(ctx_, &ContextImpl::newSessionCallback);
  }
  SSL_CTX_set_cert_verify_callback(ctx_, &ContextImpl::verifyCallback, this);

  for (int i = 0; i < common.alpn_protocols_size(); i++) {
    const std::string& protocol = common.alpn_protocols(i);
    if (protocol.empty() || protocol.size() > 255) {
      return fieldError(absl::StrCat("common_tls_context.alpn_protocols[", i, "]"),
                        "must be 1 to 255 bytes long");
    }
    alpn_wire_.push_back(static_cast<char>(protocol.size()));
    alpn_wire_ += protocol;
  }
  if (!alpn_wire_.empty()) {
    if (is_server) {
      SSL_CTX_set_alpn_select_cb(ctx_, &ContextImpl::alpnSelectCallback, this);
    } else if (SSL_CTX_set_alpn_protos(ctx_,
                                       reinterpret_cast<const unsigned char*>(alpn_wire_.data()),
                                       static_cast<unsigned int>(alpn_wire_.size())) != 0) {
      return fieldError("common_tls_context.alpn_protocols", sslErrors());
    }
  }
  registerContextCertificates(this, std::move(listed));
  return absl::OkStatus();
}

SSL* ContextImpl::newSsl() const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl != nullptr && !is_server_) {
    std::lock_guard<std::mutex> lock(session_mutex_);
    if (session_ != nullptr) {
      SSL_set_session(ssl, session_);  // resumption; a full handshake if the server declines
    }
  }
  return ssl;
}

int ContextImpl::newSessionCallback(SSL* ssl, SSL_SESSION* session) {
  const auto* self = static_cast<const ContextImpl*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  std::lock_guard<std::mutex> lock(self->session_mutex_);
  SSL_SESSION_free(self->session_);
  self->session_ = session;
  return 1;  // we own the reference now
}

namespace {

// The SSL ex_data slot where verifyCallback notes a SAN mismatch (sanFailureReason).
int sanFailureIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

constexpr char kSanFailure[] = "no subject alt name matches match_typed_subject_alt_names";

}  // namespace

const char* ContextImpl::sanFailureReason(const SSL* ssl) {
  return static_cast<const char*>(SSL_get_ex_data(ssl, sanFailureIndex()));
}

int ContextImpl::verifyCallback(X509_STORE_CTX* store_ctx, void* arg) {
  const ContextImpl& self = *static_cast<const ContextImpl*>(arg);
  if (!self.has_validation_) {
    return 1;
  }
  if (X509_verify_cert(store_ctx) <= 0) {
    self.stats_->fail_verify_error.inc();
    return 0;
  }
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  if (!self.san_matchers_.empty() && !anySanMatches(leaf, self.san_matchers_)) {
    self.stats_->fail_verify_san.inc();
    // The alert is OpenSSL's mapping of the X509 error (ssl_x509err2alert, ssl/statem/
    // statem_lib.c): X509_V_ERR_APPLICATION_VERIFICATION would send handshake_failure, where
    // Envoy (BoringSSL) sends certificate_unknown, OpenSSL's alert for an error its table does
    // not name. PERMITTED_VIOLATION ("a name is not permitted") is such an error; the reason
    // we log is kept apart, on the SSL.
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_PERMITTED_VIOLATION);
    SSL* ssl = static_cast<SSL*>(
        X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (ssl != nullptr) {
      SSL_set_ex_data(ssl, sanFailureIndex(), const_cast<char*>(kSanFailure));
    }
    return 0;
  }
  return 1;
}

int ContextImpl::alpnSelectCallback(SSL*, const unsigned char** out, unsigned char* outlen,
                                    const unsigned char* in, unsigned int inlen, void* arg) {
  const ContextImpl& self = *static_cast<const ContextImpl*>(arg);
  // The server's preference order; no overlap: continue without ALPN (as Envoy does).
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(
          &selected, outlen, reinterpret_cast<const unsigned char*>(self.alpn_wire_.data()),
          static_cast<unsigned int>(self.alpn_wire_.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

void ContextImpl::logHandshake(SSL* ssl) const {
  stats_->handshake.inc();
  if (SSL_session_reused(ssl)) {
    stats_->session_reused.inc();
  }
  stats_->scope.counter(absl::StrCat("versions.", SSL_get_version(ssl))).inc();
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl); cipher != nullptr) {
    stats_->scope.counter(absl::StrCat("ciphers.", SSL_CIPHER_get_name(cipher))).inc();
  }
  // Curves by BoringSSL's names, as Envoy counts them: "X25519", "P-256".
  if (const int group = SSL_get_negotiated_group(ssl); group != NID_undef) {
    const char* name = EC_curve_nid2nist(group);
    if (name == nullptr) {
      name = OBJ_nid2sn(group);
    }
    if (name != nullptr) {
      stats_->scope.counter(absl::StrCat("curves.", name)).inc();
    }
  }
  X509* peer = SSL_get1_peer_certificate(ssl);
  if (peer == nullptr) {
    stats_->no_certificate.inc();
  }
  X509_free(peer);
}

}  // namespace Proxy::Tls
