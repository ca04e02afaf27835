#pragma once

// Active health checking of one cluster's hosts (Envoy's HealthCheckerImplBase with its HTTP and
// TCP checkers). Main thread only: the cluster manager owns one checker per cluster, which keeps
// one session per host; a session's result sets or clears the host's FailedActiveHc flag, and the
// cluster manager publishes the new healthy lists to the workers through the host-set slot, as it
// does for an EDS update. So a check costs one connection per host per interval, whatever the
// number of workers.
//
// The state machine is Envoy's: a host starts failed (and pending) until its first check; the
// first result counts at once, later ones after unhealthy_threshold failures or
// healthy_threshold successes; an HTTP status outside expected_statuses fails the host at once
// (unless it is in retriable_statuses); network failures and timeouts count toward the
// threshold. The next check is scheduled after interval, unhealthy_interval or the *_edge_interval
// (while a change is pending), or no_traffic_interval while the cluster has never opened an
// upstream connection, plus jitter.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/core/v3/health_check.pb.h"
#include "proxy/event/dispatcher.h"
#include "proxy/network/connection.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

// One HealthCheck message, validated.
struct HealthCheckConfig {
  enum class Type { Http, Tcp, Grpc };

  // Errors name the field under `field` ("health_checks[0]"): "health_checks[0].timeout: ...".
  static absl::StatusOr<HealthCheckConfig> create(
      const envoy::config::core::v3::HealthCheck& config, const std::string& field);

  Type type = Type::Http;
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds initial_jitter{0};
  std::chrono::milliseconds interval_jitter{0};
  uint32_t interval_jitter_percent = 0;
  uint32_t unhealthy_threshold = 0;
  uint32_t healthy_threshold = 0;
  std::chrono::milliseconds no_traffic_interval{60000};
  std::chrono::milliseconds no_traffic_healthy_interval{60000};
  std::chrono::milliseconds unhealthy_interval{0};
  std::chrono::milliseconds unhealthy_edge_interval{0};
  std::chrono::milliseconds healthy_edge_interval{0};
  bool reuse_connection = true;
  std::optional<uint32_t> alt_port;

  // HTTP: the request, and the statuses that pass ([start, end) ranges).
  std::string host;  // empty: the cluster's name
  std::string path;
  std::string method = "GET";
  struct HeaderToAdd {
    std::string key;
    std::string value;
    envoy::config::core::v3::HeaderValueOption::HeaderAppendAction action;
  };
  std::vector<HeaderToAdd> request_headers_to_add;
  std::vector<std::pair<int64_t, int64_t>> expected_statuses{{200, 201}};
  std::vector<std::pair<int64_t, int64_t>> retriable_statuses;

  // gRPC: HealthCheckRequest.service, and the :authority (empty: the cluster's name).
  std::string grpc_service_name;
  std::string grpc_authority;

  // TCP: bytes to send (may be empty: connect only) and the blocks to find in order.
  std::string send;
  std::vector<std::string> receive;
};

// Envoy's health_check.* stats, under "cluster.<name>.health_check.".
struct HealthCheckerStats {
  explicit HealthCheckerStats(Stats::Scope scope);
  Stats::Counter& attempt;
  Stats::Counter& success;
  Stats::Counter& failure;
  Stats::Counter& passive_failure;  // never moves: no passive health checking here
  Stats::Counter& network_failure;
  Stats::Counter& verify_cluster;  // never moves: service_name_matcher is not supported
  Stats::Gauge& healthy;
  Stats::Gauge& degraded;
};

class HealthChecker {
 public:
  // Called on the main thread after a host's health changed (its FailedActiveHc flag), to
  // rebuild and publish the cluster's snapshot; and once the first round is complete.
  using HealthChangedCb = std::function<void()>;
  using InitialRoundDoneCb = std::function<void()>;

  virtual ~HealthChecker() = default;
  // The cluster's hosts now (main thread). A host seen for the first time is marked failed
  // and pending and checked at once (after initial_jitter); a host that left stops being
  // checked. Host objects that share a HostHealthState are one endpoint.
  virtual void setHosts(const HostVector& hosts) = 0;
  // Every host of the first setHosts() that is still there has completed one check.
  virtual bool initialRoundDone() const = 0;
  // Called after every passing check (outlier detection brings an ejected host back).
  virtual void setCheckSuccessCallback(std::function<void(const Host&)> cb) = 0;
};
using HealthCheckerPtr = std::unique_ptr<HealthChecker>;

// The checker `config` describes, for `cluster`. The callbacks run on `dispatcher`'s thread,
// never from inside setHosts().
HealthCheckerPtr createHealthChecker(Event::Dispatcher& dispatcher, const HealthCheckConfig& config,
                                     std::shared_ptr<const ClusterInfoImpl> cluster,
                                     HealthChecker::HealthChangedCb health_changed,
                                     HealthChecker::InitialRoundDoneCb initial_round_done);

