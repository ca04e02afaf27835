#pragma once

// The HTTP connection manager's two classes, private to proxy/filters (Envoy's
// conn_manager_impl.h): ConnectionManagerImpl, one per downstream connection, and its
// ActiveStreams, the downstream side of each request (one at a time on HTTP/1, many at once on
// HTTP/2). Where each part lives:
//   http_connection_manager.cc         the connection: codec choice, streams, protocol errors,
//                                      its own timers (idle while no stream is active,
//                                      max_connection_duration, drain and GOAWAY)
//   http_connection_manager_stream.cc  a stream's request and response path, local replies
//   http_connection_manager_timers.cc  a stream's timers (idle, request, request headers, max
//                                      stream duration, route) and what each does when it fires
// The config is http_connection_manager_config.cc, the upstream leg router.cc, the codecs
// proxy/http/.

#include <chrono>
#include <list>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "proxy/common/free_list.h"
#include "proxy/filters/http_connection_manager.h"
#include "proxy/filters/http_connection_manager_timers.h"
#include "proxy/grpc/common.h"
#include "proxy/http/codec.h"
#include "proxy/http/utility.h"
#include "proxy/router/router.h"

namespace Proxy::Http::Http2 {
class ServerConnectionImpl;
}

namespace Proxy::Filters::Hcm {

// Per-worker randomness: request ids, weighted cluster picks, drain spread. Seeded per thread.
std::mt19937_64& threadRandom();

class ConnectionManagerImpl;

// One request/response exchange, downstream side; its upstream leg is the router filter
// (proxy/router/router.h).
class ActiveStream : public Common::ThreadLocalFreeList<ActiveStream>,
                     public Http::RequestDecoder,
                     public Http::StreamCallbacks,  // downstream stream events
                     public Router::FilterCallbacks,
                     public StreamTimerCallbacks {
 public:
  // `timers`: the connection's (HTTP/1) or null, when the stream gets its own (HTTP/2).
  ActiveStream(ConnectionManagerImpl& parent, Http::ResponseEncoder& encoder, StreamTimers* timers);
  ~ActiveStream() override;

  // Http::RequestDecoder
  void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) override;
  void decodeData(Buffer::Instance& data, bool end_stream) override;
  void decodeTrailers(Http::RequestTrailerMapPtr&& trailers) override;

  // Http::StreamCallbacks (downstream): the client's stream is backed up or reset.
  void onResetStream(Http::StreamResetReason reason) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // Router::FilterCallbacks
  Http::RequestHeaderMap& requestHeaders() override { return *request_headers_; }
  const Router::RouteEntry* route() const override { return route_entry_; }
  StreamInfo::StreamInfo& streamInfo() override { return info_; }
  bool requestComplete() const override { return request_complete_; }
  Event::Dispatcher& dispatcher() override;
  Event::Timer& routeTimer() override { return timers_->get(StreamTimer::Route); }
  void sendLocalReply(uint32_t code, std::string_view body, uint32_t flag, std::string_view details,
                      bool overloaded) override {
    overloaded_reply_ = overloaded;
    sendLocalReply(code, body, flag, details, std::nullopt);
  }
  void sendLocalReply(uint32_t code, std::string_view body, uint32_t flag,
                      std::string_view details) {
    sendLocalReply(code, body, flag, details, std::nullopt);
  }
  // `grpc_status`: what a gRPC client gets instead of the status mapped from `code`.
  void sendLocalReply(uint32_t code, std::string_view body, uint32_t flag, std::string_view details,
                      std::optional<Grpc::Status> grpc_status);
  void encodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override {
    response_headers_ = std::move(headers);
    encodeResponseHeaders(*response_headers_, end_stream);
  }
  void encodeData(Buffer::Instance& data, bool end_stream) override {
    encodeResponseData(data, end_stream);
  }
  void encodeTrailers(Http::ResponseTrailerMapPtr&& trailers) override;
  void readDisableDownstream(bool disable) override;

  // StreamTimerCallbacks (http_connection_manager_timers.cc)
  void onStreamTimer(StreamTimer which) override;

