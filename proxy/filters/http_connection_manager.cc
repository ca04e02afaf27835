// The HTTP connection manager: ConnectionManagerImpl and its ActiveStream (the downstream side
// of one request). One file of ~940 lines on purpose: the two classes are private to this file
// and share their state, including the connection's and the stream's timers (idle, request,
// headers, max duration), which are their state too; the config is
// http_connection_manager_config.cc, the upstream leg router.cc. The seam to split along next is
// the timers, when they become per-stream for HTTP/2 (branch h2down).

#include "proxy/filters/http_connection_manager.h"

#include <cstdio>
#include <ctime>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proxy/common/assert.h"
#include "proxy/grpc/common.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "proxy/http/utility.h"
#include "proxy/router/router.h"
#include "spdlog/spdlog.h"

namespace Proxy::Filters {

namespace {

// Per-worker randomness: request ids and weighted cluster picks. Seeded once per thread.
std::mt19937_64& threadRandom() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

// A version-4 UUID, as Envoy's default request id extension generates.
std::string uuid4() {
  std::mt19937_64& rng = threadRandom();
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

// The Date header value for `now` (RFC 9110 5.6.7 IMF-fixdate), formatted once per second per
// thread: no formatting (and no locale) on the request path.
std::string_view httpDate(SystemTime now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local int64_t cached_second = -1;
  thread_local char cached[32];
  thread_local size_t cached_length = 0;
  const int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (second != cached_second) {
    const time_t t = static_cast<time_t>(second);
    struct tm tm;
    gmtime_r(&t, &tm);
    const int n = snprintf(cached, sizeof(cached), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                           kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900,
                           tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_length = n > 0 ? static_cast<size_t>(n) : 0;
    cached_second = second;
  }
  return std::string_view(cached, cached_length);
}

class ConnectionManagerImpl;

// The stream timers (Envoy's ActiveStream timers). The connection keeps one of each, reused by
// each stream in turn (HTTP/1: one stream at a time): no timer allocation per request.
enum class StreamTimer : size_t {
  Idle,            // stream_idle_timeout, or the route's idle_timeout: no activity either way
  Request,         // request_timeout: the whole request received
  RequestHeaders,  // request_headers_timeout: the request's headers received
  MaxDuration,     // common_http_protocol_options.max_stream_duration
  Count,
};

Http::Http1Settings codecSettings(const HcmConfig& config) {
  Http::Http1Settings settings;
  settings.max_request_headers_kb = config.max_request_headers_kb;
  settings.max_headers_count = config.max_headers_count;
  settings.accept_http_10 = config.accept_http_10;
  settings.default_host_for_http_10 = config.default_host_for_http_10;
  settings.enable_trailers = config.enable_trailers;
  return settings;
}

// One request/response exchange, downstream side; its upstream leg is the router filter
// (proxy/router/router.h). HTTP/1 carries one at a time per connection.
class ActiveStream : public Http::RequestDecoder,
                     public Http::StreamCallbacks,  // downstream stream events
                     public Router::FilterCallbacks {
 public:
  ActiveStream(ConnectionManagerImpl& parent, Http::ResponseEncoder& encoder);
  ~ActiveStream() override;

  // Http::RequestDecoder
  void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) override;
  void decodeData(Buffer::Instance& data, bool end_stream) override;
  void decodeTrailers(Http::RequestTrailerMapPtr&& trailers) override;

  // Http::StreamCallbacks (downstream): the client's connection is backed up or reset.
  void onResetStream(Http::StreamResetReason reason) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // Router::FilterCallbacks
  Http::RequestHeaderMap& requestHeaders() override { return *request_headers_; }
  const Router::RouteEntry* route() const override { return route_entry_; }
  StreamInfo::StreamInfo& streamInfo() override { return info_; }
  bool requestComplete() const override { return request_complete_; }
  Event::Dispatcher& dispatcher() override;
  Event::Timer& routeTimer() override;
  void sendLocalReply(uint32_t code, std::string_view body, uint32_t flag, std::string_view details,
                      bool overloaded) override {
    overloaded_reply_ = overloaded;
    sendLocalReply(code, body, flag, details, std::nullopt);
  }
  void sendLocalReply(uint32_t code, std::string_view body, uint32_t flag,
                      std::string_view details) {
    sendLocalReply(code, body, flag, details, std::nullopt);
  }
  // `grpc_status`: what a gRPC client gets instead of the status mapped from `code`.
  void sendLocalReply(uint32_t code, std::string_view body, uint32_t flag, std::string_view details,
                      std::optional<Grpc::Status> grpc_status);
  void encodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override {
    response_headers_ = std::move(headers);
    encodeResponseHeaders(*response_headers_, end_stream);
  }
  void encodeData(Buffer::Instance& data, bool end_stream) override {
    encodeResponseData(data, end_stream);
  }
  void encodeTrailers(Http::ResponseTrailerMapPtr&& trailers) override;
  void readDisableDownstream(bool disable) override;

  // Called when the downstream connection goes away mid-stream; `details` (Envoy's
  // "downstream_remote_disconnect") for the access log, when known.
  void onDownstreamReset(std::string_view details = {});
  // The route timeout fired (the connection's timer, armed by this stream).
  void onRouteTimeout() { router_->onRouteTimeout(); }
  // One of the stream timers fired.
  void onStreamTimer(StreamTimer which);
  // The request could not be parsed: answer `code` (400, 431, ...) and close.
  void onCodecError(uint32_t code, std::string_view details) {
    // Envoy's codec errors carry the reason phrase as body; a missing Host is found by its
    // connection manager, whose 400 has none.
    sendLocalReply(code, details == "missing_host_header" ? "" : Http::Utility::reasonPhrase(code),
                   StreamInfo::DownstreamProtocolError, details);
  }
  bool responseStarted() const { return response_headers_sent_; }

 private:
  // Applies the configured path normalisation to :path; false when a 400 or a 307 answered the
  // request instead.
  bool normalizePath(bool end_stream);
  // Matches the route, then hands the request to the router.
  void route();
  void encodeResponseHeaders(Http::ResponseHeaderMap& headers, bool end_stream);
  void encodeResponseData(Buffer::Instance& data, bool end_stream);
  void onRequestComplete();
  void onResponseComplete();
  void finish();
  // Re-arms the stream idle timer: something moved, either way.
  void resetIdleTimer();
  // The stream duration timer for the matched route: its max_stream_duration, or a gRPC
  // request's grpc-timeout when the route says so (Envoy's refreshDurationTimeout).
  void refreshDurationTimeout();

  ConnectionManagerImpl& parent_;
  Http::ResponseEncoder& encoder_;
  Http::RequestHeaderMapPtr request_headers_;
  Http::ResponseHeaderMapPtr response_headers_;
  Http::RequestTrailerMapPtr request_trailers_;
  Http::ResponseTrailerMapPtr response_trailers_;
  std::shared_ptr<const Router::Config> route_config_;  // held for the whole request
  const Router::RouteEntry* route_entry_ = nullptr;
  StreamInfo::StreamInfo info_;
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool response_headers_sent_ = false;
  // The next local reply is for a request the upstream pool dropped (x-envoy-overloaded).
  bool overloaded_reply_ = false;
  bool downstream_read_disabled_ = false;  // by us, for upstream backpressure
  bool finished_ = false;
  // The stream idle timeout: the connection manager's, until a route with idle_timeout matched.
  std::chrono::milliseconds idle_timeout_;
  // The upstream leg; last, so that it goes first (its destructor cancels a pending pool
  // request).
  Router::FilterPtr router_;
};

class ConnectionManagerImpl : public NetworkFilter,
                              public Network::ConnectionCallbacks,
                              public Http::ServerConnectionCallbacks,
                              public Http::CodecOutput {
 public:
  ConnectionManagerImpl(HcmConfigConstSharedPtr config, HcmContext context,
                        Network::Connection& connection)
      : config_(std::move(config)),
        context_(context),
        connection_(connection),
        stats_(*config_->stats),
        router_config_{context_.cluster_manager,
                       context_.per_connection_buffer_limit,
                       config_->suppress_envoy_headers,
                       {stats_.no_route, stats_.no_cluster, stats_.rq_redirect,
                        stats_.rq_direct_response, stats_.downstream_rq_timeout}},
        codec_(
            std::make_unique<Http::ServerConnectionImpl>(*this, *this, codecSettings(*config_))) {
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
  }

  ~ConnectionManagerImpl() override {
    stats_.downstream_cx_active.dec();
    stats_.downstream_cx_destroy.inc();
    // The connection outlives us (the handler destroys the filter first).
    connection_.removeConnectionCallbacks(*this);
    if (stream_ != nullptr) {
      stream_->onDownstreamReset();
      stats_.downstream_rq_active.dec();
      stream_.reset();
    }
  }

  // Network::ReadFilter
  void onData(Buffer::Instance& data, bool end_stream) override {
    stats_.downstream_cx_rx_bytes_total.add(data.length());
    const absl::Status status = codec_->dispatch(data);
    if (!status.ok()) {
      onProtocolError();
      return;
    }
    if (end_stream && stream_ == nullptr) {
      // The client half-closed with no request in flight: nothing more will come.
      connection_.close(Network::ConnectionCloseType::FlushWrite);
    }
  }

  // NetworkFilter
  void startDrain(std::chrono::milliseconds spread) override {
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

  // Network::ConnectionCallbacks
  void onEvent(Network::ConnectionEvent event) override {
    if (event == Network::ConnectionEvent::Connected) {
      return;
    }
    if (event == Network::ConnectionEvent::RemoteClose) {
      stats_.downstream_cx_destroy_remote.inc();
    } else {
      stats_.downstream_cx_destroy_local.inc();
    }
    if (stream_ != nullptr) {
      stats_.downstream_cx_destroy_active_rq.inc();
      stream_->onDownstreamReset(event == Network::ConnectionEvent::RemoteClose
                                     ? "downstream_remote_disconnect"
                                     : std::string_view());
      destroyStream();
    }
    if (idle_timer_ != nullptr) {
      idle_timer_->disableTimer();
    }
  }
  void onAboveWriteBufferHighWatermark() override {
    codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
  }

  // Http::ServerConnectionCallbacks
  Http::RequestDecoder& newStream(Http::ResponseEncoder& encoder) override {
    ASSERT(stream_ == nullptr);
    // Idle means no stream, as in Envoy: bytes that begin no request (a stray CRLF) leave the
    // timer running, or a client could hold an idle connection forever with one empty line.
    if (idle_timer_ != nullptr) {
      idle_timer_->disableTimer();
    }
    if (route_timer_ != nullptr) {
      route_timer_->disableTimer();  // whatever the previous stream armed is not ours
    }
    disableStreamTimers();
    if (drain_sequence_) {
      codec_->setCloseAfterResponse();  // served, but the last one on this connection
    }
    stream_ = std::make_unique<ActiveStream>(*this, encoder);
    return *stream_;
  }
  void onReadingPaused(bool paused) override { countFlowControl(paused); }

  // Http::CodecOutput
  void write(Buffer::Instance& data, bool end_stream) override {
    stats_.downstream_cx_tx_bytes_total.add(data.length());
    connection_.write(data, end_stream);
  }
  void readDisable(bool disable) override { connection_.readDisable(disable); }

  void countFlowControl(bool paused) {
    if (paused) {
      stats_.downstream_flow_control_paused_reading_total.inc();
    } else {
      stats_.downstream_flow_control_resumed_reading_total.inc();
    }
  }

  // Called by the stream when its exchange is over (both directions, or reset).
  void onStreamComplete(bool close_connection) {
    destroyStream();
    if (close_connection || codec_->closeAfterResponse()) {
      if (draining_) {
        stats_.downstream_cx_drain_close.inc();
      }
      connection_.close(Network::ConnectionCloseType::FlushWrite);
      return;
    }
    if (idle_timer_ != nullptr) {
      idle_timer_->enableTimer(config_->idle_timeout);
    }
  }

  // One timer per connection, reused by each stream in turn: no timer allocation per request.
  Event::Timer& routeTimer() {
    if (route_timer_ == nullptr) {
      route_timer_ = connection_.dispatcher().createTimer([this] {
        if (stream_ != nullptr) {
          stream_->onRouteTimeout();
        }
      });
    }
    return *route_timer_;
  }

  Event::Timer& streamTimer(StreamTimer which) {
    Event::TimerPtr& timer = stream_timers_[static_cast<size_t>(which)];
    if (timer == nullptr) {
      timer = connection_.dispatcher().createTimer([this, which] {
        if (stream_ != nullptr) {
          stream_->onStreamTimer(which);
        }
      });
    }
    return *timer;
  }
  void disableStreamTimer(StreamTimer which) {
    const Event::TimerPtr& timer = stream_timers_[static_cast<size_t>(which)];
    if (timer != nullptr) {
      timer->disableTimer();
    }
  }
  void disableStreamTimers() {
    for (const Event::TimerPtr& timer : stream_timers_) {
      if (timer != nullptr) {
        timer->disableTimer();
      }
    }
  }

  const HcmConfig& config() const { return *config_; }
  const Router::FilterConfig& routerConfig() const { return router_config_; }
  HcmStats& stats() { return stats_; }
  HcmContext& context() { return context_; }
  Network::Connection& connection() { return connection_; }
  Http::ServerConnection& codec() { return *codec_; }

 private:
  void destroyStream() {
    if (stream_ != nullptr) {
      stats_.downstream_rq_active.dec();
      // The stream may be on the stack (this is usually called from its own callbacks).
      struct Holder : Event::DeferredDeletable {
        std::unique_ptr<ActiveStream> stream;
      };
      auto holder = std::make_unique<Holder>();
      holder->stream = std::move(stream_);
      connection_.dispatcher().deferredDelete(std::move(holder));
    }
  }

  void onProtocolError() {
    const Http::CodecError& error = codec_->lastError();
    // Envoy finds a missing Host in the connection manager, after the codec: not a protocol
    // error there.
    if (error.details != "missing_host_header") {
      stats_.downstream_cx_protocol_error.inc();
    }
    spdlog::debug("[C{}] protocol error: {} ({})", connection_.id(), error.details,
                  error.http_code);
    // The byte stream cannot be trusted any more: answer if we still can, then close.
    codec_->setCloseAfterResponse();
    if (stream_ != nullptr && !stream_->responseStarted()) {
      stream_->onCodecError(error.http_code, error.details);
      return;
    }
    connection_.close(Network::ConnectionCloseType::NoFlush);
  }

 public:
  void countResponse(uint32_t code) {
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

 private:
  // Idle: close now. Busy: the response in flight says "connection: close".
  void drainNow() {
    if (stream_ == nullptr) {
      stats_.downstream_cx_drain_close.inc();
      connection_.close(Network::ConnectionCloseType::FlushWrite);
    } else {
      codec_->setCloseAfterResponse();
    }
  }

  void onIdleTimeout() {
    if (stream_ == nullptr) {
      stats_.downstream_cx_idle_timeout.inc();
      connection_.close(Network::ConnectionCloseType::FlushWrite);
    }
  }

  // Envoy's drain sequence on HTTP/1 (max_connection_duration): the response in flight says
  // "connection: close" and the connection closes after it; an idle connection closes after
  // drain_timeout, and a request that arrives meanwhile is served as the connection's last.
  void startDrainSequence() {
    if (drain_sequence_) {
      return;
    }
    drain_sequence_ = true;
    if (stream_ != nullptr) {
      codec_->setCloseAfterResponse();
      return;
    }
    if (config_->drain_timeout.count() == 0) {
      connection_.close(Network::ConnectionCloseType::FlushWrite);
      return;
    }
    drain_sequence_timer_ = connection_.dispatcher().createTimer([this] {
      if (stream_ == nullptr) {
        connection_.close(Network::ConnectionCloseType::FlushWrite);
      }
    });
    drain_sequence_timer_->enableTimer(config_->drain_timeout);
  }

  const HcmConfigConstSharedPtr config_;
  HcmContext context_;
  Network::Connection& connection_;
  HcmStats& stats_;
  const Router::FilterConfig router_config_;
  std::unique_ptr<Http::ServerConnectionImpl> codec_;
  std::unique_ptr<ActiveStream> stream_;
  Event::TimerPtr idle_timer_;
  Event::TimerPtr drain_timer_;
  Event::TimerPtr route_timer_;
  Event::TimerPtr stream_timers_[static_cast<size_t>(StreamTimer::Count)];
  Event::TimerPtr max_duration_timer_;
  Event::TimerPtr drain_sequence_timer_;
  bool draining_ = false;
  bool drain_sequence_ = false;
};

ActiveStream::ActiveStream(ConnectionManagerImpl& parent, Http::ResponseEncoder& encoder)
    : parent_(parent),
      encoder_(encoder),
      idle_timeout_(parent.config().stream_idle_timeout),
      router_(Router::createFilter(parent.routerConfig(), *this)) {
  Event::Dispatcher& dispatcher = parent_.connection().dispatcher();
  info_.start_monotonic = dispatcher.approximateMonotonicTime();
  info_.start_system = dispatcher.timeSource().systemTime();
  info_.downstream_remote = parent_.connection().remoteAddress();
  info_.downstream_local = parent_.connection().localAddress();
  encoder_.getStream().addCallbacks(*this);
  parent_.stats().downstream_rq_total.inc();
  parent_.stats().downstream_rq_http1_total.inc();
  parent_.stats().downstream_rq_active.inc();
  // The stream began with its first byte (the codec's message begin): every stream timer runs
  // from here, the header timeout included, so a client trickling its headers is cut off.
  const HcmConfig& config = parent_.config();
  resetIdleTimer();
  const std::pair<StreamTimer, std::chrono::milliseconds> timers[] = {
      {StreamTimer::Request, config.request_timeout},
      {StreamTimer::RequestHeaders, config.request_headers_timeout},
      {StreamTimer::MaxDuration, config.max_stream_duration},
  };
  for (const auto& [which, timeout] : timers) {
    if (timeout.count() > 0) {
      parent_.streamTimer(which).enableTimer(timeout);
    }
  }
}

void ActiveStream::resetIdleTimer() {
  if (idle_timeout_.count() > 0 && !finished_) {
    parent_.streamTimer(StreamTimer::Idle).enableTimer(idle_timeout_);
  }
}

void ActiveStream::onStreamTimer(StreamTimer which) {
  HcmStats& stats = parent_.stats();
  // Envoy 1.40 answers its stream timeouts 504 once the whole request was received (what is
  // late is the response) and 408 before; the request timeouts are 408 (they cannot fire later).
  const uint32_t late_code = request_complete_ ? 504 : 408;
  switch (which) {
    case StreamTimer::Idle:
      stats.downstream_rq_idle_timeout.inc();
      sendLocalReply(late_code, "stream timeout", StreamInfo::StreamIdleTimeout,
                     "stream_idle_timeout");
      return;
    case StreamTimer::Request:
      stats.downstream_rq_timeout.inc();
      sendLocalReply(408, "request timeout", 0, "request_overall_timeout");
      return;
    case StreamTimer::RequestHeaders:
      stats.downstream_rq_header_timeout.inc();
      sendLocalReply(408, "request header timeout", 0, "request_header_timeout");
      return;
    case StreamTimer::MaxDuration:
      stats.downstream_rq_max_duration_reached.inc();
      sendLocalReply(late_code, "downstream duration timeout", 0, "max_duration_timeout",
                     Grpc::Status::DeadlineExceeded);
      return;
    case StreamTimer::Count:
      break;
  }
}

ActiveStream::~ActiveStream() {
  // Nothing of parent_ here: a stream whose connection closed under it is deleted (deferred)
  // after its connection manager, which goes with the connection. The manager counts
  // downstream_rq_active down when it lets go of the stream. (Found under ASan by
  // xds_listener_integration_test DrainWindowEndClosesConnectionsOnRemovedChains..., which
  // closes connections with requests in flight: heap-use-after-free here.) The router's
  // destructor cancels a pending pool request.
}

void ActiveStream::decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) {
  request_headers_ = std::move(headers);
  info_.protocol = parent_.codec().protocol();
  const HcmConfig& config = parent_.config();
  parent_.disableStreamTimer(StreamTimer::RequestHeaders);
  resetIdleTimer();

  // Only "OPTIONS *" gets here with a path that is not origin-form (the codec turned an
  // absolute-form target into a path): Envoy answers it 404.
  const std::string_view path = request_headers_->path();
  if (!path.empty() && path[0] != '/') {
    parent_.stats().downstream_rq_non_relative_path.inc();
    if (end_stream) {
      onRequestComplete();
    }
    sendLocalReply(404, "", 0, "absolute_path");
    return;
  }

  // The path is normalised before anything looks at it, routing included, as Envoy does: a
  // route rule for /admin must also catch /public/../admin, /%61dmin and //admin.
  if (!normalizePath(end_stream)) {
    return;
  }

  // Expect: 100-continue is answered here, as Envoy does by default, so the client starts
  // sending the body while we pick a route and connect upstream.
  if (request_headers_->getValue(Http::Headers::Expect) == "100-continue") {
    request_headers_->remove(Http::Headers::Expect);
    encoder_.encode100ContinueHeaders();
  }

  // Hop-by-hop headers the client nominated go no further; a hostile nomination is a 400.
  if (!ConnManagerUtility::sanitizeConnectionHeader(*request_headers_)) {
    parent_.codec().setCloseAfterResponse();
    sendLocalReply(400, Http::Utility::reasonPhrase(400), StreamInfo::DownstreamProtocolError,
                   "http1.connection_header_rejected");
    return;
  }
  ConnManagerUtility::sanitizeTeHeader(*request_headers_);
  // x-forwarded-for / x-forwarded-proto, internal or edge request, x-envoy-* sanitising,
  // x-request-id: Envoy's ConnectionManagerUtility::mutateRequestHeaders.
  ConnManagerUtility::mutateRequestHeaders(*request_headers_,
                                           parent_.connection().remoteAddress().ip(),
                                           config.request_header_policy, &uuid4);
  if (config.strip_any_host_port || config.strip_matching_host_port) {
    ConnManagerUtility::stripPortFromHost(
        *request_headers_,
        config.strip_any_host_port
            ? std::nullopt
            : std::optional<uint32_t>(parent_.connection().localAddress().port()));
  }

  if (end_stream) {
    onRequestComplete();
  }
  route();
}

bool ActiveStream::normalizePath(bool end_stream) {
  const Http::PathNormalizationResult result =
      Http::normalizeRequestPath(request_headers_->path(), parent_.config().path_normalization);
  switch (result.action) {
    case Http::PathNormalizationAction::Continue:
      if (result.path.has_value()) {
        request_headers_->setCopy(Http::Headers::Path, *result.path);
      }
      return true;
    case Http::PathNormalizationAction::Reject:
      parent_.stats().downstream_rq_failed_path_normalization.inc();
      if (end_stream) {
        onRequestComplete();
      }
      // Envoy closes the connection after this 400, as after other malformed requests.
      parent_.codec().setCloseAfterResponse();
      sendLocalReply(400, "", 0, "path_normalization_failed");
      return false;
    case Http::PathNormalizationAction::Redirect: {
      parent_.stats().downstream_rq_redirected_with_normalized_path.inc();
      if (end_stream) {
        onRequestComplete();
      }
      info_.response_code_details = "path_normalization_failed";
      auto response = std::make_unique<Http::ResponseHeaderMap>();
      response->setStatus(307);
      response->addCopy(Http::Headers::Location, *result.path);
      response->addCopy(Http::Headers::ContentLength, "0");
      response_headers_ = std::move(response);
      encodeResponseHeaders(*response_headers_, true);
      return false;
    }
  }
  return true;
}

void ActiveStream::route() {
  route_config_ = parent_.config().route_provider->config();
  route_entry_ = route_config_ == nullptr
                     ? nullptr
                     : route_config_->route(*request_headers_, threadRandom()());
  // A route's idle_timeout replaces the connection manager's stream_idle_timeout (0: none).
  if (route_entry_ != nullptr && route_entry_->idleTimeout().has_value()) {
    idle_timeout_ = *route_entry_->idleTimeout();
    if (idle_timeout_.count() == 0) {
      parent_.disableStreamTimer(StreamTimer::Idle);
    }
  }
  resetIdleTimer();
  refreshDurationTimeout();
  router_->decodeHeaders();
}

void ActiveStream::refreshDurationTimeout() {
  using std::chrono::milliseconds;
  if (route_entry_ == nullptr) {
    return;
  }
  const Router::StreamDurationPolicy& policy = route_entry_->streamDurations();
  const milliseconds hcm_duration = parent_.config().max_stream_duration;
  const std::optional<milliseconds> grpc_timeout = Grpc::getGrpcTimeout(*request_headers_);
  milliseconds timeout{0};
  bool disable = false;
  if (!grpc_timeout.has_value() || !policy.grpc_timeout_header_max.has_value()) {
    // The route's max_stream_duration (0: none), else the connection manager's.
    if (policy.max_stream_duration.has_value()) {
      timeout = *policy.max_stream_duration;
      disable = timeout.count() == 0;
    } else if (hcm_duration.count() > 0) {
      timeout = hcm_duration;
    } else {
      disable = true;
    }
  } else {
    // grpc-timeout, capped by grpc_timeout_header_max (0: no cap), less the offset.
    timeout = *grpc_timeout;
    const milliseconds max = *policy.grpc_timeout_header_max;
    if (max.count() != 0 && timeout > max) {
      timeout = max;
    }
    if (timeout.count() != 0 && policy.grpc_timeout_header_offset.has_value()) {
      const milliseconds offset = *policy.grpc_timeout_header_offset;
      timeout = offset < timeout ? timeout - offset : milliseconds(0);
    }
  }
  const bool rewrite_header =
      policy.using_new_timeouts && Grpc::isGrpcRequestHeaders(*request_headers_);
  Event::Timer& timer = parent_.streamTimer(StreamTimer::MaxDuration);
  if (disable) {
    // As Envoy, which only has a timer to disable when the connection manager set one.
    if (hcm_duration.count() > 0) {
      timer.disableTimer();
      if (rewrite_header) {
        request_headers_->remove("grpc-timeout");
      }
    }
    return;
  }
  // The upstream learns the deadline that applies.
  if (rewrite_header) {
    Grpc::toGrpcTimeout(timeout, *request_headers_);
  }
  const auto used = std::chrono::duration_cast<milliseconds>(
      parent_.connection().dispatcher().approximateMonotonicTime() - info_.start_monotonic);
  timer.enableTimer(timeout > used ? timeout - used : milliseconds(0));
}

void ActiveStream::decodeData(Buffer::Instance& data, bool end_stream) {
  info_.bytes_received += data.length();
  resetIdleTimer();
  if (end_stream) {
    onRequestComplete();
  }
  if (finished_ || response_complete_) {
    data.drain(data.length());  // a local reply was sent already; the body has nowhere to go
    return;
  }
  router_->decodeData(data, end_stream);
}

void ActiveStream::decodeTrailers(Http::RequestTrailerMapPtr&& trailers) {
  request_trailers_ = std::move(trailers);
  onRequestComplete();
  if (finished_ || response_complete_) {
    return;  // answered already; the trailers have nowhere to go
  }
  router_->decodeTrailers(*request_trailers_);
}

void ActiveStream::onRequestComplete() {
  // Pipelined requests behind this one wait in the connection's buffer: the codec stops
  // reading until this response is complete.
  request_complete_ = true;
  parent_.disableStreamTimer(StreamTimer::Request);
  router_->onRequestComplete();
}

void ActiveStream::encodeResponseHeaders(Http::ResponseHeaderMap& headers, bool end_stream) {
  const HcmConfig& config = parent_.config();
  if (!config.pass_through_server_header &&
      (config.overwrite_server_header || !headers.has(Http::Headers::Server))) {
    headers.setCopy(Http::Headers::Server, config.server_name);
  }
  // Every response has a Date; an upstream's own is kept (Envoy's DateProvider).
  if (!headers.has(Http::Headers::Date)) {
    headers.setCopy(Http::Headers::Date,
                    httpDate(parent_.connection().dispatcher().timeSource().systemTime()));
  }
  if (config.always_set_request_id_in_response && request_headers_ != nullptr) {
    const std::string_view id = request_headers_->getValue(Http::Headers::XRequestId);
    if (!id.empty()) {
      headers.setCopy(Http::Headers::XRequestId, id);
    }
  }
  info_.response_code = headers.status();
  response_headers_sent_ = true;
  resetIdleTimer();
  // A response that ends before the request body did leaves unread bytes on the wire: the
  // connection cannot carry another request (Envoy does the same).
  if (end_stream && !request_complete_) {
    parent_.codec().setCloseAfterResponse();
  }
  encoder_.encodeHeaders(headers, end_stream);
  if (end_stream) {
    onResponseComplete();
  }
}

void ActiveStream::encodeResponseData(Buffer::Instance& data, bool end_stream) {
  info_.bytes_sent += data.length();
  resetIdleTimer();
  if (end_stream && !request_complete_) {
    parent_.codec().setCloseAfterResponse();
  }
  encoder_.encodeData(data, end_stream);
  if (end_stream) {
    onResponseComplete();
  }
}

void ActiveStream::encodeTrailers(Http::ResponseTrailerMapPtr&& trailers) {
  response_trailers_ = std::move(trailers);
  if (!request_complete_) {
    parent_.codec().setCloseAfterResponse();
  }
  encoder_.encodeTrailers(*response_trailers_);
  onResponseComplete();
}

void ActiveStream::sendLocalReply(uint32_t code, std::string_view body, uint32_t flag,
                                  std::string_view details,
                                  std::optional<Grpc::Status> grpc_status) {
  info_.setFlag(flag);
  info_.response_code_details = std::string(details);
  if (response_headers_sent_) {
    // Mid-response there is no way to signal an error on HTTP/1 but to cut the connection: a
    // reset sent, in Envoy's words.
    parent_.stats().downstream_rq_tx_reset.inc();
    router_->resetUpstream();
    finish();
    parent_.onStreamComplete(/*close_connection=*/true);
    return;
  }
  router_->resetUpstream();
  if (!request_complete_) {
    // The rest of the request cannot be skipped reliably: this is the connection's last
    // response, and it says so ("connection: close"), as Envoy's does.
    parent_.codec().setCloseAfterResponse();
  }
  auto headers = std::make_unique<Http::ResponseHeaderMap>();
  headers->setStatus(code);
  if (!body.empty()) {
    headers->addCopy(Http::Headers::ContentType, "text/plain");
  }
  if (overloaded_reply_) {
    headers->addCopy("x-envoy-overloaded", "true");
  }
  // RFC 9110 8.6: no Content-Length on a 204 (the route timeout's alternate response).
  if (code != 204) {
    headers->addCopy(Http::Headers::ContentLength, std::to_string(body.size()));
  }
  if (route_entry_ != nullptr && route_entry_->action() == Router::RouteAction::DirectResponse) {
    // RFC 9110 10.2.2: a 201 or 3xx direct response points at the request's own URI (Envoy's
    // router does the same).
    if ((code == 201 || (code >= 300 && code < 400)) && request_headers_ != nullptr &&
        !request_headers_->path().empty()) {
      headers->addCopy(Http::Headers::Location, route_entry_->requestUri(*request_headers_));
    }
    route_entry_->finalizeResponseHeaders(*headers);
  }
  // A gRPC client gets a trailers-only response (Envoy's encodeLocalReply).
  if (request_headers_ != nullptr && Grpc::isGrpcRequestHeaders(*request_headers_)) {
    Grpc::toTrailersOnlyLocalReply(*headers, code, body, grpc_status);
    body = {};
  }
  response_headers_ = std::move(headers);
  if (body.empty()) {
    encodeResponseHeaders(*response_headers_, true);
    return;
  }
  encodeResponseHeaders(*response_headers_, false);
  Buffer::Instance data;
  data.add(body);
  encodeResponseData(data, true);
}

void ActiveStream::onResponseComplete() {
  response_complete_ = true;
  router_->onResponseComplete();
  finish();
  // If the request is not complete yet its remaining bytes cannot be skipped reliably: close.
  parent_.onStreamComplete(/*close_connection=*/!request_complete_);
}

void ActiveStream::onDownstreamReset(std::string_view details) {
  if (finished_) {
    return;
  }
  info_.setFlag(StreamInfo::DownstreamConnectionTermination);
  if (!details.empty()) {
    info_.response_code_details = std::string(details);
  }
  parent_.stats().downstream_rq_rx_reset.inc();
  router_->resetUpstream();
  finish();
}

void ActiveStream::onResetStream(Http::StreamResetReason) {
  onDownstreamReset();
}

void ActiveStream::onAboveWriteBufferHighWatermark() {
  router_->readDisableUpstream(true);
}
void ActiveStream::onBelowWriteBufferLowWatermark() {
  router_->readDisableUpstream(false);
}

Event::Dispatcher& ActiveStream::dispatcher() {
  return parent_.connection().dispatcher();
}
Event::Timer& ActiveStream::routeTimer() {
  return parent_.routeTimer();
}

void ActiveStream::readDisableDownstream(bool disable) {
  if (downstream_read_disabled_ == disable) {
    return;
  }
  downstream_read_disabled_ = disable;
  parent_.countFlowControl(disable);
  parent_.readDisable(disable);
}

void ActiveStream::finish() {
  if (finished_) {
    return;
  }
  finished_ = true;
  parent_.disableStreamTimers();
  readDisableDownstream(false);
  router_->onStreamComplete();
  encoder_.getStream().removeCallbacks(*this);
  info_.end_monotonic = parent_.connection().dispatcher().approximateMonotonicTime();
  if (info_.response_code != 0) {
    parent_.countResponse(info_.response_code);
    parent_.stats().downstream_rq_completed.inc();
  }
  for (const AccessLogSharedPtr& log : parent_.config().access_logs) {
    log->log(request_headers_.get(), response_headers_.get(), info_);
  }
  if (info_.response_flags != 0) {
    spdlog::debug("[C{}] {} {} -> {} {}", parent_.connection().id(),
                  request_headers_ ? request_headers_->method() : "-",
                  request_headers_ ? request_headers_->path() : "-", info_.response_code,
                  StreamInfo::responseFlagsToString(info_));
  }
}

}  // namespace

NetworkFilterPtr createHttpConnectionManager(HcmConfigConstSharedPtr config, HcmContext context,
                                             Network::Connection& connection) {
  return std::make_unique<ConnectionManagerImpl>(std::move(config), context, connection);
}

}  // namespace Proxy::Filters
