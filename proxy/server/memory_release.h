#pragma once

// Gives memory the allocator holds free back to the kernel, and publishes Envoy's
// server.memory_allocated / server.memory_heap_size gauges. glibc keeps what the process frees
// in its arenas (each worker thread allocates from its own) and returns only the free top of a
// heap, so a burst of connection buffers (a hundred connections each holding its buffer limit,
// as in a pipelining flood) left the resident set at its peak for the life of the process,
// though nothing was in use any more. Envoy's tcmalloc releases free memory in the background;
// with glibc the equivalent is malloc_trim(), which also returns free pages inside an arena.
// Main thread only.

#include <chrono>
#include <cstdint>

#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"

namespace Proxy::Server {

class FreeMemoryReleaser {
 public:
  // Every `interval`, compares the resident set with what the allocator has in use: the
  // difference is code, stacks and the like, plus free memory the allocator keeps resident.
  // When it exceeds its lowest value so far (the first part alone, roughly) by more than
  // `threshold_bytes`, the allocator is trimmed. Trimming walks the free chunks with each arena
  // locked, so it runs only when there is something worth giving back.
  FreeMemoryReleaser(Event::Dispatcher& dispatcher, Stats::Store& store,
                     std::chrono::milliseconds interval = std::chrono::seconds(2),
                     uint64_t threshold_bytes = 8 * 1024 * 1024);

 private:
  void onTimer();

  const std::chrono::milliseconds interval_;
  const uint64_t threshold_bytes_;
  Stats::Gauge& allocated_;
  Stats::Gauge& heap_size_;
  Event::TimerPtr timer_;
  // Resident but not allocated, at its lowest (or right after the last trim).
  uint64_t reference_unused_ = UINT64_MAX;
};

}  // namespace Proxy::Server
