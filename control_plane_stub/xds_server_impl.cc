#include "control_plane_stub/xds_server_impl.h"

#include <array>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "proxy/common/tsan.h"
#include "spdlog/spdlog.h"

namespace Proxy::ControlPlane {
namespace {

// grpc::StatusCode values, without including gRPC here (grpc_server_shim.h).
namespace grpc_status {
constexpr int kOk = 0;
constexpr int kInvalidArgument = 3;
}  // namespace grpc_status

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryRequest;

constexpr std::array<XdsMethod, 12> kMethods = {{
    {kAdsSotwMethod, false, std::nullopt},
    {kAdsDeltaMethod, true, std::nullopt},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners", false,
     ResourceKind::Listener},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners", true,
     ResourceKind::Listener},
    {"/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes", false, ResourceKind::Route},
    {"/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes", true, ResourceKind::Route},
    {"/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters", false,
     ResourceKind::Cluster},
    {"/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters", true,
     ResourceKind::Cluster},
    {"/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints", false,
     ResourceKind::Endpoint},
    {"/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints", true,
     ResourceKind::Endpoint},
    {"/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets", false, ResourceKind::Secret},
    {"/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets", true, ResourceKind::Secret},
}};

// How long shutdown() waits for cancelled streams to finish.
constexpr std::chrono::seconds kShutdownWait{10};

std::string_view shortMethod(std::string_view method) {
  const size_t slash = method.rfind('/');
  return slash == std::string_view::npos ? method : method.substr(slash + 1);
}

std::string_view shortType(std::string_view type_url) {
  std::optional<ResourceKind> kind = kindFromTypeUrl(type_url);
  return kind.has_value() ? shortName(*kind) : type_url;
}

}  // namespace

const XdsMethod* findXdsMethod(std::string_view name) {
  for (const XdsMethod& method : kMethods) {
    if (method.name == name) {
      return &method;
    }
  }
  return nullptr;
}

// --- XdsStream ---------------------------------------------------------------------------
//
// TSAN: gRPC orders a call's reactions after the operations that started them, and onDone()
// after everything, through synchronization TSAN cannot see in Debian's uninstrumented gRPC.
// The stream states that ordering on its own address: HAPPENS_BEFORE(this) right before an
// operation is handed to gRPC and as the last thing any entry point does, HAPPENS_AFTER(this)
// first in every reaction and in the destructor. Everything else is under mutex_.

XdsStream::XdsStream(XdsServerImpl& server, uint64_t id, const XdsMethod& method, std::string peer,
                     ServerStreamShim* shim)
    : server_(server),
      id_(id),
      method_(method),
      peer_(std::move(peer)),
      shim_(shim),
      opened_(server.timeSource().systemTime()),
      opened_monotonic_(server.timeSource().monotonicTime()) {
  if (method.delta) {
    delta_ = std::make_unique<DeltaStreamState>(server.timeSource(), method.only);
  } else {
    sotw_ = std::make_unique<SotwStreamState>(server.timeSource(), method.only);
  }
}

XdsStream::~XdsStream() {
  PROXY_TSAN_HAPPENS_AFTER(this);
}

void XdsStream::start(std::shared_ptr<XdsStream> self) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    self_ = self;
  }
  server_.cache().addStream(self);
  spdlog::info("xds stream {} open: method={} peer={}", id_, shortMethod(method_.name), peer_);
  ServerStreamShim* shim = shim_;
  PROXY_TSAN_HAPPENS_BEFORE(this);
  shimStartRead(shim);
}

std::string XdsStream::nodeLocked() const {
  if (sotw_ != nullptr) {
    return sotw_->nodeId();
  }
  return delta_->nodeId();
}

void XdsStream::onSnapshotChanged() {
  PROXY_TSAN_HAPPENS_AFTER(this);
  maybeWrite();
  PROXY_TSAN_HAPPENS_BEFORE(this);
}

