#include "proxy/tls/secret_files.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "google/protobuf/text_format.h"
#include "proxy/common/status.h"
#include "proxy/common/xds_type_urls.h"
#include "proxy/config/field_support.h"
#include "proxy/config/message_util.h"
#include "proxy/filesystem/watcher_impl.h"
#include "spdlog/spdlog.h"

namespace Proxy::Tls {
namespace {

using envoy::config::core::v3::DataSource;

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read file '", path, "'"));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The files a secret's PEMs come from (Envoy's SdsApi::getDataSourceFilenames), and the
// watched_directory that replaces watching their directories.
void filesOf(const Secret& secret, std::vector<std::string>* files,
             const envoy::config::core::v3::WatchedDirectory** watched_directory) {
  auto add = [files](const DataSource& source) {
    if (source.specifier_case() == DataSource::kFilename) {
      files->push_back(source.filename());
    }
  };
  *watched_directory = nullptr;
  if (secret.has_tls_certificate()) {
    const auto& cert = secret.tls_certificate();
    add(cert.certificate_chain());
    add(cert.private_key());
    if (cert.has_watched_directory()) {
      *watched_directory = &cert.watched_directory();
    }
  } else if (secret.has_validation_context()) {
    const auto& vc = secret.validation_context();
    add(vc.trusted_ca());
    add(vc.crl());
    if (vc.has_watched_directory()) {
      *watched_directory = &vc.watched_directory();
    }
  }
}

std::string directoryOf(const std::string& file) {
  const size_t slash = file.rfind('/');
  return slash == std::string::npos ? "./" : file.substr(0, slash + 1);
}

}  // namespace

absl::StatusOr<Secret> readSecretFile(const std::string& path, const std::string& name) {
  envoy::service::discovery::v3::DiscoveryResponse response;
  if (absl::EndsWith(path, ".pb") || absl::EndsWith(path, ".pb_text")) {
    auto contents = readFile(path);
    if (!contents.ok()) {
      return contents.status();
    }
    const bool ok = absl::EndsWith(path, ".pb")
                        ? response.ParseFromString(*contents)
                        : google::protobuf::TextFormat::ParseFromString(*contents, &response);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("file '", path, "': not a DiscoveryResponse"));
    }
  } else if (absl::Status status = Config::loadFromFile(path, response); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("file '", path, "': ", status.message()));
  }
  // Envoy: "Unexpected SDS secrets length" / "Unexpected SDS secret (expecting NAME)".
  if (response.resources_size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("file '", path, "': holds ",
                                                   response.resources_size(),
                                                   " resources; exactly one Secret expected"));
  }
  const google::protobuf::Any& any = response.resources(0);
  Secret secret;
  if (any.type_url() != kSecretTypeUrl || !any.UnpackTo(&secret)) {
    return absl::InvalidArgumentError(
        absl::StrCat("file '", path, "': resources[0] is not a Secret ('", any.type_url(), "')"));
  }
  if (secret.name() != name) {
    return absl::InvalidArgumentError(absl::StrCat("file '", path, "': holds secret '",
                                                   secret.name(), "', expected '", name, "'"));
  }
  if (absl::Status status = Config::checkSupportedFields(secret); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("file '", path, "': secret '", name, "': ", status.message()));
  }
  return secret;
}

std::string secretFingerprint(const Secret& secret) {
  std::string fingerprint = secret.SerializeAsString();
  std::vector<std::string> files;
  const envoy::config::core::v3::WatchedDirectory* unused;
  filesOf(secret, &files, &unused);
  for (const std::string& file : files) {
    auto contents = readFile(file);
    absl::StrAppend(&fingerprint, "\n", file, "\n",
                    contents.ok() ? *contents : std::string("(unreadable)"));
  }
  return fingerprint;
}

SecretFileWatch::SecretFileWatch(Event::Dispatcher& main, Stats::Scope scope,
                                 const std::shared_ptr<DynamicSecret>& secret,
                                 std::optional<envoy::config::core::v3::PathConfigSource> path)
    : main_(main),
      scope_(std::move(scope)),
      secret_(secret),
      name_(secret->name()),
      path_(std::move(path)) {}

