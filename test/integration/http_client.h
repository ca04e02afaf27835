#pragma once

// A blocking HTTP/1.1 client for tests: one TCP socket to 127.0.0.1, every call bounded by a
// deadline, responses parsed by llhttp (the same parser the proxy uses; no hand-written
// parsing). It can reuse its socket for keep-alive, send arbitrary (malformed) bytes, and
// stream a generated chunked body of any size while reading the response concurrently.
// Not thread-safe: one client per test thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace Proxy::Integration {

using namespace std::chrono_literals;

struct HttpResponse {
  uint32_t status = 0;
  // Names lower-cased, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body, up to the client's body_keep_limit bytes; body_bytes and body_fnv1a cover all.
  std::string body;
  uint64_t body_bytes = 0;
  std::string body_fnv1a;  // 16 hex digits, see body_pattern.h
  // llhttp's verdict: false when the response ends the connection.
  bool keep_alive = false;

  // Value of the first header named `name` (lower-case), or "" when absent.
  std::string header(std::string_view name) const;
  bool hasHeader(std::string_view name) const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string path = "/";
  std::string host = "example.com";
  // Extra headers, sent as given (after Host).
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent with Content-Length when non-empty (or when the method is POST/PUT).
  std::string body;
};

class HttpClient {
 public:
  // A blocking connect to 127.0.0.1:`port`.
  static absl::StatusOr<std::unique_ptr<HttpClient>> connect(
      uint32_t port, std::chrono::milliseconds timeout = 5s);
  // Takes ownership of a connected socket.
  explicit HttpClient(int fd);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Every later call fails with DeadlineExceeded when it takes longer than this (default 10s).
  void setTimeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  // Bodies longer than this are counted and digested but not kept (default 1 MiB).
  void setBodyKeepLimit(uint64_t limit) { body_keep_limit_ = limit; }

  // Write `bytes` exactly as given.
  absl::Status sendRaw(std::string_view bytes);
  // Read the next response on this socket (bytes after it stay for the next call).
  absl::StatusOr<HttpResponse> readResponse();
  // Serialise `request`, send it, read its response.
  absl::StatusOr<HttpResponse> request(const HttpRequest& request);
  // Send `request`'s head with "transfer-encoding: chunked", then `body_bytes` of the body
  // pattern in `chunk_size` chunks, generated on the fly; responses bytes are parsed while
  // sending, so a proxy that answers early cannot deadlock the client.
  absl::StatusOr<HttpResponse> chunkedUpload(const HttpRequest& request, uint64_t body_bytes,
                                             size_t chunk_size = 64 * 1024);

  // True when the peer closes the connection (EOF or reset) before the deadline, discarding
  // anything it sends first.
  bool waitForClose(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

  static std::string serialize(const HttpRequest& request);

 private:
  class Parser;
  using Deadline = std::chrono::steady_clock::time_point;

  // Wait until the socket is readable/writable; false on timeout.
  absl::Status waitFor(short events, Deadline deadline, short* revents);
  absl::Status writeAll(std::string_view bytes, Deadline deadline, Parser* parser);
  // Read once into pending_; returns bytes read (0 = EOF).
  absl::StatusOr<size_t> readSome(Deadline deadline);

  int fd_;
  std::chrono::milliseconds timeout_ = 10s;
  uint64_t body_keep_limit_ = 1 << 20;
  // Bytes read but not yet consumed by a response (pipelined / keep-alive leftovers).
  std::string pending_;
  bool eof_ = false;
};

using HttpClientPtr = std::unique_ptr<HttpClient>;

// One request on a fresh connection.
absl::StatusOr<HttpResponse> httpRequest(uint32_t port, const HttpRequest& request,
                                         std::chrono::milliseconds timeout = 10s);

}  // namespace Proxy::Integration
