#pragma once

// Shared by the HTTP/1.1 codec tests (server_codec_test.cc, server_codec_encode_test.cc,
// client_codec_test.cc): fakes at the codec's seams and the server codec fixture.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/buffer/buffer.h"
#include "proxy/http/codec.h"
#include "proxy/http/header_map.h"
#include "proxy/http/http1/server_connection_impl.h"

namespace Proxy::Http {

// ---------------------------------------------------------------------------------------------
// Fakes at the codec's seams.

// Records what the codec writes and how it toggles reading.
class FakeOutput : public CodecOutput {
 public:
  void write(Buffer::Instance& data, bool end_stream) override {
    EXPECT_FALSE(end_stream);  // HTTP/1 never half-closes
    written_ += data.toString();
    writes_++;
    data.drain(data.length());
  }
  void readDisable(bool disable) override {
    read_disable_count_ += disable ? 1 : -1;
    read_disable_calls_++;
  }
  // Everything written since the last take().
  std::string take() {
    std::string out;
    out.swap(written_);
    return out;
  }

  std::string written_;
  int writes_ = 0;
  int read_disable_count_ = 0;  // > 0: reading is disabled
  int read_disable_calls_ = 0;
};

// "key: value\n" per entry, in order: exact assertions over a whole header map.
inline std::string dump(const HeaderMap& headers) {
  std::string out;
  for (const HeaderEntry& entry : headers) {
    out += entry.key + ": " + entry.value + "\n";
  }
  return out;
}

// Fills `buffer` so that each fragment is its own slice (as separate socket reads would).
inline void addSlices(Buffer::Instance& buffer, const std::vector<std::string>& fragments) {
  for (const std::string& fragment : fragments) {
    buffer.appendSliceForTest(fragment);
  }
}

class RecordingRequestDecoder : public RequestDecoder {
 public:
  void decodeHeaders(RequestHeaderMapPtr&& headers, bool end_stream) override {
    headers_ = std::move(headers);
    headers_end_stream_ = end_stream;
    ended_ = end_stream;
    if (on_headers_) {
      on_headers_();
    }
  }
  void decodeData(Buffer::Instance& data, bool end_stream) override {
    EXPECT_FALSE(ended_) << "data after end_stream";
    data_sizes_.push_back(data.length());
    Buffer::RawSlice slice;
    first_slices_.push_back(data.getRawSlices(&slice, 1) > 0 ? slice.mem : nullptr);
    body_ += data.toString();
    data.drain(data.length());
    ended_ = end_stream;
    if (end_stream && on_end_) {
      on_end_();
    }
  }
  void decodeTrailers(RequestTrailerMapPtr&& trailers) override {
    EXPECT_FALSE(ended_) << "trailers after end_stream";
    trailers_ = std::move(trailers);
    ended_ = true;
    if (on_end_) {
      on_end_();
    }
  }

  RequestHeaderMapPtr headers_;
  RequestTrailerMapPtr trailers_;
  std::vector<const void*> first_slices_;  // where each decodeData's bytes live
  bool headers_end_stream_ = false;
  bool ended_ = false;
  std::vector<uint64_t> data_sizes_;
  std::string body_;
  std::function<void()> on_headers_;
  std::function<void()> on_end_;
};

// Hands out one RecordingRequestDecoder per request.
class FakeServerCallbacks : public ServerConnectionCallbacks {
 public:
  RequestDecoder& newStream(ResponseEncoder& response_encoder) override {
    encoders_.push_back(&response_encoder);
    decoders_.push_back(std::make_unique<RecordingRequestDecoder>());
    if (on_new_stream_) {
      on_new_stream_(*decoders_.back());
    }
    return *decoders_.back();
  }
  void onResponseComplete() override { responses_complete_++; }
  void onReadingPaused(bool paused) override { reading_paused_.push_back(paused); }

  RecordingRequestDecoder& decoder(size_t i) { return *decoders_.at(i); }
  ResponseEncoder& encoder(size_t i) { return *encoders_.at(i); }

  std::vector<ResponseEncoder*> encoders_;
  std::vector<std::unique_ptr<RecordingRequestDecoder>> decoders_;
  std::function<void(RecordingRequestDecoder&)> on_new_stream_;
  int responses_complete_ = 0;
  std::vector<bool> reading_paused_;
};

class RecordingStreamCallbacks : public StreamCallbacks {
 public:
  void onResetStream(StreamResetReason reason) override { resets_.push_back(reason); }
  void onAboveWriteBufferHighWatermark() override { above_++; }
  void onBelowWriteBufferLowWatermark() override { below_++; }

  std::vector<StreamResetReason> resets_;
  int above_ = 0;
  int below_ = 0;
};

inline ResponseHeaderMap responseHeaders(
    uint32_t status, std::vector<std::pair<std::string, std::string>> extra = {}) {
  ResponseHeaderMap headers;
  headers.setStatus(status);
  for (auto& [key, value] : extra) {
    headers.addCopy(key, value);
  }
  return headers;
}

inline void encodeBody(ResponseEncoder& encoder, std::string_view body, bool end_stream) {
  Buffer::Instance data;
  data.add(body);
  encoder.encodeData(data, end_stream);
  EXPECT_EQ(data.length(), 0u);
}

// The server codec over a FakeOutput and FakeServerCallbacks.
class ServerCodecTest : public testing::Test {
 protected:
  absl::Status dispatch(std::string_view bytes) {
    input_.add(bytes);
    return codec_.dispatch(input_);
  }
  // The codec's error as "code details" for one-line assertions.
  std::string error() const {
    return std::to_string(codec_.lastError().http_code) + " " + codec_.lastError().details;
  }

  // HTTP/1.0 is refused (426) unless accepted; the fixture accepts it so that the HTTP/1.0
  // framing tests can run, and Http10IsRefusedWith426UnlessAccepted uses a codec of its own.
  static Http1Settings acceptingHttp10() {
    Http1Settings settings;
    settings.accept_http_10 = true;
    return settings;
  }

  FakeOutput output_;
  FakeServerCallbacks callbacks_;
  Http1Settings settings_ = acceptingHttp10();
  ServerConnectionImpl codec_{output_, callbacks_, settings_};
  Buffer::Instance input_;  // the owner's read buffer
};

}  // namespace Proxy::Http
