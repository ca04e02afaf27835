#include "proxy/tls/context_provider.h"

#include "absl/strings/str_cat.h"

namespace Proxy::Tls {

absl::StatusOr<std::shared_ptr<ContextProvider>> ContextProvider::createServer(
    const ContextImpl::DownstreamTlsContext& proto, SecretManager* secrets) {
  const auto& common = proto.common_tls_context();
  if (common.tls_certificates_size() == 0 &&
      common.tls_certificate_sds_secret_configs_size() == 0) {
    return absl::InvalidArgumentError(
        "common_tls_context.tls_certificates: a server TLS context needs at least one "
        "certificate");
  }
  return create(
      common,
      [proto](const CommonTlsContext& resolved) {
        ContextImpl::DownstreamTlsContext copy = proto;
        *copy.mutable_common_tls_context() = resolved;
        return ContextImpl::createServer(copy);
      },
      /*is_server=*/true, secrets);
}

absl::StatusOr<std::shared_ptr<ContextProvider>> ContextProvider::createClient(
    const ContextImpl::UpstreamTlsContext& proto, SecretManager* secrets) {
  return create(
      proto.common_tls_context(),
      [proto](const CommonTlsContext& resolved) {
        ContextImpl::UpstreamTlsContext copy = proto;
        *copy.mutable_common_tls_context() = resolved;
        return ContextImpl::createClient(copy);
      },
      /*is_server=*/false, secrets);
}

absl::StatusOr<std::shared_ptr<ContextProvider>> ContextProvider::create(
    const CommonTlsContext& common,
    std::function<absl::StatusOr<std::shared_ptr<ContextImpl>>(const CommonTlsContext&)> build,
    bool is_server, SecretManager* secrets) {
  std::shared_ptr<ContextProvider> provider(new ContextProvider());
  provider->is_server_ = is_server;
  provider->common_ = common;
  provider->build_ = std::move(build);
  provider->secrets_ = secrets;
  // The dynamic secrets it names, each once.
  auto subscribe = [&](const SdsSecretConfig& ref, const std::string& field) -> absl::Status {
    if (!ref.has_sds_config()) {
      return absl::OkStatus();
    }
    if (secrets == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".sds_config: not supported here"));
    }
    auto dynamic = secrets->findOrCreateDynamicSecret(ref, field);
    if (!dynamic.ok()) {
      return dynamic.status();
    }
    for (const auto& known : provider->dynamic_) {
      if (known == *dynamic) {
        return absl::OkStatus();
      }
    }
    provider->dynamic_.push_back(*std::move(dynamic));
    return absl::OkStatus();
  };
  for (int i = 0; i < common.tls_certificate_sds_secret_configs_size(); i++) {
    if (absl::Status s = subscribe(
            common.tls_certificate_sds_secret_configs(i),
            absl::StrCat("common_tls_context.tls_certificate_sds_secret_configs[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  if (common.has_validation_context_sds_secret_config()) {
    if (absl::Status s = subscribe(common.validation_context_sds_secret_config(),
                                   "common_tls_context.validation_context_sds_secret_config");
        !s.ok()) {
      return s;
    }
  }
  auto context = provider->build(nullptr, nullptr);
  if (!context.ok()) {
    return context.status();
  }
  {
    std::unique_lock lock(provider->mutex_);
    provider->current_ = *context;
  }
  bool ready = *context != nullptr;
  if (!ready) {
    // Waiting for a secret, unless every missing one was given up on already.
    ready = true;
    for (const auto& dynamic : provider->dynamic_) {
      ready = ready && (dynamic->secret() != nullptr || dynamic->givenUp());
    }
  }
  if (ready) {
    provider->ready_.markReady();  // nothing waits on it yet
  }
  for (const auto& dynamic : provider->dynamic_) {
    dynamic->subscribe(provider);
  }
  return provider;
}

absl::StatusOr<std::shared_ptr<ContextImpl>> ContextProvider::build(const std::string* name,
                                                                    const Secret* secret) const {
  SecretLookup lookup = [&](const SdsSecretConfig& ref,
                            const std::string& field) -> absl::StatusOr<const Secret*> {
    if (!ref.has_sds_config()) {
      const Secret* found = secrets_ != nullptr ? secrets_->findStaticSecret(ref.name()) : nullptr;
      if (found == nullptr) {
        // Envoy: "Unknown static secret: NAME".
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".name: unknown static secret '", ref.name(), "'"));
      }
      return found;
    }
    if (name != nullptr && ref.name() == *name) {
      return secret;
    }
    for (const auto& dynamic : dynamic_) {
      if (dynamic->name() == ref.name()) {
        return dynamic->secret();
      }
    }
    return nullptr;
  };
  bool missing = false;
  auto resolved = resolveSecrets(common_, lookup, &missing);
  if (!resolved.ok()) {
    return resolved.status();
  }
  if (missing) {
    return nullptr;
  }
  return build_(*resolved);
}

void ContextProvider::initStats(const Stats::Scope& scope) {
  ssl_scope_.emplace(scope);
  Stats::Scope factory =
      scope.child(is_server_ ? "server_ssl_socket_factory" : "client_ssl_socket_factory");
  update_by_sds_ = &factory.counter("ssl_context_update_by_sds");
  not_ready_ = &factory.counter(is_server_ ? "downstream_context_secrets_not_ready"
                                           : "upstream_context_secrets_not_ready");
  std::unique_lock lock(mutex_);
  if (current_ != nullptr && !current_->hasStats()) {
    std::const_pointer_cast<ContextImpl>(current_)->initStats(scope);
  }
}

ContextConstSharedPtr ContextProvider::current() const {
  ContextConstSharedPtr context;
  {
    std::shared_lock lock(mutex_);
    context = current_;
  }
  if (context == nullptr && not_ready_ != nullptr) {
    not_ready_->inc();
  }
  return context;
}

absl::StatusOr<std::shared_ptr<ContextImpl>> ContextProvider::prepare(const std::string& name,
                                                                      const Secret& secret) const {
  return build(&name, &secret);
}

void ContextProvider::commit(std::shared_ptr<ContextImpl> next) {
  if (next == nullptr) {
    return;  // still waiting for another secret
  }
  if (ssl_scope_.has_value()) {
    next->initStats(*ssl_scope_);  // before any worker can see it
  }
  {
    std::unique_lock lock(mutex_);
    current_ = std::move(next);
  }
  if (update_by_sds_ != nullptr) {
    update_by_sds_->inc();
  }
  ready_.markReady();
}

}  // namespace Proxy::Tls
