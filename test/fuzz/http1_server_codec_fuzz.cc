// Fuzzes the HTTP/1.1 server codec the way a connection manager drives it: request bytes from
// the network in arbitrary splits, each request answered either from inside dispatch() or after
// it returns (pipelining), errors answered with the codec's status. Invariants checked: a
// stream gets its headers once and no data after end_stream; body bytes never exceed the input;
// a failed dispatch() stays failed.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/buffer/buffer.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "proxy/http/utility.h"
#include "test/fuzz/fuzz_util.h"

namespace Proxy::Http {
namespace {

class DiscardOutput : public CodecOutput {
 public:
  void write(Buffer::Instance& data, bool) override {
    written_ += data.length();
    data.drain(data.length());
  }
  void readDisable(bool disable) override { disabled_ += disable ? 1 : -1; }
  uint64_t written_ = 0;
  int disabled_ = 0;
};

class RequestStream : public RequestDecoder {
 public:
  explicit RequestStream(ResponseEncoder& encoder) : encoder_(encoder) {}
  void decodeHeaders(RequestHeaderMapPtr&& headers, bool end_stream) override {
    FUZZ_CHECK(!headers_seen_);
    FUZZ_CHECK(headers != nullptr);
    headers_seen_ = true;
    ended_ = end_stream;
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    FUZZ_CHECK(headers_seen_);
    FUZZ_CHECK(!ended_);
    body_bytes_ += data.length();
    data.drain(data.length());
    ended_ = end_stream;
  }
  void decodeTrailers(RequestTrailerMapPtr&& trailers) override {
    FUZZ_CHECK(headers_seen_);
    FUZZ_CHECK(!ended_);
    FUZZ_CHECK(trailers != nullptr && !trailers->empty());
    ended_ = true;
  }
  void respond() {
    FUZZ_CHECK(!responded_);
    responded_ = true;
    Utility::encodeLocalReply(encoder_, 200, "ok");
  }

  ResponseEncoder& encoder_;
  bool headers_seen_ = false;
  bool ended_ = false;
  bool responded_ = false;
  uint64_t body_bytes_ = 0;
};

class Callbacks : public ServerConnectionCallbacks {
 public:
  explicit Callbacks(Fuzz::Splitter& splitter) : splitter_(splitter) {}
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    FUZZ_CHECK(current() == nullptr || current()->responded_);
    streams_.push_back(std::make_unique<RequestStream>(encoder));
    return *streams_.back();
  }
  RequestStream* current() { return streams_.empty() ? nullptr : streams_.back().get(); }
  uint64_t bodyBytes() const {
    uint64_t total = 0;
    for (const auto& stream : streams_) {
      total += stream->body_bytes_;
    }
    return total;
  }

  Fuzz::Splitter& splitter_;
  std::vector<std::unique_ptr<RequestStream>> streams_;
};

}  // namespace
}  // namespace Proxy::Http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace Proxy;
  using namespace Proxy::Http;
  const size_t input_size = size;
  Fuzz::Splitter splitter(data, size);
  DiscardOutput output;
  Callbacks callbacks(splitter);
  Http1Settings settings;
  settings.max_request_headers_kb = 8;  // small limits reach the 431 paths with short inputs
  settings.enable_trailers = true;      // the trailer path too
  settings.max_headers_count = 20;
  ServerConnectionImpl codec(output, callbacks, settings);

  Buffer::Instance pending;
  bool failed = false;
  // Answer a finished request (as the router would) unless it already has its response.
  auto answer = [&] {
    RequestStream* stream = callbacks.current();
    if (stream != nullptr && stream->ended_ && !stream->responded_) {
      stream->respond();
    }
  };
  while ((size > 0 || pending.length() > 0) && !failed) {
    const size_t n = size > 0 ? splitter.next(size) : 0;
    pending.add(std::string_view(reinterpret_cast<const char*>(data), n));
    data += n;
    size -= n;
    const uint64_t before = pending.length();
    absl::Status status = codec.dispatch(pending);
    if (!status.ok()) {
      failed = true;
      RequestStream* stream = callbacks.current();
      if (stream != nullptr && !stream->responded_) {
        FUZZ_CHECK(codec.lastError().http_code >= 400);
        stream->respond();
      }
      break;
    }
    const bool progressed = pending.length() != before;
    if (splitter.bit()) {
      answer();
    }
    if (size == 0 && !progressed) {
      // No more input and nothing consumed: answer what waits, or stop (a partial request).
      RequestStream* stream = callbacks.current();
      if (stream == nullptr || !stream->ended_ || stream->responded_) {
        break;
      }
      answer();
    }
  }
  FUZZ_CHECK(callbacks.bodyBytes() <= input_size);
  return 0;
}
