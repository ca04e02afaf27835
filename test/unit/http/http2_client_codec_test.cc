// The HTTP/2 client codec (proxy/http/http2/client_connection_impl.*) against a real nghttp2
// server session in the test: every byte the codec writes is parsed by nghttp2's server, and
// every answer is framed by it, so what is asserted is what a real HTTP/2 server sees and sends.

#include <nghttp2/nghttp2.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/common/time.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/http/http2/client_connection_impl.h"
#include "proxy/stats/stats.h"

namespace Proxy::Http::Http2 {
namespace {

// ---- A real nghttp2 server session, driven by hand ----

class TestServer {
 public:
  struct Request {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool end_stream = false;
    uint32_t rst_error = 0xffffffff;  // RST_STREAM code received, if any
    std::string header(const std::string& name) const {
      for (const auto& [k, v] : headers) {
        if (k == name) {
          return v;
        }
      }
      return "<none>";
    }
  };

  explicit TestServer(bool auto_window_update = true) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                const uint8_t* value, size_t valuelen, uint8_t, void* user) {
          static_cast<TestServer*>(user)->requests_[frame->hd.stream_id].headers.emplace_back(
              std::string(reinterpret_cast<const char*>(name), namelen),
              std::string(reinterpret_cast<const char*>(value), valuelen));
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                void* user) {
          static_cast<TestServer*>(user)->requests_[stream_id].body.append(
              reinterpret_cast<const char*>(data), len);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* frame, void* user) {
          auto* self = static_cast<TestServer*>(user);
          if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
              (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
            self->requests_[frame->hd.stream_id].end_stream = true;
          }
          if (frame->hd.type == NGHTTP2_RST_STREAM) {
            self->requests_[frame->hd.stream_id].rst_error = frame->rst_stream.error_code;
          }
          return 0;
        });
    nghttp2_option* options;
    nghttp2_option_new(&options);
    nghttp2_option_set_no_auto_window_update(options, auto_window_update ? 0 : 1);
    nghttp2_session_server_new2(&session_, cbs, this, options);
    nghttp2_option_del(options);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~TestServer() { nghttp2_session_del(session_); }

