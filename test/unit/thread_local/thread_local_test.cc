// ThreadLocal::InstanceImpl with a real main dispatcher (run on the test thread) and four
// worker dispatchers, each run on its own thread: per-thread objects, runOnAllThreads
// completion, slots destroyed with callbacks in flight, shutdown order and index reuse.

#include "proxy/thread_local/thread_local_impl.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "test/unit/event/notification.h"

namespace Proxy::ThreadLocal {
namespace {

using Proxy::Test::kDeadline;
using Proxy::Test::Notification;
constexpr int kWorkers = 4;
constexpr int kThreads = kWorkers + 1;  // workers + main

// What the tests saw, from any thread.
struct Recorder {
  struct Destruction {
    int tag;
    std::thread::id destroyed_on;
    std::thread::id created_on;
  };

  void destroyed(int tag, std::thread::id created_on) {
    std::lock_guard<std::mutex> lock(mutex);
    destructions.push_back({tag, std::this_thread::get_id(), created_on});
  }
  std::vector<Destruction> destructionsSnapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    return destructions;
  }

  std::mutex mutex;
  std::vector<Destruction> destructions;
  std::atomic<int> created{0};
};

// A per-thread object that remembers which thread and dispatcher built it.
class ThreadObject : public ThreadLocalObject {
 public:
  ThreadObject(Recorder& recorder, int tag, const std::string& dispatcher_name)
      : recorder_(recorder),
        tag_(tag),
        created_on_(std::this_thread::get_id()),
        dispatcher_name_(dispatcher_name) {
    recorder_.created++;
  }
  ~ThreadObject() override { recorder_.destroyed(tag_, created_on_); }

  int tag() const { return tag_; }
  std::thread::id createdOn() const { return created_on_; }
  const std::string& dispatcherName() const { return dispatcher_name_; }

 private:
  Recorder& recorder_;
  const int tag_;
  const std::thread::id created_on_;
  const std::string dispatcher_name_;
};

class ThreadLocalTest : public testing::Test {
 protected:
  void SetUp() override {
    // Main registers first, then the workers, before any worker thread runs.
    main_ = std::make_unique<Event::DispatcherImpl>("main", time_source_);
    tls_.registerThread(*main_, /*main_thread=*/true);
    for (int i = 0; i < kWorkers; i++) {
      workers_.push_back(
          std::make_unique<Event::DispatcherImpl>("worker_" + std::to_string(i), time_source_));
      tls_.registerThread(*workers_.back(), /*main_thread=*/false);
    }
    for (int i = 0; i < kWorkers; i++) {
      worker_exited_.push_back(std::make_unique<Notification>());
      threads_.emplace_back([this, i] {
        workers_[i]->run(Event::Dispatcher::RunType::RunUntilExit);
        worker_exited_[i]->notify();
      });
      worker_thread_ids_.push_back(threads_.back().get_id());
    }
  }

  void TearDown() override {
    if (!tls_.isShutdown()) {
      EXPECT_TRUE(shutdown());
    }
    // Threads are joined; the dispatchers can go (workers first, main last).
    workers_.clear();
    main_.reset();
  }

  // The server's shutdown sequence: stop posting, let every worker destroy its own objects
  // and exit, join them, then main destroys its own.
  testing::AssertionResult shutdown() {
    tls_.shutdownGlobalThreading();
    for (auto& worker : workers_) {
      Event::Dispatcher* dispatcher = worker.get();
      dispatcher->post([this, dispatcher] {
        tls_.shutdownThread();
        dispatcher->exit();
      });
    }
    for (int i = 0; i < kWorkers; i++) {
      if (!worker_exited_[i]->waitFor(kDeadline)) {
        return testing::AssertionFailure()
               << "worker_" << i << " did not exit in " << kDeadline.count() << "s";
      }
      threads_[i].join();
    }
    tls_.shutdownThread();
    return testing::AssertionSuccess();
  }

  // Returns once every worker has run everything main posted to it so far (posts from one
  // thread run in order).
  testing::AssertionResult drainWorkers() {
    std::vector<std::unique_ptr<Notification>> drained;
    for (auto& worker : workers_) {
      drained.push_back(std::make_unique<Notification>());
      worker->post([done = drained.back().get()] { done->notify(); });
    }
    for (int i = 0; i < kWorkers; i++) {
      if (!drained[i]->waitFor(kDeadline)) {
        return testing::AssertionFailure()
               << "worker_" << i << " did not drain in " << kDeadline.count() << "s";
      }
    }
    return testing::AssertionSuccess();
  }

