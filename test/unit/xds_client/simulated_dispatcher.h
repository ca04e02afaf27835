#pragma once

// A Dispatcher with simulated time for unit tests (ARCHITECTURE.md, convention 12): timers fire
// only when the test advances time, posted callbacks run when the test runs the loop.
// Single-threaded: the test thread is the dispatcher thread. Only what the xDS client uses is
// implemented.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "proxy/common/assert.h"
#include "proxy/event/dispatcher.h"

namespace Proxy::Test {

class SimulatedTimeSource : public TimeSource {
 public:
  SystemTime systemTime() override { return SystemTime() + (now_ - MonotonicTime()); }
  MonotonicTime monotonicTime() override { return now_; }
  void setMonotonicTime(MonotonicTime now) { now_ = now; }

 private:
  MonotonicTime now_{std::chrono::hours(1)};
};

class SimulatedDispatcher : public Event::Dispatcher {
 public:
  SimulatedDispatcher() = default;
  ~SimulatedDispatcher() override {
    clearDeferredDeleteList();
    ASSERT(timers_.empty());
  }

  const std::string& name() const override { return name_; }

  Event::FileEventPtr createFileEvent(int, Event::FileReadyCb, Event::FileTriggerType,
                                      uint32_t) override {
    RELEASE_ASSERT(false, "SimulatedDispatcher has no file events");
    return nullptr;
  }
  Event::TimerPtr createTimer(Event::TimerCb cb) override {
    return std::make_unique<TimerImpl>(*this, std::move(cb));
  }
  Event::SignalEventPtr listenForSignal(int, Event::SignalCb) override {
    RELEASE_ASSERT(false, "SimulatedDispatcher has no signals");
    return nullptr;
  }
  void deferredDelete(Event::DeferredDeletablePtr&& to_delete) override {
    deferred_.push_back(std::move(to_delete));
  }
  void clearDeferredDeleteList() override {
    while (!deferred_.empty()) {
      auto batch = std::move(deferred_);
      deferred_.clear();
      batch.clear();
    }
  }
  void post(Event::PostCb cb) override { posted_.push_back(std::move(cb)); }
  void run(RunType) override { runUntilIdle(); }
  void exit() override {}
  bool isThreadSafe() const override { return true; }
  TimeSource& timeSource() override { return time_source_; }
  MonotonicTime approximateMonotonicTime() const override {
    return const_cast<SimulatedTimeSource&>(time_source_).monotonicTime();
  }
  void updateApproximateMonotonicTime() override {}

  // Run posted callbacks, due timers (zero-delay ones included) and deferred deletions until
  // nothing is left to do at the current time.
  void runUntilIdle() {
    while (true) {
      if (!posted_.empty()) {
        auto batch = std::move(posted_);
        posted_.clear();
        for (auto& cb : batch) {
          cb();
        }
        continue;
      }
      if (TimerImpl* timer = nextDue(now()); timer != nullptr) {
        timer->fire();
        continue;
      }
      if (!deferred_.empty()) {
        clearDeferredDeleteList();
        continue;
      }
      return;
    }
  }

  // Advance time by `duration`, firing every timer due on the way at its own deadline.
  void advanceTimeAndRun(std::chrono::milliseconds duration) {
    const MonotonicTime target = now() + duration;
    runUntilIdle();
    while (true) {
      TimerImpl* timer = nextDue(target);
      if (timer == nullptr) {
        break;
      }
      time_source_.setMonotonicTime(std::max(now(), timer->deadline_));
      runUntilIdle();
    }
    time_source_.setMonotonicTime(target);
    runUntilIdle();
  }

  MonotonicTime now() { return time_source_.monotonicTime(); }

 private:
  class TimerImpl : public Event::Timer {
   public:
    TimerImpl(SimulatedDispatcher& parent, Event::TimerCb cb)
        : parent_(parent), cb_(std::move(cb)) {
      parent_.timers_.insert(this);
    }
    ~TimerImpl() override { parent_.timers_.erase(this); }
    void enableTimer(std::chrono::milliseconds duration) override {
      enabled_ = true;
      deadline_ = parent_.now() + duration;
      sequence_ = parent_.next_sequence_++;
    }
    void disableTimer() override { enabled_ = false; }
    bool enabled() override { return enabled_; }
    void fire() {
      enabled_ = false;
      cb_();  // may destroy this timer
    }

    SimulatedDispatcher& parent_;
    Event::TimerCb cb_;
    bool enabled_ = false;
    MonotonicTime deadline_;
    uint64_t sequence_ = 0;
  };

  TimerImpl* nextDue(MonotonicTime limit) {
    TimerImpl* best = nullptr;
    for (TimerImpl* timer : timers_) {
      if (!timer->enabled_ || timer->deadline_ > limit) {
        continue;
      }
      if (best == nullptr || timer->deadline_ < best->deadline_ ||
          (timer->deadline_ == best->deadline_ && timer->sequence_ < best->sequence_)) {
        best = timer;
      }
    }
    return best;
  }

  const std::string name_ = "main";
  SimulatedTimeSource time_source_;
  std::set<TimerImpl*> timers_;
  uint64_t next_sequence_ = 0;
  std::vector<Event::PostCb> posted_;
  std::vector<Event::DeferredDeletablePtr> deferred_;
};

}  // namespace Proxy::Test
