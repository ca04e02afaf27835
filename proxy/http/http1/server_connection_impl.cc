#include "proxy/http/http1/server_connection_impl.h"

#include <memory>
#include <string>

#include "proxy/common/assert.h"
#include "proxy/common/string_util.h"
#include "proxy/http/http1/codec_helpers.h"
#include "proxy/http/utility.h"

namespace Proxy::Http {
namespace {

using Http1Helpers::HeaderBlockWriter;
using Http1Helpers::isHopByHop;
using Http1Helpers::kCodecError;
using Http1Helpers::kCrlf;
using Http1Helpers::kFramingLineRoom;
using Http1Helpers::kReservedHeaders;

constexpr std::string_view k100Continue = "HTTP/1.1 100 Continue\r\n\r\n";

using StringUtil::equalsIgnoreCase;

std::string_view stripWhitespace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

ServerConnectionImpl::ServerConnectionImpl(CodecOutput& output,
                                           ServerConnectionCallbacks& callbacks,
                                           const Http1Settings& settings)
    : Http1ConnectionBase(output, HTTP_REQUEST, settings.max_request_headers_kb * 1024,
                          settings.max_headers_count, /*error_http_code=*/400),
      callbacks_(callbacks),
      accept_http_10_(settings.accept_http_10),
      default_host_for_http_10_(settings.default_host_for_http_10) {
  enable_trailers_ = settings.enable_trailers;
}

absl::Status ServerConnectionImpl::dispatch(Buffer::Instance& data) {
  ASSERT(!dispatching_);
  if (hasError()) {
    return errorStatus();
  }
  if (connection_done_) {
    return absl::OkStatus();  // closing: whatever follows is never parsed
  }
  if (read_disabled_for_watermark_) {
    return absl::OkStatus();  // the next request waits for the low watermark
  }
  if (!(stream_active_ && request_complete_)) {
    dispatching_ = true;
    answered_in_dispatch_ = 0;
    const absl::Status status = dispatchBase(data);
    dispatching_ = false;
    if (!status.ok()) {
      // The owner answers with lastError() on the active stream; nothing more is decoded.
      decoder_ = nullptr;
      headers_.reset();
      close_after_response_ = true;
      connection_done_ = true;
    }
    flushOutput();
    if (!status.ok()) {
      return status;
    }
  }
  if (yielded_) {
    // Answered kMaxRequestsPerDispatch requests: the rest is offered again from the event
    // loop (re-enabling reading makes the connection re-offer the bytes it holds, on the next
    // iteration), after the finished streams were deleted and other connections had a turn.
    yielded_ = false;
    if (data.length() > 0 && !connection_done_ && !read_disabled_for_watermark_) {
      output_.readDisable(true);
      output_.readDisable(false);
    }
  }
  // A complete request is waiting for its response: hold back the next one (back-pressure on
  // pipelining clients) until onResponseEncodeComplete() re-enables reading.
  if (stream_active_ && request_complete_ && data.length() > 0 && !connection_done_ &&
      !read_disabled_for_pipelining_) {
    read_disabled_for_pipelining_ = true;
    output_.readDisable(true);
  }
  return absl::OkStatus();
}

void ServerConnectionImpl::onUnderlyingConnectionAboveWriteBufferHighWatermark() {
  above_high_watermark_ = true;
  if (stream_active_) {
    encoder_.callbacks_.runAboveHighWatermark();
  } else {
    pauseForWatermark();
  }
}

void ServerConnectionImpl::onUnderlyingConnectionBelowWriteBufferLowWatermark() {
  above_high_watermark_ = false;
  if (stream_active_) {
    encoder_.callbacks_.runBelowLowWatermark();
  }
  if (read_disabled_for_watermark_) {
    read_disabled_for_watermark_ = false;
    callbacks_.onReadingPaused(false);
    // The connection re-offers the requests it holds from the event loop, not from here.
    output_.readDisable(false);
  }
}

void ServerConnectionImpl::pauseForWatermark() {
  if (read_disabled_for_watermark_ || connection_done_ || stream_active_) {
    return;
  }
  read_disabled_for_watermark_ = true;
  callbacks_.onReadingPaused(true);
  output_.readDisable(true);
}

int ServerConnectionImpl::onMessageBeginImpl() {
  // onMessageCompleteImpl() pauses until the stream is finished, so a message only begins
  // on an idle connection.
  ASSERT(!stream_active_ && !connection_done_);
  if (stream_active_ || connection_done_) {
    return fail(400, kCodecError, "request began while another is active");
  }
  beginMessage();
  // llhttp keeps the previous request's version until it reads this one's: onInvalidVersion()
  // must not take a keep-alive predecessor's "1" for this request's major version.
  parser_.http_major = 0;
  parser_.http_minor = 0;
  headers_ = std::make_unique<RequestHeaderMap>();
  headers_->reserve(kReservedHeaders);
  trailers_.reset();
  stream_active_ = true;
  request_complete_ = false;
  headers_deferred_ = false;
  saw_host_ = false;
  http10_ = false;
  head_request_ = false;
  response_started_ = false;
  response_complete_ = false;
  response_chunked_ = false;
  response_bodiless_ = false;
  encoder_.callbacks_.clear();
  decoder_ = &callbacks_.newStream(encoder_);
  return 0;
}

int ServerConnectionImpl::onUrlComplete() {
  // Pseudo-headers first, as HTTP/2 orders them; an absolute-form target is rewritten later.
  headers_->addCopy(Headers::Method,
                    llhttp_method_name(static_cast<llhttp_method_t>(parser_.method)));
  headers_->addCopy(Headers::Path, url_);
  headers_->addCopy(Headers::Scheme, "http");
  return 0;
}

int ServerConnectionImpl::onHeader(std::string_view name, std::string_view value) {
  if (name == Headers::Host) {
    // RFC 9112 3.2: more than one Host is a 400.
    if (saw_host_) {
      return fail(400, "http1.duplicate_host_header", "more than one Host header");
    }
    saw_host_ = true;
    headers_->addCopy(Headers::Authority, value);
    return 0;
  }
  headers_->addCopy(name, value);
  return 0;
}

int ServerConnectionImpl::onTrailer(std::string_view name, std::string_view value) {
  if (trailers_ == nullptr) {
    trailers_ = std::make_unique<RequestTrailerMap>();
  }
  trailers_->addCopy(name, value);
  return 0;
}

int ServerConnectionImpl::onInvalidVersion() {
  // llhttp knows HTTP/0.9, 1.0, 1.1 and 2.0 and stops at any other after storing its digits;
  // Envoy takes every HTTP/1.x but 1.1 for a low version. An accepted one would be served as
  // HTTP/1.0 by Envoy, but llhttp cannot go on parsing: that stays a 400.
  if (parser_.http_major == 1 && !accept_http_10_) {
    return fail(426, "low_version", "HTTP/1.0 is not accepted (accept_http_10)");
  }
  return 0;
}

int ServerConnectionImpl::onHeadersCompleteImpl() {
  if (parser_.http_major != 1) {
    return fail(505, "http1.unsupported_http_version", "unsupported HTTP version");
  }
  http10_ = parser_.http_minor == 0;
  // Envoy treats every 1.x other than 1.1 (HTTP/1.0, also "HTTP/1.2") as a low version.
  if (parser_.http_minor != 1 && !accept_http_10_) {
    // Envoy: "Upgrade required for HTTP/1.0 or HTTP/0.9", answered 426 and closed.
    return fail(426, "low_version", "HTTP/1.0 is not accepted (accept_http_10)");
  }
  if (parser_.method == HTTP_CONNECT) {
    return fail(405, "http1.connect_not_supported", "CONNECT is not supported");
  }
  if (int rc = checkFraming(); rc != 0) {
    return rc;
  }
  if (int rc = resolveRequestTarget(); rc != 0) {
    return rc;
  }
  if (!headers_->has(Headers::Authority)) {
    // An HTTP/1.0 request may come without Host; Envoy gives it the configured default, and
    // never forwards a request with none.
    if (http10_ && !default_host_for_http_10_.empty()) {
      headers_->addCopy(Headers::Authority, default_host_for_http_10_);
    } else {
      return fail(400, "missing_host_header", "request without Host");
    }
  }
  if (llhttp_get_upgrade(&parser_) != 0) {
    stripUpgrade();
  }
  // HTTP/1.1 unless "connection: close"; HTTP/1.0 only with "connection: keep-alive".
  if (llhttp_should_keep_alive(&parser_) == 0) {
    close_after_response_ = true;
  }
  head_request_ = parser_.method == HTTP_HEAD;
  if (bodyIsChunked() || contentLength() > 0) {
    if (decoder_ != nullptr) {
      decoder_->decodeHeaders(std::move(headers_), /*end_stream=*/false);
    }
  } else {
    // No body: decodeHeaders() runs from onMessageCompleteImpl() with end_stream=true.
    headers_deferred_ = true;
  }
  return 0;
}

int ServerConnectionImpl::resolveRequestTarget() {
  const std::string_view url = url_;
  if (!url.empty() && url[0] == '/') {
    return 0;  // origin-form, the common case
  }
  if (url == "*") {
    return parser_.method == HTTP_OPTIONS ? 0 : fail(400, "http1.invalid_url", "invalid url");
  }
  // Absolute-form (RFC 9112 3.2.2): the target's authority replaces any Host header.
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    return fail(400, "http1.invalid_url", "invalid url");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  if (equalsIgnoreCase(scheme, "https")) {
    return fail(400, "http1.https_url_on_plaintext_connection", "https url on plaintext");
  }
  if (!equalsIgnoreCase(scheme, "http")) {
    return fail(400, "http1.invalid_scheme", "invalid scheme");
  }
  const std::string_view rest = url.substr(scheme_end + 3);
  const size_t path_start = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, path_start);
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    return fail(400, "http1.invalid_url", "invalid url");
  }
  std::string path;
  if (path_start == std::string_view::npos) {
    path = "/";
  } else if (rest[path_start] == '?') {
    path = "/";
    path.append(rest.substr(path_start));
  } else {
    path = std::string(rest.substr(path_start));
  }
  headers_->setCopy(Headers::Authority, authority);
  headers_->setCopy(Headers::Path, path);
  return 0;
}

