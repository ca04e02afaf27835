// DispatcherImpl: post() across threads, exit(), timers, file events, signals, deferred
// deletion, thread affinity and the cached clock. Every test is a script over a real libevent
// loop; waits are bounded by deadlines, never by sleeps.
//
// ~820 lines on purpose: one concept, the Dispatcher's contract as a real loop shows it;
// the tests share LoopThread, SocketPair and the fixture, which a split would move to a header.

#include "proxy/event/dispatcher_impl.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/unit/event/notification.h"

namespace Proxy::Event {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using Proxy::Test::Notification;
using Proxy::Test::waitFor;

// Runs a dispatcher with RunType::RunUntilExit on its own thread, which becomes the
// dispatcher's thread.
class LoopThread {
 public:
  explicit LoopThread(Dispatcher& dispatcher)
      : dispatcher_(dispatcher), thread_([this] {
          thread_id_ = std::this_thread::get_id();
          dispatcher_.run(Dispatcher::RunType::RunUntilExit);
          exited_.notify();
        }) {}

  ~LoopThread() {
    if (thread_.joinable()) {
      dispatcher_.exit();
      thread_.join();
    }
  }

  // Asks the loop to exit from this (foreign) thread and waits for run() to return.
  testing::AssertionResult stop() {
    dispatcher_.exit();
    return joinAfterExit();
  }

  // Waits for run() to return on its own (someone else called exit()).
  testing::AssertionResult joinAfterExit() {
    testing::AssertionResult exited = waitFor(exited_, "run() to return");
    if (exited) {
      thread_.join();
    }
    return exited;
  }

  // Valid once the thread started; read it after a callback of the loop has run.
  std::thread::id threadId() const { return thread_id_; }

 private:
  Dispatcher& dispatcher_;
  std::thread::id thread_id_;
  Notification exited_;
  std::thread thread_;  // last: it starts running in the constructor
};

// A connected, non-blocking AF_UNIX stream pair, closed on destruction.
class SocketPair {
 public:
  SocketPair() {
    EXPECT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_));
  }
  ~SocketPair() {
    closeIfOpen(fds_[0]);
    closeIfOpen(fds_[1]);
  }
  int watched() const { return fds_[0]; }
  int peer() const { return fds_[1]; }
  void closePeer() { closeIfOpen(fds_[1]); }
  void writeToPeer(const std::string& data) {
    ASSERT_EQ(static_cast<ssize_t>(data.size()), ::write(fds_[1], data.data(), data.size()));
  }
  std::string readWatched() {
    char buf[256];
    const ssize_t n = ::read(fds_[0], buf, sizeof(buf));
    return n > 0 ? std::string(buf, n) : std::string();
  }

 private:
  static void closeIfOpen(int& fd) {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
  int fds_[2] = {-1, -1};
};

// Runs `on_destroy` from its destructor, so a test can see exactly when it died.
class Tracked : public DeferredDeletable {
 public:
  explicit Tracked(std::function<void()> on_destroy) : on_destroy_(std::move(on_destroy)) {}
  ~Tracked() override { on_destroy_(); }

 private:
  std::function<void()> on_destroy_;
};

class FakeTimeSource : public TimeSource {
 public:
  SystemTime systemTime() override { return SystemTime(); }
  MonotonicTime monotonicTime() override { return monotonic_now; }
  MonotonicTime monotonic_now;
};

class DispatcherTest : public testing::Test {
 protected:
  RealTimeSource time_source_;
  DispatcherImpl dispatcher_{"test", time_source_};
};

// ---------------------------------------------------------------------------------------------
// post()

TEST_F(DispatcherTest, CallbacksPostedBeforeRunRunInPostOrder) {
  // Three callbacks queued from the creating thread before the loop ever ran.
  std::vector<int> ran;
  dispatcher_.post([&] { ran.push_back(1); });
  dispatcher_.post([&] { ran.push_back(2); });
  dispatcher_.post([&] { ran.push_back(3); });
  EXPECT_TRUE(ran.empty()) << "post() never runs the callback inline";

  // One non-blocking pass runs all of them, in order.
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<int>{1, 2, 3}), ran);
}

