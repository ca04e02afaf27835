#include "proxy/thread_local/thread_local_impl.h"

#include <algorithm>
#include <utility>

#include "proxy/common/assert.h"

namespace Proxy::ThreadLocal {

namespace {

// What each registered thread holds. Only its own thread touches it (through posted
// callbacks on workers, inline on main), so it needs no lock.
struct ThreadLocalData {
  Event::Dispatcher* dispatcher = nullptr;
  std::vector<ThreadLocalObjectSharedPtr> objects;  // indexed by slot
};

thread_local ThreadLocalData thread_local_data;

ThreadLocalObjectSharedPtr& entry(uint32_t index) {
  std::vector<ThreadLocalObjectSharedPtr>& objects = thread_local_data.objects;
  if (objects.size() <= index) {
    objects.resize(index + 1);
  }
  return objects[index];
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SlotImpl

SlotImpl::SlotImpl(InstanceImpl& parent, uint32_t index)
    : parent_(parent), index_(index), still_alive_guard_(std::make_shared<bool>(true)) {}

SlotImpl::~SlotImpl() {
  parent_.removeSlot(index_);
}

ThreadLocalObjectSharedPtr SlotImpl::get() {
  const std::vector<ThreadLocalObjectSharedPtr>& objects = thread_local_data.objects;
  return index_ < objects.size() ? objects[index_] : nullptr;
}

bool SlotImpl::currentThreadRegistered() {
  return get() != nullptr;
}

std::function<void()> SlotImpl::guarded(std::function<void()> cb) const {
  return [alive = std::weak_ptr<bool>(still_alive_guard_), cb = std::move(cb)] {
    if (!alive.expired()) {
      cb();
    }
  };
}

std::function<void()> SlotImpl::dataCallback(UpdateCb cb) const {
  // Captures the index by value: the slot object itself may be gone when this runs, and then
  // the guard stops us before the index (possibly reused by now) is looked at.
  return [alive = std::weak_ptr<bool>(still_alive_guard_), cb = std::move(cb), index = index_] {
    if (!alive.expired()) {
      cb(entry(index));
    }
  };
}

void SlotImpl::set(InitializeCb cb) {
  ASSERT(parent_.isMainThread());
  ASSERT(!parent_.isShutdown());
  ASSERT(parent_.main_dispatcher_ != nullptr);
  for (Event::Dispatcher* dispatcher : parent_.worker_dispatchers_) {
    // The object is built on the worker, by the worker, so it belongs to that thread.
    dispatcher->post(guarded([index = index_, cb, dispatcher] { entry(index) = cb(*dispatcher); }));
  }
  entry(index_) = cb(*parent_.main_dispatcher_);
}

void SlotImpl::runOnAllThreads(UpdateCb cb) {
  parent_.runOnAllThreads(dataCallback(std::move(cb)));
}

void SlotImpl::runOnAllThreads(UpdateCb cb, std::function<void()> all_done) {
  parent_.runOnAllThreads(dataCallback(std::move(cb)), guarded(std::move(all_done)));
}

// ---------------------------------------------------------------------------------------------
// InstanceImpl

InstanceImpl::InstanceImpl() : main_thread_id_(std::this_thread::get_id()) {}

InstanceImpl::~InstanceImpl() {
  ASSERT(isMainThread());
  ASSERT(isShutdown());
  // Main's entries go now if shutdownThread() was not called on main, so that the next
  // instance in this process (tests) starts from an empty vector.
  shutdownThread();
  thread_local_data.dispatcher = nullptr;
}

SlotPtr InstanceImpl::allocateSlot() {
  ASSERT(isMainThread());
  ASSERT(!isShutdown());
  uint32_t index;
  if (free_slot_indexes_.empty()) {
    index = next_slot_index_++;
  } else {
    index = free_slot_indexes_.front();
    free_slot_indexes_.pop_front();
  }
  return std::make_unique<SlotImpl>(*this, index);
}

void InstanceImpl::registerThread(Event::Dispatcher& dispatcher, bool main_thread) {
  ASSERT(isMainThread());
  ASSERT(!isShutdown());
  if (main_thread) {
    ASSERT(main_dispatcher_ == nullptr);
    main_dispatcher_ = &dispatcher;
    thread_local_data.dispatcher = &dispatcher;
    return;
  }
  ASSERT(main_dispatcher_ != nullptr);  // main registers first
  ASSERT(std::find(worker_dispatchers_.begin(), worker_dispatchers_.end(), &dispatcher) ==
         worker_dispatchers_.end());
  worker_dispatchers_.push_back(&dispatcher);
  Event::Dispatcher* worker = &dispatcher;
  dispatcher.post([worker] { thread_local_data.dispatcher = worker; });
}

void InstanceImpl::removeSlot(uint32_t index) {
  ASSERT(isMainThread());
  // After shutdownGlobalThreading() the workers are stopping or gone, so nothing is posted;
  // shutdownThread() clears every thread's entries instead.
  if (isShutdown()) {
    return;
  }
  ASSERT(std::find(free_slot_indexes_.begin(), free_slot_indexes_.end(), index) ==
         free_slot_indexes_.end());
  free_slot_indexes_.push_back(index);
  // Posted before any set() of a slot that reuses this index, so FIFO order per producer
  // guarantees that the reset lands first; callbacks of the dead slot still queued ahead of it
  // are stopped by their guard.
  runOnAllThreads([index] {
    std::vector<ThreadLocalObjectSharedPtr>& objects = thread_local_data.objects;
    if (index < objects.size()) {
      objects[index] = nullptr;
    }
  });
}

void InstanceImpl::runOnAllThreads(const std::function<void()>& cb) {
  ASSERT(isMainThread());
  ASSERT(!isShutdown());
  for (Event::Dispatcher* worker : worker_dispatchers_) {
    worker->post(cb);
  }
  cb();
}

void InstanceImpl::runOnAllThreads(std::function<void()> cb, std::function<void()> all_done) {
  ASSERT(isMainThread());
  ASSERT(!isShutdown());
  ASSERT(main_dispatcher_ != nullptr);
  // Main first, so that completion is decided by the workers alone.
  cb();
  if (worker_dispatchers_.empty()) {
    main_dispatcher_->post(std::move(all_done));
    return;
  }

  // Shared by every worker's copy of the callback; the worker that brings `remaining` to zero
  // posts all_done to main. A worker whose dispatcher dies with the callback unrun never
  // counts down, so all_done never runs before every worker ran cb.
  struct Round {
    std::function<void()> cb;
    std::function<void()> all_done;
    Event::Dispatcher* main_dispatcher;
    std::atomic<size_t> remaining;
  };
  auto round = std::make_shared<Round>();
  round->cb = std::move(cb);
  round->all_done = std::move(all_done);
  round->main_dispatcher = main_dispatcher_;
  round->remaining = worker_dispatchers_.size();
  for (Event::Dispatcher* worker : worker_dispatchers_) {
    worker->post([round] {
      round->cb();
      // acq_rel: the last worker must see every other worker's effects before main runs.
      if (round->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        round->main_dispatcher->post(std::move(round->all_done));
      }
    });
  }
}

void InstanceImpl::shutdownGlobalThreading() {
  ASSERT(isMainThread());
  ASSERT(!isShutdown());
  shutdown_ = true;
}

void InstanceImpl::shutdownThread() {
  ASSERT(isShutdown());
  // Reverse slot order: slots allocated early hold what later ones are built on (stats, the
  // cluster manager), so the later ones go first. No post can race this: nothing is posted
  // after shutdownGlobalThreading().
  std::vector<ThreadLocalObjectSharedPtr>& objects = thread_local_data.objects;
  for (auto it = objects.rbegin(); it != objects.rend(); ++it) {
    it->reset();
  }
  objects.clear();
}

Event::Dispatcher& InstanceImpl::dispatcher() {
  ASSERT(thread_local_data.dispatcher != nullptr);
  return *thread_local_data.dispatcher;
}

}  // namespace Proxy::ThreadLocal