  // Respond on `stream_id` with `status`, `body` (may be empty) and optional trailers.
  void respond(int32_t stream_id, const std::string& status, const std::string& body,
               std::vector<std::pair<std::string, std::string>> trailers = {}) {
    bodies_[stream_id] = Body{body, 0, std::move(trailers)};
    static const std::string kStatus = ":status";
    std::vector<nghttp2_nv> nva = {nv(kStatus, status)};
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = [](nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                                uint32_t* flags, nghttp2_data_source* source, void*) -> ssize_t {
      auto* self = static_cast<TestServer*>(source->ptr);
      Body& b = self->bodies_[id];
      const size_t n = std::min(length, b.data.size() - b.offset);
      memcpy(buf, b.data.data() + b.offset, n);
      b.offset += n;
      if (b.offset == b.data.size()) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!b.trailers.empty()) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          std::vector<nghttp2_nv> t;
          for (auto& [k, v] : b.trailers) {
            t.push_back(self->nv(k, v));
          }
          nghttp2_submit_trailer(session, id, t.data(), t.size());
        }
      }
      return static_cast<ssize_t>(n);
    };
    const bool headers_only = body.empty() && bodies_[stream_id].trailers.empty();
    nghttp2_submit_response(session_, stream_id, nva.data(), nva.size(),
                            headers_only ? nullptr : &provider);
  }
  void submitHeaders(int32_t stream_id, std::vector<std::pair<std::string, std::string>> headers,
                     bool end_stream) {
    std::vector<nghttp2_nv> nva;
    for (auto& [k, v] : headers) {
      nva.push_back(nv(k, v));
    }
    nghttp2_submit_headers(session_, end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE,
                           stream_id, nullptr, nva.data(), nva.size(), nullptr);
  }
  void reset(int32_t stream_id, uint32_t error_code) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
  }
  void goAway(int32_t last_stream_id) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_stream_id, NGHTTP2_NO_ERROR, nullptr,
                          0);
  }
  void settings(std::vector<nghttp2_settings_entry> iv) {
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  }

  nghttp2_session* session_;
  std::map<int32_t, Request> requests_;

 private:
  struct Body {
    std::string data;
    size_t offset = 0;
    std::vector<std::pair<std::string, std::string>> trailers;
  };
  nghttp2_nv nv(const std::string& k, const std::string& v) {
    return nghttp2_nv{(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  }
  std::map<int32_t, Body> bodies_;
};

// ---- The codec's seams ----

class Output : public CodecOutput {
 public:
  void write(Buffer::Instance& data, bool) override { pending_.move(data); }
  Buffer::Instance pending_;
};

class Callbacks : public ClientConnectionCallbacks {
 public:
  void onGoAway(uint32_t error_code, int32_t last_stream_id) override {
    goaways_.push_back({error_code, last_stream_id});
  }
  void onMaxConcurrentStreamsChanged(uint32_t value) override { max_streams_.push_back(value); }
  std::vector<std::pair<uint32_t, int32_t>> goaways_;
  std::vector<uint32_t> max_streams_;
};

// One request's view of the response, plus its stream callbacks.
class Response : public ResponseDecoder, public StreamCallbacks {
 public:
  void decode100ContinueHeaders(ResponseHeaderMapPtr&&) override { continues_++; }
  void decodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) override {
    status_ = std::string(headers->getValue(Headers::Status));
    headers_ = std::move(headers);
    complete_ = end_stream;
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    body_ += data.toString();
    data.drain(data.length());
    complete_ = end_stream;
  }
  void decodeTrailers(ResponseTrailerMapPtr&& trailers) override {
    trailers_ = std::move(trailers);
    complete_ = true;
  }
  void onResetStream(StreamResetReason reason) override { reset_ = static_cast<int>(reason); }
  void onAboveWriteBufferHighWatermark() override { above_++; }
  void onBelowWriteBufferLowWatermark() override { below_++; }

  std::string status_;
  ResponseHeaderMapPtr headers_;
  ResponseTrailerMapPtr trailers_;
  std::string body_;
  bool complete_ = false;
  int continues_ = 0;
  int reset_ = -1;
  int above_ = 0;
  int below_ = 0;
};

int reason(StreamResetReason r) {
  return static_cast<int>(r);
}

class Http2ClientCodecTest : public testing::Test {
 protected:
  void SetUp() override { makeCodec(Http2Settings()); }
  void makeCodec(const Http2Settings& settings) {
    codec_.reset();
    codec_ =
        std::make_unique<ClientConnectionImpl>(dispatcher_, output_, callbacks_, settings, stats_);
  }

