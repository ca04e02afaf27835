// HTTP/1.1 client codec tests: each test is a short script — encoder calls in, the exact bytes
// out; bytes in, the exact decoder calls out.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/http1/client_connection_impl.h"
#include "test/unit/http/codec_test_util.h"

namespace Proxy::Http {
namespace {

RequestHeaderMap requestHeaders(std::string_view method, std::string_view path,
                                std::string_view authority,
                                std::vector<std::pair<std::string, std::string>> extra = {}) {
  RequestHeaderMap headers;
  headers.addCopy(Headers::Method, method);
  headers.addCopy(Headers::Path, path);
  headers.addCopy(Headers::Scheme, "http");
  headers.addCopy(Headers::Authority, authority);
  for (auto& [key, value] : extra) {
    headers.addCopy(key, value);
  }
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Client codec.

class RecordingResponseDecoder : public ResponseDecoder {
 public:
  void decode100ContinueHeaders(ResponseHeaderMapPtr&& headers) override {
    continue_headers_ = std::move(headers);
  }
  void decodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) override {
    headers_ = std::move(headers);
    headers_end_stream_ = end_stream;
    ended_ = end_stream;
    if (end_stream && on_end_) {
      on_end_();
    }
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    EXPECT_FALSE(ended_) << "data after end_stream";
    data_sizes_.push_back(data.length());
    body_ += data.toString();
    data.drain(data.length());
    ended_ = end_stream;
    if (end_stream && on_end_) {
      on_end_();
    }
  }
  void decodeTrailers(ResponseTrailerMapPtr&& trailers) override {
    EXPECT_FALSE(ended_) << "trailers after end_stream";
    trailers_ = std::move(trailers);
    ended_ = true;
    if (on_end_) {
      on_end_();
    }
  }

  ResponseHeaderMapPtr continue_headers_;
  ResponseTrailerMapPtr trailers_;
  ResponseHeaderMapPtr headers_;
  bool headers_end_stream_ = false;
  bool ended_ = false;
  std::vector<uint64_t> data_sizes_;
  std::string body_;
  std::function<void()> on_end_;
};

class ClientCodecTest : public testing::Test {
 protected:
  absl::Status dispatch(std::string_view bytes) {
    input_.add(bytes);
    return codec_.dispatch(input_);
  }
  // Starts an exchange and sends `headers` (end_stream) so a response can be parsed.
  RequestEncoder& sendRequest(const RequestHeaderMap& headers, bool end_stream = true) {
    RequestEncoder& encoder = codec_.newStream(decoder_);
    encoder.getStream().addCallbacks(stream_callbacks_);
    encoder.encodeHeaders(headers, end_stream);
    return encoder;
  }