TEST_F(DispatcherTest, PostFromEightThreadsRunsEveryCallbackOnceInEachProducersOrder) {
  constexpr int kProducers = 8;
  constexpr int kCallbacksPerProducer = 10000;
  constexpr int kTotal = kProducers * kCallbacksPerProducer;

  // The loop runs on its own thread; `seen` and `total` are touched only by that thread.
  std::vector<std::vector<int>> seen(kProducers);
  int total = 0;
  Notification all_ran;
  LoopThread loop(dispatcher_);

  // Eight producers post concurrently, each numbering its callbacks 0..9999.
  std::vector<std::thread> producers;
  for (int producer = 0; producer < kProducers; producer++) {
    producers.emplace_back([&, producer] {
      for (int seq = 0; seq < kCallbacksPerProducer; seq++) {
        dispatcher_.post([&, producer, seq] {
          seen[producer].push_back(seq);
          if (++total == kTotal) {
            all_ran.notify();
          }
        });
      }
    });
  }
  for (std::thread& producer : producers) {
    producer.join();
  }

  // Every callback ran, then the loop stops (join orders `seen` before the checks below).
  ASSERT_TRUE(waitFor(all_ran, "80,000 posted callbacks"));
  ASSERT_TRUE(loop.stop());

  // Exactly once each, and per producer in posting order.
  EXPECT_EQ(kTotal, total);
  std::vector<int> expected(kCallbacksPerProducer);
  for (int seq = 0; seq < kCallbacksPerProducer; seq++) {
    expected[seq] = seq;
  }
  for (int producer = 0; producer < kProducers; producer++) {
    EXPECT_EQ(expected, seen[producer]) << "producer " << producer;
  }
}

TEST_F(DispatcherTest, PostFromACallbackRunsAfterItNotInline) {
  // A posts B from the dispatcher thread while A is running.
  std::vector<std::string> steps;
  dispatcher_.post([&] {
    steps.push_back("A begins");
    dispatcher_.post([&] { steps.push_back("B"); });
    steps.push_back("A ends");
  });

  // B runs in the same run(), after A returned.
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<std::string>{"A begins", "A ends", "B"}), steps);
}

TEST_F(DispatcherTest, CallbacksThatKeepPostingDoNotStarveTimers) {
  // A callback that posts itself again, as a gRPC thread that posts each message it reads
  // while this thread drains them does: the chain must yield to the loop's timers. Bounded so
  // that a starving loop ends the test (and fails it) instead of hanging it.
  constexpr int kLimit = 200000;
  int runs = 0;
  int runs_when_timer_fired = -1;
  std::function<void()> again = [&] {
    if (++runs < kLimit && runs_when_timer_fired < 0) {
      dispatcher_.post(again);
    }
  };
  dispatcher_.post(again);
  auto timer = dispatcher_.createTimer([&] {
    runs_when_timer_fired = runs;
    dispatcher_.exit();
  });
  timer->enableTimer(std::chrono::milliseconds(1));

  dispatcher_.run(Dispatcher::RunType::RunUntilExit);
  // The timer fired while the chain was still posting.
  EXPECT_GT(runs_when_timer_fired, 0);
  EXPECT_LT(runs_when_timer_fired, kLimit);
}

TEST_F(DispatcherTest, ACallbackIsDestroyedBeforeTheNextOneRuns) {
  // The first callback owns a token; the second looks at whether it is gone.
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> weak_token = token;
  dispatcher_.post([token = std::move(token)] {});
  bool released_before_next = false;
  dispatcher_.post([&] { released_before_next = weak_token.expired(); });

  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_TRUE(released_before_next);
}