void ServerConnectionImpl::stripUpgrade() {
  // The request is served as plain HTTP/1.1, so it must not ask the upstream to switch either.
  headers_->remove(Headers::Upgrade);
  std::string kept;
  for (const HeaderEntry& entry : *headers_) {
    if (entry.key != Headers::Connection) {
      continue;
    }
    std::string_view list = entry.value;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view token = stripWhitespace(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (token.empty() || equalsIgnoreCase(token, "upgrade")) {
        continue;
      }
      if (!kept.empty()) {
        kept.append(", ");
      }
      kept.append(token);
    }
  }
  headers_->remove(Headers::Connection);
  if (!kept.empty()) {
    headers_->addCopy(Headers::Connection, kept);
  }
}

int ServerConnectionImpl::onMessageCompleteImpl() {
  request_complete_ = true;
  if (decoder_ != nullptr) {
    // The decoder may answer synchronously (a local reply), finishing the stream right here.
    if (headers_deferred_) {
      headers_deferred_ = false;
      decoder_->decodeHeaders(std::move(headers_), /*end_stream=*/true);
    } else if (trailers_ != nullptr) {
      // The body bytes parsed in this dispatch go first; the trailers end the request.
      if (body_buffer_.length() > 0) {
        decoder_->decodeData(body_buffer_, /*end_stream=*/false);
      }
      if (decoder_ != nullptr) {
        decoder_->decodeTrailers(std::move(trailers_));
      }
    } else {
      decoder_->decodeData(body_buffer_, /*end_stream=*/true);
    }
  }
  trailers_.reset();
  body_buffer_.drain(body_buffer_.length());
  if (stream_active_ && response_complete_) {
    finishStream();
  }
  if (stream_active_ || connection_done_ || read_disabled_for_watermark_) {
    // One request at a time: stop here; the next request's bytes stay in the owner's buffer.
    // Also when the response went out but left the write buffer above its high watermark:
    // answering more requests now would only grow it (a client that pipelines and never
    // reads).
    return HPE_PAUSED;
  }
  if (++answered_in_dispatch_ >= kMaxRequestsPerDispatch) {
    yielded_ = true;
    return HPE_PAUSED;
  }
  return 0;  // the response is already out: go straight on to a pipelined request
}

