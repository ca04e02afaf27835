#pragma once

// Internal to grpc_transport_impl.cc: the only code that touches gRPC's callback API types.
// It forwards gRPC's reactions to StreamReactions and nothing else, so that the logic stays in
// grpc_transport_impl.cc. Built without ThreadSanitizer instrumentation in TSAN builds:
// Debian's gRPC is uninstrumented, and gRPC's header-only templates instantiated here would
// otherwise report races on state that gRPC orders through synchronization TSAN cannot see.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace grpc {
class Channel;
}

namespace Proxy::Xds {

// Called on gRPC's threads. Reactions may run concurrently with each other except onDone,
// which is last.
class StreamReactions {
 public:
  virtual ~StreamReactions() = default;
  virtual void onInitialMetadata(bool ok) = 0;
  // `bytes` is valid during the call only. Returns whether the next read starts now; if not,
  // the owner starts it later with reactorShimStartRead().
  virtual bool onRead(bool ok, std::string_view bytes) = 0;
  virtual void onWriteDone(bool ok) = 0;
  // The call is over; `code` is a grpc::StatusCode. The shim deletes itself (and the
  // reactions) right after, then calls the function returned.
  virtual std::function<void()> onDone(int code, const std::string& message) = 0;
};

// One bidi stream. Owns itself and its StreamReactions until onDone. Holds one gRPC "hold"
// for its owner, so it cannot finish while the owner may still write; the owner gives it up
// with reactorShimReleaseHold(). Free functions rather than virtual methods: a call does not
// read the shim's memory from instrumented code (TSAN would see that read race with the
// shim's deletion, which gRPC orders after the hold is released).
class ReactorShim;

ReactorShim* createReactorShim(std::shared_ptr<grpc::Channel> channel, std::string method,
                               std::unique_ptr<StreamReactions> reactions);
// Starts the call and its first read.
void reactorShimStart(ReactorShim* shim);
// The next read, after an onRead() that returned false; while the owner holds its hold.
void reactorShimStartRead(ReactorShim* shim);
// One write at a time: the next only after onWriteDone. Takes the bytes over.
void reactorShimWrite(ReactorShim* shim, std::string bytes);
void reactorShimCancel(ReactorShim* shim);
// Once. The shim may finish and delete itself at any moment after.
void reactorShimReleaseHold(ReactorShim* shim);

}  // namespace Proxy::Xds
