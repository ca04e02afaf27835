#include "proxy/network/connection_impl.h"

#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/unit/network/network_test_base.h"

namespace Proxy::Network {
namespace {

class ConnectionImplTest : public NetworkTestBase {
 protected:
  void SetUp() override { startListener(); }

  void write(Peer& peer, const std::string& data, bool end_stream = false) {
    Buffer::Instance buffer;
    buffer.add(data);
    peer.connection->write(buffer, end_stream);
    EXPECT_EQ(buffer.length(), 0u);  // write() always takes everything
  }
};

IoHandle blockingConnect(const Address& address) {
  IoHandle handle(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(handle.fd(), address.sockAddr(), address.sockAddrLen()), 0)
      << errorDetails(errno);
  return handle;
}

TEST_F(ConnectionImplTest, EchoRoundTrip) {
  // The server echoes whatever it reads.
  on_server_connection_ = [](Peer& server) {
    server.on_data = [&server](Buffer::Instance& data, bool) {
      server.received += data.toString();
      server.connection->write(data, /*end_stream=*/false);
    };
  };
  connectPair();

  // The client sends two writes in one go; both come back, in order.
  write(*client_, "hello ");
  write(*client_, "world");
  ASSERT_TRUE(runUntil([&]() { return client_->received == "hello world"; }));
  EXPECT_EQ(server_->received, "hello world");

  // Byte counters and ids.
  EXPECT_EQ(client_->connection->bytesSent(), 11u);
  EXPECT_EQ(client_->connection->bytesReceived(), 11u);
  EXPECT_EQ(server_->connection->bytesReceived(), 11u);
  EXPECT_EQ(server_->connection->bytesSent(), 11u);
  EXPECT_NE(client_->connection->id(), server_->connection->id());
  EXPECT_EQ(&client_->connection->dispatcher(), &dispatcher_);

  // Nobody closed anything.
  EXPECT_EQ(client_->events, std::vector<ConnectionEvent>{ConnectionEvent::Connected});
  EXPECT_TRUE(server_->events.empty());
}

TEST_F(ConnectionImplTest, LocalCloseAndRemoteCloseAreRaisedOnce) {
  connectPair();

  // The client closes: it gets LocalClose right away, the server sees the FIN as RemoteClose.
  client_->connection->close(ConnectionCloseType::NoFlush);
  EXPECT_EQ(client_->connection->state(), Connection::State::Closed);
  EXPECT_EQ(client_->events.back(), ConnectionEvent::LocalClose);
  ASSERT_TRUE(runUntil([&]() { return server_->closed(); }));
  EXPECT_EQ(server_->events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});

