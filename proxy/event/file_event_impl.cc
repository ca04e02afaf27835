#include "proxy/event/file_event_impl.h"

#include <utility>

#include "proxy/common/assert.h"

namespace Proxy::Event {

namespace {

constexpr uint32_t kAllReadyTypes =
    FileReadyType::Read | FileReadyType::Write | FileReadyType::Closed;

short toLibeventFlags(uint32_t events) {
  short flags = 0;
  if (events & FileReadyType::Read) {
    flags |= EV_READ;
  }
  if (events & FileReadyType::Write) {
    flags |= EV_WRITE;
  }
  if (events & FileReadyType::Closed) {
    flags |= EV_CLOSED;
  }
  return flags;
}

uint32_t fromLibeventFlags(short what) {
  uint32_t events = 0;
  if (what & EV_READ) {
    events |= FileReadyType::Read;
  }
  if (what & EV_WRITE) {
    events |= FileReadyType::Write;
  }
  if (what & EV_CLOSED) {
    events |= FileReadyType::Closed;
  }
  return events;
}

}  // namespace

FileEventImpl::FileEventImpl(DispatcherImpl& dispatcher, event_base& base, int fd, FileReadyCb cb,
                             FileTriggerType trigger, uint32_t events)
    : dispatcher_(dispatcher), base_(base), fd_(fd), trigger_(trigger), cb_(std::move(cb)) {
  ASSERT(cb_ != nullptr);
  ASSERT((events & kAllReadyTypes) == events);
  evtimer_assign(&activation_event_, &base_, &FileEventImpl::onActivation, this);
  assignEvents(events);
}

FileEventImpl::~FileEventImpl() {
  event_del(&activation_event_);
}

void FileEventImpl::assignEvents(uint32_t events) {
  // EV_PERSIST: stay registered after each callback, as a socket watcher should.
  short flags = EV_PERSIST | toLibeventFlags(events);
  if (trigger_ == FileTriggerType::Edge) {
    flags |= EV_ET;
  }
  event_assign(&raw_event_, &base_, fd_, flags, &FileEventImpl::onReady, this);
  if (events != 0) {
    RELEASE_ASSERT(event_add(&raw_event_, nullptr) == 0, "event_add failed for a file event");
  }
}

void FileEventImpl::activate(uint32_t events) {
  ASSERT(dispatcher_.isThreadSafe());
  ASSERT(events != 0 && (events & kAllReadyTypes) == events);
  const bool scheduled = injected_events_ != 0;
  injected_events_ |= events;
  if (!scheduled && events == FileReadyType::Write) {
    activation_is_immediate_ = true;
    event_active(&activation_event_, EV_TIMEOUT, 0);
    return;
  }
  if (scheduled && !(activation_is_immediate_ && events != FileReadyType::Write)) {
    return;
  }
  // A Read (or Closed) waits for the next iteration, and a flush already made active for this
  // pass waits with it: a read pass must never run again before the loop polls.
  // (Also when a real event took the injected bits: the activation may still be queued for
  // this pass.)
  if (activation_is_immediate_) {
    event_del(&activation_event_);
    activation_is_immediate_ = false;
  }
  const timeval zero{0, 0};
  RELEASE_ASSERT(event_add(&activation_event_, &zero) == 0, "event_add failed for activation");
}

void FileEventImpl::setEnabled(uint32_t events) {
  ASSERT(dispatcher_.isThreadSafe());
  ASSERT((events & kAllReadyTypes) == events);
  // event_assign() needs a non-pending event. A pending activation is a separate timer and
  // stays scheduled.
  event_del(&raw_event_);
  assignEvents(events);
}

void FileEventImpl::setEnabled(uint32_t events, FileTriggerType trigger) {
  trigger_ = trigger;
  setEnabled(events);
}

void FileEventImpl::onActivation(int, short, void* arg) {
  // No readiness of its own: onReady() with nothing but the injected events (which a real
  // event in between may already have delivered).
  static_cast<FileEventImpl*>(arg)->activation_is_immediate_ = false;
  onReady(-1, 0, arg);
}

void FileEventImpl::onReady(int, short what, void* arg) {
  auto* self = static_cast<FileEventImpl*>(arg);
  const uint32_t events = fromLibeventFlags(what) | std::exchange(self->injected_events_, 0);
  if (events == 0) {
    return;
  }
  self->dispatcher_.updateApproximateMonotonicTime();
  // Last statement: the callback may destroy this object (its owner should use
  // deferredDelete() instead, but a close path that resets the event must stay safe).
  self->cb_(events);
}

}  // namespace Proxy::Event