absl::Status SecretFileWatch::start() {
  // Envoy: "paths must refer to an existing path in the system".
  struct stat info;
  if (::stat(path_->path().c_str(), &info) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("path: '", path_->path(), "' does not exist"));
  }
  // Envoy: the watched_directory instead of the file, when set.
  if (path_->has_watched_directory()) {
    if (path_->watched_directory().path().empty()) {
      return absl::InvalidArgumentError("watched_directory.path: must not be empty");
    }
    if (absl::Status status = watch(absl::StrCat(path_->watched_directory().path(), "/"));
        !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("watched_directory.path: ", status.message()));
    }
  } else if (absl::Status status = watch(path_->path()); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("path: ", status.message()));
  }
  // The first version. One that does not load is rejected as a later one would be, and, as in
  // Envoy, the contexts waiting for it stop waiting (their handshakes fail, counted in
  // *_context_secrets_not_ready) until a good file is moved in.
  onChanged();
  if (std::shared_ptr<DynamicSecret> secret = secret_.lock(); secret->secret() == nullptr) {
    secret->giveUp();
  }
  return absl::OkStatus();
}

void SecretFileWatch::onUpdated() {
  std::shared_ptr<DynamicSecret> secret = secret_.lock();
  if (secret == nullptr || secret->secret() == nullptr) {
    return;
  }
  fingerprint_ = secretFingerprint(*secret->secret());
  watchFiles(*secret->secret());
}

void SecretFileWatch::watchFiles(const Secret& secret) {
  std::vector<std::string> files;
  const envoy::config::core::v3::WatchedDirectory* watched_directory;
  filesOf(secret, &files, &watched_directory);
  std::vector<std::string> paths;
  if (watched_directory != nullptr) {
    paths.push_back(absl::StrCat(watched_directory->path(), "/"));
  } else {
    // Their directories, not the files: a Kubernetes volume swaps a symlink in the directory.
    for (const std::string& file : files) {
      paths.push_back(directoryOf(file));
    }
  }
  for (const std::string& path : paths) {
    // The version already loaded from those files: a directory that cannot be watched only
    // means no rotation through it.
    if (absl::Status status = watch(path); !status.ok()) {
      spdlog::warn("sds: secret '{}': {}", name_, std::string(status.message()));
    }
  }
}

absl::Status SecretFileWatch::watch(const std::string& path) {
  if (watched_.count(path) > 0) {
    return absl::OkStatus();  // watches only accumulate: an extra one costs a fingerprint check
  }
  if (watcher_ == nullptr) {
    // Created with the first watch: a secret without files costs no inotify descriptor (there
    // are 128 per user by default).
    watcher_ = std::make_unique<Filesystem::WatcherImpl>(main_);
  }
  RETURN_IF_ERROR(watcher_->addWatch(path, Filesystem::Watcher::Events::MovedTo,
                                     [this](uint32_t) { onChanged(); }));
  watched_.insert(path);
  return absl::OkStatus();
}

void SecretFileWatch::onChanged() {
  std::shared_ptr<DynamicSecret> secret = secret_.lock();
  if (secret == nullptr) {
    return;
  }
  const Secret* current = secret->secret();
  // Rejections name the file when the secret comes from one.
  const std::string file =
      path_.has_value() ? absl::StrCat("file '", path_->path(), "': ") : std::string();
  Secret next;
  if (path_.has_value()) {
    auto read = readSecretFile(path_->path(), name_);
    if (!read.ok()) {
      spdlog::warn("sds: secret '{}' rejected: {}", name_, std::string(read.status().message()));
      scope_.counter("update_rejected").inc();
      return;
    }
    next = *std::move(read);
  } else if (current != nullptr) {
    next = *current;
  } else {
    return;
  }
  std::string fingerprint = secretFingerprint(next);
  if (current != nullptr && fingerprint == fingerprint_) {
    return;  // another file of the directory, or the same contents again
  }
  // Envoy's counters: a new version of the path_config_source file is an update of the
  // subscription (update_success / update_rejected); the same secret whose certificate files
  // changed is a key rotation (key_rotation_failed when it does not load).
  const bool new_version =
      current == nullptr || next.SerializeAsString() != current->SerializeAsString();
  // The files are read again even when the secret names the same ones.
  if (absl::Status status = secret->update(next, /*reload_files=*/true); !status.ok()) {
    spdlog::warn("sds: secret '{}' rejected: {}{}", name_, file, std::string(status.message()));
    scope_.counter(new_version ? "update_rejected" : "key_rotation_failed").inc();
    return;
  }
  fingerprint_ = std::move(fingerprint);
  if (new_version) {
    scope_.counter("update_success").inc();
  }
  spdlog::info("sds: secret '{}' loaded from its files", name_);
  watchFiles(next);
}

}  // namespace Proxy::Tls
