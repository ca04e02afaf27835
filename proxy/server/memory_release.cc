#include "proxy/server/memory_release.h"

#include <malloc.h>

#include <algorithm>

#include "spdlog/spdlog.h"

namespace Proxy::Server {

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
  const struct mallinfo2 info = ::mallinfo2();
  // In use: ordinary chunks plus the ones mmap()ed on their own; from the OS: the arenas plus
  // those mmap()ed chunks. fordblks is what the arenas hold free (their top chunks included).
  allocated_.set(static_cast<int64_t>(info.uordblks + info.hblkhd));
  heap_size_.set(static_cast<int64_t>(info.arena + info.hblkhd));
  lowest_free_ = std::min<uint64_t>(lowest_free_, info.fordblks);
  if (info.fordblks - lowest_free_ > threshold_bytes_) {
    spdlog::debug("malloc_trim: {} bytes free in the arenas, {} freed since the last trim",
                  info.fordblks, info.fordblks - lowest_free_);
    ::malloc_trim(0);
    lowest_free_ = info.fordblks;
  }
  timer_->enableTimer(interval_);
}

}  // namespace Proxy::Server
