#pragma once

// HTTP/1.1 server codec: ServerConnectionImpl parses requests and encodes responses (downstream).
// What both directions share (limits, errors, body streaming) is described in
// proxy/http/http1/codec_impl_base.h.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/header_map.h"
#include "proxy/http/http1/codec_impl_base.h"

namespace Proxy::Http {

class ServerConnectionImpl : public ServerConnection, private Http1ConnectionBase {
 public:
  // Pipelined requests answered from inside one dispatch() (local replies) before it stops
  // and lets the connection offer the rest again from the event loop. Each answered request
  // leaves a finished stream for deferred deletion, which only runs between loop iterations:
  // unbounded, one read of a 1 MiB buffer of small requests kept tens of thousands alive.
  static constexpr uint32_t kMaxRequestsPerDispatch = 32;

  ServerConnectionImpl(CodecOutput& output, ServerConnectionCallbacks& callbacks,
                       const Http1Settings& settings);

  // Connection
  absl::Status dispatch(Buffer::Instance& data) override;
  const CodecError& lastError() const override { return error_; }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override;
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override;
  Protocol protocol() const override { return http10_ ? Protocol::Http10 : Protocol::Http11; }
  // ServerConnection
  void setCloseAfterResponse() override { close_after_response_ = true; }
  bool closeAfterResponse() const override { return close_after_response_; }

  // The current request is HTTP/1.0 (no chunking; keep-alive only when asked for).
  bool isHttp10() const { return http10_; }

 private:
  // The response side of the one active stream; reused for every request.
  class ResponseEncoderImpl : public ResponseEncoder, public Stream {
   public:
    explicit ResponseEncoderImpl(ServerConnectionImpl& parent) : parent_(parent) {}
    // ResponseEncoder
    void encode100ContinueHeaders() override;
    void encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) override;
    void encodeData(Buffer::Instance& data, bool end_stream) override;
    void encodeTrailers(const ResponseTrailerMap& trailers) override;
    Stream& getStream() override { return *this; }
    // Stream
    void addCallbacks(StreamCallbacks& callbacks) override;
    void removeCallbacks(StreamCallbacks& callbacks) override { callbacks_.remove(callbacks); }
    void resetStream(StreamResetReason reason) override;
    void readDisable(bool disable) override { parent_.output_.readDisable(disable); }

    ServerConnectionImpl& parent_;
    StreamCallbackList callbacks_;
  };

  // Http1ConnectionBase
  int onMessageBeginImpl() override;
  int onUrlComplete() override;
  int onHeader(std::string_view name, std::string_view value) override;
  int onTrailer(std::string_view name, std::string_view value) override;
  int onHeadersCompleteImpl() override;
  int onInvalidVersion() override;
  int onMessageCompleteImpl() override;
  bool wantsBody() const override { return decoder_ != nullptr; }
  void flushBody() override;

  int resolveRequestTarget();
  void stripUpgrade();
  void onResponseEncodeComplete();
  void finishStream();
  // Between requests with the write buffer above its high watermark: stop reading (and
  // parsing) until the low watermark.
  void pauseForWatermark();

  ServerConnectionCallbacks& callbacks_;
  ResponseEncoderImpl encoder_{*this};
  RequestHeaderMapPtr headers_;        // the request being parsed, until decodeHeaders()
  RequestTrailerMapPtr trailers_;      // its trailers (enable_trailers), until decodeTrailers()
  RequestDecoder* decoder_ = nullptr;  // null once the response completed or the stream reset

  // Stream state; one stream at a time.
  const bool accept_http_10_;
  const std::string default_host_for_http_10_;
  bool stream_active_ = false;
  bool request_complete_ = false;
  bool headers_deferred_ = false;  // no body: decodeHeaders(end_stream=true) at message complete
  bool saw_host_ = false;
  bool http10_ = false;
  bool head_request_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool response_chunked_ = false;
  bool response_bodiless_ = false;  // HEAD, 1xx, 204, 304: body bytes are dropped

  // Connection state.
  bool close_after_response_ = false;
  bool connection_done_ = false;  // no further request will be parsed (closing, reset, error)
  bool read_disabled_for_pipelining_ = false;
  bool read_disabled_for_watermark_ = false;
  // Requests answered synchronously (local replies) in the current dispatch(); at the limit the
  // dispatch yields.
  uint32_t answered_in_dispatch_ = 0;
  bool yielded_ = false;
};

}  // namespace Proxy::Http
