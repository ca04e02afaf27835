#pragma once

// HTTP/1.1 codecs over llhttp. ServerConnectionImpl parses requests and encodes responses
// (downstream); ClientConnectionImpl encodes requests and parses responses (upstream).
// Dispatcher-thread only, like the connection that owns them.
//
// Choices a reader should know about (Envoy's behaviour unless said otherwise):
// - Body bytes are streamed: each dispatch() hands the body bytes it parsed to one
//   decodeData() call (end_stream=true on message complete). Bytes are moved out of the
//   owner's read buffer, not copied, wherever they fill whole buffer slices.
// - One request at a time: see the pipelining contract on Connection::dispatch(). Between
//   requests, a write buffer above its high watermark also holds the next request back (and
//   disables reading) until the low watermark: a client that pipelines without reading the
//   responses cannot make the connection buffer more than its limit. And one dispatch()
//   answers at most kMaxRequestsPerDispatch pipelined requests itself (local replies).
// - Trailers after a chunked body reach decodeTrailers() only with enable_trailers (Envoy's
//   Http1ProtocolOptions); otherwise they are parsed against the header limits and dropped, and
//   the message ends with decodeData(end_stream=true), as Envoy's HTTP/1 codec does.
// - Errors (lastError().http_code / details): malformed input 400 "http1.codec_error";
//   invalid header name/value characters 400 "http1.invalid_characters"; header bytes over the
//   limit 431 "http1.headers_too_large"; too many headers 431 "http1.too_many_headers";
//   Content-Length with Transfer-Encoding 400 "http1.content_length_and_chunked_not_allowed";
//   Transfer-Encoding other than exactly "chunked" 501 "http1.invalid_transfer_encoding";
//   a request without Host 400 "missing_host_header" (HTTP/1.0 too, unless
//   default_host_for_http_10 gives it one); HTTP/1.0 when not accepted 426 "low_version"; two Host
//   headers 400 "http1.duplicate_host_header"; bad absolute-form URL 400 "http1.invalid_url"
//   ("http1.invalid_scheme", "http1.https_url_on_plaintext_connection"); a version other than
//   1.x 505 "http1.unsupported_http_version".
// - CONNECT is not supported yet: 405 "http1.connect_not_supported". Upgrade requests
//   (websocket, h2c) are served as plain requests: the Upgrade header and the "upgrade"
//   Connection token are removed, so the response never switches protocols.
// - The client codec reports upstream errors with http_code 502 (what the router may answer)
//   and resets the active stream with StreamResetReason::ProtocolError.

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/header_map.h"

namespace Proxy::Http {

struct Http1Settings {
  // Request line plus header names and values, as Envoy's max_request_headers_kb.
  uint32_t max_request_headers_kb = 60;
  // The same limit for the status line and headers of upstream responses.
  uint32_t max_response_headers_kb = 60;
  // Header lines per message.
  uint32_t max_headers_count = 100;
  // Server: HTTP/1.0 requests are answered 426 Upgrade Required unless accepted
  // (Http1ProtocolOptions.accept_http_10, off by default as in Envoy).
  bool accept_http_10 = false;
  // Server: the Host given to an accepted HTTP/1.0 request that has none
  // (default_host_for_http_10). Without one, such a request is a 400 like HTTP/1.1's.
  std::string default_host_for_http_10;
  // Http1ProtocolOptions.enable_trailers (off by default, as in Envoy): chunked trailers are
  // decoded (decodeTrailers) and encoded after a chunked body. Off, received trailers are
  // dropped and encodeTrailers() just ends the body.
  bool enable_trailers = false;
};

// What the server and client codecs share: the llhttp parser and the dispatch loop, header
// accumulation with limits, body streaming and chunk framing on output. Not an interface.
class Http1ConnectionBase {
 public:
  Http1ConnectionBase(const Http1ConnectionBase&) = delete;
  Http1ConnectionBase& operator=(const Http1ConnectionBase&) = delete;

 protected:
  Http1ConnectionBase(CodecOutput& output, llhttp_type_t type, uint32_t max_header_bytes,
                      uint32_t max_headers_count, uint32_t error_http_code);
  virtual ~Http1ConnectionBase() = default;

  // Runs llhttp over `data` one slice at a time; see Connection::dispatch().
  absl::Status dispatchBase(Buffer::Instance& data);

  // Per-message hooks. Return 0 to go on, or what fail() returns. onHeadersCompleteImpl() may
  // also return 1 (no body follows); onMessageCompleteImpl() may return HPE_PAUSED.
  virtual int onMessageBeginImpl() = 0;
  virtual int onUrlComplete() { return 0; }
  virtual int onStatusComplete() { return 0; }
  // llhttp stopped at a version it does not know (HPE_INVALID_VERSION, e.g. "HTTP/1.2"): the
  // codec may answer it otherwise than 400. Returns non-zero after fail(), 0 for the default.
  virtual int onInvalidVersion() { return 0; }
  // A complete header line; `name` is lower-case and valid, `value` trimmed.
  virtual int onHeader(std::string_view name, std::string_view value) = 0;
  // A complete trailer line after a chunked body (only with enable_trailers_; same checks and
  // limits as headers).
  virtual int onTrailer(std::string_view name, std::string_view value) = 0;
  virtual int onHeadersCompleteImpl() = 0;
  virtual int onMessageCompleteImpl() = 0;
  // Whether parsed body bytes are kept for the decoder (false: the stream is gone, drop them).
  virtual bool wantsBody() const = 0;
  // Called at the end of each dispatch() that parsed body bytes of an unfinished message.
  virtual void flushBody() = 0;

