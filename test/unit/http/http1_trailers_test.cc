// HTTP/1.1 trailers in both codecs: decoded and encoded only with enable_trailers (Envoy's
// Http1ProtocolOptions), dropped otherwise; and the protocol each codec reports.

#include <memory>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/http1/client_connection_impl.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "test/unit/http/codec_test_util.h"

namespace Proxy::Http {
namespace {

constexpr std::string_view kChunkedPostWithTrailers =
    "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nX-Checksum: abc\r\n\r\n";

Http1Settings withTrailers(bool enabled) {
  Http1Settings settings;
  settings.enable_trailers = enabled;
  return settings;
}

TEST(Http1TrailersTest, ServerDecodesRequestTrailersWhenEnabled) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, withTrailers(true));

  // A chunked POST whose body ends with two trailer fields, in one read.
  Buffer::Instance input;
  input.add(kChunkedPostWithTrailers);
  ASSERT_TRUE(codec.dispatch(input).ok());

  // The body goes first without end_stream; the trailers (lower-cased) end the request.
  RecordingRequestDecoder& decoder = callbacks.decoder(0);
  EXPECT_FALSE(decoder.headers_end_stream_);
  EXPECT_EQ(decoder.body_, "hello");
  ASSERT_NE(decoder.trailers_, nullptr);
  EXPECT_EQ(dump(*decoder.trailers_), "grpc-status: 0\nx-checksum: abc\n");
  EXPECT_TRUE(decoder.ended_);
  EXPECT_EQ(codec.protocol(), Protocol::Http11);
}

TEST(Http1TrailersTest, TrailersCutAcrossSlicesAfterTheBodyAreDecoded) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, withTrailers(true));

  // The body and the trailers share slices (body bytes are moved out of a slice while its
  // trailer bytes are still being parsed), and a slice boundary cuts a trailer name and value.
  Buffer::Instance input;
  addSlices(input, {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "5\r\nhello\r\n0\r\nGrpc-Sta", "tus: 0\r\nX-Checksum: a", "bc\r\n\r\n"});
  ASSERT_TRUE(codec.dispatch(input).ok());

  RecordingRequestDecoder& decoder = callbacks.decoder(0);
  EXPECT_EQ(decoder.body_, "hello");
  ASSERT_NE(decoder.trailers_, nullptr);
  EXPECT_EQ(dump(*decoder.trailers_), "grpc-status: 0\nx-checksum: abc\n");
  EXPECT_TRUE(decoder.ended_);
}

TEST(Http1TrailersTest, ServerDropsRequestTrailersByDefault) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, withTrailers(false));

  // The same request: the trailers are parsed and dropped, the body ends with end_stream.
  Buffer::Instance input;
  input.add(kChunkedPostWithTrailers);
  ASSERT_TRUE(codec.dispatch(input).ok());
  RecordingRequestDecoder& decoder = callbacks.decoder(0);
  EXPECT_EQ(decoder.body_, "hello");
  EXPECT_EQ(decoder.trailers_, nullptr);
  EXPECT_TRUE(decoder.ended_);
}

TEST(Http1TrailersTest, ServerEmptyTrailerSectionEndsTheBodyNormally) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, withTrailers(true));

  // "0\r\n\r\n": no trailer fields, so no decodeTrailers() even with trailers enabled.
  Buffer::Instance input;
  input.add("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
  ASSERT_TRUE(codec.dispatch(input).ok());
  EXPECT_EQ(callbacks.decoder(0).trailers_, nullptr);
  EXPECT_EQ(callbacks.decoder(0).data_sizes_, (std::vector<uint64_t>{2}));
  EXPECT_TRUE(callbacks.decoder(0).ended_);
}

TEST(Http1TrailersTest, ServerTrailersCountAgainstTheHeaderLimits) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  Http1Settings settings = withTrailers(true);
  settings.max_headers_count = 2;
  ServerConnectionImpl codec(output, callbacks, settings);

  // Three trailer lines against a limit of two: 431 as for headers.
  Buffer::Instance input;
  input.add(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\na: 1\r\nb: 2\r\n"
      "c: 3\r\n\r\n");
  EXPECT_FALSE(codec.dispatch(input).ok());
  EXPECT_EQ(codec.lastError().http_code, 431u);
  EXPECT_EQ(codec.lastError().details, "http1.too_many_headers");
}

TEST(Http1TrailersTest, ServerEncodesResponseTrailersAfterAChunkedBody) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, withTrailers(true));
  Buffer::Instance input;
  input.add("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(codec.dispatch(input).ok());
  ResponseEncoder& encoder = callbacks.encoder(0);

  // Headers without a length (chunked), a body chunk, then trailers: the last chunk carries
  // them; pseudo-headers and hop-by-hop names never go on the wire.
  encoder.encodeHeaders(responseHeaders(200), /*end_stream=*/false);
  encodeBody(encoder, "abc", /*end_stream=*/false);
  ResponseTrailerMap trailers;
  trailers.addCopy("grpc-status", "0");
  trailers.addCopy(":status", "200");
  trailers.addCopy("connection", "close");
  trailers.addCopy("grpc-message", "ok");
  encoder.encodeTrailers(trailers);
  EXPECT_EQ(output.take(),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"
            "0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n");
  EXPECT_EQ(callbacks.responses_complete_, 1);
}

