#pragma once

// HTTP headers in arrival order. Names are stored lower-case (the HTTP/1 codec lower-cases
// them on decode), so lookups are exact comparisons. Pseudo-headers live in the same list
// with their HTTP/2 names: ":method", ":path", ":authority" (Host on HTTP/1), ":scheme",
// ":status". clear() and removals keep the entries' strings for the next additions, and a
// destroyed map leaves its entries (and its own memory) to the next map made on the thread
// (HeaderStorageCache, Common::ThreadLocalFreeList): a request's maps allocate nothing in
// steady state (issue 14).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/common/free_list.h"

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

// `to = from`, inline when `from` is no longer than what `to` holds: a reused entry's name or
// value usually gets one of the same length or shorter (the same header of the next request),
// and std::string::assign() always goes through libstdc++'s out-of-line _M_replace (~1.6k
// instructions per proxied request; issue 14). `from` may point into `to`.
inline void assignString(std::string& to, std::string_view from) {
  if (from.size() <= to.size()) {
    if (!from.empty()) {
      std::memmove(to.data(), from.data(), from.size());
    }
    to.erase(from.size());  // to the end: sets the length, no call
    return;
  }
  to.assign(from.data(), from.size());
}

// What a map holds: spare storage is kept per kind, so a response map reuses a response's
// strings (more entries, longer ones than a request's), and 100 HTTP/2 streams in flight (100
// request and 100 response maps) fit: in one pool of kMaxVectors, 72 vectors were freed and made
// again per round of `h2load -c1 -m100`, ~9 strings allocated per request (issue 11).
enum class HeaderMapKind : uint8_t { Other, Request, Response, Trailers, Count };

// The entries of header maps that were destroyed, kept per thread and per kind for the next map
// (issue 14: no heap allocation per request in steady state). A map's vector comes back here
// with its entries' strings, whose capacity the next map's addCopy() reuses. Bounded in vectors
// and in bytes per vector; per thread, no locks (storage of a map destroyed on another thread
// than the one that made it stays with the destroying thread). Off under AddressSanitizer, as
// the free lists (proxy/common/free_list.h).
class HeaderStorageCache {
 public:
  static constexpr size_t kMaxVectors = 128;  // per kind
  static constexpr size_t kMaxBytesPerVector = 16 * 1024;

  static std::vector<HeaderEntry> take(HeaderMapKind kind) {
#ifndef PROXY_FREE_LIST_DISABLED
    if (!destroyed()) {
      std::vector<std::vector<HeaderEntry>>& spare = cache().spare[static_cast<size_t>(kind)];
      if (!spare.empty()) {
        std::vector<HeaderEntry> entries = std::move(spare.back());
        spare.pop_back();
        return entries;
      }
    }
#else
    (void)kind;
#endif
    return {};
  }

  static void give(HeaderMapKind kind, std::vector<HeaderEntry>& entries) {
#ifndef PROXY_FREE_LIST_DISABLED
    if (entries.capacity() == 0 || destroyed()) {
      return;
    }
    std::vector<std::vector<HeaderEntry>>& spare = cache().spare[static_cast<size_t>(kind)];
    if (spare.size() >= kMaxVectors) {
      return;
    }
    size_t bytes = entries.capacity() * sizeof(HeaderEntry);
    for (const HeaderEntry& entry : entries) {
      bytes += entry.key.capacity() + entry.value.capacity();
    }
    if (bytes > kMaxBytesPerVector) {
      return;  // a map that held huge headers gives its memory back
    }
    if (spare.capacity() == 0) {
      spare.reserve(kMaxVectors);
    }
    spare.push_back(std::move(entries));
#else
    (void)kind;
    (void)entries;
#endif
  }

 private:
#ifndef PROXY_FREE_LIST_DISABLED
  struct Cache {
    std::vector<std::vector<HeaderEntry>> spare[static_cast<size_t>(HeaderMapKind::Count)];
    ~Cache() { destroyed() = true; }
  };
  // Trivially destructible: still readable after the thread's Cache is gone.
  static bool& destroyed() {
    static thread_local bool flag = false;
    return flag;
  }
  static Cache& cache() {
    static thread_local Cache instance;
    return instance;
  }
#endif
};

class HeaderMap : public Common::ThreadLocalFreeList<HeaderMap> {
 public:
  using const_iterator = std::vector<HeaderEntry>::const_iterator;

