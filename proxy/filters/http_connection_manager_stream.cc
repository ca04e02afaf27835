// An HTTP connection manager stream (ActiveStream, declared in http_connection_manager_impl.h):
// the request from the codec through header sanitising, path normalisation and routing to the
// router filter, and the response back, local replies included. Its timers are
// http_connection_manager_timers.cc; its connection http_connection_manager.cc.

#include <cstdio>
#include <ctime>
#include <utility>

#include "proxy/filters/http_connection_manager_impl.h"
#include "spdlog/spdlog.h"

namespace Proxy::Filters::Hcm {

// Per-worker randomness: request ids and weighted cluster picks. Seeded once per thread.
std::mt19937_64& threadRandom() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

namespace {

// A version-4 UUID, as Envoy's default request id extension generates, in lower-case hex
// ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"). Formatted by hand into a per-thread buffer, valid
// until the thread's next call: no str_format and no allocation per request (issue 14).
std::string_view uuid4() {
  std::mt19937_64& rng = threadRandom();
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  static constexpr char kHex[] = "0123456789abcdef";
  thread_local char out[36];
  size_t pos = 0;
  const auto put = [&](uint64_t value, int digits) {
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) {
      out[pos++] = kHex[(value >> shift) & 0xf];
    }
  };
  put(hi >> 32, 8);
  out[pos++] = '-';
  put((hi >> 16) & 0xffff, 4);
  out[pos++] = '-';
  put(hi & 0xffff, 4);
  out[pos++] = '-';
  put(lo >> 48, 4);
  out[pos++] = '-';
  put(lo & 0xffffffffffffULL, 12);
  return std::string_view(out, pos);
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

}  // namespace

ActiveStream::ActiveStream(ConnectionManagerImpl& parent, Http::ResponseEncoder& encoder,
                           StreamTimers* timers)
    : parent_(parent),
      encoder_(encoder),
      http2_(parent.isHttp2()),
      idle_timeout_(parent.config().stream_idle_timeout),
      own_timers_(timers == nullptr
                      ? std::make_unique<StreamTimers>(parent.connection().dispatcher())
                      : nullptr),
      timers_(timers == nullptr ? own_timers_.get() : timers),
      router_(Router::createFilter(parent.routerConfig(), *this)) {
  Event::Dispatcher& dispatcher = parent_.connection().dispatcher();
  info_.start_monotonic = dispatcher.approximateMonotonicTime();
  info_.start_system = dispatcher.timeSource().systemTime();
  info_.downstream_remote = parent_.connection().remoteAddress();
  info_.downstream_local = parent_.connection().localAddress();
  encoder_.getStream().addCallbacks(*this);
  HcmStats& stats = parent_.stats();
  stats.downstream_rq_total.inc();
  (http2_ ? stats.downstream_rq_http2_total : stats.downstream_rq_http1_total).inc();
  stats.downstream_rq_active.inc();
  timers_->attach(this);
  startTimers();
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
  timers_->disable(StreamTimer::RequestHeaders);
  resetIdleTimer();

  // HTTP/1's codec refuses a request without Host itself; an HTTP/2 request may lack
  // :authority (and Host): Envoy answers 400.
  if (!request_headers_->has(Http::Headers::Authority)) {
    if (end_stream) {
      onRequestComplete();
    }
    sendLocalReply(400, "", StreamInfo::DownstreamProtocolError, "missing_host_header");
    return;
  }

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
  ConnManagerUtility::mutateRequestHeaders(*request_headers_, parent_.remoteIp(),
                                           parent_.connection().secure(),
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
    setIdleTimeout(*route_entry_->idleTimeout());
  }
  resetIdleTimer();
  refreshDurationTimeout();
  router_->decodeHeaders();
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
  timers_->disable(StreamTimer::Request);
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
    // Mid-response there is no way to signal an error on HTTP/1 but to cut the connection;
    // HTTP/2 resets the stream alone. A reset sent, in Envoy's words.
    parent_.stats().downstream_rq_tx_reset.inc();
    router_->resetUpstream();
    finish();
    if (http2_) {
      encoder_.getStream().resetStream(Http::StreamResetReason::LocalReset);
    }
    parent_.onStreamComplete(*this, /*close_connection=*/true);
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
  // Only a body gets a Content-Length here, as in Envoy's local replies: a headers-only
  // response gets "content-length: 0" from the HTTP/1 codec and none on HTTP/2.
  // RFC 9110 8.6: never on a 204 (the route timeout's alternate response).
  if (overloaded_reply_) {
    headers->addCopy("x-envoy-overloaded", "true");
  }
  if (!body.empty()) {
    headers->addCopy(Http::Headers::ContentType, "text/plain");
    if (code != 204) {
      headers->addCopy(Http::Headers::ContentLength, std::to_string(body.size()));
    }
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
  // If the request is not complete yet its remaining bytes cannot be skipped reliably: HTTP/1
  // closes; HTTP/2 resets the stream (RST_STREAM NO_ERROR: the client may stop sending).
  if (http2_ && !request_complete_) {
    encoder_.getStream().resetStream(Http::StreamResetReason::LocalReset);
  }
  parent_.onStreamComplete(*this, /*close_connection=*/!request_complete_);
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

void ActiveStream::onResetStream(Http::StreamResetReason reason) {
  if (!http2_) {
    onDownstreamReset();
    return;
  }
  // HTTP/2: this stream alone ends; the connection goes on. A reset the codec sent itself (bad
  // headers, over the header limits) counts as sent, not received.
  if (finished_) {
    return;
  }
  if (reason == Http::StreamResetReason::RemoteReset) {
    info_.setFlag(StreamInfo::DownstreamConnectionTermination);
    parent_.stats().downstream_rq_rx_reset.inc();
  } else {
    info_.setFlag(StreamInfo::LocalReset);
    parent_.stats().downstream_rq_tx_reset.inc();
  }
  router_->resetUpstream();
  finish();
  parent_.onStreamComplete(*this, /*close_connection=*/false);
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

void ActiveStream::readDisableDownstream(bool disable) {
  if (downstream_read_disabled_ == disable) {
    return;
  }
  downstream_read_disabled_ = disable;
  parent_.countFlowControl(disable);
  // HTTP/1: the connection (one stream); HTTP/2: this stream's window only.
  encoder_.getStream().readDisable(disable);
}

void ActiveStream::finish() {
  if (finished_) {
    return;
  }
  finished_ = true;
  timers_->attach(nullptr);  // every stream timer off (HTTP/1: the next stream takes them)
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

}  // namespace Proxy::Filters::Hcm
