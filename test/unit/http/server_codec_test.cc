// HTTP/1.1 server codec tests, decoding requests: each test is a short script — bytes in, the
// exact decoder calls out; encoder calls in, the exact bytes out.
//
// Over ~600 lines on purpose: only the decoding half of the server codec (the encoding half is
// server_codec_encode_test.cc), one fixture, each test a few lines over it.

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "proxy/http/utility.h"
#include "test/unit/http/codec_test_util.h"

namespace Proxy::Http {
namespace {

// ---------------------------------------------------------------------------------------------
// Server codec: decoding requests.

TEST_F(ServerCodecTest, SimpleGet) {
  // A GET with three headers arrives in one read.
  ASSERT_TRUE(dispatch("GET /hello?x=1 HTTP/1.1\r\nHost: Example.com\r\nUser-Agent: t/1\r\n"
                       "Accept: */*\r\n\r\n")
                  .ok());

  // One stream; headers lower-cased, Host became :authority, no body so end_stream on headers.
  ASSERT_EQ(callbacks_.decoders_.size(), 1u);
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  ASSERT_NE(decoder.headers_, nullptr);
  EXPECT_EQ(dump(*decoder.headers_),
            ":method: GET\n"
            ":path: /hello?x=1\n"
            ":scheme: http\n"
            ":authority: Example.com\n"
            "user-agent: t/1\n"
            "accept: */*\n");
  EXPECT_TRUE(decoder.headers_end_stream_);
  EXPECT_TRUE(decoder.data_sizes_.empty());
  EXPECT_EQ(input_.length(), 0u);
  EXPECT_FALSE(codec_.closeAfterResponse());
  EXPECT_FALSE(codec_.isHttp10());
}

TEST_F(ServerCodecTest, RequestSplitByteByByte) {
  // The same POST arrives one byte per read.
  const std::string request =
      "POST /upload HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: "
      "some value\r\nContent-Length: 5\r\n\r\nhello";
  for (char c : request) {
    ASSERT_TRUE(dispatch(std::string_view(&c, 1)).ok());
    EXPECT_EQ(input_.length(), 0u);
  }

  // Headers assembled across calls; each body byte delivered as it came, the last one with
  // end_stream.
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  ASSERT_NE(decoder.headers_, nullptr);
  EXPECT_EQ(dump(*decoder.headers_),
            ":method: POST\n"
            ":path: /upload\n"
            ":scheme: http\n"
            ":authority: h\n"
            "x-long-header-name: some value\n"
            "content-length: 5\n");
  EXPECT_FALSE(decoder.headers_end_stream_);
  EXPECT_EQ(decoder.body_, "hello");
  EXPECT_EQ(decoder.data_sizes_, (std::vector<uint64_t>{1, 1, 1, 1, 1}));
  EXPECT_TRUE(decoder.ended_);
}

TEST_F(ServerCodecTest, ContentLengthBodySplitAcrossDispatches) {
  // Headers and the first 4 body bytes, then 6 more, then the last 2.
  ASSERT_TRUE(dispatch("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\nabcd").ok());
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_FALSE(decoder.headers_end_stream_);
  EXPECT_EQ(decoder.data_sizes_, (std::vector<uint64_t>{4}));
  ASSERT_TRUE(dispatch("efghij").ok());
  ASSERT_TRUE(dispatch("kl").ok());

  // One decodeData per dispatch, bytes intact, end_stream with the last one.
  EXPECT_EQ(decoder.data_sizes_, (std::vector<uint64_t>{4, 6, 2}));
  EXPECT_EQ(decoder.body_, "abcdefghijkl");
  EXPECT_TRUE(decoder.ended_);
  EXPECT_EQ(input_.length(), 0u);
}

TEST_F(ServerCodecTest, BodyAcrossManySlicesInOneDispatch) {
  // One dispatch over a buffer of four slices: header block, two body slices, body tail.
  addSlices(input_,
            {"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", "0123", "456", "789"});
  ASSERT_TRUE(codec_.dispatch(input_).ok());

  // The body arrives whole, with end_stream.
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(decoder.body_, "0123456789");
  EXPECT_EQ(decoder.data_sizes_, (std::vector<uint64_t>{10}));
  EXPECT_TRUE(decoder.ended_);
  EXPECT_EQ(input_.length(), 0u);
}

TEST_F(ServerCodecTest, HeaderNamesAndValuesCutAcrossSlicesInOneDispatch) {
  // One dispatch over slices that cut names and values anywhere: the codec keeps views into a
  // slice only while it is parsed, and copies a name or value that a slice boundary cuts.
  addSlices(input_, {"GET / HTTP/1.1\r\nHo", "st: h\r\nX-Mixed-", "Case: va", "lue one  \r",
                     "\nx-lower: two\r\nACCEPT: ", "*/*\r\n\r\n"});
  ASSERT_TRUE(codec_.dispatch(input_).ok());

  // Names lower-cased whether whole or cut, trailing whitespace trimmed from a cut value.
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  ASSERT_NE(decoder.headers_, nullptr);
  EXPECT_EQ(dump(*decoder.headers_),
            ":method: GET\n"
            ":path: /\n"
            ":scheme: http\n"
            ":authority: h\n"
            "x-mixed-case: value one\n"
            "x-lower: two\n"
            "accept: */*\n");
  EXPECT_TRUE(decoder.ended_);
  EXPECT_EQ(input_.length(), 0u);
}

TEST_F(ServerCodecTest, WholeBodySlicesAreMovedNotCopied) {
  // The header block in one slice, a 4 KiB body in another.
  Buffer::Instance body;
  body.add(std::string(4096, 'x'));
  Buffer::RawSlice body_slice;
  ASSERT_EQ(body.getRawSlices(&body_slice, 1), 1u);
  addSlices(input_, {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n\r\n"});
  input_.move(body);
  ASSERT_TRUE(codec_.dispatch(input_).ok());

  // The decoder gets the very memory the body was read into: relinked, not copied.
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(decoder.data_sizes_, (std::vector<uint64_t>{4096}));
  EXPECT_EQ(decoder.first_slices_, (std::vector<const void*>{body_slice.mem}));
  EXPECT_TRUE(decoder.ended_);
}

TEST_F(ServerCodecTest, ChunkedBodyAcrossSlicesInOneDispatch) {
  // Chunk framing and payload interleaved across slice boundaries.
  addSlices(input_, {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r", "\nab",
                     "c\r\n4\r\nde", "fg\r\n0\r\n", "\r\nGET /next HTTP/1.1\r\n"});
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(decoder.body_, "abcdefg");
  EXPECT_TRUE(decoder.ended_);
  // The pipelined request's bytes are left exactly as they were.
  EXPECT_EQ(input_.toString(), "GET /next HTTP/1.1\r\n");
}

TEST_F(ServerCodecTest, ChunkedBodyFramingStripped) {
  // A chunked body with two chunks and a chunk extension, split mid-chunk.
  ASSERT_TRUE(dispatch("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\nhel")
                  .ok());
  ASSERT_TRUE(dispatch("lo\r\n6\r\n world\r\n0\r\n\r\n").ok());

  // Only payload bytes reach the decoder; transfer-encoding is passed up as received.
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(decoder.headers_->getValue("transfer-encoding"), "chunked");
  EXPECT_FALSE(decoder.headers_end_stream_);
  EXPECT_EQ(decoder.body_, "hello world");
  EXPECT_EQ(decoder.data_sizes_, (std::vector<uint64_t>{3, 8}));
  EXPECT_TRUE(decoder.ended_);
  EXPECT_EQ(input_.length(), 0u);
}

TEST_F(ServerCodecTest, ChunkedBodyWithTrailersDropsTrailers) {
  // Trailers after the last chunk are parsed and dropped.
  ASSERT_TRUE(dispatch("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n")
                  .ok());
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(decoder.body_, "abc");
  EXPECT_TRUE(decoder.ended_);
  EXPECT_FALSE(decoder.headers_->has("x-trailer"));
}

TEST_F(ServerCodecTest, PipelinedRequestsDecodedOneAtATime) {
  // Three requests in one read.
  const std::string second = "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string third = "POST /3 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz";
  ASSERT_TRUE(dispatch("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" + second + third).ok());

  // Only the first is decoded; the other two stay in the buffer and reading is paused.
  ASSERT_EQ(callbacks_.decoders_.size(), 1u);
  EXPECT_EQ(callbacks_.decoder(0).headers_->path(), "/1");
  EXPECT_EQ(input_.length(), second.size() + third.size());
  EXPECT_EQ(output_.read_disable_count_, 1);

  // Dispatching again before the response consumes nothing.
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.decoders_.size(), 1u);
  EXPECT_EQ(input_.length(), second.size() + third.size());
  EXPECT_EQ(output_.read_disable_count_, 1);

  // The response completes: reading resumes and the owner re-dispatches the retained bytes.
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200), /*end_stream=*/true);
  EXPECT_EQ(callbacks_.responses_complete_, 1);
  EXPECT_EQ(output_.read_disable_count_, 0);
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  ASSERT_EQ(callbacks_.decoders_.size(), 2u);
  EXPECT_EQ(callbacks_.decoder(1).headers_->path(), "/2");
  EXPECT_EQ(input_.length(), third.size());

