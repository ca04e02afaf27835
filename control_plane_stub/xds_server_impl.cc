#include "control_plane_stub/xds_server_impl.h"

#include <array>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "spdlog/spdlog.h"

namespace Proxy::ControlPlane {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryRequest;

constexpr std::array<XdsMethod, 10> kMethods = {{
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

// The response's pieces as slices that share (not copy) the bytes: each slice keeps a
// reference to its piece, so a body shared by a thousand streams stays one allocation.
grpc::ByteBuffer toByteBuffer(const OutgoingResponse& response) {
  std::vector<grpc::Slice> slices;
  slices.reserve(response.pieces.size());
  for (const auto& piece : response.pieces) {
    auto* holder = new std::shared_ptr<const std::string>(piece);
    slices.emplace_back(
        const_cast<char*>(piece->data()), piece->size(),
        [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, holder);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

template <class Message>
bool decode(const grpc::ByteBuffer& buffer, Message& message) {
  grpc::Slice slice;
  if (!buffer.DumpToSingleSlice(&slice).ok()) {
    return false;
  }
  return message.ParseFromArray(slice.begin(), static_cast<int>(slice.size()));
}

// An RPC this server does not serve: finished at once.
class UnimplementedReactor : public grpc::ServerGenericBidiReactor {
 public:
  explicit UnimplementedReactor(const std::string& method) {
    Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        absl::StrCat("method '", method, "' is not served")));
  }
  void OnDone() override { delete this; }
};

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

XdsStream::XdsStream(XdsServerImpl& server, uint64_t id, const XdsMethod& method, std::string peer)
    : server_(server),
      id_(id),
      method_(method),
      peer_(std::move(peer)),
      opened_(server.timeSource().systemTime()),
      opened_monotonic_(server.timeSource().monotonicTime()) {
  if (method.delta) {
    delta_ = std::make_unique<DeltaStreamState>(server.timeSource(), method.only);
  } else {
    sotw_ = std::make_unique<SotwStreamState>(server.timeSource(), method.only);
  }
}

void XdsStream::start() {
  self_ = shared_from_this();
  server_.cache().addStream(self_);
  spdlog::info("xds stream {} open: method={} peer={}", id_, shortMethod(method_.name), peer_);
  StartRead(&read_buffer_);
}

std::string XdsStream::nodeLocked() const {
  if (sotw_ != nullptr) {
    return sotw_->nodeId();
  }
  return delta_->nodeId();
}

void XdsStream::onSnapshotChanged() {
  maybeWrite();
}

StreamStatus XdsStream::status() const {
  StreamStatus status;
  status.id = id_;
  status.method = std::string(method_.name);
  status.peer = peer_;
  status.delta = method_.delta;
  status.opened = opened_;
  std::lock_guard<std::mutex> lock(mutex_);
  status.node = nodeLocked();
  status.requests = requests_;
  status.responses = responses_;
  status.types = sotw_ != nullptr ? sotw_->status() : delta_->status();
  return status;
}

void XdsStream::OnReadDone(bool ok) {
  if (!ok) {
    // The client half-closed or the call was cancelled: nothing more will be read.
    finish(grpc::Status::OK);
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
      decoded = decode(read_buffer_, request);
      if (decoded) {
        // The snapshot is only consulted to trust a reconnecting client's version_info.
        SnapshotConstSharedPtr snapshot =
            server_.cache().snapshotFor(sotw_->hasNode() ? sotw_->nodeId() : request.node().id());
        outcome = sotw_->onRequest(request, snapshot.get());
      }
    } else {
      DeltaDiscoveryRequest request;
      decoded = decode(read_buffer_, request);
      if (decoded) {
        outcome = delta_->onRequest(request);
      }
    }
  }
  if (!decoded) {
    server_.counters().bad_requests_total.inc();
    spdlog::warn("xds stream {}: request does not decode as {}; ending the stream", id_,
                 method_.delta ? "DeltaDiscoveryRequest" : "DiscoveryRequest");
    finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request does not decode"));
    return;
  }
  handleOutcome(outcome);
  if (outcome.kind == RequestOutcome::Kind::WrongType) {
    finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, outcome.message));
    return;
  }
  maybeWrite();
  StartRead(&read_buffer_);
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (writing_ || write_failed_ || finishing_ || done_) {
      // OnWriteDone looks again when the write in flight is done.
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
    write_buffer_ = toByteBuffer(*response);
    spdlog::debug("xds stream {}: sending {} version='{}' nonce='{}' resources={} removed={}", id_,
                  shortName(response->kind), response->version, response->nonce,
                  response->resource_names.size(), response->removed.size());
  }
  server_.counters().responses_total.inc();
  // Outside the lock: gRPC may run a reaction on this thread from inside StartWrite.
  StartWrite(&write_buffer_);
}

void XdsStream::OnWriteDone(bool ok) {
  bool finish_now = false;
  grpc::Status status;
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
      status = finish_status_;
    }
  }
  if (finish_now) {
    Finish(status);
    return;
  }
  maybeWrite();
}

