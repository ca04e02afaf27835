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
  ~FileEventImpl();

  // FileEvent
  // The injected events are merged with real readiness into one callback on the next loop
  // iteration (after the next poll, never in the current pass, as Envoy's FileEventImpl does);
  // they survive a setEnabled() in between.
  void activate(uint32_t events) override;
  // Re-registers the fd with the new interest set (epoll_ctl), keeping the trigger type.
  void setEnabled(uint32_t events) override;
  // The same with a new trigger type (libevent keeps one trigger type per fd and event).
  void setEnabled(uint32_t events, FileTriggerType trigger) override;

 private:
  static void onReady(int fd, short what, void* arg);
  static void onActivation(int fd, short what, void* arg);
  // (Re)assigns raw_event_ for `events` and adds it to the loop when non-empty.
  void assignEvents(uint32_t events);

  DispatcherImpl& dispatcher_;
  event_base& base_;
  const int fd_;
  FileTriggerType trigger_;
  FileReadyCb cb_;
  // activate() bits not yet delivered; activation_event_ is pending while this is non-zero.
  uint32_t injected_events_ = 0;
  // A zero-delay timer: libevent moves expired timers to the work list after polling, so one
  // added from a callback runs on the next iteration. event_active() would run it in the
  // current pass, and a connection that re-arms itself (reading on after a full buffer) would
  // keep the loop from polling, from its timers and deferred deletions, and the worker's other
  // connections from their turn (found by flow_control_integration_test: a pipelining client
  // kept 60,000 finished streams from being deleted). A Write alone (a flush of what a
  // callback wrote) is made active at once, in the current pass: a write pass does not
  // activate itself again (a Read it asks for is scheduled anew, as a timer, since
  // injected_events_ is cleared before the callback), and the zero-delay timer's add,
  // expiry and removal cost ~340 instructions twice per proxied request.
  event activation_event_{};
  // activation_event_ was made active for this pass (a Write alone), not added as a timer.
  bool activation_is_immediate_ = false;
};

}  // namespace Proxy::Event
