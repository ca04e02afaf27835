#pragma once

// Watches one fd for readiness through libevent (epoll on Linux), level- or edge-triggered.
// Internal to proxy/event; built by DispatcherImpl::createFileEvent().

#include "proxy/event/dispatcher_impl.h"
#include "proxy/event/event_impl_base.h"

namespace Proxy::Event {

class FileEventImpl : public FileEvent, private EventImplBase {
 public:
  FileEventImpl(DispatcherImpl& dispatcher, event_base& base, int fd, FileReadyCb cb,
                FileTriggerType trigger, uint32_t events);

  // FileEvent
  // The injected events are merged with real readiness into one callback on a later loop
  // iteration; they survive a setEnabled() in between.
  void activate(uint32_t events) override;
  // Re-registers the fd with the new interest set (epoll_ctl), keeping the trigger type.
  void setEnabled(uint32_t events) override;

 private:
  static void onReady(int fd, short what, void* arg);
  // (Re)assigns raw_event_ for `events` and adds it to the loop when non-empty.
  void assignEvents(uint32_t events);

  DispatcherImpl& dispatcher_;
  event_base& base_;
  const int fd_;
  const FileTriggerType trigger_;
  FileReadyCb cb_;
  // activate() bits not yet delivered; raw_event_ is active while this is non-zero.
  uint32_t injected_events_ = 0;
};

}  // namespace Proxy::Event
