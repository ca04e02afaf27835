// The HTTP connection manager's connection side (ConnectionManagerImpl, declared with its
// ActiveStream in http_connection_manager_impl.h, which says where each part lives): the codec
// chosen for the connection, its streams (one at a time on HTTP/1, many on HTTP/2), protocol
// errors, and the timers Envoy keeps per connection: idle_timeout (running only while no stream
// is active), max_connection_duration with its drain sequence, and the listener's drain. The
// timers Envoy keeps per stream are each stream's own (http_connection_manager_timers.cc).

#include "proxy/filters/http_connection_manager.h"

#include <utility>

#include "proxy/common/assert.h"
#include "proxy/filters/http_connection_manager_impl.h"
#include "proxy/http/codec_selection.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "proxy/http/http2/server_connection_impl.h"
#include "spdlog/spdlog.h"

namespace Proxy::Filters {

namespace Hcm {

namespace {

Http::Http1Settings codecSettings(const HcmConfig& config) {
  Http::Http1Settings settings;
  settings.max_request_headers_kb = config.max_request_headers_kb;
  settings.max_headers_count = config.max_headers_count;
  settings.accept_http_10 = config.accept_http_10;
  settings.default_host_for_http_10 = config.default_host_for_http_10;
  settings.enable_trailers = config.enable_trailers;
  return settings;
}

}  // namespace

ConnectionManagerImpl::ConnectionManagerImpl(HcmConfigConstSharedPtr config, HcmContext context,
                                             Network::Connection& connection)
    : config_(std::move(config)),
      context_(context),
      connection_(connection),
      stats_(*config_->stats),
      router_config_{context_.cluster_manager,
                     context_.per_connection_buffer_limit,
                     config_->suppress_envoy_headers,
                     {stats_.no_route, stats_.no_cluster, stats_.rq_redirect,
                      stats_.rq_direct_response, stats_.downstream_rq_timeout}} {
  connection_.addConnectionCallbacks(*this);
  stats_.downstream_cx_total.inc();
  stats_.downstream_cx_active.inc();
  if (config_->idle_timeout.count() > 0) {
    idle_timer_ = connection_.dispatcher().createTimer([this] { onIdleTimeout(); });
    idle_timer_->enableTimer(config_->idle_timeout);
  }
  if (config_->max_connection_duration.count() > 0) {
    max_duration_timer_ = connection_.dispatcher().createTimer([this] {
      stats_.downstream_cx_max_duration_reached.inc();
      startDrainSequence();
    });
    max_duration_timer_->enableTimer(config_->max_connection_duration);
  }
  // HTTP/1 from the start unless the first bytes may still pick HTTP/2 (createCodec()).
  if (config_->codec_type == Http::CodecType::Http1) {
    createCodec(Http::Protocol::Http11);
  }
}

ConnectionManagerImpl::~ConnectionManagerImpl() {
  stats_.downstream_cx_active.dec();
  stats_.downstream_cx_destroy.inc();
  if (codec_ != nullptr) {
    (http2_ != nullptr ? stats_.downstream_cx_http2_active : stats_.downstream_cx_http1_active)
        .dec();
  }
  // The connection outlives us (the handler destroys the filter first).
  connection_.removeConnectionCallbacks(*this);
  resetAllStreams();
}

void ConnectionManagerImpl::onData(Buffer::Instance& data, bool end_stream) {
  stats_.downstream_cx_rx_bytes_total.add(data.length());
  if (codec_ == nullptr) {
    const std::optional<Http::Protocol> protocol =
        Http::chooseServerProtocol(config_->codec_type, connection_.nextProtocol(), data);
    if (!protocol.has_value()) {
      if (end_stream) {
        connection_.close(Network::ConnectionCloseType::NoFlush);
      }
      return;  // a prefix of the HTTP/2 preface: wait for more bytes
    }
    createCodec(*protocol);
  }
  const absl::Status status = codec_->dispatch(data);
  if (!status.ok()) {
    onProtocolError();
    return;
  }
  if (http2_ != nullptr) {
    maybeCloseHttp2();
  }
  if (end_stream && streams_.empty()) {
    // The client half-closed with no request in flight: nothing more will come.
    connection_.close(Network::ConnectionCloseType::FlushWrite);
  }
}

void ConnectionManagerImpl::startDrain(std::chrono::milliseconds spread) {
  if (draining_) {
    return;
  }
  draining_ = true;
  if (spread.count() <= 0) {
    drainNow();
    return;
  }
  const auto delay = std::chrono::milliseconds(threadRandom()() % spread.count());
  drain_timer_ = connection_.dispatcher().createTimer([this] { drainNow(); });
  drain_timer_->enableTimer(delay);
}

void ConnectionManagerImpl::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::Connected) {
    return;
  }
  if (event == Network::ConnectionEvent::RemoteClose) {
    stats_.downstream_cx_destroy_remote.inc();
  } else {
    stats_.downstream_cx_destroy_local.inc();
  }
  if (!streams_.empty()) {
    stats_.downstream_cx_destroy_active_rq.inc();
    while (!streams_.empty()) {
      ActiveStream& stream = *streams_.front();
      stream.onDownstreamReset(event == Network::ConnectionEvent::RemoteClose
                                   ? "downstream_remote_disconnect"
                                   : std::string_view());
      destroyStream(stream);
    }
  }
  if (idle_timer_ != nullptr) {
    idle_timer_->disableTimer();
  }
}

