#include "proxy/network/listen_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace Proxy::Network {
namespace {

absl::Status socketError(const std::string& what, const Address& address, int error) {
  return absl::UnavailableError(
      absl::StrCat(what, " '", address.asString(), "': ", errorDetails(error)));
}

absl::Status setIntOption(int fd, int level, int name, int value, const char* option,
                          const Address& address) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return socketError(absl::StrCat("cannot set ", option, " on"), address, errno);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ListenSocketPtr> ListenSocket::create(const Address& address, bool reuse_port,
                                                     int backlog) {
  if (!address.valid()) {
    return absl::InvalidArgumentError("cannot listen on an invalid address");
  }
  IoHandle handle(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!handle.isOpen()) {
    return socketError("cannot create socket for", address, errno);
  }
  const int fd = handle.fd();
  // SO_REUSEADDR lets a restarted proxy bind while old connections sit in TIME_WAIT.
  absl::Status status = setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", address);
  if (status.ok() && reuse_port) {
    // Linux only lets sockets share a port when every one of them set this before bind().
    status = setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT", address);
  }
  if (status.ok() && address.family() == AF_INET6) {
    // Envoy's default (ipv4_compat: false): "::" means IPv6 only, so a separate 0.0.0.0
    // listener on the same port does not collide with it.
    status = setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY", address);
  }
  if (!status.ok()) {
    return status;
  }
  if (::bind(fd, address.sockAddr(), address.sockAddrLen()) != 0) {
    return socketError("cannot bind", address, errno);
  }
  if (::listen(fd, backlog) != 0) {
    return socketError("cannot listen on", address, errno);
  }
  const Address local = Address::fromLocal(fd);
  if (!local.valid()) {
    return socketError("cannot get the local address of", address, errno);
  }
  return ListenSocketPtr(new ListenSocket(std::move(handle), local, reuse_port));
}

absl::StatusOr<ListenSocketPtr> ListenSocket::duplicate() const {
  IoHandle handle(::fcntl(handle_.fd(), F_DUPFD_CLOEXEC, 0));
  if (!handle.isOpen()) {
    return socketError("cannot duplicate listen socket", local_address_, errno);
  }
  return ListenSocketPtr(new ListenSocket(std::move(handle), local_address_, reuse_port_));
}

absl::StatusOr<std::vector<ListenSocketPtr>> createListenSockets(const Address& address,
                                                                 bool reuse_port, uint32_t count,
                                                                 int backlog) {
  if (count == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create 0 listen sockets for '", address.asString(), "'"));
  }
  std::vector<ListenSocketPtr> sockets;
  sockets.reserve(count);
  absl::StatusOr<ListenSocketPtr> first = ListenSocket::create(address, reuse_port, backlog);
  if (!first.ok()) {
    return first.status();
  }
  sockets.push_back(std::move(*first));
  // Later sockets bind the resolved address: binding port 0 again would pick a new port.
  const Address resolved = sockets.front()->localAddress();
  for (uint32_t i = 1; i < count; i++) {
    absl::StatusOr<ListenSocketPtr> next =
        reuse_port ? ListenSocket::create(resolved, true, backlog) : sockets.front()->duplicate();
    if (!next.ok()) {
      return next.status();  // the sockets made so far close with the vector
    }
    sockets.push_back(std::move(*next));
  }
  return sockets;
}

}  // namespace Proxy::Network