void ServerConnectionImpl::flushBody() {
  if (decoder_ != nullptr) {
    decoder_->decodeData(body_buffer_, /*end_stream=*/false);
  }
}

void ServerConnectionImpl::onResponseEncodeComplete() {
  response_complete_ = true;
  decoder_ = nullptr;  // the owner's stream may be gone after this
  bool resume_reading = false;
  if (request_complete_) {
    finishStream();
    resume_reading = read_disabled_for_pipelining_ && !connection_done_;
    if (above_high_watermark_) {
      // The response is written but not yet sent: the next request waits for the low
      // watermark (pauseForWatermark() disables reading before the pipelining hold lifts).
      pauseForWatermark();
    }
  } else {
    // The rest of the request body would have to be read and dropped to find the next
    // request; closing is simpler and what Envoy does.
    close_after_response_ = true;
  }
  callbacks_.onResponseComplete();
  if (resume_reading) {
    read_disabled_for_pipelining_ = false;
    output_.readDisable(false);
  }
}

void ServerConnectionImpl::finishStream() {
  stream_active_ = false;
  if (close_after_response_) {
    connection_done_ = true;
  }
}

void ServerConnectionImpl::ResponseEncoderImpl::encode100ContinueHeaders() {
  ServerConnectionImpl& c = parent_;
  if (!c.stream_active_ || c.response_started_) {
    return;
  }
  c.pending_output_.add(k100Continue);
  c.flushOutput();
}

