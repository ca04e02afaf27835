#include "proxy/event/timer_impl.h"

#include <utility>

#include "proxy/common/assert.h"

namespace Proxy::Event {

TimerImpl::TimerImpl(DispatcherImpl& dispatcher, event_base& base, TimerCb cb)
    : dispatcher_(dispatcher), cb_(std::move(cb)) {
  ASSERT(cb_ != nullptr);
  evtimer_assign(&raw_event_, &base, &TimerImpl::onTimeout, this);
}

void TimerImpl::enableTimer(std::chrono::milliseconds duration) {
  ASSERT(dispatcher_.isThreadSafe());
  const int64_t ms = duration.count() > 0 ? duration.count() : 0;
  const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  event_add(&raw_event_, &tv);
}

void TimerImpl::disableTimer() {
  ASSERT(dispatcher_.isThreadSafe());
  event_del(&raw_event_);
}

bool TimerImpl::enabled() {
  ASSERT(dispatcher_.isThreadSafe());
  return evtimer_pending(&raw_event_, nullptr) != 0;
}

void TimerImpl::onTimeout(int, short, void* arg) {
  auto* self = static_cast<TimerImpl*>(arg);
  self->dispatcher_.updateApproximateMonotonicTime();
  // Last statement: the callback may destroy this timer (better: deferredDelete its owner).
  self->cb_();
}

}  // namespace Proxy::Event