StreamStatus XdsStream::status() const {
  PROXY_TSAN_HAPPENS_AFTER(this);
  StreamStatus status;
  status.id = id_;
  status.method = std::string(method_.name);
  status.peer = peer_;
  status.delta = method_.delta;
  status.opened = opened_;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status.node = nodeLocked();
    status.requests = requests_;
    status.responses = responses_;
    status.types = sotw_ != nullptr ? sotw_->status() : delta_->status();
  }
  PROXY_TSAN_HAPPENS_BEFORE(this);
  return status;
}

void XdsStream::onRead(bool ok, std::string_view bytes) {
  PROXY_TSAN_HAPPENS_AFTER(this);
  if (!ok) {
    // The client half-closed or the call was cancelled: nothing more will be read.
    finish(grpc_status::kOk, "");
    return;
  }
  server_.counters().requests_total.inc();
  RequestOutcome outcome;
  bool decoded;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_++;
    if (sotw_ != nullptr) {
      DiscoveryRequest request;
      decoded = request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
      if (decoded) {
        // The snapshot is only consulted to trust a reconnecting client's version_info.
        SnapshotConstSharedPtr snapshot =
            server_.cache().snapshotFor(sotw_->hasNode() ? sotw_->nodeId() : request.node().id());
        outcome = sotw_->onRequest(request, snapshot.get());
      }
    } else {
      DeltaDiscoveryRequest request;
      decoded = request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
      if (decoded) {
        outcome = delta_->onRequest(request);
      }
    }
  }
  if (!decoded) {
    server_.counters().bad_requests_total.inc();
    spdlog::warn("xds stream {}: request does not decode as {}; ending the stream", id_,
                 method_.delta ? "DeltaDiscoveryRequest" : "DiscoveryRequest");
    finish(grpc_status::kInvalidArgument, "request does not decode");
    return;
  }
  handleOutcome(outcome);
  if (outcome.kind == RequestOutcome::Kind::WrongType) {
    finish(grpc_status::kInvalidArgument, outcome.message);
    return;
  }
  maybeWrite();
  // The next read. Nothing may touch this stream after: the read can complete (and a later
  // onDone() destroy the stream) on another thread at once.
  ServerStreamShim* shim = shim_;
  PROXY_TSAN_HAPPENS_BEFORE(this);
  shimStartRead(shim);
}

void XdsStream::handleOutcome(const RequestOutcome& outcome) {
  std::string node;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    node = nodeLocked();
    if (outcome.kind == RequestOutcome::Kind::UnknownType &&
        (logged_unknown_types_.size() >= 8 ||
         !logged_unknown_types_.insert(outcome.type_url).second)) {
      server_.counters().unknown_types_total.inc();
      return;
    }
  }
  switch (outcome.kind) {
    case RequestOutcome::Kind::Request:
      spdlog::debug("xds stream {}: request node='{}' type={} nonce='{}'", id_, node,
                    shortType(outcome.type_url), outcome.nonce);
      break;
    case RequestOutcome::Kind::Ack:
      server_.counters().acks_total.inc();
      spdlog::info("xds ACK: stream={} node='{}' type={} version='{}' nonce='{}'", id_, node,
                   shortType(outcome.type_url), outcome.version, outcome.nonce);
      break;
    case RequestOutcome::Kind::Nack:
      server_.counters().nacks_total.inc();
      spdlog::warn("xds NACK: stream={} node='{}' type={} version='{}' nonce='{}' error='{}'", id_,
                   node, shortType(outcome.type_url), outcome.version, outcome.nonce,
                   outcome.message);
      server_.cache().recordNack(NackRecord{node, outcome.type_url, outcome.version, outcome.nonce,
                                            outcome.message, server_.timeSource().systemTime()});
      break;
    case RequestOutcome::Kind::StaleNonce:
      server_.counters().stale_nonces_total.inc();
      spdlog::debug("xds stream {}: stale nonce '{}' for {} ignored", id_, outcome.nonce,
                    shortType(outcome.type_url));
      break;
    case RequestOutcome::Kind::UnknownType:
      server_.counters().unknown_types_total.inc();
      spdlog::warn("xds stream {}: {} (ignored)", id_, outcome.message);
      break;
    case RequestOutcome::Kind::WrongType:
      server_.counters().bad_requests_total.inc();
      spdlog::warn("xds stream {}: {}; ending the stream", id_, outcome.message);
      break;
  }
}

