#include "proxy/server/server.h"
#include "proxy/tls/certificate_info.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "proxy/admin/config_dump.h"
#include "proxy/admin/json_util.h"
#include "proxy/admin/stats_render.h"
#include "proxy/admin/status_render.h"
#include "proxy/common/assert.h"
#include "proxy/common/json.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/filters/access_log.h"
#include "proxy/server/version.h"
#include "proxy/thread_local/thread_local_impl.h"
#include "spdlog/spdlog.h"

namespace Proxy::Server {

using Admin::toJson;

Server::Server(Config::Options options, envoy::config::bootstrap::v3::Bootstrap bootstrap)
    : options_(std::move(options)), bootstrap_(std::move(bootstrap)) {
  start_time_ = time_source_.systemTime();
  dispatcher_ = std::make_unique<Event::DispatcherImpl>("main", time_source_);
  memory_releaser_ = std::make_unique<FreeMemoryReleaser>(*dispatcher_, store_);
  tls_ = std::make_unique<ThreadLocal::InstanceImpl>();
  tls_->registerThread(*dispatcher_, /*main_thread=*/true);
}

Server::~Server() {
  // Workers are stopped by shutdown() (or never started); what is left belongs to main.
  if (!tls_shutdown_) {
    tls_shutdown_ = true;
    tls_->shutdownGlobalThreading();
  }
  for (WorkerPtr& worker : workers_) {
    worker->stop();
  }
  admin_.reset();
  // The xDS client first (no more updates), then listener configs: they hold RDS providers,
  // whose thread-local slots go before the registry.
  xds_.reset();
  listener_manager_.reset();
  rds_manager_.reset();
  if (!tls_shutdown_) {
    tls_shutdown_ = true;
    tls_->shutdownGlobalThreading();
  }
  tls_->shutdownThread();
  cluster_manager_.reset();
  workers_.clear();
  dispatcher_->clearDeferredDeleteList();
}

absl::Status Server::initialize() {
  const bool validate = options_.mode == Config::Mode::Validate;
  const uint32_t concurrency = options_.concurrency;
  store_.gauge("server.concurrency").set(concurrency);
  store_.gauge("server.state").set(1);  // PRE_INITIALIZING until workers start

  // The overload manager: the global downstream connection limit listeners count against.
  {
    auto overload = OverloadManagerImpl::create(bootstrap_.overload_manager());
    if (!overload.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("overload_manager.", overload.status().message()));
    }
    overload_manager_ = *std::move(overload);
  }

