#include "proxy/http/http1/client_connection_impl.h"

#include <charconv>
#include <memory>
#include <string>

#include "proxy/common/assert.h"
#include "proxy/http/http1/codec_helpers.h"

namespace Proxy::Http {
namespace {

using Http1Helpers::HeaderBlockWriter;
using Http1Helpers::isHopByHop;
using Http1Helpers::kCrlf;
using Http1Helpers::kFramingLineRoom;
using Http1Helpers::kReservedHeaders;

// Methods whose requests go upstream without "content-length: 0" when they have no body
// (Envoy's list; RFC 9110 9.3.7 lets OPTIONS carry content, so it gets the explicit zero).
bool isBodilessMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "DELETE" || method == "TRACE";
}

}  // namespace

ClientConnectionImpl::ClientConnectionImpl(CodecOutput& output, const Http1Settings& settings)
    : Http1ConnectionBase(output, HTTP_RESPONSE, settings.max_response_headers_kb * 1024,
                          settings.max_headers_count, /*error_http_code=*/502) {
  enable_trailers_ = settings.enable_trailers;
}

absl::Status ClientConnectionImpl::dispatch(Buffer::Instance& data) {
  ASSERT(!dispatching_);
  if (hasError()) {
    return errorStatus();
  }
  if (closed_) {
    data.drain(data.length());  // after a reset nothing on this connection is meaningful
    return absl::OkStatus();
  }
  dispatching_ = true;
  const absl::Status status = dispatchBase(data);
  dispatching_ = false;
  if (!status.ok()) {
    closed_ = true;
    resetActive(StreamResetReason::ProtocolError);
  }
  return status;
}

void ClientConnectionImpl::onUnderlyingConnectionAboveWriteBufferHighWatermark() {
  above_high_watermark_ = true;
  if (decoder_ != nullptr) {
    encoder_.callbacks_.runAboveHighWatermark();
  }
}

void ClientConnectionImpl::onUnderlyingConnectionBelowWriteBufferLowWatermark() {
  above_high_watermark_ = false;
  if (decoder_ != nullptr) {
    encoder_.callbacks_.runBelowLowWatermark();
  }
}

RequestEncoder& ClientConnectionImpl::newStream(ResponseDecoder& response_decoder) {
  ASSERT(decoder_ == nullptr && !closed_);
  decoder_ = &response_decoder;
  request_started_ = false;
  request_complete_ = false;
  request_chunked_ = false;
  head_request_ = false;
  headers_delivered_ = false;
  headers_deferred_ = false;
  encoder_.callbacks_.clear();
  return encoder_;
}

void ClientConnectionImpl::onConnectionClose() {
  if (closed_) {
    return;
  }
  closed_ = true;
  remote_wants_close_ = true;
  if (decoder_ == nullptr) {
    return;
  }
  // A response without Content-Length or chunking ends with the connection (RFC 9112 6.3):
  // llhttp_finish() runs on_message_complete for it.
  if (headers_delivered_ && !hasError() && llhttp_message_needs_eof(&parser_) != 0) {
    if (llhttp_finish(&parser_) == HPE_OK && decoder_ == nullptr) {
      return;
    }
  }
  // A response cut short (its head or its body incomplete) is malformed, as Envoy's parser
  // judges the end of input; a connection closed before any byte of a response was terminated.
  const bool response_begun = headers_delivered_ || headers_ != nullptr;
  close_reset_reason_ =
      response_begun ? StreamResetReason::ProtocolError : StreamResetReason::ConnectionTermination;
  resetActive(close_reset_reason_);
}

void ClientConnectionImpl::resetActive(StreamResetReason reason) {
  remote_wants_close_ = true;
  if (decoder_ == nullptr) {
    return;
  }
  decoder_ = nullptr;
  headers_.reset();
  trailers_.reset();
  encoder_.callbacks_.runReset(reason);
}

