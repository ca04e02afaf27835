#pragma once

// A one-shot libevent timer (evtimer). Internal to proxy/event; built by
// DispatcherImpl::createTimer().
//
// Re-armed lazily (issue 14): idle and stream timers are pushed back or stopped on every
// request, and each libevent event_add()/event_del() is a min-heap update under the base's
// lock. A timer moved later, or stopped, leaves its libevent event where it is; when that event
// fires early, the timer checks its real deadline and arms again for the rest, or does nothing
// when stopped. Only a deadline earlier than the armed one touches libevent at once. The cost:
// a stopped or pushed-back timer may wake the loop once at its old deadline.

#include <chrono>

#include "proxy/event/dispatcher_impl.h"
#include "proxy/event/event_impl_base.h"

namespace Proxy::Event {

class TimerImpl : public Timer, private EventImplBase {
 public:
  TimerImpl(DispatcherImpl& dispatcher, event_base& base, TimerCb cb);

  // Timer
  // A zero duration runs the callback on the next loop iteration (after the next poll), never
  // inline. Enabling a pending timer moves its deadline.
  void enableTimer(std::chrono::milliseconds duration) override;
  void disableTimer() override;
  // False again once the callback starts, so the callback may re-arm the timer.
  bool enabled() override;

 private:
  using Clock = std::chrono::steady_clock;

  static void onTimeout(int fd, short what, void* arg);
  // Hands libevent the deadline `delay` from now.
  void arm(Clock::duration delay);

  DispatcherImpl& dispatcher_;
  TimerCb cb_;
  // What the owner asked for: whether the timer runs and when the callback is due.
  bool enabled_ = false;
  Clock::time_point deadline_;
  // What libevent holds: whether its event is pending and when it fires.
  bool armed_ = false;
  Clock::time_point armed_deadline_;
};

}  // namespace Proxy::Event
