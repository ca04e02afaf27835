#include "proxy/tls/secret_manager.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/common/status.h"
#include "proxy/tls/context_impl.h"
#include "proxy/tls/context_provider.h"
#include "proxy/tls/secret_files.h"

namespace Proxy::Tls {
namespace {

// A context error ("common_tls_context.tls_certificates[0].private_key: ...") as an error of
// the secret the certificate came from ("tls_certificate.private_key: ...").
absl::Status renamed(const absl::Status& status, const std::string& context_field,
                     const std::string& secret_field) {
  std::string message(status.message());
  if (absl::StartsWith(message, context_field)) {
    message = secret_field + message.substr(context_field.size());
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::Status validateSecret(const Secret& secret) {
  switch (secret.type_case()) {
    case Secret::kTlsCertificate: {
      // Built as a server context alone: PEMs parse, the key matches the chain.
      ContextImpl::DownstreamTlsContext context;
      *context.mutable_common_tls_context()->add_tls_certificates() = secret.tls_certificate();
      auto built = ContextImpl::createServer(context);
      return built.ok() ? absl::OkStatus()
                        : renamed(built.status(), "common_tls_context.tls_certificates[0]",
                                  "tls_certificate");
    }
    case Secret::kValidationContext: {
      ContextImpl::UpstreamTlsContext context;
      *context.mutable_common_tls_context()->mutable_validation_context() =
          secret.validation_context();
      auto built = ContextImpl::createClient(context);
      return built.ok() ? absl::OkStatus()
                        : renamed(built.status(), "common_tls_context.validation_context",
                                  "validation_context");
    }
    default:
      return absl::InvalidArgumentError(
          "type: one of tls_certificate or validation_context is required");
  }
}

absl::Status SecretManager::addStaticSecrets(
    const google::protobuf::RepeatedPtrField<Secret>& secrets) {
  for (int i = 0; i < secrets.size(); i++) {
    const Secret& secret = secrets[i];
    if (secret.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("secrets[", i, "].name: must not be empty"));
    }
    const std::string where = absl::StrCat("secrets[", i, "] ('", secret.name(), "')");
    if (static_secrets_.count(secret.name()) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate secret name"));
    }
    if (absl::Status status = validateSecret(secret); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", status.message()));
    }
    // Envoy watches the files of secrets delivered by SDS only: a static one is read once.
    if (secret.tls_certificate().has_watched_directory() ||
        secret.validation_context().has_watched_directory()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": ", secret.has_tls_certificate() ? "tls_certificate" : "validation_context",
          ".watched_directory: not supported for a static secret (only secrets delivered by SDS "
          "are watched)"));
    }
    static_secrets_.emplace(secret.name(), secret);
  }
  return absl::OkStatus();
}

const Secret* SecretManager::findStaticSecret(const std::string& name) const {
  auto it = static_secrets_.find(name);
  return it != static_secrets_.end() ? &it->second : nullptr;
}

absl::StatusOr<CommonTlsContext> resolveSecrets(const CommonTlsContext& common,
                                                const SecretLookup& lookup, bool* missing) {
  *missing = false;
  CommonTlsContext resolved = common;
  resolved.clear_tls_certificate_sds_secret_configs();
  if (common.tls_certificate_sds_secret_configs_size() > 0 && common.tls_certificates_size() > 0) {
    // Envoy would use tls_certificates and ignore the references: refused rather than ignored.
    return absl::InvalidArgumentError(
        "common_tls_context.tls_certificate_sds_secret_configs: not supported together with "
        "tls_certificates");
  }
  // The secret a reference names, of the type it must have (null: no version yet).
  auto find = [&lookup](const SdsSecretConfig& ref, const std::string& field,
                        Secret::TypeCase type) -> absl::StatusOr<const Secret*> {
    auto secret = lookup(ref, field);
    if (!secret.ok() || *secret == nullptr) {
      return secret;
    }
    if ((*secret)->type_case() != type) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".name: secret '", ref.name(), "' is not a ",
                       type == Secret::kTlsCertificate ? "tls_certificate" : "validation_context"));
    }
    return secret;
  };
  for (int i = 0; i < common.tls_certificate_sds_secret_configs_size(); i++) {
    auto secret =
        find(common.tls_certificate_sds_secret_configs(i),
             absl::StrCat("common_tls_context.tls_certificate_sds_secret_configs[", i, "]"),
             Secret::kTlsCertificate);
    if (!secret.ok()) {
      return secret.status();
    }
    if (*secret == nullptr) {
      *missing = true;
      continue;
    }
    *resolved.add_tls_certificates() = (*secret)->tls_certificate();
  }
  if (common.has_validation_context_sds_secret_config()) {
    auto secret =
        find(common.validation_context_sds_secret_config(),
             "common_tls_context.validation_context_sds_secret_config", Secret::kValidationContext);
    if (!secret.ok()) {
      return secret.status();
    }
    if (*secret == nullptr) {
      *missing = true;
    } else {
      *resolved.mutable_validation_context() = (*secret)->validation_context();
    }
  }
  return resolved;
}

