#include "proxy/server/memory_release.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "spdlog/spdlog.h"

namespace Proxy::Server {
namespace {

// Resident set size of this process in bytes (/proc/self/statm: size resident ...), 0 if
// unreadable.
uint64_t residentBytes() {
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) {
    return 0;
  }
  unsigned long size = 0;
  unsigned long resident = 0;
  const int n = std::fscanf(statm, "%lu %lu", &size, &resident);
  std::fclose(statm);
  return n == 2 ? static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))
                : 0;
}

// Resident but not allocated: what a trim could give back, plus everything that is not heap.
uint64_t unusedResidentBytes(const struct mallinfo2& info) {
  const uint64_t resident = residentBytes();
  const uint64_t allocated = info.uordblks + info.hblkhd;
  return resident > allocated ? resident - allocated : 0;
}

}  // namespace

FreeMemoryReleaser::FreeMemoryReleaser(Event::Dispatcher& dispatcher, Stats::Store& store,
                                       std::chrono::milliseconds interval, uint64_t threshold_bytes)
    : interval_(interval),
      threshold_bytes_(threshold_bytes),
      allocated_(store.gauge("server.memory_allocated")),
      heap_size_(store.gauge("server.memory_heap_size")) {
  timer_ = dispatcher.createTimer([this] { onTimer(); });
  timer_->enableTimer(std::chrono::milliseconds(0));
}

void FreeMemoryReleaser::onTimer() {
  struct mallinfo2 info = ::mallinfo2();
  // In use: ordinary chunks plus the ones mmap()ed on their own; from the OS: the arenas plus
  // those mmap()ed chunks.
  allocated_.set(static_cast<int64_t>(info.uordblks + info.hblkhd));
  heap_size_.set(static_cast<int64_t>(info.arena + info.hblkhd));
  const uint64_t unused = unusedResidentBytes(info);
  reference_unused_ = std::min(reference_unused_, unused);
  if (unused > reference_unused_ + threshold_bytes_) {
    ::malloc_trim(0);
    info = ::mallinfo2();
    const uint64_t after = unusedResidentBytes(info);
    spdlog::debug("malloc_trim: {} bytes resident and unused before, {} after", unused, after);
    // What is left (memory outside the heap that grew, say) is the new normal: trim again only
    // once that much more is free.
    reference_unused_ = after;
  }
  timer_->enableTimer(interval_);
}

}  // namespace Proxy::Server