  // Workers exist (and are registered with the thread-local registry) before any slot is set;
  // their threads start only once the configuration is in place.
  if (!validate) {
    for (uint32_t i = 0; i < concurrency; i++) {
      workers_.push_back(std::make_unique<Worker>(i, *tls_, time_source_));
    }
  }
  cluster_manager_ = std::make_unique<Upstream::ClusterManagerImpl>(*dispatcher_, *tls_, store_);
  // Static secrets first: TLS contexts of clusters and listeners name them.
  if (absl::Status status =
          secret_manager_.addStaticSecrets(bootstrap_.static_resources().secrets());
      !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("static_resources.", status.message()));
  }
  secret_manager_.setSdsSourceCheck(XdsConfig::sdsSourceCheck(bootstrap_));
  secret_manager_.enableFiles(*dispatcher_, store_);
  cluster_manager_->setSecretManager(&secret_manager_);
  for (WorkerPtr& worker : workers_) {
    worker->initialize(*cluster_manager_);
  }

  // Static clusters first, as Envoy: listeners may name them.
  const auto& resources = bootstrap_.static_resources();
  for (int i = 0; i < resources.clusters_size(); i++) {
    const absl::Status status = cluster_manager_->addOrUpdateCluster(resources.clusters(i), "",
                                                                     /*added_via_api=*/false);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("static_resources.clusters[", i, "]: ", status.message()));
    }
  }
  // Listeners, through the same manager LDS will use: static ones cannot be replaced by LDS.
  const bool dynamic =
      bootstrap_.has_dynamic_resources() && (bootstrap_.dynamic_resources().has_lds_config() ||
                                             bootstrap_.dynamic_resources().has_ads_config());
  rds_manager_ = std::make_unique<Router::RouteConfigProviderManager>(*dispatcher_, *tls_, store_);
  std::vector<Listener::WorkerHandle*> handles;
  for (WorkerPtr& worker : workers_) {
    handles.push_back(worker.get());
  }
  listener_manager_ = std::make_unique<Listener::ListenerManagerImpl>(
      *dispatcher_, std::move(handles), store_, dynamic ? rds_manager_.get() : nullptr,
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.drain_time));
  // Envoy's validate_clusters: against the clusters known now, active or warming.
  auto cluster_exists = [cm = cluster_manager_.get()](std::string_view name) {
    return cm->getClusterInfo(name) != nullptr || cm->isWarming(name);
  };
  listener_manager_->setClusterExistsCallback(cluster_exists);
  listener_manager_->setSecretManager(&secret_manager_);
  listener_manager_->setGlobalConnectionLimit(overload_manager_->globalConnectionLimit());
  rds_manager_->setClusterExistsCallback(cluster_exists);
  for (int i = 0; i < resources.listeners_size(); i++) {
    if (validate) {
      // Check without binding: the address may well be in use by the running instance.
      Listener::ListenerBuildContext context;
      context.workers = std::max<uint32_t>(concurrency, 1);
      context.store = &store_;
      context.rds = dynamic ? rds_manager_.get() : nullptr;
      context.bind_sockets = false;
      context.cluster_exists = cluster_exists;
      context.secrets = &secret_manager_;
      auto built = Listener::ListenerConfig::create(resources.listeners(i), context);
      if (!built.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("static_resources.listeners[", i, "] ('",
                                                       resources.listeners(i).name(),
                                                       "'): ", built.status().message()));
      }
      continue;
    }
    auto added = listener_manager_->addOrUpdateListener(resources.listeners(i), "",
                                                        /*added_via_api=*/false);
    if (!added.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("static_resources.listeners[", i, "] ('",
                                                     resources.listeners(i).name(),
                                                     "'): ", added.status().message()));
    }
    if (!*added) {
      return absl::InvalidArgumentError(absl::StrCat("static_resources.listeners[", i,
                                                     "]: duplicate listener name '",
                                                     resources.listeners(i).name(), "'"));
    }
  }
  // xDS: the client is built (and its config checked) now, started in run().
  xds_ = std::make_unique<XdsConfig>(*dispatcher_, store_, *cluster_manager_, *listener_manager_,
                                     *rds_manager_);
  xds_->setSecretManager(&secret_manager_);
  if (absl::Status status = xds_->initialize(bootstrap_); !status.ok()) {
    return status;
  }
  if (validate) {
    return absl::OkStatus();
  }

  // Admin, on the main thread. Envoy's default is no admin at all; we bind it only when the
  // bootstrap asks for it.
  if (bootstrap_.has_admin() && bootstrap_.admin().has_address()) {
    const auto& sa = bootstrap_.admin().address().socket_address();
    auto address = Network::Address::fromIpPort(sa.address(), sa.port_value());
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("admin.address.socket_address: ", address.status().message()));
    }
    Admin::AdminOptions admin_options;
    if (!bootstrap_.admin().ignore_global_conn_limit()) {
      // As Envoy: the admin listener counts against the global limit unless it opts out.
      admin_options.global_connection_limit = overload_manager_->globalConnectionLimit();
      admin_options.global_overflow =
          &store_.counter("listener.admin.downstream_global_cx_overflow");
    }
    auto admin = Admin::createAdmin(*dispatcher_, *address, std::move(admin_options));
    if (!admin.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("admin.address: ", admin.status().message()));
    }
    admin_ = *std::move(admin);
    registerAdminHandlers();
    spdlog::info("admin address: {}", admin_->address().asString());
    if (!options_.admin_address_path.empty()) {
      // Write then rename so a reader never sees a partial address.
      const std::string tmp = options_.admin_address_path + ".tmp";
      std::ofstream(tmp) << admin_->address().asString();
      if (::rename(tmp.c_str(), options_.admin_address_path.c_str()) != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--admin-address-path: cannot write '", options_.admin_address_path, "'"));
      }
    }
  }
  return absl::OkStatus();
}

void Server::startWorkers() {
  // Workers run first; then every warm listener goes onto all of them, and the server is live
  // when the last worker has them.
  for (WorkerPtr& worker : workers_) {
    worker->start([] {});
  }
  listener_manager_->startWorkers([this] {
    state_ = State::Live;
    store_.gauge("server.state").set(0);  // LIVE
    store_.gauge("server.live").set(1);
    spdlog::info("all {} workers started", workers_.size());
    listener_manager_->forEachActive([](const Listener::ListenerManagerImpl::ListenerView& l) {
      spdlog::info("listener '{}' on {}", l.config.name(), l.config.address().asString());
    });
  });
}

