#pragma once

// An HTTP/1.1 upstream server for integration tests and the demo, built from the proxy's own
// pieces (Event::DispatcherImpl, Network::TcpListenerImpl/ConnectionImpl, the HTTP/1 server
// codec) so that tests dogfood them. It listens on 127.0.0.1 (port 0 unless told otherwise)
// and runs its own thread and dispatcher; the public methods are safe from any thread.
//
// Every response carries "x-upstream: <name>", the request's headers echoed back as
// "x-echo-<name>" (pseudo-headers without the colon: x-echo-method, x-echo-path,
// x-echo-authority), and "x-request-body-bytes" / "x-request-body-fnv1a" describing the request
// body it received (see body_pattern.h). The default body is
//   "hello from <name>\npath: <path>\n".
// Behaviour can be set per instance (FakeUpstreamOptions) and overridden per request with
// headers, so one upstream serves many scenarios:
//   x-fake-status: N          respond with status N
//   x-fake-delay-ms: N        respond N ms after the request ended (a timer; for 504 tests)
//   x-fake-response-bytes: N  stream N bytes of the body pattern instead of the greeting, with
//                             backpressure (content-length N)
//   x-fake-close: 1           close the connection without responding, once the request head
//                             arrived
//   x-fake-response-trailer: NAME=VALUE
//                             end the greeting (chunked) with the trailer NAME: VALUE; sent on
//                             the wire only with enable_trailers
//   x-fake-trickle-ms: N      with x-fake-response-bytes: send the body one byte every N ms
//   x-fake-close-after-bytes: N  send the headers and N body bytes of the promised
//                             x-fake-response-bytes, then close (a response cut short)
// With enable_trailers, request trailers are decoded and echoed as "x-echo-trailer-<name>".
// FakeUpstreamOptions::first_requests_headers adds headers to the first first_requests requests
// the upstream receives, so that a test can have an upstream fail its first attempts only.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace Proxy::Event {
class Dispatcher;
}

namespace Proxy::Integration {

using namespace std::chrono_literals;

class FakeConnection;

struct FakeUpstreamOptions {
  std::string name = "upstream";
  // The loopback address to bind (DNS tests give several upstreams one port on 127.0.0.x).
  std::string address = "127.0.0.1";
  // Defaults for requests that do not say otherwise (see the header comment).
  uint32_t status = 200;
  std::chrono::milliseconds delay{0};
  uint64_t response_bytes = 0;  // 0: the greeting body
  bool close_without_response = false;
  bool echo_headers = true;
  // Http1ProtocolOptions.enable_trailers for the upstream's codec.
  bool enable_trailers = false;
  // The first `first_requests` requests behave as if they also carried these headers (e.g.
  // {{"x-fake-status", "503"}}): an upstream that fails its first attempts, then recovers.
  uint64_t first_requests = 0;
  std::vector<std::pair<std::string, std::string>> first_requests_headers;
};

class FakeUpstream {
 public:
  // Bind options.address:`port` (0: any free port) and start serving.
  static absl::StatusOr<std::unique_ptr<FakeUpstream>> create(FakeUpstreamOptions options,
                                                              uint32_t port = 0);
  // Stops the thread, closing every connection.
  ~FakeUpstream();
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  uint32_t port() const { return port_; }
  const std::string& name() const { return options_.name; }

  // Totals since start; updated on the upstream's thread before the response is sent, so a
  // test that got a response sees them already counted.
  uint64_t connectionsAccepted() const { return connections_accepted_.load(); }
  uint64_t requestsReceived() const { return requests_received_.load(); }
  uint64_t responsesStarted() const { return responses_started_.load(); }
  // Connections currently open.
  int64_t activeConnections() const { return active_connections_.load(); }
  // Requests with "user-agent: Envoy/HC" (health checks, ours or Envoy's), counted in
  // requestsReceived() too.
  uint64_t healthChecksReceived() const { return health_checks_received_.load(); }
  // Requests that were not health checks.
  uint64_t trafficReceived() const {
    const uint64_t checks = health_checks_received_.load();  // first: never above the total
    return requests_received_.load() - checks;
  }

  // From now on answer `status` unless a request says otherwise (0: back to the options').
  // Safe from any thread: "the endpoint starts failing" mid-test.
  void setStatus(uint32_t status) { status_override_.store(status); }
  // The same for requests that are not health checks only (the endpoint fails its traffic
  // while passing its health checks).
  void setTrafficStatus(uint32_t status) { traffic_status_override_.store(status); }
  // From now on answer every request `delay` after it ended (the endpoint hangs).
  void setDelay(std::chrono::milliseconds delay) { delay_override_ms_.store(delay.count()); }

  testing::AssertionResult waitForConnections(uint64_t count,
                                              std::chrono::milliseconds timeout = 10s) const;
  testing::AssertionResult waitForRequests(uint64_t count,
                                           std::chrono::milliseconds timeout = 10s) const;
  testing::AssertionResult waitForActiveConnections(int64_t count,
                                                    std::chrono::milliseconds timeout = 10s) const;

  // The serving side (one dispatcher thread); defined in fake_upstream.cc.
  class Server;

 private:
  friend class FakeConnection;  // updates the counters

  FakeUpstream(FakeUpstreamOptions options);

  const FakeUpstreamOptions options_;
  uint32_t port_ = 0;
  std::atomic<uint64_t> connections_accepted_{0};
  std::atomic<uint64_t> requests_received_{0};
  std::atomic<uint64_t> responses_started_{0};
  std::atomic<int64_t> active_connections_{0};
  std::atomic<uint64_t> health_checks_received_{0};
  std::atomic<uint32_t> status_override_{0};
  std::atomic<uint32_t> traffic_status_override_{0};
  std::atomic<int64_t> delay_override_ms_{-1};  // -1: the options' delay
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

using FakeUpstreamPtr = std::unique_ptr<FakeUpstream>;

}  // namespace Proxy::Integration
