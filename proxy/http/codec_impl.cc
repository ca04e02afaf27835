#include "proxy/http/codec_impl.h"

#include <charconv>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "proxy/common/assert.h"
#include "proxy/common/header_utility.h"
#include "proxy/common/string_util.h"

namespace Proxy::Http {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::string_view k100Continue = "HTTP/1.1 100 Continue\r\n\r\n";
// Most messages carry fewer headers than this; one allocation covers them.
constexpr size_t kReservedHeaders = 16;
// Details for the errors llhttp finds itself (anything not from the codec's own checks).
constexpr std::string_view kCodecError = "http1.codec_error";

// Connection-scoped headers the codec owns: it writes its own framing and Connection header.
bool isHopByHop(std::string_view name) {
  return name == Headers::Connection || name == Headers::KeepAlive ||
         name == Headers::ProxyConnection || name == Headers::TransferEncoding ||
         name == Headers::Upgrade;
}

// Methods whose requests go upstream without "content-length: 0" when they have no body
// (Envoy's list; RFC 9110 9.3.7 lets OPTIONS carry content, so it gets the explicit zero).
bool isBodilessMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "DELETE" || method == "TRACE";
}

using HeaderUtility::isValidHeaderValue;
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

void appendNumber(std::string& out, uint64_t value, int base) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), value, base);
  out.append(digits, static_cast<size_t>(result.ptr - digits));
}

}  // namespace

std::string_view reasonPhrase(uint32_t code) {
  switch (code) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 207:
      return "Multi-Status";
    case 208:
      return "Already Reported";
    case 226:
      return "IM Used";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 305:
      return "Use Proxy";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Entity";
    case 423:
      return "Locked";
    case 424:
      return "Failed Dependency";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 506:
      return "Variant Also Negotiates";
    case 507:
      return "Insufficient Storage";
    case 508:
      return "Loop Detected";
    case 510:
      return "Not Extended";
    case 511:
      return "Network Authentication Required";
    default:
      return "Unknown";
  }
}

void encodeLocalReply(ResponseEncoder& encoder, uint32_t code, std::string_view body) {
  ResponseHeaderMap headers;
  headers.setStatus(code);
  if (body.empty()) {
    // The codec adds "content-length: 0" itself for a headers-only response.
    encoder.encodeHeaders(headers, /*end_stream=*/true);
    return;
  }
  headers.addCopy(Headers::ContentType, "text/plain");
  headers.addCopy(Headers::ContentLength, std::to_string(body.size()));
  encoder.encodeHeaders(headers, /*end_stream=*/false);
  Buffer::Instance data;
  data.add(body);
  encoder.encodeData(data, /*end_stream=*/true);
}

// llhttp calls plain C functions; these forward to the connection stored in parser->data.
struct LlhttpCallbacks {
  static Http1ConnectionBase& self(llhttp_t* parser) {
    return *static_cast<Http1ConnectionBase*>(parser->data);
  }
  static int onMessageBegin(llhttp_t* p) { return self(p).onMessageBeginImpl(); }
  static int onUrl(llhttp_t* p, const char* at, size_t n) { return self(p).onUrl(at, n); }
  static int onUrlComplete(llhttp_t* p) { return self(p).onUrlComplete(); }
  static int onStatusComplete(llhttp_t* p) { return self(p).onStatusComplete(); }
  static int onHeaderField(llhttp_t* p, const char* at, size_t n) {
    Http1ConnectionBase& s = self(p);
    return s.onData(at, n, s.current_field_);
  }
  static int onHeaderFieldComplete(llhttp_t* p) { return self(p).onHeaderFieldComplete(); }
  static int onHeaderValue(llhttp_t* p, const char* at, size_t n) {
    Http1ConnectionBase& s = self(p);
    return s.onData(at, n, s.current_value_);
  }
  static int onHeaderValueComplete(llhttp_t* p) { return self(p).onHeaderValueComplete(); }
  static int onHeadersComplete(llhttp_t* p) {
    Http1ConnectionBase& s = self(p);
    // Header lines that follow a chunked body are trailers, with their own size budget.
    s.in_trailers_ = true;
    s.header_bytes_ = 0;
    s.headers_count_ = 0;
    return s.onHeadersCompleteImpl();
  }
  static int onBody(llhttp_t* p, const char* at, size_t n) { return self(p).onBody(at, n); }
  static int onMessageComplete(llhttp_t* p) { return self(p).onMessageCompleteImpl(); }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = onMessageBegin;
      s.on_url = onUrl;
      s.on_url_complete = onUrlComplete;
      s.on_status_complete = onStatusComplete;
      s.on_header_field = onHeaderField;
      s.on_header_field_complete = onHeaderFieldComplete;
      s.on_header_value = onHeaderValue;
      s.on_header_value_complete = onHeaderValueComplete;
      s.on_headers_complete = onHeadersComplete;
      s.on_body = onBody;
      s.on_message_complete = onMessageComplete;
      return s;
    }();
    return settings;
  }
};