  FakeOutput output_;
  Http1Settings settings_;
  ClientConnectionImpl codec_{output_, settings_};
  Buffer::Instance input_;
  RecordingResponseDecoder decoder_;
  RecordingStreamCallbacks stream_callbacks_;
};

TEST_F(ClientCodecTest, GetRequestEncoding) {
  // Host from :authority first, then headers in order; GET without body gets no framing.
  sendRequest(
      requestHeaders("GET", "/x?y=1", "up.example", {{"user-agent", "t/1"}, {"accept", "*/*"}}));
  EXPECT_EQ(output_.take(),
            "GET /x?y=1 HTTP/1.1\r\nhost: up.example\r\nuser-agent: t/1\r\naccept: */*\r\n\r\n");
}

TEST_F(ClientCodecTest, EmptyAuthorityIsSentAsAnEmptyHost) {
  // The client sent "Host:" with nothing after it: the upstream gets the same, not no Host.
  sendRequest(requestHeaders("GET", "/", ""));
  EXPECT_EQ(output_.take(), "GET / HTTP/1.1\r\nhost: \r\n\r\n");
}

TEST_F(ClientCodecTest, HeadRequestEncoding) {
  sendRequest(requestHeaders("HEAD", "/", "up"));
  EXPECT_EQ(output_.take(), "HEAD / HTTP/1.1\r\nhost: up\r\n\r\n");
}

TEST_F(ClientCodecTest, PostWithoutBodyGetsContentLengthZero) {
  sendRequest(requestHeaders("POST", "/form", "up"));
  EXPECT_EQ(output_.take(), "POST /form HTTP/1.1\r\nhost: up\r\ncontent-length: 0\r\n\r\n");
}

TEST_F(ClientCodecTest, BodilessMethodsAreEnvoys) {
  // Envoy 1.40 writes "content-length: 0" for every request without a body except GET, HEAD,
  // DELETE and TRACE; OPTIONS gets one (found by the conformance corpus,
  // connection/unknown_method_is_proxied).
  for (const char* method : {"DELETE", "TRACE"}) {
    sendRequest(requestHeaders(method, "/", "up"));
    EXPECT_EQ(output_.take(), absl::StrCat(method, " / HTTP/1.1\r\nhost: up\r\n\r\n"));
    ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").ok());
  }
  sendRequest(requestHeaders("OPTIONS", "/", "up"));
  EXPECT_EQ(output_.take(), "OPTIONS / HTTP/1.1\r\nhost: up\r\ncontent-length: 0\r\n\r\n");
}

TEST_F(ClientCodecTest, StreamedBodyIsChunked) {
  RequestEncoder& encoder = sendRequest(requestHeaders("PUT", "/f", "up"), /*end_stream=*/false);
  Buffer::Instance data;
  data.add("0123456789abcdef0");
  encoder.encodeData(data, /*end_stream=*/false);
  data.add("x");
  encoder.encodeData(data, /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "PUT /f HTTP/1.1\r\nhost: up\r\ntransfer-encoding: chunked\r\n\r\n"
            "11\r\n0123456789abcdef0\r\n1\r\nx\r\n0\r\n\r\n");
}

TEST_F(ClientCodecTest, ContentLengthPassthrough) {
  // The downstream's content-length is kept; hop-by-hop headers are not forwarded.
  RequestEncoder& encoder = sendRequest(requestHeaders("POST", "/p", "up",
                                                       {{"content-length", "3"},
                                                        {"connection", "keep-alive"},
                                                        {"transfer-encoding", "chunked"},
                                                        {"x-forwarded-for", "10.0.0.1"}}),
                                        /*end_stream=*/false);
  Buffer::Instance data;
  data.add("abc");
  encoder.encodeData(data, /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "POST /p HTTP/1.1\r\nhost: up\r\ncontent-length: 3\r\n"
            "x-forwarded-for: 10.0.0.1\r\n\r\nabc");
}

TEST_F(ClientCodecTest, ContentLengthResponseSplit) {
  sendRequest(requestHeaders("GET", "/", "up"));
  // Headers and part of the body, then the rest.
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
                       "\r\n01234")
                  .ok());
  ASSERT_NE(decoder_.headers_, nullptr);
  EXPECT_EQ(dump(*decoder_.headers_),
            ":status: 200\ncontent-type: text/plain\ncontent-length: 10\n");
  EXPECT_FALSE(decoder_.headers_end_stream_);
  ASSERT_TRUE(dispatch("56789").ok());
  EXPECT_EQ(decoder_.body_, "0123456789");
  EXPECT_EQ(decoder_.data_sizes_, (std::vector<uint64_t>{5, 5}));
  EXPECT_TRUE(decoder_.ended_);
  EXPECT_FALSE(codec_.remoteWantsClose());
  EXPECT_FALSE(codec_.hasActiveRequest());
}

TEST_F(ClientCodecTest, ChunkedResponse) {
  sendRequest(requestHeaders("GET", "/", "up"));
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n"
                       "5\r\npedia\r\n0\r\n\r\n")
                  .ok());
  EXPECT_EQ(decoder_.body_, "Wikipedia");
  EXPECT_TRUE(decoder_.ended_);
  EXPECT_FALSE(codec_.remoteWantsClose());
}