void ServerConnectionImpl::ResponseEncoderImpl::encodeHeaders(const ResponseHeaderMap& headers,
                                                              bool end_stream) {
  ServerConnectionImpl& c = parent_;
  ASSERT(c.stream_active_ && !c.response_started_);
  if (!c.stream_active_ || c.response_started_) {
    return;
  }
  c.response_started_ = true;
  if (!c.request_complete_) {
    // Answering before the request is fully read: see onResponseEncodeComplete().
    c.close_after_response_ = true;
  }
  uint32_t status = headers.status();
  ASSERT(status >= 100 && status <= 999);
  if (status < 100 || status > 999) {
    status = 500;
  }
  const bool no_body_status = status < 200 || status == 204 || status == 304;
  c.response_bodiless_ = no_body_status || c.head_request_;

  const std::string_view reason = Utility::reasonPhrase(status);
  {
    // Status line, the lines, at most two framing lines and the blank line.
    HeaderBlockWriter out(c.scratch_, 16 + reason.size() + HeaderBlockWriter::linesSize(headers) +
                                          2 * kFramingLineRoom + 2);
    // An accepted HTTP/1.0 request gets an HTTP/1.0 answer, as from Envoy; the 426 that
    // refuses one (not accepted) says HTTP/1.1, the version to upgrade to.
    out.add(c.http10_ && c.accept_http_10_ ? "HTTP/1.0 " : "HTTP/1.1 ");
    out.addNumber(status, 10);
    out.add(" ");
    out.add(reason);
    out.add(kCrlf);
    bool saw_content_length = false;
    for (const HeaderEntry& entry : headers) {
      if (entry.key.empty() || entry.key[0] == ':' || isHopByHop(entry.key)) {
        continue;
      }
      if (entry.key == Headers::ContentLength) {
        saw_content_length = true;
      }
      out.addLine(entry.key, entry.value);
    }
    c.response_chunked_ = false;
    if (!saw_content_length && !c.response_bodiless_) {
      if (end_stream) {
        out.addLine(Headers::ContentLength, "0");
      } else if (c.http10_) {
        // No chunking in HTTP/1.0: the body ends when the connection closes.
        c.close_after_response_ = true;
      } else {
        out.addLine(Headers::TransferEncoding, "chunked");
        c.response_chunked_ = true;
      }
    }
    if (c.close_after_response_) {
      out.addLine(Headers::Connection, "close");
    } else if (c.http10_) {
      out.addLine(Headers::Connection, "keep-alive");
    }
    out.add(kCrlf);
  }
  c.pending_output_.add(c.scratch_);
  if (end_stream) {
    c.flushOutput();
    c.onResponseEncodeComplete();
  } else if (!c.dispatching_) {
    c.flushOutput();
  }
  // else: inside dispatch() the header block waits for the body (or the end of dispatch()),
  // so a small local reply leaves in one write.
}

void ServerConnectionImpl::ResponseEncoderImpl::encodeData(Buffer::Instance& data,
                                                           bool end_stream) {
  ServerConnectionImpl& c = parent_;
  if (!c.stream_active_ || !c.response_started_ || c.response_complete_) {
    data.drain(data.length());
    return;
  }
  if (c.response_bodiless_) {
    data.drain(data.length());  // HEAD, 204, 304: bytes here would corrupt the framing
  } else if (c.response_chunked_) {
    c.encodeChunkedData(data, end_stream);
  } else {
    c.pending_output_.move(data);
  }
  c.flushOutput();
  if (end_stream) {
    c.onResponseEncodeComplete();
  }
}

void ServerConnectionImpl::ResponseEncoderImpl::encodeTrailers(const ResponseTrailerMap& trailers) {
  ServerConnectionImpl& c = parent_;
  if (!c.stream_active_ || !c.response_started_ || c.response_complete_) {
    return;
  }
  // Only a chunked body can carry trailers (RFC 9112 7.1.2); otherwise the body just ends.
  if (c.response_chunked_ && !c.response_bodiless_) {
    c.encodeLastChunk(trailers);
  }
  c.flushOutput();
  c.onResponseEncodeComplete();
}

void ServerConnectionImpl::ResponseEncoderImpl::addCallbacks(StreamCallbacks& callbacks) {
  callbacks_.add(callbacks, parent_.above_high_watermark_);
}

void ServerConnectionImpl::ResponseEncoderImpl::resetStream(StreamResetReason reason) {
  ServerConnectionImpl& c = parent_;
  if (!c.stream_active_) {
    return;
  }
  // An HTTP/1 stream cannot be reset on its own: the connection is finished.
  c.decoder_ = nullptr;
  c.close_after_response_ = true;
  c.connection_done_ = true;
  c.response_complete_ = true;
  c.pending_output_.drain(c.pending_output_.length());
  callbacks_.runReset(reason);
}

}  // namespace Proxy::Http
