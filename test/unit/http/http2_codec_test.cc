// HTTP/2 server codec tests: frames produced by a real nghttp2 client session (or hand-made for
// abuse) go into the codec; the decoder calls, the codec's frames (read back by the client
// session) and the http2.* counters come out.

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "proxy/http/http2/server_connection_impl.h"
#include "test/integration/http2_test_client.h"
#include "test/unit/http/codec_test_util.h"

namespace Proxy::Http::Http2 {
namespace {

using Proxy::Test::Http2TestClient;

class Http2CodecTest : public testing::Test {
 protected:
  void start() {
    codec_ = std::make_unique<ServerConnectionImpl>(output_, callbacks_, stats_, settings_);
  }
  // The client's pending frames into the codec.
  absl::Status toServer(const std::string& extra = "") {
    input_.add(client_->takeOutput() + extra);
    return codec_->dispatch(input_);
  }
  // The codec's frames into the client.
  void toClient() { EXPECT_TRUE(client_->feed(output_.take())); }
  // Both ways until quiet.
  void exchange() {
    for (int i = 0; i < 4; i++) {
      ASSERT_TRUE(toServer().ok());
      toClient();
    }
  }
  uint64_t counter(const std::string& name) { return store_.counter("http2." + name).value(); }

  Stats::Store store_;
  ServerCodecStats stats_{Stats::Scope(store_, "http2.")};
  ServerSettings settings_;
  FakeOutput output_;
  FakeServerCallbacks callbacks_;
  std::unique_ptr<ServerConnectionImpl> codec_;
  std::unique_ptr<Http2TestClient> client_ = std::make_unique<Http2TestClient>();
  Buffer::Instance input_;
};

TEST_F(Http2CodecTest, RequestAndResponseWithTrailersBothWays) {
  start();
  // A POST with a body and a trailer.
  const int32_t id =
      client_->request(Http2TestClient::post("/svc"), std::string("hello"), {{"x-sum", "7"}});
  exchange();

  // The decoder gets the pseudo-headers as sent, the body, then the trailers ending it.
  ASSERT_EQ(callbacks_.decoders_.size(), 1u);
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(dump(*decoder.headers_),
            ":method: POST\n:scheme: http\n:path: /svc\n:authority: example.com\n");
  EXPECT_FALSE(decoder.headers_end_stream_);
  EXPECT_EQ(decoder.body_, "hello");
  ASSERT_NE(decoder.trailers_, nullptr);
  EXPECT_EQ(dump(*decoder.trailers_), "x-sum: 7\n");
  EXPECT_EQ(codec_->protocol(), Protocol::Http2);

  // The response: headers (connection-specific ones dropped), a body, trailers.
  ResponseEncoder& encoder = callbacks_.encoder(0);
  encoder.encodeHeaders(responseHeaders(200, {{"connection", "close"}, {"x-a", "b"}}), false);
  encodeBody(encoder, "world", false);
  ResponseTrailerMap trailers;
  trailers.addCopy("grpc-status", "0");
  encoder.encodeTrailers(trailers);
  toClient();
  const Proxy::Test::Http2StreamResult& result = client_->result(id);
  EXPECT_EQ(result.headers, (Proxy::Test::Http2Headers{{":status", "200"}, {"x-a", "b"}}));
  EXPECT_EQ(result.body, "world");
  EXPECT_EQ(result.trailers, (Proxy::Test::Http2Headers{{"grpc-status", "0"}}));
  EXPECT_TRUE(result.ended);
  EXPECT_FALSE(result.reset_code.has_value());
}

TEST_F(Http2CodecTest, StreamsAreIndependentAndOneResetLeavesTheOthers) {
  start();
  // Two GETs on one connection.
  const int32_t first = client_->request(Http2TestClient::get("/1"));
  const int32_t second = client_->request(Http2TestClient::get("/2"));
  exchange();
  ASSERT_EQ(callbacks_.decoders_.size(), 2u);
  RecordingStreamCallbacks first_callbacks;
  callbacks_.encoder(0).getStream().addCallbacks(first_callbacks);

  // The second is answered first; then the client resets the first.
  callbacks_.encoder(1).encodeHeaders(responseHeaders(200, {{"content-length", "0"}}), true);
  client_->reset(first);
  exchange();
  EXPECT_TRUE(client_->result(second).ended);
  EXPECT_EQ(client_->result(second).header(":status"), "200");
  EXPECT_EQ(first_callbacks.resets_,
            (std::vector<StreamResetReason>{StreamResetReason::RemoteReset}));
  EXPECT_EQ(counter("rx_reset"), 1u);

  // The connection serves a third.
  const int32_t third = client_->request(Http2TestClient::get("/3"));
  exchange();
  ASSERT_EQ(callbacks_.decoders_.size(), 3u);
  callbacks_.encoder(2).encodeHeaders(responseHeaders(204), true);
  toClient();
  EXPECT_EQ(client_->result(third).header(":status"), "204");
}

TEST_F(Http2CodecTest, TheWindowReopensOnlyAsTheBodyIsConsumed) {
  settings_.initial_stream_window_size = 65535;
  settings_.initial_connection_window_size = 1 << 20;
  start();
  // The stream's consumer is backed up from the start (the router would read-disable it).
  callbacks_.on_new_stream_ = [this](RecordingRequestDecoder&) {
    callbacks_.encoders_.back()->getStream().readDisable(true);
  };
  const int32_t id = client_->request(Http2TestClient::post("/up"), std::string(200 * 1024, 'x'));
  exchange();

  // Only the first window's worth arrives: no WINDOW_UPDATE while read-disabled.
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(decoder.body_.size(), 65535u);
  EXPECT_EQ(nghttp2_session_get_stream_remote_window_size(client_->session(), id), 0);

  // Consumed: the window reopens and the rest follows.
  callbacks_.encoder(0).getStream().readDisable(false);
  toClient();
  exchange();
  exchange();
  EXPECT_EQ(decoder.body_.size(), 200u * 1024);
  EXPECT_TRUE(decoder.ended_);
}

TEST_F(Http2CodecTest, ResponseWaitsForThePeersWindowWithWatermarks) {
  settings_.stream_buffer_limit = 16 * 1024;
  start();
  // A client whose window only opens when the test reads.
  client_ = std::make_unique<Http2TestClient>(/*window=*/65535, /*manual_window=*/true);
  const int32_t id = client_->request(Http2TestClient::get("/dl"));
  exchange();
  ResponseEncoder& encoder = callbacks_.encoder(0);
  RecordingStreamCallbacks stream_callbacks;
  encoder.getStream().addCallbacks(stream_callbacks);

  // 200 KiB for a 64 KiB window: the rest waits in the stream, above its 16 KiB limit.
  encoder.encodeHeaders(responseHeaders(200), false);
  encodeBody(encoder, std::string(200 * 1024, 'y'), true);
  toClient();
  EXPECT_EQ(client_->result(id).body.size(), 65535u);
  EXPECT_EQ(stream_callbacks.above_, 1);
  EXPECT_EQ(stream_callbacks.below_, 0);

  // The client reads everything it got, repeatedly: the stream drains below its limit and
  // ends.
  for (int i = 0; i < 8 && !client_->result(id).ended; i++) {
    client_->consume(id, client_->result(id).body.size());
    ASSERT_TRUE(toServer().ok());
    toClient();
  }
  EXPECT_EQ(client_->result(id).body.size(), 200u * 1024);
  EXPECT_TRUE(client_->result(id).ended);
  EXPECT_EQ(stream_callbacks.below_, 1);
}

TEST_F(Http2CodecTest, HeadersOverTheLimitResetTheStream) {
  settings_.max_headers_count = 6;
  start();
  // Ten headers against a limit of six: the stream is reset, no decoder ever sees it.
  Proxy::Test::Http2Headers headers = Http2TestClient::get("/");
  for (int i = 0; i < 6; i++) {
    headers.emplace_back("x-h" + std::to_string(i), "v");
  }
  const int32_t id = client_->request(headers);
  exchange();
  EXPECT_TRUE(callbacks_.decoders_.empty());
  EXPECT_EQ(client_->result(id).reset_code, NGHTTP2_INTERNAL_ERROR);
  EXPECT_EQ(counter("header_overflow"), 1u);
}

TEST_F(Http2CodecTest, InvalidPseudoHeadersFailTheConnectionByDefault) {
  start();
  // An unknown pseudo-header: Envoy 1.40 closes the connection (no stream error by default).
  const std::string bad = Http2TestClient::rawFrame(
      NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
      Http2TestClient::hpackLiteral({{":method", "GET"},
                                     {":scheme", "http"},
                                     {":path", "/"},
                                     {":authority", "h"},
                                     {":foo", "x"}}));
  input_.add(Http2TestClient::preface() + bad);
  EXPECT_FALSE(codec_->dispatch(input_).ok());
  EXPECT_EQ(codec_->lastError().details, "http2.violation.of.messaging.rule");
  EXPECT_EQ(counter("rx_messaging_error"), 1u);
  EXPECT_TRUE(callbacks_.decoders_.empty());
}

TEST_F(Http2CodecTest, InvalidPseudoHeadersResetTheStreamWithTheOverride) {
  settings_.stream_error_on_invalid_http_messaging = true;
  start();
  // Hand-made HEADERS: an unknown pseudo-header, then a request without :path.
  const std::string bad1 = Http2TestClient::rawFrame(
      NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
      Http2TestClient::hpackLiteral({{":method", "GET"},
                                     {":scheme", "http"},
                                     {":path", "/"},
                                     {":authority", "h"},
                                     {":foo", "x"}}));
  const std::string bad3 = Http2TestClient::rawFrame(
      NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3,
      Http2TestClient::hpackLiteral(
          {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}}));
  input_.add(Http2TestClient::preface() + bad1 + bad3);
  ASSERT_TRUE(codec_->dispatch(input_).ok());

