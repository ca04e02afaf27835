#pragma once

// Envoy's outlier detector for one cluster (DetectorImpl), on the main thread. Workers report
// each request's outcome to the host's DetectorHostMonitorImpl (atomics); a consecutive-error
// threshold crossed there is posted to the detector, which ejects the host (its
// FailedOutlierCheck flag) unless max_ejection_percent forbids it or the enforcing_*
// percentage says no, and the cluster manager publishes the new host-set snapshot to the
// workers. Every `interval` the detector brings back hosts whose ejection time passed
// (base_ejection_time x a back-off that grows per ejection and shrinks per interval without one,
// capped by max_ejection_time, plus jitter) and runs the success-rate and failure-percentage
// checks over the requests of the last interval.
//
// Without split_external_local_origin_errors a local-origin failure (connect failure, reset)
// counts as a 503; with it, local-origin failures have their own consecutive counter and
// success rate.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/outlier_detection.pb.h"
#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "proxy/upstream/outlier_detection.h"

namespace Proxy::Upstream::Outlier {

// OutlierDetection, validated, with Envoy's defaults.
struct DetectorConfig {
  // Errors name the field: "outlier_detection.max_ejection_percent: ...".
  static absl::StatusOr<DetectorConfig> create(
      const envoy::config::cluster::v3::OutlierDetection& config);

  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds base_ejection_time{30000};
  std::chrono::milliseconds max_ejection_time{300000};
  std::chrono::milliseconds max_ejection_time_jitter{0};
  uint32_t max_ejection_percent = 10;
  uint32_t consecutive_5xx = 5;
  uint32_t consecutive_gateway_failure = 5;
  uint32_t consecutive_local_origin_failure = 5;
  uint32_t enforcing_consecutive_5xx = 100;
  uint32_t enforcing_consecutive_gateway_failure = 0;
  uint32_t enforcing_consecutive_local_origin_failure = 100;
  uint32_t enforcing_success_rate = 100;
  uint32_t enforcing_local_origin_success_rate = 100;
  uint32_t success_rate_minimum_hosts = 5;
  uint32_t success_rate_request_volume = 100;
  uint32_t success_rate_stdev_factor = 1900;  // thousandths
  uint32_t failure_percentage_threshold = 85;
  uint32_t enforcing_failure_percentage = 0;
  uint32_t enforcing_failure_percentage_local_origin = 0;
  uint32_t failure_percentage_minimum_hosts = 5;
  uint32_t failure_percentage_request_volume = 50;
  bool split_external_local_origin_errors = false;
  bool successful_active_health_check_uneject_host = true;
  bool always_eject_one_host = false;
};

enum class EjectionType {
  Consecutive5xx,
  ConsecutiveGatewayFailure,
  ConsecutiveLocalOriginFailure,
  SuccessRate,
  SuccessRateLocalOrigin,
  FailurePercentage,
  FailurePercentageLocalOrigin,
};

// Envoy's outlier_detection.* stats, under "cluster.<name>.outlier_detection.".
struct DetectorStats {
  explicit DetectorStats(Stats::Scope scope);
  Stats::Gauge& ejections_active;
  Stats::Counter& ejections_overflow;
  Stats::Counter& ejections_enforced_total;
  Stats::Counter& ejections_total;                 // deprecated upstream: enforced ejections
  Stats::Counter& ejections_consecutive_5xx;       // deprecated upstream: detected ones
  Stats::Counter& ejections_success_rate;          // deprecated upstream: detected ones
  Stats::Counter& ejections_detected_degradation;  // no degradation monitors here: stays 0
  // Indexed by EjectionType.
  Stats::Counter* detected[7];
  Stats::Counter* enforced[7];
};

class DetectorImpl;

// One host's counters, written by any worker. The success-rate buckets are two per origin:
// workers add to the current one, the detector swaps them every interval and reads the other.
class DetectorHostMonitorImpl : public DetectorHostMonitor,
                                public std::enable_shared_from_this<DetectorHostMonitorImpl> {
 public:
  DetectorHostMonitorImpl(std::weak_ptr<DetectorImpl> detector,
                          std::shared_ptr<const DetectorConfig> config,
                          Event::Dispatcher& main_dispatcher);

  // DetectorHostMonitor (any thread)
  void putHttpResponseCode(uint64_t code) override;
  void putResult(Result result, std::optional<uint64_t> code) override;

 private:
  friend class DetectorImpl;

  struct Bucket {
    std::atomic<uint64_t> success{0};
    std::atomic<uint64_t> total{0};
  };
  // Workers add to `current`; the detector swaps at each interval.
  struct Accumulator {
    Bucket buckets[2];
    std::atomic<Bucket*> current{&buckets[0]};
    void add(bool success) {
      Bucket* bucket = current.load(std::memory_order_acquire);
      bucket->total.fetch_add(1, std::memory_order_relaxed);
      if (success) {
        bucket->success.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // Main thread: start a new interval; returns the last one's (success rate %, volume).
    std::optional<std::pair<double, uint64_t>> swap();
  };

  void localOriginFailure();
  void localOriginNoFailure();
  // Main thread, from a worker's post.
  void notifyMain(EjectionType type);

  const std::weak_ptr<DetectorImpl> detector_;
  const std::shared_ptr<const DetectorConfig> config_;
  Event::Dispatcher& main_dispatcher_;
  std::atomic<uint32_t> consecutive_5xx_{0};
  std::atomic<uint32_t> consecutive_gateway_failure_{0};
  std::atomic<uint32_t> consecutive_local_origin_failure_{0};
  Accumulator external_;
  Accumulator local_;

  // Main thread only.
  uint32_t num_ejections_ = 0;
  uint32_t eject_time_backoff_ = 0;
  MonotonicTime last_ejection_time_;
  std::chrono::milliseconds jitter_{0};
  double success_rate_ = -1;
  double local_origin_success_rate_ = -1;
};

class DetectorImpl : public std::enable_shared_from_this<DetectorImpl> {
 public:
  // `changed` runs (main thread) after a host was ejected or brought back.
  static std::shared_ptr<DetectorImpl> create(Event::Dispatcher& main_dispatcher,
                                              const DetectorConfig& config,
                                              std::shared_ptr<const ClusterInfoImpl> cluster,
                                              std::function<void()> changed);
  ~DetectorImpl();

  // The cluster's hosts now (main thread, before they are published): hosts without a monitor
  // get one; hosts that left are forgotten (an ejected one no longer counts as ejected).
  void setHosts(const HostVector& hosts);
  // An active health check of `host` passed: Envoy brings an ejected host back at once
  // (successful_active_health_check_uneject_host).
  void onActiveHealthCheckSuccess(const Host& host);

  // For /clusters (-1: not computed in the last interval).
  double successRateAverage(bool local_origin) const {
    return local_origin ? local_average_ : external_average_;
  }
  double successRateEjectionThreshold(bool local_origin) const {
    return local_origin ? local_threshold_ : external_threshold_;
  }
  static double hostSuccessRate(const Host& host, bool local_origin);

  const DetectorStats& stats() const { return stats_; }

  // The worker-side monitors call this through a post.
  void onConsecutiveError(DetectorHostMonitorImpl& monitor, EjectionType type);
  // Envoy's threshold: mean - stdev_factor x stdev over the hosts' success rates.
  static std::pair<double, double> successRateThreshold(const std::vector<double>& rates,
                                                        double stdev_factor);

 private:
  struct Record {
    HostConstSharedPtr host;
    std::shared_ptr<DetectorHostMonitorImpl> monitor;
  };

  DetectorImpl(Event::Dispatcher& main_dispatcher, const DetectorConfig& config,
               std::shared_ptr<const ClusterInfoImpl> cluster, std::function<void()> changed);
  void onIntervalTimer();
  void ejectHost(Record& record, EjectionType type);
  void uneject(Record& record);
  void scheduleChanged();
  bool enforced(EjectionType type);
  void processSuccessRate(bool local_origin);

  Event::Dispatcher& main_dispatcher_;
  const std::shared_ptr<const DetectorConfig> config_;
  const std::shared_ptr<const ClusterInfoImpl> cluster_;
  DetectorStats stats_;
  std::function<void()> changed_;
  std::mt19937_64 rng_;
  Event::TimerPtr interval_timer_;
  Event::TimerPtr notify_timer_;  // zero-delay: runs `changed_` once per loop iteration
  // Keyed by monitor: one per endpoint (HostHealthState) whatever its Host objects.
  absl::flat_hash_map<const DetectorHostMonitorImpl*, Record> hosts_;
  uint32_t ejected_ = 0;
  double external_average_ = -1;
  double external_threshold_ = -1;
  double local_average_ = -1;
  double local_threshold_ = -1;
};

}  // namespace Proxy::Upstream::Outlier
