#pragma once

// Secrets (Envoy's SDS resources: envoy.extensions.transport_sockets.tls.v3.Secret) and the
// references to them from TLS contexts (tls_certificate_sds_secret_configs,
// validation_context_sds_secret_config). The SecretManager holds the bootstrap's
// static_resources.secrets (a reference without sds_config names one of them) and one
// DynamicSecret per name that references with sds_config ask for: server/xds_config.cc fetches
// those names over SDS and hands each version to its DynamicSecret, which rebuilds the TLS
// contexts that use it (context_provider.h). Main thread only.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"

namespace Proxy::Tls {

using Secret = envoy::extensions::transport_sockets::tls::v3::Secret;
using SdsSecretConfig = envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig;
using CommonTlsContext = envoy::extensions::transport_sockets::tls::v3::CommonTlsContext;

// Checks a secret on its own, as a TLS context would use it: a tls_certificate's chain and key
// parse and match, a validation_context's CAs (and CRL, SAN matchers) load. Errors name the
// field below the secret ("tls_certificate.private_key: does not match the certificate chain").
absl::Status validateSecret(const Secret& secret);

class ContextProvider;

// One secret fetched over SDS, shared by every context that names it. Held by those contexts
// (possibly last released on a worker: its destructor touches nothing else).
class DynamicSecret {
 public:
  DynamicSecret(std::string name, envoy::config::core::v3::ConfigSource source)
      : name_(std::move(name)), source_(std::move(source)) {}
  const std::string& name() const { return name_; }
  // The sds_config of the first reference (its initial_fetch_timeout applies).
  const envoy::config::core::v3::ConfigSource& source() const { return source_; }
  // The current version; null until one was accepted.
  const Secret* secret() const { return has_secret_ ? &secret_ : nullptr; }
  bool givenUp() const { return given_up_; }

  // A version from the management server: checked (validateSecret), every live context that
  // uses it rebuilt with it, then all of them switched. On error nothing changes (the previous
  // version keeps serving) and the error is the reason of the NACK. An unchanged version is a
  // no-op, unless `reload_files` (the files it names changed: secret_files.h).
  absl::Status update(const Secret& secret, bool reload_files = false);
  // The initial fetch timeout passed without a version: the contexts waiting stop waiting.
  void giveUp();
  // `provider` is rebuilt on every update while it lives.
  void subscribe(const std::shared_ptr<ContextProvider>& provider);

 private:
  const std::string name_;
  const envoy::config::core::v3::ConfigSource source_;
  Secret secret_;
  bool has_secret_ = false;
  bool given_up_ = false;
  std::vector<std::weak_ptr<ContextProvider>> subscribers_;
};

class SecretFileWatch;

class SecretManager {
 public:
  SecretManager();
  ~SecretManager();

  // Main thread, before any context is built: secrets may come from files
  // (sds_config.path_config_source) and the files of SDS secrets are watched (secret_files.h),
  // on `main`; "sds.<name>." counters go to `store`.
  void enableFiles(Event::Dispatcher& main, Stats::Store& store);
  // Main thread: after `secret` took a new version over xDS, watch the files it names.
  void watchSecretFiles(const std::shared_ptr<DynamicSecret>& secret);

  // Whether an sds_config can be served (server.cc: the stream the xDS client fetches secrets
  // on). Unset: every sds_config is refused.
  using SourceCheck = std::function<absl::Status(const envoy::config::core::v3::ConfigSource&,
                                                 const std::string& field)>;
  void setSdsSourceCheck(SourceCheck check) { source_check_ = std::move(check); }

  // The DynamicSecret for a reference with sds_config (created, and the names-changed callback
  // told, when it is the first). With path_config_source, the secret is read from its file now
  // and is not one of dynamicSecretNames() (not fetched over xDS). Errors name `field`.
  absl::StatusOr<std::shared_ptr<DynamicSecret>> findOrCreateDynamicSecret(
      const SdsSecretConfig& ref, const std::string& field);
  // The live one of that name, or null.
  std::shared_ptr<DynamicSecret> findDynamicSecret(const std::string& name) const;
  // The names of the live DynamicSecrets, sorted (forgetting those no context uses any more).
  std::vector<std::string> dynamicSecretNames();
  // Called after a new name appeared (the SDS subscription should grow).
  void setNamesChangedCallback(std::function<void()> cb) { names_changed_ = std::move(cb); }

  // static_resources.secrets: each named, of type tls_certificate or validation_context, valid
  // (validateSecret) and unique. Errors read "secrets[i] ('name'): field: reason".
  absl::Status addStaticSecrets(const google::protobuf::RepeatedPtrField<Secret>& secrets);
  const Secret* findStaticSecret(const std::string& name) const;

 private:
  std::map<std::string, Secret> static_secrets_;
  SourceCheck source_check_;
  std::map<std::string, std::weak_ptr<DynamicSecret>> dynamic_;
  std::function<void()> names_changed_;
  // File-held secrets (path_config_source), by name and file: each its own source, as Envoy's.
  std::map<std::pair<std::string, std::string>, std::weak_ptr<DynamicSecret>> from_files_;
  // The file watches of live secrets (dropped, on the main thread, once their secret is gone:
  // a secret may be released last on a worker).
  std::map<const DynamicSecret*, std::unique_ptr<SecretFileWatch>> file_watches_;
  Event::Dispatcher* main_ = nullptr;
  Stats::Store* store_ = nullptr;
  absl::StatusOr<std::shared_ptr<DynamicSecret>> findOrCreateFileSecret(const SdsSecretConfig& ref,
                                                                        const std::string& field);
  void dropExpiredFileWatches();
};

// The secret a reference names: a static one, or the current version of a dynamic one (null
// while it has none). Errors name `field`.
using SecretLookup = std::function<absl::StatusOr<const Secret*>(const SdsSecretConfig& ref,
                                                                 const std::string& field)>;

// `common` with each SDS reference replaced by the secret `lookup` finds: tls_certificate
// secrets as tls_certificates, a validation_context secret as validation_context. `*missing`:
// some secret has no version yet (the result is then incomplete). Errors name the field below
// the context ("common_tls_context.tls_certificate_sds_secret_configs[0].name: ...").
absl::StatusOr<CommonTlsContext> resolveSecrets(const CommonTlsContext& common,
                                                const SecretLookup& lookup, bool* missing);

}  // namespace Proxy::Tls
