#include "control_plane_stub/grpc_server_shim.h"

#include <chrono>
#include <utility>

#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

// This file is built without TSAN instrumentation (see the header); TSAN builds pass
// PROXY_TSAN_ANNOTATE to keep its annotations (proxy/common/tsan.h).
#include "proxy/common/tsan.h"

namespace Proxy::ControlPlane {

class ServerStreamShim : public grpc::ServerGenericBidiReactor {
 public:
  void bind(ServerStreamReactions* reactions) { reactions_ = reactions; }

  void startRead() { StartRead(&read_buffer_); }

  void write(std::vector<std::shared_ptr<const std::string>> pieces) {
    std::vector<grpc::Slice> slices;
    slices.reserve(pieces.size());
    for (auto& piece : pieces) {
      auto* holder = new std::shared_ptr<const std::string>(std::move(piece));
      PROXY_TSAN_HAPPENS_BEFORE(holder);
      slices.emplace_back(
          const_cast<char*>((*holder)->data()), (*holder)->size(),
          [](void* p) {
            PROXY_TSAN_HAPPENS_AFTER(p);
            delete static_cast<std::shared_ptr<const std::string>*>(p);
          },
          holder);
    }
    write_buffer_ = grpc::ByteBuffer(slices.data(), slices.size());
    StartWrite(&write_buffer_);
  }

  void finish(int code, const std::string& message) {
    Finish(grpc::Status(static_cast<grpc::StatusCode>(code), message));
  }

  // grpc::ServerGenericBidiReactor
  void OnReadDone(bool ok) override {
    if (!ok) {
      reactions_->onRead(false, {});
      return;
    }
    grpc::Slice slice;
    if (read_buffer_.DumpToSingleSlice(&slice).ok()) {
      reactions_->onRead(
          true, std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()));
    } else {
      reactions_->onRead(true, {});
    }
  }
  void OnWriteDone(bool ok) override { reactions_->onWriteDone(ok); }
  void OnCancel() override { reactions_->onCancel(); }
  void OnDone() override {
    reactions_->onDone();
    delete this;
  }

 private:
  ServerStreamReactions* reactions_ = nullptr;
  grpc::ByteBuffer read_buffer_;   // reads are sequential
  grpc::ByteBuffer write_buffer_;  // one write at a time
};

namespace {

// A method this server does not serve.
class UnimplementedReactor : public grpc::ServerGenericBidiReactor {
 public:
  explicit UnimplementedReactor(const std::string& method) {
    Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "method '" + method + "' is not served"));
  }
  void OnDone() override { delete this; }
};

}  // namespace

class GrpcServerShim::Impl : public grpc::CallbackGenericService {
 public:
  explicit Impl(ReactionsFactory factory) : factory_(std::move(factory)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    auto* shim = new ServerStreamShim();
    ServerStreamReactions* reactions = factory_(context->method(), context->peer(), shim);
    if (reactions == nullptr) {
      delete shim;
      return new UnimplementedReactor(context->method());
    }
    shim->bind(reactions);
    return shim;
  }

  ReactionsFactory factory_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

std::unique_ptr<GrpcServerShim> GrpcServerShim::start(const std::string& address,
                                                      ReactionsFactory factory, int* port,
                                                      const std::optional<ServerTls>& tls) {
  auto impl = std::make_unique<Impl>(std::move(factory));
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (tls.has_value()) {
    grpc::SslServerCredentialsOptions options(
        tls->client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                               : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = tls->client_ca;
    options.pem_key_cert_pairs.push_back({tls->private_key, tls->cert_chain});
    credentials = grpc::SslServerCredentials(options);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, port);
  builder.RegisterCallbackGenericService(impl.get());
  // Clients that keep idle streams alive with pings (gRPC's xDS client can) must not be cut
  // off with "too_many_pings" by gRPC's strict server defaults.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  impl->server_ = builder.BuildAndStart();
  if (impl->server_ == nullptr || *port == 0) {
    return nullptr;
  }
  return std::unique_ptr<GrpcServerShim>(new GrpcServerShim(std::move(impl)));
}

GrpcServerShim::GrpcServerShim(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServerShim::~GrpcServerShim() {
  shutdown();
  // The server goes before the service it calls.
  impl_->server_.reset();
}

void GrpcServerShim::shutdown() {
  if (impl_->shut_down_) {
    return;
  }
  impl_->shut_down_ = true;
  // A deadline of now cancels every open call at once; each then finishes on a gRPC thread.
  impl_->server_->Shutdown(std::chrono::system_clock::now());
}

void shimStartRead(ServerStreamShim* shim) {
  shim->startRead();
}

void shimWrite(ServerStreamShim* shim, std::vector<std::shared_ptr<const std::string>> pieces) {
  shim->write(std::move(pieces));
}

void shimFinish(ServerStreamShim* shim, int code, const std::string& message) {
  shim->finish(code, message);
}

}  // namespace Proxy::ControlPlane
