#include "proxy/network/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace Proxy::Network {

absl::StatusOr<Address> Address::fromIpPort(std::string_view ip, uint32_t port) {
  // inet_pton needs a NUL-terminated string; string_view gives no such promise.
  const std::string ip_str(ip);
  if (port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid port ", port, " for IP address '", ip_str, "': must be 0-65535"));
  }
  Address address;
  sockaddr_in v4{};
  if (inet_pton(AF_INET, ip_str.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&address.storage_, &v4, sizeof(v4));
    address.len_ = sizeof(v4);
    return address;
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, ip_str.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&address.storage_, &v6, sizeof(v6));
    address.len_ = sizeof(v6);
    return address;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid IP address '", ip_str, "'"));
}

Address Address::fromSockaddr(const sockaddr* addr, socklen_t len) {
  Address address;
  // Only IP families are meaningful here; anything else stays invalid rather than half-parsed.
  if (addr == nullptr || !((addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) ||
                           (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)))) {
    return address;
  }
  const socklen_t copy_len =
      addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  std::memcpy(&address.storage_, addr, copy_len);
  address.len_ = copy_len;
  return address;
}

Address Address::fromLocal(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return Address();
  }
  return fromSockaddr(reinterpret_cast<const sockaddr*>(&storage), len);
}

Address Address::fromPeer(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return Address();
  }
  return fromSockaddr(reinterpret_cast<const sockaddr*>(&storage), len);
}

std::string Address::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage_);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

uint32_t Address::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string Address::asString() const {
  if (family() == AF_INET) {
    return absl::StrCat(ip(), ":", port());
  }
  if (family() == AF_INET6) {
    return absl::StrCat("[", ip(), "]:", port());
  }
  return "";
}

bool Address::isAnyAddress() const {
  if (family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
  }
  return false;
}

size_t Address::hash() const {
  // The fields operator== compares, nothing else (padding and flowinfo differ freely).
  char key[1 + sizeof(in6_addr) + sizeof(uint16_t) + sizeof(uint32_t)] = {};
  size_t len = 0;
  key[len++] = static_cast<char>(family());
  if (family() == AF_INET) {
    std::memcpy(key + len, &storage_.v4.sin_addr, sizeof(storage_.v4.sin_addr));
    len += sizeof(storage_.v4.sin_addr);
    std::memcpy(key + len, &storage_.v4.sin_port, sizeof(storage_.v4.sin_port));
    len += sizeof(storage_.v4.sin_port);
  } else if (family() == AF_INET6) {
    std::memcpy(key + len, &storage_.v6.sin6_addr, sizeof(storage_.v6.sin6_addr));
    len += sizeof(storage_.v6.sin6_addr);
    std::memcpy(key + len, &storage_.v6.sin6_port, sizeof(storage_.v6.sin6_port));
    len += sizeof(storage_.v6.sin6_port);
    std::memcpy(key + len, &storage_.v6.sin6_scope_id, sizeof(storage_.v6.sin6_scope_id));
    len += sizeof(storage_.v6.sin6_scope_id);
  }
  return std::hash<std::string_view>()(std::string_view(key, len));
}

bool Address::operator==(const Address& other) const {
  if (family() != other.family() || len_ != other.len_) {
    return false;
  }
  // Compare field by field: sockaddr padding (sin_zero, flowinfo) is not part of the identity.
  if (family() == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&storage_);
    const auto* b = reinterpret_cast<const sockaddr_in*>(&other.storage_);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&storage_);
    const auto* b = reinterpret_cast<const sockaddr_in6*>(&other.storage_);
    return a->sin6_port == b->sin6_port && a->sin6_scope_id == b->sin6_scope_id &&
           std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
  }
  return true;  // both invalid
}

}  // namespace Proxy::Network