  // Move bytes both ways until neither side has anything left to say.
  void pump() {
    for (int i = 0; i < 1000; i++) {
      bool moved = false;
      if (output_.pending_.length() > 0) {
        const std::string bytes = output_.pending_.toString();
        output_.pending_.drain(output_.pending_.length());
        ASSERT_EQ(
            static_cast<ssize_t>(bytes.size()),
            nghttp2_session_mem_recv(server_.session_,
                                     reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
        moved = true;
      }
      const uint8_t* out;
      ssize_t n;
      Buffer::Instance to_client;
      while ((n = nghttp2_session_mem_send(server_.session_, &out)) > 0) {
        to_client.add(out, static_cast<size_t>(n));
      }
      if (to_client.length() > 0) {
        ASSERT_TRUE(codec_->dispatch(to_client).ok());
        moved = true;
      }
      if (!moved) {
        return;
      }
    }
    FAIL() << "the peers never went quiet";
  }

  RequestEncoder& start(Response& response, const std::string& method, const std::string& path,
                        bool end_stream) {
    RequestEncoder& encoder = codec_->newStream(response);
    encoder.getStream().addCallbacks(response);
    RequestHeaderMap headers;
    headers.addCopy(Headers::Method, method);
    headers.addCopy(Headers::Path, path);
    headers.addCopy(Headers::Authority, "backend.example");
    headers.addCopy("x-custom", "1");
    headers.addCopy(Headers::Connection, "keep-alive");  // connection-specific: never sent
    headers.addCopy(Headers::Te, "trailers");
    encoder.encodeHeaders(headers, end_stream);
    return encoder;
  }

  RealTimeSource time_source_;
  Event::DispatcherImpl dispatcher_{"test", time_source_};
  Stats::Store store_;
  ClientCodecStats stats_{Stats::Scope(store_, "cluster.backend.")};
  Output output_;
  Callbacks callbacks_;
  TestServer server_;
  std::unique_ptr<ClientConnectionImpl> codec_;
};

TEST_F(Http2ClientCodecTest, RequestWithBodyAndResponseWithTrailers) {
  // A POST with a body: HEADERS with the four pseudo-headers, then DATA with END_STREAM.
  Response response;
  RequestEncoder& encoder = start(response, "POST", "/echo?x=1", /*end_stream=*/false);
  Buffer::Instance body;
  body.add("hello");
  encoder.encodeData(body, /*end_stream=*/true);
  pump();

  // The server saw exactly what an HTTP/2 request should carry.
  const TestServer::Request& seen = server_.requests_[1];
  EXPECT_EQ("POST", seen.header(":method"));
  EXPECT_EQ("http", seen.header(":scheme"));
  EXPECT_EQ("backend.example", seen.header(":authority"));
  EXPECT_EQ("/echo?x=1", seen.header(":path"));
  EXPECT_EQ("1", seen.header("x-custom"));
  EXPECT_EQ("trailers", seen.header("te"));
  EXPECT_EQ("<none>", seen.header("connection"));
  EXPECT_EQ("hello", seen.body);
  EXPECT_TRUE(seen.end_stream);

  // It answers 200 with a body and trailers (as gRPC does): the decoder gets the headers, the
  // body, and the end of the response.
  server_.respond(1, "200", "world", {{"grpc-status", "0"}});
  pump();
  EXPECT_EQ("200", response.status_);
  EXPECT_EQ("world", response.body_);
  EXPECT_TRUE(response.complete_);
  ASSERT_NE(nullptr, response.trailers_);
  EXPECT_EQ("0", response.trailers_->getValue("grpc-status"));
  EXPECT_EQ(-1, response.reset_);
  EXPECT_EQ(1u, stats_.trailers.value());
  EXPECT_EQ(0u, codec_->activeStreams());
  EXPECT_EQ(0, stats_.streams_active.value());
}

TEST_F(Http2ClientCodecTest, RequestTrailersFollowTheBody) {
  // Body then trailers: DATA without END_STREAM, then a HEADERS frame that ends the stream.
  Response response;
  RequestEncoder& encoder = start(response, "POST", "/svc.Echo/Call", /*end_stream=*/false);
  Buffer::Instance body;
  body.add("payload");
  encoder.encodeData(body, /*end_stream=*/false);
  RequestTrailerMap trailers;
  trailers.addCopy("x-checksum", "abc");
  encoder.encodeTrailers(trailers);
  pump();
  const TestServer::Request& seen = server_.requests_[1];
  EXPECT_EQ("payload", seen.body);
  EXPECT_EQ("abc", seen.header("x-checksum"));
  EXPECT_TRUE(seen.end_stream);
}

TEST_F(Http2ClientCodecTest, StreamsAreMultiplexedAndIndependent) {
  // Three requests at once on one connection: streams 1, 3, 5.
  Response a, b, c;
  start(a, "GET", "/a", true);
  start(b, "GET", "/b", true);
  start(c, "GET", "/c", true);
  pump();
  ASSERT_EQ(3u, server_.requests_.size());
  EXPECT_EQ("/c", server_.requests_[5].header(":path"));
  EXPECT_EQ(3u, codec_->activeStreams());

  // The server answers them out of order and resets the middle one.
  server_.respond(5, "201", "");
  server_.reset(3, NGHTTP2_INTERNAL_ERROR);
  server_.respond(1, "200", "first");
  pump();
  EXPECT_EQ("201", c.status_);
  EXPECT_TRUE(c.complete_);
  EXPECT_EQ("first", a.body_);
  EXPECT_TRUE(a.complete_);
  EXPECT_EQ(reason(StreamResetReason::RemoteReset), b.reset_);
  EXPECT_EQ(1u, stats_.rx_reset.value());
  EXPECT_EQ(0u, codec_->activeStreams());
}

TEST_F(Http2ClientCodecTest, RefusedStreamAndGoAwayAreRetriableResets) {
  // Two streams open; the server refuses one explicitly.
  Response a, b, c;
  start(a, "GET", "/a", true);
  start(b, "GET", "/b", true);
  pump();
  server_.reset(3, NGHTTP2_REFUSED_STREAM);
  pump();
  EXPECT_EQ(reason(StreamResetReason::RemoteRefusedStreamReset), b.reset_);

  // A third stream, then a GOAWAY naming stream 1 as the last one the server processes:
  // stream 5 never ran, stream 1 still completes.
  start(c, "GET", "/c", true);
  pump();
  server_.goAway(/*last_stream_id=*/1);
  pump();
  ASSERT_EQ(1u, callbacks_.goaways_.size());
  EXPECT_EQ(1, callbacks_.goaways_[0].second);
  EXPECT_TRUE(codec_->goAwayReceived());
  EXPECT_TRUE(codec_->remoteWantsClose());
  EXPECT_EQ(reason(StreamResetReason::RemoteRefusedStreamReset), c.reset_);
  server_.respond(1, "200", "done");
  pump();
  EXPECT_EQ("done", a.body_);
  EXPECT_TRUE(a.complete_);
  EXPECT_EQ(-1, a.reset_);
}

TEST_F(Http2ClientCodecTest, PeerSettingsLimitConcurrentStreams) {
  // Until the server's SETTINGS arrives the limit is nghttp2's provisional 100... then 2.
  Response a;
  start(a, "GET", "/", true);
  server_.settings({{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2}});
  pump();
  EXPECT_EQ(2u, codec_->peerMaxConcurrentStreams());
  ASSERT_FALSE(callbacks_.max_streams_.empty());
  EXPECT_EQ(2u, callbacks_.max_streams_.back());
}

TEST_F(Http2ClientCodecTest, ReadDisabledStreamStopsReopeningItsWindow) {
  // Windows of 64 KiB - 1: the server can send no more than that until the stream consumes.
  Http2Settings settings;
  settings.initial_stream_window_size = kMinWindowSize;
  settings.initial_connection_window_size = kMinWindowSize;
  makeCodec(settings);
  Response response;
  RequestEncoder& encoder = start(response, "GET", "/big", true);
  pump();

  // The stream is read-disabled (say the downstream is slow) and the server sends 200 KB.
  encoder.getStream().readDisable(true);
  server_.respond(1, "200", std::string(200 * 1024, 'x'));
  pump();
  EXPECT_EQ(kMinWindowSize, response.body_.size());
  EXPECT_FALSE(response.complete_);

  // Reading resumes: the window re-opens and the rest arrives.
  encoder.getStream().readDisable(false);
  pump();
  EXPECT_EQ(200u * 1024, response.body_.size());
  EXPECT_TRUE(response.complete_);
}

TEST_F(Http2ClientCodecTest, SendBufferWatermarksFollowThePeersWindow) {
  // A 1000-byte stream buffer limit; the server grants only 64 KiB - 1 and never more.
  Http2Settings settings;
  settings.stream_buffer_limit = 1000;
  makeCodec(settings);
  TestServer stingy(/*auto_window_update=*/false);
  std::swap(server_.session_, stingy.session_);  // the test's server now never re-opens

  Response response;
  RequestEncoder& encoder = start(response, "POST", "/upload", false);
  Buffer::Instance body;
  body.add(std::string(100 * 1024, 'y'));
  encoder.encodeData(body, false);
  // Above the limit: the stream tells its callbacks to stop sending at once.
  EXPECT_EQ(1, response.above_);
  pump();
  EXPECT_EQ(1, response.above_);
  EXPECT_EQ(0, response.below_);
  EXPECT_EQ(100 * 1024 - kMinWindowSize, stats_.pending_send_bytes.value());

  // The server consumes and opens the windows: the rest drains, and the stream says so.
  nghttp2_session_consume(server_.session_, 1, kMinWindowSize);
  pump();
  EXPECT_EQ(1, response.below_);
  EXPECT_EQ(0, stats_.pending_send_bytes.value());
  std::swap(server_.session_, stingy.session_);
}

TEST_F(Http2ClientCodecTest, ResponseHeadersOverTheLimitResetTheStream) {
  Http2Settings settings;
  settings.max_headers_count = 3;
  makeCodec(settings);
  Response response;
  start(response, "GET", "/", true);
  pump();
  server_.submitHeaders(1, {{":status", "200"}, {"a", "1"}, {"b", "2"}, {"c", "3"}}, true);
  pump();
  EXPECT_EQ(reason(StreamResetReason::ProtocolError), response.reset_);
  EXPECT_EQ(1u, stats_.header_overflow.value());
  EXPECT_EQ(NGHTTP2_INTERNAL_ERROR, server_.requests_[1].rst_error);
}

TEST_F(Http2ClientCodecTest, InformationalThenFinalResponse) {
  Response response;
  start(response, "POST", "/", false);
  pump();
  server_.submitHeaders(1, {{":status", "100"}}, false);
  server_.submitHeaders(1, {{":status", "204"}}, true);
  pump();
  EXPECT_EQ(1, response.continues_);
  EXPECT_EQ("204", response.status_);
  EXPECT_TRUE(response.complete_);
}

TEST_F(Http2ClientCodecTest, LocalResetSendsRstStreamAndConnectionCloseResetsTheRest) {
  Response a, b;
  RequestEncoder& first = start(a, "GET", "/a", true);
  start(b, "POST", "/b", false);
  pump();

  // The caller gives up on stream 1: RST_STREAM(NO_ERROR), as Envoy sends.
  first.getStream().resetStream(StreamResetReason::LocalReset);
  EXPECT_EQ(reason(StreamResetReason::LocalReset), a.reset_);
  pump();
  EXPECT_EQ(NGHTTP2_NO_ERROR, server_.requests_[1].rst_error);
  EXPECT_EQ(1u, stats_.tx_reset.value());
  // Calls on the closed stream are harmless.
  first.getStream().readDisable(false);
  first.getStream().resetStream(StreamResetReason::LocalReset);
  EXPECT_EQ(1u, stats_.tx_reset.value());

  // The connection drops: the open stream hears it.
  codec_->onConnectionClose();
  EXPECT_EQ(reason(StreamResetReason::ConnectionTermination), b.reset_);
  EXPECT_EQ(0u, codec_->activeStreams());
  EXPECT_TRUE(codec_->remoteWantsClose());
}

TEST_F(Http2ClientCodecTest, GarbageFromThePeerEndsTheSession) {
  Response response;
  start(response, "GET", "/", true);
  pump();
  // A frame header claiming a 16 MiB DATA frame on stream 0 is a connection error: nghttp2
  // answers GOAWAY and the session is over; the owner closes the connection.
  Buffer::Instance garbage;
  garbage.add(std::string("\xff\xff\xff\x00\x00\x00\x00\x00\x00", 9));
  EXPECT_TRUE(codec_->dispatch(garbage).ok());
  EXPECT_TRUE(codec_->sessionOver());
  EXPECT_EQ(1u, stats_.goaway_sent.value());
  codec_->onConnectionClose();
  EXPECT_EQ(reason(StreamResetReason::ConnectionTermination), response.reset_);
}

}  // namespace
}  // namespace Proxy::Http::Http2