// ---------------------------------------------------------------------------------------------
// Http1ConnectionBase

Http1ConnectionBase::Http1ConnectionBase(CodecOutput& output, llhttp_type_t type,
                                         uint32_t max_header_bytes, uint32_t max_headers_count,
                                         uint32_t error_http_code)
    : output_(output),
      max_header_bytes_(max_header_bytes),
      max_headers_count_(max_headers_count),
      error_http_code_(error_http_code) {
  llhttp_init(&parser_, type, &LlhttpCallbacks::settings());
  parser_.data = this;
  // Every leniency stays off: each one re-opens a request smuggling or cache poisoning hole
  // (CL+TE, chunked not last, data after "connection: close", loose header values).
  llhttp_set_lenient_headers(&parser_, 0);
  llhttp_set_lenient_chunked_length(&parser_, 0);
  llhttp_set_lenient_keep_alive(&parser_, 0);
  llhttp_set_lenient_transfer_encoding(&parser_, 0);
  scratch_.reserve(512);
}

absl::Status Http1ConnectionBase::dispatchBase(Buffer::Instance& data) {
  if (parser_paused_) {
    llhttp_resume(&parser_);
    parser_paused_ = false;
  }
  dispatch_data_ = &data;
  // Invariant at the top of each pass: the front of `data` is where llhttp stopped. Callbacks
  // may remove bytes of the current slice from the front (body bytes moved to body_buffer_);
  // slice_cursor_ counts those so the rest of the parsed bytes can be drained afterwards.
  while (data.length() > 0) {
    Buffer::RawSlice slice;
    data.getRawSlices(&slice, 1);
    slice_base_ = static_cast<const char*>(slice.mem);
    slice_cursor_ = 0;
    const llhttp_errno_t err = llhttp_execute(&parser_, slice_base_, slice.len);
    uint64_t consumed = slice.len;
    if (err != HPE_OK) {
      consumed = static_cast<uint64_t>(llhttp_get_error_pos(&parser_) - slice_base_);
    }
    if (consumed > slice_cursor_) {
      data.drain(consumed - slice_cursor_);
    }
    if (err == HPE_OK) {
      continue;
    }
    if (err == HPE_PAUSED) {
      // Only onMessageCompleteImpl() pauses: the rest of `data` waits for the response.
      parser_paused_ = true;
      break;
    }
    if (err == HPE_PAUSED_UPGRADE) {
      // The upgrade was refused (served as a plain request): keep parsing HTTP/1.1.
      llhttp_resume_after_upgrade(&parser_);
      continue;
    }
    if (!error_set_) {
      std::string message = llhttp_errno_name(err);
      message.append(": ");
      message.append(llhttp_get_error_reason(&parser_));
      if (err == HPE_INVALID_VERSION && onInvalidVersion() != 0) {
        // Answered by the codec (a low HTTP/1 version).
      } else if (err == HPE_INVALID_TRANSFER_ENCODING) {
        fail(parser_.type == HTTP_REQUEST ? 501 : error_http_code_,
             "http1.invalid_transfer_encoding", message);
      } else if (err == HPE_UNEXPECTED_CONTENT_LENGTH && saw_content_length_ &&
                 saw_transfer_encoding_) {
        fail(error_http_code_, "http1.content_length_and_chunked_not_allowed", message);
      } else {
        fail(error_http_code_, kCodecError, message);
      }
    }
    break;
  }
  dispatch_data_ = nullptr;
  slice_base_ = nullptr;
  if (error_set_) {
    // Body bytes that preceded the error belong to a request that will be refused.
    body_buffer_.drain(body_buffer_.length());
    return errorStatus();
  }
  if (body_buffer_.length() > 0) {
    flushBody();
    body_buffer_.drain(body_buffer_.length());
  }
  return absl::OkStatus();
}

