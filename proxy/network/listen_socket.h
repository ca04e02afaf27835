#pragma once

// A bound, listening TCP socket, created on the MAIN thread so that bind errors are reported
// to the config layer (NACK) before any worker sees the listener. Each worker then gets its own
// ListenSocket: a separate SO_REUSEPORT socket (the kernel spreads connections), or a dup() of
// one socket (one shared accept queue) when reuse_port is off.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/network/address.h"
#include "proxy/network/io_handle.h"

namespace Proxy::Network {

class ListenSocket;
using ListenSocketPtr = std::unique_ptr<ListenSocket>;

class ListenSocket {
 public:
  // socket(SOCK_NONBLOCK|SOCK_CLOEXEC), SO_REUSEADDR, SO_REUSEPORT when asked, IPV6_V6ONLY for
  // IPv6 addresses (a "::" listener does not also take IPv4, as in Envoy), bind, listen.
  // Errors read "cannot bind '127.0.0.1:80': Address already in use".
  static absl::StatusOr<ListenSocketPtr> create(const Address& address, bool reuse_port,
                                                int backlog);

  // Another fd for the same kernel socket (same accept queue); closing one leaves the other
  // listening.
  absl::StatusOr<ListenSocketPtr> duplicate() const;

  int fd() const { return handle_.fd(); }
  // The bound address: port 0 is resolved to the port the kernel picked.
  const Address& localAddress() const { return local_address_; }
  bool reusePort() const { return reuse_port_; }

 private:
  ListenSocket(IoHandle handle, Address local_address, bool reuse_port)
      : handle_(std::move(handle)), local_address_(local_address), reuse_port_(reuse_port) {}

  IoHandle handle_;
  Address local_address_;
  bool reuse_port_;
};

// `count` sockets for `count` workers. With reuse_port the first binds `address` (resolving
// port 0) and the others bind the resolved address, each with SO_REUSEPORT; without it, the
// others are dup()s of the first. Fails as a whole: either every socket or none.
absl::StatusOr<std::vector<ListenSocketPtr>> createListenSockets(const Address& address,
                                                                 bool reuse_port, uint32_t count,
                                                                 int backlog);

}  // namespace Proxy::Network