TEST(DispatcherLifetimeTest, CallbacksStillQueuedAreDestroyedWithoutRunningWithTheDispatcher) {
  RealTimeSource time_source;
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> weak_token = token;
  bool ran = false;
  {
    DispatcherImpl dispatcher("test", time_source);
    dispatcher.post([&ran, token = std::move(token)] { ran = true; });
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(weak_token.expired()) << "the capture was released";
}

// ---------------------------------------------------------------------------------------------
// run() and exit()

TEST_F(DispatcherTest, ExitFromAnotherThreadStopsRunUntilExit) {
  // The loop has nothing to watch, yet RunUntilExit keeps it running...
  Notification loop_running;
  dispatcher_.post([&] { loop_running.notify(); });
  LoopThread loop(dispatcher_);
  ASSERT_TRUE(waitFor(loop_running, "the loop to start"));

  // ...until exit() from this thread.
  EXPECT_TRUE(loop.stop());
}

TEST_F(DispatcherTest, ExitBeforeRunMakesTheNextRunReturn) {
  // exit() is remembered by the loop: the next run() returns after one iteration.
  dispatcher_.exit();
  LoopThread loop(dispatcher_);
  EXPECT_TRUE(loop.joinAfterExit());
}

TEST_F(DispatcherTest, BlockReturnsWhenNothingIsLeftToWatch) {
  // No events at all: Block returns at once instead of waiting forever.
  dispatcher_.run(Dispatcher::RunType::Block);
  SUCCEED();
}

// ---------------------------------------------------------------------------------------------
// Timers

TEST_F(DispatcherTest, TimerFiresOnce) {
  int fired = 0;
  TimerPtr timer = dispatcher_.createTimer([&] { fired++; });
  timer->enableTimer(milliseconds(1));
  EXPECT_TRUE(timer->enabled());

  // Block returns once the one-shot timer has fired and nothing else is pending.
  dispatcher_.run(Dispatcher::RunType::Block);
  EXPECT_EQ(1, fired);
  EXPECT_FALSE(timer->enabled());
}

TEST_F(DispatcherTest, TimerDisabledBeforeItFiresNeverFires) {
  int disabled_fired = 0;
  int end_fired = 0;
  TimerPtr disabled = dispatcher_.createTimer([&] { disabled_fired++; });
  TimerPtr end = dispatcher_.createTimer([&] { end_fired++; });

  // Arm both; disarm the first before the loop runs. The second, later one bounds the run.
  disabled->enableTimer(milliseconds(0));
  end->enableTimer(milliseconds(20));
  disabled->disableTimer();
  EXPECT_FALSE(disabled->enabled());

  dispatcher_.run(Dispatcher::RunType::Block);
  EXPECT_EQ(0, disabled_fired);
  EXPECT_EQ(1, end_fired);
}

TEST_F(DispatcherTest, TimerReEnabledFromItsCallbackFiresAgain) {
  int fired = 0;
  std::vector<bool> enabled_inside;
  TimerPtr timer;
  timer = dispatcher_.createTimer([&] {
    enabled_inside.push_back(timer->enabled());
    if (++fired < 3) {
      timer->enableTimer(milliseconds(1));
    }
  });
  timer->enableTimer(milliseconds(1));

  dispatcher_.run(Dispatcher::RunType::Block);
  EXPECT_EQ(3, fired);
  EXPECT_EQ((std::vector<bool>{false, false, false}), enabled_inside)
      << "a firing timer is no longer armed, so its callback may re-arm it";
}

TEST_F(DispatcherTest, ZeroDurationTimerRunsOnTheNextIterationNotInline) {
  // Two zero timers fire in the same iteration. Whichever runs first arms a third zero timer:
  // it must not run inline, nor in this iteration before the second timer, but after both.
  std::vector<std::string> steps;
  TimerPtr next_iteration = dispatcher_.createTimer([&] { steps.push_back("next"); });
  auto fire = [&] {
    if (steps.empty()) {
      next_iteration->enableTimer(milliseconds(0));
      EXPECT_TRUE(next_iteration->enabled());
    }
    steps.push_back("same");
  };
  TimerPtr first = dispatcher_.createTimer(fire);
  TimerPtr second = dispatcher_.createTimer(fire);
  first->enableTimer(milliseconds(0));
  second->enableTimer(milliseconds(0));

  dispatcher_.run(Dispatcher::RunType::Block);
  EXPECT_EQ((std::vector<std::string>{"same", "same", "next"}), steps);
}

TEST_F(DispatcherTest, ATimerPushedBackFiresAtItsLastDeadlineNotItsFirst) {
  // A timer armed for 30 ms is pushed back to 80 ms from a 10 ms tick, as an idle timer is on
  // every request. It is re-armed lazily (libevent's event stays at 30 ms) but must still fire
  // once, at the later deadline.
  using Clock = std::chrono::steady_clock;
  int fired = 0;
  Clock::time_point fired_at;
  TimerPtr idle = dispatcher_.createTimer([&] {
    fired++;
    fired_at = Clock::now();
  });
  const Clock::time_point start = Clock::now();
  idle->enableTimer(milliseconds(30));
  TimerPtr tick = dispatcher_.createTimer([&] { idle->enableTimer(milliseconds(70)); });
  tick->enableTimer(milliseconds(10));

  dispatcher_.run(Dispatcher::RunType::Block);
  EXPECT_EQ(1, fired);
  EXPECT_GE(fired_at - start, milliseconds(79)) << "fired at its first deadline";
  EXPECT_FALSE(idle->enabled());
}

TEST_F(DispatcherTest, ATimerStoppedAndStartedAgainFiresOnceAtTheNewDeadline) {
  // Stopped, then started with a later deadline before the old one passed (a connection's idle
  // timer across a request): one callback, at the new deadline.
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::duration> fired_after;
  const Clock::time_point start = Clock::now();
  TimerPtr idle = dispatcher_.createTimer([&] { fired_after.push_back(Clock::now() - start); });
  idle->enableTimer(milliseconds(20));
  idle->disableTimer();
  EXPECT_FALSE(idle->enabled());
  TimerPtr restart = dispatcher_.createTimer([&] { idle->enableTimer(milliseconds(40)); });
  restart->enableTimer(milliseconds(5));

  dispatcher_.run(Dispatcher::RunType::Block);
  ASSERT_EQ(1u, fired_after.size());
  EXPECT_GE(fired_after[0], milliseconds(44));
}

TEST_F(DispatcherTest, ATimerMovedEarlierFiresAtTheEarlierDeadline) {
  // Moving a deadline earlier cannot wait for libevent's later one.
  using Clock = std::chrono::steady_clock;
  int fired = 0;
  const Clock::time_point start = Clock::now();
  Clock::duration fired_after{};
  TimerPtr timer = dispatcher_.createTimer([&] {
    fired++;
    fired_after = Clock::now() - start;
  });
  timer->enableTimer(seconds(30));
  timer->enableTimer(milliseconds(5));

  dispatcher_.run(Dispatcher::RunType::Block);
  EXPECT_EQ(1, fired);
  EXPECT_LT(fired_after, seconds(5));
}

TEST_F(DispatcherTest, DestroyingAnArmedTimerCancelsIt) {
  int fired = 0;
  TimerPtr timer = dispatcher_.createTimer([&] { fired++; });
  timer->enableTimer(milliseconds(0));
  timer.reset();

  // Nothing left to watch: Block returns at once and the callback never ran.
  dispatcher_.run(Dispatcher::RunType::Block);
  EXPECT_EQ(0, fired);
}

// ---------------------------------------------------------------------------------------------
// File events

TEST_F(DispatcherTest, LevelTriggeredReadFiresOnEveryIterationWhileDataRemains) {
  SocketPair sockets;
  sockets.writeToPeer("x");

  // The callback leaves the byte unread twice, then reads it on the third call.
  std::vector<uint32_t> calls;
  FileEventPtr event = dispatcher_.createFileEvent(
      sockets.watched(),
      [&](uint32_t events) {
        calls.push_back(events);
        if (calls.size() == 3) {
          EXPECT_EQ("x", sockets.readWatched());
        }
      },
      FileTriggerType::Level, FileReadyType::Read);

  // NonBlock keeps iterating while something is ready, so it returns after the read.
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<uint32_t>{FileReadyType::Read, FileReadyType::Read, FileReadyType::Read}),
            calls);
}

