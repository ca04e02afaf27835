// A downstream stream's timers (http_connection_manager_timers.h) and what each does when it
// fires (ActiveStream's timer methods; the stream itself is http_connection_manager_stream.cc).

#include "proxy/filters/http_connection_manager_timers.h"

#include <utility>

#include "proxy/filters/http_connection_manager_impl.h"

namespace Proxy::Filters::Hcm {

void StreamTimers::attach(StreamTimerCallbacks* owner) {
  disableAll();
  owner_ = owner;
}

Event::Timer& StreamTimers::get(StreamTimer which) {
  Event::TimerPtr& timer = timers_[static_cast<size_t>(which)];
  if (timer == nullptr) {
    timer = dispatcher_.createTimer([this, which] {
      if (owner_ != nullptr) {
        owner_->onStreamTimer(which);
      }
    });
  }
  return *timer;
}

void StreamTimers::disable(StreamTimer which) {
  const Event::TimerPtr& timer = timers_[static_cast<size_t>(which)];
  if (timer != nullptr) {
    timer->disableTimer();
  }
}

void StreamTimers::disableAll() {
  for (const Event::TimerPtr& timer : timers_) {
    if (timer != nullptr) {
      timer->disableTimer();
    }
  }
}

void ActiveStream::startTimers() {
  // Every stream timer runs from the stream's first byte (HTTP/1: the codec's message begin;
  // HTTP/2: its HEADERS frame), the header timeout included, so a client trickling its headers
  // is cut off.
  const HcmConfig& config = parent_.config();
  resetIdleTimer();
  const std::pair<StreamTimer, std::chrono::milliseconds> timers[] = {
      {StreamTimer::Request, config.request_timeout},
      {StreamTimer::RequestHeaders, config.request_headers_timeout},
      {StreamTimer::MaxDuration, config.max_stream_duration},
  };
  for (const auto& [which, timeout] : timers) {
    if (timeout.count() > 0) {
      timers_->enable(which, timeout);
    }
  }
}

void ActiveStream::resetIdleTimer() {
  if (idle_timeout_.count() > 0 && !finished_) {
    timers_->enable(StreamTimer::Idle, idle_timeout_);
  }
}

void ActiveStream::setIdleTimeout(std::chrono::milliseconds timeout) {
  idle_timeout_ = timeout;
  if (idle_timeout_.count() == 0) {
    timers_->disable(StreamTimer::Idle);
  }
}

void ActiveStream::refreshDurationTimeout() {
  using std::chrono::milliseconds;
  if (route_entry_ == nullptr) {
    return;
  }
  const Router::StreamDurationPolicy& policy = route_entry_->streamDurations();
  const milliseconds hcm_duration = parent_.config().max_stream_duration;
  const std::optional<milliseconds> grpc_timeout = Grpc::getGrpcTimeout(*request_headers_);
  milliseconds timeout{0};
  bool disable = false;
  if (!grpc_timeout.has_value() || !policy.grpc_timeout_header_max.has_value()) {
    // The route's max_stream_duration (0: none), else the connection manager's.
    if (policy.max_stream_duration.has_value()) {
      timeout = *policy.max_stream_duration;
      disable = timeout.count() == 0;
    } else if (hcm_duration.count() > 0) {
      timeout = hcm_duration;
    } else {
      disable = true;
    }
  } else {
    // grpc-timeout, capped by grpc_timeout_header_max (0: no cap), less the offset.
    timeout = *grpc_timeout;
    const milliseconds max = *policy.grpc_timeout_header_max;
    if (max.count() != 0 && timeout > max) {
      timeout = max;
    }
    if (timeout.count() != 0 && policy.grpc_timeout_header_offset.has_value()) {
      const milliseconds offset = *policy.grpc_timeout_header_offset;
      timeout = offset < timeout ? timeout - offset : milliseconds(0);
    }
  }
  const bool rewrite_header =
      policy.using_new_timeouts && Grpc::isGrpcRequestHeaders(*request_headers_);
  if (disable) {
    // As Envoy, which only has a timer to disable when the connection manager set one (and so
    // no timer is made here for nothing: one per HTTP/2 stream).
    if (hcm_duration.count() > 0) {
      timers_->disable(StreamTimer::MaxDuration);
      if (rewrite_header) {
        request_headers_->remove("grpc-timeout");
      }
    }
    return;
  }
  // The upstream learns the deadline that applies.
  if (rewrite_header) {
    Grpc::toGrpcTimeout(timeout, *request_headers_);
  }
  const auto used = std::chrono::duration_cast<milliseconds>(
      parent_.connection().dispatcher().approximateMonotonicTime() - info_.start_monotonic);
  timers_->enable(StreamTimer::MaxDuration, timeout > used ? timeout - used : milliseconds(0));
}

void ActiveStream::onStreamTimer(StreamTimer which) {
  HcmStats& stats = parent_.stats();
  // Envoy 1.40 answers its stream timeouts 504 once the whole request was received (what is
  // late is the response) and 408 before; the request timeouts are 408 (they cannot fire later).
  // Once the response started, sendLocalReply() resets the stream instead (HTTP/2: this stream
  // alone; HTTP/1: the connection).
  const uint32_t late_code = request_complete_ ? 504 : 408;
  switch (which) {
    case StreamTimer::Idle:
      stats.downstream_rq_idle_timeout.inc();
      sendLocalReply(late_code, "stream timeout", StreamInfo::StreamIdleTimeout,
                     "stream_idle_timeout");
      return;
    case StreamTimer::Request:
      stats.downstream_rq_timeout.inc();
      sendLocalReply(408, "request timeout", 0, "request_overall_timeout");
      return;
    case StreamTimer::RequestHeaders:
      stats.downstream_rq_header_timeout.inc();
      sendLocalReply(408, "request header timeout", 0, "request_header_timeout");
      return;
    case StreamTimer::MaxDuration:
      stats.downstream_rq_max_duration_reached.inc();
      sendLocalReply(late_code, "downstream duration timeout", 0, "max_duration_timeout",
                     Grpc::Status::DeadlineExceeded);
      return;
    case StreamTimer::Route:
      router_->onRouteTimeout();
      return;
    case StreamTimer::Count:
      break;
  }
}

}  // namespace Proxy::Filters::Hcm
