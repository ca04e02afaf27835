#pragma once

// A chain of byte slices, as Envoy's Buffer::OwnedImpl. Moving bytes between buffers
// (downstream -> upstream) relinks slices instead of copying them, and writeToFd() hands all
// slices to one writev(). Standard slices (16 KiB) come from a per-thread cache, so a keep-alive
// connection in steady state allocates nothing (issue 14), and a buffer drained empty holds no
// slice. Not thread-safe: a buffer belongs to one thread at a time (it changes threads only
// through post()), and no locks are taken.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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

// One contiguous block of a buffer: [start, end) of `capacity` bytes at `base` hold data,
// [end, capacity) is free for appends and [0, start) for prepends. The buffer owns `base`.
struct Slice {
  uint8_t* base = nullptr;
  size_t capacity = 0;
  size_t start = 0;
  size_t end = 0;

  uint8_t* data() const { return base + start; }
  size_t dataSize() const { return end - start; }
  size_t reservable() const { return capacity - end; }
};

// A ring of slices with inline room for two (a response's header block and the body slice
// relinked behind it): it grows, rarely, to the heap and keeps that capacity, so a request's
// buffers never allocate for it (Envoy's SliceDeque is the model). Two, not more: a connection
// holds four buffers and its upstream connection four more, idle ones included, and inline room
// for four slices cost an idle keep-alive connection ~0.5 KB of RSS (run_slow_clients.sh).
class SliceDeque {
 public:
  static constexpr size_t kInlineCapacity = 2;  // a power of two, as every capacity

  SliceDeque() = default;
  ~SliceDeque();
  SliceDeque(const SliceDeque&) = delete;
  SliceDeque& operator=(const SliceDeque&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Slice& operator[](size_t i) { return ring_[(start_ + i) & (capacity_ - 1)]; }
  const Slice& operator[](size_t i) const { return ring_[(start_ + i) & (capacity_ - 1)]; }
  Slice& front() { return (*this)[0]; }
  const Slice& front() const { return (*this)[0]; }
  Slice& back() { return (*this)[size_ - 1]; }
  const Slice& back() const { return (*this)[size_ - 1]; }

  void pushBack(const Slice& slice);
  void pushFront(const Slice& slice);
  void popFront();
  // Forget every slice without releasing storage (the caller took it over).
  void clear() {
    start_ = 0;
    size_ = 0;
  }

 private:
  void grow();

  Slice inline_[kInlineCapacity];
  Slice* ring_ = inline_;
  size_t capacity_ = kInlineCapacity;
  size_t start_ = 0;
  size_t size_ = 0;
};

class Instance;

// Free space reserved at the end of a buffer for a read (readv() into slices()): the tail
// slice's free space, then up to kMaxNewSlices standard slices from the thread's cache. Nothing
// else may touch the buffer until the reservation is committed or destroyed. commit(n) appends
// the first n bytes; the storage that received nothing goes back to the cache.
class Reservation {
 public:
  static constexpr size_t kMaxNewSlices = 4;
  static constexpr size_t kMaxSlices = kMaxNewSlices + 1;

  ~Reservation();
  // The moved-from reservation gives up its storage (reserveForRead returns by value).
  Reservation(Reservation&& other) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(Reservation&&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  const RawSlice* slices() const { return slices_; }
  size_t numSlices() const { return num_slices_; }
  uint64_t length() const { return length_; }
  // Append the first `bytes` bytes of the reserved space (what a read put there) to the
  // buffer. At most once; a reservation never committed adds nothing.
  void commit(uint64_t bytes);

 private:
  friend class Instance;
  explicit Reservation(Instance& buffer) : buffer_(buffer) {}

  Instance& buffer_;
  RawSlice slices_[kMaxSlices];
  size_t num_slices_ = 0;
  uint64_t length_ = 0;
  bool uses_tail_ = false;  // slices_[0] is the free space of the buffer's tail slice
  bool committed_ = false;
};

class Instance {
 public:
  // Capacity of a standard slice: the cached size, and what reads reserve per slice.
  static constexpr size_t kSliceSize = 16 * 1024;

  Instance() = default;
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
  // source smaller than kCopyThreshold, or a slice of it that small which fits in this buffer's
  // tail, is copied into the tail). `other` ends up empty.
  void move(Instance& other);
  // Move the first `length` bytes of `other` (whole slices relinked, a partial one copied).
  void move(Instance& other, uint64_t length);
  void drain(uint64_t size);
  uint64_t length() const { return length_; }

  // Up to `max_slices` slices covering the buffer's bytes, in order; returns how many exist
  // (which may be more than max_slices).
  size_t getRawSlices(RawSlice* out, size_t max_slices) const;
  // Make the first `size` bytes contiguous and return them (nullptr when the buffer is empty).
  void* linearize(uint64_t size);
  // Offset of the first occurrence of `needle` at or after `start`, or -1.
  ssize_t search(std::string_view needle, size_t start = 0) const;
  // Copy out the `size` bytes at `start` without draining.
  void copyOut(size_t start, uint64_t size, void* out) const;
  std::string toString() const;

  // Reserve up to `max_length` bytes (at most kMaxNewSlices standard slices beyond the tail's
  // free space) for a read; see Reservation.
  Reservation reserveForRead(uint64_t max_length);
  // Read up to `max_length` bytes from a non-blocking fd (one readv() into a reservation).
  IoResult readFromFd(int fd, uint64_t max_length);
  // Write as much as the fd accepts (one writev over the slices) and drain what was written.
  IoResult writeToFd(int fd);

 private:
  friend class Reservation;

  // Append a new slice of at least `min_capacity` bytes (standard size when that suffices) with
  // no data; returns it.
  Slice& appendEmptySlice(size_t min_capacity);
  // Append `slice` (which has data; this buffer takes its storage): copied into the tail
  // instead when it is small and fits there, which releases its storage.
  void appendSlice(const Slice& slice);
  void releaseAll();

  SliceDeque slices_;  // never holds a slice without data
  uint64_t length_ = 0;
};

using InstancePtr = std::unique_ptr<Instance>;

}  // namespace Proxy::Buffer
