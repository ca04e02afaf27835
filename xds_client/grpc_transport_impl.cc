#include "xds_client/grpc_transport_impl.h"

#include <atomic>
#include <deque>
#include <functional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "proxy/common/assert.h"
#include "spdlog/spdlog.h"
#include "xds_client/config.h"

namespace Proxy::Xds {
namespace {

absl::Status toAbslStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// What the reactor (gRPC threads) and the transport (main thread) share. Outlives both.
class StreamShared {
 public:
  explicit StreamShared(Event::Dispatcher& dispatcher) : dispatcher_(&dispatcher) {}

  // Any thread: run `event` on the main thread if the transport still exists by then.
  void post(std::function<void(XdsTransport::EventHandler&)> event) {
    absl::MutexLock lock(&mutex_);
    if (dispatcher_ == nullptr) {
      return;
    }
    // Posting under our lock keeps the dispatcher alive while we use it: the transport clears
    // the pointer under the same lock before its owner can destroy the dispatcher.
    dispatcher_->post([self = self_.lock(), event = std::move(event)] {
      if (self != nullptr && self->handler != nullptr) {
        event(*self->handler);
      }
    });
  }

  // Any thread: same, for work on the transport's own state (not the handler's).
  void postInternal(std::function<void(StreamShared&)> work) {
    absl::MutexLock lock(&mutex_);
    if (dispatcher_ == nullptr) {
      return;
    }
    dispatcher_->post([self = self_.lock(), work = std::move(work)] {
      if (self != nullptr && self->handler != nullptr) {
        work(*self);
      }
    });
  }

  // Main thread: no posts after this returns.
  void detach() {
    absl::MutexLock lock(&mutex_);
    dispatcher_ = nullptr;
  }

  // gRPC thread, from OnDone, after the reactor deleted itself.
  void markDone() {
    absl::MutexLock lock(&mutex_);
    done_ = true;
  }

  bool waitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    return mutex_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }

  void setSelf(const std::shared_ptr<StreamShared>& self) { self_ = self; }

  // Main thread only. Cleared by the transport's destructor.
  XdsTransport::EventHandler* handler = nullptr;
  // Main thread only. Set once the main side released its hold on the reactor (after which
  // the reactor may finish and delete itself at any moment, so it must not be touched).
  bool hold_released = false;

 private:
  std::weak_ptr<StreamShared> self_;
  absl::Mutex mutex_;
  Event::Dispatcher* dispatcher_ ABSL_GUARDED_BY(mutex_);
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
};

// One stream. Deletes itself in OnDone. The main side holds one gRPC "hold" on it, so OnDone
// (and the deletion) cannot happen while the main thread may still call StartWrite; the hold
// goes when the transport is destroyed or, after the read side failed, on the main thread.
class StreamReactor : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(std::shared_ptr<grpc::Channel> channel, std::string method, bool delta,
                std::shared_ptr<StreamShared> shared)
      : channel_(std::move(channel)),
        method_(std::move(method)),
        delta_(delta),
        shared_(std::move(shared)) {}

  // Main thread.
  void start() {
    grpc::GenericStub stub(channel_);
    stub.PrepareBidiStreamingCall(&context_, method_, grpc::StubOptions(), this);
    AddHold();
    StartRead(&read_buffer_);
    StartCall();
  }

