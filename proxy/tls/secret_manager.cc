#include "proxy/tls/secret_manager.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/tls/context_impl.h"

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
    static_secrets_.emplace(secret.name(), secret);
  }
  return absl::OkStatus();
}

const Secret* SecretManager::findStaticSecret(const std::string& name) const {
  auto it = static_secrets_.find(name);
  return it != static_secrets_.end() ? &it->second : nullptr;
}

absl::StatusOr<CommonTlsContext> resolveStaticSecrets(const CommonTlsContext& common,
                                                      const SecretManager* secrets) {
  CommonTlsContext resolved = common;
  resolved.clear_tls_certificate_sds_secret_configs();
  if (common.tls_certificate_sds_secret_configs_size() > 0 && common.tls_certificates_size() > 0) {
    // Envoy would use tls_certificates and ignore the references: refused rather than ignored.
    return absl::InvalidArgumentError(
        "common_tls_context.tls_certificate_sds_secret_configs: not supported together with "
        "tls_certificates");
  }
  // The secret a reference names, of the type it must have.
  auto find = [secrets](const SdsSecretConfig& ref, const std::string& field,
                        Secret::TypeCase type) -> absl::StatusOr<const Secret*> {
    const Secret* secret = secrets != nullptr ? secrets->findStaticSecret(ref.name()) : nullptr;
    if (secret == nullptr) {
      // Envoy: "Unknown static secret: NAME".
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".name: unknown static secret '", ref.name(), "'"));
    }
    if (secret->type_case() != type) {
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
    *resolved.add_tls_certificates() = (*secret)->tls_certificate();
  }
  if (common.has_validation_context_sds_secret_config()) {
    auto secret =
        find(common.validation_context_sds_secret_config(),
             "common_tls_context.validation_context_sds_secret_config", Secret::kValidationContext);
    if (!secret.ok()) {
      return secret.status();
    }
    *resolved.mutable_validation_context() = (*secret)->validation_context();
  }
  return resolved;
}

}  // namespace Proxy::Tls