// Envoy's HealthCheckerImplBase: the per-host state machine and its timers; subclasses send
// the checks. Exposed for the HTTP and TCP checkers and for unit tests (which plug in a
// session that the test completes by hand).
class HealthCheckerImplBase : public HealthChecker {
 public:
  enum class FailureType { Active, Network, NetworkTimeout };

  // One host's checks: a session sends a check in onInterval() and reports it with
  // handleSuccess() or handleFailure(); on timeout the base calls onTimeout() (abort the check)
  // and then counts a NetworkTimeout failure.
  class Session {
   public:
    Session(HealthCheckerImplBase& parent, HostConstSharedPtr host);
    virtual ~Session();

    const HostConstSharedPtr& host() const { return host_; }
    void setHost(HostConstSharedPtr host) { host_ = std::move(host); }
    void start();

   protected:
    virtual void onInterval() = 0;
    virtual void onTimeout() = 0;
    void handleSuccess(bool degraded = false);
    void handleFailure(FailureType type, bool retriable = false);

    HealthCheckerImplBase& parent_;
    HostConstSharedPtr host_;

   private:
    friend class HealthCheckerImplBase;
    enum class Transition { Unchanged, Changed, ChangePending };
    void onIntervalBase();
    void onTimeoutBase();
    Transition clearPending(Transition transition);
    void completed();

    Event::TimerPtr interval_timer_;
    Event::TimerPtr timeout_timer_;
    uint32_t num_healthy_ = 0;
    uint32_t num_unhealthy_ = 0;
    bool first_check_ = true;
    bool counted_in_initial_round_ = false;
  };
  using SessionPtr = std::unique_ptr<Session>;

  HealthCheckerImplBase(Event::Dispatcher& dispatcher, const HealthCheckConfig& config,
                        std::shared_ptr<const ClusterInfoImpl> cluster, HealthChangedCb changed,
                        InitialRoundDoneCb initial_round_done);
  ~HealthCheckerImplBase() override;

  // HealthChecker
  void setHosts(const HostVector& hosts) override;
  bool initialRoundDone() const override { return initial_round_pending_ == 0; }
  void setCheckSuccessCallback(std::function<void(const Host&)> cb) override {
    check_success_ = std::move(cb);
  }

  const HealthCheckConfig& config() const { return config_; }
  const ClusterInfoImpl& cluster() const { return *cluster_; }
  Event::Dispatcher& dispatcher() { return dispatcher_; }
  HealthCheckerStats& stats() { return stats_; }

 protected:
  virtual SessionPtr createSession(HostConstSharedPtr host) = 0;

 private:
  enum class State { Healthy, Unhealthy };
  std::chrono::milliseconds nextInterval(State state, bool change_pending);
  std::chrono::milliseconds withJitter(uint64_t base_ms, std::chrono::milliseconds jitter);
  void refreshHealthyGauge();
  // Coalesces the health_changed callback: one per loop iteration at most.
  void scheduleHealthChanged();
  void onFirstCheckOf(Session& session);

  Event::Dispatcher& dispatcher_;
  const HealthCheckConfig config_;
  const std::shared_ptr<const ClusterInfoImpl> cluster_;
  HealthCheckerStats stats_;
  HealthChangedCb health_changed_;
  InitialRoundDoneCb initial_round_done_;
  std::function<void(const Host&)> check_success_;
  std::mt19937_64 rng_;
  // Keyed by the endpoint's shared health state: a Host object replaced by another for the
  // same endpoint (a new weight) keeps its session.
  absl::flat_hash_map<const HostHealthState*, SessionPtr> sessions_;
  bool first_set_hosts_ = true;
  size_t initial_round_pending_ = 0;
  Event::TimerPtr notify_timer_;  // zero-delay: runs the coalesced callbacks
  bool notify_changed_ = false;
  bool notify_initial_round_ = false;
};

// Ends a check session's connection (HTTP and gRPC checkers): stops its callbacks and read
// filter, closes it without flushing (a check that failed or timed out has nothing worth
// sending) and deletes the client deferred, as one of its callbacks may be on the stack.
// `client` (a DeferredDeletable with a `connection`) is null afterwards.
template <class ClientT>
void closeHealthCheckClient(std::unique_ptr<ClientT>& client,
                            Network::ConnectionCallbacks& callbacks,
                            Event::Dispatcher& dispatcher) {
  if (client == nullptr) {
    return;
  }
  std::unique_ptr<ClientT> owned = std::move(client);
  owned->connection->removeConnectionCallbacks(callbacks);
  owned->connection->setReadFilter(nullptr);
  owned->connection->close(Network::ConnectionCloseType::NoFlush);
  dispatcher.deferredDelete(std::move(owned));
}

}  // namespace Proxy::Upstream