TEST_F(ClientCodecTest, ResponseReadUntilClose) {
  sendRequest(requestHeaders("GET", "/", "up"));
  // No length, no chunking: the body runs until the server closes.
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\n\r\nsome ").ok());
  ASSERT_TRUE(dispatch("bytes").ok());
  EXPECT_FALSE(decoder_.ended_);
  codec_.onConnectionClose();
  EXPECT_EQ(decoder_.body_, "some bytes");
  EXPECT_EQ(decoder_.data_sizes_, (std::vector<uint64_t>{5, 5, 0}));
  EXPECT_TRUE(decoder_.ended_);
  EXPECT_TRUE(codec_.remoteWantsClose());
  EXPECT_TRUE(stream_callbacks_.resets_.empty());
}

TEST_F(ClientCodecTest, ResponseToHeadHasNoBody) {
  sendRequest(requestHeaders("HEAD", "/", "up"));
  // The content-length describes the GET body; none follows.
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n").ok());
  EXPECT_TRUE(decoder_.headers_end_stream_);
  EXPECT_EQ(decoder_.headers_->getValue("content-length"), "1000");
  EXPECT_FALSE(codec_.remoteWantsClose());

  // The connection is reusable: the next response parses from the next byte.
  RecordingResponseDecoder second;
  codec_.newStream(second).encodeHeaders(requestHeaders("GET", "/2", "up"), true);
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").ok());
  EXPECT_EQ(second.body_, "ok");
  EXPECT_TRUE(second.ended_);
}

TEST_F(ClientCodecTest, NoContentResponse) {
  sendRequest(requestHeaders("DELETE", "/x", "up"));
  ASSERT_TRUE(dispatch("HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n").ok());
  EXPECT_EQ(dump(*decoder_.headers_), ":status: 204\nx-a: b\n");
  EXPECT_TRUE(decoder_.headers_end_stream_);
  EXPECT_TRUE(decoder_.data_sizes_.empty());
}

TEST_F(ClientCodecTest, ContinueThenFinalResponse) {
  RequestEncoder& encoder = sendRequest(
      requestHeaders("POST", "/", "up", {{"expect", "100-continue"}, {"content-length", "2"}}),
      /*end_stream=*/false);
  // The 100 goes to decode100ContinueHeaders, not decodeHeaders.
  ASSERT_TRUE(dispatch("HTTP/1.1 100 Continue\r\n\r\n").ok());
  ASSERT_NE(decoder_.continue_headers_, nullptr);
  EXPECT_EQ(dump(*decoder_.continue_headers_), ":status: 100\n");
  EXPECT_EQ(decoder_.headers_, nullptr);

  // The body, then the final response.
  Buffer::Instance data;
  data.add("hi");
  encoder.encodeData(data, /*end_stream=*/true);
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").ok());
  EXPECT_EQ(decoder_.headers_->status(), 200u);
  EXPECT_TRUE(decoder_.headers_end_stream_);
}

TEST_F(ClientCodecTest, ConnectionCloseResponse) {
  sendRequest(requestHeaders("GET", "/", "up"));
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx").ok());
  EXPECT_TRUE(decoder_.ended_);
  EXPECT_TRUE(codec_.remoteWantsClose());
}

TEST_F(ClientCodecTest, Http10ResponseWantsClose) {
  sendRequest(requestHeaders("GET", "/", "up"));
  ASSERT_TRUE(dispatch("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx").ok());
  EXPECT_TRUE(decoder_.ended_);
  EXPECT_TRUE(codec_.remoteWantsClose());
}

TEST_F(ClientCodecTest, MalformedResponseIsAnError) {
  sendRequest(requestHeaders("GET", "/", "up"));
  const absl::Status status = dispatch("HTTP/1.1 2x0 OK\r\n\r\n");
  EXPECT_EQ(std::string(status.message()),
            "http/1.1 protocol error: HPE_INVALID_STATUS: Invalid response status");
  EXPECT_EQ(codec_.lastError().http_code, 502u);
  EXPECT_EQ(codec_.lastError().details, "http1.codec_error");
  // The stream is reset as a protocol error; the connection is not reusable.
  EXPECT_EQ(stream_callbacks_.resets_,
            std::vector<StreamResetReason>{StreamResetReason::ProtocolError});
  EXPECT_TRUE(codec_.remoteWantsClose());
  EXPECT_EQ(decoder_.headers_, nullptr);
}

