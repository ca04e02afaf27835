// The global downstream connection limit's count: slots taken and given back from several
// threads at once never exceed the cap, and a slot moved along with its socket is given back
// exactly once. Runs under TSan in CI (LABELS threading).

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/network/connection_limit.h"

namespace Proxy::Network {
namespace {

TEST(GlobalConnectionLimitTest, ThreadsNeverTakeMoreThanTheCap) {
  GlobalConnectionLimit limit(/*max=*/3);
  std::atomic<uint64_t> over{0};
  std::atomic<uint64_t> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; i++) {
        if (limit.tryAcquire()) {
          taken++;
          if (limit.active() > limit.max()) {
            over++;
          }
          limit.release();
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(0u, over.load());
  EXPECT_GT(taken.load(), 0u);
  EXPECT_EQ(0u, limit.active());
}

TEST(GlobalConnectionLimitTest, ASlotFollowsItsSocketAndComesBackOnce) {
  GlobalConnectionLimit limit(/*max=*/1);
  {
    ASSERT_TRUE(limit.tryAcquire());
    ConnectionSlot slot(&limit);
    EXPECT_FALSE(limit.tryAcquire());  // full
    // Moved twice (from the listener to a pending socket to the connection): still one slot.
    ConnectionSlot moved(std::move(slot));
    ConnectionSlot assigned;
    assigned = std::move(moved);
    EXPECT_EQ(1u, limit.active());
    slot.reset();  // the moved-from slot has nothing to give back
    EXPECT_EQ(1u, limit.active());
  }
  // Destroyed: the slot is free again. An empty slot (no limit) gives nothing back.
  EXPECT_EQ(0u, limit.active());
  { ConnectionSlot none(nullptr); }
  EXPECT_EQ(0u, limit.active());
  EXPECT_TRUE(limit.tryAcquire());
}

}  // namespace
}  // namespace Proxy::Network
