#pragma once

// Thread-local slots: the main thread publishes immutable state and every registered thread
// (main + workers) holds its own copy, read without locks (ARCHITECTURE.md "Threads").

#include <cstdint>
#include <functional>
#include <memory>

#include "proxy/event/dispatcher.h"

namespace Proxy::ThreadLocal {

// What a slot holds on one thread. Destroyed on the thread that owns it.
class ThreadLocalObject {
 public:
  virtual ~ThreadLocalObject() = default;
};

using ThreadLocalObjectSharedPtr = std::shared_ptr<ThreadLocalObject>;

// One slot, allocated on the main thread. All methods are main thread only, except get(),
// which any registered thread calls for its own copy.
class Slot {
 public:
  using InitializeCb = std::function<ThreadLocalObjectSharedPtr(Event::Dispatcher& dispatcher)>;
  using UpdateCb = std::function<void(ThreadLocalObjectSharedPtr& object)>;

  virtual ~Slot() = default;

  // This thread's copy; null until set() reached this thread.
  virtual ThreadLocalObjectSharedPtr get() = 0;
  // Typed accessor, for callers that know what they stored.
  template <class T>
  T& getTyped() {
    return *static_cast<T*>(get().get());
  }

  // Create every thread's copy by running `cb` on that thread (posted to workers, run
  // inline on main).
  virtual void set(InitializeCb cb) = 0;
  // Run `cb` against each thread's copy on that thread.
  virtual void runOnAllThreads(UpdateCb cb) = 0;
  // As above, then run `all_done` on the main thread once every thread has run `cb`.
  virtual void runOnAllThreads(UpdateCb cb, std::function<void()> all_done) = 0;
  // True once set() has been called.
  virtual bool currentThreadRegistered() = 0;
};

using SlotPtr = std::unique_ptr<Slot>;

// Owns the slots and the list of registered threads. Main thread only unless noted.
class Instance {
 public:
  virtual ~Instance() = default;

  // Allocate a slot. Destroying the returned SlotPtr frees its index on every thread; posted
  // callbacks that arrive after that find the slot gone and do nothing.
  virtual SlotPtr allocateSlot() = 0;

  // Register a thread's dispatcher; the main thread registers first with main_thread=true.
  // Must happen before any slot is set, and before the worker threads start running.
  virtual void registerThread(Event::Dispatcher& dispatcher, bool main_thread) = 0;

  // Begin shutdown: no more posts to workers. Main thread only.
  virtual void shutdownGlobalThreading() = 0;
  // Destroy this thread's copies in reverse slot order. Called on each thread (worker
  // threads before they exit, then main).
  virtual void shutdownThread() = 0;

  virtual Event::Dispatcher& dispatcher() = 0;  // the calling thread's dispatcher
};

using InstancePtr = std::unique_ptr<Instance>;

}  // namespace Proxy::ThreadLocal