  // Closing again is a no-op: no second event.
  client_->connection->close(ConnectionCloseType::FlushWrite);
  server_->connection->close(ConnectionCloseType::NoFlush);
  EXPECT_EQ(client_->events.size(), 2u);
  EXPECT_EQ(server_->events.size(), 1u);
}

TEST_F(ConnectionImplTest, WatermarksFollowTheWriteBufferWhenThePeerStopsReading) {
  connectPair();
  const std::string payload = pattern(/*size=*/10 * 1024 * 1024);

  // The client stops reading: the server's bytes pile up in the kernel, then in its buffer.
  client_->connection->readDisable(true);
  EXPECT_FALSE(client_->connection->readEnabled());

  // 10 MB into a connection with the default 1 MiB limit: above the high watermark at once.
  write(*server_, payload);
  EXPECT_EQ(server_->connection->bufferLimit(), ConnectionImpl::kDefaultBufferLimit);
  EXPECT_TRUE(server_->connection->aboveHighWatermark());
  EXPECT_EQ(server_->above_high_calls, 1);

  // The loop flushes what the kernel takes, but the kernel cannot take 9.5 MB while nobody
  // reads: we stay above the low watermark.
  runIterations(/*iterations=*/20);
  EXPECT_TRUE(server_->connection->aboveHighWatermark());
  EXPECT_EQ(server_->below_low_calls, 0);
  EXPECT_LT(server_->connection->bytesSent(), payload.size());
  EXPECT_TRUE(client_->received.empty());

  // Reading resumes: the buffer drains, the low watermark fires once, every byte arrives.
  client_->connection->readDisable(false);
  ASSERT_TRUE(runUntil([&]() { return client_->received.size() == payload.size(); }));
  EXPECT_TRUE(client_->received == payload);
  EXPECT_EQ(server_->below_low_calls, 1);
  EXPECT_EQ(server_->above_high_calls, 1);
  EXPECT_FALSE(server_->connection->aboveHighWatermark());
  EXPECT_EQ(server_->connection->writeBufferLength(), 0u);
}

TEST_F(ConnectionImplTest, ReadsAreBoundedByTheBufferLimitPerEvent) {
  connectPair();
  // A 16 KiB limit: 100 KiB arrive in several onData calls, none larger than the limit.
  client_->connection->setBufferLimits(16 * 1024);
  size_t largest = 0;
  client_->on_data = [&](Buffer::Instance& data, bool) {
    largest = std::max<size_t>(largest, data.length());
    client_->received += data.toString();
    data.drain(data.length());
  };
  const std::string payload = pattern(/*size=*/100 * 1024);
  write(*server_, payload);
  ASSERT_TRUE(runUntil([&]() { return client_->received.size() == payload.size(); }));
  EXPECT_TRUE(client_->received == payload);
  EXPECT_LE(largest, 16u * 1024);
  EXPECT_GE(client_->on_data_calls, 7);
}

TEST_F(ConnectionImplTest, RetainedBytesCountTowardsTheReadLimit) {
  connectPair();
  // A 16 KiB limit and a filter that consumes one KiB per call and keeps the rest, pausing
  // reading while it holds bytes (as the HTTP codec holds pipelined requests).
  client_->connection->setBufferLimits(16 * 1024);
  size_t largest = 0;
  client_->on_data = [&](Buffer::Instance& data, bool) {
    largest = std::max<size_t>(largest, data.length());
    const size_t take = std::min<size_t>(data.length(), 1024);
    client_->received += data.toString().substr(0, take);
    data.drain(take);
    if (data.length() > 0) {
      client_->connection->readDisable(true);
      dispatcher_.post([this] { client_->connection->readDisable(false); });
    }
  };
  const std::string payload = pattern(/*size=*/100 * 1024);
  write(*server_, payload);
  ASSERT_TRUE(runUntil([&]() { return client_->received.size() == payload.size(); }));
  EXPECT_TRUE(client_->received == payload);
  // The buffer never held more than the limit: each event reads only what the retained bytes
  // leave room for.
  EXPECT_LE(largest, 16u * 1024);
}

TEST_F(ConnectionImplTest, ReadDisableStopsOnDataAndReEnableRedeliversRetainedBytes) {
  connectPair();

  // The server stops reading (twice: the count matters) before the client sends.
  server_->connection->readDisable(true);
  server_->connection->readDisable(true);
  write(*client_, "hello");
  ASSERT_TRUE(runUntil([&]() { return client_->connection->bytesSent() == 5; }));
  runIterations(/*iterations=*/5);
  EXPECT_EQ(server_->on_data_calls, 0);

  // One enable is not enough: still one disable outstanding.
  server_->connection->readDisable(false);
  EXPECT_FALSE(server_->connection->readEnabled());
  runIterations(/*iterations=*/5);
  EXPECT_EQ(server_->on_data_calls, 0);

  // The filter now looks without consuming, and stops reading: the bytes stay buffered.
  server_->on_data = [&](Buffer::Instance& data, bool) {
    server_->received = data.toString();
    server_->connection->readDisable(true);
  };
  server_->connection->readDisable(false);
  ASSERT_TRUE(runUntil([&]() { return server_->on_data_calls == 1; }));
  EXPECT_EQ(server_->received, "hello");
  EXPECT_EQ(server_->connection->readBufferLength(), 5u);

  // Re-enabling offers the retained bytes again, with no new bytes on the socket.
  server_->on_data = nullptr;  // consume this time
  server_->received.clear();
  server_->connection->readDisable(false);
  ASSERT_TRUE(runUntil([&]() { return server_->on_data_calls == 2; }));
  EXPECT_EQ(server_->received, "hello");
  EXPECT_EQ(server_->connection->readBufferLength(), 0u);
  EXPECT_EQ(server_->connection->bytesReceived(), 5u);
}

TEST_F(ConnectionImplTest, HalfCloseKeepsTheOtherDirectionOpen) {
  on_server_connection_ = [](Peer& server) { server.connection->enableHalfClose(true); };
  connectPair();
  client_->connection->enableHalfClose(true);

  // The client sends its request and half-closes.
  write(*client_, "ping", /*end_stream=*/true);
  ASSERT_TRUE(runUntil([&]() { return server_->end_stream_calls == 1; }));
  EXPECT_EQ(server_->received, "ping");
  // The server is still open, and can answer.
  EXPECT_EQ(server_->connection->state(), Connection::State::Open);
  EXPECT_TRUE(server_->events.empty());

  write(*server_, "pong", /*end_stream=*/true);
  ASSERT_TRUE(runUntil([&]() { return client_->closed() && server_->closed(); }));
  EXPECT_EQ(client_->received, "pong");
  EXPECT_EQ(client_->end_stream_calls, 1);
  // Both directions ended: the server closed once its FIN went out, the client on reading it.
  EXPECT_EQ(server_->events, std::vector<ConnectionEvent>{ConnectionEvent::LocalClose});
  EXPECT_EQ(client_->events.back(), ConnectionEvent::RemoteClose);
  EXPECT_EQ(server_->end_stream_calls, 1);
}

TEST_F(ConnectionImplTest, HalfCloseFinWhileNotReadingWaitsForReadingToResume) {
  on_server_connection_ = [](Peer& server) { server.connection->enableHalfClose(true); };
  connectPair();
  client_->connection->enableHalfClose(true);

  // The server is not reading when the client's last bytes and FIN arrive.
  server_->connection->readDisable(true);
  write(*client_, "bye", /*end_stream=*/true);
  ASSERT_TRUE(runUntil([&]() { return client_->connection->bytesSent() == 3; }));
  runIterations(/*iterations=*/5);
  // With half-close a FIN is part of the stream, not an early close: nothing happens yet.
  EXPECT_EQ(server_->on_data_calls, 0);
  EXPECT_EQ(server_->connection->state(), Connection::State::Open);

  // Reading resumes: the bytes and the end of stream arrive together, once.
  server_->connection->readDisable(false);
  ASSERT_TRUE(runUntil([&]() { return server_->end_stream_calls == 1; }));
  EXPECT_EQ(server_->received, "bye");
  EXPECT_EQ(server_->on_data_calls, 1);
  EXPECT_EQ(server_->connection->state(), Connection::State::Open);
}

TEST_F(ConnectionImplTest, FinWithoutHalfCloseClosesAfterDeliveringTheData) {
  connectPair();

  // The client (raw from the server's view) sends data and closes; half-close is off.
  write(*client_, "last words");
  client_->connection->close(ConnectionCloseType::FlushWrite);
  ASSERT_TRUE(runUntil([&]() { return server_->closed(); }));

  // The data came first, with end_stream=false; then RemoteClose.
  EXPECT_EQ(server_->received, "last words");
  EXPECT_EQ(server_->end_stream_calls, 0);
  EXPECT_EQ(server_->received_at_close, 10u);
  EXPECT_EQ(server_->events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
  EXPECT_EQ(client_->events.back(), ConnectionEvent::LocalClose);
}

TEST_F(ConnectionImplTest, CloseFlushWriteDeliversEverythingBeforeTheFin) {
  connectPair();
  const std::string payload = pattern(/*size=*/4 * 1024 * 1024);

  // The server writes 4 MB and closes at once: the connection lingers in Closing.
  write(*server_, payload);
  server_->connection->close(ConnectionCloseType::FlushWrite);
  EXPECT_EQ(server_->connection->state(), Connection::State::Closing);
  EXPECT_TRUE(server_->events.empty());

  // The client reads every byte, and only then sees the close.
  ASSERT_TRUE(runUntil([&]() { return client_->closed() && server_->closed(); }));
  EXPECT_EQ(client_->received_at_close, payload.size());
  EXPECT_TRUE(client_->received == payload);
  EXPECT_EQ(client_->events.back(), ConnectionEvent::RemoteClose);
  EXPECT_EQ(server_->events, std::vector<ConnectionEvent>{ConnectionEvent::LocalClose});
  EXPECT_EQ(server_->connection->bytesSent(), payload.size());
}

TEST_F(ConnectionImplTest, DelayedCloseTimeoutBoundsAFlushThatNeverEnds) {
  connectPair();
  // The client never reads, so 10 MB can never be flushed.
  client_->connection->readDisable(true);
  server_->connection->setDelayedCloseTimeout(std::chrono::milliseconds(50));
  write(*server_, pattern(/*size=*/10 * 1024 * 1024));
  server_->connection->close(ConnectionCloseType::FlushWrite);
  EXPECT_EQ(server_->connection->state(), Connection::State::Closing);

  // The timer closes it anyway, as a local close.
  ASSERT_TRUE(runUntil([&]() { return server_->closed(); }));
  EXPECT_EQ(server_->events, std::vector<ConnectionEvent>{ConnectionEvent::LocalClose});
  EXPECT_LT(server_->connection->bytesSent(), 10u * 1024 * 1024);
}

TEST_F(ConnectionImplTest, PeerResetIsARemoteClose) {
  // A raw client, so the test can make it send a RST (SO_LINGER with zero timeout).
  IoHandle raw = blockingConnect(listenAddress());
  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1; }));
  Peer& server = *accepted_[0];

  linger reset{/*l_onoff=*/1, /*l_linger=*/0};
  ASSERT_EQ(::setsockopt(raw.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
  raw.close();

  ASSERT_TRUE(runUntil([&]() { return server.closed(); }));
  EXPECT_EQ(server.events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionImplTest, PeerResetWhileNotReadingIsARemoteClose) {
  IoHandle raw = blockingConnect(listenAddress());
  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1; }));
  Peer& server = *accepted_[0];
  // Not reading: the reset is noticed through the early-close (Closed) event.
  server.connection->readDisable(true);

  linger reset{/*l_onoff=*/1, /*l_linger=*/0};
  ASSERT_EQ(::setsockopt(raw.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
  raw.close();

  ASSERT_TRUE(runUntil([&]() { return server.closed(); }));
  EXPECT_EQ(server.events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

// A read shorter than it asked for ends a read pass (no further read only to learn EAGAIN,
// issue 14): these peers queue their bytes and their FIN or reset before the server's first
// read, in one wake-up, so the short read of the bytes must not hide what follows them.
TEST_F(ConnectionImplTest, BytesAndFinQueuedTogetherAreDeliveredThenARemoteClose) {
  // The raw client writes and shuts down before the loop has even accepted it.
  IoHandle raw = blockingConnect(listenAddress());
  ASSERT_EQ(::send(raw.fd(), "last words", 10, 0), 10);
  ASSERT_EQ(::shutdown(raw.fd(), SHUT_WR), 0);

  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1 && accepted_[0]->closed(); }));
  Peer& server = *accepted_[0];
  EXPECT_EQ(server.received, "last words");
  EXPECT_EQ(server.received_at_close, 10u);
  EXPECT_EQ(server.events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionImplTest, BytesAndFinQueuedTogetherEndTheStreamWithHalfClose) {
  on_server_connection_ = [](Peer& server) { server.connection->enableHalfClose(true); };
  IoHandle raw = blockingConnect(listenAddress());
  ASSERT_EQ(::send(raw.fd(), "bye", 3, 0), 3);
  ASSERT_EQ(::shutdown(raw.fd(), SHUT_WR), 0);

  // The bytes and the end of stream, with the connection still open for the answer.
  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1 && accepted_[0]->end_stream_calls; }));
  Peer& server = *accepted_[0];
  EXPECT_EQ(server.received, "bye");
  EXPECT_EQ(server.end_stream_calls, 1);
  EXPECT_EQ(server.connection->state(), Connection::State::Open);
}