void XdsStream::maybeWrite() {
  std::vector<std::shared_ptr<const std::string>> pieces;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (writing_ || write_failed_ || finishing_ || done_) {
      // onWriteDone() looks again when the write in flight is done.
      return;
    }
    const bool has_node = sotw_ != nullptr ? sotw_->hasNode() : delta_->hasNode();
    if (!has_node) {
      return;  // no request yet: nothing subscribed
    }
    // Lock order: stream, then cache (the cache never calls a stream under its lock).
    SnapshotConstSharedPtr snapshot = server_.cache().snapshotFor(nodeLocked());
    std::optional<OutgoingResponse> response = sotw_ != nullptr
                                                   ? sotw_->nextResponse(snapshot.get())
                                                   : delta_->nextResponse(snapshot.get());
    if (!response.has_value()) {
      return;
    }
    writing_ = true;
    responses_++;
    spdlog::debug("xds stream {}: sending {} version='{}' nonce='{}' resources={} removed={}", id_,
                  shortName(response->kind), response->version, response->nonce,
                  response->resource_names.size(), response->removed.size());
    pieces = std::move(response->pieces);
  }
  server_.counters().responses_total.inc();
  // Outside the lock: gRPC may run a reaction on this thread from inside the write. While
  // writing_ is set nothing finishes the call, so the shim is alive.
  ServerStreamShim* shim = shim_;
  PROXY_TSAN_HAPPENS_BEFORE(this);
  shimWrite(shim, std::move(pieces));
}

void XdsStream::onWriteDone(bool ok) {
  PROXY_TSAN_HAPPENS_AFTER(this);
  bool finish_now = false;
  int code = 0;
  std::string message;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    writing_ = false;
    if (!ok) {
      // The call is broken; the read side fails too and finishes the RPC.
      write_failed_ = true;
    }
    if (finishing_ && !finish_called_) {
      finish_called_ = true;
      finish_now = true;
      code = finish_code_;
      message = finish_message_;
    }
  }
  if (finish_now) {
    ServerStreamShim* shim = shim_;
    PROXY_TSAN_HAPPENS_BEFORE(this);
    shimFinish(shim, code, message);
    return;
  }
  maybeWrite();
  PROXY_TSAN_HAPPENS_BEFORE(this);
}

void XdsStream::finish(int code, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finishing_) {
      return;
    }
    finishing_ = true;
    finish_code_ = code;
    finish_message_ = message;
    if (writing_) {
      return;  // onWriteDone() finishes
    }
    finish_called_ = true;
  }
  // After this the call may end (and this stream be destroyed) at any moment.
  ServerStreamShim* shim = shim_;
  PROXY_TSAN_HAPPENS_BEFORE(this);
  shimFinish(shim, code, message);
}

void XdsStream::onCancel() {
  PROXY_TSAN_HAPPENS_AFTER(this);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_ = true;
  }
  PROXY_TSAN_HAPPENS_BEFORE(this);
}

void XdsStream::onDone() {
  PROXY_TSAN_HAPPENS_AFTER(this);
  server_.cache().removeStream(id_);
  std::string node;
  uint64_t requests;
  uint64_t responses;
  bool cancelled;
  int code;
  std::string message;
  std::shared_ptr<XdsStream> self;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    node = nodeLocked();
    requests = requests_;
    responses = responses_;
    cancelled = cancelled_;
    code = finish_code_;
    message = finish_message_;
    self = std::move(self_);
  }
  const double seconds =
      std::chrono::duration<double>(server_.timeSource().monotonicTime() - opened_monotonic_)
          .count();
  const std::string reason = cancelled ? std::string("cancelled")
                             : code == grpc_status::kOk
                                 ? std::string("client closed")
                                 : absl::StrCat("error ", code, ": ", message);
  spdlog::info("xds stream {} closed: node='{}' requests={} responses={} duration={:.3f}s ({})",
               id_, node, requests, responses, seconds, reason);
  XdsServerImpl& server = server_;
  PROXY_TSAN_HAPPENS_BEFORE(this);
  // Our own reference goes last: this may destroy the stream (unless a notifier still holds
  // one; it then finds done_ set and does nothing).
  self.reset();
  server.onStreamDone();
}

