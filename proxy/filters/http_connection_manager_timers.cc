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
      sendLocalReply(late_code, "downstream duration timeout", 0, "max_duration_timeout");
      return;
    case StreamTimer::Route:
      router_->onRouteTimeout();
      return;
    case StreamTimer::Count:
      break;
  }
}

}  // namespace Proxy::Filters::Hcm
