#pragma once

// A management server for integration tests: real gRPC on 127.0.0.1 port 0, implementing ADS
// (SotW and Delta) and LDS from our protos with gRPC's synchronous server API. The test thread
// plays the server: it waits for streams and requests (with deadlines) and sends responses.

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "envoy/service/listener/v3/lds.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace Proxy::Test {

// One stream as the server sees it. Req/Resp: DiscoveryRequest/Response or the Delta pair.
template <class Req, class Resp>
class FakeXdsStream {
 public:
  FakeXdsStream(std::string method, grpc::ServerContext* context,
                grpc::ServerReaderWriter<Resp, Req>* stream)
      : method(std::move(method)), context_(context), stream_(stream) {}

  const std::string method;

  // The next request, waiting up to `timeout` for it.
  ::testing::AssertionResult waitForRequest(Req& request,
                                            absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mutex_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return !requests_.empty() || done_;
    };
    if (!mutex_.AwaitWithTimeout(absl::Condition(&ready), timeout) || requests_.empty()) {
      return ::testing::AssertionFailure()
             << "no request on " << method << (done_ ? " (stream ended)" : " within the deadline");
    }
    request = std::move(requests_.front());
    requests_.pop_front();
    return ::testing::AssertionSuccess();
  }

  size_t pendingRequests() {
    absl::MutexLock lock(&mutex_);
    return requests_.size();
  }

  bool send(const Resp& response) {
    absl::MutexLock lock(&mutex_);
    return !done_ && stream_->Write(response);
  }

  // End the stream from the server side (the client sees it fail and reconnects).
  void close() {
    absl::MutexLock lock(&mutex_);
    if (!done_) {
      context_->TryCancel();  // the context dies with the handler: only while it runs
    }
  }

  ::testing::AssertionResult waitForEnd(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mutex_);
    if (!mutex_.AwaitWithTimeout(absl::Condition(&done_), timeout)) {
      return ::testing::AssertionFailure() << method << " did not end within the deadline";
    }
    return ::testing::AssertionSuccess();
  }

  // The gRPC handler thread: read until the stream ends.
  grpc::Status serve() {
    Req request;
    while (stream_->Read(&request)) {
      absl::MutexLock lock(&mutex_);
      requests_.push_back(request);
    }
    absl::MutexLock lock(&mutex_);
    done_ = true;
    return grpc::Status::OK;
  }

 private:
  grpc::ServerContext* const context_;
  grpc::ServerReaderWriter<Resp, Req>* const stream_;
  absl::Mutex mutex_;
  std::deque<Req> requests_ ABSL_GUARDED_BY(mutex_);
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
};

using SotwStream = FakeXdsStream<envoy::service::discovery::v3::DiscoveryRequest,
                                 envoy::service::discovery::v3::DiscoveryResponse>;
using DeltaStream = FakeXdsStream<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                                  envoy::service::discovery::v3::DeltaDiscoveryResponse>;

class FakeXdsServer : public envoy::service::discovery::v3::AggregatedDiscoveryService::Service,
                      public envoy::service::listener::v3::ListenerDiscoveryService::Service {
 public:
  FakeXdsServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(
        static_cast<envoy::service::discovery::v3::AggregatedDiscoveryService::Service*>(this));
    builder.RegisterService(
        static_cast<envoy::service::listener::v3::ListenerDiscoveryService::Service*>(this));
    server_ = builder.BuildAndStart();
  }

  ~FakeXdsServer() override { shutdown(); }

  // Cancel every stream and stop: the client sees its streams fail and connections refused.
  void shutdown() {
    if (server_ == nullptr) {
      return;
    }
    {
      absl::MutexLock lock(&mutex_);
      for (auto& stream : sotw_streams_) {
        stream->close();
      }
      for (auto& stream : delta_streams_) {
        stream->close();
      }
    }
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
    server_.reset();
  }

  int port() const { return port_; }

  // The n-th SotW stream (0-based, any method), waiting for it to open.
  std::shared_ptr<SotwStream> waitForSotwStream(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    return waitFor(sotw_streams_, n, timeout);
  }
  std::shared_ptr<DeltaStream> waitForDeltaStream(size_t n,
                                                  absl::Duration timeout = absl::Seconds(10)) {
    return waitFor(delta_streams_, n, timeout);
  }
  size_t sotwStreamCount() {
    absl::MutexLock lock(&mutex_);
    return sotw_streams_.size();
  }
  size_t deltaStreamCount() {
    absl::MutexLock lock(&mutex_);
    return delta_streams_.size();
  }

  // gRPC handlers (server threads).
  grpc::Status StreamAggregatedResources(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<envoy::service::discovery::v3::DiscoveryResponse,
                               envoy::service::discovery::v3::DiscoveryRequest>* stream) override {
    return serve(sotw_streams_, "StreamAggregatedResources", context, stream);
  }
  grpc::Status DeltaAggregatedResources(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<envoy::service::discovery::v3::DeltaDiscoveryResponse,
                               envoy::service::discovery::v3::DeltaDiscoveryRequest>* stream)
      override {
    return serve(delta_streams_, "DeltaAggregatedResources", context, stream);
  }
  grpc::Status StreamListeners(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<envoy::service::discovery::v3::DiscoveryResponse,
                               envoy::service::discovery::v3::DiscoveryRequest>* stream) override {
    return serve(sotw_streams_, "StreamListeners", context, stream);
  }

 private:
  template <class S, class Rw>
  grpc::Status serve(std::vector<std::shared_ptr<S>>& streams, const char* method,
                     grpc::ServerContext* context, Rw* rw) {
    auto stream = std::make_shared<S>(method, context, rw);
    {
      absl::MutexLock lock(&mutex_);
      streams.push_back(stream);
    }
    return stream->serve();
  }

  template <class S>
  std::shared_ptr<S> waitFor(std::vector<std::shared_ptr<S>>& streams, size_t n,
                             absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return streams.size() > n; };
    if (!mutex_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
      ADD_FAILURE() << "stream " << n << " did not open within the deadline";
      return nullptr;
    }
    return streams[n];
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mutex_;
  std::vector<std::shared_ptr<SotwStream>> sotw_streams_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::shared_ptr<DeltaStream>> delta_streams_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace Proxy::Test
