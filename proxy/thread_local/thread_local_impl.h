#pragma once

// Envoy-style thread-local slots. Each registered thread keeps a vector of per-slot objects in
// a C++ `thread_local`; the main thread allocates slots and fills every thread's entry through
// Dispatcher::post(), so workers read their own copy without a lock.
//
// One InstanceImpl per process at a time: the per-thread vectors are process globals.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/thread_local/thread_local.h"

namespace Proxy::ThreadLocal {

class InstanceImpl;

// A slot is an index into every thread's vector. Destroying it frees the index on main and
// posts a reset of that entry to every worker; callbacks already posted for this slot check
// still_alive_guard_ and do nothing once it is gone.
class SlotImpl : public Slot {
 public:
  SlotImpl(InstanceImpl& parent, uint32_t index);
  ~SlotImpl() override;

  // Slot
  ThreadLocalObjectSharedPtr get() override;
  void set(InitializeCb cb) override;
  void runOnAllThreads(UpdateCb cb) override;
  // `all_done` also checks still_alive_guard_: if the slot is destroyed before the last
  // worker ran `cb`, `all_done` is dropped (it usually captures the slot's owner).
  void runOnAllThreads(UpdateCb cb, std::function<void()> all_done) override;
  // True when this thread holds a non-null object for this slot. A reused index reads false
  // until the new owner's set() reaches this thread.
  bool currentThreadRegistered() override;

  uint32_t index() const { return index_; }

 private:
  // Wraps `cb` so that it runs only while this slot is alive.
  std::function<void()> guarded(std::function<void()> cb) const;
  // `cb` applied to the calling thread's entry for this slot, guarded as above.
  std::function<void()> dataCallback(UpdateCb cb) const;

  InstanceImpl& parent_;
  const uint32_t index_;
  // Posted callbacks hold a weak_ptr to this; it expires when the slot is destroyed.
  const std::shared_ptr<bool> still_alive_guard_;
};

class InstanceImpl : public Instance {
 public:
  // The constructing thread is the main thread.
  InstanceImpl();
  // Main thread, after shutdownGlobalThreading() (and the workers' shutdownThread()).
  ~InstanceImpl() override;
  InstanceImpl(const InstanceImpl&) = delete;
  InstanceImpl& operator=(const InstanceImpl&) = delete;

  // Instance
  // Reuses freed indexes, oldest first (as Envoy does), so the vectors stay dense.
  SlotPtr allocateSlot() override;
  void registerThread(Event::Dispatcher& dispatcher, bool main_thread) override;
  void shutdownGlobalThreading() override;
  void shutdownThread() override;
  Event::Dispatcher& dispatcher() override;

  bool isShutdown() const { return shutdown_.load(); }

 private:
  friend class SlotImpl;

  bool isMainThread() const { return std::this_thread::get_id() == main_thread_id_; }
  // Called by ~SlotImpl on main: recycle the index and reset it on every thread.
  void removeSlot(uint32_t index);
  // Post `cb` to every worker and run it inline on main.
  void runOnAllThreads(const std::function<void()>& cb);
  // Run `cb` on main inline and post it to every worker; `all_done` is posted to main when
  // the last worker has run it.
  void runOnAllThreads(std::function<void()> cb, std::function<void()> all_done);

  const std::thread::id main_thread_id_;
  Event::Dispatcher* main_dispatcher_ = nullptr;
  // Workers only; main is handled inline. Fixed once the workers run (see registerThread).
  std::vector<Event::Dispatcher*> worker_dispatchers_;
  uint32_t next_slot_index_ = 0;
  std::deque<uint32_t> free_slot_indexes_;
  // Read by shutdownThread() on workers.
  std::atomic<bool> shutdown_{false};
};

}  // namespace Proxy::ThreadLocal
