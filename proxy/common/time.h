#pragma once

// Time as the proxy sees it. Everything that needs "now" takes a TimeSource so tests can
// inject time (ARCHITECTURE.md, convention 12).

#include <chrono>

namespace Proxy {

using MonotonicTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual SystemTime systemTime() = 0;
  virtual MonotonicTime monotonicTime() = 0;
};

class RealTimeSource : public TimeSource {
 public:
  SystemTime systemTime() override { return std::chrono::system_clock::now(); }
  MonotonicTime monotonicTime() override { return std::chrono::steady_clock::now(); }
};

}  // namespace Proxy
