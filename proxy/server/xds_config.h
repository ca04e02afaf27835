#pragma once

// Connects the xDS client to the proxy's managers (main thread): LDS → ListenerManager,
// RDS → RouteConfigProviderManager, CDS → ClusterManager, EDS → ClusterManager. Each watcher
// applies the good resources of an update, rejects the bad ones with a message naming the
// resource and field (the client NACKs with it), and keeps the RDS/EDS subscriptions equal to
// the names that listeners and clusters currently use. Also sequences Envoy's initialisation:
// CDS (and the EDS of its clusters) first, then LDS (and the RDS of its listeners), and
// bounds the wait for each RDS and EDS resource by the initial_fetch_timeout of the config
// source that names it (InitialFetchTimers). SDS: the secrets TLS contexts name with
// sds_config (Tls::SecretManager), fetched by name and handed to their DynamicSecrets; a secret
// whose context fails to build with it is NACKed and the previous version keeps serving.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "proxy/listener/listener_manager.h"
#include "proxy/router/rds_impl.h"
#include "proxy/tls/secret_manager.h"
#include "proxy/upstream/cluster_manager_impl.h"
#include "xds_client/transport.h"
#include "xds_client/xds_client.h"

namespace Proxy::Server {

class XdsConfig {
 public:
  // `transport_factory`: how the xDS client reaches the management server; null for gRPC (unit
  // tests give a fake one).
  XdsConfig(Event::Dispatcher& main, Stats::Store& store, Upstream::ClusterManagerImpl& clusters,
            Listener::ListenerManagerImpl& listeners, Router::RouteConfigProviderManager& routes,
            Xds::XdsTransportFactoryPtr transport_factory = nullptr);
  ~XdsConfig();

  // Builds the client from the bootstrap's dynamic_resources. OK and inactive when the
  // bootstrap has none.
  absl::Status initialize(const envoy::config::bootstrap::v3::Bootstrap& bootstrap);
  bool active() const { return client_ != nullptr; }
  // Before initialize(): where SDS secrets go (null: no SDS).
  void setSecretManager(Tls::SecretManager* secrets) { secrets_ = secrets; }
  // How the bootstrap lets sds_config be served (the stream the client fetches secrets on):
  // ads, or an api_config_source naming that stream's server. Null when it configures none.
  static Tls::SecretManager::SourceCheck sdsSourceCheck(
      const envoy::config::bootstrap::v3::Bootstrap& bootstrap);
  // Subscribes to the secrets named so far (static listeners and clusters may wait for them
  // before anything else starts); later names follow as contexts name them.
  void startSds();
  // Starts CDS, waits for the first CDS answer (or its initial fetch timeout) and for the
  // clusters to warm, then starts LDS and waits for the first LDS answer; `done` runs then (the
  // listeners themselves warm in the listener manager).
  void start(std::function<void()> done);

 private:
  class LdsWatcher;
  class RdsWatcher;
  class CdsWatcher;
  class EdsWatcher;
  class SdsWatcher;
  class InitialFetchTimers;

  void startLds();
  void updateRdsNames(const std::vector<std::string>& names);
  void updateEdsNames();
  void updateSdsNames();
  void onCdsInitialized();
  void onLdsInitialized();
  // Initial fetch timeouts that ran out: stop waiting for that resource.
  void giveUpOnRoutes(const std::string& name);
  void giveUpOnEndpoints(const std::string& name);
  void giveUpOnSecret(const std::string& name);

  Event::Dispatcher& main_;
  Stats::Store& store_;
  Upstream::ClusterManagerImpl& clusters_;
  Listener::ListenerManagerImpl& listeners_;
  Router::RouteConfigProviderManager& routes_;
  Tls::SecretManager* secrets_ = nullptr;
  Xds::XdsTransportFactoryPtr transport_factory_;
  Xds::XdsClientPtr client_;
  // What checkResourceConfigSources checks listeners and clusters against.
  envoy::config::bootstrap::v3::Bootstrap::DynamicResources dynamic_;
  bool has_cds_ = false;
  bool has_lds_ = false;
  bool has_sds_ = false;
  bool sds_started_ = false;
  std::unique_ptr<LdsWatcher> lds_watcher_;
  std::unique_ptr<RdsWatcher> rds_watcher_;
  std::unique_ptr<CdsWatcher> cds_watcher_;
  std::unique_ptr<EdsWatcher> eds_watcher_;
  std::unique_ptr<SdsWatcher> sds_watcher_;
  Xds::WatchHandle lds_watch_;
  Xds::WatchHandle rds_watch_;
  Xds::WatchHandle cds_watch_;
  Xds::WatchHandle eds_watch_;
  Xds::WatchHandle sds_watch_;
  std::vector<std::string> rds_names_;
  std::vector<std::string> eds_names_;
  std::vector<std::string> sds_names_;
  // A route configuration or a ClusterLoadAssignment that never comes must not keep its
  // listener or cluster warming forever.
  std::unique_ptr<InitialFetchTimers> rds_timers_;
  std::unique_ptr<InitialFetchTimers> eds_timers_;
  std::unique_ptr<InitialFetchTimers> sds_timers_;
  std::function<void()> done_;
  bool cds_initialized_ = false;
  bool lds_initialized_ = false;
};

}  // namespace Proxy::Server