TEST_F(DispatcherTest, EdgeTriggeredReadFiresOncePerNewData) {
  SocketPair sockets;
  int calls = 0;
  FileEventPtr event = dispatcher_.createFileEvent(
      sockets.watched(),
      [&](uint32_t events) {
        EXPECT_EQ(FileReadyType::Read, events);
        calls++;
      },
      FileTriggerType::Edge, FileReadyType::Read);

  // Data arrives and is left unread: one callback.
  sockets.writeToPeer("a");
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ(1, calls);

  // Still unread, but nothing new arrived: no callback.
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ(1, calls);

  // New data: one more.
  sockets.writeToPeer("b");
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ(2, calls);
}

TEST_F(DispatcherTest, WriteReadinessFiresAndSetEnabledStopsIt) {
  SocketPair sockets;
  std::vector<uint32_t> calls;
  FileEventPtr event;
  event = dispatcher_.createFileEvent(
      sockets.watched(),
      [&](uint32_t events) {
        calls.push_back(events);
        // Level-triggered writability would fire forever; stop watching.
        event->setEnabled(0);
      },
      FileTriggerType::Level, FileReadyType::Write);

  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<uint32_t>{FileReadyType::Write}), calls);
}

TEST_F(DispatcherTest, SetEnabledSwitchesTheWatchedEvents) {
  // Readable and writable at once, but only Read is watched at first.
  SocketPair sockets;
  sockets.writeToPeer("x");
  std::vector<uint32_t> calls;
  FileEventPtr event;
  event = dispatcher_.createFileEvent(
      sockets.watched(),
      [&](uint32_t events) {
        calls.push_back(events);
        // First call: switch to Write only. Second: stop.
        event->setEnabled(calls.size() == 1 ? FileReadyType::Write : 0);
      },
      FileTriggerType::Level, FileReadyType::Read);

  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<uint32_t>{FileReadyType::Read, FileReadyType::Write}), calls);
}

