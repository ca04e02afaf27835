#pragma once

// Test doubles for the pool tests: FakeUpstream, a tiny HTTP/1 server on a dispatcher
// (TcpListenerImpl + ConnectionImpl, 127.0.0.1:0) that answers each request head with a canned
// response (the parsing under test is our client codec's), and TestStream, the router's side
// of one pooled request.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/network/connection_impl.h"
#include "proxy/network/listen_socket.h"
#include "proxy/network/tcp_listener_impl.h"
#include "proxy/upstream/upstream.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {

inline constexpr std::string_view kOkResponse = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

// The upstream: counts connections and request heads, answers each head with `respond`.
class FakeUpstream : public Network::TcpListenerCallbacks {
 public:
  struct ServerConnection : public Network::ReadFilter, public Network::ConnectionCallbacks {
    explicit ServerConnection(FakeUpstream& parent) : parent_(parent) {}
    void onData(Buffer::Instance& data, bool) override {
      received_ += data.toString();
      data.drain(data.length());
      // Requests in these tests have no body: a blank line ends each one.
      size_t end;
      while ((end = received_.find("\r\n\r\n")) != std::string::npos) {
        received_.erase(0, end + 4);
        parent_.requests_++;
        parent_.respond_(*this);
      }
    }
    void onEvent(Network::ConnectionEvent event) override {
      if (event != Network::ConnectionEvent::Connected) {
        closed_ = true;
      }
    }
    void send(std::string_view bytes) {
      Buffer::Instance buffer;
      buffer.add(bytes);
      connection_->write(buffer, /*end_stream=*/false);
    }

    FakeUpstream& parent_;
    std::unique_ptr<Network::ConnectionImpl> connection_;
    std::string received_;
    bool closed_ = false;
  };

  explicit FakeUpstream(Event::Dispatcher& dispatcher) : dispatcher_(dispatcher) {
    absl::StatusOr<Network::ListenSocketPtr> socket =
        Network::ListenSocket::create(loopback(0), /*reuse_port=*/false, /*backlog=*/128);
    EXPECT_TRUE(socket.ok()) << socket.status();
    socket_ = std::move(*socket);
    listener_ = std::make_unique<Network::TcpListenerImpl>(dispatcher_, *socket_, *this);
  }
  ~FakeUpstream() override {
    listener_.reset();
    connections_.clear();
  }

  void onAccept(Network::IoHandle socket, const Network::Address& remote,
                const Network::Address& local) override {
    auto connection = std::make_unique<ServerConnection>(*this);
    connection->connection_ =
        std::make_unique<Network::ConnectionImpl>(dispatcher_, std::move(socket), remote, local);
    connection->connection_->addConnectionCallbacks(*connection);
    connection->connection_->setReadFilter(connection.get());
    connections_.push_back(std::move(connection));
  }

  // Close every connection from the server side.
  void closeAll() {
    for (auto& connection : connections_) {
      connection->connection_->close(Network::ConnectionCloseType::FlushWrite);
    }
  }

  uint32_t port() const { return socket_->localAddress().port(); }
  size_t accepted() const { return connections_.size(); }
  int requests() const { return requests_; }

  std::function<void(ServerConnection&)> respond_ = [](ServerConnection& c) {
    c.send(kOkResponse);
  };

 private:
  Event::Dispatcher& dispatcher_;
  Network::ListenSocketPtr socket_;
  std::unique_ptr<Network::TcpListenerImpl> listener_;
  std::vector<std::unique_ptr<ServerConnection>> connections_;
  int requests_ = 0;
};

// One caller of the pool: the router's part, recording what happened.
struct TestStream : public HttpPoolCallbacks,
                    public Http::ResponseDecoder,
                    public Http::StreamCallbacks {
  // HttpPoolCallbacks
  void onPoolReady(Http::RequestEncoder& request_encoder, const HostConstSharedPtr&) override {
    ready = true;
    encoder = &request_encoder;
    encoder->getStream().addCallbacks(*this);
    if (send_request) {
      Http::RequestHeaderMap headers;
      headers.addCopy(Http::Headers::Method, "GET");
      headers.addCopy(Http::Headers::Path, "/");
      headers.addCopy(Http::Headers::Authority, "upstream");
      encoder->encodeHeaders(headers, /*end_stream=*/request_end_stream);
    }
  }
  void onPoolFailure(PoolFailureReason reason, std::string_view why,
                     const HostConstSharedPtr&) override {
    failed = true;
    failure_reason = reason;
    details = std::string(why);
  }
  // Http::ResponseDecoder
  void decode100ContinueHeaders(Http::ResponseHeaderMapPtr&&) override {}
  void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override {
    status = headers->status();
    complete = end_stream;
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    body += data.toString();
    data.drain(data.length());
    complete = end_stream;
  }
  void decodeTrailers(Http::ResponseTrailerMapPtr&&) override { complete = true; }
  // Http::StreamCallbacks
  void onResetStream(Http::StreamResetReason reason) override {
    reset = true;
    reset_reason = reason;
  }
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

  bool send_request = true;
  bool request_end_stream = true;
  bool ready = false;
  Http::RequestEncoder* encoder = nullptr;
  bool failed = false;
  PoolFailureReason failure_reason{};
  std::string details;
  uint32_t status = 0;
  std::string body;
  bool complete = false;
  bool reset = false;
  Http::StreamResetReason reset_reason{};
};

}  // namespace Proxy::Upstream
