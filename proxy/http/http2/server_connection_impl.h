#pragma once

// HTTP/2 server codec over nghttp2 (Envoy's source/common/http/http2/server_connection_impl.h,
// server half): one nghttp2 session per downstream connection, each stream its own
// ResponseEncoder/Stream for the connection manager. Dispatcher-thread only, like the connection
// that owns it.
//
// Choices a reader should know about (Envoy's behaviour unless said otherwise):
// - Streams are independent. Flow control is per stream: received DATA is handed to the
//   decoder at once, but the peer's window is only reopened (nghttp2_session_consume) while the
//   stream is not read-disabled; a stream whose upstream is backed up stops only its own peer
//   (the stream window), never the others. Response bytes wait per stream until the peer's
//   window allows them; above the stream buffer limit that stream's callbacks hear
//   onAboveWriteBufferHighWatermark (the router stops reading its upstream).
// - Headers are checked by nghttp2's HTTP messaging rules (pseudo-headers, :authority or Host,
//   connection-specific headers, content-length vs DATA): a violation counts
//   http2.rx_messaging_error and, as in Envoy 1.40 by default, fails the connection (dispatch()
//   returns an error; the owner closes); with stream_error_on_invalid_http_messaging only the
//   stream is reset (PROTOCOL_ERROR). Header bytes over max_request_headers_kb or more than
//   max_headers_count reset the stream (http2.header_overflow). A request without :authority
//   takes its Host header's value.
// - Abuse limits with Envoy's defaults: frames queued but not yet written to the socket
//   (max_outbound_frames, max_outbound_control_frames for PING/SETTINGS ACKs and RST_STREAM),
//   consecutive empty DATA/HEADERS/CONTINUATION frames, PRIORITY frames per stream, WINDOW_UPDATE
//   frames per DATA frame sent. Past a limit dispatch() fails and the owner closes the
//   connection. nghttp2's own limits stay on: RST_STREAM rate (burst 1000, 33/s) and 8
//   CONTINUATION frames per header block, each answered with a GOAWAY by nghttp2.
// - Closed streams are freed at the next dispatch() (or with the codec): the connection manager
//   may still hold the encoder while it unwinds the stream synchronously.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/header_map.h"
#include "proxy/http/http2/server_codec_stats.h"

