#include "control_plane_stub/control_plane.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "control_plane_stub/admin_api.h"
#include "control_plane_stub/snapshot_loader.h"
#include "proxy/common/assert.h"
#include "proxy/network/address.h"
#include "spdlog/spdlog.h"

namespace Proxy::ControlPlane {

ControlPlane::ControlPlane(Options options, Event::Dispatcher& dispatcher)
    : options_(std::move(options)), dispatcher_(dispatcher) {}

ControlPlane::~ControlPlane() {
  shutdown();
}

ControlPlane::FileIdentity ControlPlane::identify(const std::string& path) {
  FileIdentity identity;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return identity;
  }
  identity.exists = true;
  identity.device = st.st_dev;
  identity.inode = st.st_ino;
  identity.size = st.st_size;
  identity.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  identity.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return identity;
}

absl::Status ControlPlane::loadFromFile(std::string_view why) {
  // Identify before reading: a write racing the read changes the identity again, so the next
  // check reloads.
  file_identity_ = identify(options_.snapshot_path);
  absl::StatusOr<SnapshotFile> file =
      loadSnapshotFile(options_.snapshot_path, options_.validation, options_.max_snapshot_bytes);
  if (!file.ok()) {
    return file.status();
  }
  if (hasNoResources(*file)) {
    // Also what a file caught half-written by a writer that truncates first looks like.
    return absl::InvalidArgumentError(
        "the snapshot file has no resources: serving it would remove every listener, route, "
        "cluster and endpoint from the clients it serves (to do that on purpose, PUT an empty "
        "snapshot with ?allow_empty=true)");
  }
  if (file->node().empty()) {
    file->set_node(options_.node_id);
  }
  absl::StatusOr<SetSnapshotResult> result = cache_.setSnapshot(*std::move(file));
  if (!result.ok()) {
    return result.status();
  }
  const Snapshot& snapshot = *result->snapshot;
  spdlog::info("snapshot {}: node='{}' version='{}' (cds={} eds={} lds={} rds={}) from {} '{}'",
               result->changed ? "set" : "unchanged", snapshot.node(), snapshot.version(),
               snapshot.typeVersion(ResourceKind::Cluster),
               snapshot.typeVersion(ResourceKind::Endpoint),
               snapshot.typeVersion(ResourceKind::Listener),
               snapshot.typeVersion(ResourceKind::Route), why, options_.snapshot_path);
  return absl::OkStatus();
}

bool ControlPlane::checkSnapshotFile() {
  ASSERT(dispatcher_.isThreadSafe());
  if (options_.snapshot_path.empty() || identify(options_.snapshot_path) == file_identity_) {
    return false;
  }
  absl::Status status = loadFromFile("changed file");
  if (!status.ok()) {
    // The previous snapshot keeps serving; the file is looked at again when it changes.
    spdlog::error("snapshot file '{}' rejected, still serving the previous snapshot: {}",
                  options_.snapshot_path, std::string(status.message()));
    return false;
  }
  return true;
}

absl::Status ControlPlane::reloadSnapshotFile(std::string_view why) {
  ASSERT(dispatcher_.isThreadSafe());
  if (options_.snapshot_path.empty()) {
    return absl::FailedPreconditionError("no --snapshot file");
  }
  absl::Status status = loadFromFile(why);
  if (!status.ok()) {
    spdlog::error("snapshot file '{}' rejected, still serving the previous snapshot: {}",
                  options_.snapshot_path, std::string(status.message()));
  }
  return status;
}

uint32_t ControlPlane::xdsPort() const {
  return xds_server_ == nullptr ? 0 : xds_server_->port();
}

uint32_t ControlPlane::adminPort() const {
  return admin_ == nullptr ? 0 : admin_->address().port();
}

absl::Status ControlPlane::writePortFile() const {
  // Write then rename, so a reader never sees a partial line.
  const std::string tmp = options_.port_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::out | std::ios::trunc);
    out << "xds=" << xds_address_ << " admin=" << admin_address_ << "\n";
    if (!out) {
      return absl::InvalidArgumentError(absl::StrCat("--port-file: cannot write '", tmp, "'"));
    }
  }
  if (std::rename(tmp.c_str(), options_.port_file.c_str()) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port-file: cannot write '", options_.port_file, "'"));
  }
  return absl::OkStatus();
}

absl::Status ControlPlane::start() {
  ASSERT(dispatcher_.isThreadSafe());
  if (!options_.snapshot_path.empty()) {
    absl::Status status = loadFromFile("file");
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--snapshot '", options_.snapshot_path, "': ", status.message()));
    }
  }

  std::optional<ServerTls> tls;
  if (!options_.tls_cert_path.empty()) {
    tls.emplace();
    for (auto [flag, path, out] :
         {std::tuple{"--tls-cert", &options_.tls_cert_path, &tls->cert_chain},
          std::tuple{"--tls-key", &options_.tls_key_path, &tls->private_key},
          std::tuple{"--tls-client-ca", &options_.tls_client_ca_path, &tls->client_ca}}) {
      if (path->empty()) {
        continue;
      }
      std::ifstream file(*path, std::ios::in | std::ios::binary);
      std::stringstream contents;
      contents << file.rdbuf();
      if (!file || contents.str().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read '", *path, "'"));
      }
      *out = contents.str();
    }
  }
  absl::StatusOr<XdsServerPtr> xds =
      createXdsServer(options_.xds_address, cache_, time_source_, stats_, tls);
  if (!xds.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--xds-address: ", xds.status().message()));
  }
  xds_server_ = *std::move(xds);
  xds_address_ = xds_server_->address();

  absl::StatusOr<std::pair<std::string, uint32_t>> host_port =
      splitHostPort(options_.admin_address);
  if (!host_port.ok()) {
    return host_port.status();
  }
  absl::StatusOr<Network::Address> admin_address =
      Network::Address::fromIpPort(host_port->first, host_port->second);
  if (!admin_address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin-address: ", admin_address.status().message()));
  }
  Admin::AdminOptions admin_options;
  admin_options.max_request_body_bytes = options_.max_snapshot_bytes;
  admin_options.max_request_body_flag = "--max-snapshot-bytes";
  absl::StatusOr<std::unique_ptr<Admin::Admin>> admin =
      Admin::createAdmin(dispatcher_, *admin_address, std::move(admin_options));
  if (!admin.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--admin-address: ", admin.status().message()));
  }
  admin_ = *std::move(admin);
  admin_address_ = admin_->address().asString();
  registerAdminApi(*admin_, cache_, stats_, options_.validation);

  if (!options_.snapshot_path.empty() && options_.watch_interval.count() > 0) {
    // A stat() poll rather than inotify: it sees editors that replace the file (rename over
    // it), files on any filesystem, and a file that appears later, at the cost of one stat()
    // per interval.
    watch_timer_ = dispatcher_.createTimer([this] {
      checkSnapshotFile();
      watch_timer_->enableTimer(options_.watch_interval);
    });
    watch_timer_->enableTimer(options_.watch_interval);
  }

  if (!options_.port_file.empty()) {
    absl::Status status = writePortFile();
    if (!status.ok()) {
      return status;
    }
  }
  spdlog::info("control-plane-stub ready: xds={} admin={}", xds_address_, admin_address_);
  return absl::OkStatus();
}

void ControlPlane::shutdown() {
  watch_timer_.reset();
  if (xds_server_ != nullptr) {
    xds_server_->shutdown();
  }
  admin_.reset();
}

}  // namespace Proxy::ControlPlane
