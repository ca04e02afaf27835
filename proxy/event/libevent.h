#pragma once

// Process-wide libevent setup and the RAII owners of heap-allocated libevent objects
// (ARCHITECTURE.md, convention 4). Internal to proxy/event: nothing outside this folder sees an
// event_base.

#include <memory>

struct event_base;
struct event;

namespace Proxy::Event::Libevent {

// Turns on libevent's pthread locking, once per process. It must precede the first event_base:
// only a base created afterwards gets a lock and a wake-up fd, which is what makes
// event_active() and event_base_loopexit() safe to call from other threads (post(), exit()).
void ensureThreadingEnabled();

struct BaseDeleter {
  void operator()(event_base* base) const;
};
using BasePtr = std::unique_ptr<event_base, BaseDeleter>;

struct EventDeleter {
  void operator()(event* ev) const;
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

// A new thread-safe event_base; aborts if libevent cannot create one (no usable backend).
BasePtr newBase();

}  // namespace Proxy::Event::Libevent
