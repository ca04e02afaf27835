#include "test/integration/grpc/grpc_test_server.h"

#include <utility>

namespace Proxy::Integration {

using proxy::test::EchoReply;
using proxy::test::EchoRequest;

std::unique_ptr<GrpcTestServer> GrpcTestServer::start() {
  std::unique_ptr<GrpcTestServer> server(new GrpcTestServer());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(server.get());
  // Large messages both ways (the tests send 1.5 MiB ones).
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.SetMaxSendMessageSize(16 << 20);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port <= 0) {
    return nullptr;
  }
  server->port_ = static_cast<uint32_t>(port);
  return server;
}

GrpcTestServer::~GrpcTestServer() {
  if (server_ != nullptr) {
    // Calls still running are cancelled at once rather than waited for.
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

bool GrpcTestServer::waitForCancelled(uint32_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return cancelled_ >= count; });
}

uint32_t GrpcTestServer::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

int64_t GrpcTestServer::lastDeadlineMs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_deadline_ms_;
}

void GrpcTestServer::onCallStart(grpc::ServerContext* context) {
  const auto deadline = context->deadline();
  int64_t ms = 0;
  if (deadline != std::chrono::system_clock::time_point::max()) {
    ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                               std::chrono::system_clock::now())
             .count();
    ms = ms <= 0 ? 1 : ms;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  last_deadline_ms_ = ms;
}

grpc::Status GrpcTestServer::finish(grpc::ServerContext* context, const EchoRequest& last) {
  if (!last.trailer_value().empty()) {
    context->AddTrailingMetadata("x-test-trailer", last.trailer_value());
  }
  return grpc::Status(static_cast<grpc::StatusCode>(last.status_code()), last.status_message());
}

void GrpcTestServer::noteIfCancelled(grpc::ServerContext* context) {
  if (!context->IsCancelled()) {
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  cancelled_++;
  changed_.notify_all();
}

grpc::Status GrpcTestServer::Unary(grpc::ServerContext* context, const EchoRequest* request,
                                   EchoReply* reply) {
  onCallStart(context);
  reply->set_payload(request->payload());
  reply->set_received_bytes(request->payload().size());
  reply->set_received_messages(1);
  reply->set_deadline_ms(lastDeadlineMs());
  return finish(context, *request);
}

grpc::Status GrpcTestServer::ServerStream(grpc::ServerContext* context, const EchoRequest* request,
                                          grpc::ServerWriter<EchoReply>* writer) {
  onCallStart(context);
  EchoReply reply;
  reply.set_payload(std::string(request->reply_size(), 'r'));
  // reply_count 0: until a write fails (flow control paces the loop; the client's cancel, or
  // the proxy's reset, ends it).
  for (uint32_t i = 0; request->reply_count() == 0 || i < request->reply_count(); i++) {
    reply.set_received_messages(i);
    if (!writer->Write(reply)) {
      noteIfCancelled(context);
      return grpc::Status::CANCELLED;
    }
  }
  return finish(context, *request);
}

grpc::Status GrpcTestServer::ClientStream(grpc::ServerContext* context,
                                          grpc::ServerReader<EchoRequest>* reader,
                                          EchoReply* reply) {
  onCallStart(context);
  EchoRequest request;
  EchoRequest last;
  uint64_t bytes = 0;
  uint32_t messages = 0;
  while (reader->Read(&request)) {
    bytes += request.payload().size();
    messages++;
    last = std::move(request);
  }
  if (context->IsCancelled()) {
    noteIfCancelled(context);
    return grpc::Status::CANCELLED;
  }
  reply->set_received_bytes(bytes);
  reply->set_received_messages(messages);
  reply->set_deadline_ms(lastDeadlineMs());
  return finish(context, last);
}

grpc::Status GrpcTestServer::Bidi(grpc::ServerContext* context,
                                  grpc::ServerReaderWriter<EchoReply, EchoRequest>* stream) {
  onCallStart(context);
  EchoRequest request;
  EchoRequest last;
  EchoReply reply;
  uint64_t bytes = 0;
  uint32_t messages = 0;
  while (stream->Read(&request)) {
    bytes += request.payload().size();
    messages++;
    reply.set_payload(request.payload());
    reply.set_received_bytes(bytes);
    reply.set_received_messages(messages);
    if (!stream->Write(reply)) {
      break;
    }
    last = std::move(request);
  }
  if (context->IsCancelled()) {
    noteIfCancelled(context);
    return grpc::Status::CANCELLED;
  }
  return finish(context, last);
}

}  // namespace Proxy::Integration
