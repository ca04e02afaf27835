#include "proxy/network/tcp_listener_impl.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/unit/network/network_test_base.h"

namespace Proxy::Network {
namespace {

class TcpListenerTest : public NetworkTestBase {};

IoHandle blockingConnect(const Address& address) {
  IoHandle handle(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(handle.fd(), address.sockAddr(), address.sockAddrLen()), 0)
      << errorDetails(errno);
  return handle;
}

TEST_F(TcpListenerTest, AcceptedSocketBecomesAServerConnection) {
  startListener();

  // A client connects; the listener accepts and the test wraps the socket in a ConnectionImpl.
  client_ = connectClient(listenAddress());
  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1; }));
  Peer& server = *accepted_[0];

  // The server sees the client's address as remote and the listen address as local.
  ASSERT_TRUE(runUntil([&]() { return client_->sawEvent(ConnectionEvent::Connected); }));
  EXPECT_EQ(server.connection->remoteAddress(), client_->connection->localAddress());
  EXPECT_EQ(server.connection->localAddress(), listenAddress());
  EXPECT_EQ(client_->connection->remoteAddress(), listenAddress());
  EXPECT_EQ(server.connection->state(), Connection::State::Open);
  EXPECT_EQ(listener_->acceptedTotal(), 1u);
  EXPECT_EQ(listener_->acceptErrors(), 0u);
}

TEST_F(TcpListenerTest, WildcardListenerReportsTheConcreteLocalAddress) {
  startListener(/*ip=*/"0.0.0.0");
  const Address target = *Address::fromIpPort("127.0.0.1", listenAddress().port());

  client_ = connectClient(target);
  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1; }));

  // Not 0.0.0.0: the address this particular connection arrived on.
  EXPECT_EQ(accepted_[0]->connection->localAddress(), target);
}

TEST_F(TcpListenerTest, DisableStopsAcceptingWithoutClosingTheSocket) {
  startListener();
  listener_->disable();

  // The kernel still completes the handshake (the socket is listening)...
  client_ = connectClient(listenAddress());
  ASSERT_TRUE(runUntil([&]() { return client_->sawEvent(ConnectionEvent::Connected); }));
  runIterations(/*iterations=*/5);
  // ...but nobody accepts it while disabled.
  EXPECT_TRUE(accepted_.empty());

  // Enabling again picks up the queued connection.
  listener_->enable();
  EXPECT_TRUE(runUntil([&]() { return accepted_.size() == 1; }));
}

TEST_F(TcpListenerTest, OneWakeUpAcceptsABoundedBatch) {
  startListener();
  struct Counter : public TcpListenerCallbacks {
    void onAccept(IoHandle, const Address&, const Address&) override { accepted++; }
    uint32_t accepted = 0;
  } counter;
  listener_ = std::make_unique<TcpListenerImpl>(dispatcher_, *listen_socket_, counter);

  // 100 connections wait in the accept queue (blocking connect returns once established).
  constexpr uint32_t kClients = 100;
  std::vector<IoHandle> clients;
  for (uint32_t i = 0; i < kClients; i++) {
    clients.push_back(blockingConnect(listenAddress()));
  }

  // A zero-delay timer becomes ready in the same loop iteration as the listen socket and runs
  // after it: it sees how many connections the first wake-up took, at most
  // kMaxAcceptsPerWakeup, before the level-triggered event brings the listener back.
  uint32_t accepted_by_first_wakeup = 0;
  Event::TimerPtr observer =
      dispatcher_.createTimer([&]() { accepted_by_first_wakeup = counter.accepted; });
  observer->enableTimer(std::chrono::milliseconds(0));
  EXPECT_TRUE(runUntil([&]() { return counter.accepted == kClients; }));
  EXPECT_GT(accepted_by_first_wakeup, 0u);
  EXPECT_LE(accepted_by_first_wakeup, TcpListenerImpl::kMaxAcceptsPerWakeup);
}

TEST_F(TcpListenerTest, RunningOutOfFdsBacksOffInsteadOfSpinning) {
  startListener();
  struct Counter : public TcpListenerCallbacks {
    void onAccept(IoHandle, const Address&, const Address&) override { accepted++; }
    int accepted = 0;
  } counter;
  listener_ = std::make_unique<TcpListenerImpl>(dispatcher_, *listen_socket_, counter);

  // A connection waits in the queue.
  IoHandle client = blockingConnect(listenAddress());

  // Lower the fd limit to the lowest free fd number: the next accept4() fails with EMFILE.
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
  const int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit lowered = original;
  lowered.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);

  // The failure is counted once; the listener then pauses rather than retrying in a loop.
  const bool failed = runUntil([&]() { return listener_->acceptErrors() >= 1; });
  ::setrlimit(RLIMIT_NOFILE, &original);
  ASSERT_TRUE(failed);
  EXPECT_EQ(counter.accepted, 0);

  // With fds available again the pending connection is accepted after the back-off. A listener
  // that retried hot would have counted thousands of failures; one (two if this test was
  // descheduled for a whole back-off period before restoring the limit) is the design.
  EXPECT_TRUE(runUntil([&]() { return counter.accepted == 1; }));
  EXPECT_LE(listener_->acceptErrors(), 2u);
}

}  // namespace
}  // namespace Proxy::Network