  // Main thread, while the hold is held.
  void send(std::string bytes) {
    // The slice takes the string over instead of copying it (an EDS request can be large).
    auto* owned = new std::string(std::move(bytes));
    grpc::Slice slice(
        owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); },
        owned);
    const grpc::ByteBuffer* to_start = nullptr;
    {
      absl::MutexLock lock(&mutex_);
      if (write_failed_) {
        return;
      }
      write_queue_.emplace_back(&slice, 1);
      if (!writing_) {
        writing_ = true;
        to_start = &write_queue_.front();
      }
    }
    // Outside the lock: a reaction may run inline from StartWrite.
    if (to_start != nullptr) {
      StartWrite(to_start);
    }
  }

  // Main thread, while the hold is held.
  void cancel() { context_.TryCancel(); }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) {
      reportConnected();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The server ended the stream (or it broke). The status comes with OnDone, which needs
      // the main side's hold released: ask the main thread to do it.
      shared_->postInternal([this](StreamShared& shared) {
        if (!shared.hold_released) {
          shared.hold_released = true;
          RemoveHold();
        }
      });
      return;
    }
    reportConnected();
    DecodedResponsePtr response = decode();
    shared_->post([response = std::shared_ptr<DecodedResponse>(std::move(response))](
                      XdsTransport::EventHandler& handler) mutable {
      handler.onResponse(DecodedResponsePtr(new DecodedResponse(std::move(*response))));
    });
    StartRead(&read_buffer_);
  }

  void OnWriteDone(bool ok) override {
    if (ok) {
      reportConnected();
    }
    const grpc::ByteBuffer* next = nullptr;
    {
      absl::MutexLock lock(&mutex_);
      write_queue_.pop_front();
      if (!ok) {
        // The stream is broken; the read side reports it. Drop what is queued.
        write_failed_ = true;
        write_queue_.clear();
        writing_ = false;
      } else if (!write_queue_.empty()) {
        next = &write_queue_.front();
      } else {
        writing_ = false;
      }
    }
    if (next != nullptr) {
      StartWrite(next);
    }
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<StreamShared> shared = shared_;
    shared->post([status = toAbslStatus(status)](XdsTransport::EventHandler& handler) {
      handler.onStreamClosed(status);
    });
    delete this;
    shared->markDone();
  }

 private:
  void reportConnected() {
    if (!connected_.exchange(true)) {
      shared_->post([](XdsTransport::EventHandler& handler) { handler.onConnected(); });
    }
  }

  // gRPC thread: the decode happens here so the main thread only does bookkeeping.
  DecodedResponsePtr decode() {
    grpc::Slice slice;
    if (!read_buffer_.DumpToSingleSlice(&slice).ok()) {
      return decodeResponse("", delta_);
    }
    return decodeResponse(
        absl::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()), delta_);
  }

  const std::shared_ptr<grpc::Channel> channel_;
  // RpcMethod keeps a pointer to the method name: it lives as long as the call.
  const std::string method_;
  const bool delta_;
  const std::shared_ptr<StreamShared> shared_;
  grpc::ClientContext context_;
  grpc::ByteBuffer read_buffer_;  // reactions only (reads are sequential)
  std::atomic<bool> connected_{false};

  absl::Mutex mutex_;
  // The front is being written; the rest wait. A deque keeps the front's address stable.
  std::deque<grpc::ByteBuffer> write_queue_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mutex_) = false;
};

class GrpcXdsTransport : public XdsTransport {
 public:
  GrpcXdsTransport(Event::Dispatcher& main, std::shared_ptr<grpc::Channel> channel,
                   absl::string_view method, bool delta, EventHandler& handler,
                   std::chrono::milliseconds shutdown_wait)
      : shared_(std::make_shared<StreamShared>(main)), shutdown_wait_(shutdown_wait) {
    shared_->setSelf(shared_);
    shared_->handler = &handler;
    reactor_ = new StreamReactor(std::move(channel), std::string(method), delta, shared_);
    reactor_->start();
  }

  ~GrpcXdsTransport() override {
    shared_->handler = nullptr;
    shared_->detach();
    if (!shared_->hold_released) {
      shared_->hold_released = true;
      reactor_->cancel();
      reactor_->RemoveHold();
    }
    // The reactor finishes on a gRPC thread; wait so that nothing of ours is used after the
    // client is gone (the reactor holds only shared state, but the wait also makes shutdown
    // ordering deterministic for tests and for grpc's own teardown).
    if (!shared_->waitDone(absl::FromChrono(shutdown_wait_))) {
      spdlog::error("xds: a gRPC stream did not finish within {} ms of being cancelled",
                    shutdown_wait_.count());
    }
  }

  void sendMessage(std::string serialized_request) override {
    if (shared_->hold_released) {
      return;  // the stream is ending; onStreamClosed follows
    }
    reactor_->send(std::move(serialized_request));
  }

 private:
  const std::shared_ptr<StreamShared> shared_;
  const std::chrono::milliseconds shutdown_wait_;
  // Valid while shared_->hold_released is false.
  StreamReactor* reactor_ = nullptr;
};

}  // namespace

GrpcXdsTransportFactory::GrpcXdsTransportFactory(Event::Dispatcher& main,
                                                 GrpcTransportOptions options)
    : main_(main), options_(options) {}

GrpcXdsTransportFactory::~GrpcXdsTransportFactory() = default;

XdsTransportPtr GrpcXdsTransportFactory::createTransport(const std::string& target,
                                                         absl::string_view method, bool delta,
                                                         XdsTransport::EventHandler& handler) {
  ASSERT(main_.isThreadSafe());
  auto& channel = channels_[target];
  if (channel == nullptr) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(options_.reconnect_backoff_min.count()));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                static_cast<int>(options_.reconnect_backoff_min.count()));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                static_cast<int>(options_.reconnect_backoff_max.count()));
    args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING,
                   absl::StrCat(kUserAgentName, "/", kVersionMajor, ".", kVersionMinor, ".",
                                kVersionPatch));
    channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }
  return std::make_unique<GrpcXdsTransport>(main_, channel, method, delta, handler,
                                            options_.shutdown_wait);
}

}  // namespace Proxy::Xds