TEST_F(ConnectionImplTest, BytesAndResetQueuedTogetherAreARemoteClose) {
  IoHandle raw = blockingConnect(listenAddress());
  ASSERT_EQ(::send(raw.fd(), "abc", 3, 0), 3);
  linger reset{/*l_onoff=*/1, /*l_linger=*/0};
  ASSERT_EQ(::setsockopt(raw.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
  raw.close();

  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1 && accepted_[0]->closed(); }));
  EXPECT_EQ(accepted_[0]->events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionImplTest, BytesAfterAShortReadArriveWithTheNextEvent) {
  connectPair();
  // Many small writes from the client, each in its own loop iteration: each server read is
  // short, ends the pass, and the next bytes still come (a new edge for each arrival).
  std::string sent;
  for (int i = 0; i < 20; i++) {
    const std::string piece = "piece-" + std::to_string(i) + ";";
    sent += piece;
    write(*client_, piece);
    ASSERT_TRUE(runUntil([&]() { return server_->received == sent; }));
  }
  EXPECT_EQ(server_->connection->bytesReceived(), sent.size());
}

TEST_F(ConnectionImplTest, WritingToAClosedPeerIsARemoteCloseNotASigpipe) {
  // Half-close on, so the peer's FIN alone does not close the server side.
  on_server_connection_ = [](Peer& server) { server.connection->enableHalfClose(true); };
  IoHandle raw = blockingConnect(listenAddress());
  ASSERT_TRUE(runUntil([&]() { return accepted_.size() == 1; }));
  Peer& server = *accepted_[0];

  // The peer closes its socket entirely (FIN); the server sees end_stream and stays open.
  raw.close();
  ASSERT_TRUE(runUntil([&]() { return server.end_stream_calls == 1; }));
  EXPECT_EQ(server.connection->state(), Connection::State::Open);

  // Writing now draws a RST, and writing after that fails with EPIPE: without MSG_NOSIGNAL
  // the process would die of SIGPIPE here.
  write(server, "first");
  ASSERT_TRUE(runUntil([&]() { return server.connection->bytesSent() == 5 || server.closed(); }));
  if (!server.closed()) {
    write(server, "second");
  }
  ASSERT_TRUE(runUntil([&]() { return server.closed(); }));
  EXPECT_EQ(server.events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionImplTest, ConnectToAClosedPortFailsAsynchronously) {
  // A port that was just free: bind port 0, note it, close it.
  Address closed_port;
  {
    ListenSocketPtr socket = *ListenSocket::create(*Address::fromIpPort("127.0.0.1", 0),
                                                   /*reuse_port=*/false, /*backlog=*/1);
    closed_port = socket->localAddress();
  }

  // connect() itself reports nothing, even when the kernel refuses on the spot...
  client_ = connectClient(closed_port);
  EXPECT_TRUE(client_->events.empty());
  EXPECT_EQ(client_->connection->state(), Connection::State::Open);

  // ...the loop delivers RemoteClose, and never Connected.
  ASSERT_TRUE(runUntil([&]() { return client_->closed(); }));
  EXPECT_EQ(client_->events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionImplTest, WritesBeforeConnectCompletesAreSentAfterIt) {
  client_ = std::make_unique<Peer>();
  client_->connection = std::make_unique<ClientConnectionImpl>(dispatcher_, listenAddress());
  client_->connection->addConnectionCallbacks(*client_);
  client_->connection->setReadFilter(client_.get());

  // Written before connect(): buffered, and flushed once connected.
  write(*client_, "early");
  static_cast<ClientConnectionImpl&>(*client_->connection).connect();
  ASSERT_TRUE(runUntil([&]() { return !accepted_.empty() && accepted_[0]->received == "early"; }));
  EXPECT_EQ(client_->events, std::vector<ConnectionEvent>{ConnectionEvent::Connected});
}

TEST_F(ConnectionImplTest, ConnectionCanBeDeferredDeletedFromItsCloseCallback) {
  connectPair();
  // The owner's usual pattern: on close, hand the connection to deferredDelete().
  bool deleted = false;
  struct Witness : public Event::DeferredDeletable {
    explicit Witness(bool& flag) : flag_(flag) {}
    ~Witness() override { flag_ = true; }
    bool& flag_;
  };
  server_->on_event = [&](ConnectionEvent) {
    dispatcher_.deferredDelete(std::move(server_->connection));
    dispatcher_.deferredDelete(std::make_unique<Witness>(deleted));
  };

  // The close is raised from inside the server's read path, which keeps running after the
  // callback (sanitizers check it does not touch freed memory).
  client_->connection->close(ConnectionCloseType::NoFlush);
  ASSERT_TRUE(runUntil([&]() { return deleted; }));
  EXPECT_EQ(server_->connection, nullptr);
  EXPECT_EQ(server_->events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionImplTest, RemovedCallbacksAreNotCalled) {
  connectPair();
  Peer other;
  server_->connection->addConnectionCallbacks(other);
  server_->connection->removeConnectionCallbacks(*server_);

  client_->connection->close(ConnectionCloseType::NoFlush);
  ASSERT_TRUE(
      runUntil([&]() { return server_->connection->state() == Connection::State::Closed; }));
  EXPECT_TRUE(server_->events.empty());
  EXPECT_EQ(other.events, std::vector<ConnectionEvent>{ConnectionEvent::RemoteClose});
}

TEST_F(ConnectionImplTest, Ipv6LoopbackRoundTrip) {
  absl::StatusOr<ListenSocketPtr> probe = ListenSocket::create(
      *Address::fromIpPort("::1", /*port=*/0), /*reuse_port=*/false, /*backlog=*/16);
  if (!probe.ok()) {
    GTEST_SKIP() << "::1 unavailable: " << probe.status();
  }
  probe->reset();
  listener_.reset();
  startListener(/*ip=*/"::1");
  on_server_connection_ = [](Peer& server) {
    server.on_data = [&server](Buffer::Instance& data, bool) {
      server.connection->write(data, /*end_stream=*/false);
    };
  };
  connectPair();
  EXPECT_EQ(server_->connection->remoteAddress().ip(), "::1");
  EXPECT_EQ(client_->connection->remoteAddress().asString(),
            "[::1]:" + std::to_string(listenAddress().port()));

  write(*client_, "over v6");
  EXPECT_TRUE(runUntil([&]() { return client_->received == "over v6"; }));
}

}  // namespace
}  // namespace Proxy::Network