  // Called when the downstream connection goes away mid-stream; `details` (Envoy's
  // "downstream_remote_disconnect") for the access log, when known.
  void onDownstreamReset(std::string_view details = {});
  // Where this stream sits in its connection's list (HTTP/2 carries many at once).
  std::list<std::unique_ptr<ActiveStream>>::iterator self_;
  // A response status was sent (for the premature reset check).
  bool answered() const { return info_.response_code != 0; }
  MonotonicTime startTime() const { return info_.start_monotonic; }
  // The request could not be parsed: answer `code` (400, 431, ...) and close.
  void onCodecError(uint32_t code, std::string_view details) {
    // Envoy's codec errors carry the reason phrase as body; a missing Host is found by its
    // connection manager, whose 400 has none.
    sendLocalReply(code, details == "missing_host_header" ? "" : Http::Utility::reasonPhrase(code),
                   StreamInfo::DownstreamProtocolError, details);
  }
  bool responseStarted() const { return response_headers_sent_; }

 private:
  // Applies the configured path normalisation to :path; false when a 400 or a 307 answered the
  // request instead.
  bool normalizePath(bool end_stream);
  // Matches the route, then hands the request to the router.
  void route();
  void encodeResponseHeaders(Http::ResponseHeaderMap& headers, bool end_stream);
  void encodeResponseData(Buffer::Instance& data, bool end_stream);
  void onRequestComplete();
  void onResponseComplete();
  void finish();

  // Timers (http_connection_manager_timers.cc). Arms the request, request headers and max
  // duration timers and the idle timer: the stream began with its first byte.
  void startTimers();
  // Re-arms the stream idle timer: something moved, either way.
  void resetIdleTimer();
  // A route with idle_timeout matched: it replaces the connection manager's (0: none).
  void setIdleTimeout(std::chrono::milliseconds timeout);
  // The stream duration timer for the matched route: its max_stream_duration, or a gRPC
  // request's grpc-timeout when the route says so (Envoy's refreshDurationTimeout).
  void refreshDurationTimeout();

  ConnectionManagerImpl& parent_;
  Http::ResponseEncoder& encoder_;
  Http::RequestHeaderMapPtr request_headers_;
  Http::ResponseHeaderMapPtr response_headers_;
  Http::RequestTrailerMapPtr request_trailers_;
  Http::ResponseTrailerMapPtr response_trailers_;
  std::shared_ptr<const Router::Config> route_config_;  // held for the whole request
  const Router::RouteEntry* route_entry_ = nullptr;
  StreamInfo::StreamInfo info_;
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool response_headers_sent_ = false;
  // The next local reply is for a request the upstream pool dropped (x-envoy-overloaded).
  bool overloaded_reply_ = false;
  bool downstream_read_disabled_ = false;  // by us, for upstream backpressure
  bool finished_ = false;
  const bool http2_;
  // The stream idle timeout: the connection manager's, until a route with idle_timeout matched.
  std::chrono::milliseconds idle_timeout_;
  // HTTP/2: this stream's own timers; timers_ points at them, or at the connection's (HTTP/1).
  // Not touched by the destructor: an HTTP/1 stream may outlive its connection's timers.
  std::unique_ptr<StreamTimers> own_timers_;
  StreamTimers* timers_;
  // The upstream leg; last, so that it goes first (its destructor cancels a pending pool
  // request).
  Router::FilterPtr router_;
};