TEST_F(DispatcherTest, SetEnabledSwitchesTheTriggerType) {
  // Edge-triggered first: a byte left unread is reported once.
  SocketPair sockets;
  int calls = 0;
  int read_on_call = 0;
  FileEventPtr event = dispatcher_.createFileEvent(
      sockets.watched(),
      [&](uint32_t events) {
        EXPECT_EQ(FileReadyType::Read, events);
        if (++calls == read_on_call) {
          sockets.readWatched();
        }
      },
      FileTriggerType::Edge, FileReadyType::Read);
  sockets.writeToPeer("a");
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ(1, calls);

  // Level-triggered: the same unread byte is reported on every iteration until it is read
  // (on the third call from now); NonBlock iterates while something is ready.
  read_on_call = 4;
  event->setEnabled(FileReadyType::Read, FileTriggerType::Level);
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ(4, calls);

  // Edge-triggered again: a new unread byte is reported once.
  event->setEnabled(FileReadyType::Read, FileTriggerType::Edge);
  sockets.writeToPeer("b");
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ(5, calls);
}

TEST_F(DispatcherTest, ActivateInjectsEventsOnALaterIterationNotInline) {
  // Watch nothing: the only way the callback runs is activate().
  SocketPair sockets;
  std::vector<uint32_t> calls;
  FileEventPtr event = dispatcher_.createFileEvent(
      sockets.watched(), [&](uint32_t events) { calls.push_back(events); }, FileTriggerType::Edge,
      /*events=*/0);

  // Two activations before the loop runs merge into one callback.
  event->activate(FileReadyType::Read);
  event->activate(FileReadyType::Write);
  EXPECT_TRUE(calls.empty()) << "activate() never calls back inline";

  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<uint32_t>{FileReadyType::Read | FileReadyType::Write}), calls);
}