// --- XdsServerImpl -----------------------------------------------------------------------

XdsServerImpl::Counters::Counters(Stats::Store& store)
    : streams_total(store.counter("control_plane.streams_total")),
      streams_active(store.gauge("control_plane.streams_active")),
      requests_total(store.counter("control_plane.requests_total")),
      responses_total(store.counter("control_plane.responses_total")),
      acks_total(store.counter("control_plane.acks_total")),
      nacks_total(store.counter("control_plane.nacks_total")),
      stale_nonces_total(store.counter("control_plane.stale_nonces_total")),
      unknown_types_total(store.counter("control_plane.unknown_types_total")),
      bad_requests_total(store.counter("control_plane.bad_requests_total")) {}

XdsServerImpl::XdsServerImpl(SnapshotCache& cache, TimeSource& time_source, Stats::Store& stats)
    : cache_(cache), time_source_(time_source), counters_(stats) {}

XdsServerImpl::~XdsServerImpl() {
  shutdown();
}

absl::Status XdsServerImpl::start(const std::string& address, const std::optional<ServerTls>& tls) {
  int port = 0;
  grpc_ = GrpcServerShim::start(
      address,
      [this](const std::string& method, const std::string& peer, ServerStreamShim* shim) {
        return createStream(method, peer, shim);
      },
      &port, tls);
  if (grpc_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on '", address, "'"));
  }
  port_ = static_cast<uint32_t>(port);
  const size_t colon = address.rfind(':');
  address_ = absl::StrCat(address.substr(0, colon), ":", port_);
  return absl::OkStatus();
}

ServerStreamReactions* XdsServerImpl::createStream(const std::string& method_name,
                                                   const std::string& peer,
                                                   ServerStreamShim* shim) {
  const XdsMethod* method = findXdsMethod(method_name);
  if (method == nullptr) {
    counters_.bad_requests_total.inc();
    spdlog::warn("xds: call to unknown method '{}' from {}", method_name, peer);
    return nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    active_streams_++;
  }
  counters_.streams_total.inc();
  counters_.streams_active.inc();
  // Not make_shared: the stream's memory is freed when the last reference goes, which may be
  // a notifier's; keeping the control block separate keeps that free out of the stream.
  std::shared_ptr<XdsStream> stream(new XdsStream(*this, next_stream_id_++, *method, peer, shim));
  XdsStream* raw = stream.get();
  raw->start(std::move(stream));
  return raw;
}

void XdsServerImpl::onStreamDone() {
  counters_.streams_active.dec();
  std::lock_guard<std::mutex> lock(streams_mutex_);
  active_streams_--;
  streams_done_.notify_all();
}

uint64_t XdsServerImpl::activeStreams() const {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  return active_streams_;
}

void XdsServerImpl::shutdown() {
  {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    if (shut_down_ || grpc_ == nullptr) {
      return;
    }
    shut_down_ = true;
  }
  grpc_->shutdown();
  std::unique_lock<std::mutex> lock(streams_mutex_);
  if (!streams_done_.wait_for(lock, kShutdownWait, [this] { return active_streams_ == 0; })) {
    spdlog::error("xds: {} streams did not finish within {}s of shutdown", active_streams_,
                  kShutdownWait.count());
  }
}

absl::StatusOr<XdsServerPtr> createXdsServer(const std::string& address, SnapshotCache& cache,
                                             TimeSource& time_source, Stats::Store& stats,
                                             const std::optional<ServerTls>& tls) {
  auto server = std::make_unique<XdsServerImpl>(cache, time_source, stats);
  absl::Status status = server->start(address, tls);
  if (!status.ok()) {
    return status;
  }
  return server;
}

}  // namespace Proxy::ControlPlane