TEST(Http1TrailersTest, ServerWithoutEnableTrailersJustEndsTheBody) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, withTrailers(false));
  Buffer::Instance input;
  input.add("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(codec.dispatch(input).ok());
  ResponseEncoder& encoder = callbacks.encoder(0);

  // Envoy: without enable_trailers, encodeTrailers() only ends the chunked body.
  encoder.encodeHeaders(responseHeaders(200), /*end_stream=*/false);
  ResponseTrailerMap trailers;
  trailers.addCopy("grpc-status", "0");
  encoder.encodeTrailers(trailers);
  EXPECT_EQ(output.take(), "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(callbacks.responses_complete_, 1);
}

TEST(Http1TrailersTest, ServerContentLengthResponseEndsWithoutTrailers) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output, callbacks, withTrailers(true));
  Buffer::Instance input;
  input.add("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(codec.dispatch(input).ok());
  ResponseEncoder& encoder = callbacks.encoder(0);

  // A body framed by Content-Length cannot carry trailers: they are dropped, the response ends.
  encoder.encodeHeaders(responseHeaders(200, {{"content-length", "2"}}), /*end_stream=*/false);
  encodeBody(encoder, "ok", /*end_stream=*/false);
  ResponseTrailerMap trailers;
  trailers.addCopy("grpc-status", "0");
  encoder.encodeTrailers(trailers);
  EXPECT_EQ(output.take(), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  EXPECT_EQ(callbacks.responses_complete_, 1);
}

TEST(Http1TrailersTest, ServerReportsHttp10ForAnHttp10Request) {
  FakeOutput output;
  FakeServerCallbacks callbacks;
  Http1Settings settings;
  settings.accept_http_10 = true;
  ServerConnectionImpl codec(output, callbacks, settings);
  Buffer::Instance input;
  input.add("GET / HTTP/1.0\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(codec.dispatch(input).ok());
  EXPECT_EQ(codec.protocol(), Protocol::Http10);
  EXPECT_EQ(protocolString(codec.protocol()), "HTTP/1.0");
}

class ClientTrailersTest : public testing::Test {
 protected:
  class Decoder : public ResponseDecoder {
   public:
    void decode100ContinueHeaders(ResponseHeaderMapPtr&&) override {}
    void decodeHeaders(ResponseHeaderMapPtr&&, bool end_stream) override { ended_ = end_stream; }
    void decodeData(Buffer::Instance& data, bool end_stream) override {
      body_ += data.toString();
      data.drain(data.length());
      ended_ = end_stream;
    }
    void decodeTrailers(ResponseTrailerMapPtr&& trailers) override {
      trailers_ = std::move(trailers);
      ended_ = true;
    }
    std::string body_;
    ResponseTrailerMapPtr trailers_;
    bool ended_ = false;
  };

  RequestEncoder& start(bool enable_trailers) {
    codec_ = std::make_unique<ClientConnectionImpl>(output_, withTrailers(enable_trailers));
    RequestEncoder& encoder = codec_->newStream(decoder_);
    RequestHeaderMap headers;
    headers.addCopy(Headers::Method, "POST");
    headers.addCopy(Headers::Path, "/svc");
    headers.addCopy(Headers::Authority, "up");
    encoder.encodeHeaders(headers, /*end_stream=*/false);
    return encoder;
  }

  FakeOutput output_;
  std::unique_ptr<ClientConnectionImpl> codec_;
  Decoder decoder_;
};

TEST_F(ClientTrailersTest, RequestTrailersAndResponseTrailersWhenEnabled) {
  // A request without Content-Length goes chunked; its body ends with a trailer.
  RequestEncoder& encoder = start(/*enable_trailers=*/true);
  Buffer::Instance body;
  body.add("data");
  encoder.encodeData(body, /*end_stream=*/false);
  RequestTrailerMap trailers;
  trailers.addCopy("x-sum", "7");
  encoder.encodeTrailers(trailers);
  EXPECT_EQ(output_.take(),
            "POST /svc HTTP/1.1\r\nhost: up\r\ntransfer-encoding: chunked\r\n\r\n"
            "4\r\ndata\r\n0\r\nx-sum: 7\r\n\r\n");

  // The chunked response ends with trailers: the decoder gets the body, then them.
  Buffer::Instance input;
  input.add(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
      "Grpc-Status: 14\r\n\r\n");
  ASSERT_TRUE(codec_->dispatch(input).ok());
  EXPECT_EQ(decoder_.body_, "ok");
  ASSERT_NE(decoder_.trailers_, nullptr);
  EXPECT_EQ(dump(*decoder_.trailers_), "grpc-status: 14\n");
  EXPECT_TRUE(decoder_.ended_);
  EXPECT_EQ(codec_->protocol(), Protocol::Http11);
}

TEST_F(ClientTrailersTest, TrailersDroppedBothWaysByDefault) {
  // Without enable_trailers the request's trailers are not sent: the body just ends.
  RequestEncoder& encoder = start(/*enable_trailers=*/false);
  RequestTrailerMap trailers;
  trailers.addCopy("x-sum", "7");
  encoder.encodeTrailers(trailers);
  EXPECT_EQ(output_.take(),
            "POST /svc HTTP/1.1\r\nhost: up\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n");

  // And the response's trailers are parsed and dropped.
  Buffer::Instance input;
  input.add(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
      "Grpc-Status: 14\r\n\r\n");
  ASSERT_TRUE(codec_->dispatch(input).ok());
  EXPECT_EQ(decoder_.body_, "ok");
  EXPECT_EQ(decoder_.trailers_, nullptr);
  EXPECT_TRUE(decoder_.ended_);
}

}  // namespace
}  // namespace Proxy::Http
