#pragma once

// An HTTP/2 client for tests, on nghttp2's own client session (a real peer's framing, not ours):
// requests, bodies, trailers and resets are serialised with takeOutput(); the server's bytes go
// in with feed() and come out as per-stream results, RST_STREAM codes and GOAWAY. rawFrame()
// builds hand-made frames for the abuse cases nghttp2 would refuse to send. No socket: the unit
// tests pair it with the codec directly, Http2SocketClient (below) puts it on a TCP connection.

#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace Proxy::Test {

using Http2Headers = std::vector<std::pair<std::string, std::string>>;

struct Http2StreamResult {
  Http2Headers headers;  // the final response's
  std::string body;
  Http2Headers trailers;
  bool ended = false;                  // END_STREAM received
  std::optional<uint32_t> reset_code;  // RST_STREAM received, or the stream closed with it
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) {
        return v;
      }
    }
    return "";
  }
};

class Http2TestClient {
 public:
  // `window`: the client's SETTINGS_INITIAL_WINDOW_SIZE (small to test response flow control);
  // with `manual_window` the client only reopens it on consume().
  explicit Http2TestClient(uint32_t window = 65535, bool manual_window = false) {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &Http2TestClient::onHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Http2TestClient::onData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Http2TestClient::onFrame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Http2TestClient::onClose);
    nghttp2_option* option;
    nghttp2_option_new(&option);
    if (manual_window) {
      nghttp2_option_set_no_auto_window_update(option, 1);
    }
    nghttp2_session_client_new2(&session_, cb, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry entry{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &entry, 1);
    if (manual_window) {
      // Only stream windows pace the server: one stalled stream must not hold the connection's.
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 1 << 30);
    }
  }
  ~Http2TestClient() { nghttp2_session_del(session_); }
  Http2TestClient(const Http2TestClient&) = delete;
  Http2TestClient& operator=(const Http2TestClient&) = delete;

  static Http2Headers get(std::string_view path, std::string_view authority = "example.com") {
    return {{":method", "GET"},
            {":scheme", "http"},
            {":path", std::string(path)},
            {":authority", std::string(authority)}};
  }
  static Http2Headers post(std::string_view path, std::string_view authority = "example.com") {
    Http2Headers h = get(path, authority);
    h[0].second = "POST";
    return h;
  }

  // A request; with `body`, a DATA stream follows (ending the request unless trailers follow).
  int32_t request(const Http2Headers& headers, std::optional<std::string> body = std::nullopt,
                  const Http2Headers& trailers = {}) {
    const std::vector<nghttp2_nv> nv = toNv(headers);
    const bool end_stream = !body.has_value() && trailers.empty();
    int32_t id;
    if (end_stream) {
      id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), nullptr, this);
    } else {
      nghttp2_data_provider provider;
      provider.source.ptr = this;
      provider.read_callback = &Http2TestClient::readBody;
      id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, this);
      bodies_[id] = Body{body.value_or(""), 0, trailers, false};
    }
    results_[id];
    return id;
  }
  // A request that sends `body` and then stalls: its stream never ends (END_STREAM never sent).
  int32_t openRequest(const Http2Headers& headers, std::string body) {
    const int32_t id = request(headers, std::move(body));
    bodies_[id].open = true;
    return id;
  }
  void reset(int32_t stream_id, uint32_t code = NGHTTP2_CANCEL) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, code);
  }
  void ping() {
    const uint8_t opaque[8] = {};
    nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque);
  }
  // Reopens the window for bytes the test has read (manual_window).
  void consume(int32_t stream_id, size_t n) { nghttp2_session_consume(session_, stream_id, n); }

  // Everything nghttp2 wants to send now (the preface first).
  std::string takeOutput() {
    std::string out;
    for (;;) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) {
        break;
      }
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    return out;
  }
  // The server's bytes; false once nghttp2 found them invalid.
  bool feed(std::string_view bytes) {
    const ssize_t rv = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return rv == static_cast<ssize_t>(bytes.size());
  }

  Http2StreamResult& result(int32_t stream_id) { return results_[stream_id]; }
  std::optional<uint32_t> goawayCode() const { return goaway_code_; }
  std::optional<int32_t> goawayLastStream() const { return goaway_last_stream_; }
  nghttp2_session* session() { return session_; }

  // --- Hand-made frames -------------------------------------------------------------------
  static std::string rawFrame(uint8_t type, uint8_t flags, uint32_t stream_id,
                              std::string_view payload) {
    std::string out;
    const uint32_t len = static_cast<uint32_t>(payload.size());
    out.push_back(static_cast<char>((len >> 16) & 0xff));
    out.push_back(static_cast<char>((len >> 8) & 0xff));
    out.push_back(static_cast<char>(len & 0xff));
    out.push_back(static_cast<char>(type));
    out.push_back(static_cast<char>(flags));
    out.push_back(static_cast<char>((stream_id >> 24) & 0x7f));
    out.push_back(static_cast<char>((stream_id >> 16) & 0xff));
    out.push_back(static_cast<char>((stream_id >> 8) & 0xff));
    out.push_back(static_cast<char>(stream_id & 0xff));
    out.append(payload);
    return out;
  }
  // HPACK "literal header field without indexing, new name", no Huffman (names/values < 127).
  static std::string hpackLiteral(const Http2Headers& headers) {
    std::string out;
    for (const auto& [name, value] : headers) {
      out.push_back('\0');
      out.push_back(static_cast<char>(name.size()));
      out.append(name);
      out.push_back(static_cast<char>(value.size()));
      out.append(value);
    }
    return out;
  }
  struct RawFrame {
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id;
    std::string payload;
    // RST_STREAM's or GOAWAY's error code.
    uint32_t errorCode() const {
      const size_t at = type == NGHTTP2_GOAWAY ? 4 : 0;
      if (payload.size() < at + 4) {
        return 0xffffffff;
      }
      const auto b = [&](size_t i) {
        return static_cast<uint32_t>(static_cast<uint8_t>(payload[i]));
      };
      return (b(at) << 24) | (b(at + 1) << 16) | (b(at + 2) << 8) | b(at + 3);
    }
  };
  // Splits a server's bytes into frames (a trailing partial frame is left out).
  static std::vector<RawFrame> parseFrames(std::string_view bytes) {
    std::vector<RawFrame> out;
    while (bytes.size() >= 9) {
      const auto b = [&](size_t i) {
        return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i]));
      };
      const uint32_t len = (b(0) << 16) | (b(1) << 8) | b(2);
      if (bytes.size() < 9 + len) {
        break;
      }
      out.push_back(RawFrame{static_cast<uint8_t>(b(3)), static_cast<uint8_t>(b(4)),
                             ((b(5) & 0x7f) << 24) | (b(6) << 16) | (b(7) << 8) | b(8),
                             std::string(bytes.substr(9, len))});
      bytes.remove_prefix(9 + len);
    }
    return out;
  }
  // The first frame of `type` (on `stream_id`, unless any), or nullopt.
  static std::optional<RawFrame> findFrame(const std::vector<RawFrame>& frames, uint8_t type,
                                           std::optional<uint32_t> stream_id = std::nullopt) {
    for (const RawFrame& f : frames) {
      if (f.type == type && (!stream_id.has_value() || f.stream_id == *stream_id)) {
        return f;
      }
    }
    return std::nullopt;
  }
  static std::string preface() {
    return std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + rawFrame(NGHTTP2_SETTINGS, 0, 0, "");
  }

 private:
  struct Body {
    std::string data;
    size_t offset = 0;
    Http2Headers trailers;
    bool open = false;  // the request never ends: after `data`, nothing more (a stalled client)
  };

  static std::vector<nghttp2_nv> toNv(const Http2Headers& headers) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [k, v] : headers) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    return nv;
  }
  static ssize_t readBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user) {
    auto& self = *static_cast<Http2TestClient*>(user);
    Body& body = self.bodies_[stream_id];
    if (body.open && body.offset == body.data.size()) {
      return NGHTTP2_ERR_DEFERRED;
    }
    const size_t n = std::min(length, body.data.size() - body.offset);
    std::copy(body.data.begin() + static_cast<std::ptrdiff_t>(body.offset),
              body.data.begin() + static_cast<std::ptrdiff_t>(body.offset + n), buf);
    body.offset += n;
    if (body.offset == body.data.size() && !body.open) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!body.trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        const std::vector<nghttp2_nv> nv = toNv(body.trailers);
        nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size());
      }
    }
    return static_cast<ssize_t>(n);
  }
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto& self = *static_cast<Http2TestClient*>(user);
    Http2StreamResult& r = self.results_[frame->hd.stream_id];
    std::pair<std::string, std::string> h(
        std::string(reinterpret_cast<const char*>(name), namelen),
        std::string(reinterpret_cast<const char*>(value), valuelen));
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && !r.headers.empty() &&
        r.header(":status")[0] != '1') {
      r.trailers.push_back(std::move(h));
    } else {
      if (h.first == ":status") {
        r.headers.clear();  // a 1xx is replaced by the final response
      }
      r.headers.push_back(std::move(h));
    }
    return 0;
  }
  static int onData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user) {
    static_cast<Http2TestClient*>(user)->results_[stream_id].body.append(
        reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int onFrame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& self = *static_cast<Http2TestClient*>(user);
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      self.results_[frame->hd.stream_id].ended = true;
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      self.results_[frame->hd.stream_id].reset_code = frame->rst_stream.error_code;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self.goaway_code_ = frame->goaway.error_code;
      self.goaway_last_stream_ = frame->goaway.last_stream_id;
    }
    return 0;
  }
  static int onClose(nghttp2_session*, int32_t, uint32_t, void*) { return 0; }

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Body> bodies_;
  std::map<int32_t, Http2StreamResult> results_;
  std::optional<uint32_t> goaway_code_;
  std::optional<int32_t> goaway_last_stream_;
};

}  // namespace Proxy::Test