TEST_F(ClientCodecTest, ResponseWithoutRequestIsAnError) {
  EXPECT_FALSE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").ok());
  EXPECT_EQ(codec_.lastError().details, "http1.unexpected_response");
  EXPECT_EQ(codec_.lastError().http_code, 502u);
}

TEST_F(ClientCodecTest, ExtraBytesAfterResponseAreAnError) {
  sendRequest(requestHeaders("GET", "/", "up"));
  EXPECT_FALSE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n").ok());
  EXPECT_TRUE(decoder_.ended_);
  EXPECT_EQ(codec_.lastError().details, "http1.unexpected_response");
}

TEST_F(ClientCodecTest, PrematureCloseResetsTheStream) {
  sendRequest(requestHeaders("GET", "/", "up"));
  // The server closes 5 bytes into a 10-byte body.
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234").ok());
  codec_.onConnectionClose();
  EXPECT_FALSE(decoder_.ended_);
  // A response cut short is malformed, as Envoy's parser judges the end of input (UPE).
  EXPECT_EQ(stream_callbacks_.resets_,
            std::vector<StreamResetReason>{StreamResetReason::ProtocolError});
  EXPECT_EQ(StreamResetReason::ProtocolError, codec_.closeResetReason());
  EXPECT_TRUE(codec_.remoteWantsClose());
}

TEST_F(ClientCodecTest, CloseInsideTheResponseHeadIsAProtocolError) {
  sendRequest(requestHeaders("GET", "/", "up"));
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Le").ok());
  codec_.onConnectionClose();
  EXPECT_EQ(stream_callbacks_.resets_,
            std::vector<StreamResetReason>{StreamResetReason::ProtocolError});
}

TEST_F(ClientCodecTest, CloseBeforeAnyResponseResetsTheStream) {
  sendRequest(requestHeaders("GET", "/", "up"));
  codec_.onConnectionClose();
  // No byte of a response: the connection was terminated (UC).
  EXPECT_EQ(stream_callbacks_.resets_,
            std::vector<StreamResetReason>{StreamResetReason::ConnectionTermination});
  EXPECT_EQ(StreamResetReason::ConnectionTermination, codec_.closeResetReason());
}

TEST_F(ClientCodecTest, NextRequestFromInsideEndStream) {
  // A pool reusing the connection as soon as the response ends, from inside the callback.
  RecordingResponseDecoder second;
  decoder_.on_end_ = [&] {
    codec_.newStream(second).encodeHeaders(requestHeaders("GET", "/2", "up"), true);
  };
  sendRequest(requestHeaders("GET", "/1", "up"));
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na").ok());
  EXPECT_EQ(output_.take(),
            "GET /1 HTTP/1.1\r\nhost: up\r\n\r\nGET /2 HTTP/1.1\r\nhost: up\r\n\r\n");
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb").ok());
  EXPECT_EQ(decoder_.body_, "a");
  EXPECT_EQ(second.body_, "b");
}

TEST_F(ClientCodecTest, ResponseHeaderLimit) {
  sendRequest(requestHeaders("GET", "/", "up"));
  EXPECT_FALSE(
      dispatch("HTTP/1.1 200 OK\r\nX-Big: " + std::string(61 * 1024, 'a') + "\r\n\r\n").ok());
  EXPECT_EQ(codec_.lastError().details, "http1.headers_too_large");
  EXPECT_EQ(codec_.lastError().http_code, 502u);
}

TEST_F(ClientCodecTest, LocalResetDropsTheRest) {
  RequestEncoder& encoder = sendRequest(requestHeaders("GET", "/", "up"));
  ASSERT_TRUE(dispatch("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012").ok());
  encoder.getStream().resetStream(StreamResetReason::LocalReset);
  EXPECT_EQ(stream_callbacks_.resets_,
            std::vector<StreamResetReason>{StreamResetReason::LocalReset});
  // Later bytes are discarded without errors or callbacks.
  ASSERT_TRUE(dispatch("3456789").ok());
  EXPECT_EQ(decoder_.body_, "012");
  EXPECT_TRUE(codec_.remoteWantsClose());
}

}  // namespace
}  // namespace Proxy::Http
