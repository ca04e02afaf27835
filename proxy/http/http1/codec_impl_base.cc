#include "proxy/http/http1/codec_impl_base.h"

#include <string>

#include "proxy/common/assert.h"
#include "proxy/common/header_utility.h"
#include "proxy/common/string_util.h"
#include "proxy/http/http1/codec_helpers.h"

namespace Proxy::Http {
namespace {

using Http1Helpers::HeaderBlockWriter;
using Http1Helpers::kCodecError;
using Http1Helpers::kCrlf;

constexpr std::string_view kLastChunk = "0\r\n\r\n";

using HeaderUtility::isValidHeaderValue;
using StringUtil::equalsIgnoreCase;

}  // namespace

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
    // A header name or value cut by the end of the slice outlives it: copy what was seen.
    if (!current_field_.view.empty()) {
      current_field_.keep();
    }
    if (!current_value_.view.empty()) {
      current_value_.keep();
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

int Http1ConnectionBase::onData(const char* at, size_t length, HeaderPiece& into) {
  // Checked before appending so a header that never ends cannot grow the buffer unbounded.
  if (header_bytes_ + current_field_.view.size() + current_value_.view.size() + length >
      max_header_bytes_) {
    return fail(parser_.type == HTTP_REQUEST ? 431 : error_http_code_, "http1.headers_too_large",
                "headers size exceeds limit");
  }
  into.append(at, length);
  if (in_trailers_) {
    // After a chunked body, whose bytes callbacks move out of the slice: no views into it.
    into.keep();
  }
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
  const std::string_view name = current_field_.view;
  if (HeaderUtility::isPlainLowerCaseName(name)) {
    return 0;
  }
  if (name.empty()) {
    return fail(error_http_code_, "http1.invalid_characters", "empty header name");
  }
  bool lower_case = true;
  for (char c : name) {
    const char lower = HeaderUtility::lowerTokenChar(c);
    if (lower == '\0') {
      return fail(error_http_code_, "http1.invalid_characters", "invalid header name");
    }
    lower_case &= lower == c;
  }
  if (!lower_case) {
    current_field_.keep();
    for (char& c : current_field_.copy) {
      c = HeaderUtility::lowerTokenChar(c);
    }
    current_field_.view = current_field_.copy;
  }
  return 0;
}

int Http1ConnectionBase::onHeaderValueComplete() {
  // llhttp strips leading whitespace; trailing whitespace is not part of the value either.
  std::string_view value = current_value_.view;
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  const std::string_view field = current_field_.view;
  if (!isValidHeaderValue(value)) {
    return fail(error_http_code_, "http1.invalid_characters", "invalid header value");
  }
  if (++headers_count_ > max_headers_count_) {
    return fail(parser_.type == HTTP_REQUEST ? 431 : error_http_code_, "http1.too_many_headers",
                "too many headers");
  }
  header_bytes_ += field.size() + value.size();
  int rc = 0;
  if (!in_trailers_) {
    if (field == Headers::ContentLength) {
      saw_content_length_ = true;
    } else if (field == Headers::TransferEncoding) {
      // Only a single, exact "chunked" is understood (as Envoy): "gzip, chunked" would need a
      // decoder, and repeated headers are a smuggling favourite.
      if (saw_transfer_encoding_ || !equalsIgnoreCase(value, "chunked")) {
        transfer_encoding_unsupported_ = true;
      }
      saw_transfer_encoding_ = true;
    }
    rc = onHeader(field, value);
  } else if (enable_trailers_) {
    rc = onTrailer(field, value);
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
    {
      HeaderBlockWriter out(scratch_, 24);
      out.addNumber(length, 16);
      out.add(kCrlf);
    }
    pending_output_.add(scratch_);
    pending_output_.move(data);
    pending_output_.add(kCrlf);
  }
  if (end_stream) {
    pending_output_.add(kLastChunk);
  }
}

void Http1ConnectionBase::encodeLastChunk(const HeaderMap& trailers) {
  if (!enable_trailers_) {
    pending_output_.add(kLastChunk);
    return;
  }
  {
    HeaderBlockWriter out(scratch_, 5 + HeaderBlockWriter::linesSize(trailers) + 2);
    out.add("0\r\n");
    for (const HeaderEntry& entry : trailers) {
      if (entry.key.empty() || entry.key[0] == ':' || Http1Helpers::isHopByHop(entry.key)) {
        continue;
      }
      out.addLine(entry.key, entry.value);
    }
    out.add(kCrlf);
  }
  pending_output_.add(scratch_);
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

}  // namespace Proxy::Http