int ClientConnectionImpl::onMessageBeginImpl() {
  if (decoder_ == nullptr) {
    return fail(502, "http1.unexpected_response", "response with no request outstanding");
  }
  beginMessage();
  headers_ = std::make_unique<ResponseHeaderMap>();
  headers_->reserve(kReservedHeaders);
  trailers_.reset();
  informational_ = false;
  headers_deferred_ = false;
  return 0;
}

int ClientConnectionImpl::onStatusComplete() {
  char digits[8];
  const auto result = std::to_chars(digits, digits + sizeof(digits), parser_.status_code);
  headers_->addCopy(Headers::Status,
                    std::string_view(digits, static_cast<size_t>(result.ptr - digits)));
  return 0;
}

int ClientConnectionImpl::onHeader(std::string_view name, std::string_view value) {
  headers_->addCopy(name, value);
  return 0;
}

int ClientConnectionImpl::onTrailer(std::string_view name, std::string_view value) {
  if (trailers_ == nullptr) {
    trailers_ = std::make_unique<ResponseTrailerMap>();
  }
  trailers_->addCopy(name, value);
  return 0;
}

int ClientConnectionImpl::onHeadersCompleteImpl() {
  if (parser_.http_major != 1) {
    return fail(502, "http1.unsupported_http_version", "unsupported HTTP version");
  }
  const uint32_t status = parser_.status_code;
  if (!headers_->has(Headers::Status)) {
    onStatusComplete();
  }
  if (status == 101) {
    // We never ask for an upgrade, so switching protocols is a protocol error.
    return fail(502, "http1.unexpected_upgrade", "unexpected 101 response");
  }
  if (int rc = checkFraming(); rc != 0) {
    return rc;
  }
  if (status < 200) {
    // 1xx: informational, no body; the final response follows on the same exchange.
    informational_ = true;
    if (status == 100 && decoder_ != nullptr) {
      decoder_->decode100ContinueHeaders(std::move(headers_));
    }
    return 1;
  }
  const bool http11 = parser_.http_minor >= 1;
  if ((http11 && (parser_.flags & F_CONNECTION_CLOSE) != 0) ||
      (!http11 && (parser_.flags & F_CONNECTION_KEEP_ALIVE) == 0)) {
    remote_wants_close_ = true;
  }
  const bool skip_body = head_request_ || status == 204 || status == 304;
  const bool has_body = !skip_body && (bodyIsChunked() || contentLength() > 0 ||
                                       llhttp_message_needs_eof(&parser_) != 0);
  if (has_body) {
    headers_delivered_ = true;
    if (decoder_ != nullptr) {
      decoder_->decodeHeaders(std::move(headers_), /*end_stream=*/false);
    }
  } else {
    headers_deferred_ = true;
  }
  // 1 tells llhttp there is no body whatever the headers say (HEAD, 204, 304).
  return skip_body ? 1 : 0;
}

int ClientConnectionImpl::onMessageCompleteImpl() {
  if (informational_) {
    informational_ = false;
    return 0;
  }
  if (llhttp_should_keep_alive(&parser_) == 0) {
    remote_wants_close_ = true;  // includes a body delimited by the close
  }
  if (!request_complete_) {
    remote_wants_close_ = true;  // an early response: the rest of the request cannot follow
  }
  // The exchange is over before the decoder hears end_stream, so it may start the next
  // request on this connection from inside the callback.
  ResponseDecoder* decoder = decoder_;
  decoder_ = nullptr;
  if (decoder != nullptr) {
    if (headers_deferred_) {
      headers_deferred_ = false;
      decoder->decodeHeaders(std::move(headers_), /*end_stream=*/true);
    } else if (trailers_ != nullptr) {
      if (body_buffer_.length() > 0) {
        decoder->decodeData(body_buffer_, /*end_stream=*/false);
      }
      decoder->decodeTrailers(std::move(trailers_));
    } else {
      decoder->decodeData(body_buffer_, /*end_stream=*/true);
    }
  }
  trailers_.reset();
  body_buffer_.drain(body_buffer_.length());
  return 0;
}

