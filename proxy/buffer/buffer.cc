#include "proxy/buffer/buffer.h"

#include <event2/buffer.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include "proxy/common/assert.h"

namespace Proxy::Buffer {

bool IoResult::wouldBlock() const {
  return rc < 0 && (error == EAGAIN || error == EWOULDBLOCK);
}

Instance::Instance() : buffer_(evbuffer_new()) {
  RELEASE_ASSERT(buffer_ != nullptr, "evbuffer_new failed");
}

Instance::~Instance() {
  evbuffer_free(buffer_);
}

void Instance::add(const void* data, size_t size) {
  if (size > 0) {
    evbuffer_add(buffer_, data, size);
  }
}

void Instance::add(const Instance& other) {
  // evbuffer_add_buffer_reference would share memory; a plain copy keeps ownership simple.
  if (&other == this) {
    // evbuffer_add() may realign our last chain, moving bytes a peeked slice points at.
    const std::string copy = toString();
    add(copy);
    return;
  }
  // Peek a fixed batch of slices at a time: a long buffer can have thousands of chains, too
  // many for a stack array sized by the chain count.
  constexpr int kBatch = 16;
  evbuffer_iovec slices[kBatch];
  const size_t total = other.length();
  size_t copied = 0;
  evbuffer_ptr pos;
  evbuffer_ptr_set(other.buffer_, &pos, 0, EVBUFFER_PTR_SET);
  while (copied < total) {
    const int n =
        evbuffer_peek(other.buffer_, static_cast<ev_ssize_t>(total - copied), &pos, slices, kBatch);
    size_t batch_bytes = 0;
    for (int i = 0; i < std::min(n, kBatch); i++) {
      evbuffer_add(buffer_, slices[i].iov_base, slices[i].iov_len);
      batch_bytes += slices[i].iov_len;
    }
    ASSERT(batch_bytes > 0);
    copied += batch_bytes;
    if (copied < total) {
      evbuffer_ptr_set(other.buffer_, &pos, batch_bytes, EVBUFFER_PTR_ADD);
    }
  }
}

void Instance::appendSliceForTest(std::string_view data) {
  Instance slice;
  slice.add(data);
  evbuffer_add_buffer(buffer_, slice.buffer_);
}

void Instance::prepend(std::string_view data) {
  evbuffer_prepend(buffer_, data.data(), data.size());
}

void Instance::move(Instance& other) {
  if (&other == this) {
    return;
  }
  const size_t size = other.length();
  if (size > 0 && size < kCopyThreshold && length() > 0) {
    // Copied into our tail chain instead of linked: a linked small buffer pins a whole chain
    // (libevent allocates at least 1 KiB each) for a few bytes, and a connection's write buffer
    // full of small responses would take ten times its byte count in memory (Envoy's
    // OwnedImpl::move coalesces small slices the same way).
    evbuffer_iovec slices[4];
    const int n = evbuffer_peek(other.buffer_, -1, nullptr, slices, 4);
    if (n > 0 && n <= 4) {
      for (int i = 0; i < n; i++) {
        evbuffer_add(buffer_, slices[i].iov_base, slices[i].iov_len);
      }
      evbuffer_drain(other.buffer_, size);
      return;
    }
  }
  evbuffer_add_buffer(buffer_, other.buffer_);
}

void Instance::move(Instance& other, uint64_t length) {
  evbuffer_remove_buffer(other.buffer_, buffer_, length);
}

void Instance::drain(uint64_t size) {
  evbuffer_drain(buffer_, size);
}

uint64_t Instance::length() const {
  return evbuffer_get_length(buffer_);
}

size_t Instance::getRawSlices(RawSlice* out, size_t max_slices) const {
  // RawSlice and evbuffer_iovec are both {void*, size_t}; peek into a local array to stay
  // independent of their layout.
  const int n = evbuffer_peek(buffer_, -1, nullptr, nullptr, 0);
  if (out == nullptr || max_slices == 0 || n <= 0) {
    return n < 0 ? 0 : static_cast<size_t>(n);
  }
  const size_t want = std::min<size_t>(max_slices, static_cast<size_t>(n));
  auto* iov = static_cast<evbuffer_iovec*>(alloca(sizeof(evbuffer_iovec) * want));
  evbuffer_peek(buffer_, -1, nullptr, iov, want);
  for (size_t i = 0; i < want; i++) {
    out[i].mem = iov[i].iov_base;
    out[i].len = iov[i].iov_len;
  }
  return static_cast<size_t>(n);
}

void* Instance::linearize(uint64_t size) {
  return evbuffer_pullup(buffer_, size);
}

ssize_t Instance::search(std::string_view needle, size_t start) const {
  if (start > length()) {
    return -1;
  }
  evbuffer_ptr start_ptr;
  evbuffer_ptr_set(buffer_, &start_ptr, start, EVBUFFER_PTR_SET);
  const evbuffer_ptr pos = evbuffer_search(buffer_, needle.data(), needle.size(), &start_ptr);
  return pos.pos;
}

void Instance::copyOut(size_t start, uint64_t size, void* out) const {
  ASSERT(start + size <= length());
  evbuffer_ptr start_ptr;
  evbuffer_ptr_set(buffer_, &start_ptr, start, EVBUFFER_PTR_SET);
  evbuffer_copyout_from(buffer_, &start_ptr, out, size);
}

std::string Instance::toString() const {
  std::string out(length(), '\0');
  if (!out.empty()) {
    evbuffer_copyout(buffer_, out.data(), out.size());
  }
  return out;
}

IoResult Instance::readFromFd(int fd, uint64_t max_length) {
  ASSERT(max_length > 0);
  // Not evbuffer_read(): libevent 2.1 caps it at 4096 bytes per call (EVBUFFER_MAX_READ),
  // a syscall per 4 KiB. Reserve max_length in at most two extents (the tail chain's free
  // space, then a new chain), readv() into them and commit what arrived.
  evbuffer_iovec reserved[2];
  const int n = evbuffer_reserve_space(buffer_, static_cast<ev_ssize_t>(max_length), reserved, 2);
  if (n <= 0) {
    return IoResult{-1, ENOMEM};
  }
  iovec iov[2];
  uint64_t want = max_length;
  int used = 0;
  for (; used < n && want > 0; used++) {
    // The reservation may be larger than asked for; never read more than max_length.
    reserved[used].iov_len = std::min<uint64_t>(reserved[used].iov_len, want);
    want -= reserved[used].iov_len;
    iov[used].iov_base = reserved[used].iov_base;
    iov[used].iov_len = reserved[used].iov_len;
  }
  const ssize_t rc = ::readv(fd, iov, used);
  const int error = rc < 0 ? errno : 0;

  // Commit only the extents that received bytes, the last one trimmed to what arrived.
  size_t arrived = rc > 0 ? static_cast<size_t>(rc) : 0;
  int filled = 0;
  for (; filled < used && arrived > 0; filled++) {
    reserved[filled].iov_len = std::min(reserved[filled].iov_len, arrived);
    arrived -= reserved[filled].iov_len;
  }
  evbuffer_commit_space(buffer_, reserved, filled);
  return IoResult{rc, error};
}

IoResult Instance::writeToFd(int fd) {
  // evbuffer_write_atmost uses writev over up to 128 slices and drains what was written.
  const int rc = evbuffer_write(buffer_, fd);
  return IoResult{rc, rc < 0 ? errno : 0};
}

}  // namespace Proxy::Buffer
