#include "proxy/upstream/health_checker_impl.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "proxy/common/assert.h"

namespace Proxy::Upstream {

// The checkers (health_checker_http.cc, health_checker_tcp.cc).
HealthCheckerPtr createHttpHealthChecker(Event::Dispatcher& dispatcher,
                                         const HealthCheckConfig& config,
                                         std::shared_ptr<const ClusterInfoImpl> cluster,
                                         HealthChecker::HealthChangedCb changed,
                                         HealthChecker::InitialRoundDoneCb initial_round_done);
HealthCheckerPtr createGrpcHealthChecker(Event::Dispatcher& dispatcher,
                                         const HealthCheckConfig& config,
                                         std::shared_ptr<const ClusterInfoImpl> cluster,
                                         HealthChecker::HealthChangedCb changed,
                                         HealthChecker::InitialRoundDoneCb initial_round_done);
HealthCheckerPtr createTcpHealthChecker(Event::Dispatcher& dispatcher,
                                        const HealthCheckConfig& config,
                                        std::shared_ptr<const ClusterInfoImpl> cluster,
                                        HealthChecker::HealthChangedCb changed,
                                        HealthChecker::InitialRoundDoneCb initial_round_done);

namespace {

using envoy::config::core::v3::HealthCheck;

absl::Status fieldError(const std::string& field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

std::chrono::milliseconds toMilliseconds(const google::protobuf::Duration& d) {
  const int64_t ms = d.seconds() * 1000 + d.nanos() / 1000000;
  if (ms == 0 && (d.seconds() > 0 || d.nanos() > 0)) {
    return std::chrono::milliseconds(1);
  }
  return std::chrono::milliseconds(ms);
}

bool positive(const google::protobuf::Duration& d) {
  return d.seconds() > 0 || (d.seconds() == 0 && d.nanos() > 0);
}

bool negative(const google::protobuf::Duration& d) {
  return d.seconds() < 0 || d.nanos() < 0;
}

// A Payload as bytes: text is hex (Envoy's rule), binary is raw.
absl::StatusOr<std::string> payloadBytes(const HealthCheck::Payload& payload,
                                         const std::string& field) {
  if (payload.payload_case() == HealthCheck::Payload::kBinary) {
    return payload.binary();
  }
  const std::string& text = payload.text();
  std::string bytes;
  const bool hex = text.size() % 2 == 0 && std::all_of(text.begin(), text.end(), [](char c) {
                     return absl::ascii_isxdigit(c);
                   });
  if (hex) {
    bytes = absl::HexStringToBytes(text);
  }
  if (bytes.empty()) {
    return fieldError(field, absl::StrCat("invalid hex string '", text, "'"));
  }
  return bytes;
}

absl::Status statusRanges(
    const google::protobuf::RepeatedPtrField<envoy::type::v3::Int64Range>& ranges,
    const std::string& field, std::vector<std::pair<int64_t, int64_t>>& out) {
  out.clear();
  for (int i = 0; i < ranges.size(); i++) {
    const auto& range = ranges.Get(i);
    const std::string at = absl::StrCat(field, "[", i, "]");
    // Envoy's messages.
    if (range.start() < 100) {
      return fieldError(
          at, absl::StrCat("invalid http status range: expecting start >= 100, but found ",
                           range.start()));
    }
    if (range.end() > 600) {
      return fieldError(
          at,
          absl::StrCat("invalid http status range: expecting end <= 600, but found ", range.end()));
    }
    if (range.start() >= range.end()) {
      return fieldError(at,
                        absl::StrCat("invalid http status range: expecting start < end, but found ",
                                     range.start(), " and ", range.end()));
    }
    out.emplace_back(range.start(), range.end());
  }
  return absl::OkStatus();
}

bool validHeaderText(absl::string_view text) {
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

}  // namespace

absl::StatusOr<HealthCheckConfig> HealthCheckConfig::create(const HealthCheck& config,
                                                            const std::string& field) {
  HealthCheckConfig out;
  auto sub = [&field](absl::string_view name) { return absl::StrCat(field, ".", name); };

  if (!config.has_timeout() || !positive(config.timeout())) {
    return fieldError(sub("timeout"), "must be greater than 0");
  }
  if (!config.has_interval() || !positive(config.interval())) {
    return fieldError(sub("interval"), "must be greater than 0");
  }
  if (!config.has_unhealthy_threshold()) {
    return fieldError(sub("unhealthy_threshold"), "required");
  }
  if (!config.has_healthy_threshold()) {
    return fieldError(sub("healthy_threshold"), "required");
  }
  out.timeout = toMilliseconds(config.timeout());
  out.interval = toMilliseconds(config.interval());
  // Thresholds of 0 behave as 1 (the first failure or success flips the host), as in Envoy.
  out.unhealthy_threshold = std::max(1u, config.unhealthy_threshold().value());
  out.healthy_threshold = std::max(1u, config.healthy_threshold().value());

  for (const auto& [name, duration, target] : std::initializer_list<
           std::tuple<const char*, const google::protobuf::Duration*, std::chrono::milliseconds*>>{
           {"initial_jitter", config.has_initial_jitter() ? &config.initial_jitter() : nullptr,
            &out.initial_jitter},
           {"interval_jitter", config.has_interval_jitter() ? &config.interval_jitter() : nullptr,
            &out.interval_jitter}}) {
    if (duration != nullptr) {
      if (negative(*duration)) {
        return fieldError(sub(name), "must not be negative");
      }
      *target = toMilliseconds(*duration);
    }
  }
  out.interval_jitter_percent = config.interval_jitter_percent();

  // Optional intervals: greater than 0 when set. Defaults are Envoy's.
  out.unhealthy_interval = out.interval;
  out.healthy_edge_interval = out.interval;
  for (const auto& [name, present, duration, target] :
       std::initializer_list<std::tuple<const char*, bool, const google::protobuf::Duration*,
                                        std::chrono::milliseconds*>>{
           {"no_traffic_interval", config.has_no_traffic_interval(), &config.no_traffic_interval(),
            &out.no_traffic_interval},
           {"unhealthy_interval", config.has_unhealthy_interval(), &config.unhealthy_interval(),
            &out.unhealthy_interval},
           {"healthy_edge_interval", config.has_healthy_edge_interval(),
            &config.healthy_edge_interval(), &out.healthy_edge_interval}}) {
    if (present) {
      if (!positive(*duration)) {
        return fieldError(sub(name), "must be greater than 0");
      }
      *target = toMilliseconds(*duration);
    }
  }
  out.unhealthy_edge_interval = out.unhealthy_interval;
  out.no_traffic_healthy_interval = out.no_traffic_interval;
  for (const auto& [name, present, duration, target] :
       std::initializer_list<std::tuple<const char*, bool, const google::protobuf::Duration*,
                                        std::chrono::milliseconds*>>{
           {"unhealthy_edge_interval", config.has_unhealthy_edge_interval(),
            &config.unhealthy_edge_interval(), &out.unhealthy_edge_interval},
           {"no_traffic_healthy_interval", config.has_no_traffic_healthy_interval(),
            &config.no_traffic_healthy_interval(), &out.no_traffic_healthy_interval}}) {
    if (present) {
      if (!positive(*duration)) {
        return fieldError(sub(name), "must be greater than 0");
      }
      *target = toMilliseconds(*duration);
    }
  }
  if (config.has_reuse_connection()) {
    out.reuse_connection = config.reuse_connection().value();
  }
  if (config.has_alt_port()) {
    if (config.alt_port().value() == 0 || config.alt_port().value() > 65535) {
      return fieldError(sub("alt_port"),
                        absl::StrCat(config.alt_port().value(), " is not a valid port"));
    }
    out.alt_port = config.alt_port().value();
  }

  switch (config.health_checker_case()) {
    case HealthCheck::kHttpHealthCheck: {
      const HealthCheck::HttpHealthCheck& http = config.http_health_check();
      const std::string hf = sub("http_health_check");
      out.type = Type::Http;
      if (http.path().empty() || !validHeaderText(http.path())) {
        return fieldError(absl::StrCat(hf, ".path"), "required, a valid header value");
      }
      if (!validHeaderText(http.host())) {
        return fieldError(absl::StrCat(hf, ".host"),
                          "header values must not contain CR, LF or NUL");
      }
      out.path = http.path();
      out.host = http.host();
      switch (http.method()) {
        case envoy::config::core::v3::METHOD_UNSPECIFIED:
          out.method = "GET";
          break;
        case envoy::config::core::v3::CONNECT:
          return fieldError(absl::StrCat(hf, ".method"), "CONNECT is not allowed");
        default:
          out.method = envoy::config::core::v3::RequestMethod_Name(http.method());
      }
      if (http.expected_statuses_size() > 0) {
        if (absl::Status status =
                statusRanges(http.expected_statuses(), absl::StrCat(hf, ".expected_statuses"),
                             out.expected_statuses);
            !status.ok()) {
          return status;
        }
      }
      if (absl::Status status =
              statusRanges(http.retriable_statuses(), absl::StrCat(hf, ".retriable_statuses"),
                           out.retriable_statuses);
          !status.ok()) {
        return status;
      }
      for (int i = 0; i < http.request_headers_to_add_size(); i++) {
        const auto& option = http.request_headers_to_add(i);
        const std::string of = absl::StrCat(hf, ".request_headers_to_add[", i, "]");
        const std::string& key = option.header().key();
        const std::string& value = option.header().raw_value().empty()
                                       ? option.header().value()
                                       : option.header().raw_value();
        if (key.empty() || key[0] == ':' || absl::AsciiStrToLower(key) == "host" ||
            !validHeaderText(key) || key.find_first_of(" \t:") != std::string::npos) {
          return fieldError(absl::StrCat(of, ".header.key"),
                            absl::StrCat("invalid or unmodifiable header name '", key, "'"));
        }
        if (!validHeaderText(value)) {
          return fieldError(absl::StrCat(of, ".header.value"),
                            "header values must not contain CR, LF or NUL");
        }
        if (value.find('%') != std::string::npos) {
          return fieldError(absl::StrCat(of, ".header.value"),
                            "formatters (%...%) are not supported in health check headers");
        }
        auto action = option.append_action();
        if (option.has_append()) {
          if (action != envoy::config::core::v3::HeaderValueOption::APPEND_IF_EXISTS_OR_ADD) {
            return fieldError(of, "Both append and append_action are set and it's not allowed");
          }
          action = option.append().value()
                       ? envoy::config::core::v3::HeaderValueOption::APPEND_IF_EXISTS_OR_ADD
                       : envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD;
        }
        out.request_headers_to_add.push_back(
            HeaderToAdd{absl::AsciiStrToLower(key), value, action});
      }
      break;
    }
    case HealthCheck::kTcpHealthCheck: {
      const HealthCheck::TcpHealthCheck& tcp = config.tcp_health_check();
      const std::string tf = sub("tcp_health_check");
      out.type = Type::Tcp;
      if (tcp.has_send()) {
        absl::StatusOr<std::string> bytes = payloadBytes(tcp.send(), absl::StrCat(tf, ".send"));
        if (!bytes.ok()) {
          return bytes.status();
        }
        out.send = *std::move(bytes);
      }
      for (int i = 0; i < tcp.receive_size(); i++) {
        absl::StatusOr<std::string> bytes =
            payloadBytes(tcp.receive(i), absl::StrCat(tf, ".receive[", i, "]"));
        if (!bytes.ok()) {
          return bytes.status();
        }
        out.receive.push_back(*std::move(bytes));
      }
      break;
    }
    case HealthCheck::kGrpcHealthCheck: {
      const HealthCheck::GrpcHealthCheck& grpc = config.grpc_health_check();
      const std::string gf = sub("grpc_health_check");
      out.type = Type::Grpc;
      if (grpc.initial_metadata_size() > 0) {
        return fieldError(absl::StrCat(gf, ".initial_metadata"), "not supported");
      }
      if (!validHeaderText(grpc.authority())) {
        return fieldError(absl::StrCat(gf, ".authority"),
                          "header values must not contain CR, LF or NUL");
      }
      out.grpc_service_name = grpc.service_name();
      out.grpc_authority = grpc.authority();
      break;
    }
    case HealthCheck::kCustomHealthCheck:
      return fieldError(sub("custom_health_check"), "not supported");
    default:
      return fieldError(field, "one of http_health_check or tcp_health_check is required");
  }
  return out;
}

HealthCheckerStats::HealthCheckerStats(Stats::Scope scope)
    : attempt(scope.counter("attempt")),
      success(scope.counter("success")),
      failure(scope.counter("failure")),
      passive_failure(scope.counter("passive_failure")),
      network_failure(scope.counter("network_failure")),
      verify_cluster(scope.counter("verify_cluster")),
      healthy(scope.gauge("healthy")),
      degraded(scope.gauge("degraded")) {}

HealthCheckerPtr createHealthChecker(Event::Dispatcher& dispatcher, const HealthCheckConfig& config,
                                     std::shared_ptr<const ClusterInfoImpl> cluster,
                                     HealthChecker::HealthChangedCb health_changed,
                                     HealthChecker::InitialRoundDoneCb initial_round_done) {
  switch (config.type) {
    case HealthCheckConfig::Type::Http:
      return createHttpHealthChecker(dispatcher, config, std::move(cluster),
                                     std::move(health_changed), std::move(initial_round_done));
    case HealthCheckConfig::Type::Tcp:
      return createTcpHealthChecker(dispatcher, config, std::move(cluster),
                                    std::move(health_changed), std::move(initial_round_done));
    case HealthCheckConfig::Type::Grpc:
      return createGrpcHealthChecker(dispatcher, config, std::move(cluster),
                                     std::move(health_changed), std::move(initial_round_done));
  }
  return nullptr;
}

// ---- HealthCheckerImplBase ----

HealthCheckerImplBase::HealthCheckerImplBase(Event::Dispatcher& dispatcher,
                                             const HealthCheckConfig& config,
                                             std::shared_ptr<const ClusterInfoImpl> cluster,
                                             HealthChangedCb changed,
                                             InitialRoundDoneCb initial_round_done)
    : dispatcher_(dispatcher),
      config_(config),
      cluster_(std::move(cluster)),
      stats_(cluster_->statsScope().child("health_check")),
      health_changed_(std::move(changed)),
      initial_round_done_(std::move(initial_round_done)),
      rng_(std::random_device{}()) {
  notify_timer_ = dispatcher_.createTimer([this] {
    // Both may be pending; the health change first, so the round's last result is published
    // with the cluster.
    if (notify_changed_) {
      notify_changed_ = false;
      if (health_changed_ != nullptr) {
        health_changed_();
      }
    }
    if (notify_initial_round_) {
      notify_initial_round_ = false;
      if (initial_round_done_ != nullptr) {
        initial_round_done_();
      }
    }
  });
}

HealthCheckerImplBase::~HealthCheckerImplBase() {
  // Sessions first: their destructors close connections that refer to this checker.
  sessions_.clear();
}

void HealthCheckerImplBase::setHosts(const HostVector& hosts) {
  ASSERT(dispatcher_.isThreadSafe());
  absl::flat_hash_map<const HostHealthState*, SessionPtr> previous = std::move(sessions_);
  sessions_.clear();
  std::vector<Session*> started;
  for (const HostConstSharedPtr& host : hosts) {
    const HostHealthState* key = &host->healthState();
    if (sessions_.contains(key)) {
      continue;  // a duplicate endpoint: one session checks it
    }
    auto it = previous.find(key);
    if (it != previous.end()) {
      it->second->setHost(host);
      sessions_.emplace(key, std::move(it->second));
      previous.erase(it);
      continue;
    }
    // Envoy: a new host is failed until its first check passes.
    host->healthState().set(HealthFlag::FailedActiveHc);
    host->healthState().set(HealthFlag::PendingActiveHc);
    SessionPtr session = createSession(host);
    if (first_set_hosts_) {
      session->counted_in_initial_round_ = true;
      initial_round_pending_++;
    }
    started.push_back(session.get());
    sessions_.emplace(key, std::move(session));
  }
  first_set_hosts_ = false;
  // Hosts that left: their sessions end (a pending first check no longer holds the round).
  for (auto& [key, session] : previous) {
    if (session->counted_in_initial_round_ && initial_round_pending_ > 0) {
      initial_round_pending_--;
      if (initial_round_pending_ == 0) {
        notify_initial_round_ = true;
        notify_timer_->enableTimer(std::chrono::milliseconds(0));
      }
    }
  }
  previous.clear();
  refreshHealthyGauge();
  for (Session* session : started) {
    session->start();
  }
}

void HealthCheckerImplBase::refreshHealthyGauge() {
  int64_t healthy = 0;
  for (const auto& [key, session] : sessions_) {
    healthy += key->get(HealthFlag::FailedActiveHc) ? 0 : 1;
  }
  stats_.healthy.set(healthy);
}

void HealthCheckerImplBase::scheduleHealthChanged() {
  notify_changed_ = true;
  notify_timer_->enableTimer(std::chrono::milliseconds(0));
}

void HealthCheckerImplBase::onFirstCheckOf(Session& session) {
  if (!session.counted_in_initial_round_) {
    return;
  }
  session.counted_in_initial_round_ = false;
  if (initial_round_pending_ > 0 && --initial_round_pending_ == 0) {
    notify_initial_round_ = true;
    notify_timer_->enableTimer(std::chrono::milliseconds(0));
  }
}

std::chrono::milliseconds HealthCheckerImplBase::nextInterval(State state, bool change_pending) {
  // Envoy: until the cluster has made an upstream connection, the slow no_traffic interval.
  uint64_t base_ms;
  if (cluster_->stats().upstream_cx_total().value() > 0) {
    if (state == State::Unhealthy) {
      base_ms = change_pending ? config_.unhealthy_edge_interval.count()
                               : config_.unhealthy_interval.count();
    } else {
      base_ms = change_pending ? config_.healthy_edge_interval.count() : config_.interval.count();
    }
  } else {
    base_ms = state == State::Healthy && !change_pending
                  ? config_.no_traffic_healthy_interval.count()
                  : config_.no_traffic_interval.count();
  }
  return withJitter(base_ms, config_.interval_jitter);
}

std::chrono::milliseconds HealthCheckerImplBase::withJitter(uint64_t base_ms,
                                                            std::chrono::milliseconds jitter) {
  const uint64_t percent_jitter = config_.interval_jitter_percent * base_ms / 100;
  if (percent_jitter > 0) {
    base_ms += rng_() % percent_jitter;
  }
  if (jitter.count() > 0) {
    base_ms += rng_() % static_cast<uint64_t>(jitter.count());
  }
  return std::chrono::milliseconds(base_ms);
}

// ---- Session ----

HealthCheckerImplBase::Session::Session(HealthCheckerImplBase& parent, HostConstSharedPtr host)
    : parent_(parent), host_(std::move(host)) {
  interval_timer_ = parent_.dispatcher_.createTimer([this] { onIntervalBase(); });
  timeout_timer_ = parent_.dispatcher_.createTimer([this] { onTimeoutBase(); });
}

HealthCheckerImplBase::Session::~Session() = default;

void HealthCheckerImplBase::Session::start() {
  // Envoy: the first check right away, or after a random part of initial_jitter.
  const std::chrono::milliseconds jitter = parent_.config_.initial_jitter;
  if (jitter.count() > 0) {
    interval_timer_->enableTimer(
        std::chrono::milliseconds(parent_.rng_() % static_cast<uint64_t>(jitter.count())));
    return;
  }
  onIntervalBase();
}

void HealthCheckerImplBase::Session::onIntervalBase() {
  parent_.stats_.attempt.inc();
  timeout_timer_->enableTimer(parent_.config_.timeout);
  onInterval();
}

void HealthCheckerImplBase::Session::onTimeoutBase() {
  onTimeout();
  handleFailure(FailureType::NetworkTimeout);
}

HealthCheckerImplBase::Session::Transition HealthCheckerImplBase::Session::clearPending(
    Transition transition) {
  // The first result is a change even when the flag stays (a pending host was failed already).
  if (host_->healthState().get(HealthFlag::PendingActiveHc)) {
    host_->healthState().clear(HealthFlag::PendingActiveHc);
    if (transition == Transition::Unchanged) {
      transition = Transition::Changed;
    }
  }
  return transition;
}

void HealthCheckerImplBase::Session::completed() {
  timeout_timer_->disableTimer();
  if (first_check_) {
    first_check_ = false;
    parent_.onFirstCheckOf(*this);
  }
}

void HealthCheckerImplBase::Session::handleSuccess(bool /*degraded*/) {
  num_unhealthy_ = 0;
  HostHealthState& state = host_->healthState();
  Transition transition = Transition::Unchanged;
  if (state.get(HealthFlag::FailedActiveHc)) {
    // Envoy: the very first result counts at once (faster startup); later, healthy_threshold.
    if (first_check_ || ++num_healthy_ >= parent_.config_.healthy_threshold) {
      state.clear(HealthFlag::ActiveHcTimeout);
      state.clear(HealthFlag::FailedActiveHc);
      transition = Transition::Changed;
    } else {
      transition = Transition::ChangePending;
    }
  }
  transition = clearPending(transition);
  parent_.stats_.success.inc();
  if (parent_.check_success_ != nullptr) {
    parent_.check_success_(*host_);
  }
  if (transition == Transition::Changed) {
    parent_.refreshHealthyGauge();
    parent_.scheduleHealthChanged();
  }
  completed();
  interval_timer_->enableTimer(
      parent_.nextInterval(State::Healthy, transition == Transition::ChangePending));
}

void HealthCheckerImplBase::Session::handleFailure(FailureType type, bool retriable) {
  num_healthy_ = 0;
  HostHealthState& state = host_->healthState();
  Transition transition = Transition::Unchanged;
  if (!state.get(HealthFlag::FailedActiveHc)) {
    // Envoy: an active failure (a bad HTTP status) fails the host at once unless retriable;
    // network failures and timeouts count toward unhealthy_threshold.
    if ((type == FailureType::Active && !retriable) ||
        ++num_unhealthy_ >= parent_.config_.unhealthy_threshold) {
      state.set(HealthFlag::FailedActiveHc);
      transition = Transition::Changed;
    } else {
      transition = Transition::ChangePending;
    }
  }
  if (type == FailureType::NetworkTimeout && state.get(HealthFlag::FailedActiveHc)) {
    state.set(HealthFlag::ActiveHcTimeout);
  } else {
    state.clear(HealthFlag::ActiveHcTimeout);
  }
  transition = clearPending(transition);
  parent_.stats_.failure.inc();
  if (type != FailureType::Active) {
    parent_.stats_.network_failure.inc();
  }
  if (transition == Transition::Changed) {
    parent_.refreshHealthyGauge();
    parent_.scheduleHealthChanged();
  }
  completed();
  interval_timer_->enableTimer(
      parent_.nextInterval(State::Unhealthy, transition == Transition::ChangePending));
}

}  // namespace Proxy::Upstream
