#pragma once

// A gRPC client stream for tests and the load client: any method of any service, messages as
// bytes, on gRPC's callback API (no thread per stream, so thousands of streams are cheap).
//
// Received messages are queued for next(), or handed to an on-message callback on gRPC's
// thread (the load client ACKs from there). Thread-safe.
//
// Built without ThreadSanitizer instrumentation in TSAN builds, like Debian's gRPC that it
// drives (see control_plane_stub/grpc_server_shim.h for why).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace Proxy::ControlPlane::TestUtil {

// A channel (one HTTP/2 connection) to `target` ("127.0.0.1:18000"), plain text.
class XdsTestChannel {
 public:
  explicit XdsTestChannel(const std::string& target);
  ~XdsTestChannel();
  // Opaque: a std::shared_ptr<grpc::Channel>.
  struct Impl;
  Impl& impl() const { return *impl_; }
  // Blocks until the channel is connected; false after `timeout`.
  bool waitForConnected(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<Impl> impl_;
};

// How a stream ended: a grpc::StatusCode and message.
struct StreamEnd {
  int code = 0;
  std::string message;
};

class XdsTestStream {
 public:
  using OnMessage = std::function<void(XdsTestStream& stream, const std::string& bytes)>;

  // Starts the call `method` ("/package.Service/Method") on `channel`. With `on_message`, every
  // message goes to it (on a gRPC thread) instead of next()'s queue.
  XdsTestStream(const XdsTestChannel& channel, const std::string& method,
                OnMessage on_message = nullptr);
  // Cancels the call if it is still open and waits for gRPC to be done with it.
  ~XdsTestStream();
  XdsTestStream(const XdsTestStream&) = delete;
  XdsTestStream& operator=(const XdsTestStream&) = delete;

  // Queues a message; writes go out one at a time, in order. Ignored once the stream ended.
  void send(std::string bytes);
  // The next received message, waiting up to `timeout`; nullopt on timeout or when the stream
  // ended with nothing left to read.
  std::optional<std::string> next(std::chrono::milliseconds timeout);
  // Messages received so far (also those given to an on-message callback).
  size_t receivedCount() const;
  // Waits for the server to end the stream; nullopt on timeout.
  std::optional<StreamEnd> waitForEnd(std::chrono::milliseconds timeout);
  void cancel();

 private:
  class Reactor;
  struct State;
  std::shared_ptr<State> state_;
  Reactor* reactor_;
};

}  // namespace Proxy::ControlPlane::TestUtil
