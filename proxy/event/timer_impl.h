#pragma once

// A one-shot libevent timer (evtimer). Internal to proxy/event; built by
// DispatcherImpl::createTimer().

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
  static void onTimeout(int fd, short what, void* arg);

  DispatcherImpl& dispatcher_;
  TimerCb cb_;
};

}  // namespace Proxy::Event
