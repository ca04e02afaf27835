#include "proxy/network/io_handle.h"

#include <event2/buffer.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace Proxy::Network {
namespace {

// Bytes asked of the kernel per read() call. Large enough that a busy connection needs few
// syscalls; small enough that a fresh buffer's reservation is cheap.
constexpr uint64_t kReadChunkSize = 64 * 1024;
// Slices handed to one sendmsg(); the kernel's UIO_MAXIOV is 1024, 64 covers typical bursts.
constexpr int kMaxWriteSlices = 64;
// Upper bound of bytes looked at per sendmsg(), so evbuffer_peek stops walking a long chain.
constexpr ssize_t kMaxWriteBytes = 4 * 1024 * 1024;

}  // namespace

IoHandle& IoHandle::operator=(IoHandle&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.release();
  }
  return *this;
}

int IoHandle::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void IoHandle::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

uint64_t IoHandle::readLength(uint64_t max_length) {
  return max_length == 0 ? kReadChunkSize : std::min<uint64_t>(max_length, kReadChunkSize);
}

Buffer::IoResult IoHandle::read(Buffer::Instance& buffer, uint64_t max_length) {
  const uint64_t want = readLength(max_length);
  evbuffer* raw = buffer.raw();
  evbuffer_iovec vecs[2];
  const int n_vecs = evbuffer_reserve_space(raw, static_cast<ev_ssize_t>(want), vecs, 2);
  if (n_vecs <= 0) {
    return Buffer::IoResult{-1, ENOMEM};
  }
  iovec iov[2];
  size_t reserved = 0;
  for (int i = 0; i < n_vecs; i++) {
    // Reservations can exceed `want`; never read more than asked so the caller's limit holds.
    const size_t len = std::min<size_t>(vecs[i].iov_len, want - reserved);
    iov[i].iov_base = vecs[i].iov_base;
    iov[i].iov_len = len;
    reserved += len;
  }
  ssize_t rc;
  do {
    rc = ::readv(fd_, iov, n_vecs);
  } while (rc < 0 && errno == EINTR);
  if (rc <= 0) {
    const int error = rc < 0 ? errno : 0;
    evbuffer_commit_space(raw, vecs, 0);
    return Buffer::IoResult{rc, error};
  }
  // Commit exactly the bytes that arrived, spread over the vectors in order.
  size_t remaining = static_cast<size_t>(rc);
  int used = 0;
  for (int i = 0; i < n_vecs && remaining > 0; i++) {
    vecs[i].iov_len = std::min<size_t>(iov[i].iov_len, remaining);
    remaining -= vecs[i].iov_len;
    used++;
  }
  evbuffer_commit_space(raw, vecs, used);
  return Buffer::IoResult{rc, 0};
}

Buffer::IoResult IoHandle::write(Buffer::Instance& buffer) {
  evbuffer_iovec slices[kMaxWriteSlices];
  const int n = evbuffer_peek(buffer.raw(), kMaxWriteBytes, nullptr, slices, kMaxWriteSlices);
  const int used = std::min(n, kMaxWriteSlices);
  if (used <= 0) {
    return Buffer::IoResult{0, 0};
  }
  iovec iov[kMaxWriteSlices];
  for (int i = 0; i < used; i++) {
    iov[i].iov_base = slices[i].iov_base;
    iov[i].iov_len = slices[i].iov_len;
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(used);
  ssize_t rc;
  do {
    rc = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    return Buffer::IoResult{rc, errno};
  }
  buffer.drain(static_cast<uint64_t>(rc));
  return Buffer::IoResult{rc, 0};
}

std::string errorDetails(int error) {
  char buf[256];
  // GNU strerror_r returns a pointer that may or may not be `buf`.
  return ::strerror_r(error, buf, sizeof(buf));
}

}  // namespace Proxy::Network
