#pragma once

// An HTTP/2 (h2c, prior knowledge) upstream server for integration tests: nghttp2's server
// session over the proxy's own event loop and network code, on its own thread, listening on
// 127.0.0.1 port 0. Public methods are safe from any thread.
//
// Every request is answered 200 with "x-upstream: <name>", "x-request-body-bytes: N" and the body
// "hello from <name>\npath: <path>\n". Per-request headers change that:
//   x-fake-delay-ms: N   answer N ms after the request ended (keeps the stream open)
//   x-fake-status: N     answer with status N
// With tls_cert_file/tls_key_file it serves TLS (the proxy's own TLS socket, ALPN "h2").
// The server counts connections, requests and the most streams it ever had open at once on one
// connection, and can shut every connection down gracefully (GOAWAY as RFC 9113 6.8 and nghttp2
// describe: a notice, a PING round trip, then the final GOAWAY with the last stream processed).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace Proxy::Integration {

using namespace std::chrono_literals;

struct FakeH2UpstreamOptions {
  std::string name = "h2-upstream";
  // SETTINGS_MAX_CONCURRENT_STREAMS the server announces; 0 announces none (unlimited).
  uint32_t max_concurrent_streams = 0;
  // TLS (h2 by ALPN) with this certificate and key (PEM files) instead of cleartext h2c; each
  // response then says the protocol ALPN chose in "x-upstream-alpn".
  std::string tls_cert_file;
  std::string tls_key_file;
};

class FakeH2Upstream {
 public:
  static absl::StatusOr<std::unique_ptr<FakeH2Upstream>> create(FakeH2UpstreamOptions options);
  ~FakeH2Upstream();
  FakeH2Upstream(const FakeH2Upstream&) = delete;
  FakeH2Upstream& operator=(const FakeH2Upstream&) = delete;

  uint32_t port() const { return port_; }
  uint64_t connectionsAccepted() const { return connections_accepted_.load(); }
  uint64_t requestsReceived() const { return requests_received_.load(); }
  int64_t activeConnections() const { return active_connections_.load(); }
  // The most streams open at once on any one connection, since start.
  uint64_t peakConcurrentStreams() const { return peak_streams_.load(); }
  uint64_t goAwaysSent() const { return goaways_sent_.load(); }

  // Shut down every open connection gracefully: streams in flight finish, new ones go elsewhere.
  void goAwayAll();

  testing::AssertionResult waitForRequests(uint64_t count,
                                           std::chrono::milliseconds timeout = 10s) const;

  class Server;

 private:
  friend class H2Connection;
  explicit FakeH2Upstream(FakeH2UpstreamOptions options);

  const FakeH2UpstreamOptions options_;
  uint32_t port_ = 0;
  std::atomic<uint64_t> connections_accepted_{0};
  std::atomic<uint64_t> requests_received_{0};
  std::atomic<int64_t> active_connections_{0};
  std::atomic<uint64_t> peak_streams_{0};
  std::atomic<uint64_t> goaways_sent_{0};
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

using FakeH2UpstreamPtr = std::unique_ptr<FakeH2Upstream>;

}  // namespace Proxy::Integration
