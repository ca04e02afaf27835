#pragma once

// The event loop of one thread: a libevent event_base wrapped with RAII. Every thread that
// does I/O (main, each worker) owns exactly one Dispatcher and runs it; objects created by
// a Dispatcher belong to that thread. post() is the only way in from another thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "proxy/common/time.h"

namespace Proxy::Event {

// Bit flags for file events.
struct FileReadyType {
  static constexpr uint32_t Read = 0x1;
  static constexpr uint32_t Write = 0x2;
  static constexpr uint32_t Closed = 0x4;  // peer sent FIN (EV_CLOSED, EPOLLRDHUP)
};

enum class FileTriggerType { Level, Edge };

using FileReadyCb = std::function<void(uint32_t events)>;
using TimerCb = std::function<void()>;
using SignalCb = std::function<void()>;
using PostCb = std::function<void()>;

// Watches one file descriptor. Destroying it unregisters it; it never closes the fd.
// Dispatcher thread only.
class FileEvent {
 public:
  virtual ~FileEvent() = default;
  // Run the callback on the next loop iteration as if `events` fired.
  virtual void activate(uint32_t events) = 0;
  // Change the set of events watched (0 = none).
  virtual void setEnabled(uint32_t events) = 0;
  // Change the set of events watched and how they trigger. A connection reads level-triggered
  // while it reads (whatever a pass left unread wakes the loop again) and edge-triggered while
  // it waits to write (level-triggered Write would wake every iteration).
  virtual void setEnabled(uint32_t events, FileTriggerType trigger) = 0;
};

// A one-shot timer; re-arm it from its callback for periodic work. Dispatcher thread only.
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void enableTimer(std::chrono::milliseconds duration) = 0;
  virtual void disableTimer() = 0;
  virtual bool enabled() = 0;
};

// A signal handler that runs on the dispatcher's thread (not in signal context).
class SignalEvent {
 public:
  virtual ~SignalEvent() = default;
};

// Anything handed to Dispatcher::deferredDelete(): destroyed on a later loop iteration, so an
// object is never destroyed while one of its own callbacks is still on the stack.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

using FileEventPtr = std::unique_ptr<FileEvent>;
using TimerPtr = std::unique_ptr<Timer>;
using SignalEventPtr = std::unique_ptr<SignalEvent>;
using DeferredDeletablePtr = std::unique_ptr<DeferredDeletable>;

class Dispatcher {
 public:
  enum class RunType {
    Block,        // run until there are no more events to handle, then return
    NonBlock,     // handle the events that are ready now, then return
    RunUntilExit  // run until exit() is called, even with nothing to watch
  };

  virtual ~Dispatcher() = default;

  // Thread name for logs ("main", "worker_0", ...).
  virtual const std::string& name() const = 0;

  // Dispatcher thread only.
  virtual FileEventPtr createFileEvent(int fd, FileReadyCb cb, FileTriggerType trigger,
                                       uint32_t events) = 0;
  virtual TimerPtr createTimer(TimerCb cb) = 0;
  virtual SignalEventPtr listenForSignal(int signal_num, SignalCb cb) = 0;

  // Queue `to_delete` for destruction on the next loop iteration. Objects queued while a
  // batch is being destroyed wait for the following iteration. Dispatcher thread only.
  virtual void deferredDelete(DeferredDeletablePtr&& to_delete) = 0;
  // Destroy what is queued now (used at shutdown and by tests). Dispatcher thread only.
  virtual void clearDeferredDeleteList() = 0;

  // Run `cb` on this dispatcher's thread. Safe from any thread. Callbacks posted from one
  // thread run in the order they were posted; a batch costs one wake-up; callbacks never run
  // under the queue's lock.
  virtual void post(PostCb cb) = 0;

  // Run the loop on the calling thread, which becomes this dispatcher's thread.
  virtual void run(RunType type) = 0;
  // Make run() return after the current iteration. Safe from any thread.
  virtual void exit() = 0;

  // True when called on the thread running this dispatcher (or before it ever ran).
  virtual bool isThreadSafe() const = 0;

  virtual TimeSource& timeSource() = 0;
  // The loop's cached "now", refreshed once per iteration: cheap enough for the request path.
  virtual MonotonicTime approximateMonotonicTime() const = 0;
  virtual void updateApproximateMonotonicTime() = 0;
};

using DispatcherPtr = std::unique_ptr<Dispatcher>;

}  // namespace Proxy::Event