void XdsStream::finish(grpc::Status status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finishing_) {
      return;
    }
    finishing_ = true;
    finish_status_ = status;
    if (writing_) {
      return;  // OnWriteDone finishes
    }
    finish_called_ = true;
  }
  Finish(status);
}

void XdsStream::OnCancel() {
  cancelled_ = true;
}

void XdsStream::OnDone() {
  server_.cache().removeStream(id_);
  std::string node;
  uint64_t requests;
  uint64_t responses;
  grpc::Status status;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    node = nodeLocked();
    requests = requests_;
    responses = responses_;
    status = finish_status_;
  }
  const double seconds =
      std::chrono::duration<double>(server_.timeSource().monotonicTime() - opened_monotonic_)
          .count();
  std::string reason = cancelled_    ? std::string("cancelled")
                       : status.ok() ? std::string("client closed")
                                     : absl::StrCat("error ", static_cast<int>(status.error_code()),
                                                    ": ", status.error_message());
  spdlog::info("xds stream {} closed: node='{}' requests={} responses={} duration={:.3f}s ({})",
               id_, node, requests, responses, seconds, reason);
  XdsServerImpl& server = server_;
  // Drop our own reference last: this may destroy the stream (unless a notifier still holds
  // one, in which case it finds done_ set and does nothing).
  std::shared_ptr<XdsStream> self = std::move(self_);
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

absl::Status XdsServerImpl::start(const std::string& address) {
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterCallbackGenericService(this);
  // Clients that keep idle streams alive with pings (gRPC's xDS client can) must not be cut
  // off with "too_many_pings" by gRPC's strict server defaults.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || selected_port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on '", address, "'"));
  }
  port_ = static_cast<uint32_t>(selected_port);
  const size_t colon = address.rfind(':');
  address_ = absl::StrCat(address.substr(0, colon), ":", port_);
  return absl::OkStatus();
}

grpc::ServerGenericBidiReactor* XdsServerImpl::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  const XdsMethod* method = findXdsMethod(context->method());
  if (method == nullptr) {
    counters_.bad_requests_total.inc();
    spdlog::warn("xds: call to unknown method '{}' from {}", context->method(), context->peer());
    return new UnimplementedReactor(context->method());
  }
  {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    active_streams_++;
  }
  counters_.streams_total.inc();
  counters_.streams_active.inc();
  auto stream = std::make_shared<XdsStream>(*this, next_stream_id_++, *method, context->peer());
  stream->start();
  return stream.get();
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
    if (shut_down_ || server_ == nullptr) {
      return;
    }
    shut_down_ = true;
  }
  // A deadline of now cancels every open stream at once; each then finishes on a gRPC thread.
  server_->Shutdown(std::chrono::system_clock::now());
  std::unique_lock<std::mutex> lock(streams_mutex_);
  if (!streams_done_.wait_for(lock, kShutdownWait, [this] { return active_streams_ == 0; })) {
    spdlog::error("xds: {} streams did not finish within {}s of shutdown", active_streams_,
                  kShutdownWait.count());
  }
}

absl::StatusOr<XdsServerPtr> createXdsServer(const std::string& address, SnapshotCache& cache,
                                             TimeSource& time_source, Stats::Store& stats) {
  auto server = std::make_unique<XdsServerImpl>(cache, time_source, stats);
  absl::Status status = server->start(address);
  if (!status.ok()) {
    return status;
  }
  return server;
}

}  // namespace Proxy::ControlPlane
