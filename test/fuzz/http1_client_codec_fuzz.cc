// Fuzzes the HTTP/1.1 client codec the way an upstream connection pool drives it: a request
// (GET or HEAD, chosen by the input) is encoded, then response bytes arrive in arbitrary
// splits; after each complete response the next request goes out on the same connection;
// the input's end is the upstream closing the connection. Invariants checked: headers at most
// once per response, no data after end_stream or after a reset, body bytes never exceed the
// input.

#include <cstdint>
#include <string>

#include "proxy/buffer/buffer.h"
#include "proxy/http/http1/client_connection_impl.h"
#include "test/fuzz/fuzz_util.h"

namespace Proxy::Http {
namespace {

class DiscardOutput : public CodecOutput {
 public:
  void write(Buffer::Instance& data, bool) override { data.drain(data.length()); }
};

class Exchange : public ResponseDecoder, public StreamCallbacks {
 public:
  void decode100ContinueHeaders(ResponseHeaderMapPtr&& headers) override {
    FUZZ_CHECK(!headers_seen_ && !reset_);
  }
  void decodeHeaders(ResponseHeaderMapPtr&& headers, bool end_stream) override {
    FUZZ_CHECK(!headers_seen_ && !reset_);
    FUZZ_CHECK(headers != nullptr);
    headers_seen_ = true;
    ended_ = end_stream;
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    FUZZ_CHECK(headers_seen_ && !ended_ && !reset_);
    body_bytes_ += data.length();
    data.drain(data.length());
    ended_ = end_stream;
  }
  void decodeTrailers(ResponseTrailerMapPtr&& trailers) override {
    FUZZ_CHECK(headers_seen_ && !ended_ && !reset_);
    FUZZ_CHECK(trailers != nullptr && !trailers->empty());
    ended_ = true;
  }
  void onResetStream(StreamResetReason) override {
    FUZZ_CHECK(!ended_);
    reset_ = true;
  }
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}
  bool done() const { return ended_ || reset_; }

  bool headers_seen_ = false;
  bool ended_ = false;
  bool reset_ = false;
  uint64_t body_bytes_ = 0;
};

}  // namespace
}  // namespace Proxy::Http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace Proxy;
  using namespace Proxy::Http;
  const size_t input_size = size;
  Fuzz::Splitter splitter(data, size);
  DiscardOutput output;
  Http1Settings settings;
  settings.max_response_headers_kb = 8;
  settings.enable_trailers = true;  // the trailer path too
  settings.max_headers_count = 20;
  ClientConnectionImpl codec(output, settings);

  uint64_t body_bytes = 0;
  auto exchange = std::make_unique<Exchange>();
  Stream* stream = nullptr;  // the codec's, reused per exchange; callbacks removed before reuse
  auto start = [&] {
    RequestEncoder& encoder = codec.newStream(*exchange);
    stream = &encoder.getStream();
    stream->addCallbacks(*exchange);
    RequestHeaderMap headers;
    headers.addCopy(Headers::Method, splitter.bit() ? "HEAD" : "GET");
    headers.addCopy(Headers::Path, "/");
    headers.addCopy(Headers::Authority, "upstream");
    encoder.encodeHeaders(headers, true);
  };
  start();
  Buffer::Instance pending;
  while (size > 0) {
    const size_t n = splitter.next(size);
    pending.add(std::string_view(reinterpret_cast<const char*>(data), n));
    data += n;
    size -= n;
    if (!codec.dispatch(pending).ok()) {
      FUZZ_CHECK(codec.lastError().http_code == 502);
      break;
    }
    if (exchange->done()) {
      body_bytes += exchange->body_bytes_;
      if (exchange->reset_ || codec.remoteWantsClose()) {
        break;
      }
      stream->removeCallbacks(*exchange);
      exchange = std::make_unique<Exchange>();
      start();
    }
  }
  // The upstream closes: a close-delimited body ends, anything else unfinished is reset.
  codec.onConnectionClose();
  body_bytes += exchange->body_bytes_;
  FUZZ_CHECK(body_bytes <= input_size);
  return 0;
}
