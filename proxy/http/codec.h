#pragma once

// HTTP codecs: bytes <-> header maps, body chunks and trailers, one connection each (HTTP/1.1 in
// http1/, HTTP/2 in http2/). A server codec parses requests and encodes responses (downstream);
// a client codec encodes requests and parses responses (upstream). A codec never buffers a whole
// body: every dispatch() hands body bytes on as they arrive. Dispatcher-thread only.
//
// A message ends with exactly one of: headers with end_stream, data with end_stream, or
// trailers (which always end it).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/header_map.h"
#include "proxy/http/protocol.h"

namespace Proxy::Http {

enum class StreamResetReason {
  LocalReset,             // this side gave up on the stream
  ConnectionFailure,      // upstream connect failed
  ConnectionTermination,  // the connection closed mid-stream
  Overflow,
  ProtocolError,  // the peer sent bytes the codec could not parse (added by the codec)
  // HTTP/2 (Envoy's names): the peer reset the stream (RST_STREAM); with REFUSED_STREAM, or
  // above a GOAWAY's last stream id, the peer never processed it, so it is safe to retry.
  RemoteReset,
  RemoteRefusedStreamReset,
  LocalRefusedStreamReset,
};

// Lifetime events of one stream (request/response exchange).
class StreamCallbacks {
 public:
  virtual ~StreamCallbacks() = default;
  virtual void onResetStream(StreamResetReason reason) = 0;
  // The connection's write buffer is above / back below its watermark: stop / resume sending
  // body bytes into this stream.
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

class Stream {
 public:
  virtual ~Stream() = default;
  virtual void addCallbacks(StreamCallbacks& callbacks) = 0;
  virtual void removeCallbacks(StreamCallbacks& callbacks) = 0;
  virtual void resetStream(StreamResetReason reason) = 0;
  // Stop / resume reading from the connection that carries this stream (counted).
  virtual void readDisable(bool disable) = 0;
};

// Sends a response downstream.
class ResponseEncoder {
 public:
  virtual ~ResponseEncoder() = default;
  virtual void encode100ContinueHeaders() = 0;
  // `headers` carries ":status"; the codec adds Content-Length/Transfer-Encoding framing when
  // the caller provides neither, and "connection: close" when the connection will close.
  virtual void encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) = 0;
  virtual void encodeData(Buffer::Instance& data, bool end_stream) = 0;
  // Ends the response with trailers. HTTP/1 writes them after a chunked body only when
  // enable_trailers is set (Envoy's Http1ProtocolOptions), else just ends the body.
  virtual void encodeTrailers(const ResponseTrailerMap& trailers) = 0;
  virtual Stream& getStream() = 0;
};

// Receives a request from downstream.
class RequestDecoder {
 public:
  virtual ~RequestDecoder() = default;
  virtual void decodeHeaders(RequestHeaderMapPtr&& headers, bool end_stream) = 0;
  virtual void decodeData(Buffer::Instance& data, bool end_stream) = 0;
  // The request's trailers; the request is complete (no end_stream call precedes them).
  virtual void decodeTrailers(RequestTrailerMapPtr&& trailers) = 0;
};

// Sends a request upstream.
class RequestEncoder {
 public:
  virtual ~RequestEncoder() = default;
  // `headers` carries ":method", ":path" and ":authority" (sent as Host).
  virtual void encodeHeaders(const RequestHeaderMap& headers, bool end_stream) = 0;
  virtual void encodeData(Buffer::Instance& data, bool end_stream) = 0;
  // Ends the request with trailers (HTTP/1: see ResponseEncoder::encodeTrailers).
  virtual void encodeTrailers(const RequestTrailerMap& trailers) = 0;
  virtual Stream& getStream() = 0;
};

// Receives a response from upstream.
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  virtual void decode100ContinueHeaders(ResponseHeaderMapPtr&& headers) = 0;
  virtual void decodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) = 0;
  virtual void decodeData(Buffer::Instance& data, bool end_stream) = 0;
  // The response's trailers; the response is complete.
  virtual void decodeTrailers(ResponseTrailerMapPtr&& trailers) = 0;
};

// Why dispatch() failed; a server answers with `http_code` (400, 431, ...) then closes.
struct CodecError {
  uint32_t http_code;
  std::string details;  // e.g. "http1.invalid_header_name" style, for logs and stats
};

