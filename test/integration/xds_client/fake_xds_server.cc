#include "test/integration/xds_client/fake_xds_server.h"

#include <vector>

#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "envoy/service/listener/v3/lds.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace Proxy::Test {

template <class Req, class Resp>
FakeXdsStream<Req, Resp>::FakeXdsStream(std::string method, void* context, void* stream)
    : method(std::move(method)), context_(context), stream_(stream) {}

template <class Req, class Resp>
::testing::AssertionResult FakeXdsStream<Req, Resp>::waitForRequest(
    Req& request, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [this] { return !requests_.empty() || done_; });
  if (requests_.empty()) {
    return ::testing::AssertionFailure()
           << "no request on " << method << (done_ ? " (stream ended)" : " within the deadline");
  }
  request = std::move(requests_.front());
  requests_.pop_front();
  return ::testing::AssertionSuccess();
}

template <class Req, class Resp>
size_t FakeXdsStream<Req, Resp>::pendingRequests() {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_.size();
}

template <class Req, class Resp>
bool FakeXdsStream<Req, Resp>::send(const Resp& response) {
  // Under the lock: the handler (and the stream with it) ends only after setting done_.
  std::lock_guard<std::mutex> lock(mutex_);
  return !done_ && static_cast<grpc::ServerReaderWriter<Resp, Req>*>(stream_)->Write(response);
}

template <class Req, class Resp>
void FakeXdsStream<Req, Resp>::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!done_) {
    // The context dies with the handler: only while it runs.
    static_cast<grpc::ServerContext*>(context_)->TryCancel();
  }
}

template <class Req, class Resp>
::testing::AssertionResult FakeXdsStream<Req, Resp>::waitForEnd(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [this] { return done_; })) {
    return ::testing::AssertionFailure() << method << " did not end within the deadline";
  }
  return ::testing::AssertionSuccess();
}

template <class Req, class Resp>
void FakeXdsStream<Req, Resp>::serve() {
  auto* stream = static_cast<grpc::ServerReaderWriter<Resp, Req>*>(stream_);
  Req request;
  while (stream->Read(&request)) {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(request);
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = true;
  cv_.notify_all();
}

template class FakeXdsStream<envoy::service::discovery::v3::DiscoveryRequest,
                             envoy::service::discovery::v3::DiscoveryResponse>;
template class FakeXdsStream<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                             envoy::service::discovery::v3::DeltaDiscoveryResponse>;

class FakeXdsServer::Impl
    : public envoy::service::discovery::v3::AggregatedDiscoveryService::Service,
      public envoy::service::listener::v3::ListenerDiscoveryService::Service {
 public:
  Impl() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(
        static_cast<envoy::service::discovery::v3::AggregatedDiscoveryService::Service*>(this));
    builder.RegisterService(
        static_cast<envoy::service::listener::v3::ListenerDiscoveryService::Service*>(this));
    server_ = builder.BuildAndStart();
  }

  ~Impl() override { shutdown(); }

  void shutdown() {
    if (server_ == nullptr) {
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
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

  template <class S, class Rw>
  grpc::Status serve(std::vector<std::shared_ptr<S>>& streams, const char* method,
                     grpc::ServerContext* context, Rw* rw) {
    auto stream = std::make_shared<S>(method, context, rw);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      streams.push_back(stream);
      cv_.notify_all();
    }
    stream->serve();
    return grpc::Status::OK;
  }

  template <class S>
  std::shared_ptr<S> waitFor(std::vector<std::shared_ptr<S>>& streams, size_t n,
                             std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return streams.size() > n; })) {
      ADD_FAILURE() << "stream " << n << " did not open within the deadline";
      return nullptr;
    }
    return streams[n];
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<SotwStream>> sotw_streams_;
  std::vector<std::shared_ptr<DeltaStream>> delta_streams_;
};

FakeXdsServer::FakeXdsServer() : impl_(std::make_unique<Impl>()) {}
FakeXdsServer::~FakeXdsServer() = default;
int FakeXdsServer::port() const {
  return impl_->port_;
}
void FakeXdsServer::shutdown() {
  impl_->shutdown();
}

std::shared_ptr<SotwStream> FakeXdsServer::waitForSotwStream(size_t n,
                                                             std::chrono::milliseconds timeout) {
  return impl_->waitFor(impl_->sotw_streams_, n, timeout);
}
std::shared_ptr<DeltaStream> FakeXdsServer::waitForDeltaStream(size_t n,
                                                               std::chrono::milliseconds timeout) {
  return impl_->waitFor(impl_->delta_streams_, n, timeout);
}
size_t FakeXdsServer::sotwStreamCount() {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  return impl_->sotw_streams_.size();
}
size_t FakeXdsServer::deltaStreamCount() {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  return impl_->delta_streams_.size();
}

}  // namespace Proxy::Test
