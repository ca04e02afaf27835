#include "proxy/upstream/outlier_detection_impl.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/common/assert.h"

namespace Proxy::Upstream::Outlier {

namespace {

using envoy::config::cluster::v3::OutlierDetection;

constexpr size_t kTypes = 7;

bool isGatewayError(uint64_t code) {
  return code == 502 || code == 503 || code == 504;
}

std::chrono::milliseconds toMilliseconds(const google::protobuf::Duration& d) {
  const int64_t ms = d.seconds() * 1000 + d.nanos() / 1000000;
  if (ms == 0 && (d.seconds() > 0 || d.nanos() > 0)) {
    return std::chrono::milliseconds(1);
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace

absl::StatusOr<DetectorConfig> DetectorConfig::create(const OutlierDetection& config) {
  DetectorConfig out;
  auto error = [](absl::string_view field, absl::string_view reason) {
    return absl::InvalidArgumentError(absl::StrCat("outlier_detection.", field, ": ", reason));
  };
  for (const auto& [name, present, duration, target, allow_zero] :
       std::initializer_list<std::tuple<const char*, bool, const google::protobuf::Duration*,
                                        std::chrono::milliseconds*, bool>>{
           {"interval", config.has_interval(), &config.interval(), &out.interval, false},
           {"base_ejection_time", config.has_base_ejection_time(), &config.base_ejection_time(),
            &out.base_ejection_time, false},
           {"max_ejection_time", config.has_max_ejection_time(), &config.max_ejection_time(),
            &out.max_ejection_time, false},
           {"max_ejection_time_jitter", config.has_max_ejection_time_jitter(),
            &config.max_ejection_time_jitter(), &out.max_ejection_time_jitter, true}}) {
    if (!present) {
      continue;
    }
    const bool negative = duration->seconds() < 0 || duration->nanos() < 0;
    const bool zero = duration->seconds() == 0 && duration->nanos() == 0;
    if (negative || (zero && !allow_zero)) {
      return error(name, allow_zero ? "must not be negative" : "must be greater than 0");
    }
    *target = toMilliseconds(*duration);
  }
  // Percentages, at most 100.
  for (const auto& [name, present, value, target] :
       std::initializer_list<std::tuple<const char*, bool, uint32_t, uint32_t*>>{
           {"max_ejection_percent", config.has_max_ejection_percent(),
            config.max_ejection_percent().value(), &out.max_ejection_percent},
           {"enforcing_consecutive_5xx", config.has_enforcing_consecutive_5xx(),
            config.enforcing_consecutive_5xx().value(), &out.enforcing_consecutive_5xx},
           {"enforcing_consecutive_gateway_failure",
            config.has_enforcing_consecutive_gateway_failure(),
            config.enforcing_consecutive_gateway_failure().value(),
            &out.enforcing_consecutive_gateway_failure},
           {"enforcing_consecutive_local_origin_failure",
            config.has_enforcing_consecutive_local_origin_failure(),
            config.enforcing_consecutive_local_origin_failure().value(),
            &out.enforcing_consecutive_local_origin_failure},
           {"enforcing_success_rate", config.has_enforcing_success_rate(),
            config.enforcing_success_rate().value(), &out.enforcing_success_rate},
           {"enforcing_local_origin_success_rate", config.has_enforcing_local_origin_success_rate(),
            config.enforcing_local_origin_success_rate().value(),
            &out.enforcing_local_origin_success_rate},
           {"failure_percentage_threshold", config.has_failure_percentage_threshold(),
            config.failure_percentage_threshold().value(), &out.failure_percentage_threshold},
           {"enforcing_failure_percentage", config.has_enforcing_failure_percentage(),
            config.enforcing_failure_percentage().value(), &out.enforcing_failure_percentage},
           {"enforcing_failure_percentage_local_origin",
            config.has_enforcing_failure_percentage_local_origin(),
            config.enforcing_failure_percentage_local_origin().value(),
            &out.enforcing_failure_percentage_local_origin}}) {
    if (!present) {
      continue;
    }
    if (value > 100) {
      return error(name, absl::StrCat(value, " is above 100"));
    }
    *target = value;
  }
  // Counts: any value (0 for a consecutive threshold means "never", as in Envoy: the counter
  // never equals 0 after an increment).
  for (const auto& [present, value, target] :
       std::initializer_list<std::tuple<bool, uint32_t, uint32_t*>>{
           {config.has_consecutive_5xx(), config.consecutive_5xx().value(), &out.consecutive_5xx},
           {config.has_consecutive_gateway_failure(), config.consecutive_gateway_failure().value(),
            &out.consecutive_gateway_failure},
           {config.has_consecutive_local_origin_failure(),
            config.consecutive_local_origin_failure().value(),
            &out.consecutive_local_origin_failure},
           {config.has_success_rate_minimum_hosts(), config.success_rate_minimum_hosts().value(),
            &out.success_rate_minimum_hosts},
           {config.has_success_rate_request_volume(), config.success_rate_request_volume().value(),
            &out.success_rate_request_volume},
           {config.has_success_rate_stdev_factor(), config.success_rate_stdev_factor().value(),
            &out.success_rate_stdev_factor},
           {config.has_failure_percentage_minimum_hosts(),
            config.failure_percentage_minimum_hosts().value(),
            &out.failure_percentage_minimum_hosts},
           {config.has_failure_percentage_request_volume(),
            config.failure_percentage_request_volume().value(),
            &out.failure_percentage_request_volume}}) {
    if (present) {
      *target = value;
    }
  }
  out.split_external_local_origin_errors = config.split_external_local_origin_errors();
  if (config.has_successful_active_health_check_uneject_host()) {
    out.successful_active_health_check_uneject_host =
        config.successful_active_health_check_uneject_host().value();
  }
  if (config.has_always_eject_one_host()) {
    out.always_eject_one_host = config.always_eject_one_host().value();
  }
  return out;
}

DetectorStats::DetectorStats(Stats::Scope scope)
    : ejections_active(scope.gauge("ejections_active")),
      ejections_overflow(scope.counter("ejections_overflow")),
      ejections_enforced_total(scope.counter("ejections_enforced_total")),
      ejections_total(scope.counter("ejections_total")),
      ejections_consecutive_5xx(scope.counter("ejections_consecutive_5xx")),
      ejections_success_rate(scope.counter("ejections_success_rate")),
      ejections_detected_degradation(scope.counter("ejections_detected_degradation")) {
  // Envoy's names, in EjectionType order.
  static constexpr const char* kNames[kTypes] = {"consecutive_5xx",
                                                 "consecutive_gateway_failure",
                                                 "consecutive_local_origin_failure",
                                                 "success_rate",
                                                 "local_origin_success_rate",
                                                 "failure_percentage",
                                                 "local_origin_failure_percentage"};
  for (size_t i = 0; i < kTypes; i++) {
    detected[i] = &scope.counter(absl::StrCat("ejections_detected_", kNames[i]));
    enforced[i] = &scope.counter(absl::StrCat("ejections_enforced_", kNames[i]));
  }
}

// ---- DetectorHostMonitorImpl ----

DetectorHostMonitorImpl::DetectorHostMonitorImpl(std::weak_ptr<DetectorImpl> detector,
                                                 std::shared_ptr<const DetectorConfig> config,
                                                 Event::Dispatcher& main_dispatcher)
    : detector_(std::move(detector)),
      config_(std::move(config)),
      main_dispatcher_(main_dispatcher) {}

std::optional<std::pair<double, uint64_t>> DetectorHostMonitorImpl::Accumulator::swap() {
  Bucket* last = current.load(std::memory_order_acquire);
  Bucket* next = last == &buckets[0] ? &buckets[1] : &buckets[0];
  next->success.store(0, std::memory_order_relaxed);
  next->total.store(0, std::memory_order_relaxed);
  current.store(next, std::memory_order_release);
  const uint64_t total = last->total.load(std::memory_order_relaxed);
  if (total == 0) {
    return std::nullopt;
  }
  const uint64_t success = last->success.load(std::memory_order_relaxed);
  return std::make_pair(static_cast<double>(success) * 100.0 / static_cast<double>(total), total);
}

void DetectorHostMonitorImpl::putHttpResponseCode(uint64_t code) {
  const bool is_5xx = code >= 500 && code < 600;
  external_.add(!is_5xx);
  if (!is_5xx) {
    consecutive_5xx_.store(0, std::memory_order_relaxed);
    consecutive_gateway_failure_.store(0, std::memory_order_relaxed);
    return;
  }
  if (isGatewayError(code)) {
    if (consecutive_gateway_failure_.fetch_add(1) + 1 == config_->consecutive_gateway_failure) {
      notifyMain(EjectionType::ConsecutiveGatewayFailure);
    }
  } else {
    consecutive_gateway_failure_.store(0, std::memory_order_relaxed);
  }
  if (consecutive_5xx_.fetch_add(1) + 1 == config_->consecutive_5xx) {
    notifyMain(EjectionType::Consecutive5xx);
  }
}

void DetectorHostMonitorImpl::putResult(Result result, std::optional<uint64_t> code) {
  if (config_->split_external_local_origin_errors) {
    switch (result) {
      case Result::LocalOriginConnectSuccess:
      case Result::LocalOriginConnectSuccessFinal:
        localOriginNoFailure();
        return;
      case Result::LocalOriginTimeout:
      case Result::LocalOriginConnectFailed:
        localOriginFailure();
        return;
      case Result::ExtOriginRequestFailed:
        putHttpResponseCode(503);
        return;
      case Result::ExtOriginRequestSuccess:
        putHttpResponseCode(200);
        return;
    }
    return;
  }
  // Envoy: without the split a local-origin result counts as the status it produced (`code`) or
  // would produce.
  if (code.has_value()) {
    putHttpResponseCode(*code);
    return;
  }
  switch (result) {
    case Result::LocalOriginConnectSuccess:
      return;  // the HTTP status that follows says how it went
    case Result::LocalOriginConnectSuccessFinal:
    case Result::ExtOriginRequestSuccess:
      putHttpResponseCode(200);
      return;
    case Result::LocalOriginTimeout:
      putHttpResponseCode(504);
      return;
    case Result::LocalOriginConnectFailed:
      putHttpResponseCode(503);
      return;
    case Result::ExtOriginRequestFailed:
      putHttpResponseCode(500);
      return;
  }
}

void DetectorHostMonitorImpl::localOriginFailure() {
  local_.add(false);
  if (consecutive_local_origin_failure_.fetch_add(1) + 1 ==
      config_->consecutive_local_origin_failure) {
    notifyMain(EjectionType::ConsecutiveLocalOriginFailure);
  }
}

void DetectorHostMonitorImpl::localOriginNoFailure() {
  local_.add(true);
  consecutive_local_origin_failure_.store(0, std::memory_order_relaxed);
}

void DetectorHostMonitorImpl::notifyMain(EjectionType type) {
  // From a worker: the decision is the main thread's. The detector may be gone by then (the
  // cluster was replaced), hence the weak pointer.
  main_dispatcher_.post([detector = detector_, self = shared_from_this(), type] {
    if (std::shared_ptr<DetectorImpl> alive = detector.lock()) {
      alive->onConsecutiveError(*self, type);
    }
  });
}

// ---- DetectorImpl ----

std::shared_ptr<DetectorImpl> DetectorImpl::create(Event::Dispatcher& main_dispatcher,
                                                   const DetectorConfig& config,
                                                   std::shared_ptr<const ClusterInfoImpl> cluster,
                                                   std::function<void()> changed) {
  std::shared_ptr<DetectorImpl> detector(
      new DetectorImpl(main_dispatcher, config, std::move(cluster), std::move(changed)));
  detector->interval_timer_ =
      main_dispatcher.createTimer([raw = detector.get()] { raw->onIntervalTimer(); });
  detector->interval_timer_->enableTimer(config.interval);
  detector->notify_timer_ = main_dispatcher.createTimer([raw = detector.get()] {
    if (raw->changed_ != nullptr) {
      raw->changed_();
    }
  });
  return detector;
}

DetectorImpl::DetectorImpl(Event::Dispatcher& main_dispatcher, const DetectorConfig& config,
                           std::shared_ptr<const ClusterInfoImpl> cluster,
                           std::function<void()> changed)
    : main_dispatcher_(main_dispatcher),
      config_(std::make_shared<const DetectorConfig>(config)),
      cluster_(std::move(cluster)),
      stats_(cluster_->statsScope().child("outlier_detection")),
      changed_(std::move(changed)),
      rng_(std::random_device{}()) {}

DetectorImpl::~DetectorImpl() {
  // The hosts may outlive this detector (other snapshots); their ejections no longer count.
  stats_.ejections_active.sub(ejected_);
}

void DetectorImpl::setHosts(const HostVector& hosts) {
  ASSERT(main_dispatcher_.isThreadSafe());
  absl::flat_hash_map<const DetectorHostMonitorImpl*, Record> previous = std::move(hosts_);
  hosts_.clear();
  for (const HostConstSharedPtr& host : hosts) {
    HostHealthState& state = host->healthState();
    if (state.outlier_monitor == nullptr) {
      // A new endpoint, not yet published: its monitor is set before any worker sees it.
      state.outlier_monitor =
          std::make_shared<DetectorHostMonitorImpl>(weak_from_this(), config_, main_dispatcher_);
    }
    auto* monitor = static_cast<DetectorHostMonitorImpl*>(state.outlier_monitor.get());
    auto it = previous.find(monitor);
    if (it != previous.end()) {
      it->second.host = host;
      hosts_.emplace(monitor, std::move(it->second));
      previous.erase(it);
    } else if (!hosts_.contains(monitor)) {
      hosts_.emplace(
          monitor,
          Record{host, std::static_pointer_cast<DetectorHostMonitorImpl>(state.outlier_monitor)});
    }
  }
  for (auto& [monitor, record] : previous) {
    if (record.host->healthState().get(HealthFlag::FailedOutlierCheck)) {
      ejected_--;
      stats_.ejections_active.dec();
    }
  }
}

void DetectorImpl::onConsecutiveError(DetectorHostMonitorImpl& monitor, EjectionType type) {
  ASSERT(main_dispatcher_.isThreadSafe());
  auto it = hosts_.find(&monitor);
  if (it == hosts_.end() || it->second.host->healthState().get(HealthFlag::FailedOutlierCheck)) {
    return;  // gone meanwhile, or already ejected
  }
  // Envoy resets the counter that fired, so a new bout is needed for the next detection.
  switch (type) {
    case EjectionType::Consecutive5xx:
      stats_.ejections_consecutive_5xx.inc();
      monitor.consecutive_5xx_.store(0);
      break;
    case EjectionType::ConsecutiveGatewayFailure:
      monitor.consecutive_gateway_failure_.store(0);
      break;
    case EjectionType::ConsecutiveLocalOriginFailure:
      monitor.consecutive_local_origin_failure_.store(0);
      break;
    default:
      break;
  }
  ejectHost(it->second, type);
}

bool DetectorImpl::enforced(EjectionType type) {
  uint32_t percent = 0;
  switch (type) {
    case EjectionType::Consecutive5xx:
      percent = config_->enforcing_consecutive_5xx;
      break;
    case EjectionType::ConsecutiveGatewayFailure:
      percent = config_->enforcing_consecutive_gateway_failure;
      break;
    case EjectionType::ConsecutiveLocalOriginFailure:
      percent = config_->enforcing_consecutive_local_origin_failure;
      break;
    case EjectionType::SuccessRate:
      percent = config_->enforcing_success_rate;
      break;
    case EjectionType::SuccessRateLocalOrigin:
      percent = config_->enforcing_local_origin_success_rate;
      break;
    case EjectionType::FailurePercentage:
      percent = config_->enforcing_failure_percentage;
      break;
    case EjectionType::FailurePercentageLocalOrigin:
      percent = config_->enforcing_failure_percentage_local_origin;
      break;
  }
  return rng_() % 100 < percent;
}

void DetectorImpl::ejectHost(Record& record, EjectionType type) {
  stats_.detected[static_cast<size_t>(type)]->inc();
  // Envoy's cap, over every host of the cluster (not per priority).
  const double ejected_percent = 100.0 * (ejected_ + 1) / static_cast<double>(hosts_.size());
  const bool allowed = ejected_percent <= config_->max_ejection_percent ||
                       (config_->always_eject_one_host && ejected_ == 0);
  if (!allowed) {
    stats_.ejections_overflow.inc();
    return;
  }
  if (!enforced(type)) {
    return;
  }
  DetectorHostMonitorImpl& monitor = *record.monitor;
  record.host->healthState().set(HealthFlag::FailedOutlierCheck);
  ejected_++;
  stats_.ejections_active.inc();
  stats_.ejections_enforced_total.inc();
  stats_.ejections_total.inc();
  stats_.enforced[static_cast<size_t>(type)]->inc();
  monitor.num_ejections_++;
  monitor.last_ejection_time_ = main_dispatcher_.timeSource().monotonicTime();
  monitor.jitter_ = std::chrono::milliseconds(
      rng_() % (static_cast<uint64_t>(config_->max_ejection_time_jitter.count()) + 1));
  // The back-off grows per ejection until base x back-off passes max_ejection_time.
  if (monitor.eject_time_backoff_ * config_->base_ejection_time <
      config_->max_ejection_time + config_->base_ejection_time) {
    monitor.eject_time_backoff_++;
  }
  scheduleChanged();
}

void DetectorImpl::scheduleChanged() {
  // One snapshot for every ejection and return of this loop iteration.
  notify_timer_->enableTimer(std::chrono::milliseconds(0));
}

void DetectorImpl::uneject(Record& record) {
  record.host->healthState().clear(HealthFlag::FailedOutlierCheck);
  ejected_--;
  stats_.ejections_active.dec();
  // A fresh start: a near-threshold counter must not re-eject on the first error.
  record.monitor->consecutive_5xx_.store(0);
  record.monitor->consecutive_gateway_failure_.store(0);
  record.monitor->consecutive_local_origin_failure_.store(0);
  scheduleChanged();
}

void DetectorImpl::onActiveHealthCheckSuccess(const Host& host) {
  if (!config_->successful_active_health_check_uneject_host ||
      !host.healthState().get(HealthFlag::FailedOutlierCheck)) {
    return;
  }
  auto it = hosts_.find(
      static_cast<const DetectorHostMonitorImpl*>(host.healthState().outlier_monitor.get()));
  if (it != hosts_.end()) {
    uneject(it->second);
  }
}

void DetectorImpl::onIntervalTimer() {
  const MonotonicTime now = main_dispatcher_.timeSource().monotonicTime();
  for (auto& [key, record] : hosts_) {
    DetectorHostMonitorImpl& monitor = *record.monitor;
    if (!record.host->healthState().get(HealthFlag::FailedOutlierCheck)) {
      // A good interval takes one step off the back-off.
      if (monitor.eject_time_backoff_ > 0) {
        monitor.eject_time_backoff_--;
      }
      continue;
    }
    const auto base = config_->base_ejection_time;
    const auto ejection_time =
        std::min(base * monitor.eject_time_backoff_, std::max(base, config_->max_ejection_time)) +
        monitor.jitter_;
    if (now - monitor.last_ejection_time_ >= ejection_time) {
      uneject(record);
    }
  }
  processSuccessRate(/*local_origin=*/false);
  if (config_->split_external_local_origin_errors) {
    processSuccessRate(/*local_origin=*/true);
  } else {
    for (auto& [key, record] : hosts_) {
      record.monitor->local_.swap();
    }
  }
  interval_timer_->enableTimer(config_->interval);
}

std::pair<double, double> DetectorImpl::successRateThreshold(const std::vector<double>& rates,
                                                             double stdev_factor) {
  double sum = 0;
  for (double rate : rates) {
    sum += rate;
  }
  const double mean = sum / static_cast<double>(rates.size());
  double variance = 0;
  for (double rate : rates) {
    variance += (rate - mean) * (rate - mean);
  }
  variance /= static_cast<double>(rates.size());
  return {mean, mean - stdev_factor * std::sqrt(variance)};
}

void DetectorImpl::processSuccessRate(bool local_origin) {
  double& average = local_origin ? local_average_ : external_average_;
  double& threshold = local_origin ? local_threshold_ : external_threshold_;
  average = -1;
  threshold = -1;
  struct Candidate {
    Record* record;
    double rate;
    uint64_t volume;
  };
  std::vector<Candidate> candidates;
  for (auto& [key, record] : hosts_) {
    DetectorHostMonitorImpl& monitor = *record.monitor;
    std::optional<std::pair<double, uint64_t>> rate =
        (local_origin ? monitor.local_ : monitor.external_).swap();
    double& host_rate = local_origin ? monitor.local_origin_success_rate_ : monitor.success_rate_;
    host_rate = -1;
    if (!rate.has_value() || record.host->healthState().get(HealthFlag::FailedOutlierCheck)) {
      continue;
    }
    if (rate->second >= std::min(config_->success_rate_request_volume,
                                 config_->failure_percentage_request_volume)) {
      host_rate = rate->first;
    }
    candidates.push_back(Candidate{&record, rate->first, rate->second});
  }
  if (hosts_.size() < config_->success_rate_minimum_hosts &&
      hosts_.size() < config_->failure_percentage_minimum_hosts) {
    return;
  }

  // Success rate: below mean - factor x stdev of the hosts with enough requests.
  std::vector<double> rates;
  std::vector<Candidate*> valid;
  for (Candidate& candidate : candidates) {
    if (candidate.volume >= config_->success_rate_request_volume) {
      rates.push_back(candidate.rate);
      valid.push_back(&candidate);
    }
  }
  if (!valid.empty() && valid.size() >= config_->success_rate_minimum_hosts) {
    const auto [mean, limit] =
        successRateThreshold(rates, config_->success_rate_stdev_factor / 1000.0);
    average = mean;
    threshold = limit;
    for (Candidate* candidate : valid) {
      if (candidate->rate < limit &&
          !candidate->record->host->healthState().get(HealthFlag::FailedOutlierCheck)) {
        stats_.ejections_success_rate.inc();
        ejectHost(*candidate->record,
                  local_origin ? EjectionType::SuccessRateLocalOrigin : EjectionType::SuccessRate);
      }
    }
  }

  // Failure percentage: at least failure_percentage_threshold % of the requests failed.
  size_t enough = 0;
  for (const Candidate& candidate : candidates) {
    enough += candidate.volume >= config_->failure_percentage_request_volume ? 1 : 0;
  }
  if (enough == 0 || enough < config_->failure_percentage_minimum_hosts) {
    return;
  }
  for (Candidate& candidate : candidates) {
    if (candidate.volume >= config_->failure_percentage_request_volume &&
        100.0 - candidate.rate >= config_->failure_percentage_threshold &&
        !candidate.record->host->healthState().get(HealthFlag::FailedOutlierCheck)) {
      ejectHost(*candidate.record, local_origin ? EjectionType::FailurePercentageLocalOrigin
                                                : EjectionType::FailurePercentage);
    }
  }
}

double DetectorImpl::hostSuccessRate(const Host& host, bool local_origin) {
  const auto* monitor =
      static_cast<const DetectorHostMonitorImpl*>(host.healthState().outlier_monitor.get());
  if (monitor == nullptr) {
    return -1;
  }
  return local_origin ? monitor->local_origin_success_rate_ : monitor->success_rate_;
}

}  // namespace Proxy::Upstream::Outlier
