#pragma once

// The TLS context of one filter chain or one cluster (Envoy's Server/ClientSslSocketFactory):
// built on the main thread from a Downstream/UpstreamTlsContext whose certificates and CAs may
// be secrets named by SDS references (secret_manager.h), and rebuilt there when one of those
// secrets changes. A worker takes the current context for each new connection (current(): a
// reader lock, as Envoy's factories take); a connection keeps the context it started with, so a
// rotated secret applies to new connections at once and leaves existing ones alone.

#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "proxy/common/ready_signal.h"
#include "proxy/stats/stats.h"
#include "proxy/tls/context_impl.h"
#include "proxy/tls/secret_manager.h"

namespace Proxy::Tls {

class ContextProvider {
 public:
  // Main thread. Static references are resolved now; a dynamic one (sds_config) subscribes to
  // its secret and the context is built once every secret it names is there. Errors name the
  // field below the context ("common_tls_context.tls_certificate_sds_secret_configs[0]...").
  static absl::StatusOr<std::shared_ptr<ContextProvider>> createServer(
      const ContextImpl::DownstreamTlsContext& proto, SecretManager* secrets);
  static absl::StatusOr<std::shared_ptr<ContextProvider>> createClient(
      const ContextImpl::UpstreamTlsContext& proto, SecretManager* secrets);

  // Main thread, once, before any connection uses it: "<scope>ssl.*" for the contexts and
  // "<scope>server_ssl_socket_factory.*" (client_ for clusters) for Envoy's SDS counters.
  void initStats(const Stats::Scope& scope);
  bool hasStats() const { return ssl_scope_.has_value(); }

  // Any thread: the context for a new connection; null while a secret it names has not
  // arrived (counted: downstream_/upstream_context_secrets_not_ready).
  ContextConstSharedPtr current() const;
  bool isServer() const { return is_server_; }

  // Main thread: every secret is there, or was given up on (initial_fetch_timeout).
  bool ready() const { return ready_.ready(); }
  // Main thread: `cb` runs once ready (at once when it is); dropping the handle cancels it.
  std::shared_ptr<void> addReadyCallback(std::function<void()> cb) {
    return ready_.addCallback(std::move(cb));
  }

  // Main thread, from DynamicSecret::update(): the context as it would be with `secret` for
  // `name`; null (OK) while another secret it names is still missing. Nothing changes yet.
  absl::StatusOr<std::shared_ptr<ContextImpl>> prepare(const std::string& name,
                                                       const Secret& secret) const;
  // Main thread: serve `next` (from prepare(), may be null) to new connections from now on.
  void commit(std::shared_ptr<ContextImpl> next);
  // Main thread: a secret did not come within its initial fetch timeout: stop waiting
  // (connections get no context and close, as Envoy's do, until it comes).
  void giveUp() { ready_.markReady(); }

 private:
  ContextProvider() = default;
  static absl::StatusOr<std::shared_ptr<ContextProvider>> create(
      const envoy::extensions::transport_sockets::tls::v3::CommonTlsContext& common,
      std::function<absl::StatusOr<std::shared_ptr<ContextImpl>>(const CommonTlsContext&)> build,
      bool is_server, SecretManager* secrets);
  // The context from the current secrets, `name` replaced by `secret` when set.
  absl::StatusOr<std::shared_ptr<ContextImpl>> build(const std::string* name,
                                                     const Secret* secret) const;

  bool is_server_ = false;
  CommonTlsContext common_;  // with its SDS references
  std::function<absl::StatusOr<std::shared_ptr<ContextImpl>>(const CommonTlsContext&)> build_;
  SecretManager* secrets_ = nullptr;
  std::vector<std::shared_ptr<DynamicSecret>> dynamic_;
  std::optional<Stats::Scope> ssl_scope_;
  Stats::Counter* update_by_sds_ = nullptr;  // ssl_context_update_by_sds
  Stats::Counter* not_ready_ = nullptr;      // *_context_secrets_not_ready
  ReadySignal ready_;

  // std::shared_mutex rather than absl::Mutex: Debian's libabsl is not built with TSAN
  // annotations, so TSAN cannot see absl::Mutex ordering and reports false races.
  mutable std::shared_mutex mutex_;
  std::shared_ptr<const ContextImpl> current_ ABSL_GUARDED_BY(mutex_);
};

using ContextProviderSharedPtr = std::shared_ptr<ContextProvider>;

}  // namespace Proxy::Tls