int Http1ConnectionBase::fail(uint32_t http_code, std::string_view details,
                              std::string_view message) {
  if (!error_set_) {
    error_set_ = true;
    error_.http_code = http_code;
    error_.details = std::string(details);
    error_message_ = "http/1.1 protocol error: ";
    error_message_.append(message);
  }
  return -1;
}

absl::Status Http1ConnectionBase::errorStatus() const {
  return absl::InvalidArgumentError(error_message_);
}

void Http1ConnectionBase::beginMessage() {
  current_field_.clear();
  current_value_.clear();
  header_bytes_ = 0;
  headers_count_ = 0;
  in_trailers_ = false;
  saw_content_length_ = false;
  saw_transfer_encoding_ = false;
  transfer_encoding_unsupported_ = false;
  url_.clear();
}

int Http1ConnectionBase::checkFraming() {
  // llhttp refuses both headers before on_headers_complete; checked again so that a change in
  // its leniency defaults can never let a smuggling vector through.
  if (saw_content_length_ && saw_transfer_encoding_) {
    return fail(error_http_code_, "http1.content_length_and_chunked_not_allowed",
                "both Content-Length and Transfer-Encoding");
  }
  // RFC 9112 6.1: reject transfer codings we do not understand (Envoy answers 501).
  if (transfer_encoding_unsupported_) {
    return fail(parser_.type == HTTP_REQUEST ? 501 : error_http_code_,
                "http1.invalid_transfer_encoding", "unsupported transfer encoding");
  }
  return 0;
}

int Http1ConnectionBase::onData(const char* at, size_t length, std::string& into) {
  // Checked before appending so a header that never ends cannot grow the buffer unbounded.
  if (header_bytes_ + current_field_.size() + current_value_.size() + length > max_header_bytes_) {
    return fail(parser_.type == HTTP_REQUEST ? 431 : error_http_code_, "http1.headers_too_large",
                "headers size exceeds limit");
  }
  into.append(at, length);
  return 0;
}

int Http1ConnectionBase::onUrl(const char* at, size_t length) {
  if (header_bytes_ + length > max_header_bytes_) {
    return fail(431, "http1.headers_too_large", "headers size exceeds limit");
  }
  header_bytes_ += length;
  url_.append(at, length);
  return 0;
}

int Http1ConnectionBase::onHeaderFieldComplete() {
  // llhttp's loose mode lets some invalid name characters (e.g. spaces) through.
  if (current_field_.empty()) {
    return fail(error_http_code_, "http1.invalid_characters", "empty header name");
  }
  for (char& c : current_field_) {
    if (!HeaderUtility::isTokenChar(c)) {
      return fail(error_http_code_, "http1.invalid_characters", "invalid header name");
    }
    c = absl::ascii_tolower(static_cast<unsigned char>(c));
  }
  return 0;
}