int Server::run() {
  ::signal(SIGPIPE, SIG_IGN);
  signals_.push_back(dispatcher_->listenForSignal(SIGTERM, [this] { startDrain("SIGTERM"); }));
  signals_.push_back(dispatcher_->listenForSignal(SIGINT, [this] { startDrain("SIGINT"); }));
  // Envoy's other signals, with Envoy's log lines: SIGUSR1 reopens the access logs
  // (logrotate), SIGHUP is eaten (hot restart is a separate process, not a signal). SIGUSR2 is
  // ignored too (Envoy 1.40 dies of it, exit 140, mid-response). Like every signal here, each
  // is a dispatcher event: the work runs on the main thread, in the loop.
  signals_.push_back(dispatcher_->listenForSignal(SIGUSR1, [] {
    // Reopened before the line is logged: a rotation script that waits for the line knows
    // that later requests go to the new files.
    absl::StatusOr<size_t> reopened = Filters::reopenAccessLogs();
    spdlog::info("caught SIGUSR1. Reopening access logs.");
    if (!reopened.ok()) {
      spdlog::error("{}", std::string(reopened.status().message()));
    }
  }));
  signals_.push_back(dispatcher_->listenForSignal(SIGHUP, [] {
    spdlog::warn("caught and eating SIGHUP. See documentation for how to hot restart.");
  }));
  signals_.push_back(
      dispatcher_->listenForSignal(SIGUSR2, [] { spdlog::info("caught SIGUSR2: ignored"); }));
  // Envoy's order: static clusters and listeners are in place; xDS brings CDS (and EDS), then
  // LDS (and RDS); workers start when every listener is warm.
  auto start_when_warm = [this] {
    listener_manager_->setAllWarmCallback([this] { startWorkers(); });
  };
  auto start_xds = [this, start_when_warm] {
    if (xds_->active()) {
      xds_->start(start_when_warm);
    } else {
      start_when_warm();
    }
  };
  // Secrets first: static clusters and listeners may wait for them (SDS).
  xds_->startSds();
  if (cluster_manager_->warmingClusterCount() > 0) {
    // Static clusters with health checks warm until their first round (Envoy's cluster
    // manager initialisation) before xDS starts. Once: a later warm-up (CDS) must not start
    // xDS again.
    cluster_manager_->setWarmingDoneCallback([this, start_xds] {
      if (!static_clusters_warm_) {
        static_clusters_warm_ = true;
        dispatcher_->post(start_xds);
      }
    });
  } else {
    static_clusters_warm_ = true;
    start_xds();
  }
  uptime_timer_ = dispatcher_->createTimer([this] {
    store_.gauge("server.uptime")
        .set(std::chrono::duration_cast<std::chrono::seconds>(time_source_.systemTime() -
                                                              start_time_)
                 .count());
    uptime_timer_->enableTimer(std::chrono::seconds(1));
  });
  uptime_timer_->enableTimer(std::chrono::milliseconds(0));
  dispatcher_->run(Event::Dispatcher::RunType::RunUntilExit);
  uptime_timer_.reset();
  shutdown();
  return exit_code_;
}

void Server::startDrain(std::string_view reason) {
  if (state_ == State::Draining) {
    // A second signal while draining: stop waiting.
    spdlog::warn("{} while draining: closing remaining connections now", reason);
    drain_deadline_ = time_source_.monotonicTime();
    checkDrainDone();
    return;
  }
  spdlog::info("{} received: draining listeners for up to {}s", reason,
               options_.drain_time.count());
  state_ = State::Draining;
  store_.gauge("server.state").set(2);  // DRAINING
  listener_manager_->stopAndDrainAll();
  drain_deadline_ = time_source_.monotonicTime() + options_.drain_time;
  drain_timer_ = dispatcher_->createTimer([this] { checkDrainDone(); });
  drain_timer_->enableTimer(std::chrono::milliseconds(50));
}

void Server::checkDrainDone() {
  // The listener gauges are atomics updated by the workers: reading them takes no lock and
  // needs no round trip.
  const int64_t active = listener_manager_->activeConnections();
  if (active > 0 && time_source_.monotonicTime() < drain_deadline_) {
    drain_timer_->enableTimer(std::chrono::milliseconds(50));
    return;
  }
  if (active > 0) {
    spdlog::info("drain time over: closing {} connection(s)", active);
  }
  dispatcher_->exit();
}

void Server::shutdown() {
  // Envoy's order: no more cross-thread posts, then stop every worker (each closes its
  // connections and drops its thread-local state on its own thread); the main thread's side
  // goes in the destructor.
  if (!tls_shutdown_) {
    tls_shutdown_ = true;
    tls_->shutdownGlobalThreading();
  }
  for (WorkerPtr& worker : workers_) {
    worker->stop();
  }
  spdlog::info("exiting");
}

