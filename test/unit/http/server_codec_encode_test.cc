// HTTP/1.1 server codec tests, encoding responses: each test is a short script — bytes in, the
// exact decoder calls out; encoder calls in, the exact bytes out.

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "proxy/http/utility.h"
#include "test/unit/http/codec_test_util.h"

namespace Proxy::Http {
namespace {

// ---------------------------------------------------------------------------------------------
// Server codec: encoding responses.

class ServerEncodeTest : public ServerCodecTest {
 protected:
  // Decodes `request` and returns the encoder for its response.
  ResponseEncoder& startRequest(std::string_view request) {
    EXPECT_TRUE(dispatch(request).ok());
    EXPECT_EQ(callbacks_.encoders_.size(), 1u);
    return callbacks_.encoder(0);
  }
  static constexpr std::string_view kGet = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
};

TEST_F(ServerEncodeTest, ContentLengthResponse) {
  ResponseEncoder& encoder = startRequest(kGet);
  // Headers in order, pseudo-headers skipped, caller's content-length kept.
  encoder.encodeHeaders(
      responseHeaders(200,
                      {{"content-type", "text/plain"}, {"content-length", "5"}, {"x-custom", "1"}}),
      /*end_stream=*/false);
  encodeBody(encoder, "hello", /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n"
            "x-custom: 1\r\n\r\nhello");
  EXPECT_EQ(callbacks_.responses_complete_, 1);
  EXPECT_FALSE(codec_.closeAfterResponse());
}

TEST_F(ServerEncodeTest, HeadersOnlyResponseGetsContentLengthZero) {
  ResponseEncoder& encoder = startRequest(kGet);
  encoder.encodeHeaders(responseHeaders(404), /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
}

TEST_F(ServerEncodeTest, ChunkedResponse) {
  ResponseEncoder& encoder = startRequest(kGet);
  // No length known: chunked, one chunk per encodeData, last-chunk at the end.
  encoder.encodeHeaders(responseHeaders(200), /*end_stream=*/false);
  encodeBody(encoder, "hello", /*end_stream=*/false);
  encodeBody(encoder, std::string(26, 'z'), /*end_stream=*/false);
  encodeBody(encoder, "", /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n1a\r\nzzzzzzzzzzzzzzzzzzzzzzzzzz\r\n0\r\n\r\n");
}

TEST_F(ServerEncodeTest, HopByHopHeadersReplacedByOwnFraming) {
  ResponseEncoder& encoder = startRequest(kGet);
  // What an upstream response might carry: its own framing and connection headers.
  encoder.encodeHeaders(responseHeaders(200, {{"connection", "keep-alive"},
                                              {"keep-alive", "timeout=5"},
                                              {"transfer-encoding", "chunked"},
                                              {"proxy-connection", "x"},
                                              {"upgrade", "h2c"},
                                              {"server", "up"}}),
                        /*end_stream=*/false);
  encodeBody(encoder, "ab", /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 200 OK\r\nserver: up\r\ntransfer-encoding: chunked\r\n\r\n"
            "2\r\nab\r\n0\r\n\r\n");
}

TEST_F(ServerEncodeTest, HeadResponseHasNoBody) {
  ResponseEncoder& encoder = startRequest("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  // The length of the GET body is announced; no body bytes follow, none are invented.
  encoder.encodeHeaders(responseHeaders(200, {{"content-length", "42"}}), /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n");
}

TEST_F(ServerEncodeTest, HeadResponseDropsBodyAndInventsNoFraming) {
  ResponseEncoder& encoder = startRequest("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  encoder.encodeHeaders(responseHeaders(200), /*end_stream=*/false);
  encodeBody(encoder, "must not appear", /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(callbacks_.responses_complete_, 1);
}

TEST_F(ServerEncodeTest, NoContentAndNotModifiedHaveNoFraming) {
  ResponseEncoder& encoder = startRequest(kGet);
  encoder.encodeHeaders(responseHeaders(204, {{"x-a", "b"}}), /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 204 No Content\r\nx-a: b\r\n\r\n");

  // 304 on the next request, with a body the codec must drop.
  ASSERT_TRUE(dispatch("GET / HTTP/1.1\r\nHost: h\r\n\r\n").ok());
  callbacks_.encoder(1).encodeHeaders(responseHeaders(304), /*end_stream=*/false);
  encodeBody(callbacks_.encoder(1), "xx", /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 304 Not Modified\r\n\r\n");
}

TEST_F(ServerEncodeTest, SetCloseAfterResponse) {
  ResponseEncoder& encoder = startRequest(kGet);
  // Draining: the owner asks the codec to end the connection with this response.
  codec_.setCloseAfterResponse();
  encoder.encodeHeaders(responseHeaders(503), /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  EXPECT_TRUE(codec_.closeAfterResponse());
}

TEST_F(ServerEncodeTest, ReplyFromInsideDispatchIsOneWrite) {
  // A local reply with a body, sent from decodeHeaders: headers and body leave together.
  callbacks_.on_new_stream_ = [this](RecordingRequestDecoder& decoder) {
    decoder.on_headers_ = [this] { Utility::encodeLocalReply(callbacks_.encoder(0), 200, "pong"); };
  };
  ASSERT_TRUE(dispatch(kGet).ok());
  EXPECT_EQ(output_.writes_, 1);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
            "content-length: 4\r\n\r\npong");
}

TEST_F(ServerEncodeTest, EarlyResponseClosesTheConnection) {
  // A POST whose body is still arriving when the response is sent (e.g. a 413).
  ASSERT_TRUE(dispatch("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc").ok());
  callbacks_.encoder(0).encodeHeaders(responseHeaders(413), /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n"
            "connection: close\r\n\r\n");
  EXPECT_TRUE(codec_.closeAfterResponse());

  // The rest of the body is parsed and dropped; the decoder hears nothing more.
  ASSERT_TRUE(dispatch("defghijGET / HTTP/1.1\r\nHost: h\r\n\r\n").ok());
  EXPECT_EQ(callbacks_.decoder(0).body_, "abc");
  EXPECT_EQ(callbacks_.decoders_.size(), 1u);
}

TEST_F(ServerEncodeTest, WatermarksReachTheActiveStream) {
  ResponseEncoder& encoder = startRequest(kGet);
  RecordingStreamCallbacks stream_callbacks;
  encoder.getStream().addCallbacks(stream_callbacks);

  // The connection's write buffer crosses its watermarks.
  codec_.onUnderlyingConnectionAboveWriteBufferHighWatermark();
  codec_.onUnderlyingConnectionBelowWriteBufferLowWatermark();
  EXPECT_EQ(stream_callbacks.above_, 1);
  EXPECT_EQ(stream_callbacks.below_, 1);

  // Callbacks added while the connection is backed up hear about it at once.
  codec_.onUnderlyingConnectionAboveWriteBufferHighWatermark();
  RecordingStreamCallbacks late;
  encoder.getStream().addCallbacks(late);
  EXPECT_EQ(late.above_, 1);

  // Removed callbacks hear nothing more.
  encoder.getStream().removeCallbacks(stream_callbacks);
  codec_.onUnderlyingConnectionBelowWriteBufferLowWatermark();
  EXPECT_EQ(stream_callbacks.below_, 1);
  EXPECT_EQ(late.below_, 1);
}

TEST_F(ServerEncodeTest, StreamReadDisableGoesToTheOwner) {
  ResponseEncoder& encoder = startRequest(kGet);
  encoder.getStream().readDisable(true);
  EXPECT_EQ(output_.read_disable_count_, 1);
  encoder.getStream().readDisable(false);
  EXPECT_EQ(output_.read_disable_count_, 0);
}

TEST_F(ServerEncodeTest, ResetStreamEndsTheConnection) {
  ResponseEncoder& encoder = startRequest("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\n");
  RecordingStreamCallbacks stream_callbacks;
  encoder.getStream().addCallbacks(stream_callbacks);

  // The owner gives up on the response half-way.
  encoder.encodeHeaders(responseHeaders(200), /*end_stream=*/false);
  encoder.getStream().resetStream(StreamResetReason::LocalReset);
  EXPECT_EQ(stream_callbacks.resets_,
            std::vector<StreamResetReason>{StreamResetReason::LocalReset});
  EXPECT_TRUE(codec_.closeAfterResponse());

  // Nothing further is decoded or encoded.
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.decoders_.size(), 1u);
  output_.take();
  encodeBody(encoder, "late", true);
  EXPECT_EQ(output_.take(), "");
}

TEST_F(ServerEncodeTest, UnknownStatusGetsGenericReason) {
  ResponseEncoder& encoder = startRequest(kGet);
  encoder.encodeHeaders(responseHeaders(299), /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 299 Unknown\r\ncontent-length: 0\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// Server codec: a large body stays streamed.

// Counts body bytes without keeping them.
class CountingDecoder : public RequestDecoder {
 public:
  void decodeHeaders(RequestHeaderMapPtr&&, bool end_stream) override { ended_ = end_stream; }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    calls_++;
    largest_ = std::max<uint64_t>(largest_, data.length());
    total_ += data.length();
    data.drain(data.length());
    ended_ = end_stream;
  }
  void decodeTrailers(RequestTrailerMapPtr&&) override { ended_ = true; }
  uint64_t calls_ = 0;
  uint64_t largest_ = 0;
  uint64_t total_ = 0;
  bool ended_ = false;
};

class CountingCallbacks : public ServerConnectionCallbacks {
 public:
  RequestDecoder& newStream(ResponseEncoder&) override { return decoder_; }
  CountingDecoder decoder_;
};

TEST(ServerCodecStreamingTest, HundredMegabyteBodyInBoundedPieces) {
  FakeOutput output;
  CountingCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, Http1Settings());
  constexpr uint64_t kBodySize = 100ull * 1024 * 1024;
  constexpr uint64_t kReadSize = 64 * 1024;

  // Headers first, then the body in 64 KiB reads, as a socket would deliver it.
  Buffer::Instance input;
  input.add("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(kBodySize) +
            "\r\n\r\n");
  ASSERT_TRUE(codec.dispatch(input).ok());
  const std::string read(kReadSize, 'b');
  for (uint64_t sent = 0; sent < kBodySize; sent += kReadSize) {
    input.add(read);
    ASSERT_TRUE(codec.dispatch(input).ok());
    ASSERT_EQ(input.length(), 0u);
  }

  // Every byte arrived, one decodeData per read, none larger than a read.
  EXPECT_EQ(callbacks.decoder_.total_, kBodySize);
  EXPECT_EQ(callbacks.decoder_.calls_, kBodySize / kReadSize);
  EXPECT_EQ(callbacks.decoder_.largest_, kReadSize);
  EXPECT_TRUE(callbacks.decoder_.ended_);
}

}  // namespace
}  // namespace Proxy::Http
