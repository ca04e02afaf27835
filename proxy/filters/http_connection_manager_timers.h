#pragma once

// The timers of one downstream stream (Envoy's ActiveStream timers): stream idle (or the route's
// idle_timeout), request, request headers, max stream duration, and the route timeout the router
// arms. Envoy keeps them per stream; so do we. An HTTP/2 stream owns its StreamTimers; an HTTP/1
// connection carries one stream at a time, so it keeps one StreamTimers that each stream attaches
// to in turn (no timer allocation per request there). The timers a connection has alone (idle
// while no stream is active, max_connection_duration, the drain sequence) are the connection
// manager's own (http_connection_manager.cc). Dispatcher-thread only.

#include <chrono>
#include <cstddef>

#include "proxy/common/free_list.h"
#include "proxy/event/dispatcher.h"

namespace Proxy::Filters::Hcm {

enum class StreamTimer : size_t {
  Idle,            // stream_idle_timeout, or the route's idle_timeout: no activity either way
  Request,         // request_timeout: the whole request received
  RequestHeaders,  // request_headers_timeout: the request's headers received
  MaxDuration,     // common_http_protocol_options.max_stream_duration
  Route,           // the route's timeout (armed by the router)
  Count,
};

// Who hears a timer fire: the stream the timers are attached to.
class StreamTimerCallbacks {
 public:
  virtual ~StreamTimerCallbacks() = default;
  virtual void onStreamTimer(StreamTimer which) = 0;
};

// Made per HTTP/2 stream: from the thread's free list (issue 11).
class StreamTimers : public Common::ThreadLocalFreeList<StreamTimers> {
 public:
  explicit StreamTimers(Event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

  // Hands the timers to `owner` (nullptr: to nobody), every one of them disabled.
  void attach(StreamTimerCallbacks* owner);
  // The timer, created on first use: a config that arms none allocates none.
  Event::Timer& get(StreamTimer which);
  void enable(StreamTimer which, std::chrono::milliseconds timeout) {
    get(which).enableTimer(timeout);
  }
  void disable(StreamTimer which);
  void disableAll();

 private:
  Event::Dispatcher& dispatcher_;
  StreamTimerCallbacks* owner_ = nullptr;
  Event::TimerPtr timers_[static_cast<size_t>(StreamTimer::Count)];
};

}  // namespace Proxy::Filters::Hcm
