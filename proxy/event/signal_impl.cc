#include "proxy/event/signal_impl.h"

#include <utility>

#include "proxy/common/assert.h"

namespace Proxy::Event {

SignalEventImpl::SignalEventImpl(DispatcherImpl& dispatcher, event_base& base, int signal_num,
                                 SignalCb cb)
    : dispatcher_(dispatcher), cb_(std::move(cb)) {
  ASSERT(cb_ != nullptr);
  // evsignal_assign sets EV_SIGNAL | EV_PERSIST: the event stays armed after each delivery.
  evsignal_assign(&raw_event_, &base, signal_num, &SignalEventImpl::onSignal, this);
  RELEASE_ASSERT(evsignal_add(&raw_event_, nullptr) == 0, "evsignal_add failed");
}

void SignalEventImpl::onSignal(int, short, void* arg) {
  auto* self = static_cast<SignalEventImpl*>(arg);
  self->dispatcher_.updateApproximateMonotonicTime();
  self->cb_();
}

}  // namespace Proxy::Event