  explicit HeaderMap(HeaderMapKind kind = HeaderMapKind::Other)
      : kind_(kind), headers_(HeaderStorageCache::take(kind)) {}
  HeaderMap(const HeaderMap& other)
      : kind_(other.kind_), headers_(HeaderStorageCache::take(kind_)) {
    *this = other;
  }
  HeaderMap& operator=(const HeaderMap& other) {
    if (this != &other) {
      clear();
      for (const HeaderEntry& h : other) {
        addCopy(h.key, h.value);
      }
    }
    return *this;
  }
  HeaderMap(HeaderMap&& other) noexcept
      : kind_(other.kind_),
        headers_(std::move(other.headers_)),
        size_(other.size_),
        byte_size_(other.byte_size_) {
    other.size_ = 0;
    other.byte_size_ = 0;
  }
  HeaderMap& operator=(HeaderMap&& other) noexcept {
    if (this != &other) {
      headers_.swap(other.headers_);
      std::swap(size_, other.size_);
      std::swap(byte_size_, other.byte_size_);
      other.clear();
    }
    return *this;
  }
  ~HeaderMap() { HeaderStorageCache::give(kind_, headers_); }

  // Append (duplicates allowed, as on the wire). `key` must already be lower-case.
  void addCopy(std::string_view key, std::string_view value) {
    if (size_ < headers_.size()) {
      // A spare entry: assign() reuses its strings' capacity. It often held this very name
      // before (a client or an upstream sends its headers in the same order every time, and
      // maps reuse the entries of the thread's last ones): then the name stays as it is.
      HeaderEntry& entry = headers_[size_];
      if (std::string_view(entry.key) != key) {
        assignString(entry.key, key);
      }
      assignString(entry.value, value);
    } else {
      headers_.push_back(HeaderEntry{std::string(key), std::string(value)});
    }
    size_++;
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
    assignString(existing->value, value);
    const size_t first = static_cast<size_t>(existing - headers_.data());
    for (size_t i = first + 1; i < size_;) {
      if (headers_[i].key == key) {
        eraseAt(i);
      } else {
        i++;
      }
    }
  }
  // First entry named `key`, or null.
  const HeaderEntry* get(std::string_view key) const {
    for (size_t i = 0; i < size_; i++) {
      if (headers_[i].key == key) {
        return &headers_[i];
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
    for (size_t i = 0; i < size_;) {
      if (headers_[i].key == key) {
        eraseAt(i);
        removed++;
      } else {
        i++;
      }
    }
    return removed;
  }
  // Room for `n` entries without reallocating (the codecs reserve per message).
  void reserve(size_t n) { headers_.reserve(n); }
  // Keeps the entries' strings for the next additions.
  void clear() {
    size_ = 0;
    byte_size_ = 0;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Sum of name and value lengths (what max_request_headers_kb limits).
  uint64_t byteSize() const { return byte_size_; }
  const_iterator begin() const { return headers_.begin(); }
  const_iterator end() const { return headers_.begin() + static_cast<std::ptrdiff_t>(size_); }

 private:
  HeaderEntry* find(std::string_view key) {
    for (size_t i = 0; i < size_; i++) {
      if (headers_[i].key == key) {
        return &headers_[i];
      }
    }
    return nullptr;
  }
  // Removes entry `i`, keeping the order of the others; its strings move past the live entries
  // for reuse.
  void eraseAt(size_t i) {
    byte_size_ -= headers_[i].key.size() + headers_[i].value.size();
    std::rotate(headers_.begin() + static_cast<std::ptrdiff_t>(i),
                headers_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                headers_.begin() + static_cast<std::ptrdiff_t>(size_));
    size_--;
  }

  HeaderMapKind kind_;  // which spare storage the map takes from and gives back to
  // The first size_ entries are the map; the rest are spares whose strings keep their capacity.
  std::vector<HeaderEntry> headers_;
  size_t size_ = 0;
  uint64_t byte_size_ = 0;
};

class RequestHeaderMap : public HeaderMap {
 public:
  RequestHeaderMap() : HeaderMap(HeaderMapKind::Request) {}
  std::string_view method() const { return getValue(Headers::Method); }
  std::string_view path() const { return getValue(Headers::Path); }
  std::string_view host() const { return getValue(Headers::Authority); }
  std::string_view scheme() const { return getValue(Headers::Scheme); }
};

class ResponseHeaderMap : public HeaderMap {
 public:
  ResponseHeaderMap() : HeaderMap(HeaderMapKind::Response) {}
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
class RequestTrailerMap : public HeaderMap {
 public:
  RequestTrailerMap() : HeaderMap(HeaderMapKind::Trailers) {}
};
class ResponseTrailerMap : public HeaderMap {
 public:
  ResponseTrailerMap() : HeaderMap(HeaderMapKind::Trailers) {}
};

using RequestHeaderMapPtr = std::unique_ptr<RequestHeaderMap>;
using ResponseHeaderMapPtr = std::unique_ptr<ResponseHeaderMap>;
using RequestTrailerMapPtr = std::unique_ptr<RequestTrailerMap>;
using ResponseTrailerMapPtr = std::unique_ptr<ResponseTrailerMap>;

}  // namespace Proxy::Http
