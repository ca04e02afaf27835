#pragma once

// The inotify Watcher (Linux): one inotify descriptor per watcher, read by a file event on the
// Dispatcher that created it; one inotify watch per directory, shared by the paths in it.

#include <map>
#include <string>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/filesystem/watcher.h"

namespace Proxy::Filesystem {

class WatcherImpl : public Watcher {
 public:
  // Dispatcher thread. An inotify descriptor that cannot be opened (the per-user limit) leaves
  // the watcher inert: addWatch() says so.
  explicit WatcherImpl(Event::Dispatcher& dispatcher);
  ~WatcherImpl() override;

  absl::Status addWatch(const std::string& path, uint32_t events, OnChangedCb cb) override;

 private:
  struct FileWatch {
    std::string file;  // empty: any entry of the directory
    uint32_t events;
    OnChangedCb cb;
  };
  struct DirectoryWatch {
    std::string directory;
    std::vector<FileWatch> watches;
  };

  void onInotifyEvent();

  Event::Dispatcher& dispatcher_;
  int fd_ = -1;
  int open_errno_ = 0;
  Event::FileEventPtr file_event_;
  std::map<int, DirectoryWatch> directories_;  // by inotify watch descriptor
};

}  // namespace Proxy::Filesystem