TEST_F(DispatcherTest, ActivationFromTheCallbackWaitsForTheNextIteration) {
  // A watcher that re-activates itself from its own callback 100 times (a connection reading
  // on after a full buffer); on its first call it also arms a zero-delay timer.
  SocketPair sockets;
  int calls = 0;
  int calls_when_timer_ran = -1;
  TimerPtr timer = dispatcher_.createTimer([&] { calls_when_timer_ran = calls; });
  FileEventPtr event;
  event = dispatcher_.createFileEvent(
      sockets.watched(),
      [&](uint32_t) {
        if (++calls == 1) {
          timer->enableTimer(std::chrono::milliseconds(0));
        }
        if (calls < 100) {
          event->activate(FileReadyType::Read);
        }
      },
      FileTriggerType::Edge, /*events=*/0);
  event->activate(FileReadyType::Read);

  // Each re-activation waits for the next iteration, so the timer gets its turn after one or
  // two calls, not after all of them: a busy watcher cannot keep the loop from polling, from
  // its timers (deferred deletion is one) or from other sockets.
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ(calls, 100);
  EXPECT_GE(calls_when_timer_ran, 1);
  EXPECT_LE(calls_when_timer_ran, 2);
}

TEST_F(DispatcherTest, AFlushRunsInThePassThatAskedForItAndAReadWaitsForTheNextPoll) {
  // A connection's write() asks for a Write activation (the flush); a read pass that asks for
  // more reading asks for a Read. Each is asked from a posted callback, after arming a
  // zero-delay timer, which fires on the next iteration.
  SocketPair sockets;
  std::vector<std::string> order;
  TimerPtr timer = dispatcher_.createTimer([&] { order.push_back("timer"); });
  FileEventPtr event = dispatcher_.createFileEvent(
      sockets.watched(),
      [&](uint32_t events) {
        order.push_back(events == FileReadyType::Write
                            ? "write"
                            : (events == (FileReadyType::Read | FileReadyType::Write) ? "read+write"
                                                                                      : "other"));
      },
      FileTriggerType::Edge, /*events=*/0);

  // A Write alone runs in the same pass, before the timer: the flush costs no timer.
  dispatcher_.post([&] {
    timer->enableTimer(std::chrono::milliseconds(0));
    event->activate(FileReadyType::Write);
  });
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<std::string>{"write", "timer"}), order);

  // A Read asked while that flush is queued takes the flush with it to the next iteration
  // (after the timer): a read pass never runs again before the loop polls.
  order.clear();
  dispatcher_.post([&] {
    timer->enableTimer(std::chrono::milliseconds(0));
    event->activate(FileReadyType::Write);
    event->activate(FileReadyType::Read);
  });
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<std::string>{"timer", "read+write"}), order);
}

TEST_F(DispatcherTest, ActivationSurvivesSetEnabled) {
  SocketPair sockets;
  std::vector<uint32_t> calls;
  FileEventPtr event = dispatcher_.createFileEvent(
      sockets.watched(), [&](uint32_t events) { calls.push_back(events); }, FileTriggerType::Edge,
      FileReadyType::Write);

  // setEnabled() re-registers the fd; the pending injected Read must still be delivered.
  event->activate(FileReadyType::Read);
  event->setEnabled(0);

  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<uint32_t>{FileReadyType::Read}), calls);
}

TEST_F(DispatcherTest, EdgeTriggeredClosedFiresWhenThePeerCloses) {
  SocketPair sockets;
  std::vector<uint32_t> calls;
  FileEventPtr event = dispatcher_.createFileEvent(
      sockets.watched(), [&](uint32_t events) { calls.push_back(events); }, FileTriggerType::Edge,
      FileReadyType::Read | FileReadyType::Closed);

  // The peer goes away: EOF is readable and the close is reported, in one callback.
  sockets.closePeer();
  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<uint32_t>{FileReadyType::Read | FileReadyType::Closed}), calls);
}

