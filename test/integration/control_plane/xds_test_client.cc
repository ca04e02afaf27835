#include "test/integration/control_plane/xds_test_client.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"

namespace Proxy::ControlPlane::TestUtil {

struct XdsTestChannel::Impl {
  std::shared_ptr<grpc::Channel> channel;
};

XdsTestChannel::XdsTestChannel(const std::string& target) : impl_(std::make_unique<Impl>()) {
  grpc::ChannelArguments args;
  // Each channel its own connection: gRPC otherwise shares one subchannel between channels to
  // the same target, and the load client wants its streams spread over several connections.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  impl_->channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

XdsTestChannel::~XdsTestChannel() = default;

bool XdsTestChannel::waitForConnected(std::chrono::milliseconds timeout) {
  return impl_->channel->WaitForConnected(std::chrono::system_clock::now() + timeout);
}

// Shared by the stream (its owner's threads) and the reactor (gRPC's threads).
struct XdsTestStream::State {
  std::mutex mutex;
  std::condition_variable cv;
  OnMessage on_message;
  std::deque<std::string> messages;
  size_t received = 0;
  bool read_ended = false;
  bool done = false;
  StreamEnd end;
  // The owner's hold on the reactor is gone: the reactor may finish and delete itself.
  bool hold_released = false;
  // StartWrite calls made outside the lock and not yet returned (the hold waits for them).
  int starting = 0;
  std::deque<grpc::ByteBuffer> writes;  // the front is being written
  bool write_failed = false;
};

class XdsTestStream::Reactor : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Reactor(XdsTestStream& owner, const XdsTestChannel& channel, const std::string& method,
          std::shared_ptr<State> state)
      : owner_(owner), method_(method), state_(std::move(state)) {
    grpc::GenericStub stub(channel.impl().channel);
    stub.PrepareBidiStreamingCall(&context_, method_, grpc::StubOptions(), this);
    // Keeps OnDone (and our deletion) from happening while the owner may still write.
    AddHold();
    StartRead(&read_buffer_);
    StartCall();
  }

  void cancelCall() { context_.TryCancel(); }
  void startWrite(const grpc::ByteBuffer* buffer) { StartWrite(buffer); }
  void removeHold() { RemoveHold(); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->read_ended = true;
      state_->cv.notify_all();
      return;
    }
    std::string bytes;
    grpc::Slice slice;
    if (read_buffer_.DumpToSingleSlice(&slice).ok()) {
      bytes.assign(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    OnMessage on_message;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->received++;
      on_message = state_->on_message;
      if (!on_message) {
        state_->messages.push_back(std::move(bytes));
        state_->cv.notify_all();
      }
    }
    if (on_message) {
      on_message(owner_, bytes);
    }
    StartRead(&read_buffer_);
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->writes.pop_front();
      if (!ok) {
        state_->write_failed = true;
        state_->writes.clear();
      } else if (!state_->writes.empty()) {
        next = &state_->writes.front();
      }
    }
    // Inside a reaction the call cannot finish, so the next write needs no hold.
    if (next != nullptr) {
      StartWrite(next);
    }
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<State> state = state_;
    delete this;
    std::lock_guard<std::mutex> lock(state->mutex);
    state->done = true;
    state->end = StreamEnd{static_cast<int>(status.error_code()), status.error_message()};
    state->cv.notify_all();
  }

 private:
  XdsTestStream& owner_;
  const std::string method_;  // gRPC keeps a pointer to the method name for the call
  const std::shared_ptr<State> state_;
  grpc::ClientContext context_;
  grpc::ByteBuffer read_buffer_;
};

XdsTestStream::XdsTestStream(const XdsTestChannel& channel, const std::string& method,
                             OnMessage on_message)
    : state_(std::make_shared<State>()) {
  state_->on_message = std::move(on_message);
  reactor_ = new Reactor(*this, channel, method, state_);
}

namespace {

// Gives up the owner's hold once no write is being started; with `cancel`, cancels the call
// first. After this the reactor may be gone at any moment.
template <class ReactorT>
void releaseHold(std::mutex& mutex, std::condition_variable& cv, bool& hold_released, int& starting,
                 ReactorT* reactor, bool cancel) {
  {
    std::unique_lock<std::mutex> lock(mutex);
    if (hold_released) {
      return;
    }
    hold_released = true;
    cv.wait(lock, [&starting] { return starting == 0; });
  }
  if (cancel) {
    reactor->cancelCall();
  }
  reactor->removeHold();
}

}  // namespace

XdsTestStream::~XdsTestStream() {
  releaseHold(state_->mutex, state_->cv, state_->hold_released, state_->starting, reactor_,
              /*cancel=*/true);
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->cv.wait_for(lock, std::chrono::seconds(30), [this] { return state_->done; });
}

void XdsTestStream::send(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  const grpc::ByteBuffer* to_start = nullptr;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->hold_released || state_->write_failed || state_->done) {
      return;
    }
    state_->writes.emplace_back(&slice, 1);
    if (state_->writes.size() == 1) {
      to_start = &state_->writes.front();
      state_->starting++;
    }
  }
  if (to_start != nullptr) {
    // Outside the lock: gRPC may run OnWriteDone on this thread from inside StartWrite.
    reactor_->startWrite(to_start);
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->starting--;
    state_->cv.notify_all();
  }
}

std::optional<std::string> XdsTestStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->cv.wait_for(lock, timeout,
                      [this] { return !state_->messages.empty() || state_->read_ended; });
  if (state_->messages.empty()) {
    return std::nullopt;
  }
  std::string message = std::move(state_->messages.front());
  state_->messages.pop_front();
  return message;
}

size_t XdsTestStream::receivedCount() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->received;
}

std::optional<StreamEnd> XdsTestStream::waitForEnd(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    std::unique_lock<std::mutex> lock(state_->mutex);
    if (!state_->cv.wait_until(lock, deadline, [this] { return state_->read_ended; })) {
      return std::nullopt;
    }
  }
  releaseHold(state_->mutex, state_->cv, state_->hold_released, state_->starting, reactor_,
              /*cancel=*/false);
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (!state_->cv.wait_until(lock, deadline, [this] { return state_->done; })) {
    return std::nullopt;
  }
  return state_->end;
}

void XdsTestStream::cancel() {
  releaseHold(state_->mutex, state_->cv, state_->hold_released, state_->starting, reactor_,
              /*cancel=*/true);
}

}  // namespace Proxy::ControlPlane::TestUtil
