#pragma once

// HTTP/2 client codec (upstream) over nghttp2's session: requests go out as HEADERS
// (:method, :scheme, :authority, :path) and DATA frames, responses come back per stream. Many
// streams share one connection; each has its own send buffer with the watermarks of the
// cluster's per-connection buffer limit and its own receive window, which a stream that is
// read-disabled stops re-opening (the peer then stops sending on that stream only).
// Dispatcher-thread only, like the HTTP/1 codec (proxy/http/codec.h).
//
// What the connection pool needs beyond Http::ClientConnection (the peer's stream limit, a
// GOAWAY, whether the session is over) is on ClientConnectionImpl and its
// ClientConnectionCallbacks.
//
// Lifetime of streams: the RequestEncoder that newStream() returns stays valid after its stream
// closed until the end of the event-loop iteration (it is handed to Dispatcher::deferredDelete,
// ARCHITECTURE.md convention 7); calls on a closed stream do nothing. So a caller may still call
// removeCallbacks()/readDisable()/resetStream() while it unwinds from the end of the response.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proxy/buffer/buffer.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/http/header_map.h"
#include "proxy/http/http1/codec_impl_base.h"  // StreamCallbackList
#include "proxy/stats/stats.h"

namespace Proxy::Http::Http2 {

// Envoy's defaults for upstream HTTP/2 (Http2ProtocolOptions).
inline constexpr uint32_t kDefaultMaxConcurrentStreams = 2147483647;
inline constexpr uint32_t kDefaultInitialStreamWindowSize = 268435456;
inline constexpr uint32_t kDefaultInitialConnectionWindowSize = 268435456;
// RFC 9113 6.9.2: windows start at 65535; Envoy's minimum for both settings.
inline constexpr uint32_t kMinWindowSize = 65535;
inline constexpr uint32_t kMaxWindowSize = 2147483647;

struct Http2Settings {
  uint32_t max_concurrent_streams = kDefaultMaxConcurrentStreams;
  uint32_t initial_stream_window_size = kDefaultInitialStreamWindowSize;
  uint32_t initial_connection_window_size = kDefaultInitialConnectionWindowSize;
  // Response header limits (as the HTTP/1 client's): name + value bytes, and entries.
  uint32_t max_response_headers_kb = 60;
  uint32_t max_headers_count = 100;
  // A stream's send buffer is "above its high watermark" past this many bytes, and below again
  // at half (the cluster's per_connection_buffer_limit_bytes, as Envoy).
  uint32_t stream_buffer_limit = 1024 * 1024;
};

// Envoy's HTTP/2 codec stats, under "<scope>.http2." (for upstream: "cluster.<name>.http2.").
struct ClientCodecStats {
  explicit ClientCodecStats(Stats::Scope scope);
  Stats::Counter& rx_reset;            // RST_STREAM received
  Stats::Counter& tx_reset;            // RST_STREAM sent
  Stats::Counter& header_overflow;     // response headers over the limits
  Stats::Counter& rx_messaging_error;  // a frame or header nghttp2 refused (stream reset)
  Stats::Counter& trailers;            // responses that ended with trailers
  Stats::Counter& goaway_sent;
  Stats::Gauge& streams_active;
  Stats::Gauge& pending_send_bytes;  // request body bytes waiting for flow-control window
};

// Connection-level events for the pool.
class ClientConnectionCallbacks {
 public:
  virtual ~ClientConnectionCallbacks() = default;
  // GOAWAY received: no new stream may start on this connection. Streams above
  // `last_stream_id` have been (or are being) reset with RemoteRefusedStreamReset, which means
  // the server never saw them.
  virtual void onGoAway(uint32_t error_code, int32_t last_stream_id) = 0;
  // The server's SETTINGS changed its limit on concurrent streams.
  virtual void onMaxConcurrentStreamsChanged(uint32_t peer_max_concurrent_streams) = 0;
};

class ClientConnectionImpl : public ClientConnection {
 public:
  ClientConnectionImpl(Event::Dispatcher& dispatcher, CodecOutput& output,
                       ClientConnectionCallbacks& callbacks, const Http2Settings& settings,
                       ClientCodecStats& stats);
  ~ClientConnectionImpl() override;

  // Connection
  absl::Status dispatch(Buffer::Instance& data) override;
  const CodecError& lastError() const override { return error_; }
  Protocol protocol() const override { return Protocol::Http2; }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override;
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override;
  // ClientConnection
  RequestEncoder& newStream(ResponseDecoder& response_decoder) override;
  // A GOAWAY arrived, or the session ended (protocol error, connection closed).
  bool remoteWantsClose() const override;
  void onConnectionClose() override;

