#pragma once

// HTTP/1.1 client codec: ClientConnectionImpl encodes requests and parses responses (upstream).
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

class ClientConnectionImpl : public ClientConnection, private Http1ConnectionBase {
 public:
  ClientConnectionImpl(CodecOutput& output, const Http1Settings& settings);

  // Connection
  absl::Status dispatch(Buffer::Instance& data) override;
  const CodecError& lastError() const override { return error_; }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override;
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override;
  Protocol protocol() const override { return Protocol::Http11; }
  // ClientConnection
  // One request at a time: the previous response must be complete (or the stream reset).
  RequestEncoder& newStream(ResponseDecoder& response_decoder) override;
  bool remoteWantsClose() const override { return remote_wants_close_; }
  StreamResetReason closeResetReason() const override { return close_reset_reason_; }
  void onConnectionClose() override;

  // A request is outstanding (newStream() called, response not complete, not reset).
  bool hasActiveRequest() const { return decoder_ != nullptr; }

 private:
  class RequestEncoderImpl : public RequestEncoder, public Stream {
   public:
    explicit RequestEncoderImpl(ClientConnectionImpl& parent) : parent_(parent) {}
    // RequestEncoder
    void encodeHeaders(const RequestHeaderMap& headers, bool end_stream) override;
    void encodeData(Buffer::Instance& data, bool end_stream) override;
    void encodeTrailers(const RequestTrailerMap& trailers) override;
    Stream& getStream() override { return *this; }
    // Stream
    void addCallbacks(StreamCallbacks& callbacks) override;
    void removeCallbacks(StreamCallbacks& callbacks) override { callbacks_.remove(callbacks); }
    void resetStream(StreamResetReason reason) override;
    void readDisable(bool disable) override { parent_.output_.readDisable(disable); }

    ClientConnectionImpl& parent_;
    StreamCallbackList callbacks_;
  };

  // Http1ConnectionBase
  int onMessageBeginImpl() override;
  int onStatusComplete() override;
  int onHeader(std::string_view name, std::string_view value) override;
  int onTrailer(std::string_view name, std::string_view value) override;
  int onHeadersCompleteImpl() override;
  int onMessageCompleteImpl() override;
  bool wantsBody() const override { return decoder_ != nullptr && !informational_; }
  void flushBody() override;

  // Ends the exchange with a reset to the stream callbacks (the decoder hears nothing more).
  void resetActive(StreamResetReason reason);

  RequestEncoderImpl encoder_{*this};
  ResponseHeaderMapPtr headers_;        // the response being parsed, until decodeHeaders()
  ResponseTrailerMapPtr trailers_;      // its trailers (enable_trailers), until decodeTrailers()
  ResponseDecoder* decoder_ = nullptr;  // set by newStream(), cleared when the exchange ends

  bool request_started_ = false;
  bool request_complete_ = false;
  bool request_chunked_ = false;
  bool head_request_ = false;
  bool informational_ = false;      // parsing a 1xx response
  bool headers_delivered_ = false;  // decodeHeaders() ran for the current response
  bool headers_deferred_ = false;
  bool remote_wants_close_ = false;
  StreamResetReason close_reset_reason_ = StreamResetReason::ConnectionTermination;
  bool closed_ = false;  // onConnectionClose() ran or a protocol error happened
};

}  // namespace Proxy::Http
