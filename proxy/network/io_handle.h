#pragma once

// An owned socket file descriptor: closed on destruction, movable, never copied. Also the one
// place where bytes cross between a socket and a Buffer::Instance, so the syscall details
// (recv/readv into reserved buffer space, send/sendmsg with MSG_NOSIGNAL) live in one file.

#include <cstdint>
#include <string>

#include "proxy/buffer/buffer.h"

namespace Proxy::Network {

class IoHandle {
 public:
  IoHandle() = default;
  explicit IoHandle(int fd) : fd_(fd) {}
  ~IoHandle() { close(); }

  IoHandle(IoHandle&& other) noexcept : fd_(other.release()) {}
  IoHandle& operator=(IoHandle&& other) noexcept;
  IoHandle(const IoHandle&) = delete;
  IoHandle& operator=(const IoHandle&) = delete;

  int fd() const { return fd_; }
  bool isOpen() const { return fd_ >= 0; }
  // Give up ownership: the caller now closes the returned fd.
  int release();
  void close();

  // Read up to `max_length` bytes (0 = no cap beyond one chunk) into `buffer`. rc 0 is EOF.
  // Reads straight into the buffer's reserved space (its tail slice's free space, then
  // standard slices): one slice (16 KiB) with recv(), or, after a read that filled a slice, up
  // to 64 KiB with readv().
  Buffer::IoResult read(Buffer::Instance& buffer, uint64_t max_length);
  // How many bytes the last read() asked the kernel for: a read that returned fewer took
  // everything the socket held.
  uint64_t lastReadLength() const { return last_read_length_; }
  // Write as much of `buffer` as the socket takes with one send() (one slice) or sendmsg()
  // over its slices, and drain what was written. MSG_NOSIGNAL: a peer that went away is an
  // EPIPE error, never a SIGPIPE.
  Buffer::IoResult write(Buffer::Instance& buffer);

 private:
  static uint64_t readLength(uint64_t max_length);

  int fd_ = -1;
  uint64_t last_read_length_ = 0;
  bool vectored_reads_ = false;  // the last read filled a slice: ask for more than one
};

// strerror() as a string, safe to call from any thread.
std::string errorDetails(int error);

}  // namespace Proxy::Network
