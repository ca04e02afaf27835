#pragma once

// XdsServer on gRPC's callback API with a generic service (grpc_server_shim.h): requests
// arrive as bytes, so a request that does not decode ends its stream with INVALID_ARGUMENT
// instead of being dropped inside gRPC, responses leave as pre-serialized pieces shared between
// streams (wire.h), and one class serves every method.
//
// One XdsStream per RPC. Its lifetime: created when the call arrives, it holds a shared_ptr to
// itself until onDone(); the cache holds a weak_ptr, and whoever is notifying it (a snapshot
// change on the main thread, a status query) holds a shared_ptr for the duration of the call.
// So the object outlives every call into it, and after onDone() it answers nothing.
//
// Writes: one outstanding Write per stream. The response is computed when the stream can
// write, from the snapshot current at that moment, so a client that does not read holds at
// most one response in flight and nothing queues behind it: a newer snapshot replaces the
// response an older one would have sent.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "control_plane_stub/delta_stream.h"
#include "control_plane_stub/grpc_server_shim.h"
#include "control_plane_stub/sotw_stream.h"
#include "control_plane_stub/xds_server.h"

namespace Proxy::ControlPlane {

class XdsServerImpl;

// Which protocol and type a gRPC method serves.
struct XdsMethod {
  std::string_view name;
  bool delta = false;
  std::optional<ResourceKind> only;  // per-type services
};

// The method `name` ("/package.Service/Method"), or null when it is not served.
const XdsMethod* findXdsMethod(std::string_view name);

class XdsStream : public ServerStreamReactions, public StreamWatcher {
 public:
  XdsStream(XdsServerImpl& server, uint64_t id, const XdsMethod& method, std::string peer,
            ServerStreamShim* shim);
  ~XdsStream() override;

  // gRPC thread (the call's creation): keeps itself alive until onDone(), registers with the
  // cache and starts reading.
  void start(std::shared_ptr<XdsStream> self);

  // StreamWatcher (any thread)
  uint64_t id() const override { return id_; }
  void onSnapshotChanged() override;
  StreamStatus status() const override;

  // ServerStreamReactions (gRPC threads)
  void onRead(bool ok, std::string_view bytes) override;
  void onWriteDone(bool ok) override;
  void onCancel() override;
  void onDone() override;

 private:
  // If nothing is being written, computes the next response and writes it.
  void maybeWrite();
  // Finishes the RPC once the write in flight (if any) is done. Idempotent.
  void finish(int code, const std::string& message);
  void handleOutcome(const RequestOutcome& outcome);
  std::string nodeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  XdsServerImpl& server_;
  const uint64_t id_;
  const XdsMethod& method_;
  const std::string peer_;
  // Valid until onDone(); used only while an operation may still be started (see finish()).
  ServerStreamShim* const shim_;
  const SystemTime opened_;
  const MonotonicTime opened_monotonic_;

  mutable std::mutex mutex_;
  std::unique_ptr<SotwStreamState> sotw_ ABSL_GUARDED_BY(mutex_);
  std::unique_ptr<DeltaStreamState> delta_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mutex_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
  // finish() was called; the finish itself waits for the write in flight.
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mutex_) = false;
  int finish_code_ ABSL_GUARDED_BY(mutex_) = 0;
  std::string finish_message_ ABSL_GUARDED_BY(mutex_);
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t requests_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t responses_ ABSL_GUARDED_BY(mutex_) = 0;
  // Unknown type URLs already logged (each is logged once per stream, at most a few).
  std::set<std::string> logged_unknown_types_ ABSL_GUARDED_BY(mutex_);
  // Held from start() to onDone(): the shim does not own its reactions.
  std::shared_ptr<XdsStream> self_ ABSL_GUARDED_BY(mutex_);
};

class XdsServerImpl : public XdsServer {
 public:
  XdsServerImpl(SnapshotCache& cache, TimeSource& time_source, Stats::Store& stats);
  ~XdsServerImpl() override;

  absl::Status start(const std::string& address, const std::optional<ServerTls>& tls);

  // XdsServer
  const std::string& address() const override { return address_; }
  uint32_t port() const override { return port_; }
  uint64_t activeStreams() const override;
  void shutdown() override;

  // gRPC thread: the reactions of a new call, or null for a method that is not served.
  ServerStreamReactions* createStream(const std::string& method, const std::string& peer,
                                      ServerStreamShim* shim);

  // For XdsStream.
  SnapshotCache& cache() { return cache_; }
  TimeSource& timeSource() { return time_source_; }
  void onStreamDone();

  struct Counters {
    explicit Counters(Stats::Store& store);
    Stats::Counter& streams_total;
    Stats::Gauge& streams_active;
    Stats::Counter& requests_total;
    Stats::Counter& responses_total;
    Stats::Counter& acks_total;
    Stats::Counter& nacks_total;
    Stats::Counter& stale_nonces_total;
    Stats::Counter& unknown_types_total;
    Stats::Counter& bad_requests_total;
  };
  Counters& counters() { return counters_; }

 private:
  SnapshotCache& cache_;
  TimeSource& time_source_;
  Counters counters_;
  std::unique_ptr<GrpcServerShim> grpc_;
  std::string address_;
  uint32_t port_ = 0;
  std::atomic<uint64_t> next_stream_id_{1};

  // Streams between CreateReactor and OnDone, so shutdown() can wait for them.
  mutable std::mutex streams_mutex_;
  std::condition_variable streams_done_;
  uint64_t active_streams_ ABSL_GUARDED_BY(streams_mutex_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(streams_mutex_) = false;
};

}  // namespace Proxy::ControlPlane
