#pragma once

// The overload manager's global downstream connection limit
// (envoy.resource_monitors.global_downstream_max_connections): one count of open downstream
// connections shared by every worker's listeners (and the admin listener unless it opts out).
// An atomic, never a lock: accept() on any worker takes a slot (TcpListenerImpl), and the
// accepted socket's owner holds it in a ConnectionSlot until the connection is gone.

#include <atomic>
#include <cstdint>
#include <utility>

namespace Proxy::Network {

class GlobalConnectionLimit {
 public:
  explicit GlobalConnectionLimit(uint64_t max) : max_(max) {}

  // Any thread: takes a slot when fewer than max() are taken.
  bool tryAcquire() {
    uint64_t current = active_.load(std::memory_order_relaxed);
    while (current < max_) {
      if (active_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  // Any thread: gives a slot back.
  void release() { active_.fetch_sub(1, std::memory_order_relaxed); }

  uint64_t active() const { return active_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_; }

 private:
  const uint64_t max_;
  std::atomic<uint64_t> active_{0};
};

// One slot of a GlobalConnectionLimit, given back on destruction (or reset()). Movable, so it
// follows an accepted socket from the listener to its connection. Empty when constructed with
// null (no limit).
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  explicit ConnectionSlot(GlobalConnectionLimit* limit) : limit_(limit) {}
  ConnectionSlot(ConnectionSlot&& other) noexcept : limit_(std::exchange(other.limit_, nullptr)) {}
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept {
    if (this != &other) {
      reset();
      limit_ = std::exchange(other.limit_, nullptr);
    }
    return *this;
  }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { reset(); }

  void reset() {
    if (limit_ != nullptr) {
      limit_->release();
      limit_ = nullptr;
    }
  }

 private:
  GlobalConnectionLimit* limit_ = nullptr;
};

}  // namespace Proxy::Network