// Where a codec writes its bytes (the owner forwards them to the Network::Connection).
class CodecOutput {
 public:
  virtual ~CodecOutput() = default;
  // Takes every byte of `data` (moves it; `data` ends up empty).
  virtual void write(Buffer::Instance& data, bool end_stream) = 0;
  // Stop / resume reading from the connection (counted, like Network::Connection::readDisable,
  // which is what the owner forwards to). Used by Stream::readDisable() and by the server codec
  // to hold back pipelined requests while a response is outstanding. Re-enabling must not
  // re-enter dispatch() synchronously: the network connection re-offers buffered bytes from
  // the event loop. The default does nothing (no back-pressure), for owners without a socket.
  virtual void readDisable(bool /*disable*/) {}
  // How many of the bytes write() took so far the socket has sent: a codec that limits what it
  // queues (HTTP/2's outbound frame limits) tells from it what is still waiting. nullopt (the
  // default): everything counts as sent.
  virtual std::optional<uint64_t> bytesFlushed() const { return std::nullopt; }
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Parse as much of `data` as possible, draining what was consumed. Bytes that belong to a
  // following pipelined request stay in `data` while the current response is outstanding.
  // A protocol error returns a non-OK status; lastError() then says which response to send.
  //
  // Pipelining contract (server): dispatch() stops after each complete request whose response
  // is not finished yet, leaves the following bytes in `data` and returns OK (calling it again
  // meanwhile consumes nothing, and the codec calls CodecOutput::readDisable(true) while bytes
  // wait). Once the response has been encoded with end_stream, the codec re-enables reading
  // and calls ServerConnectionCallbacks::onResponseComplete(); the owner then calls dispatch()
  // again with the retained bytes (the network connection re-offers them when reading resumes).
  // A response encoded synchronously from inside dispatch() lets the same dispatch() go on to
  // the next request, up to a limit per dispatch(); past it, and whenever a response leaves
  // the connection's write buffer above its high watermark, the codec stops with the rest in
  // `data` and uses readDisable() so that the connection re-offers it later (on the next loop
  // iteration, or at the low watermark). Never call dispatch() re-entrantly from a codec
  // callback.
  virtual absl::Status dispatch(Buffer::Instance& data) = 0;
  virtual const CodecError& lastError() const = 0;
  // The protocol this connection speaks; for an HTTP/1 server, the current (or last) request's
  // version (Http10 or Http11).
  virtual Protocol protocol() const = 0;
  // The underlying connection's write buffer crossed its watermarks.
  virtual void onUnderlyingConnectionAboveWriteBufferHighWatermark() = 0;
  virtual void onUnderlyingConnectionBelowWriteBufferLowWatermark() = 0;
};

class ServerConnectionCallbacks {
 public:
  virtual ~ServerConnectionCallbacks() = default;
  // A new request begins (its first byte arrived); the returned decoder receives it. When
  // dispatch() then fails, the owner answers on `response_encoder` with lastError().http_code
  // unless the response has already started.
  virtual RequestDecoder& newStream(ResponseEncoder& response_encoder) = 0;
  // The current response has been fully encoded (end_stream). If closeAfterResponse(), close
  // the connection once the write buffer is flushed; otherwise retained pipelined bytes may be
  // dispatched again (see Connection::dispatch). Added by the codec; the default does nothing.
  virtual void onResponseComplete() {}
  // Reading stopped (true) or resumed (false) because the connection's write buffer was above
  // its high watermark when the next request would have begun; for flow-control stats.
  virtual void onReadingPaused(bool /*paused*/) {}
  // The codec failed outside dispatch() (HTTP/2: an outbound frame flood while encoding);
  // lastError() says why. The owner closes the connection (not from inside this call).
  virtual void onCodecError() {}
};

class ServerConnection : public Connection {
 public:
  // The last response on this connection will carry "connection: close" (drain, or the request
  // asked for it). Sticky.
  virtual void setCloseAfterResponse() = 0;
  virtual bool closeAfterResponse() const = 0;
};

class ClientConnection : public Connection {
 public:
  virtual RequestEncoder& newStream(ResponseDecoder& response_decoder) = 0;
  // True once the server said "connection: close" or the response ended the connection.
  virtual bool remoteWantsClose() const = 0;
  // The owner saw the connection close (EOF or error). A response delimited by the close ends
  // with decodeData(end_stream=true); any other unfinished exchange is reset with
  // StreamResetReason::ConnectionTermination. The codec accepts no new stream afterwards.
  virtual void onConnectionClose() = 0;
  // After onConnectionClose(), how the unfinished exchange ended: ProtocolError when a response
  // had begun and was cut short (Envoy's HTTP/1 parser judges the end of input so),
  // ConnectionTermination otherwise.
  virtual StreamResetReason closeResetReason() const {
    return StreamResetReason::ConnectionTermination;
  }
};

using ServerConnectionPtr = std::unique_ptr<ServerConnection>;
using ClientConnectionPtr = std::unique_ptr<ClientConnection>;

}  // namespace Proxy::Http
