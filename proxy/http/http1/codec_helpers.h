#pragma once

// Small helpers the HTTP/1 connection base and the server and client codecs share
// (proxy/http/http1 only; not an API).

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "proxy/http/header_map.h"

namespace Proxy::Http::Http1Helpers {

inline constexpr std::string_view kCrlf = "\r\n";

// Most messages carry fewer headers than this; one allocation covers them.
inline constexpr size_t kReservedHeaders = 16;

// Details for the errors llhttp finds itself (anything not from the codec's own checks).
inline constexpr std::string_view kCodecError = "http1.codec_error";

// Connection-scoped headers the codec owns: it writes its own framing and Connection header.
inline bool isHopByHop(std::string_view name) {
  return name == Headers::Connection || name == Headers::KeepAlive ||
         name == Headers::ProxyConnection || name == Headers::TransferEncoding ||
         name == Headers::Upgrade;
}

// The longest line a codec adds of its own: "transfer-encoding: chunked\r\n" (28 bytes),
// "connection: keep-alive\r\n", "content-length: 0\r\n".
inline constexpr size_t kFramingLineRoom = 32;

// Writes a header block into `out` (cleared first) with plain copies: the string is sized once
// for the block's expected size and trimmed at the end, instead of four appends (each a
// libstdc++ call with its own checks) per "name: value\r\n" line (issue 14). A block larger
// than `expected` still works: the string grows.
class HeaderBlockWriter {
 public:
  HeaderBlockWriter(std::string& out, size_t expected) : out_(out) {
    out_.resize(expected);
    pos_ = 0;
  }
  ~HeaderBlockWriter() { out_.resize(pos_); }
  HeaderBlockWriter(const HeaderBlockWriter&) = delete;
  HeaderBlockWriter& operator=(const HeaderBlockWriter&) = delete;

  void add(std::string_view text) {
    char* at = room(text.size());
    if (!text.empty()) {
      std::memcpy(at, text.data(), text.size());
    }
  }
  void addNumber(uint64_t value, int base) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof(digits), value, base);
    add(std::string_view(digits, static_cast<size_t>(result.ptr - digits)));
  }
  // "name: value\r\n".
  void addLine(std::string_view name, std::string_view value) {
    char* at = room(name.size() + value.size() + 4);
    std::memcpy(at, name.data(), name.size());
    at += name.size();
    at[0] = ':';
    at[1] = ' ';
    at += 2;
    if (!value.empty()) {
      std::memcpy(at, value.data(), value.size());
    }
    at += value.size();
    at[0] = '\r';
    at[1] = '\n';
  }

  // Room for a header map's lines (names, values and their 4 separator bytes).
  static size_t linesSize(const HeaderMap& headers) {
    return headers.byteSize() + 4 * headers.size();
  }

 private:
  // `n` writable bytes at the end of the block.
  char* room(size_t n) {
    if (pos_ + n > out_.size()) {
      out_.resize(std::max(out_.size() * 2, pos_ + n));
    }
    char* at = out_.data() + pos_;
    pos_ += n;
    return at;
  }

  std::string& out_;
  size_t pos_;
};

}  // namespace Proxy::Http::Http1Helpers