  // Runs the main loop on this thread until a callback calls main_->exit(), or the deadline.
  testing::AssertionResult runMainUntilExit() {
    bool timed_out = false;
    Event::TimerPtr deadline = main_->createTimer([&] {
      timed_out = true;
      main_->exit();
    });
    deadline->enableTimer(std::chrono::seconds(30));
    main_->run(Event::Dispatcher::RunType::RunUntilExit);
    if (timed_out) {
      return testing::AssertionFailure() << "main loop was not exited within 30s";
    }
    return testing::AssertionSuccess();
  }

  Slot::InitializeCb objectFactory(int tag) {
    return [this, tag](Event::Dispatcher& dispatcher) {
      return std::make_shared<ThreadObject>(recorder_, tag, dispatcher.name());
    };
  }

  // Main (this thread) and the workers; still valid after the workers were joined.
  std::set<std::thread::id> allThreadIds() const {
    std::set<std::thread::id> ids(worker_thread_ids_.begin(), worker_thread_ids_.end());
    ids.insert(std::this_thread::get_id());
    return ids;
  }

  RealTimeSource time_source_;
  Recorder recorder_;
  InstanceImpl tls_;
  std::unique_ptr<Event::DispatcherImpl> main_;
  std::vector<std::unique_ptr<Event::DispatcherImpl>> workers_;
  std::vector<std::unique_ptr<Notification>> worker_exited_;
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> worker_thread_ids_;
};

TEST_F(ThreadLocalTest, SetGivesEveryThreadItsOwnObjectBuiltOnThatThread) {
  SlotPtr slot = tls_.allocateSlot();
  EXPECT_FALSE(slot->currentThreadRegistered());
  EXPECT_EQ(nullptr, slot->get());

  // set(): main's copy exists as soon as set() returns.
  slot->set(objectFactory(/*tag=*/7));
  ASSERT_TRUE(slot->currentThreadRegistered());
  EXPECT_EQ(std::this_thread::get_id(), slot->getTyped<ThreadObject>().createdOn());
  EXPECT_EQ("main", slot->getTyped<ThreadObject>().dispatcherName());

  // Every thread reports the object it holds, from that thread.
  struct Sighting {
    std::thread::id thread;
    const ThreadObject* object;
    const ThreadObject* via_get;
    std::string tls_dispatcher;
  };
  std::mutex mutex;
  std::vector<Sighting> sightings;
  slot->runOnAllThreads(
      [&](ThreadLocalObjectSharedPtr& object) {
        std::lock_guard<std::mutex> lock(mutex);
        sightings.push_back({std::this_thread::get_id(),
                             static_cast<const ThreadObject*>(object.get()),
                             &slot->getTyped<ThreadObject>(), tls_.dispatcher().name()});
      },
      /*all_done=*/[&] { main_->exit(); });
  ASSERT_TRUE(runMainUntilExit());

  // Five threads, five distinct objects, each built on the thread holding it by that
  // thread's dispatcher.
  ASSERT_EQ(kThreads, static_cast<int>(sightings.size()));
  std::set<std::thread::id> threads;
  std::set<const ThreadObject*> objects;
  std::set<std::string> dispatcher_names;
  for (const Sighting& sighting : sightings) {
    ASSERT_NE(nullptr, sighting.object);
    threads.insert(sighting.thread);
    objects.insert(sighting.object);
    dispatcher_names.insert(sighting.object->dispatcherName());
    EXPECT_EQ(sighting.thread, sighting.object->createdOn());
    EXPECT_EQ(sighting.object, sighting.via_get) << "get() returns the same copy";
    EXPECT_EQ(sighting.tls_dispatcher, sighting.object->dispatcherName());
    EXPECT_EQ(7, sighting.object->tag());
  }
  EXPECT_EQ(allThreadIds(), threads);
  EXPECT_EQ(static_cast<size_t>(kThreads), objects.size());
  EXPECT_EQ((std::set<std::string>{"main", "worker_0", "worker_1", "worker_2", "worker_3"}),
            dispatcher_names);
  EXPECT_EQ(kThreads, recorder_.created.load());
}

TEST_F(ThreadLocalTest, RunOnAllThreadsRunsAllDoneOnMainOnceAfterEveryThreadRan) {
  SlotPtr slot = tls_.allocateSlot();
  slot->set(objectFactory(/*tag=*/0));

  std::atomic<int> ran{0};
  int all_done_calls = 0;
  int ran_when_all_done = -1;
  std::thread::id all_done_thread;
  slot->runOnAllThreads([&](ThreadLocalObjectSharedPtr&) { ran++; },
                        /*all_done=*/
                        [&] {
                          all_done_calls++;
                          ran_when_all_done = ran.load();
                          all_done_thread = std::this_thread::get_id();
                          main_->exit();
                        });
  // Main's share ran inline; all_done waits for the workers and runs from main's loop.
  EXPECT_EQ(0, all_done_calls);
  ASSERT_TRUE(runMainUntilExit());

  // Let anything else in flight land, then check that all_done ran exactly once.
  ASSERT_TRUE(drainWorkers());
  main_->run(Event::Dispatcher::RunType::NonBlock);
  EXPECT_EQ(1, all_done_calls);
  EXPECT_EQ(kThreads, ran_when_all_done);
  EXPECT_EQ(std::this_thread::get_id(), all_done_thread);
}

TEST_F(ThreadLocalTest, RunOnAllThreadsCanReplaceEachThreadsObject) {
  SlotPtr slot = tls_.allocateSlot();
  slot->set(objectFactory(/*tag=*/1));

  // Each thread swaps its copy for a new one with tag 2; the old one dies on that thread.
  slot->runOnAllThreads(
      [&](ThreadLocalObjectSharedPtr& object) {
        object = std::make_shared<ThreadObject>(recorder_, /*tag=*/2, "replacement");
      },
      /*all_done=*/[&] { main_->exit(); });
  ASSERT_TRUE(runMainUntilExit());

  // Every thread now reads tag 2 through get().
  std::atomic<int> saw_replacement{0};
  slot->runOnAllThreads(
      [&](ThreadLocalObjectSharedPtr&) {
        if (slot->getTyped<ThreadObject>().tag() == 2) {
          saw_replacement++;
        }
      },
      /*all_done=*/[&] { main_->exit(); });
  ASSERT_TRUE(runMainUntilExit());
  EXPECT_EQ(kThreads, saw_replacement.load());

  std::vector<Recorder::Destruction> destructions = recorder_.destructionsSnapshot();
  ASSERT_EQ(static_cast<size_t>(kThreads), destructions.size());
  for (const Recorder::Destruction& destruction : destructions) {
    EXPECT_EQ(1, destruction.tag);
    EXPECT_EQ(destruction.created_on, destruction.destroyed_on);
  }
}

TEST_F(ThreadLocalTest, SlotDestroyedWhileCallbacksAreInFlightRunsNoneOfThem) {
  // Hold every worker inside a callback so that what main posts next queues up behind it.
  Notification release_workers;
  std::atomic<int> workers_holding{0};
  Notification all_holding;
  for (auto& worker : workers_) {
    worker->post([&] {
      if (++workers_holding == kWorkers) {
        all_holding.notify();
      }
      EXPECT_TRUE(release_workers.waitFor(kDeadline));
    });
  }
  ASSERT_TRUE(all_holding.waitFor(kDeadline));

  // set() and runOnAllThreads() run inline on main and queue on the held workers...
  std::atomic<int> update_ran{0};
  std::atomic<int> all_done_ran{0};
  SlotPtr slot = tls_.allocateSlot();
  slot->set(objectFactory(/*tag=*/3));
  slot->runOnAllThreads([&](ThreadLocalObjectSharedPtr&) { update_ran++; },
                        /*all_done=*/[&] { all_done_ran++; });
  EXPECT_EQ(1, recorder_.created.load()) << "main's copy only, so far";
  EXPECT_EQ(1, update_ran.load()) << "main's share only, so far";

  // ...then the slot dies before the workers get to them. Main's copy dies right here.
  slot.reset();
  EXPECT_EQ(1u, recorder_.destructionsSnapshot().size());

  // Release the workers and let everything queued run, including anything sent back to main.
  release_workers.notify();
  ASSERT_TRUE(drainWorkers());
  main_->run(Event::Dispatcher::RunType::NonBlock);

  // None of the queued callbacks touched the dead slot: no worker built an object, no update
  // ran there, and all_done was dropped.
  EXPECT_EQ(1, recorder_.created.load());
  EXPECT_EQ(1, update_ran.load());
  EXPECT_EQ(0, all_done_ran.load());
  EXPECT_EQ(1u, recorder_.destructionsSnapshot().size());
}

TEST_F(ThreadLocalTest, ShutdownDestroysEachThreadsObjectsInReverseSlotOrder) {
  // Three slots, set in order; each object is tagged with its slot's position.
  std::vector<SlotPtr> slots;
  for (int tag = 0; tag < 3; tag++) {
    slots.push_back(tls_.allocateSlot());
    slots.back()->set(objectFactory(tag));
  }
  ASSERT_TRUE(drainWorkers());
  ASSERT_EQ(3 * kThreads, recorder_.created.load());
  EXPECT_TRUE(recorder_.destructionsSnapshot().empty());

  // Shut down: each worker destroys its own objects, then main does.
  ASSERT_TRUE(shutdown());

  // Per thread: 2, 1, 0, each destroyed on the thread that built it.
  std::vector<Recorder::Destruction> destructions = recorder_.destructionsSnapshot();
  ASSERT_EQ(static_cast<size_t>(3 * kThreads), destructions.size());
  for (const std::thread::id& thread : allThreadIds()) {
    std::vector<int> order;
    for (const Recorder::Destruction& destruction : destructions) {
      if (destruction.destroyed_on == thread) {
        order.push_back(destruction.tag);
        EXPECT_EQ(thread, destruction.created_on);
      }
    }
    EXPECT_EQ((std::vector<int>{2, 1, 0}), order);
  }

  // Slots destroyed after shutdown post nothing (the workers are gone).
  slots.clear();
}

TEST_F(ThreadLocalTest, FreedIndexIsReusedAndStartsEmptyOnEveryThread) {
  // Two slots at indexes 0 and 1; the first one gets objects everywhere.
  SlotPtr first = tls_.allocateSlot();
  SlotPtr second = tls_.allocateSlot();
  EXPECT_EQ(0u, static_cast<SlotImpl&>(*first).index());
  EXPECT_EQ(1u, static_cast<SlotImpl&>(*second).index());
  first->set(objectFactory(/*tag=*/4));
  ASSERT_TRUE(drainWorkers());

  // Free index 0: the objects die, each on its own thread.
  first.reset();
  ASSERT_TRUE(drainWorkers());
  std::vector<Recorder::Destruction> destructions = recorder_.destructionsSnapshot();
  ASSERT_EQ(static_cast<size_t>(kThreads), destructions.size());
  for (const Recorder::Destruction& destruction : destructions) {
    EXPECT_EQ(destruction.created_on, destruction.destroyed_on);
  }

  // The next allocation reuses index 0; the one after takes a fresh index.
  SlotPtr reused = tls_.allocateSlot();
  SlotPtr fresh = tls_.allocateSlot();
  EXPECT_EQ(0u, static_cast<SlotImpl&>(*reused).index());
  EXPECT_EQ(2u, static_cast<SlotImpl&>(*fresh).index());

  // It starts empty everywhere: nothing of the old slot's objects is visible.
  EXPECT_FALSE(reused->currentThreadRegistered());
  std::atomic<int> empty_on{0};
  reused->runOnAllThreads(
      [&](ThreadLocalObjectSharedPtr& object) {
        if (object == nullptr && reused->get() == nullptr) {
          empty_on++;
        }
      },
      /*all_done=*/[&] { main_->exit(); });
  ASSERT_TRUE(runMainUntilExit());
  EXPECT_EQ(kThreads, empty_on.load());
}

TEST(ThreadLocalMainOnlyTest, AllDoneRunsFromTheMainLoopWhenThereAreNoWorkers) {
  RealTimeSource time_source;
  Event::DispatcherImpl main("main", time_source);
  {
    InstanceImpl tls;
    tls.registerThread(main, /*main_thread=*/true);
    SlotPtr slot = tls.allocateSlot();
    Recorder recorder;
    slot->set([&](Event::Dispatcher& dispatcher) {
      return std::make_shared<ThreadObject>(recorder, /*tag=*/0, dispatcher.name());
    });

    // all_done is posted, not run inline, even with no worker to wait for.
    int ran = 0;
    int all_done_ran = 0;
    slot->runOnAllThreads([&](ThreadLocalObjectSharedPtr&) { ran++; },
                          /*all_done=*/[&] { all_done_ran++; });
    EXPECT_EQ(1, ran);
    EXPECT_EQ(0, all_done_ran);
    main.run(Event::Dispatcher::RunType::NonBlock);
    EXPECT_EQ(1, all_done_ran);

    EXPECT_EQ(&main, &tls.dispatcher());
    tls.shutdownGlobalThreading();
    tls.shutdownThread();
    EXPECT_EQ(1u, recorder.destructionsSnapshot().size());
  }
}

}  // namespace
}  // namespace Proxy::ThreadLocal