void ConnectionManagerImpl::onAboveWriteBufferHighWatermark() {
  if (codec_ != nullptr) {
    codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
  }
}

void ConnectionManagerImpl::onBelowWriteBufferLowWatermark() {
  if (codec_ != nullptr) {
    codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
  }
}

Http::RequestDecoder& ConnectionManagerImpl::newStream(Http::ResponseEncoder& encoder) {
  ASSERT(http2_ != nullptr || streams_.empty());
  // Idle means no stream, as in Envoy: bytes that begin no request (a stray CRLF) leave the
  // timer running, or a client could hold an idle connection forever with one empty line.
  if (idle_timer_ != nullptr) {
    idle_timer_->disableTimer();
  }
  if (drain_sequence_ && http2_ == nullptr) {
    codec_->setCloseAfterResponse();  // served, but the last one on this connection
  }
  // HTTP/1: the connection's stream timers, handed to this stream; HTTP/2: its own.
  auto stream = std::make_unique<ActiveStream>(*this, encoder, http1_stream_timers_.get());
  if (!spare_stream_nodes_.empty()) {
    streams_.splice(streams_.end(), spare_stream_nodes_, spare_stream_nodes_.begin());
    streams_.back() = std::move(stream);
  } else {
    streams_.push_back(std::move(stream));
  }
  streams_.back()->self_ = std::prev(streams_.end());
  return *streams_.back();
}

void ConnectionManagerImpl::onCodecError() {
  // Not from inside the codec's call: the stream that was encoding is still on the stack.
  if (codec_error_timer_ == nullptr) {
    codec_error_timer_ = connection_.dispatcher().createTimer([this] { onProtocolError(); });
    codec_error_timer_->enableTimer(std::chrono::milliseconds(0));
  }
}

void ConnectionManagerImpl::write(Buffer::Instance& data, bool end_stream) {
  stats_.downstream_cx_tx_bytes_total.add(data.length());
  connection_.write(data, end_stream);
}

void ConnectionManagerImpl::countFlowControl(bool paused) {
  if (paused) {
    stats_.downstream_flow_control_paused_reading_total.inc();
  } else {
    stats_.downstream_flow_control_resumed_reading_total.inc();
  }
}

void ConnectionManagerImpl::countResponse(uint32_t code) {
  if (code >= 500) {
    stats_.downstream_rq_5xx.inc();
  } else if (code >= 400) {
    stats_.downstream_rq_4xx.inc();
  } else if (code >= 300) {
    stats_.downstream_rq_3xx.inc();
  } else if (code >= 200) {
    stats_.downstream_rq_2xx.inc();
  } else {
    stats_.downstream_rq_1xx.inc();
  }
}