void Server::registerAdminHandlers() {
  Admin::Admin& admin = *admin_;
  admin.addHandler("/ready", "print server state, return 200 if LIVE, otherwise return 503", false,
                   [this](const Admin::Request&, Admin::Response& r) {
                     switch (state_) {
                       case State::Live:
                         r.body = "LIVE\n";
                         break;
                       case State::Initializing:
                         r.code = 503;
                         r.body = "PRE_INITIALIZING\n";
                         break;
                       case State::Draining:
                         r.code = 503;
                         r.body = "DRAINING\n";
                         break;
                     }
                   });
  admin.addHandler("/stats", "print server stats", false,
                   [this](const Admin::Request& req, Admin::Response& r) {
                     if (req.query.count("format") && req.query.at("format") == "prometheus") {
                       r.body = store_.renderPrometheus();
                       return;
                     }
                     if (req.query.count("format") && req.query.at("format") == "json") {
                       r.content_type = "application/json";
                       r.body = Admin::renderStatsJson(store_);
                       return;
                     }
                     std::optional<std::string_view> filter;
                     if (req.query.count("filter")) {
                       filter = req.query.at("filter");
                     }
                     r.body = Admin::renderStatsText(store_, filter);
                   });
  admin.addHandler("/stats/prometheus", "print server stats in prometheus format", false,
                   [this](const Admin::Request&, Admin::Response& r) {
                     r.content_type = "text/plain; version=0.0.4";
                     r.body = store_.renderPrometheus();
                   });
  admin.addHandler("/certs", "print certs on machine", false,
                   [](const Admin::Request&, Admin::Response& r) {
                     r.content_type = "application/json";
                     r.body = Tls::renderCertificatesJson(std::chrono::system_clock::now());
                   });
  admin.addHandler("/server_info", "print server version/status information", false,
                   [this](const Admin::Request&, Admin::Response& r) {
                     r.content_type = "application/json";
                     r.body = serverInfoJson();
                   });
  admin.addHandler("/config_dump", "dump current Envoy configs", false,
                   [this](const Admin::Request& req, Admin::Response& r) {
                     r.content_type = "application/json";
                     r.body = Admin::renderConfigDump({bootstrap_, start_time_, *listener_manager_,
                                                       *cluster_manager_, *rds_manager_},
                                                      req.query.count("include_eds") > 0);
                   });
  admin.addHandler("/listeners", "print listener info", false,
                   [this](const Admin::Request& req, Admin::Response& r) {
                     const bool json =
                         req.query.count("format") && req.query.at("format") == "json";
                     if (json) {
                       r.content_type = "application/json";
                     }
                     r.body = Admin::renderListeners(*listener_manager_, json);
                   });
  admin.addHandler("/clusters", "upstream cluster status", false,
                   [this](const Admin::Request& req, Admin::Response& r) {
                     const bool json =
                         req.query.count("format") && req.query.at("format") == "json";
                     if (json) {
                       r.content_type = "application/json";
                     }
                     r.body = Admin::renderClusters(*cluster_manager_, json);
                   });
  admin.addHandler("/quitquitquit", "exit the server", true,
                   [this](const Admin::Request&, Admin::Response& r) {
                     r.body = "OK\n";
                     // Answer first; the drain starts on the next loop iteration.
                     dispatcher_->post([this] { startDrain("/quitquitquit"); });
                   });
  admin.addHandler("/drain_listeners", "drain listeners", true,
                   [this](const Admin::Request&, Admin::Response& r) {
                     r.body = "OK\n";
                     listener_manager_->stopAndDrainAll();
                   });
}

std::string Server::serverInfoJson() const {
  const char* state = state_ == State::Live       ? "LIVE"
                      : state_ == State::Draining ? "DRAINING"
                                                  : "PRE_INITIALIZING";
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(time_source_.systemTime() - start_time_)
          .count();
  return absl::StrCat(
      "{\"version\":", Json::quote(kVersionString), ",\"state\":", Json::quote(state),
      ",\"uptime_current_epoch\":", Json::quote(absl::StrCat(uptime, "s")),
      ",\"uptime_all_epochs\":", Json::quote(absl::StrCat(uptime, "s")),
      ",\"node\":", toJson(bootstrap_.node()),
      ",\"command_line_options\":{\"concurrency\":", options_.concurrency,
      ",\"drain_time\":", Json::quote(absl::StrCat(options_.drain_time.count(), "s")),
      ",\"config_path\":", Json::quote(options_.config_path),
      ",\"log_level\":", Json::quote(Config::logLevelName(options_.log_level)),
      ",\"service_node\":", Json::quote(options_.service_node),
      ",\"service_cluster\":", Json::quote(options_.service_cluster), "}}\n");
}

}  // namespace Proxy::Server
