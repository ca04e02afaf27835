#include "proxy/network/listen_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/unit/network/network_test_base.h"

namespace Proxy::Network {
namespace {

Address loopback(uint32_t port) {
  return *Address::fromIpPort("127.0.0.1", port);
}

// A blocking client socket connected to `address`; the handshake completes in the kernel even
// if nobody accepts yet.
IoHandle blockingConnect(const Address& address) {
  IoHandle handle(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(handle.isOpen());
  EXPECT_EQ(::connect(handle.fd(), address.sockAddr(), address.sockAddrLen()), 0)
      << errorDetails(errno);
  return handle;
}

TEST(ListenSocketTest, PortZeroIsResolvedAfterBind) {
  absl::StatusOr<ListenSocketPtr> socket =
      ListenSocket::create(loopback(/*port=*/0), /*reuse_port=*/false, /*backlog=*/16);
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_GE((*socket)->fd(), 0);
  EXPECT_EQ((*socket)->localAddress().ip(), "127.0.0.1");
  EXPECT_NE((*socket)->localAddress().port(), 0u);
  EXPECT_FALSE((*socket)->reusePort());
}

TEST(ListenSocketTest, BindingAPortInUseNamesTheAddressAndTheReason) {
  // Someone already listens on a port...
  ListenSocketPtr first =
      *ListenSocket::create(loopback(/*port=*/0), /*reuse_port=*/false, /*backlog=*/16);
  const uint32_t port = first->localAddress().port();

  // ...so a second listener on it fails, SO_REUSEADDR notwithstanding.
  absl::StatusOr<ListenSocketPtr> second =
      ListenSocket::create(loopback(port), /*reuse_port=*/false, /*backlog=*/16);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            absl::StrCat("cannot bind '127.0.0.1:", port, "': Address already in use"));

  // SO_REUSEPORT only shares a port among sockets that all asked for it.
  absl::StatusOr<ListenSocketPtr> reuse =
      ListenSocket::create(loopback(port), /*reuse_port=*/true, /*backlog=*/16);
  ASSERT_FALSE(reuse.ok());
  EXPECT_EQ(reuse.status().message(),
            absl::StrCat("cannot bind '127.0.0.1:", port, "': Address already in use"));
}

TEST(ListenSocketTest, InvalidAddressAndZeroCountAreRejected) {
  EXPECT_EQ(
      ListenSocket::create(Address(), /*reuse_port=*/false, /*backlog=*/16).status().message(),
      "cannot listen on an invalid address");
  EXPECT_EQ(createListenSockets(loopback(/*port=*/0), /*reuse_port=*/true, /*count=*/0,
                                /*backlog=*/16)
                .status()
                .message(),
            "cannot create 0 listen sockets for '127.0.0.1:0'");
}

TEST(ListenSocketTest, ReusePortSocketsShareTheResolvedPort) {
  // Two workers' sockets: the first resolves port 0, the second binds that port too.
  absl::StatusOr<std::vector<ListenSocketPtr>> sockets =
      createListenSockets(loopback(/*port=*/0), /*reuse_port=*/true, /*count=*/2, /*backlog=*/64);
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  ASSERT_EQ(sockets->size(), 2u);
  const Address& address = (*sockets)[0]->localAddress();
  EXPECT_NE(address.port(), 0u);
  EXPECT_EQ((*sockets)[1]->localAddress(), address);
  EXPECT_TRUE((*sockets)[1]->reusePort());
  EXPECT_NE((*sockets)[0]->fd(), (*sockets)[1]->fd());

  // A non-reuse-port socket cannot join them.
  EXPECT_FALSE(ListenSocket::create(address, /*reuse_port=*/false, /*backlog=*/16).ok());
}

TEST(ListenSocketTest, DuplicateSharesOneAcceptQueue) {
  // Without reuse_port the second "worker" socket is a dup() of the first.
  absl::StatusOr<std::vector<ListenSocketPtr>> sockets =
      createListenSockets(loopback(/*port=*/0), /*reuse_port=*/false, /*count=*/2, /*backlog=*/16);
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  const Address address = (*sockets)[0]->localAddress();
  EXPECT_EQ((*sockets)[1]->localAddress(), address);
  EXPECT_NE((*sockets)[0]->fd(), (*sockets)[1]->fd());

  // A connection queued through the shared socket...
  IoHandle client = blockingConnect(address);

  // ...is still there after the first fd is closed, and the duplicate accepts it: both fds
  // are one kernel socket, one queue.
  (*sockets)[0].reset();
  const int accepted = ::accept4((*sockets)[1]->fd(), nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(accepted, 0) << errorDetails(errno);
  ::close(accepted);
}

// Real accepting through TcpListenerImpl on every socket of a reuse-port set.
class ReusePortAcceptTest : public NetworkTestBase {};

TEST_F(ReusePortAcceptTest, EveryConnectionIsAcceptedByOneOfTheSockets) {
  // Two reuse-port sockets, each with its own listener (as two workers would have).
  std::vector<ListenSocketPtr> sockets = std::move(
      *createListenSockets(loopback(/*port=*/0), /*reuse_port=*/true, /*count=*/2, /*backlog=*/64));
  struct Counter : public TcpListenerCallbacks {
    void onAccept(IoHandle, const Address&, const Address&) override { accepted++; }
    int accepted = 0;
  };
  Counter counters[2];
  TcpListenerImpl listener0(dispatcher_, *sockets[0], counters[0]);
  TcpListenerImpl listener1(dispatcher_, *sockets[1], counters[1]);

  // Many clients connect to the one port. Which socket the kernel picks is its business (a
  // hash of the 4-tuple); what we require is that the union accepts every connection.
  constexpr int kClients = 20;
  std::vector<std::unique_ptr<Peer>> clients;
  for (int i = 0; i < kClients; i++) {
    clients.push_back(connectClient(sockets[0]->localAddress()));
  }
  EXPECT_TRUE(runUntil([&]() { return counters[0].accepted + counters[1].accepted == kClients; }));
  EXPECT_EQ(listener0.acceptedTotal() + listener1.acceptedTotal(), uint64_t(kClients));
}

}  // namespace
}  // namespace Proxy::Network
