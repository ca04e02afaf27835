#pragma once

// HTTP headers in arrival order. Names are stored lower-case (the HTTP/1 codec lower-cases
// them on decode), so lookups are exact comparisons. Pseudo-headers live in the same list
// with their HTTP/2 names: ":method", ":path", ":authority" (Host on HTTP/1), ":scheme",
// ":status". The vector keeps its capacity across clear(), so a connection that reuses its
// maps does not reallocate per request.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace Proxy::Http {

namespace Headers {
inline constexpr std::string_view Method = ":method";
inline constexpr std::string_view Path = ":path";
inline constexpr std::string_view Authority = ":authority";
inline constexpr std::string_view Scheme = ":scheme";
inline constexpr std::string_view Status = ":status";
inline constexpr std::string_view Host = "host";
inline constexpr std::string_view Connection = "connection";
inline constexpr std::string_view ContentLength = "content-length";
inline constexpr std::string_view TransferEncoding = "transfer-encoding";
inline constexpr std::string_view Expect = "expect";
inline constexpr std::string_view KeepAlive = "keep-alive";
inline constexpr std::string_view ProxyConnection = "proxy-connection";
inline constexpr std::string_view Upgrade = "upgrade";
inline constexpr std::string_view Te = "te";
inline constexpr std::string_view XForwardedFor = "x-forwarded-for";
inline constexpr std::string_view XForwardedProto = "x-forwarded-proto";
inline constexpr std::string_view XRequestId = "x-request-id";
inline constexpr std::string_view XEnvoyOriginalPath = "x-envoy-original-path";
inline constexpr std::string_view XEnvoyUpstreamServiceTime = "x-envoy-upstream-service-time";
inline constexpr std::string_view Server = "server";
inline constexpr std::string_view Date = "date";
inline constexpr std::string_view Location = "location";
inline constexpr std::string_view ContentType = "content-type";
inline constexpr std::string_view UserAgent = "user-agent";
}  // namespace Headers

struct HeaderEntry {
  std::string key;
  std::string value;
};

class HeaderMap {
 public:
  using const_iterator = std::vector<HeaderEntry>::const_iterator;

  // Append (duplicates allowed, as on the wire). `key` must already be lower-case.
  void addCopy(std::string_view key, std::string_view value) {
    headers_.push_back(HeaderEntry{std::string(key), std::string(value)});
    byte_size_ += key.size() + value.size();
  }
  // Replace the first entry named `key` and drop the others, or append.
  void setCopy(std::string_view key, std::string_view value) {
    HeaderEntry* existing = find(key);
    if (existing == nullptr) {
      addCopy(key, value);
      return;
    }
    byte_size_ += value.size();
    byte_size_ -= existing->value.size();
    existing->value.assign(value.data(), value.size());
    for (auto it = headers_.begin(); it != headers_.end();) {
      if (&*it != existing && it->key == key) {
        byte_size_ -= it->key.size() + it->value.size();
        it = headers_.erase(it);
        existing = find(key);  // erase may move entries
      } else {
        ++it;
      }
    }
  }
  // First entry named `key`, or null.
  const HeaderEntry* get(std::string_view key) const {
    for (const HeaderEntry& h : headers_) {
      if (h.key == key) {
        return &h;
      }
    }
    return nullptr;
  }
  // Value of the first entry named `key`, or "" when absent.
  std::string_view getValue(std::string_view key) const {
    const HeaderEntry* h = get(key);
    return h == nullptr ? std::string_view() : std::string_view(h->value);
  }
  bool has(std::string_view key) const { return get(key) != nullptr; }
  // Remove every entry named `key`; returns how many were removed.
  size_t remove(std::string_view key) {
    size_t removed = 0;
    for (auto it = headers_.begin(); it != headers_.end();) {
      if (it->key == key) {
        byte_size_ -= it->key.size() + it->value.size();
        it = headers_.erase(it);
        removed++;
      } else {
        ++it;
      }
    }
    return removed;
  }
  // Room for `n` entries without reallocating (the codecs reserve per message).
  void reserve(size_t n) { headers_.reserve(n); }
  void clear() {
    headers_.clear();
    byte_size_ = 0;
  }

  size_t size() const { return headers_.size(); }
  bool empty() const { return headers_.empty(); }
  // Sum of name and value lengths (what max_request_headers_kb limits).
  uint64_t byteSize() const { return byte_size_; }
  const_iterator begin() const { return headers_.begin(); }
  const_iterator end() const { return headers_.end(); }

 private:
  HeaderEntry* find(std::string_view key) {
    for (HeaderEntry& h : headers_) {
      if (h.key == key) {
        return &h;
      }
    }
    return nullptr;
  }

  std::vector<HeaderEntry> headers_;
  uint64_t byte_size_ = 0;
};

class RequestHeaderMap : public HeaderMap {
 public:
  std::string_view method() const { return getValue(Headers::Method); }
  std::string_view path() const { return getValue(Headers::Path); }
  std::string_view host() const { return getValue(Headers::Authority); }
  std::string_view scheme() const { return getValue(Headers::Scheme); }
};

class ResponseHeaderMap : public HeaderMap {
 public:
  // 0 when :status is missing or not a number.
  uint32_t status() const {
    uint32_t code = 0;
    for (char c : getValue(Headers::Status)) {
      if (c < '0' || c > '9') {
        return 0;
      }
      code = code * 10 + static_cast<uint32_t>(c - '0');
    }
    return code;
  }
  void setStatus(uint32_t code) { setCopy(Headers::Status, std::to_string(code)); }
};

// Trailers: header fields after the body (HTTP/1 chunked trailers, HTTP/2's last HEADERS frame).
// No pseudo-headers. Distinct types, as Envoy's, so a trailer map is never passed for headers.
class RequestTrailerMap : public HeaderMap {};
class ResponseTrailerMap : public HeaderMap {};

using RequestHeaderMapPtr = std::unique_ptr<RequestHeaderMap>;
using ResponseHeaderMapPtr = std::unique_ptr<ResponseHeaderMap>;
using RequestTrailerMapPtr = std::unique_ptr<RequestTrailerMap>;
using ResponseTrailerMapPtr = std::unique_ptr<ResponseTrailerMap>;

}  // namespace Proxy::Http
