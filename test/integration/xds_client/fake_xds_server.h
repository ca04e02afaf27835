#pragma once

// A management server for integration tests: real gRPC on 127.0.0.1 port 0, implementing ADS
// (SotW and Delta) and LDS from our protos with gRPC's synchronous server API. The test thread
// plays the server: it waits for streams and requests (with deadlines) and sends responses.
//
// The implementation (fake_xds_server.cc) is built without ThreadSanitizer instrumentation in
// TSAN builds, like Debian's gRPC it drives: TSAN cannot see gRPC's own synchronization.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gtest/gtest.h"

namespace Proxy::Test {

// One stream as the server sees it. Req/Resp: DiscoveryRequest/Response or the Delta pair.
// Thread-safe.
template <class Req, class Resp>
class FakeXdsStream {
 public:
  // `context` and `stream` are the gRPC handler's ServerContext and ServerReaderWriter.
  FakeXdsStream(std::string method, void* context, void* stream);

  const std::string method;

  // The next request, waiting up to `timeout` for it.
  ::testing::AssertionResult waitForRequest(
      Req& request, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  size_t pendingRequests();
  // False once the stream has ended.
  bool send(const Resp& response);
  // End the stream from the server side (the client sees it fail and reconnects).
  void close();
  ::testing::AssertionResult waitForEnd(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The gRPC handler thread: read until the stream ends.
  void serve();

 private:
  void* const context_;
  void* const stream_;
  // std::mutex rather than absl::Mutex: TSAN sees it (Debian's absl is not TSAN-annotated).
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Req> requests_;
  bool done_ = false;
};

using SotwStream = FakeXdsStream<envoy::service::discovery::v3::DiscoveryRequest,
                                 envoy::service::discovery::v3::DiscoveryResponse>;
using DeltaStream = FakeXdsStream<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                                  envoy::service::discovery::v3::DeltaDiscoveryResponse>;

class FakeXdsServer {
 public:
  FakeXdsServer();
  ~FakeXdsServer();

  int port() const;
  // Cancel every stream and stop: the client sees its streams fail and connections refused.
  void shutdown();

  // The n-th SotW stream (0-based, ADS or LDS), waiting for it to open.
  std::shared_ptr<SotwStream> waitForSotwStream(
      size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::shared_ptr<DeltaStream> waitForDeltaStream(
      size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  size_t sotwStreamCount();
  size_t deltaStreamCount();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace Proxy::Test
