#include "proxy/buffer/buffer.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "proxy/common/assert.h"
#include "proxy/common/free_list.h"  // PROXY_FREE_LIST_DISABLED under AddressSanitizer

namespace Proxy::Buffer {
namespace {

// Standard slices kept per thread once their buffer let them go: 128 x 16 KiB = 2 MiB at most;
// beyond that they are freed. The working set is what one event-loop pass keeps in flight: each
// connection read in the pass holds a slice or two until its write is flushed later in the pass
// (a request's header block towards the upstream; a response's header block and the body slice
// relinked behind it). 32 slices left 0.53 allocations per request with 50 keep-alive
// connections (run_request_counts.sh); 128 cover ~60 connections per pass. Storage is plain
// operator new memory, so a slice released on another thread than the one that made it simply
// joins that thread's cache.
constexpr size_t kMaxCachedSlices = 128;
// Larger one-off slices (a single big add()) are sized in pages.
constexpr size_t kLargeSliceGranularity = 4096;

size_t capacityFor(size_t size) {
  if (size <= Instance::kSliceSize) {
    return Instance::kSliceSize;
  }
  return (size + kLargeSliceGranularity - 1) / kLargeSliceGranularity * kLargeSliceGranularity;
}

#ifndef PROXY_FREE_LIST_DISABLED
struct SliceCache {
  uint8_t* slots[kMaxCachedSlices];
  size_t count = 0;
  ~SliceCache() {
    for (size_t i = 0; i < count; i++) {
      ::operator delete(slots[i]);
    }
    count = 0;
  }
};

// Whether this thread's cache is gone (thread exit): a trivially destructible flag outlives the
// cache, and a buffer destroyed later (in another thread_local) frees its slices directly.
bool& cacheDestroyed() {
  static thread_local bool flag = false;
  return flag;
}

SliceCache* threadCache() {
  struct Holder {
    SliceCache cache;
    ~Holder() { cacheDestroyed() = true; }
  };
  if (cacheDestroyed()) {
    return nullptr;
  }
  static thread_local Holder holder;
  return &holder.cache;
}
#endif

// Storage of `capacity` bytes (a capacityFor() value): a standard one from the cache when it
// has one. Under AddressSanitizer the cache is off, so a use after release is reported.
uint8_t* allocateStorage(size_t capacity) {
#ifndef PROXY_FREE_LIST_DISABLED
  if (capacity == Instance::kSliceSize) {
    SliceCache* cache = threadCache();
    if (cache != nullptr && cache->count > 0) {
      return cache->slots[--cache->count];
    }
  }
#endif
  return static_cast<uint8_t*>(::operator new(capacity));
}

void releaseStorage(uint8_t* base, size_t capacity) {
#ifndef PROXY_FREE_LIST_DISABLED
  if (capacity == Instance::kSliceSize) {
    SliceCache* cache = threadCache();
    if (cache != nullptr && cache->count < kMaxCachedSlices) {
      cache->slots[cache->count++] = base;
      return;
    }
  }
#else
  (void)capacity;
#endif
  ::operator delete(base);
}

}  // namespace

bool IoResult::wouldBlock() const {
  return rc < 0 && (error == EAGAIN || error == EWOULDBLOCK);
}

// SliceDeque

SliceDeque::~SliceDeque() {
  if (ring_ != inline_) {
    delete[] ring_;
  }
}

void SliceDeque::pushBack(const Slice& slice) {
  if (size_ == capacity_) {
    grow();
  }
  ring_[(start_ + size_) & (capacity_ - 1)] = slice;
  size_++;
}

void SliceDeque::pushFront(const Slice& slice) {
  if (size_ == capacity_) {
    grow();
  }
  start_ = (start_ + capacity_ - 1) & (capacity_ - 1);
  ring_[start_] = slice;
  size_++;
}

void SliceDeque::popFront() {
  ASSERT(size_ > 0);
  start_ = (start_ + 1) & (capacity_ - 1);
  size_--;
}

void SliceDeque::grow() {
  const size_t capacity = capacity_ * 2;
  Slice* ring = new Slice[capacity];
  for (size_t i = 0; i < size_; i++) {
    ring[i] = (*this)[i];
  }
  if (ring_ != inline_) {
    delete[] ring_;
  }
  ring_ = ring;
  capacity_ = capacity;
  start_ = 0;
}

// Reservation

Reservation::Reservation(Reservation&& other) noexcept
    : buffer_(other.buffer_),
      num_slices_(other.num_slices_),
      length_(other.length_),
      uses_tail_(other.uses_tail_),
      committed_(other.committed_) {
  std::copy(other.slices_, other.slices_ + other.num_slices_, slices_);
  other.num_slices_ = 0;
  other.committed_ = true;
}

Reservation::~Reservation() {
  if (!committed_) {
    commit(0);
  }
}

void Reservation::commit(uint64_t bytes) {
  ASSERT(!committed_);
  ASSERT(bytes <= length_);
  committed_ = true;
  size_t i = 0;
  if (uses_tail_) {
    // The tail slice is still the buffer's last: nothing touched the buffer meanwhile.
    const size_t n = std::min<uint64_t>(bytes, slices_[0].len);
    buffer_.slices_.back().end += n;
    buffer_.length_ += n;
    bytes -= n;
    i = 1;
  }
  for (; i < num_slices_; i++) {
    auto* base = static_cast<uint8_t*>(slices_[i].mem);
    if (bytes == 0) {
      releaseStorage(base, Instance::kSliceSize);
      continue;
    }
    const size_t n = std::min<uint64_t>(bytes, slices_[i].len);
    buffer_.slices_.pushBack(Slice{base, Instance::kSliceSize, 0, n});
    buffer_.length_ += n;
    bytes -= n;
  }
  num_slices_ = 0;
}

// Instance

Instance::~Instance() {
  releaseAll();
}

void Instance::releaseAll() {
  for (size_t i = 0; i < slices_.size(); i++) {
    releaseStorage(slices_[i].base, slices_[i].capacity);
  }
  slices_.clear();
  length_ = 0;
}

Slice& Instance::appendEmptySlice(size_t min_capacity) {
  const size_t capacity = capacityFor(min_capacity);
  slices_.pushBack(Slice{allocateStorage(capacity), capacity, 0, 0});
  return slices_.back();
}

void Instance::add(const void* data, size_t size) {
  if (size == 0) {
    return;
  }
  const auto* src = static_cast<const uint8_t*>(data);
  if (!slices_.empty()) {
    Slice& tail = slices_.back();
    const size_t n = std::min(size, tail.reservable());
    if (n > 0) {
      std::memcpy(tail.base + tail.end, src, n);
      tail.end += n;
      length_ += n;
      src += n;
      size -= n;
    }
  }
  if (size > 0) {
    // One slice for the rest: a standard one, or a one-off as large as the data.
    Slice& slice = appendEmptySlice(size);
    std::memcpy(slice.base, src, size);
    slice.end = size;
    length_ += size;
  }
}

void Instance::add(const Instance& other) {
  if (&other == this) {
    // Appending may write into the tail slice being read; copy out first (rare).
    const std::string copy = toString();
    add(copy);
    return;
  }
  for (size_t i = 0; i < other.slices_.size(); i++) {
    const Slice& slice = other.slices_[i];
    add(slice.data(), slice.dataSize());
  }
}

void Instance::appendSliceForTest(std::string_view data) {
  if (data.empty()) {
    return;
  }
  Slice& slice = appendEmptySlice(data.size());
  std::memcpy(slice.base, data.data(), data.size());
  slice.end = data.size();
  length_ += data.size();
}

void Instance::prepend(std::string_view data) {
  if (slices_.empty()) {
    add(data);
    return;
  }
  size_t remaining = data.size();
  // Fill the room drained from the front slice first, from the end of `data` backwards.
  Slice& front = slices_.front();
  const size_t n = std::min(remaining, front.start);
  if (n > 0) {
    front.start -= n;
    std::memcpy(front.base + front.start, data.data() + remaining - n, n);
    remaining -= n;
    length_ += n;
  }
  if (remaining > 0) {
    // A new front slice with its bytes at the end of the storage, so a further prepend fits.
    const size_t capacity = capacityFor(remaining);
    const Slice slice{allocateStorage(capacity), capacity, capacity - remaining, capacity};
    std::memcpy(slice.data(), data.data(), remaining);
    slices_.pushFront(slice);
    length_ += remaining;
  }
}

void Instance::appendSlice(const Slice& slice) {
  const size_t size = slice.dataSize();
  ASSERT(size > 0);
  if (size < kCopyThreshold && !slices_.empty() && slices_.back().reservable() >= size) {
    // A small slice linked on would pin its whole storage for a few bytes (a write buffer
    // collecting many small responses); Envoy's OwnedImpl coalesces the same way.
    Slice& tail = slices_.back();
    std::memcpy(tail.base + tail.end, slice.data(), size);
    tail.end += size;
    releaseStorage(slice.base, slice.capacity);
  } else {
    slices_.pushBack(slice);
  }
  length_ += size;
}

void Instance::move(Instance& other) {
  if (&other == this || other.length_ == 0) {
    return;
  }
  if (other.length_ < kCopyThreshold && length_ > 0) {
    // Copied into our tail (a new slice only when the tail is full): the source's slices go back
    // to the cache right away.
    add(other);
    other.releaseAll();
    return;
  }
  for (size_t i = 0; i < other.slices_.size(); i++) {
    appendSlice(other.slices_[i]);
  }
  other.slices_.clear();
  other.length_ = 0;
}

void Instance::move(Instance& other, uint64_t length) {
  if (&other == this) {
    return;
  }
  length = std::min(length, other.length_);
  while (length > 0) {
    Slice& front = other.slices_.front();
    const size_t size = front.dataSize();
    if (size <= length) {
      // A whole slice: relinked.
      const Slice slice = front;
      other.slices_.popFront();
      other.length_ -= size;
      appendSlice(slice);
      length -= size;
    } else {
      // The prefix of a slice: copied, the rest stays with `other`.
      add(front.data(), length);
      other.drain(length);
      length = 0;
    }
  }
}

void Instance::drain(uint64_t size) {
  size = std::min(size, length_);
  length_ -= size;
  while (size > 0) {
    Slice& front = slices_.front();
    const size_t in_front = front.dataSize();
    if (in_front > size) {
      front.start += size;
      break;
    }
    // Emptied: its storage goes back to the cache, so a buffer drained empty holds no slice.
    releaseStorage(front.base, front.capacity);
    slices_.popFront();
    size -= in_front;
  }
}

size_t Instance::getRawSlices(RawSlice* out, size_t max_slices) const {
  const size_t n = std::min(max_slices, slices_.size());
  for (size_t i = 0; i < n; i++) {
    out[i].mem = slices_[i].data();
    out[i].len = slices_[i].dataSize();
  }
  return slices_.size();
}

void* Instance::linearize(uint64_t size) {
  if (length_ == 0) {
    return nullptr;
  }
  size = std::min(size, length_);
  if (slices_.front().dataSize() >= size) {
    return slices_.front().data();
  }
  // Gather the first `size` bytes into one slice: the front one when its storage is large
  // enough (its bytes moved to the start), otherwise a new one. Slices emptied on the way go
  // back to the cache; the buffer's length does not change.
  Slice head;
  if (slices_.front().capacity >= size) {
    head = slices_.front();
    slices_.popFront();
    std::memmove(head.base, head.data(), head.dataSize());
    head.end = head.dataSize();
    head.start = 0;
  } else {
    const size_t capacity = capacityFor(size);
    head = Slice{allocateStorage(capacity), capacity, 0, 0};
  }
  while (head.dataSize() < size) {
    Slice& next = slices_.front();
    const size_t n = std::min<uint64_t>(size - head.dataSize(), next.dataSize());
    std::memcpy(head.base + head.end, next.data(), n);
    head.end += n;
    next.start += n;
    if (next.dataSize() == 0) {
      releaseStorage(next.base, next.capacity);
      slices_.popFront();
    }
  }
  slices_.pushFront(head);
  return head.data();
}

ssize_t Instance::search(std::string_view needle, size_t start) const {
  if (start > length_) {
    return -1;
  }
  if (needle.empty()) {
    return static_cast<ssize_t>(start);
  }
  // Whether `needle` continues at byte `offset` of slice `index`, across slice boundaries.
  const auto matches_at = [this, needle](size_t index, size_t offset) {
    size_t matched = 0;
    for (; index < slices_.size(); index++, offset = 0) {
      const Slice& slice = slices_[index];
      const size_t n = std::min(needle.size() - matched, slice.dataSize() - offset);
      if (std::memcmp(slice.data() + offset, needle.data() + matched, n) != 0) {
        return false;
      }
      matched += n;
      if (matched == needle.size()) {
        return true;
      }
    }
    return false;
  };
  size_t slice_offset = 0;  // buffer offset of the current slice's first byte
  for (size_t i = 0; i < slices_.size(); i++) {
    const Slice& slice = slices_[i];
    const size_t size = slice.dataSize();
    if (start < slice_offset + size) {
      const uint8_t* begin = slice.data();
      const uint8_t* end = begin + size;
      const uint8_t* p = begin + (start > slice_offset ? start - slice_offset : 0);
      while (p < end) {
        const auto* hit = static_cast<const uint8_t*>(std::memchr(p, needle[0], end - p));
        if (hit == nullptr) {
          break;
        }
        if (matches_at(i, hit - begin)) {
          return static_cast<ssize_t>(slice_offset + (hit - begin));
        }
        p = hit + 1;
      }
    }
    slice_offset += size;
  }
  return -1;
}

void Instance::copyOut(size_t start, uint64_t size, void* out) const {
  ASSERT(start + size <= length_);
  auto* dest = static_cast<uint8_t*>(out);
  for (size_t i = 0; i < slices_.size() && size > 0; i++) {
    const Slice& slice = slices_[i];
    if (start >= slice.dataSize()) {
      start -= slice.dataSize();
      continue;
    }
    const size_t n = std::min<uint64_t>(size, slice.dataSize() - start);
    std::memcpy(dest, slice.data() + start, n);
    dest += n;
    size -= n;
    start = 0;
  }
}

std::string Instance::toString() const {
  std::string out(length_, '\0');
  if (!out.empty()) {
    copyOut(0, length_, out.data());
  }
  return out;
}

Reservation Instance::reserveForRead(uint64_t max_length) {
  Reservation reservation(*this);
  uint64_t want = max_length;
  if (want > 0 && !slices_.empty() && slices_.back().reservable() > 0) {
    Slice& tail = slices_.back();
    const size_t n = std::min<uint64_t>(want, tail.reservable());
    reservation.slices_[0] = RawSlice{tail.base + tail.end, n};
    reservation.num_slices_ = 1;
    reservation.uses_tail_ = true;
    reservation.length_ = n;
    want -= n;
  }
  for (size_t added = 0; want > 0 && added < Reservation::kMaxNewSlices; added++) {
    const size_t n = std::min<uint64_t>(want, kSliceSize);
    reservation.slices_[reservation.num_slices_++] = RawSlice{allocateStorage(kSliceSize), n};
    reservation.length_ += n;
    want -= n;
  }
  return reservation;
}

IoResult Instance::readFromFd(int fd, uint64_t max_length) {
  ASSERT(max_length > 0);
  Reservation reservation = reserveForRead(max_length);
  iovec iov[Reservation::kMaxSlices];
  for (size_t i = 0; i < reservation.numSlices(); i++) {
    iov[i].iov_base = reservation.slices()[i].mem;
    iov[i].iov_len = reservation.slices()[i].len;
  }
  ssize_t rc;
  do {
    rc = ::readv(fd, iov, static_cast<int>(reservation.numSlices()));
  } while (rc < 0 && errno == EINTR);
  const int error = rc < 0 ? errno : 0;
  reservation.commit(rc > 0 ? static_cast<uint64_t>(rc) : 0);
  return IoResult{rc, error};
}

IoResult Instance::writeToFd(int fd) {
  constexpr size_t kMaxWriteSlices = 64;
  if (length_ == 0) {
    return IoResult{0, 0};
  }
  iovec iov[kMaxWriteSlices];
  const size_t n = std::min(slices_.size(), kMaxWriteSlices);
  for (size_t i = 0; i < n; i++) {
    iov[i].iov_base = slices_[i].data();
    iov[i].iov_len = slices_[i].dataSize();
  }
  ssize_t rc;
  do {
    rc = ::writev(fd, iov, static_cast<int>(n));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    return IoResult{rc, errno};
  }
  drain(static_cast<uint64_t>(rc));
  return IoResult{rc, 0};
}

}  // namespace Proxy::Buffer