class ConnectionManagerImpl : public NetworkFilter,
                              public Network::ConnectionCallbacks,
                              public Http::ServerConnectionCallbacks,
                              public Http::CodecOutput {
 public:
  ConnectionManagerImpl(HcmConfigConstSharedPtr config, HcmContext context,
                        Network::Connection& connection);
  ~ConnectionManagerImpl() override;

  // Network::ReadFilter
  void onData(Buffer::Instance& data, bool end_stream) override;

  // NetworkFilter
  void startDrain(std::chrono::milliseconds spread) override;

  // Network::ConnectionCallbacks
  void onEvent(Network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // Http::ServerConnectionCallbacks
  Http::RequestDecoder& newStream(Http::ResponseEncoder& encoder) override;
  void onReadingPaused(bool paused) override { countFlowControl(paused); }
  void onCodecError() override;

  // Http::CodecOutput
  void write(Buffer::Instance& data, bool end_stream) override;
  void readDisable(bool disable) override { connection_.readDisable(disable); }
  // Everything this connection writes comes from the codec.
  std::optional<uint64_t> bytesFlushed() const override { return connection_.bytesSent(); }

  // Called by a stream when its exchange is over (both directions, or reset). HTTP/1 closes
  // the connection when `close_connection` (unread request bytes) or the codec says so.
  void onStreamComplete(ActiveStream& stream, bool close_connection);

  void countFlowControl(bool paused);
  void countResponse(uint32_t code);

  const HcmConfig& config() const { return *config_; }
  const Router::FilterConfig& routerConfig() const { return router_config_; }
  HcmStats& stats() { return stats_; }
  HcmContext& context() { return context_; }
  Network::Connection& connection() { return connection_; }
  // The downstream peer's IP as text (x-forwarded-for), formatted once per connection rather
  // than per request (inet_ntop is a sprintf).
  std::string_view remoteIp() {
    if (remote_ip_.empty()) {
      remote_ip_ = connection_.remoteAddress().ip();
    }
    return remote_ip_;
  }
  Http::ServerConnection& codec() { return *codec_; }
  bool isHttp2() const { return http2_ != nullptr; }

 private:
  void createCodec(Http::Protocol protocol);
  // Lets go of a stream: deleted after this loop iteration (it is usually on the stack). Counts
  // it for the premature reset check (HTTP/2).
  void destroyStream(ActiveStream& stream);
  void resetAllStreams();
  void onProtocolError();

  // The connection's timers. Idle runs only while no stream is active (Envoy's idle_timeout).
  void armIdleTimerIfIdle();
  void onIdleTimeout();
  // Listener drain: idle closes now; busy, HTTP/1's response in flight says "connection:
  // close" and HTTP/2 sends GOAWAY.
  void drainNow();
  // max_connection_duration: Envoy's drain sequence (HTTP/2: GOAWAY shutdown notice, and after
  // drain_timeout the final GOAWAY; HTTP/1: "connection: close" on the response in flight).
  void startDrainSequence();
  void onDrainSequenceTimeout();
  // HTTP/2: close once the codec is done (a GOAWAY with an error went out, or a final GOAWAY
  // and no stream left).
  void maybeCloseHttp2();
  // Envoy's ConnectionManagerImpl::maybeDrainDueToPrematureResets (CVE-2023-44487).
  void maybeDrainDueToPrematureResets();

  const HcmConfigConstSharedPtr config_;
  HcmContext context_;
  Network::Connection& connection_;
  HcmStats& stats_;
  const Router::FilterConfig router_config_;
  Http::ServerConnectionPtr codec_;  // created with the first bytes (codec_type AUTO)
  Http::Http2::ServerConnectionImpl* http2_ = nullptr;  // codec_, when it is HTTP/2
  std::list<std::unique_ptr<ActiveStream>> streams_;
  // List nodes of finished streams (holding null), reused by newStream(): no list-node
  // allocation per request. At most kMaxSpareStreamNodes, and never more than the connection
  // once had streams: 100 HTTP/2 streams ending together kept 8 and made 92 again (issue 11).
  std::list<std::unique_ptr<ActiveStream>> spare_stream_nodes_;
  static constexpr size_t kMaxSpareStreamNodes = 128;
  std::string remote_ip_;
  // HTTP/1: the stream timers each stream attaches to in turn.
  std::unique_ptr<StreamTimers> http1_stream_timers_;
  Event::TimerPtr idle_timer_;
  Event::TimerPtr drain_timer_;
  Event::TimerPtr max_duration_timer_;
  Event::TimerPtr drain_sequence_timer_;
  Event::TimerPtr codec_error_timer_;
  bool draining_ = false;        // the listener drains
  bool drain_sequence_ = false;  // max_connection_duration reached
  bool goaway_sent_ = false;     // HTTP/2: the final GOAWAY; close when no stream is left
  // The premature reset check (HTTP/2).
  uint64_t closed_streams_ = 0;
  uint64_t premature_resets_ = 0;
};

}  // namespace Proxy::Filters::Hcm