namespace Proxy::Http::Http2 {

// What http2_protocol_options and the HCM give a connection. Defaults are Envoy's.
struct ServerSettings {
  uint32_t max_concurrent_streams = 2147483647;
  uint32_t initial_stream_window_size = 268435456;
  uint32_t initial_connection_window_size = 268435456;
  uint32_t max_outbound_frames = 10000;
  uint32_t max_outbound_control_frames = 1000;
  uint32_t max_consecutive_inbound_frames_with_empty_payload = 1;
  uint32_t max_inbound_priority_frames_per_stream = 100;
  uint32_t max_inbound_window_update_frames_per_data_frame_sent = 10;
  // override_stream_error_on_invalid_http_message: an HTTP messaging violation (invalid or
  // missing pseudo-headers, connection-specific headers, content-length mismatch) resets only
  // that stream; off (Envoy's default), it closes the connection.
  bool stream_error_on_invalid_http_messaging = false;
  // The HCM's header limits, per stream.
  uint32_t max_request_headers_kb = 60;
  uint32_t max_headers_count = 100;
  // Response bytes a stream holds (waiting for the peer's window) before its callbacks hear
  // the high watermark (the listener's per_connection_buffer_limit, as Envoy).
  uint32_t stream_buffer_limit = 1024 * 1024;
};

// The HTTP/2 connection preface a client sends first (RFC 9113 3.4).
inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class ServerConnectionImpl : public ServerConnection {
 public:
  ServerConnectionImpl(CodecOutput& output, ServerConnectionCallbacks& callbacks,
                       ServerCodecStats& stats, const ServerSettings& settings);
  ~ServerConnectionImpl() override;

  // Connection
  absl::Status dispatch(Buffer::Instance& data) override;
  const CodecError& lastError() const override { return error_; }
  Protocol protocol() const override { return Protocol::Http2; }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override;
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override;
  // ServerConnection: an HTTP/2 connection is never closed after one response; a drain uses
  // goAway() instead.
  void setCloseAfterResponse() override {}
  bool closeAfterResponse() const override { return false; }

  // GOAWAY(NO_ERROR) with the last stream id received: streams in flight finish, no new ones.
  void goAway();
  // The graceful shutdown notice (RFC 9113 6.8): GOAWAY(NO_ERROR) with stream id 2^31-1, so the
  // client stops opening streams; goAway() follows with the real last stream id.
  void shutdownNotice();
  // Streams the codec still tracks (open, or closed and not yet freed).
  size_t activeStreams() const { return streams_.size(); }
  // True when the connection should close once its bytes are flushed: a GOAWAY with an error
  // went out, or nghttp2 has nothing more to read or write.
  bool wantsClose() const;

 private:
  class StreamImpl;
  friend struct ServerNghttp2Callbacks;

  // nghttp2 callbacks (see ServerNghttp2Callbacks in codec_impl.cc).
  int onBeginFrame(const nghttp2_frame_hd& hd);
  int onBeginHeaders(const nghttp2_frame& frame);
  int onHeader(const nghttp2_frame& frame, std::string_view name, std::string_view value);
  int onFrameRecv(const nghttp2_frame& frame);
  int onDataChunk(int32_t stream_id, const uint8_t* data, size_t len);
  int onStreamClose(int32_t stream_id, uint32_t error_code);
  int onFrameSend(const nghttp2_frame& frame);
  int onInvalidFrame(const nghttp2_frame& frame, int lib_error);
  ssize_t onSend(const uint8_t* data, size_t length);
  int onSendData(nghttp2_frame& frame, const uint8_t* framehd, size_t length,
                 nghttp2_data_source& source);

  // Serialises what nghttp2 queued and hands it to the owner; not while dispatching (the end of
  // dispatch() sends). Returns false once the connection failed.
  bool sendPendingFrames();
  // Whether sendPendingFrames() serializes queued frames at once (not dispatching, not failed).
  bool canSendNow() const { return !dispatching_ && !error_set_; }
  // Records a connection error; nghttp2 callbacks then return NGHTTP2_ERR_CALLBACK_FAILURE.
  int fail(std::string_view details, std::string_view message);
  // Outbound frame accounting (Envoy's ProtocolConstraints): a frame is outstanding until the
  // socket wrote its last byte (CodecOutput::bytesFlushed()).
  void trackOutboundFrame(bool control);
  bool checkOutboundFrames();
  void freeClosedStreams();
  StreamImpl* getStream(int32_t stream_id);

  CodecOutput& output_;
  ServerConnectionCallbacks& callbacks_;
  ServerCodecStats& stats_;
  const ServerSettings settings_;
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, std::unique_ptr<StreamImpl>> streams_;
  std::vector<std::unique_ptr<StreamImpl>> closed_streams_;
  Buffer::Instance pending_output_;  // serialised frames not yet handed to output_
  CodecError error_{0, ""};
  std::string error_message_;
  bool error_set_ = false;
  bool dispatching_ = false;
  bool above_high_watermark_ = false;

  // Outbound accounting: bytes handed to output_ so far, and the offset at which each
  // outstanding frame ends.
  uint64_t bytes_written_ = 0;
  std::deque<uint64_t> outbound_frames_;
  std::deque<uint64_t> outbound_control_frames_;
  bool next_frame_is_control_ = false;
  // Inbound accounting.
  uint32_t consecutive_empty_frames_ = 0;
  uint64_t inbound_streams_ = 0;
  uint64_t inbound_priority_frames_ = 0;
  uint64_t inbound_window_update_frames_ = 0;
  uint64_t outbound_data_frames_ = 0;
};

}  // namespace Proxy::Http::Http2