// ---------------------------------------------------------------------------------------------
// Signals

TEST_F(DispatcherTest, SignalCallbackRunsOnTheLoopThread) {
  // Listen on the creating thread (before the loop runs), then run the loop elsewhere.
  std::thread::id callback_thread;
  Notification signalled;
  SignalEventPtr signal = dispatcher_.listenForSignal(SIGUSR1, [&] {
    callback_thread = std::this_thread::get_id();
    signalled.notify();
  });
  LoopThread loop(dispatcher_);

  // The handler runs on this thread in signal context and only wakes the loop.
  ASSERT_EQ(0, ::raise(SIGUSR1));
  ASSERT_TRUE(waitFor(signalled, "the SIGUSR1 callback"));
  ASSERT_TRUE(loop.stop());
  EXPECT_EQ(loop.threadId(), callback_thread);
  EXPECT_NE(std::this_thread::get_id(), callback_thread);

  // Destroying the SignalEvent restores SIGUSR1's default disposition.
  signal.reset();
}

// ---------------------------------------------------------------------------------------------
// Deferred deletion

TEST_F(DispatcherTest, DeferredDeleteDestroysOnALaterIterationNotInline) {
  bool destroyed = false;
  bool alive_after_deferred_delete = false;
  bool alive_later_in_the_same_iteration = false;
  dispatcher_.post([&] {
    dispatcher_.deferredDelete(std::make_unique<Tracked>([&] { destroyed = true; }));
    alive_after_deferred_delete = !destroyed;
  });
  dispatcher_.post([&] { alive_later_in_the_same_iteration = !destroyed; });

  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_TRUE(alive_after_deferred_delete);
  EXPECT_TRUE(alive_later_in_the_same_iteration);
  EXPECT_TRUE(destroyed) << "destroyed by the end of the run";
}

TEST_F(DispatcherTest, ObjectQueuedByADestructorWaitsForTheNextPass) {
  // `first`'s destructor queues `second`; each records the pass that destroyed it.
  int pass = 0;
  int first_destroyed_in = 0;
  int second_destroyed_in = 0;
  DeferredDeletablePtr second = std::make_unique<Tracked>([&] { second_destroyed_in = pass; });
  dispatcher_.deferredDelete(std::make_unique<Tracked>([&] {
    first_destroyed_in = pass;
    dispatcher_.deferredDelete(std::move(second));
    // A clear requested from inside a pass is a no-op: that pass is already running.
    dispatcher_.clearDeferredDeleteList();
  }));

  // Pass 1 destroys `first` only.
  pass = 1;
  dispatcher_.clearDeferredDeleteList();
  EXPECT_EQ(1, first_destroyed_in);
  EXPECT_EQ(0, second_destroyed_in) << "still alive after pass 1";

  // Pass 2 destroys `second`.
  pass = 2;
  dispatcher_.clearDeferredDeleteList();
  EXPECT_EQ(2, second_destroyed_in);
}

TEST_F(DispatcherTest, LoopDestroysObjectsQueuedByDestructorsOnALaterIteration) {
  // `a` and `b` are destroyed in the same pass, in queue order; `a` queues `c`, which must
  // still be alive when `b` (later in that pass) is destroyed.
  std::vector<std::string> destroyed;
  DeferredDeletablePtr c = std::make_unique<Tracked>([&] { destroyed.push_back("c"); });
  dispatcher_.post([&] {
    dispatcher_.deferredDelete(std::make_unique<Tracked>([&] {
      destroyed.push_back("a");
      dispatcher_.deferredDelete(std::move(c));
    }));
    dispatcher_.deferredDelete(std::make_unique<Tracked>([&] { destroyed.push_back("b"); }));
  });

  dispatcher_.run(Dispatcher::RunType::NonBlock);
  EXPECT_EQ((std::vector<std::string>{"a", "b", "c"}), destroyed);
}

