#pragma once

// Secrets (Envoy's SDS resources: envoy.extensions.transport_sockets.tls.v3.Secret) and the
// references to them from TLS contexts (tls_certificate_sds_secret_configs,
// validation_context_sds_secret_config). The SecretManager holds the bootstrap's
// static_resources.secrets; a reference without sds_config names one of them. Main thread only.

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace Proxy::Tls {

using Secret = envoy::extensions::transport_sockets::tls::v3::Secret;
using SdsSecretConfig = envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig;
using CommonTlsContext = envoy::extensions::transport_sockets::tls::v3::CommonTlsContext;

// Checks a secret on its own, as a TLS context would use it: a tls_certificate's chain and key
// parse and match, a validation_context's CAs (and CRL, SAN matchers) load. Errors name the
// field below the secret ("tls_certificate.private_key: does not match the certificate chain").
absl::Status validateSecret(const Secret& secret);

class SecretManager {
 public:
  // static_resources.secrets: each named, of type tls_certificate or validation_context, valid
  // (validateSecret) and unique. Errors read "secrets[i] ('name'): field: reason".
  absl::Status addStaticSecrets(const google::protobuf::RepeatedPtrField<Secret>& secrets);
  const Secret* findStaticSecret(const std::string& name) const;

 private:
  std::map<std::string, Secret> static_secrets_;
};

// `common` with each SDS reference replaced by the secret it names: tls_certificate secrets
// appended to tls_certificates, a validation_context secret as validation_context. Only
// references to static secrets (no sds_config) are resolved here. Errors name the field below
// the context ("common_tls_context.tls_certificate_sds_secret_configs[0].name: ...").
absl::StatusOr<CommonTlsContext> resolveStaticSecrets(const CommonTlsContext& common,
                                                      const SecretManager* secrets);

}  // namespace Proxy::Tls