  // Streams open on this connection (started and not yet closed).
  size_t activeStreams() const { return active_streams_.size(); }
  // The server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until its SETTINGS arrives).
  uint32_t peerMaxConcurrentStreams() const;
  bool goAwayReceived() const { return goaway_received_; }
  // Nothing more can happen on this session (nghttp2 sent its GOAWAY after a connection error,
  // or the connection closed): the owner closes the connection.
  bool sessionOver() const;

 private:
  class StreamImpl;
  using StreamImplPtr = std::unique_ptr<StreamImpl>;

  class StreamImpl : public RequestEncoder, public Stream, public Event::DeferredDeletable {
   public:
    StreamImpl(ClientConnectionImpl& parent, ResponseDecoder& decoder);

    // RequestEncoder
    void encodeHeaders(const RequestHeaderMap& headers, bool end_stream) override;
    void encodeData(Buffer::Instance& data, bool end_stream) override;
    // A HEADERS frame with END_STREAM after the body (gRPC's trailers travel the other way, but
    // a request may carry them too).
    void encodeTrailers(const RequestTrailerMap& trailers) override;
    Stream& getStream() override { return *this; }
    // Stream
    void addCallbacks(StreamCallbacks& callbacks) override;
    void removeCallbacks(StreamCallbacks& callbacks) override { callbacks_.remove(callbacks); }
    void resetStream(StreamResetReason reason) override;
    void readDisable(bool disable) override;

    // nghttp2's view.
    ssize_t onDataSourceRead(size_t length, uint32_t* data_flags);
    void onDataSent(size_t length);
    void onHeader(std::string_view name, std::string_view value);
    void onHeadersComplete(bool end_stream);
    void onData(const uint8_t* data, size_t length);
    void onDataFrameComplete(bool end_stream);
    void onClose(uint32_t error_code);
    // The connection went away under it.
    void onConnectionGone(StreamResetReason reason);

    void watermarkUp();
    void watermarkDown();
    bool closed() const { return closed_; }

    ClientConnectionImpl& parent_;
    ResponseDecoder* decoder_;  // null once the stream is over (complete or reset)
    StreamCallbackList callbacks_;
    int32_t stream_id_ = -1;
    Buffer::Instance pending_send_data_;
    std::unique_ptr<RequestTrailerMap> pending_trailers_;  // sent once the body is out
    ResponseHeaderMapPtr headers_;  // the header block being received (headers or trailers)
    uint64_t receiving_bytes_ = 0;
    bool header_overflow_ = false;
    bool messaging_error_ = false;  // nghttp2 refused a frame of this stream
    Buffer::Instance body_;         // one chunk of response body, handed on at once
    uint32_t read_disable_count_ = 0;
    uint64_t unconsumed_bytes_ = 0;  // received while read-disabled; window re-opened later
    uint32_t watermark_count_ = 0;   // send buffer above + connection above
    bool send_buffer_above_ = false;
    bool local_end_stream_ = false;
    bool data_deferred_ = false;
    bool headers_started_ = false;
    bool final_headers_ = false;      // the final (non-1xx) response headers were delivered
    bool remote_end_stream_ = false;  // the response is complete
    bool remote_reset_ = false;       // RST_STREAM received
    bool reset_reported_ = false;
    bool closed_ = false;
    std::list<StreamImplPtr>::iterator it_;
  };

  void sendPendingFrames();
  void onStreamClosed(StreamImpl& stream);
  void onProtocolError(std::string details);
  static StreamImpl* streamFrom(nghttp2_session* session, int32_t stream_id);

  // nghttp2 callbacks.
  static ssize_t onSend(nghttp2_session*, const uint8_t* data, size_t length, int, void* user);
  static int onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                        size_t length, nghttp2_data_source* source, void* user);
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onHeaderCb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                        size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                        void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onDataChunkRecv(nghttp2_session*, uint8_t flags, int32_t stream_id,
                             const uint8_t* data, size_t len, void* user);
  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onInvalidFrameRecv(nghttp2_session*, const nghttp2_frame* frame, int error_code,
                                void* user);
  static ssize_t onDataSourceReadCb(nghttp2_session*, int32_t stream_id, uint8_t* buf,
                                    size_t length, uint32_t* data_flags,
                                    nghttp2_data_source* source, void* user);

  Event::Dispatcher& dispatcher_;
  CodecOutput& output_;
  ClientConnectionCallbacks& callbacks_;
  const Http2Settings settings_;
  ClientCodecStats& stats_;
  nghttp2_session* session_ = nullptr;
  Buffer::Instance output_buffer_;
  std::list<StreamImplPtr> active_streams_;  // streams started, not yet closed
  std::vector<nghttp2_nv> nva_;              // scratch for encodeHeaders
  CodecError error_{502, ""};
  bool dispatching_ = false;
  bool goaway_received_ = false;
  bool closed_ = false;  // onConnectionClose() ran or the session failed
  bool above_high_watermark_ = false;
};

}  // namespace Proxy::Http::Http2