  // Second response, then the third request with its body.
  callbacks_.encoder(1).encodeHeaders(responseHeaders(200), /*end_stream=*/true);
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  ASSERT_EQ(callbacks_.decoders_.size(), 3u);
  EXPECT_EQ(callbacks_.decoder(2).headers_->path(), "/3");
  EXPECT_EQ(callbacks_.decoder(2).body_, "xyz");
  EXPECT_TRUE(callbacks_.decoder(2).ended_);
  EXPECT_EQ(input_.length(), 0u);

  // Three responses on the wire, in order.
  callbacks_.encoder(2).encodeHeaders(responseHeaders(204), /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
            "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST_F(ServerCodecTest, PipelinedRequestsAnsweredSynchronouslyInOneDispatch) {
  // Every request is answered from inside decodeHeaders (a local reply).
  callbacks_.on_new_stream_ = [this](RecordingRequestDecoder& decoder) {
    const size_t index = callbacks_.decoders_.size() - 1;
    decoder.on_headers_ = [this, index] {
      Utility::encodeLocalReply(callbacks_.encoder(index), 404, "");
    };
  };
  ASSERT_TRUE(dispatch("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
                  .ok());

  // All three decoded and answered in the same dispatch; reading never paused.
  EXPECT_EQ(callbacks_.decoders_.size(), 3u);
  EXPECT_EQ(callbacks_.responses_complete_, 3);
  EXPECT_EQ(input_.length(), 0u);
  EXPECT_EQ(output_.read_disable_calls_, 0);
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
}

TEST_F(ServerCodecTest, PipelinedLocalRepliesYieldAfterTheLimitPerDispatch) {
  // Every request is answered from inside decodeHeaders, and many are pipelined in one read.
  callbacks_.on_new_stream_ = [this](RecordingRequestDecoder& decoder) {
    const size_t index = callbacks_.decoders_.size() - 1;
    decoder.on_headers_ = [this, index] {
      Utility::encodeLocalReply(callbacks_.encoder(index), 404, "");
    };
  };
  const std::string request = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  const uint32_t limit = ServerConnectionImpl::kMaxRequestsPerDispatch;
  std::string batch;
  for (uint32_t i = 0; i < limit + 5; i++) {
    batch += request;
  }
  ASSERT_TRUE(dispatch(batch).ok());

  // One dispatch answers `limit` of them, then asks (a readDisable pair, leaving reading
  // enabled) for the rest to be offered again from the event loop.
  EXPECT_EQ(callbacks_.responses_complete_, static_cast<int>(limit));
  EXPECT_EQ(input_.length(), 5 * request.size());
  EXPECT_EQ(output_.read_disable_calls_, 2);
  EXPECT_EQ(output_.read_disable_count_, 0);

  // The next dispatch answers the rest.
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.responses_complete_, static_cast<int>(limit) + 5);
  EXPECT_EQ(input_.length(), 0u);
}

TEST_F(ServerCodecTest, PipelinedRequestsWaitForTheLowWatermark) {
  // Requests answered synchronously, as above, but the first response leaves the connection's
  // write buffer above its high watermark (a client that pipelines and does not read).
  callbacks_.on_new_stream_ = [this](RecordingRequestDecoder& decoder) {
    const size_t index = callbacks_.decoders_.size() - 1;
    decoder.on_headers_ = [this, index] {
      if (index == 0) {
        codec_.onUnderlyingConnectionAboveWriteBufferHighWatermark();
      }
      Utility::encodeLocalReply(callbacks_.encoder(index), 404, "");
    };
  };
  const std::string rest = "GET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_TRUE(dispatch("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" + rest).ok());

  // Only the first is answered; the rest stay in the buffer, reading is paused, and the owner
  // hears why.
  EXPECT_EQ(callbacks_.decoders_.size(), 1u);
  EXPECT_EQ(callbacks_.responses_complete_, 1);
  EXPECT_EQ(input_.length(), rest.size());
  EXPECT_EQ(output_.read_disable_count_, 1);
  EXPECT_EQ(callbacks_.reading_paused_, (std::vector<bool>{true}));

  // Dispatching again while above the watermark parses nothing.
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.decoders_.size(), 1u);

