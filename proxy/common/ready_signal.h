#pragma once

// A one-shot "ready" signal with waiters, for the main thread (Envoy's Init::Target and
// Init::Watcher in miniature): what a listener or cluster warms on while a dynamic resource it
// needs has not arrived (the RDS route configuration provider, the TLS context provider waiting
// for SDS secrets).

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace Proxy {

class ReadySignal {
 public:
  bool ready() const { return ready_; }

  // `cb` runs once, when the signal becomes ready (at once if it already is). Dropping the
  // returned handle cancels it.
  std::shared_ptr<void> addCallback(std::function<void()> cb) {
    auto handle = std::make_shared<bool>(true);
    if (ready_) {
      cb();
      return handle;
    }
    callbacks_.emplace_back(handle, std::move(cb));
    return handle;
  }

  // Becomes ready and runs the waiting callbacks; later calls do nothing.
  void markReady() {
    if (ready_) {
      return;
    }
    ready_ = true;
    // A callback may destroy other waiters (a listener that warmed and replaced another).
    auto callbacks = std::move(callbacks_);
    callbacks_.clear();
    for (auto& [handle, cb] : callbacks) {
      if (!handle.expired()) {
        cb();
      }
    }
  }

 private:
  bool ready_ = false;
  std::vector<std::pair<std::weak_ptr<void>, std::function<void()>>> callbacks_;
};

}  // namespace Proxy
