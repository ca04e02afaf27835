#include "proxy/event/timer_impl.h"

#include <utility>

#include "proxy/common/assert.h"

namespace Proxy::Event {

namespace {

// A deadline this close when libevent fires is taken as reached: libevent's clock and
// steady_clock round differently, and arming again for a few microseconds would cost a loop
// iteration for nothing.
constexpr std::chrono::microseconds kSlack{500};

}  // namespace

TimerImpl::TimerImpl(DispatcherImpl& dispatcher, event_base& base, TimerCb cb)
    : dispatcher_(dispatcher), cb_(std::move(cb)) {
  ASSERT(cb_ != nullptr);
  evtimer_assign(&raw_event_, &base, &TimerImpl::onTimeout, this);
}

void TimerImpl::enableTimer(std::chrono::milliseconds duration) {
  ASSERT(dispatcher_.isThreadSafe());
  const Clock::duration delay =
      duration.count() > 0 ? Clock::duration(duration) : Clock::duration::zero();
  // The loop's time (refreshed per event), as libevent's own event_add() uses its cached time.
  const Clock::time_point now = dispatcher_.loopSteadyTime();
  enabled_ = true;
  deadline_ = now + delay;
  if (armed_ && deadline_ >= armed_deadline_ && delay > Clock::duration::zero()) {
    return;  // libevent fires first; onTimeout() arms again for the rest
  }
  armed_deadline_ = deadline_;
  arm(delay);
}

void TimerImpl::arm(Clock::duration delay) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(delay).count();
  const timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  RELEASE_ASSERT(event_add(&raw_event_, &tv) == 0, "event_add failed for a timer");
  armed_ = true;
}

void TimerImpl::disableTimer() {
  ASSERT(dispatcher_.isThreadSafe());
  // libevent's event stays armed: a timer stopped and started again per request costs no
  // event_del()/event_add() pair. onTimeout() ignores it while disabled.
  enabled_ = false;
}

bool TimerImpl::enabled() {
  ASSERT(dispatcher_.isThreadSafe());
  return enabled_;
}

void TimerImpl::onTimeout(int, short, void* arg) {
  auto* self = static_cast<TimerImpl*>(arg);
  self->armed_ = false;
  if (!self->enabled_) {
    return;
  }
  self->dispatcher_.updateApproximateMonotonicTime();
  const Clock::time_point now = self->dispatcher_.loopSteadyTime();
  if (self->deadline_ - now > kSlack) {
    // Pushed back since it was armed: wait for the rest.
    self->armed_deadline_ = self->deadline_;
    self->arm(self->deadline_ - now);
    return;
  }
  self->enabled_ = false;
  // Last statement: the callback may destroy this timer (better: deferredDelete its owner).
  self->cb_();
}

}  // namespace Proxy::Event
