#pragma once

// A TLS context built from Envoy's DownstreamTlsContext / UpstreamTlsContext on the main thread
// (OpenSSL 3's SSL_CTX with the certificates, the trusted CAs, the protocol versions, ciphers
// and curves, ALPN), immutable afterwards and shared read-only by every worker's connections
// (SSL_new() on a configured SSL_CTX is thread-safe). Also the peer verification Envoy does on
// top of the chain check (subject alt names) and the "ssl.*" stats with Envoy's names.

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "proxy/stats/stats.h"
#include "proxy/tls/san_matcher.h"

namespace Proxy::Tls {

// "<scope>ssl.*": listener.<address>.ssl.* downstream, cluster.<name>.ssl.* upstream. The
// per-version and per-cipher counters are created when first used, as Envoy's are.
struct TlsStats {
  explicit TlsStats(Stats::Scope scope);
  Stats::Scope scope;  // "<prefix>ssl."
  Stats::Counter& handshake;
  Stats::Counter& connection_error;
  Stats::Counter& fail_verify_no_cert;
  Stats::Counter& fail_verify_san;
  Stats::Counter& fail_verify_error;
  Stats::Counter& no_certificate;
  Stats::Counter& session_reused;
};

class ContextImpl {
 public:
  using DownstreamTlsContext = envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
  using UpstreamTlsContext = envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;

  // Errors name the field below the context ("common_tls_context.tls_certificates[0]...").
  // The stats ("<scope>ssl.*") are bound by initStats() before the context is shared.
  static absl::StatusOr<std::shared_ptr<ContextImpl>> createServer(
      const DownstreamTlsContext& proto);
  static absl::StatusOr<std::shared_ptr<ContextImpl>> createClient(const UpstreamTlsContext& proto);
  ~ContextImpl();

  // Main thread, once, before any connection uses the context.
  void initStats(Stats::Scope scope) { stats_ = std::make_unique<TlsStats>(scope.child("ssl")); }
  bool hasStats() const { return stats_ != nullptr; }

  bool isServer() const { return is_server_; }
  // A new SSL for one connection (owned by the caller).
  SSL* newSsl() const;
  const std::string& sni() const { return sni_; }
  // Whether common_tls_context.alpn_protocols configured protocols.
  bool hasAlpn() const { return !alpn_wire_.empty(); }
  TlsStats& stats() const { return *stats_; }

  // The connection's handshake completed: count it as Envoy does (handshake, versions.*,
  // ciphers.*, no_certificate, session_reused).
  void logHandshake(SSL* ssl) const;

  // Why the peer's certificate was refused when no match_typed_subject_alt_names matcher
  // accepted it (null otherwise). Kept apart from the X509 error the verification left, which
  // is chosen for its alert (see verifyCallback), not for its words.
  static const char* sanFailureReason(const SSL* ssl);

 private:
  ContextImpl() = default;
  absl::Status init(const envoy::extensions::transport_sockets::tls::v3::CommonTlsContext& common,
                    bool is_server, bool require_client_certificate);
  static int verifyCallback(X509_STORE_CTX* store_ctx, void* arg);
  static int newSessionCallback(SSL* ssl, SSL_SESSION* session);
  static int alpnSelectCallback(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                                const unsigned char* in, unsigned int inlen, void* arg);

  bool is_server_ = false;
  SSL_CTX* ctx_ = nullptr;
  bool has_validation_ = false;
  bool require_client_certificate_ = false;
  std::vector<SanMatcher> san_matchers_;
  std::string alpn_wire_;  // length-prefixed protocol list (RFC 7301)
  std::string sni_;
  std::unique_ptr<TlsStats> stats_;
  // Upstream: the last session the server gave us, offered on the next connection (Envoy's
  // max_session_keys default of 1). Shared by every worker: a lock per new connection only.
  mutable std::mutex session_mutex_;
  mutable SSL_SESSION* session_ ABSL_GUARDED_BY(session_mutex_) = nullptr;
};

using ContextConstSharedPtr = std::shared_ptr<const ContextImpl>;

}  // namespace Proxy::Tls
