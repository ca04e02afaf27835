#pragma once

// Small helpers of the stream logic, separate so they are tested on their own: the reconnect
// backoff and the request token bucket. Main thread only.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>

#include "proxy/common/time.h"

namespace Proxy::Xds {

// Exponential backoff with jitter: the n-th delay is uniform in [interval/2, interval],
// interval = min(base * 2^(n-1), max). Never shorter than base/2, so a server that fails every
// stream at once cannot turn reconnecting into a busy loop.
class JitteredBackoff {
 public:
  JitteredBackoff(std::chrono::milliseconds base, std::chrono::milliseconds max,
                  std::function<uint64_t()> random)
      : base_(std::max<int64_t>(base.count(), 1)),
        max_(std::max<int64_t>(max.count(), base_)),
        interval_(base_),
        random_(std::move(random)) {}

  std::chrono::milliseconds next() {
    const uint64_t interval = interval_;
    interval_ = std::min<uint64_t>(interval_ * 2, max_);
    const uint64_t half = interval / 2;
    return std::chrono::milliseconds(interval - half + random_() % (half + 1));
  }

  void reset() { interval_ = base_; }

 private:
  const uint64_t base_;
  const uint64_t max_;
  uint64_t interval_;
  std::function<uint64_t()> random_;
};

// Envoy's token bucket: starts full, refills continuously at fill_rate per second.
class TokenBucket {
 public:
  TokenBucket(uint32_t max_tokens, double fill_rate, TimeSource& time_source)
      : max_tokens_(max_tokens),
        fill_rate_(fill_rate),
        time_source_(time_source),
        tokens_(max_tokens),
        last_fill_(time_source.monotonicTime()) {}

  bool consume() {
    refill();
    if (tokens_ < 1 - kEpsilon) {
      return false;
    }
    tokens_ = std::max(0.0, tokens_ - 1);
    return true;
  }

  // How long until consume() can succeed (0 if it can now); at least 1 ms when it cannot.
  std::chrono::milliseconds nextTokenIn() {
    refill();
    if (tokens_ >= 1 - kEpsilon) {
      return std::chrono::milliseconds(0);
    }
    const double seconds = (1 - tokens_) / fill_rate_;
    return std::chrono::milliseconds(
        std::max<int64_t>(1, static_cast<int64_t>(seconds * 1000 + 0.999)));
  }

 private:
  void refill() {
    const MonotonicTime now = time_source_.monotonicTime();
    const double elapsed = std::chrono::duration<double>(now - last_fill_).count();
    last_fill_ = now;
    tokens_ = std::min<double>(max_tokens_, tokens_ + elapsed * fill_rate_);
  }

  // Refills are sums of fractions: 0.01 + 0.99 may fall a hair short of 1 after waiting
  // exactly nextTokenIn().
  static constexpr double kEpsilon = 1e-9;

  const uint32_t max_tokens_;
  const double fill_rate_;
  TimeSource& time_source_;
  double tokens_;
  MonotonicTime last_fill_;
};

}  // namespace Proxy::Xds
