#pragma once

// A chain of byte slices backed by a libevent evbuffer. Moving bytes between buffers
// (downstream -> upstream) relinks slices instead of copying them, and writeToFd() hands all
// slices to one writev(). Not thread-safe: a buffer belongs to one thread at a time.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct evbuffer;

namespace Proxy::Buffer {

struct RawSlice {
  void* mem = nullptr;
  size_t len = 0;
};

// Result of a syscall-level read or write: bytes moved, or -1 with errno in `error`.
struct IoResult {
  ssize_t rc;
  int error;
  bool ok() const { return rc >= 0; }
  bool wouldBlock() const;
};

class Instance {
 public:
  Instance();
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  void add(const void* data, size_t size);
  void add(std::string_view data) { add(data.data(), data.size()); }
  // Copy every byte of `other` (other is unchanged).
  void add(const Instance& other);
  // Append `data` as a slice of its own, never coalesced: tests build buffers whose slice
  // boundaries fall where separate socket reads would put them.
  void appendSliceForTest(std::string_view data);
  void prepend(std::string_view data);
  // Below this many bytes, move() copies into this buffer's tail instead of relinking.
  static constexpr size_t kCopyThreshold = 512;

  // Move all of `other` to the end of this buffer, relinking its slices without copying (a
  // source smaller than kCopyThreshold is copied into the tail). `other` ends up empty.
  void move(Instance& other);
  // Move the first `length` bytes of `other`.
  void move(Instance& other, uint64_t length);
  void drain(uint64_t size);
  uint64_t length() const;

  // Up to `max_slices` slices covering the buffer's bytes, in order; returns how many exist
  // (which may be more than max_slices).
  size_t getRawSlices(RawSlice* out, size_t max_slices) const;
  // Make the first `size` bytes contiguous and return them.
  void* linearize(uint64_t size);
  // Offset of the first occurrence of `needle` at or after `start`, or -1.
  ssize_t search(std::string_view needle, size_t start = 0) const;
  // Copy out the first `size` bytes without draining.
  void copyOut(size_t start, uint64_t size, void* out) const;
  std::string toString() const;

  // Read up to `max_length` bytes from a non-blocking fd.
  IoResult readFromFd(int fd, uint64_t max_length);
  // Write as much as the fd accepts (one writev over the slices) and drain what was written.
  IoResult writeToFd(int fd);

  evbuffer* raw() { return buffer_; }

 private:
  evbuffer* buffer_;
};

using InstancePtr = std::unique_ptr<Instance>;

}  // namespace Proxy::Buffer