void ClientConnectionImpl::flushBody() {
  if (decoder_ != nullptr && !informational_) {
    decoder_->decodeData(body_buffer_, /*end_stream=*/false);
  }
}

void ClientConnectionImpl::RequestEncoderImpl::encodeHeaders(const RequestHeaderMap& headers,
                                                             bool end_stream) {
  ClientConnectionImpl& c = parent_;
  ASSERT(c.decoder_ != nullptr && !c.request_started_);
  if (c.decoder_ == nullptr || c.request_started_) {
    return;
  }
  c.request_started_ = true;
  const std::string_view method = headers.method();
  const std::string_view path = headers.path();
  const std::string_view authority = headers.host();
  // A request with an empty Host ("Host:" and nothing) goes up with an empty one, as Envoy
  // sends it; only a request without :authority at all has none.
  const bool has_authority = headers.has(Headers::Authority);
  c.head_request_ = method == "HEAD";

  {
    // Request line, Host, the lines, one framing line and the blank line.
    HeaderBlockWriter out(c.scratch_, method.size() + path.size() + 16 + authority.size() + 8 +
                                          HeaderBlockWriter::linesSize(headers) + kFramingLineRoom +
                                          2);
    out.add(method);
    out.add(" ");
    out.add(path.empty() ? std::string_view("/") : path);
    out.add(" HTTP/1.1\r\n");
    if (has_authority) {
      out.addLine(Headers::Host, authority);
    }
    bool saw_content_length = false;
    for (const HeaderEntry& entry : headers) {
      if (entry.key.empty() || entry.key[0] == ':' || isHopByHop(entry.key) ||
          (entry.key == Headers::Host && has_authority)) {
        continue;
      }
      if (entry.key == Headers::ContentLength) {
        saw_content_length = true;
      }
      out.addLine(entry.key, entry.value);
    }
    c.request_chunked_ = false;
    if (!saw_content_length) {
      if (end_stream) {
        if (!isBodilessMethod(method)) {
          out.addLine(Headers::ContentLength, "0");
        }
      } else {
        out.addLine(Headers::TransferEncoding, "chunked");
        c.request_chunked_ = true;
      }
    }
    out.add(kCrlf);
  }
  c.pending_output_.add(c.scratch_);
  // Written at once: with "expect: 100-continue" the body waits for the server's answer.
  c.flushOutput();
  if (end_stream) {
    c.request_complete_ = true;
  }
}

void ClientConnectionImpl::RequestEncoderImpl::encodeData(Buffer::Instance& data, bool end_stream) {
  ClientConnectionImpl& c = parent_;
  if (c.decoder_ == nullptr || !c.request_started_ || c.request_complete_) {
    // The exchange ended (early response or reset): the rest of the body has nowhere to go.
    data.drain(data.length());
    return;
  }
  if (c.request_chunked_) {
    c.encodeChunkedData(data, end_stream);
  } else {
    c.pending_output_.move(data);
  }
  c.flushOutput();
  if (end_stream) {
    c.request_complete_ = true;
  }
}

void ClientConnectionImpl::RequestEncoderImpl::encodeTrailers(const RequestTrailerMap& trailers) {
  ClientConnectionImpl& c = parent_;
  if (c.decoder_ == nullptr || !c.request_started_ || c.request_complete_) {
    return;
  }
  // Only a chunked body can carry trailers; a Content-Length body just ends.
  if (c.request_chunked_) {
    c.encodeLastChunk(trailers);
  }
  c.flushOutput();
  c.request_complete_ = true;
}

void ClientConnectionImpl::RequestEncoderImpl::addCallbacks(StreamCallbacks& callbacks) {
  callbacks_.add(callbacks, parent_.above_high_watermark_);
}

void ClientConnectionImpl::RequestEncoderImpl::resetStream(StreamResetReason reason) {
  ClientConnectionImpl& c = parent_;
  // Half a request or response on the wire: the connection cannot carry another exchange.
  c.closed_ = true;
  c.pending_output_.drain(c.pending_output_.length());
  c.resetActive(reason);
}

}  // namespace Proxy::Http
