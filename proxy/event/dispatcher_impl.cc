#include "proxy/event/dispatcher_impl.h"

#include <event2/event.h>

#include <utility>

#include "proxy/common/assert.h"
#include "proxy/event/file_event_impl.h"
#include "proxy/event/signal_impl.h"
#include "proxy/event/timer_impl.h"

namespace Proxy::Event {

DispatcherImpl::DispatcherImpl(std::string name, TimeSource& time_source)
    : name_(std::move(name)),
      time_source_(time_source),
      base_(Libevent::newBase()),
      post_event_(event_new(base_.get(), -1, 0, &DispatcherImpl::onPostWakeup, this)),
      post_next_iteration_event_(evtimer_new(base_.get(), &DispatcherImpl::onPostWakeup, this)),
      deferred_delete_event_(
          evtimer_new(base_.get(), &DispatcherImpl::onDeferredDeleteTimer, this)),
      owner_thread_id_(std::this_thread::get_id()),
      approximate_monotonic_time_(time_source_.monotonicTime()),
      loop_steady_time_(std::chrono::steady_clock::now()),
      real_time_source_(dynamic_cast<RealTimeSource*>(&time_source) != nullptr),
      current_to_delete_(&to_delete_1_) {
  RELEASE_ASSERT(post_event_ != nullptr && post_next_iteration_event_ != nullptr &&
                     deferred_delete_event_ != nullptr,
                 "event_new failed");
}

DispatcherImpl::~DispatcherImpl() {
  // The loop is no longer running (callers join the thread that ran it first), so the
  // destroying thread may act as the dispatcher thread for the objects destroyed below.
  owner_thread_id_ = std::this_thread::get_id();
  drainForShutdown();
}

void DispatcherImpl::drainForShutdown() {
  // Queued objects and posted callbacks may own file events or timers on base_, so they go
  // before base_ does. Their destructors may queue more of either, hence the loop.
  while (true) {
    std::vector<PostCb> unrun;
    {
      std::lock_guard<std::mutex> lock(post_lock_);
      unrun.swap(post_callbacks_);
    }
    if (unrun.empty() && to_delete_1_.empty() && to_delete_2_.empty()) {
      return;
    }
    unrun.clear();  // destroyed outside the lock: a destructor may post()
    clearDeferredDeleteList();
    clearDeferredDeleteList();
  }
}

FileEventPtr DispatcherImpl::createFileEvent(int fd, FileReadyCb cb, FileTriggerType trigger,
                                             uint32_t events) {
  ASSERT(isThreadSafe());
  return std::make_unique<FileEventImpl>(*this, *base_, fd, std::move(cb), trigger, events);
}

TimerPtr DispatcherImpl::createTimer(TimerCb cb) {
  ASSERT(isThreadSafe());
  return std::make_unique<TimerImpl>(*this, *base_, std::move(cb));
}

SignalEventPtr DispatcherImpl::listenForSignal(int signal_num, SignalCb cb) {
  ASSERT(isThreadSafe());
  return std::make_unique<SignalEventImpl>(*this, *base_, signal_num, std::move(cb));
}

void DispatcherImpl::deferredDelete(DeferredDeletablePtr&& to_delete) {
  ASSERT(isThreadSafe());
  if (to_delete == nullptr) {
    return;
  }
  current_to_delete_->push_back(std::move(to_delete));
  // The first object of a list arms the zero-delay timer; the rest ride along.
  if (current_to_delete_->size() == 1) {
    const timeval zero{0, 0};
    evtimer_add(deferred_delete_event_.get(), &zero);
  }
}

void DispatcherImpl::clearDeferredDeleteList() {
  ASSERT(isThreadSafe());
  std::vector<DeferredDeletablePtr>* to_delete = current_to_delete_;
  // A destructor in the pass below may call back in here; that pass is already running.
  if (deferred_deleting_ || to_delete->empty()) {
    return;
  }
  // Flip first: whatever this pass's destructors queue lands in the other list, which arms
  // the timer again, so it is destroyed on a later iteration rather than in this loop.
  current_to_delete_ = (to_delete == &to_delete_1_) ? &to_delete_2_ : &to_delete_1_;
  deferred_deleting_ = true;
  // Destroy in queue order, one by one; the vector itself does not change during the pass.
  for (DeferredDeletablePtr& object : *to_delete) {
    object.reset();
  }
  to_delete->clear();
  deferred_deleting_ = false;
}

void DispatcherImpl::post(PostCb cb) {
  bool wake_up;
  {
    std::lock_guard<std::mutex> lock(post_lock_);
    wake_up = post_callbacks_.empty() && !running_post_callbacks_;
    post_callbacks_.push_back(std::move(cb));
  }
  // Only the empty->non-empty transition wakes the loop: every callback queued before the
  // drain swaps the queue out rides on that one activation; what is queued while a batch runs
  // is picked up at its end (runPostCallbacks). event_active() takes the base's lock and
  // writes the base's wake-up fd if the loop is polling on another thread.
  if (wake_up) {
    event_active(post_event_.get(), EV_TIMEOUT, 0);
  }
}

void DispatcherImpl::onPostWakeup(int, short, void* arg) {
  auto* self = static_cast<DispatcherImpl*>(arg);
  self->updateApproximateMonotonicTime();
  self->runPostCallbacks();
}

void DispatcherImpl::runPostCallbacks() {
  ASSERT(isThreadSafe());
  std::vector<PostCb> callbacks;
  callbacks.swap(spare_post_callbacks_);
  {
    std::lock_guard<std::mutex> lock(post_lock_);
    callbacks.swap(post_callbacks_);
    running_post_callbacks_ = true;
  }
  // Run outside the lock: a callback may post() (to this or another dispatcher). Each one is
  // destroyed right after it ran, so its captures are released before the next runs.
  for (PostCb& cb : callbacks) {
    cb();
    cb = nullptr;
  }
  callbacks.clear();
  spare_post_callbacks_.swap(callbacks);
  bool more;
  {
    std::lock_guard<std::mutex> lock(post_lock_);
    running_post_callbacks_ = false;
    more = !post_callbacks_.empty();
  }
  // Posted during the batch: next iteration (see post_next_iteration_event_).
  if (more) {
    const timeval zero{0, 0};
    evtimer_add(post_next_iteration_event_.get(), &zero);
  }
}

void DispatcherImpl::onDeferredDeleteTimer(int, short, void* arg) {
  auto* self = static_cast<DispatcherImpl*>(arg);
  self->updateApproximateMonotonicTime();
  self->clearDeferredDeleteList();
}

void DispatcherImpl::run(RunType type) {
  owner_thread_id_ = std::this_thread::get_id();
  updateApproximateMonotonicTime();
  // libevent orders ready events arbitrarily; callbacks posted before run() (thread
  // registration, listener setup) must go before any I/O callback, so run them first.
  runPostCallbacks();

  int flags = 0;
  switch (type) {
    case RunType::Block:
      break;
    case RunType::NonBlock:
      flags = EVLOOP_NONBLOCK;
      break;
    case RunType::RunUntilExit:
      flags = EVLOOP_NO_EXIT_ON_EMPTY;
      break;
  }
  running_ = true;
  const int rc = event_base_loop(base_.get(), flags);
  running_ = false;
  RELEASE_ASSERT(rc != -1, "event_base_loop failed");
}

void DispatcherImpl::exit() {
  // Thread-safe because threading is enabled (see Libevent::ensureThreadingEnabled). Called
  // before run(), it makes the next run() return after its first iteration.
  event_base_loopexit(base_.get(), nullptr);
}

bool DispatcherImpl::isThreadSafe() const {
  return owner_thread_id_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

MonotonicTime DispatcherImpl::approximateMonotonicTime() const {
  ASSERT(isThreadSafe());
  return approximate_monotonic_time_;
}

void DispatcherImpl::updateApproximateMonotonicTime() {
  ASSERT(isThreadSafe());
  loop_steady_time_ = std::chrono::steady_clock::now();
  approximate_monotonic_time_ =
      real_time_source_ ? MonotonicTime(loop_steady_time_) : time_source_.monotonicTime();
}

}  // namespace Proxy::Event
