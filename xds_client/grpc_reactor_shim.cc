#include "xds_client/grpc_reactor_shim.h"

#include <functional>
#include <utility>

#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"

// This file is built without TSAN instrumentation (see the header); TSAN builds pass
// PROXY_TSAN_ANNOTATE to keep its annotations (proxy/common/tsan.h).
#include "proxy/common/tsan.h"

namespace Proxy::Xds {

class ReactorShim : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ReactorShim(std::shared_ptr<grpc::Channel> channel, std::string method,
              std::unique_ptr<StreamReactions> reactions)
      : channel_(std::move(channel)), method_(std::move(method)), reactions_(std::move(reactions)) {
    grpc::GenericStub stub(channel_);
    stub.PrepareBidiStreamingCall(&context_, method_, grpc::StubOptions(), this);
    AddHold();
  }

  void start() {
    StartRead(&read_buffer_);
    StartCall();
  }

  void write(std::string bytes) {
    // The slice takes the string over instead of copying it (an EDS request can be large).
    // gRPC frees it on one of its threads when it is done with it.
    auto* owned = new std::string(std::move(bytes));
    PROXY_TSAN_HAPPENS_BEFORE(owned);
    grpc::Slice slice(
        owned->data(), owned->size(),
        [](void* p) {
          PROXY_TSAN_HAPPENS_AFTER(p);
          delete static_cast<std::string*>(p);
        },
        owned);
    write_buffer_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&write_buffer_);
  }

  void startRead() { StartRead(&read_buffer_); }
  void cancel() { context_.TryCancel(); }
  void releaseHold() { RemoveHold(); }

  // grpc::ClientBidiReactor
  void OnReadInitialMetadataDone(bool ok) override { reactions_->onInitialMetadata(ok); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      reactions_->onRead(false, {});
      return;
    }
    grpc::Slice slice;
    bool read_next;
    const bool dumped = read_buffer_.DumpToSingleSlice(&slice).ok();
    // The message's slices go now, not at the next read: that read starts only after the main
    // thread applied the response, and a large response (10,000 assignments) would keep
    // megabytes alive meanwhile (issue 14).
    read_buffer_.Clear();
    if (dumped) {
      read_next = reactions_->onRead(
          true, std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()));
    } else {
      read_next = reactions_->onRead(true, {});
    }
    if (read_next) {
      startRead();
    }
  }

  void OnWriteDone(bool ok) override { reactions_->onWriteDone(ok); }

  void OnDone(const grpc::Status& status) override {
    std::function<void()> after =
        reactions_->onDone(static_cast<int>(status.error_code()), status.error_message());
    delete this;
    if (after) {
      after();
    }
  }

 private:
  const std::shared_ptr<grpc::Channel> channel_;
  // RpcMethod keeps a pointer to the method name: it lives as long as the call.
  const std::string method_;
  std::unique_ptr<StreamReactions> reactions_;
  grpc::ClientContext context_;
  grpc::ByteBuffer read_buffer_;   // reads are sequential
  grpc::ByteBuffer write_buffer_;  // one write at a time
};

ReactorShim* createReactorShim(std::shared_ptr<grpc::Channel> channel, std::string method,
                               std::unique_ptr<StreamReactions> reactions) {
  return new ReactorShim(std::move(channel), std::move(method), std::move(reactions));
}
void reactorShimStart(ReactorShim* shim) {
  shim->start();
}
void reactorShimStartRead(ReactorShim* shim) {
  shim->startRead();
}
void reactorShimWrite(ReactorShim* shim, std::string bytes) {
  shim->write(std::move(bytes));
}
void reactorShimCancel(ReactorShim* shim) {
  shim->cancel();
}
void reactorShimReleaseHold(ReactorShim* shim) {
  shim->releaseHold();
}

}  // namespace Proxy::Xds
