#pragma once

// File-watched secrets, as Envoy's SDS keeps them: a secret read from a path_config_source file
// (a DiscoveryResponse holding it) and re-read when that file is moved over, or when an entry is
// moved into its watched_directory (a Kubernetes `..data` symlink swap); and, for every secret
// delivered by SDS, the certificate, key and CA files it names, watched through their
// directories (or the TlsCertificate's / CertificateValidationContext's watched_directory) so
// that replacing a file rotates it. A new version applies to new connections
// (DynamicSecret::update); one that does not load is rejected, counted, and the previous version
// keeps serving. Main thread only.

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "proxy/event/dispatcher.h"
#include "proxy/filesystem/watcher.h"
#include "proxy/stats/stats.h"
#include "proxy/tls/secret_manager.h"

namespace Proxy::Tls {

// The secret `name` from a path_config_source file: a DiscoveryResponse in YAML (.yaml, .yml),
// JSON (.json and any other name), binary proto (.pb) or text proto (.pb_text), as Envoy reads
// it, holding exactly that one Secret. Errors name the file.
absl::StatusOr<Secret> readSecretFile(const std::string& path, const std::string& name);

// The secret with the contents of the files it names: differs when one of them changed.
std::string secretFingerprint(const Secret& secret);

class SecretFileWatch {
 public:
  // `path`: the secret comes from this file (path_config_source); else from xDS, and only the
  // files its versions name are watched. `scope` is "sds.<name>.".
  SecretFileWatch(Event::Dispatcher& main, Stats::Scope scope,
                  const std::shared_ptr<DynamicSecret>& secret,
                  std::optional<envoy::config::core::v3::PathConfigSource> path);

  // path_config_source: watches the file and reads the first version now. As in Envoy, the file
  // must exist when the config loads (else an error naming the field below
  // path_config_source); a first version that does not load is rejected and counted, and the
  // contexts naming the secret serve nothing until a good one is moved in.
  absl::Status start();
  // A new version arrived over xDS: watch the files it names.
  void onUpdated();
  // The secret is gone (no context names it any more): this watch can be dropped.
  bool expired() const { return secret_.expired(); }

 private:
  void onChanged();
  void watchFiles(const Secret& secret);
  absl::Status watch(const std::string& path);

  Event::Dispatcher& main_;
  Stats::Scope scope_;
  std::weak_ptr<DynamicSecret> secret_;
  const std::string name_;
  const std::optional<envoy::config::core::v3::PathConfigSource> path_;
  Filesystem::WatcherPtr watcher_;
  std::set<std::string> watched_;
  std::string fingerprint_;  // of the version serving
};

}  // namespace Proxy::Tls