int Http1ConnectionBase::onHeaderValueComplete() {
  // llhttp strips leading whitespace; trailing whitespace is not part of the value either.
  size_t end = current_value_.size();
  while (end > 0 && (current_value_[end - 1] == ' ' || current_value_[end - 1] == '\t')) {
    end--;
  }
  current_value_.resize(end);
  if (!isValidHeaderValue(current_value_)) {
    return fail(error_http_code_, "http1.invalid_characters", "invalid header value");
  }
  if (++headers_count_ > max_headers_count_) {
    return fail(parser_.type == HTTP_REQUEST ? 431 : error_http_code_, "http1.too_many_headers",
                "too many headers");
  }
  header_bytes_ += current_field_.size() + current_value_.size();
  int rc = 0;
  if (!in_trailers_) {
    if (current_field_ == Headers::ContentLength) {
      saw_content_length_ = true;
    } else if (current_field_ == Headers::TransferEncoding) {
      // Only a single, exact "chunked" is understood (as Envoy): "gzip, chunked" would need a
      // decoder, and repeated headers are a smuggling favourite.
      if (saw_transfer_encoding_ || !equalsIgnoreCase(current_value_, "chunked")) {
        transfer_encoding_unsupported_ = true;
      }
      saw_transfer_encoding_ = true;
    }
    rc = onHeader(current_field_, current_value_);
  }
  current_field_.clear();
  current_value_.clear();
  return rc;
}

int Http1ConnectionBase::onBody(const char* at, size_t length) {
  if (!wantsBody()) {
    return 0;  // dropped: drained with the rest of the parsed bytes
  }
  ASSERT(dispatch_data_ != nullptr);
  // `at` points into the front slice of dispatch_data_. Drain what precedes the body bytes
  // (headers, chunk framing) and move the body bytes themselves: whole slices are relinked,
  // not copied. llhttp has read these bytes already and never looks back.
  const uint64_t offset = static_cast<uint64_t>(at - slice_base_);
  ASSERT(offset >= slice_cursor_);
  dispatch_data_->drain(offset - slice_cursor_);
  body_buffer_.move(*dispatch_data_, length);
  slice_cursor_ = offset + length;
  return 0;
}

void Http1ConnectionBase::flushOutput() {
  if (pending_output_.length() == 0) {
    return;
  }
  output_.write(pending_output_, /*end_stream=*/false);
  // write() takes the bytes; an owner that copied instead must not see them twice.
  if (pending_output_.length() > 0) {
    pending_output_.drain(pending_output_.length());
  }
}

void Http1ConnectionBase::encodeChunkedData(Buffer::Instance& data, bool end_stream) {
  const uint64_t length = data.length();
  if (length > 0) {
    scratch_.clear();
    appendNumber(scratch_, length, 16);
    scratch_.append(kCrlf);
    pending_output_.add(scratch_);
    pending_output_.move(data);
    pending_output_.add(kCrlf);
  }
  if (end_stream) {
    pending_output_.add(kLastChunk);
  }
}

void Http1ConnectionBase::appendHeaderLine(std::string_view name, std::string_view value) {
  scratch_.append(name);
  scratch_.append(": ");
  scratch_.append(value);
  scratch_.append(kCrlf);
}

// ---------------------------------------------------------------------------------------------
// StreamCallbackList

void StreamCallbackList::add(StreamCallbacks& callbacks, bool above_high_watermark) {
  callbacks_.push_back(&callbacks);
  // A stream that starts while the connection is backed up must hear about it at once.
  if (above_high_watermark) {
    callbacks.onAboveWriteBufferHighWatermark();
  }
}

void StreamCallbackList::remove(StreamCallbacks& callbacks) {
  // Nulled rather than erased: remove() may run from inside one of the run*() loops.
  for (StreamCallbacks*& entry : callbacks_) {
    if (entry == &callbacks) {
      entry = nullptr;
    }
  }
}

void StreamCallbackList::runReset(StreamResetReason reason) {
  for (size_t i = 0; i < callbacks_.size(); i++) {
    if (callbacks_[i] != nullptr) {
      callbacks_[i]->onResetStream(reason);
    }
  }
}

void StreamCallbackList::runAboveHighWatermark() {
  for (size_t i = 0; i < callbacks_.size(); i++) {
    if (callbacks_[i] != nullptr) {
      callbacks_[i]->onAboveWriteBufferHighWatermark();
    }
  }
}

