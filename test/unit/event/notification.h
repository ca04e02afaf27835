#pragma once

// A one-shot event for threaded tests. Built on std::mutex/std::condition_variable rather than
// absl::Notification: Debian's libabsl is not compiled with TSAN annotations, so TSAN cannot
// see the ordering an absl::Notification provides and reports false data races.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "gtest/gtest.h"

namespace Proxy::Test {

// How long a test waits for something another thread does before it fails.
constexpr std::chrono::seconds kDeadline{30};

class Notification {
 public:
  void notify() {
    std::lock_guard<std::mutex> lock(mutex_);
    notified_ = true;
    cv_.notify_all();
  }

  // True once notify() ran; what the notifier did before it is visible after this returns.
  bool waitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return notified_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// Waits for `notification` until kDeadline; a failure names what was waited for.
inline testing::AssertionResult waitFor(Notification& notification, const std::string& what) {
  if (notification.waitFor(kDeadline)) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure()
         << "timed out after " << kDeadline.count() << "s waiting for " << what;
}

}  // namespace Proxy::Test
