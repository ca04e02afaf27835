#pragma once

// A real gRPC C++ server (libgrpc++, synchronous API) on 127.0.0.1:0 implementing
// proxy.test.TestService (test_service.proto): the upstream of the gRPC integration tests. It
// records what the tests ask about (calls that ended cancelled, the metadata it was sent), and
// the tests wait for those on a condition variable with a deadline.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "grpcpp/grpcpp.h"
#include "test/integration/grpc/test_service.grpc.pb.h"

namespace Proxy::Integration {

class GrpcTestServer final : public proxy::test::TestService::Service {
 public:
  // Starts listening; port() is the bound port.
  static std::unique_ptr<GrpcTestServer> start();
  ~GrpcTestServer() override;

  uint32_t port() const { return port_; }
  // Waits until `count` calls have ended cancelled by the client (or reset by the proxy).
  bool waitForCancelled(uint32_t count, std::chrono::milliseconds timeout);
  uint32_t cancelled() const;
  // The grpc-timeout of the last call as the server's deadline, in ms from its start (0: none).
  int64_t lastDeadlineMs() const;

  grpc::Status Unary(grpc::ServerContext* context, const proxy::test::EchoRequest* request,
                     proxy::test::EchoReply* reply) override;
  grpc::Status ServerStream(grpc::ServerContext* context, const proxy::test::EchoRequest* request,
                            grpc::ServerWriter<proxy::test::EchoReply>* writer) override;
  grpc::Status ClientStream(grpc::ServerContext* context,
                            grpc::ServerReader<proxy::test::EchoRequest>* reader,
                            proxy::test::EchoReply* reply) override;
  grpc::Status Bidi(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<proxy::test::EchoReply, proxy::test::EchoRequest>* stream) override;

 private:
  GrpcTestServer() = default;
  // Records the call's deadline; ends it with the request's status and trailing metadata.
  void onCallStart(grpc::ServerContext* context);
  grpc::Status finish(grpc::ServerContext* context, const proxy::test::EchoRequest& last);
  // The call ended without the client's half-close or with its writes failing: cancelled?
  void noteIfCancelled(grpc::ServerContext* context);

  std::unique_ptr<grpc::Server> server_;
  uint32_t port_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  uint32_t cancelled_ = 0;
  int64_t last_deadline_ms_ = 0;
};

}  // namespace Proxy::Integration