  // The low watermark resumes reading; the owner re-dispatches and the rest is answered.
  codec_.onUnderlyingConnectionBelowWriteBufferLowWatermark();
  EXPECT_EQ(output_.read_disable_count_, 0);
  EXPECT_EQ(callbacks_.reading_paused_, (std::vector<bool>{true, false}));
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.decoders_.size(), 3u);
  EXPECT_EQ(callbacks_.responses_complete_, 3);
  EXPECT_EQ(input_.length(), 0u);
}

TEST_F(ServerCodecTest, ResponseCompletingAboveTheWatermarkHoldsTheNextRequest) {
  // An asynchronous response (from an upstream) that crosses the high watermark while the next
  // request waits in the buffer.
  const std::string second = "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_TRUE(dispatch("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" + second).ok());
  EXPECT_EQ(output_.read_disable_count_, 1);  // held for pipelining
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200), /*end_stream=*/false);
  codec_.onUnderlyingConnectionAboveWriteBufferHighWatermark();
  encodeBody(callbacks_.encoder(0), "big", /*end_stream=*/true);

  // The response is complete, but reading stays disabled until the low watermark.
  EXPECT_EQ(callbacks_.responses_complete_, 1);
  EXPECT_EQ(output_.read_disable_count_, 1);
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.decoders_.size(), 1u);

  codec_.onUnderlyingConnectionBelowWriteBufferLowWatermark();
  EXPECT_EQ(output_.read_disable_count_, 0);
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  ASSERT_EQ(callbacks_.decoders_.size(), 2u);
  EXPECT_EQ(callbacks_.decoder(1).headers_->path(), "/2");
}

