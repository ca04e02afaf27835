#pragma once

// The control-plane-stub process without main(): the snapshot cache, the gRPC xDS server, the
// admin API on the main Dispatcher, and the --snapshot file (loaded at start, reloaded when it
// changes). Tests run it in-process on a dispatcher thread of their own.
//
// Threads: construct, start(), shutdown() and destroy on the dispatcher's thread (the main
// thread). The gRPC server runs on gRPC's threads; the two meet only in the locked cache.

#include <sys/stat.h>
#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "control_plane_stub/options.h"
#include "control_plane_stub/snapshot_cache_impl.h"
#include "control_plane_stub/xds_server.h"
#include "proxy/admin/admin.h"
#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"

namespace Proxy::ControlPlane {

class ControlPlane {
 public:
  ControlPlane(Options options, Event::Dispatcher& dispatcher);
  ~ControlPlane();

  // Loads --snapshot (a bad file fails the start), starts the xDS server and the admin API,
  // starts watching the file, writes --port-file and logs
  //   "control-plane-stub ready: xds=127.0.0.1:18000 admin=127.0.0.1:18001".
  absl::Status start();
  // Stops the file watch, cancels every stream and closes the admin API. Idempotent.
  void shutdown();

  // Checks the --snapshot file now and reloads it if it changed since the last look (the
  // watch timer calls this). False when it was not reloaded.
  bool checkSnapshotFile();
  // Reads the --snapshot file now, changed or not (SIGHUP). A refused file is logged and the
  // previous snapshot keeps serving, as on a watch reload. FailedPrecondition without a file.
  absl::Status reloadSnapshotFile(std::string_view why);

  const Options& options() const { return options_; }
  SnapshotCache& cache() { return cache_; }
  Stats::Store& stats() { return stats_; }
  // Valid after start().
  const std::string& xdsAddress() const { return xds_address_; }
  const std::string& adminAddress() const { return admin_address_; }
  uint32_t xdsPort() const;
  uint32_t adminPort() const;
  XdsServer& xdsServer() { return *xds_server_; }

 private:
  absl::Status loadFromFile(std::string_view why);
  absl::Status writePortFile() const;

  const Options options_;
  Event::Dispatcher& dispatcher_;
  RealTimeSource time_source_;
  Stats::Store stats_;
  SnapshotCacheImpl cache_;
  XdsServerPtr xds_server_;
  std::unique_ptr<Admin::Admin> admin_;
  Event::TimerPtr watch_timer_;
  std::string xds_address_;
  std::string admin_address_;
  // What the snapshot file looked like when it was last read (reloaded only when it changes).
  struct FileIdentity {
    bool exists = false;
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const FileIdentity& o) const {
      return exists == o.exists && device == o.device && inode == o.inode && size == o.size &&
             mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
    }
  };
  static FileIdentity identify(const std::string& path);
  FileIdentity file_identity_;
};

}  // namespace Proxy::ControlPlane
