#pragma once

// An IPv4/IPv6 socket address as a value type.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace Proxy::Network {

class Address {
 public:
  Address() = default;
  // From a numeric IP literal ("127.0.0.1", "::1", "0.0.0.0", "::") and a port.
  static absl::StatusOr<Address> fromIpPort(std::string_view ip, uint32_t port);
  static Address fromSockaddr(const sockaddr* addr, socklen_t len);
  // The local / peer address of a connected or bound socket.
  static Address fromLocal(int fd);
  static Address fromPeer(int fd);

  bool valid() const { return len_ != 0; }
  int family() const { return storage_.sa.sa_family; }
  std::string ip() const;  // "127.0.0.1" or "::1"
  uint32_t port() const;
  std::string asString() const;  // "127.0.0.1:80" or "[::1]:80"
  // True for the wildcard addresses 0.0.0.0 and :: (a listener bound there accepts on every
  // local address, so an accepted socket's local address must be asked for).
  bool isAnyAddress() const;
  const sockaddr* sockAddr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t sockAddrLen() const { return len_; }

  bool operator==(const Address& other) const;
  // Consistent with operator== (equal addresses hash equally), for hashed containers.
  size_t hash() const;
  struct Hash {
    size_t operator()(const Address& address) const { return address.hash(); }
  };
  bool operator!=(const Address& other) const { return !(*this == other); }

 private:
  // IP addresses only (fromSockaddr refuses other families): 28 bytes rather than
  // sockaddr_storage's 128. Every upstream host keeps one (config memory, issue 14).
  // The largest member first: `{}` zeroes it, so every byte.
  union Storage {
    sockaddr_in6 v6;
    sockaddr_in v4;
    sockaddr sa;
  } storage_{};
  socklen_t len_ = 0;
};

}  // namespace Proxy::Network
