#include "proxy/event/libevent.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <mutex>

#include "proxy/common/assert.h"

namespace Proxy::Event::Libevent {

void ensureThreadingEnabled() {
  static std::once_flag once;
  std::call_once(
      once, [] { RELEASE_ASSERT(evthread_use_pthreads() == 0, "evthread_use_pthreads failed"); });
}

void BaseDeleter::operator()(event_base* base) const {
  event_base_free(base);
}

void EventDeleter::operator()(event* ev) const {
  event_free(ev);
}

BasePtr newBase() {
  ensureThreadingEnabled();
  BasePtr base(event_base_new());
  RELEASE_ASSERT(base != nullptr, "event_base_new failed");
  return base;
}

}  // namespace Proxy::Event::Libevent