void ConnectionManagerImpl::onStreamComplete(ActiveStream& stream, bool close_connection) {
  destroyStream(stream);
  if (http2_ != nullptr) {
    // HTTP/2: the stream alone ended (a reset or an early response was sent on it).
    maybeCloseHttp2();
    armIdleTimerIfIdle();
    return;
  }
  if (close_connection || codec_->closeAfterResponse()) {
    if (draining_) {
      stats_.downstream_cx_drain_close.inc();
    }
    connection_.close(Network::ConnectionCloseType::FlushWrite);
    return;
  }
  armIdleTimerIfIdle();
}

void ConnectionManagerImpl::createCodec(Http::Protocol protocol) {
  if (protocol == Http::Protocol::Http2) {
    Http::Http2::ServerSettings settings = config_->http2_settings;
    settings.max_request_headers_kb = config_->max_request_headers_kb;
    settings.max_headers_count = config_->max_headers_count;
    settings.stream_buffer_limit = context_.per_connection_buffer_limit;
    auto codec = std::make_unique<Http::Http2::ServerConnectionImpl>(
        *this, *this, *config_->http2_stats, settings);
    http2_ = codec.get();
    codec_ = std::move(codec);
    stats_.downstream_cx_http2_total.inc();
    stats_.downstream_cx_http2_active.inc();
    return;
  }
  codec_ = std::make_unique<Http::ServerConnectionImpl>(*this, *this, codecSettings(*config_));
  http1_stream_timers_ = std::make_unique<StreamTimers>(connection_.dispatcher());
  stats_.downstream_cx_http1_total.inc();
  stats_.downstream_cx_http1_active.inc();
}

void ConnectionManagerImpl::destroyStream(ActiveStream& stream) {
  stats_.downstream_rq_active.dec();
  if (http2_ != nullptr) {
    closed_streams_++;
    // Envoy's isPrematureRstStream: no response within a second of the stream's start.
    const auto lifetime = connection_.dispatcher().approximateMonotonicTime() - stream.startTime();
    if (!stream.answered() && lifetime <= std::chrono::seconds(1)) {
      premature_resets_++;
    }
  }
  // From a per-thread free list, as the stream itself: nothing allocated per request.
  struct Holder : Event::DeferredDeletable, Common::ThreadLocalFreeList<Holder> {
    std::unique_ptr<ActiveStream> stream;
  };
  auto holder = std::make_unique<Holder>();
  holder->stream = std::move(*stream.self_);
  if (spare_stream_nodes_.size() < kMaxSpareStreamNodes) {
    spare_stream_nodes_.splice(spare_stream_nodes_.end(), streams_, stream.self_);
  } else {
    streams_.erase(stream.self_);
  }
  connection_.dispatcher().deferredDelete(std::move(holder));
  if (http2_ != nullptr) {
    maybeDrainDueToPrematureResets();
  }
}

void ConnectionManagerImpl::resetAllStreams() {
  while (!streams_.empty()) {
    ActiveStream& stream = *streams_.front();
    stream.onDownstreamReset();
    stats_.downstream_rq_active.dec();
    streams_.pop_front();
  }
}

void ConnectionManagerImpl::onProtocolError() {
  const Http::CodecError& error = codec_->lastError();
  if (http2_ != nullptr) {
    // Floods have their own counters (http2.*); Envoy counts only protocol errors here.
    if (error.details.find("flood") == std::string::npos) {
      stats_.downstream_cx_protocol_error.inc();
    }
    spdlog::debug("[C{}] http/2 error: {}", connection_.id(), error.details);
    // Whatever the codec already wrote (a GOAWAY) goes first.
    connection_.close(Network::ConnectionCloseType::FlushWrite);
    return;
  }
  // Envoy finds a missing Host in the connection manager, after the codec: not a protocol
  // error there.
  if (error.details != "missing_host_header") {
    stats_.downstream_cx_protocol_error.inc();
  }
  spdlog::debug("[C{}] protocol error: {} ({})", connection_.id(), error.details, error.http_code);
  // The byte stream cannot be trusted any more: answer if we still can, then close.
  codec_->setCloseAfterResponse();
  if (!streams_.empty() && !streams_.front()->responseStarted()) {
    streams_.front()->onCodecError(error.http_code, error.details);
    return;
  }
  connection_.close(Network::ConnectionCloseType::NoFlush);
}