absl::StatusOr<std::shared_ptr<DynamicSecret>> SecretManager::findOrCreateDynamicSecret(
    const SdsSecretConfig& ref, const std::string& field) {
  if (ref.name().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".name: must not be empty"));
  }
  if (ref.sds_config().has_path_config_source()) {
    return findOrCreateFileSecret(ref, field);
  }
  if (!source_check_) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".sds_config: not supported: the bootstrap configures no xDS stream for SDS"));
  }
  RETURN_IF_ERROR(source_check_(ref.sds_config(), field + ".sds_config"));
  std::weak_ptr<DynamicSecret>& slot = dynamic_[ref.name()];
  if (std::shared_ptr<DynamicSecret> existing = slot.lock(); existing != nullptr) {
    return existing;
  }
  auto secret = std::make_shared<DynamicSecret>(ref.name(), ref.sds_config());
  slot = secret;
  if (names_changed_) {
    names_changed_();
  }
  return secret;
}

SecretManager::SecretManager() = default;
SecretManager::~SecretManager() = default;

void SecretManager::enableFiles(Event::Dispatcher& main, Stats::Store& store) {
  main_ = &main;
  store_ = &store;
}

absl::StatusOr<std::shared_ptr<DynamicSecret>> SecretManager::findOrCreateFileSecret(
    const SdsSecretConfig& ref, const std::string& field) {
  const auto& source = ref.sds_config().path_config_source();
  const std::string where = field + ".sds_config.path_config_source";
  if (main_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not supported here"));
  }
  if (source.path().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".path: must not be empty"));
  }
  dropExpiredFileWatches();
  std::weak_ptr<DynamicSecret>& slot = from_files_[{ref.name(), source.path()}];
  if (std::shared_ptr<DynamicSecret> existing = slot.lock(); existing != nullptr) {
    return existing;
  }
  auto secret = std::make_shared<DynamicSecret>(ref.name(), ref.sds_config());
  auto watch = std::make_unique<SecretFileWatch>(
      *main_, Stats::Scope(*store_, absl::StrCat("sds.", ref.name(), ".")), secret, source);
  if (absl::Status status = watch->start(); !status.ok()) {
    from_files_.erase({ref.name(), source.path()});
    return absl::InvalidArgumentError(absl::StrCat(where, ".", status.message()));
  }
  file_watches_[secret.get()] = std::move(watch);
  slot = secret;
  return secret;
}

void SecretManager::watchSecretFiles(const std::shared_ptr<DynamicSecret>& secret) {
  if (main_ == nullptr) {
    return;
  }
  dropExpiredFileWatches();
  std::unique_ptr<SecretFileWatch>& watch = file_watches_[secret.get()];
  if (watch == nullptr) {
    watch = std::make_unique<SecretFileWatch>(
        *main_, Stats::Scope(*store_, absl::StrCat("sds.", secret->name(), ".")), secret,
        std::nullopt);
  }
  watch->onUpdated();
}

void SecretManager::dropExpiredFileWatches() {
  for (auto it = file_watches_.begin(); it != file_watches_.end();) {
    it = it->second->expired() ? file_watches_.erase(it) : std::next(it);
  }
  for (auto it = from_files_.begin(); it != from_files_.end();) {
    it = it->second.expired() ? from_files_.erase(it) : std::next(it);
  }
}

std::shared_ptr<DynamicSecret> SecretManager::findDynamicSecret(const std::string& name) const {
  auto it = dynamic_.find(name);
  return it != dynamic_.end() ? it->second.lock() : nullptr;
}

std::vector<std::string> SecretManager::dynamicSecretNames() {
  dropExpiredFileWatches();
  std::vector<std::string> names;
  for (auto it = dynamic_.begin(); it != dynamic_.end();) {
    if (it->second.expired()) {
      it = dynamic_.erase(it);
      continue;
    }
    names.push_back(it->first);
    ++it;
  }
  return names;
}

absl::Status DynamicSecret::update(const Secret& secret, bool reload_files) {
  if (!reload_files && has_secret_ && secret.SerializeAsString() == secret_.SerializeAsString()) {
    return absl::OkStatus();  // the same version again (SotW resends): nothing to rebuild
  }
  RETURN_IF_ERROR(validateSecret(secret));
  // Every context first, then the switch: all or nothing.
  std::vector<std::pair<std::shared_ptr<ContextProvider>, std::shared_ptr<ContextImpl>>> next;
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    std::shared_ptr<ContextProvider> provider = it->lock();
    if (provider == nullptr) {
      it = subscribers_.erase(it);
      continue;
    }
    auto context = provider->prepare(name_, secret);
    if (!context.ok()) {
      return context.status();
    }
    next.emplace_back(std::move(provider), *std::move(context));
    ++it;
  }
  secret_ = secret;
  has_secret_ = true;
  for (auto& [provider, context] : next) {
    provider->commit(std::move(context));
  }
  return absl::OkStatus();
}

void DynamicSecret::giveUp() {
  given_up_ = true;
  for (const std::weak_ptr<ContextProvider>& weak : subscribers_) {
    if (std::shared_ptr<ContextProvider> provider = weak.lock(); provider != nullptr) {
      provider->giveUp();
    }
  }
}

void DynamicSecret::subscribe(const std::shared_ptr<ContextProvider>& provider) {
  subscribers_.push_back(provider);
}

}  // namespace Proxy::Tls
