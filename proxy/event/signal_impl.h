#pragma once

// A libevent signal event: the handler only wakes the loop, and the callback runs on the
// dispatcher thread. Internal to proxy/event; built by DispatcherImpl::listenForSignal().

#include "proxy/event/dispatcher_impl.h"
#include "proxy/event/event_impl_base.h"

namespace Proxy::Event {

class SignalEventImpl : public SignalEvent, private EventImplBase {
 public:
  // Installs the handler now; destruction restores the previous disposition.
  SignalEventImpl(DispatcherImpl& dispatcher, event_base& base, int signal_num, SignalCb cb);

 private:
  static void onSignal(int signal_num, short what, void* arg);

  DispatcherImpl& dispatcher_;
  SignalCb cb_;
};

}  // namespace Proxy::Event