  // Both streams reset with PROTOCOL_ERROR; the connection lives on.
  const auto frames = Http2TestClient::parseFrames(output_.take());
  ASSERT_TRUE(Http2TestClient::findFrame(frames, NGHTTP2_RST_STREAM, 1).has_value());
  EXPECT_EQ(Http2TestClient::findFrame(frames, NGHTTP2_RST_STREAM, 1)->errorCode(),
            NGHTTP2_PROTOCOL_ERROR);
  ASSERT_TRUE(Http2TestClient::findFrame(frames, NGHTTP2_RST_STREAM, 3).has_value());
  EXPECT_EQ(Http2TestClient::findFrame(frames, NGHTTP2_RST_STREAM, 3)->errorCode(),
            NGHTTP2_PROTOCOL_ERROR);
  EXPECT_FALSE(Http2TestClient::findFrame(frames, NGHTTP2_GOAWAY).has_value());
  EXPECT_EQ(counter("rx_messaging_error"), 2u);
  EXPECT_TRUE(callbacks_.decoders_.empty());
  EXPECT_FALSE(codec_->wantsClose());
}

TEST_F(Http2CodecTest, EmptyDataFramesFloodFailsTheConnection) {
  start();
  // An open stream, then two DATA frames without payload or END_STREAM (the limit is one).
  const std::string headers = Http2TestClient::rawFrame(
      NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
      Http2TestClient::hpackLiteral(
          {{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", "h"}}));
  const std::string empty = Http2TestClient::rawFrame(NGHTTP2_DATA, 0, 1, "");
  input_.add(Http2TestClient::preface() + headers + empty + empty);
  const absl::Status status = codec_->dispatch(input_);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(codec_->lastError().details, "http2.inbound_empty_frames_flood");
  EXPECT_EQ(counter("inbound_empty_frames_flood"), 1u);
}

TEST_F(Http2CodecTest, DataAfterEndStreamEndsTheConnectionWithStreamClosed) {
  start();
  // A complete GET, then DATA on the same (half-closed) stream.
  const std::string headers = Http2TestClient::rawFrame(
      NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
      Http2TestClient::hpackLiteral(
          {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "h"}}));
  const std::string data = Http2TestClient::rawFrame(NGHTTP2_DATA, 0, 1, "late");
  input_.add(Http2TestClient::preface() + headers + data);
  ASSERT_TRUE(codec_->dispatch(input_).ok());

  // STREAM_CLOSED (RFC 9113 5.1), which nghttp2 makes a connection error: GOAWAY, and the
  // owner closes the connection. The decoder saw only the complete request.
  const auto frames = Http2TestClient::parseFrames(output_.take());
  ASSERT_TRUE(Http2TestClient::findFrame(frames, NGHTTP2_GOAWAY).has_value());
  EXPECT_EQ(Http2TestClient::findFrame(frames, NGHTTP2_GOAWAY)->errorCode(), NGHTTP2_STREAM_CLOSED);
  EXPECT_TRUE(codec_->wantsClose());
  ASSERT_EQ(callbacks_.decoders_.size(), 1u);
  EXPECT_TRUE(callbacks_.decoder(0).headers_end_stream_);
  EXPECT_TRUE(callbacks_.decoder(0).body_.empty());
}

TEST_F(Http2CodecTest, HostStandsInForAMissingAuthority) {
  start();
  client_->request(
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h.example"}});
  exchange();
  ASSERT_EQ(callbacks_.decoders_.size(), 1u);
  EXPECT_EQ(dump(*callbacks_.decoder(0).headers_),
            ":method: GET\n:scheme: http\n:path: /\n:authority: h.example\n");
}

TEST_F(Http2CodecTest, GoAwayLetsStreamsInFlightFinish) {
  start();
  const int32_t id = client_->request(Http2TestClient::get("/"));
  exchange();
  // Drain: GOAWAY(NO_ERROR) naming the last stream; the stream still gets its response.
  codec_->goAway();
  toClient();
  EXPECT_EQ(client_->goawayCode(), NGHTTP2_NO_ERROR);
  EXPECT_EQ(client_->goawayLastStream(), id);
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200), true);
  toClient();
  EXPECT_TRUE(client_->result(id).ended);
  EXPECT_EQ(counter("goaway_sent"), 1u);
}

}  // namespace
}  // namespace Proxy::Http::Http2