TEST_F(ServerCodecTest, Http10IsRefusedWith426UnlessAccepted) {
  // Envoy's default (accept_http_10 false): HTTP/1.0 gets 426 Upgrade Required.
  Http1Settings settings;
  ServerConnectionImpl codec(output_, callbacks_, settings);
  input_.add("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(codec.dispatch(input_).ok());
  EXPECT_EQ(codec.lastError().http_code, 426u);
  EXPECT_EQ(codec.lastError().details, "low_version");
}

TEST_F(ServerCodecTest, OtherHttp1MinorVersionsAreLowVersionsAsInEnvoy) {
  // Envoy takes every HTTP/1.x but 1.1 for a low version: "HTTP/1.2" is refused with 426 when
  // HTTP/1.0 is not accepted (llhttp itself stops at the version; the codec reads what it saw).
  Http1Settings settings;
  ServerConnectionImpl codec(output_, callbacks_, settings);
  input_.add("GET / HTTP/1.2\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(codec.dispatch(input_).ok());
  EXPECT_EQ(codec.lastError().http_code, 426u);
  EXPECT_EQ(codec.lastError().details, "low_version");

  // Not an HTTP/1 version at all: 400 as before.
  ServerConnectionImpl other(output_, callbacks_, settings);
  Buffer::Instance input;
  input.add("GET / HTTP/3.7\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(other.dispatch(input).ok());
  EXPECT_EQ(other.lastError().http_code, 400u);

  // A broken version after a good HTTP/1.1 request on the same connection: still 400.
  ServerConnectionImpl keep_alive(output_, callbacks_, settings);
  Buffer::Instance second;
  second.add("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(keep_alive.dispatch(second).ok());
  callbacks_.encoders_.back()->encodeHeaders(responseHeaders(204), /*end_stream=*/true);
  second.add("GET / HTTP/x\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(keep_alive.dispatch(second).ok());
  EXPECT_EQ(keep_alive.lastError().http_code, 400u);
}

TEST_F(ServerCodecTest, Http10IsAnsweredAsHttp10WhenAcceptedAndAs11WhenRefused) {
  // Accepted: the response's status line says HTTP/1.0, as Envoy's does.
  ASSERT_TRUE(dispatch("GET / HTTP/1.0\r\nHost: a\r\n\r\n").ok());
  callbacks_.encoder(0).encodeHeaders(responseHeaders(204), /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.0 204 No Content\r\nconnection: close\r\n\r\n");

  // Refused (accept_http_10 off): the 426 asks for HTTP/1.1 and says so itself.
  FakeOutput output;
  FakeServerCallbacks callbacks;
  Http1Settings settings;
  ServerConnectionImpl codec(output, callbacks, settings);
  Buffer::Instance input;
  input.add("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(codec.dispatch(input).ok());
  ASSERT_EQ(callbacks.encoders_.size(), 1u);
  Utility::encodeLocalReply(callbacks.encoder(0), codec.lastError().http_code, "Upgrade Required");
  EXPECT_EQ(output.take(),
            "HTTP/1.1 426 Upgrade Required\r\ncontent-type: text/plain\r\n"
            "content-length: 16\r\nconnection: close\r\n\r\nUpgrade Required");
}

TEST_F(ServerCodecTest, Http10WithoutHostTakesTheDefaultHostOrIs400) {
  // With default_host_for_http_10, a Host-less HTTP/1.0 request gets that :authority.
  Http1Settings settings = acceptingHttp10();
  settings.default_host_for_http_10 = "fallback.example.com";
  ServerConnectionImpl codec(output_, callbacks_, settings);
  input_.add("GET /old HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(codec.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.decoder(0).headers_->host(), "fallback.example.com");

  // Without one it is refused like an HTTP/1.1 request without Host: never forwarded bare.
  EXPECT_EQ(std::string(dispatch("GET /old HTTP/1.0\r\n\r\n").message()),
            "http/1.1 protocol error: request without Host");
  EXPECT_EQ(error(), "400 missing_host_header");
}

TEST_F(ServerCodecTest, Http10CloseByDefault) {
  // An HTTP/1.0 request without keep-alive.
  ASSERT_TRUE(dispatch("GET /old HTTP/1.0\r\nHost: a\r\n\r\n").ok());
  EXPECT_TRUE(codec_.isHttp10());
  EXPECT_EQ(dump(*callbacks_.decoder(0).headers_),
            ":method: GET\n:path: /old\n:scheme: http\n:authority: a\n");

  // The connection closes after the response, which says so.
  EXPECT_TRUE(codec_.closeAfterResponse());
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200, {{"content-length", "2"}}), false);
  encodeBody(callbacks_.encoder(0), "ok", true);
  EXPECT_EQ(output_.take(), "HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
}

TEST_F(ServerCodecTest, Http10KeepAlive) {
  // HTTP/1.0 asking for keep-alive keeps the connection and is told so.
  ASSERT_TRUE(dispatch("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").ok());
  EXPECT_FALSE(codec_.closeAfterResponse());
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200), /*end_stream=*/true);
  EXPECT_EQ(output_.take(),
            "HTTP/1.0 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n");
  EXPECT_FALSE(codec_.closeAfterResponse());
}

TEST_F(ServerCodecTest, Http10StreamedResponseIsDelimitedByClose) {
  // A keep-alive HTTP/1.0 request whose response has no length: no chunking, close instead.
  ASSERT_TRUE(dispatch("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").ok());
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200), /*end_stream=*/false);
  encodeBody(callbacks_.encoder(0), "abc", false);
  encodeBody(callbacks_.encoder(0), "def", true);
  EXPECT_EQ(output_.take(), "HTTP/1.0 200 OK\r\nconnection: close\r\n\r\nabcdef");
  EXPECT_TRUE(codec_.closeAfterResponse());
}

TEST_F(ServerCodecTest, ConnectionCloseRequest) {
  // "Connection: close" followed by another request: the second is never parsed.
  ASSERT_TRUE(dispatch("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                       "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
                  .ok());
  EXPECT_TRUE(codec_.closeAfterResponse());
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200, {{"content-length", "0"}}), true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  EXPECT_EQ(callbacks_.responses_complete_, 1);

  // Re-dispatching the retained bytes decodes nothing: the owner closes instead.
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  EXPECT_EQ(callbacks_.decoders_.size(), 1u);
}

TEST_F(ServerCodecTest, Expect100ContinuePassedUp) {
  // The Expect header reaches the decoder before any body byte.
  ASSERT_TRUE(dispatch("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                       "Content-Length: 4\r\n\r\n")
                  .ok());
  RecordingRequestDecoder& decoder = callbacks_.decoder(0);
  EXPECT_EQ(decoder.headers_->getValue("expect"), "100-continue");
  EXPECT_FALSE(decoder.headers_end_stream_);

  // The owner decides to continue; the codec writes the interim response.
  callbacks_.encoder(0).encode100ContinueHeaders();
  EXPECT_EQ(output_.take(), "HTTP/1.1 100 Continue\r\n\r\n");

  // The body follows; the final response is unaffected.
  ASSERT_TRUE(dispatch("data").ok());
  EXPECT_EQ(decoder.body_, "data");
  callbacks_.encoder(0).encodeHeaders(responseHeaders(201), /*end_stream=*/true);
  EXPECT_EQ(output_.take(), "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");
}

TEST_F(ServerCodecTest, AbsoluteFormUrl) {
  // A proxy-style request: the target's authority wins over Host.
  ASSERT_TRUE(dispatch("GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n").ok());
  EXPECT_EQ(dump(*callbacks_.decoder(0).headers_),
            ":method: GET\n"
            ":path: /a/b?c=d\n"
            ":scheme: http\n"
            ":authority: Example.com:8080\n");
}

TEST_F(ServerCodecTest, AbsoluteFormUrlWithoutPath) {
  ASSERT_TRUE(dispatch("GET http://example.com HTTP/1.1\r\n\r\n").ok());
  EXPECT_EQ(callbacks_.decoder(0).headers_->path(), "/");
  EXPECT_EQ(callbacks_.decoder(0).headers_->host(), "example.com");
}

TEST_F(ServerCodecTest, UpgradeServedAsPlainRequest) {
  // A websocket upgrade, then a pipelined request.
  ASSERT_TRUE(dispatch("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
                       "Upgrade: websocket\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n")
                  .ok());

  // Upgrade and the "upgrade" Connection token are gone.
  EXPECT_EQ(dump(*callbacks_.decoder(0).headers_),
            ":method: GET\n"
            ":path: /ws\n"
            ":scheme: http\n"
            ":authority: h\n"
            "connection: keep-alive\n");

  // The connection keeps speaking HTTP/1.1.
  callbacks_.encoder(0).encodeHeaders(responseHeaders(200), /*end_stream=*/true);
  ASSERT_TRUE(codec_.dispatch(input_).ok());
  ASSERT_EQ(callbacks_.decoders_.size(), 2u);
  EXPECT_EQ(callbacks_.decoder(1).headers_->path(), "/after");
}

TEST_F(ServerCodecTest, HeaderValueWhitespaceTrimmed) {
  ASSERT_TRUE(
      dispatch("GET / HTTP/1.1\r\nHost: h\r\nX-A:   spaced out \t \r\nX-Empty:\r\n\r\n").ok());
  EXPECT_EQ(dump(*callbacks_.decoder(0).headers_),
            ":method: GET\n:path: /\n:scheme: http\n:authority: h\nx-a: spaced out\nx-empty: \n");
}

// ---------------------------------------------------------------------------------------------
// Server codec: bad input. Each case: the exact http_code and details, and the error is sticky.

TEST_F(ServerCodecTest, MalformedRequestLineIs400) {
  const absl::Status status = dispatch("G@T / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(std::string(status.message()),
            "http/1.1 protocol error: HPE_INVALID_METHOD: Invalid method encountered");
  EXPECT_EQ(error(), "400 http1.codec_error");
  // A second dispatch reports the same error and decodes nothing.
  EXPECT_EQ(codec_.dispatch(input_), status);
  EXPECT_EQ(callbacks_.decoder(0).headers_, nullptr);
  EXPECT_TRUE(codec_.closeAfterResponse());
}

TEST_F(ServerCodecTest, BadVersionIs400) {
  EXPECT_FALSE(dispatch("GET / HTTP/1.x\r\nHost: h\r\n\r\n").ok());
  EXPECT_EQ(error(), "400 http1.codec_error");
}

TEST_F(ServerCodecTest, BadHeaderNameIs400) {
  // llhttp's loose mode would accept the space; the codec does not.
  const absl::Status status = dispatch("GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n");
  EXPECT_EQ(std::string(status.message()), "http/1.1 protocol error: invalid header name");
  EXPECT_EQ(error(), "400 http1.invalid_characters");
}

TEST_F(ServerCodecTest, ColonlessHeaderLineIs400) {
  EXPECT_FALSE(dispatch("GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n").ok());
  EXPECT_EQ(error(), "400 http1.codec_error");
}

TEST_F(ServerCodecTest, HeadersJustUnderTheLimitPass) {
  // Request line + names + values stay within 60 KiB.
  const std::string value(60 * 1024 - 200, 'v');
  ASSERT_TRUE(dispatch("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + value + "\r\n\r\n").ok());
  EXPECT_EQ(callbacks_.decoder(0).headers_->getValue("x-big").size(), value.size());
}

TEST_F(ServerCodecTest, OversizedHeadersAre431) {
  // One 61 KiB header value, still being received when the limit trips.
  const std::string value(61 * 1024, 'v');
  const absl::Status status = dispatch("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + value);
  EXPECT_EQ(std::string(status.message()), "http/1.1 protocol error: headers size exceeds limit");
  EXPECT_EQ(error(), "431 http1.headers_too_large");
}

TEST_F(ServerCodecTest, ManySmallHeadersOverTheLimitAre431) {
  // 60 KiB spread across 50 headers trips the same limit.
  std::string request = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 50; i++) {
    request += "x-h" + std::to_string(i) + ": " + std::string(1300, 'a') + "\r\n";
  }
  EXPECT_FALSE(dispatch(request + "\r\n").ok());
  EXPECT_EQ(error(), "431 http1.headers_too_large");
}

TEST_F(ServerCodecTest, HundredHeadersPass) {
  // Host plus 99 more: exactly max_headers_count.
  std::string request = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 99; i++) {
    request += "x-h" + std::to_string(i) + ": v\r\n";
  }
  ASSERT_TRUE(dispatch(request + "\r\n").ok());
  EXPECT_EQ(callbacks_.decoder(0).headers_->size(), 3u + 100u);
}

TEST_F(ServerCodecTest, HundredAndOneHeadersAre431) {
  std::string request = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; i++) {
    request += "x-h" + std::to_string(i) + ": v\r\n";
  }
  const absl::Status status = dispatch(request + "\r\n");
  EXPECT_EQ(std::string(status.message()), "http/1.1 protocol error: too many headers");
  EXPECT_EQ(error(), "431 http1.too_many_headers");
}

TEST_F(ServerCodecTest, ContentLengthWithTransferEncodingIs400) {
  // The classic smuggling pair, in both orders.
  EXPECT_FALSE(dispatch("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                   .ok());
  EXPECT_EQ(error(), "400 http1.content_length_and_chunked_not_allowed");

  FakeServerCallbacks callbacks;
  ServerConnectionImpl codec(output_, callbacks, settings_);
  Buffer::Instance input;
  input.add(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
      "\r\n0\r\n\r\n");
  EXPECT_FALSE(codec.dispatch(input).ok());
  EXPECT_EQ(codec.lastError().http_code, 400u);
  EXPECT_EQ(codec.lastError().details, "http1.content_length_and_chunked_not_allowed");
}

TEST_F(ServerCodecTest, ConflictingContentLengthsAre400) {
  const absl::Status status = dispatch(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
      "Content-Length: 4\r\n\r\nabcd");
  EXPECT_EQ(std::string(status.message()),
            "http/1.1 protocol error: HPE_UNEXPECTED_CONTENT_LENGTH: Duplicate Content-Length");
  EXPECT_EQ(error(), "400 http1.codec_error");
}

TEST_F(ServerCodecTest, InvalidContentLengthIs400) {
  EXPECT_FALSE(dispatch("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\na").ok());
  EXPECT_EQ(error(), "400 http1.codec_error");
}

TEST_F(ServerCodecTest, UnsupportedTransferEncodingIs501) {
  EXPECT_FALSE(dispatch("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n").ok());
  EXPECT_EQ(error(), "501 http1.invalid_transfer_encoding");
}

TEST_F(ServerCodecTest, ChunkedNotLastIs501) {
  EXPECT_FALSE(
      dispatch("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").ok());
  EXPECT_EQ(error(), "501 http1.invalid_transfer_encoding");
}

TEST_F(ServerCodecTest, MissingHostIs400) {
  const absl::Status status = dispatch("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(std::string(status.message()), "http/1.1 protocol error: request without Host");
  EXPECT_EQ(error(), "400 missing_host_header");
  // The stream exists, so the owner can answer on it; the reply closes the connection.
  ASSERT_EQ(callbacks_.encoders_.size(), 1u);
  Utility::encodeLocalReply(callbacks_.encoder(0), codec_.lastError().http_code, "Bad Request");
  EXPECT_EQ(output_.take(),
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n"
            "content-length: 11\r\nconnection: close\r\n\r\nBad Request");
  EXPECT_EQ(callbacks_.responses_complete_, 1);
}

TEST_F(ServerCodecTest, DuplicateHostIs400) {
  EXPECT_FALSE(dispatch("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").ok());
  EXPECT_EQ(error(), "400 http1.duplicate_host_header");
}

TEST_F(ServerCodecTest, ConnectIs405) {
  EXPECT_FALSE(dispatch("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").ok());
  EXPECT_EQ(error(), "405 http1.connect_not_supported");
}

TEST_F(ServerCodecTest, HttpsAbsoluteUrlIs400) {
  EXPECT_FALSE(dispatch("GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n").ok());
  EXPECT_EQ(error(), "400 http1.https_url_on_plaintext_connection");
}

TEST_F(ServerCodecTest, NonHttpAbsoluteUrlIs400) {
  EXPECT_FALSE(dispatch("GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n").ok());
  EXPECT_EQ(error(), "400 http1.invalid_scheme");
}

TEST_F(ServerCodecTest, Http2VersionIs505) {
  EXPECT_FALSE(dispatch("GET / HTTP/2.0\r\nHost: h\r\n\r\n").ok());
  EXPECT_EQ(error(), "505 http1.unsupported_http_version");
}

TEST_F(ServerCodecTest, BadChunkSizeIs400) {
  ASSERT_FALSE(dispatch("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "zz\r\nabc\r\n")
                   .ok());
  EXPECT_EQ(error(), "400 http1.codec_error");
  // The decoder saw the headers but no body and no end_stream.
  EXPECT_FALSE(callbacks_.decoder(0).ended_);
  EXPECT_TRUE(callbacks_.decoder(0).data_sizes_.empty());
}

}  // namespace
}  // namespace Proxy::Http
