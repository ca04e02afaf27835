#pragma once

// A transport without a network for xds_client unit tests and the benchmark: records the
// requests the client sends and lets the test play the management server. Responses go
// through the real decoder (decodeResponse), synchronously on the test thread.

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gtest/gtest.h"
#include "xds_client/transport.h"

namespace Proxy::Test {

// One stream as the server sees it. Outlives the transport (the test may look at the requests
// of a stream the client already dropped).
class FakeStream {
 public:
  FakeStream(std::string target, std::string method, bool delta)
      : target(std::move(target)), method(std::move(method)), delta(delta) {}

  const std::string target;
  const std::string method;
  const bool delta;

  bool open() const { return handler_ != nullptr; }
  size_t pendingRequests() const { return requests_.size(); }
  size_t totalRequests() const { return total_requests_; }

  // The oldest request not taken yet (fails the test if there is none).
  envoy::service::discovery::v3::DiscoveryRequest takeRequest() {
    envoy::service::discovery::v3::DiscoveryRequest request;
    EXPECT_FALSE(delta);
    EXPECT_FALSE(requests_.empty()) << "no request from the client on " << method;
    if (!requests_.empty()) {
      EXPECT_TRUE(request.ParseFromString(requests_.front()));
      requests_.pop_front();
    }
    return request;
  }
  // The oldest request's bytes as the client serialized them.
  std::string takeRequestBytes() {
    EXPECT_FALSE(requests_.empty()) << "no request from the client on " << method;
    std::string bytes;
    if (!requests_.empty()) {
      bytes = std::move(requests_.front());
      requests_.pop_front();
    }
    return bytes;
  }
  envoy::service::discovery::v3::DeltaDiscoveryRequest takeDeltaRequest() {
    envoy::service::discovery::v3::DeltaDiscoveryRequest request;
    EXPECT_TRUE(delta);
    EXPECT_FALSE(requests_.empty()) << "no request from the client on " << method;
    if (!requests_.empty()) {
      EXPECT_TRUE(request.ParseFromString(requests_.front()));
      requests_.pop_front();
    }
    return request;
  }

  // The server side.
  void connect() {
    ASSERT_TRUE(open());
    handler_->onConnected();
  }
  void respond(const envoy::service::discovery::v3::DiscoveryResponse& response) {
    respondBytes(response.SerializeAsString());
  }
  void respond(const envoy::service::discovery::v3::DeltaDiscoveryResponse& response) {
    respondBytes(response.SerializeAsString());
  }
  void respondBytes(const std::string& bytes) {
    ASSERT_TRUE(open()) << "the client closed " << method;
    handler_->onResponse(Xds::decodeResponse(bytes, delta));
  }
  // A response already decoded (what the gRPC transport hands to the main thread).
  void respondDecoded(Xds::DecodedResponsePtr response) {
    ASSERT_TRUE(open()) << "the client closed " << method;
    handler_->onResponse(std::move(response));
  }
  void close(const absl::Status& status) {
    ASSERT_TRUE(open());
    auto* handler = handler_;
    handler_ = nullptr;
    handler->onStreamClosed(status);
  }

 private:
  friend class FakeTransport;
  Xds::XdsTransport::EventHandler* handler_ = nullptr;
  std::deque<std::string> requests_;
  size_t total_requests_ = 0;
};

class FakeTransport : public Xds::XdsTransport {
 public:
  FakeTransport(std::shared_ptr<FakeStream> stream, EventHandler& handler)
      : stream_(std::move(stream)) {
    stream_->handler_ = &handler;
  }
  ~FakeTransport() override { stream_->handler_ = nullptr; }

  void sendMessage(std::string serialized_request) override {
    stream_->requests_.push_back(std::move(serialized_request));
    ++stream_->total_requests_;
  }

 private:
  std::shared_ptr<FakeStream> stream_;
};

// Owned by the client; the test keeps a pointer to its stream list through streams().
class FakeTransportFactory : public Xds::XdsTransportFactory {
 public:
  // Shared with the test, which keeps it after handing the factory to the client.
  struct Streams {
    std::vector<std::shared_ptr<FakeStream>> all;
  };

  explicit FakeTransportFactory(std::shared_ptr<Streams> streams) : streams_(std::move(streams)) {}

  Xds::XdsTransportPtr createTransport(const Xds::XdsStreamConfig& config, std::string_view method,
                                       Xds::XdsTransport::EventHandler& handler) override {
    auto stream = std::make_shared<FakeStream>(config.target, std::string(method), config.delta);
    streams_->all.push_back(stream);
    return std::make_unique<FakeTransport>(stream, handler);
  }

 private:
  std::shared_ptr<Streams> streams_;
};

}  // namespace Proxy::Test
