#include "proxy/filesystem/watcher_impl.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "proxy/common/assert.h"

namespace Proxy::Filesystem {
namespace {

uint32_t toInotifyMask(uint32_t events) {
  uint32_t mask = 0;
  if (events & Watcher::Events::MovedTo) {
    mask |= IN_MOVED_TO;
  }
  if (events & Watcher::Events::Modified) {
    mask |= IN_MODIFY;
  }
  return mask;
}

uint32_t fromInotifyMask(uint32_t mask) {
  uint32_t events = 0;
  if (mask & IN_MOVED_TO) {
    events |= Watcher::Events::MovedTo;
  }
  if (mask & IN_MODIFY) {
    events |= Watcher::Events::Modified;
  }
  return events;
}

}  // namespace

WatcherImpl::WatcherImpl(Event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    open_errno_ = errno;
    return;
  }
  file_event_ = dispatcher_.createFileEvent(
      fd_, [this](uint32_t) { onInotifyEvent(); }, Event::FileTriggerType::Level,
      Event::FileReadyType::Read);
}

WatcherImpl::~WatcherImpl() {
  file_event_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

absl::Status WatcherImpl::addWatch(const std::string& path, uint32_t events, OnChangedCb cb) {
  ASSERT(dispatcher_.isThreadSafe());
  if (fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot watch '", path, "': inotify_init1: ", std::strerror(open_errno_)));
  }
  // "dir/file" watches "dir" for "file"; "dir/" watches every entry of "dir".
  const size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
  // IN_MASK_ADD: a second path in the same directory adds its events to the one watch.
  const int wd = inotify_add_watch(fd_, directory.c_str(), toInotifyMask(events) | IN_MASK_ADD);
  if (wd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot watch '", path, "': ", directory, ": ", std::strerror(errno)));
  }
  DirectoryWatch& watch = directories_[wd];
  watch.directory = directory;
  watch.watches.push_back(FileWatch{file, events, std::move(cb)});
  return absl::OkStatus();
}

void WatcherImpl::onInotifyEvent() {
  // Several events may be queued; a callback may add watches (never remove: they live as long
  // as the watcher), so callbacks are collected first and run after the read loop.
  std::vector<std::pair<OnChangedCb, uint32_t>> ready;
  alignas(struct inotify_event) char buffer[16 * 1024];
  while (true) {
    const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n <= 0) {
      break;  // EAGAIN: drained
    }
    for (ssize_t offset = 0; offset < n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + offset);
      offset += sizeof(struct inotify_event) + event->len;
      auto it = directories_.find(event->wd);
      if (it == directories_.end()) {
        continue;
      }
      const std::string name = event->len > 0 ? std::string(event->name) : std::string();
      const uint32_t events = fromInotifyMask(event->mask);
      for (const FileWatch& watch : it->second.watches) {
        if ((watch.events & events) != 0 && (watch.file.empty() || watch.file == name)) {
          ready.emplace_back(watch.cb, watch.events & events);
        }
      }
    }
  }
  for (auto& [cb, events] : ready) {
    cb(events);
  }
}

}  // namespace Proxy::Filesystem
