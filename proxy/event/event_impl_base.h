#pragma once

// Shared base of FileEventImpl, TimerImpl and SignalEventImpl: owns one libevent `struct event`
// embedded in the object, so a timer or socket watcher costs one allocation, not two, and
// unregisters it on destruction (ARCHITECTURE.md, convention 4). Internal to proxy/event.

#include <event2/event.h>
#include <event2/event_struct.h>

namespace Proxy::Event {

class EventImplBase {
 protected:
  EventImplBase() = default;
  ~EventImplBase() {
    // Value-initialisation zeroed ev_flags, so an event that was never assigned reads as
    // uninitialised and is skipped.
    if (event_initialized(&raw_event_)) {
      event_del(&raw_event_);
    }
  }
  EventImplBase(const EventImplBase&) = delete;
  EventImplBase& operator=(const EventImplBase&) = delete;

  event raw_event_{};
};

}  // namespace Proxy::Event
