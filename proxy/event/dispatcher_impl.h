#pragma once

// The libevent-backed Dispatcher: one event_base per thread, a locked post() queue that costs
// one wake-up per batch, and Envoy's two-list deferred deletion. The contract is dispatcher.h;
// this header only adds how to build one.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "proxy/event/dispatcher.h"
#include "proxy/event/libevent.h"

namespace Proxy::Event {

// Thread affinity: the thread that constructs a DispatcherImpl owns it until run() is first
// called; from then on the thread that last called run() does (a worker's dispatcher is built
// on main and run on the worker). The destructor takes ownership for the destroying thread,
// which must not be racing a run().
//
// Cached time: libevent 2.1 has no prepare/check hook (evwatch arrived in 2.2), so the cached
// monotonic time is refreshed on entry to every callback the loop runs (post batch, timer,
// file event, signal, deferred-delete pass) and in run(). It is never staler than the
// callback being run; the price is one TimeSource read per callback instead of per iteration.
// Timers fire on libevent's own monotonic clock: the TimeSource feeds only this cached value.
//
// Lifetime: everything created by a dispatcher (file events, timers, signal events) must be
// destroyed before it. Callbacks still queued by post() when it is destroyed are destroyed
// without running; objects queued by deferredDelete() are destroyed.
class DispatcherImpl : public Dispatcher {
 public:
  DispatcherImpl(std::string name, TimeSource& time_source);
  ~DispatcherImpl() override;
  DispatcherImpl(const DispatcherImpl&) = delete;
  DispatcherImpl& operator=(const DispatcherImpl&) = delete;

  // Dispatcher
  const std::string& name() const override { return name_; }
  FileEventPtr createFileEvent(int fd, FileReadyCb cb, FileTriggerType trigger,
                               uint32_t events) override;
  TimerPtr createTimer(TimerCb cb) override;
  // libevent delivers a signal to one event_base per process (the last one that listened), so
  // only the main dispatcher should listen for signals.
  SignalEventPtr listenForSignal(int signal_num, SignalCb cb) override;
  void deferredDelete(DeferredDeletablePtr&& to_delete) override;
  void clearDeferredDeleteList() override;
  void post(PostCb cb) override;
  void run(RunType type) override;
  void exit() override;
  bool isThreadSafe() const override;
  TimeSource& timeSource() override { return time_source_; }
  MonotonicTime approximateMonotonicTime() const override;
  void updateApproximateMonotonicTime() override;
  // The steady clock as of the same refresh as approximateMonotonicTime(), whatever the time
  // source: libevent fires timers by the real clock, so TimerImpl's lazy deadlines
  // (timer_impl.h) are kept in it without a clock read per enableTimer(). Outside run() (setup
  // before the loop, where the cached value may be old) it reads the clock, as libevent's
  // event_add() does.
  std::chrono::steady_clock::time_point loopSteadyTime() const {
    return running_ ? loop_steady_time_ : std::chrono::steady_clock::now();
  }

 private:
  // libevent callbacks (C signature), run on the dispatcher thread.
  static void onPostWakeup(int fd, short what, void* arg);
  static void onDeferredDeleteTimer(int fd, short what, void* arg);

  void runPostCallbacks();
  // Destroy what deferredDelete() and post() still hold; used by the destructor.
  void drainForShutdown();

  const std::string name_;
  TimeSource& time_source_;
  // Declared before the events below so that they are freed first.
  Libevent::BasePtr base_;
  // Never added to the loop, only activated: by post() when the queue goes empty->non-empty
  // while no batch is running.
  Libevent::EventPtr post_event_;
  // A zero-delay timer for callbacks posted while a batch ran: they run on the next loop
  // iteration, after the poll and the due timers. (An activation during a batch would join the
  // pass libevent is running, so a stream of posts — a callback that posts, or another thread
  // posting as fast as this one drains — would starve every timer and socket of the loop.)
  Libevent::EventPtr post_next_iteration_event_;
  // A zero-delay timer: a timeout is processed after the next poll, so objects queued during
  // an iteration are destroyed in a later one, never while their callback is on the stack.
  Libevent::EventPtr deferred_delete_event_;

  // See the class comment. Atomic because isThreadSafe() is asked from any thread.
  std::atomic<std::thread::id> owner_thread_id_;
  // Dispatcher thread only.
  MonotonicTime approximate_monotonic_time_;
  std::chrono::steady_clock::time_point loop_steady_time_;
  // The time source is the real clock: one clock read serves both values above.
  const bool real_time_source_;
  bool running_ = false;  // inside run(): every callback refreshed the values above first

  // std::mutex rather than absl::Mutex: Debian's libabsl is not built with TSAN annotations,
  // so TSAN cannot see absl::Mutex ordering and reports false races; pthread mutexes it sees.
  std::mutex post_lock_;
  std::vector<PostCb> post_callbacks_ ABSL_GUARDED_BY(post_lock_);
  // A batch is running: post() leaves the wake-up to the end of the batch.
  bool running_post_callbacks_ ABSL_GUARDED_BY(post_lock_) = false;
  // The drained batch's vector, kept (empty, with its capacity) for the next swap, so a batch
  // allocates nothing in the steady state. Dispatcher thread only.
  std::vector<PostCb> spare_post_callbacks_;

  // Deferred deletion, as Envoy does it: deferredDelete() appends to *current_to_delete_; a
  // clear pass flips current_to_delete_ to the other list first, so objects queued by the
  // destructors of this pass wait for the next pass. Dispatcher thread only.
  std::vector<DeferredDeletablePtr> to_delete_1_;
  std::vector<DeferredDeletablePtr> to_delete_2_;
  std::vector<DeferredDeletablePtr>* current_to_delete_;
  bool deferred_deleting_ = false;
};

}  // namespace Proxy::Event
