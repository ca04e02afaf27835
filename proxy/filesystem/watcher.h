#pragma once

// Watches files and directories for changes (Envoy's Filesystem::Watcher): a file is rotated by
// moving a new one over it, a Kubernetes-mounted directory by swapping its `..data` symlink,
// both atomic renames the watcher sees as "moved to". Callbacks run on the thread of the
// Dispatcher that created the watcher (the main thread). Destroying a watcher removes its watches.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace Proxy::Filesystem {

class Watcher {
 public:
  struct Events {
    static constexpr uint32_t MovedTo = 0x1;   // an entry was renamed onto the path
    static constexpr uint32_t Modified = 0x2;  // the file was written in place
  };
  using OnChangedCb = std::function<void(uint32_t events)>;

  virtual ~Watcher() = default;

  // Watch `path`: a file (its directory is watched and only events naming the file count) or,
  // ending in '/', a directory (an event on any entry counts). The directory must exist. Errors
  // name the path and the reason. Dispatcher thread only.
  virtual absl::Status addWatch(const std::string& path, uint32_t events, OnChangedCb cb) = 0;
};

using WatcherPtr = std::unique_ptr<Watcher>;

}  // namespace Proxy::Filesystem