void StreamCallbackList::runBelowLowWatermark() {
  for (size_t i = 0; i < callbacks_.size(); i++) {
    if (callbacks_[i] != nullptr) {
      callbacks_[i]->onBelowWriteBufferLowWatermark();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ServerConnectionImpl

ServerConnectionImpl::ServerConnectionImpl(CodecOutput& output,
                                           ServerConnectionCallbacks& callbacks,
                                           const Http1Settings& settings)
    : Http1ConnectionBase(output, HTTP_REQUEST, settings.max_request_headers_kb * 1024,
                          settings.max_headers_count, /*error_http_code=*/400),
      callbacks_(callbacks),
      accept_http_10_(settings.accept_http_10),
      default_host_for_http_10_(settings.default_host_for_http_10) {}

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
    } else {
      decoder_->decodeData(body_buffer_, /*end_stream=*/true);
    }
  }
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

  std::string& out = c.scratch_;
  out.clear();
  // An accepted HTTP/1.0 request gets an HTTP/1.0 answer, as from Envoy; the 426 that refuses
  // one (not accepted) says HTTP/1.1, the version to upgrade to.
  out.append(c.http10_ && c.accept_http_10_ ? "HTTP/1.0 " : "HTTP/1.1 ");
  appendNumber(out, status, 10);
  out.append(" ");
  out.append(reasonPhrase(status));
  out.append(kCrlf);
  bool saw_content_length = false;
  for (const HeaderEntry& entry : headers) {
    if (entry.key.empty() || entry.key[0] == ':' || isHopByHop(entry.key)) {
      continue;
    }
    if (entry.key == Headers::ContentLength) {
      saw_content_length = true;
    }
    c.appendHeaderLine(entry.key, entry.value);
  }
  c.response_chunked_ = false;
  if (!saw_content_length && !c.response_bodiless_) {
    if (end_stream) {
      c.appendHeaderLine(Headers::ContentLength, "0");
    } else if (c.http10_) {
      // No chunking in HTTP/1.0: the body ends when the connection closes.
      c.close_after_response_ = true;
    } else {
      c.appendHeaderLine(Headers::TransferEncoding, "chunked");
      c.response_chunked_ = true;
    }
  }
  if (c.close_after_response_) {
    c.appendHeaderLine(Headers::Connection, "close");
  } else if (c.http10_) {
    c.appendHeaderLine(Headers::Connection, "keep-alive");
  }
  out.append(kCrlf);
  c.pending_output_.add(out);
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

// ---------------------------------------------------------------------------------------------
// ClientConnectionImpl

ClientConnectionImpl::ClientConnectionImpl(CodecOutput& output, const Http1Settings& settings)
    : Http1ConnectionBase(output, HTTP_RESPONSE, settings.max_response_headers_kb * 1024,
                          settings.max_headers_count, /*error_http_code=*/502) {}

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
  resetActive(StreamResetReason::ConnectionTermination);
}

void ClientConnectionImpl::resetActive(StreamResetReason reason) {
  remote_wants_close_ = true;
  if (decoder_ == nullptr) {
    return;
  }
  decoder_ = nullptr;
  headers_.reset();
  encoder_.callbacks_.runReset(reason);
}

int ClientConnectionImpl::onMessageBeginImpl() {
  if (decoder_ == nullptr) {
    return fail(502, "http1.unexpected_response", "response with no request outstanding");
  }
  beginMessage();
  headers_ = std::make_unique<ResponseHeaderMap>();
  headers_->reserve(kReservedHeaders);
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
    } else {
      decoder->decodeData(body_buffer_, /*end_stream=*/true);
    }
  }
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

  std::string& out = c.scratch_;
  out.clear();
  out.append(method);
  out.append(" ");
  out.append(path.empty() ? std::string_view("/") : path);
  out.append(" HTTP/1.1\r\n");
  if (has_authority) {
    c.appendHeaderLine(Headers::Host, authority);
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
    c.appendHeaderLine(entry.key, entry.value);
  }
  c.request_chunked_ = false;
  if (!saw_content_length) {
    if (end_stream) {
      if (!isBodilessMethod(method)) {
        c.appendHeaderLine(Headers::ContentLength, "0");
      }
    } else {
      c.appendHeaderLine(Headers::TransferEncoding, "chunked");
      c.request_chunked_ = true;
    }
  }
  out.append(kCrlf);
  c.pending_output_.add(out);
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
