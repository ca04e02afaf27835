#pragma once

// The process: owns the main dispatcher, the thread-local registry, stats, the cluster
// manager, the listeners, the workers and the admin server, and runs Envoy's startup and
// shutdown order (ARCHITECTURE.md "The path of one xDS update").

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "proxy/admin/admin.h"
#include "proxy/config/options.h"
#include "proxy/event/dispatcher.h"
#include "proxy/listener/listener_manager.h"
#include "proxy/router/rds_impl.h"
#include "proxy/server/memory_release.h"
#include "proxy/server/overload_manager_impl.h"
#include "proxy/server/worker.h"
#include "proxy/server/xds_config.h"
#include "proxy/stats/stats.h"
#include "proxy/thread_local/thread_local.h"
#include "proxy/upstream/cluster_manager_impl.h"

namespace Proxy::Server {

class Server {
 public:
  enum class State { Initializing, Live, Draining };

  Server(Config::Options options, envoy::config::bootstrap::v3::Bootstrap bootstrap);
  ~Server();

  // Builds everything from the bootstrap. In validate mode nothing is bound and no thread is
  // started. Errors are one line naming the resource and field.
  absl::Status initialize();
  // Runs until SIGTERM/SIGINT or POST /quitquitquit, then drains. Returns the exit code.
  int run();

 private:
  void registerAdminHandlers();
  void startWorkers();
  void startDrain(std::string_view reason);
  void checkDrainDone();
  void shutdown();
  std::string serverInfoJson() const;

  const Config::Options options_;
  const envoy::config::bootstrap::v3::Bootstrap bootstrap_;
  mutable RealTimeSource time_source_;
  Stats::Store store_;
  // Before everything that accepts connections: their sockets give slots back to its global
  // connection limit until the last one closes.
  std::unique_ptr<OverloadManagerImpl> overload_manager_;
  Event::DispatcherPtr dispatcher_;
  std::unique_ptr<FreeMemoryReleaser> memory_releaser_;
  ThreadLocal::InstancePtr tls_;
  // static_resources.secrets; outlives the managers whose TLS contexts name them.
  Tls::SecretManager secret_manager_;
  std::unique_ptr<Upstream::ClusterManagerImpl> cluster_manager_;
  std::vector<WorkerPtr> workers_;
  std::unique_ptr<Router::RouteConfigProviderManager> rds_manager_;
  std::unique_ptr<Listener::ListenerManagerImpl> listener_manager_;
  std::unique_ptr<XdsConfig> xds_;
  std::unique_ptr<Admin::Admin> admin_;
  std::vector<Event::SignalEventPtr> signals_;
  Event::TimerPtr drain_timer_;
  Event::TimerPtr uptime_timer_;
  MonotonicTime drain_deadline_;
  SystemTime start_time_;
  State state_ = State::Initializing;
  int exit_code_ = 0;
  bool tls_shutdown_ = false;
  // The static clusters finished warming (their first health check round) and xDS started.
  bool static_clusters_warm_ = false;
};

}  // namespace Proxy::Server