void ConnectionManagerImpl::armIdleTimerIfIdle() {
  if (idle_timer_ != nullptr && streams_.empty() &&
      connection_.state() == Network::Connection::State::Open) {
    idle_timer_->enableTimer(config_->idle_timeout);
  }
}

void ConnectionManagerImpl::onIdleTimeout() {
  if (!streams_.empty()) {
    return;
  }
  stats_.downstream_cx_idle_timeout.inc();
  if (http2_ != nullptr) {
    // Envoy 1.40 (run by hand): the GOAWAY shutdown notice at once, the final GOAWAY after
    // drain_timeout, then the close. (HTTP/1 closes at once here; Envoy waits drain_timeout.)
    startDrainSequence();
    return;
  }
  connection_.close(Network::ConnectionCloseType::FlushWrite);
}

void ConnectionManagerImpl::drainNow() {
  if (http2_ != nullptr) {
    http2_->goAway();
    goaway_sent_ = true;
    maybeCloseHttp2();
    return;
  }
  if (streams_.empty()) {
    stats_.downstream_cx_drain_close.inc();
    connection_.close(Network::ConnectionCloseType::FlushWrite);
  } else if (codec_ != nullptr) {
    codec_->setCloseAfterResponse();
  }
}

// Envoy's drain sequence. HTTP/2: GOAWAY with stream id 2^31-1 at once (the client opens no new
// stream), the final GOAWAY after drain_timeout, and the connection closes when its last stream
// ends. HTTP/1: the response in flight says "connection: close" and the connection closes after
// it; an idle connection closes after drain_timeout, and a request that arrives meanwhile is
// served as the connection's last.
void ConnectionManagerImpl::startDrainSequence() {
  if (drain_sequence_) {
    return;
  }
  drain_sequence_ = true;
  if (http2_ != nullptr) {
    http2_->shutdownNotice();
  } else if (!streams_.empty()) {
    codec_->setCloseAfterResponse();
    return;
  } else if (config_->drain_timeout.count() == 0) {
    connection_.close(Network::ConnectionCloseType::FlushWrite);
    return;
  }
  drain_sequence_timer_ =
      connection_.dispatcher().createTimer([this] { onDrainSequenceTimeout(); });
  drain_sequence_timer_->enableTimer(config_->drain_timeout);
}

void ConnectionManagerImpl::onDrainSequenceTimeout() {
  if (http2_ != nullptr) {
    http2_->goAway();
    goaway_sent_ = true;
    maybeCloseHttp2();
    return;
  }
  if (streams_.empty()) {
    connection_.close(Network::ConnectionCloseType::FlushWrite);
  }
}

void ConnectionManagerImpl::maybeCloseHttp2() {
  if (connection_.state() != Network::Connection::State::Open) {
    return;
  }
  if (http2_->wantsClose() || (goaway_sent_ && streams_.empty())) {
    if (draining_) {
      stats_.downstream_cx_drain_close.inc();
    }
    connection_.close(Network::ConnectionCloseType::FlushWrite);
  }
}

// CVE-2023-44487: once 500 streams closed (or 250 prematurely before that), a connection where
// at least half of them were reset before any response is closed.
void ConnectionManagerImpl::maybeDrainDueToPrematureResets() {
  constexpr uint64_t kLimit = 500;
  if (closed_streams_ == 0) {
    return;
  }
  if (closed_streams_ < kLimit) {
    if (premature_resets_ * 2 < kLimit) {
      return;
    }
  } else if (premature_resets_ * 2 < closed_streams_) {
    return;
  }
  if (connection_.state() == Network::Connection::State::Open) {
    stats_.downstream_rq_too_many_premature_resets.inc();
    connection_.close(Network::ConnectionCloseType::NoFlush);
  }
}

}  // namespace Hcm

NetworkFilterPtr createHttpConnectionManager(HcmConfigConstSharedPtr config, HcmContext context,
                                             Network::Connection& connection) {
  return std::make_unique<Hcm::ConnectionManagerImpl>(std::move(config), context, connection);
}

}  // namespace Proxy::Filters