TEST(DispatcherLifetimeTest, DestructorClearsTheDeferredDeleteList) {
  // Objects queued, and one queued by a destructor during shutdown, never see a loop.
  RealTimeSource time_source;
  std::vector<std::string> destroyed;
  DeferredDeletablePtr chained = std::make_unique<Tracked>([&] { destroyed.push_back("chained"); });
  {
    DispatcherImpl dispatcher("test", time_source);
    dispatcher.deferredDelete(std::make_unique<Tracked>([&] {
      destroyed.push_back("first");
      dispatcher.deferredDelete(std::move(chained));
    }));
    dispatcher.deferredDelete(std::make_unique<Tracked>([&] { destroyed.push_back("second"); }));
  }
  EXPECT_EQ((std::vector<std::string>{"first", "second", "chained"}), destroyed);
}

// ---------------------------------------------------------------------------------------------
// Thread affinity and time

TEST_F(DispatcherTest, IsThreadSafeOnlyOnTheOwningThread) {
  // Before the first run the creating thread owns the dispatcher; no other thread does.
  EXPECT_TRUE(dispatcher_.isThreadSafe());
  bool safe_elsewhere_before_run = true;
  std::thread([&] { safe_elsewhere_before_run = dispatcher_.isThreadSafe(); }).join();
  EXPECT_FALSE(safe_elsewhere_before_run);

  // Once run() is called on another thread, that thread owns it and this one does not.
  bool safe_on_loop_thread = false;
  Notification checked;
  dispatcher_.post([&] {
    safe_on_loop_thread = dispatcher_.isThreadSafe();
    checked.notify();
  });
  LoopThread loop(dispatcher_);
  ASSERT_TRUE(waitFor(checked, "the check on the loop thread"));
  EXPECT_TRUE(safe_on_loop_thread);
  EXPECT_FALSE(dispatcher_.isThreadSafe());
  ASSERT_TRUE(loop.stop());
}

TEST(DispatcherTimeTest, ApproximateTimeIsRefreshedBeforeCallbacksAndCachedBetween) {
  FakeTimeSource time_source;
  time_source.monotonic_now = MonotonicTime(seconds(1));
  DispatcherImpl dispatcher("test", time_source);
  EXPECT_EQ(MonotonicTime(seconds(1)), dispatcher.approximateMonotonicTime());

  // The clock moves; the cached value does not until the loop refreshes it.
  time_source.monotonic_now = MonotonicTime(seconds(5));
  EXPECT_EQ(MonotonicTime(seconds(1)), dispatcher.approximateMonotonicTime());

  // A posted callback and a timer callback both see a refreshed value.
  MonotonicTime seen_by_post;
  MonotonicTime seen_by_timer;
  dispatcher.post([&] {
    seen_by_post = dispatcher.approximateMonotonicTime();
    time_source.monotonic_now = MonotonicTime(seconds(9));
  });
  TimerPtr timer =
      dispatcher.createTimer([&] { seen_by_timer = dispatcher.approximateMonotonicTime(); });
  timer->enableTimer(milliseconds(0));
  dispatcher.run(Dispatcher::RunType::Block);
  EXPECT_EQ(MonotonicTime(seconds(5)), seen_by_post);
  EXPECT_EQ(MonotonicTime(seconds(9)), seen_by_timer);

  // updateApproximateMonotonicTime() refreshes on demand.
  time_source.monotonic_now = MonotonicTime(seconds(12));
  dispatcher.updateApproximateMonotonicTime();
  EXPECT_EQ(MonotonicTime(seconds(12)), dispatcher.approximateMonotonicTime());
}

TEST(DispatcherNameTest, NameIsWhatTheCreatorGave) {
  RealTimeSource time_source;
  DispatcherImpl dispatcher("worker_3", time_source);
  EXPECT_EQ("worker_3", dispatcher.name());
  EXPECT_EQ(&time_source, &dispatcher.timeSource());
}

}  // namespace
}  // namespace Proxy::Event
