#pragma once

// Shared scaffolding for the network tests: a real DispatcherImpl, a loopback listener on port
// 0 that wraps each accepted socket in a ConnectionImpl, and `Peer`, which records everything a
// connection reports. Waiting is always "run the loop until a condition holds or a deadline
// passes", never a sleep.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/common/time.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/network/address.h"
#include "proxy/network/connection_impl.h"
#include "proxy/network/listen_socket.h"
#include "proxy/network/listener.h"
#include "proxy/network/tcp_listener_impl.h"

namespace Proxy::Network {

// One end of a connection under test: its callbacks and its read filter.
struct Peer : public ConnectionCallbacks, public ReadFilter {
  // ConnectionCallbacks
  void onEvent(ConnectionEvent event) override {
    events.push_back(event);
    if (event != ConnectionEvent::Connected) {
      received_at_close = received.size();
    }
    if (on_event) {
      on_event(event);
    }
  }
  void onAboveWriteBufferHighWatermark() override { above_high_calls++; }
  void onBelowWriteBufferLowWatermark() override { below_low_calls++; }

  // ReadFilter: by default consume everything; `on_data` replaces that.
  void onData(Buffer::Instance& data, bool end_stream) override {
    on_data_calls++;
    if (end_stream) {
      end_stream_calls++;
    }
    if (on_data) {
      on_data(data, end_stream);
      return;
    }
    received += data.toString();
    data.drain(data.length());
  }

  bool closed() const {
    return connection == nullptr || connection->state() == Connection::State::Closed;
  }
  bool sawEvent(ConnectionEvent event) const {
    for (ConnectionEvent e : events) {
      if (e == event) {
        return true;
      }
    }
    return false;
  }

  std::unique_ptr<ConnectionImpl> connection;
  std::string received;
  size_t received_at_close = 0;
  std::vector<ConnectionEvent> events;
  int on_data_calls = 0;
  int end_stream_calls = 0;
  int above_high_calls = 0;
  int below_low_calls = 0;
  std::function<void(Buffer::Instance&, bool)> on_data;
  std::function<void(ConnectionEvent)> on_event;
};

class NetworkTestBase : public testing::Test, public TcpListenerCallbacks {
 protected:
  ~NetworkTestBase() override {
    // Connections and listeners hold file events: release them while the dispatcher lives.
    accepted_.clear();
    listener_.reset();
    dispatcher_.clearDeferredDeleteList();
  }

  // Listen on 127.0.0.1:0 (or `ip`) and wrap every accepted socket in a server-side Peer.
  void startListener(const std::string& ip = "127.0.0.1") {
    absl::StatusOr<Address> address = Address::fromIpPort(ip, /*port=*/0);
    ASSERT_TRUE(address.ok()) << address.status();
    absl::StatusOr<ListenSocketPtr> socket =
        ListenSocket::create(*address, /*reuse_port=*/false, /*backlog=*/128);
    ASSERT_TRUE(socket.ok()) << socket.status();
    listen_socket_ = std::move(*socket);
    listener_ = std::make_unique<TcpListenerImpl>(dispatcher_, *listen_socket_, *this);
  }
  const Address& listenAddress() const { return listen_socket_->localAddress(); }

  // TcpListenerCallbacks
  void onAccept(IoHandle socket, const Address& remote, const Address& local) override {
    auto peer = std::make_unique<Peer>();
    peer->connection =
        std::make_unique<ConnectionImpl>(dispatcher_, std::move(socket), remote, local);
    peer->connection->addConnectionCallbacks(*peer);
    peer->connection->setReadFilter(peer.get());
    if (on_server_connection_) {
      // Before returning to the loop: settings here apply before the first byte is read.
      on_server_connection_(*peer);
    }
    accepted_.push_back(std::move(peer));
  }

  std::unique_ptr<Peer> connectClient(const Address& address) {
    auto peer = std::make_unique<Peer>();
    peer->connection = std::make_unique<ClientConnectionImpl>(dispatcher_, address);
    peer->connection->addConnectionCallbacks(*peer);
    peer->connection->setReadFilter(peer.get());
    static_cast<ClientConnectionImpl&>(*peer->connection).connect();
    return peer;
  }

  // A connected client and the server side of the same connection.
  void connectPair() {
    client_ = connectClient(listenAddress());
    ASSERT_TRUE(runUntil([&]() { return !accepted_.empty() && client_->events.size() == 1; }));
    ASSERT_EQ(client_->events[0], ConnectionEvent::Connected);
    server_ = accepted_.back().get();
  }

  // Run the loop until `condition` holds; fail if `timeout` passes first. The condition is
  // checked every millisecond from a timer inside the loop (the loop itself never sleeps
  // longer than that while waiting).
  testing::AssertionResult runUntil(const std::function<bool()>& condition,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    if (condition()) {
      return testing::AssertionSuccess();
    }
    bool timed_out = false;
    Event::TimerPtr deadline = dispatcher_.createTimer([&]() {
      timed_out = true;
      dispatcher_.exit();
    });
    Event::TimerPtr poll;
    poll = dispatcher_.createTimer([&]() {
      if (condition()) {
        dispatcher_.exit();
      } else {
        poll->enableTimer(std::chrono::milliseconds(1));
      }
    });
    deadline->enableTimer(timeout);
    poll->enableTimer(std::chrono::milliseconds(0));
    dispatcher_.run(Event::Dispatcher::RunType::RunUntilExit);
    if (condition()) {
      return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << "condition not met within " << timeout.count() << " ms"
                                       << (timed_out ? "" : " (loop exited early)");
  }

  // Let the loop handle whatever is ready (a non-blocking run keeps going while callbacks are
  // active), `iterations` times, without waiting: used to show that something does NOT
  // happen once its cause is already in the kernel's hands.
  void runIterations(int iterations) {
    for (int i = 0; i < iterations; i++) {
      dispatcher_.run(Event::Dispatcher::RunType::NonBlock);
    }
  }

  static std::string pattern(size_t size) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; i++) {
      data[i] = static_cast<char>('a' + (i % 23) + (i / 4096) % 3);
    }
    return data;
  }

  RealTimeSource time_source_;
  Event::DispatcherImpl dispatcher_{"test", time_source_};
  ListenSocketPtr listen_socket_;
  std::unique_ptr<TcpListenerImpl> listener_;
  std::vector<std::unique_ptr<Peer>> accepted_;
  std::function<void(Peer&)> on_server_connection_;
  std::unique_ptr<Peer> client_;
  Peer* server_ = nullptr;
};

}  // namespace Proxy::Network