  // Records a protocol error; returns the value a llhttp callback must return to stop.
  int fail(uint32_t http_code, std::string_view details, std::string_view message);
  bool hasError() const { return error_set_; }
  absl::Status errorStatus() const;

  // Resets the per-message header state (limits, framing flags).
  void beginMessage();
  // The Transfer-Encoding / Content-Length rules shared by both directions (at headers
  // complete). Returns 0 or fail().
  int checkFraming();
  bool bodyIsChunked() const { return (parser_.flags & F_CHUNKED) != 0; }
  // Bytes llhttp will read as body for this message (0 when chunked or unknown).
  uint64_t contentLength() const { return parser_.content_length; }

  // Output: every encoder writes into `pending_output_`; flushOutput() hands it to the owner.
  void flushOutput();
  void encodeChunkedData(Buffer::Instance& data, bool end_stream);
  // The last chunk of a chunked body, with `trailers` when enable_trailers_ (pseudo-headers and
  // hop-by-hop names skipped).
  void encodeLastChunk(const HeaderMap& trailers);

  CodecOutput& output_;
  llhttp_t parser_;
  Buffer::Instance body_buffer_;     // body bytes parsed in this dispatch, for decodeData()
  Buffer::Instance pending_output_;  // encoded bytes not yet handed to output_
  std::string scratch_;              // header block being encoded; keeps its capacity
  CodecError error_{0, ""};
  bool dispatching_ = false;
  bool parser_paused_ = false;  // llhttp paused after a complete request; resumed by dispatch
  bool above_high_watermark_ = false;
  bool saw_content_length_ = false;
  bool saw_transfer_encoding_ = false;
  bool transfer_encoding_unsupported_ = false;
  bool enable_trailers_ = false;  // set by the derived codec from Http1Settings
  std::string url_;               // request target (server), accumulated across llhttp calls

 private:
  friend struct LlhttpCallbacks;

  // A header name or value as llhttp hands it over. Usually it arrives in one piece inside the
  // slice being parsed and stays a view of it (no copy, issue 14); a second piece, or the end of
  // the slice (the buffer is drained after each llhttp_execute()), copies it into `copy`.
  struct HeaderPiece {
    std::string_view view;
    std::string copy;
    bool copied = false;

    void append(const char* at, size_t length) {
      if (!copied && view.empty()) {
        view = std::string_view(at, length);
        return;
      }
      keep();
      copy.append(at, length);
      view = copy;
    }
    // Copies a view of the slice into `copy`.
    void keep() {
      if (!copied) {
        copy.assign(view.data(), view.size());
        copied = true;
        view = copy;
      }
    }
    void clear() {
      view = std::string_view();
      copy.clear();
      copied = false;
    }
  };

  int onData(const char* at, size_t length, HeaderPiece& into);
  int onHeaderFieldComplete();
  int onHeaderValueComplete();
  int onBody(const char* at, size_t length);
  int onUrl(const char* at, size_t length);

  const uint64_t max_header_bytes_;
  const uint32_t max_headers_count_;
  const uint32_t error_http_code_;  // http_code reported for llhttp parse errors
  HeaderPiece current_field_;
  HeaderPiece current_value_;
  uint64_t header_bytes_ = 0;
  uint32_t headers_count_ = 0;
  std::string error_message_;
  bool error_set_ = false;
  // Header callbacks after the headers are trailers: onTrailer() with enable_trailers_, else
  // dropped.
  bool in_trailers_ = false;

  // Where the dispatch loop is: the buffer being parsed, the start of the slice handed to
  // llhttp and how many of that slice's bytes have already left the buffer (moved to
  // body_buffer_ or drained) from inside a callback.
  Buffer::Instance* dispatch_data_ = nullptr;
  const char* slice_base_ = nullptr;
  uint64_t slice_cursor_ = 0;
};

// Keeps StreamCallbacks registrations; removal during iteration is safe.
class StreamCallbackList {
 public:
  void add(StreamCallbacks& callbacks, bool above_high_watermark);
  void remove(StreamCallbacks& callbacks);
  void clear() { callbacks_.clear(); }
  void runReset(StreamResetReason reason);
  void runAboveHighWatermark();
  void runBelowLowWatermark();

 private:
  // Inline: an HTTP/2 stream has its own list, made per request (issue 11).
  absl::InlinedVector<StreamCallbacks*, 4> callbacks_;
};

}  // namespace Proxy::Http
