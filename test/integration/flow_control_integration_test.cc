// Flow control end to end: one downstream connection must not be able to make the real `proxy`
// binary buffer without bound. A peer that pipelines requests and never reads the responses,
// or that uploads a body the upstream never reads, gets its connection read-disabled once the
// connection's buffers are full (per_connection_buffer_limit_bytes, 1 MiB by default), and is
// served in full once it reads again; other connections are served meanwhile.
//
// Memory is judged by the proxy's resident set (/proc/<pid>/status), never by timing. The flood
// stops on a condition: the proxy stopped taking bytes for a while (it read-disabled us), or
// the proxy's memory grew past the bound (the failure this file is about), or a byte cap.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/pipelined_client.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024 * 1024;

// Under AddressSanitizer freed memory sits in a quarantine and shadow memory counts towards
// RSS: the floods still run and every response is still checked, but the memory bound is only
// asserted in normal builds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif
// How much the proxy's RSS may grow while one connection floods it. With the default 1 MiB
// limit the connection's buffers hold ~2 MiB; before the fix the same flood took gigabytes.
constexpr uint64_t kMaxRssGrowthKb = 64 * 1024;
// The flood never sends more than this (a safety net for builds where RSS is not judged).
constexpr uint64_t kMaxFloodBytes = 512 * kMiB;
// No byte taken for this long: the proxy has stopped reading the connection.
constexpr auto kStall = 1s;
// A 1 TiB upload to the stalled upstream; its body is the endless stream of request copies.
constexpr char kUploadHead[] =
    "POST /upload HTTP/1.1\r\nhost: example.com\r\ncontent-length: 1099511627776\r\n\r\n";

// A port on 127.0.0.1 that completes TCP handshakes (the kernel does, from the backlog) but is
// never accept()ed, so nothing ever reads what the proxy sends it: an upstream that stalls.
class StalledUpstream {
 public:
  StalledUpstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(fd_, 128) == 0) {
      socklen_t len = sizeof(addr);
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    }
  }
  ~StalledUpstream() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  StalledUpstream(const StalledUpstream&) = delete;
  StalledUpstream& operator=(const StalledUpstream&) = delete;
  uint32_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint32_t port_ = 0;
};

// `fields`: extra "key: value, " pairs of the cluster.
std::string staticCluster(const std::string& name, uint32_t port, const std::string& fields = "") {
  return absl::StrCat("{name: ", name, ", ", fields,
                      "type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: ", name,
                      ", endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: ",
                      "{address: 127.0.0.1, port_value: ", port, "}}}}]}]}}");
}

// One listener, one HTTP connection manager: /ping answered by the proxy itself ("pong\n"),
// /service to `service` (a FakeUpstream), /upload to `stalled` (a StalledUpstream).
// `extra`: a "key: value" line for the listener, "key: value, " pairs for the stalled cluster.
struct ExtraFields {
  std::string listener;
  std::string stalled_cluster;
};
std::string bootstrapYaml(uint32_t service_port, uint32_t stalled_port, const ExtraFields& extra) {
  return absl::StrCat(R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
)",
                      extra.listener.empty() ? "" : absl::StrCat("    ", extra.listener, "\n"),
                      R"(    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {path: "/ping"}, direct_response: {status: 200, body: {inline_string: "pong\n"}}}
              - {match: {prefix: "/service"}, route: {cluster: service}}
              - {match: {prefix: "/upload"}, route: {cluster: stalled, timeout: 0s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - )",
                      staticCluster("service", service_port), "\n  - ",
                      staticCluster("stalled", stalled_port, extra.stalled_cluster), "\n");
}

// A GET of `path` padded to ~`size` bytes with a header, as browsers' requests are.
std::string paddedGet(const std::string& path, size_t size) {
  std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nhost: example.com\r\n");
  const size_t fixed = request.size() + std::string("x-pad: \r\n\r\n").size();
  absl::StrAppend(&request, "x-pad: ", std::string(size > fixed ? size - fixed : 1, 'p'),
                  "\r\n\r\n");
  return request;
}

class FlowControlIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    FakeUpstreamOptions options;
    options.name = "service";
    options.echo_headers = false;  // small responses: the test reads every one of them
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
    ASSERT_NE(stalled_.port(), 0u);
  }

  void startProxy(const ExtraFields& extra = {}) {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrapYaml(upstream_->port(), stalled_.port(), extra);
    options.log_level = "warning";
    options.drain_time_s = 1;  // teardown need not wait for the upload the test left hanging
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort("ingress");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    // Warm up (first connection, lazily built state), then take the baseline.
    expectPong();
    absl::StatusOr<uint64_t> rss = procStatusKb(proxy_->pid(), "VmRSS");
    ASSERT_TRUE(rss.ok()) << rss.status();
    baseline_rss_kb_ = *rss;
  }

  // Another connection is served while the flood is held back.
  void expectPong() {
    HttpRequest request;
    request.path = "/ping";
    absl::StatusOr<HttpResponse> response = httpRequest(port_, request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u);
    EXPECT_EQ(response->body, "pong\n");
  }

  // The flood's stop condition: false once the proxy's RSS grew past the bound.
  bool rssWithinBound() {
    absl::StatusOr<uint64_t> rss = procStatusKb(proxy_->pid(), "VmRSS");
    if (!rss.ok() || !kRssIsMeaningful) {
      return true;
    }
    max_rss_kb_ = std::max(max_rss_kb_, *rss);
    return *rss < baseline_rss_kb_ + kMaxRssGrowthKb;
  }

  // Flood until the proxy has paused reading `min_pauses` times (one per flooding connection)
  // and then takes no byte for kStall; a slow proxy (sanitizers) that merely lags behind
  // stalls the client too, without having paused, so flooding goes on then. Ends early when
  // the proxy's RSS passes the bound or kMaxFloodBytes went out (`stalled` is false then).
  absl::StatusOr<FloodResult> floodUntilHeldBack(const std::vector<PipelinedClient*>& clients,
                                                 int64_t min_pauses = 1) {
    FloodResult total;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<FloodResult> round = floodUntilStalled(
          clients, kStall, kMaxFloodBytes - total.bytes_sent, [&] { return rssWithinBound(); });
      if (!round.ok()) {
        return round.status();
      }
      total.bytes_sent += round->bytes_sent;
      if (!round->stalled) {
        return total;
      }
      absl::StatusOr<int64_t> pauses =
          proxy_->counter("http.ingress_http.downstream_flow_control_paused_reading_total");
      if (pauses.ok() && *pauses >= min_pauses) {
        total.stalled = true;
        return total;
      }
    }
    return total;
  }

  // How far the proxy's RSS rose over the baseline during the flood (the kernel's peak).
  uint64_t peakGrowthKb() {
    absl::StatusOr<uint64_t> hwm = procStatusKb(proxy_->pid(), "VmHWM");
    EXPECT_TRUE(hwm.ok()) << hwm.status();
    return hwm.ok() && *hwm > baseline_rss_kb_ ? *hwm - baseline_rss_kb_ : 0;
  }

  // The proxy's RSS grew by less than the bound, both as sampled during the flood and as the
  // kernel's own peak (VmHWM) says.
  void expectMemoryBounded() {
    if (!kRssIsMeaningful) {
      return;
    }
    absl::StatusOr<uint64_t> hwm = procStatusKb(proxy_->pid(), "VmHWM");
    ASSERT_TRUE(hwm.ok()) << hwm.status();
    EXPECT_LT(max_rss_kb_, baseline_rss_kb_ + kMaxRssGrowthKb)
        << "VmRSS went from " << baseline_rss_kb_ << " kB to " << max_rss_kb_ << " kB";
    EXPECT_LT(*hwm, baseline_rss_kb_ + kMaxRssGrowthKb)
        << "VmHWM is " << *hwm << " kB; VmRSS was " << baseline_rss_kb_ << " kB before";
  }

  FakeUpstreamPtr upstream_;
  StalledUpstream stalled_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
  uint64_t baseline_rss_kb_ = 0;
  uint64_t max_rss_kb_ = 0;
};

TEST_F(FlowControlIntegrationTest, PipelineFloodOnDirectResponseRouteIsHeldBackAndAnsweredInFull) {
  startProxy();

  // The attacker: one connection pipelining GET /ping (which the proxy answers itself) as fast
  // as the socket takes them, reading nothing back.
  absl::StatusOr<std::unique_ptr<PipelinedClient>> flooder =
      PipelinedClient::connect(port_, paddedGet("/ping", 128));
  ASSERT_TRUE(flooder.ok()) << flooder.status();
  absl::StatusOr<FloodResult> flood = floodUntilHeldBack({flooder->get()});
  ASSERT_TRUE(flood.ok()) << flood.status();

  // The proxy stopped reading the connection (its buffers are full) instead of growing.
  EXPECT_TRUE(flood->stalled) << "the proxy took " << flood->bytes_sent << " bytes ("
                              << (*flooder)->requestsSent() << " requests) without pausing";
  expectMemoryBounded();
  // It says so in Envoy's stat.
  EXPECT_TRUE(proxy_->waitForCounterGe(
      "http.ingress_http.downstream_flow_control_paused_reading_total", 1));

  // Other connections are served meanwhile.
  expectPong();

  // Once the client reads, it gets a 200 for every request it sent, in one piece.
  ASSERT_TRUE(readAllResponses({flooder->get()}, 120s).ok());
  EXPECT_EQ((*flooder)->responsesReceived(), (*flooder)->requestsSent());
  EXPECT_EQ((*flooder)->non200Responses(), 0u);
  EXPECT_FALSE((*flooder)->peerClosed());
  EXPECT_TRUE(proxy_->waitForCounterGe(
      "http.ingress_http.downstream_flow_control_resumed_reading_total", 1));
}

TEST_F(FlowControlIntegrationTest, PipelineFloodOnUpstreamRouteIsHeldBackAndAnsweredInFull) {
  startProxy();

  // The same attack on a route to an upstream: every request is proxied, one at a time.
  absl::StatusOr<std::unique_ptr<PipelinedClient>> flooder =
      PipelinedClient::connect(port_, paddedGet("/service/flood", 1024));
  ASSERT_TRUE(flooder.ok()) << flooder.status();
  absl::StatusOr<FloodResult> flood = floodUntilHeldBack({flooder->get()});
  ASSERT_TRUE(flood.ok()) << flood.status();
  EXPECT_TRUE(flood->stalled) << "the proxy took " << flood->bytes_sent << " bytes ("
                              << (*flooder)->requestsSent() << " requests) without pausing";
  expectMemoryBounded();

  // Other connections are served meanwhile, by the proxy and by the upstream.
  expectPong();
  HttpRequest request;
  request.path = "/service/other";
  absl::StatusOr<HttpResponse> other = httpRequest(port_, request);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->status, 200u);

  // Every pipelined request is answered once the client reads.
  ASSERT_TRUE(readAllResponses({flooder->get()}, 120s).ok());
  EXPECT_EQ((*flooder)->responsesReceived(), (*flooder)->requestsSent());
  EXPECT_EQ((*flooder)->non200Responses(), 0u);
  // The upstream saw each of them (and the one other request).
  EXPECT_EQ(upstream_->requestsReceived(), (*flooder)->requestsSent() + 1);
}

TEST_F(FlowControlIntegrationTest, UploadToAStalledUpstreamIsHeldBack) {
  startProxy();

  // A 1 TiB upload to an upstream that accepts the connection but never reads: the body can
  // only pile up in the proxy, unless the proxy stops reading the client.
  absl::StatusOr<std::unique_ptr<PipelinedClient>> uploader =
      PipelinedClient::connect(port_, /*request=*/std::string(64 * 1024, 'b'),
                               /*prefix=*/
                               kUploadHead);
  ASSERT_TRUE(uploader.ok()) << uploader.status();
  absl::StatusOr<FloodResult> flood = floodUntilHeldBack({uploader->get()});
  ASSERT_TRUE(flood.ok()) << flood.status();
  EXPECT_TRUE(flood->stalled) << "the proxy took " << flood->bytes_sent
                              << " body bytes without pausing";
  expectMemoryBounded();
  EXPECT_TRUE(proxy_->waitForCounterGe(
      "http.ingress_http.downstream_flow_control_paused_reading_total", 1));

  // Other connections are served meanwhile.
  expectPong();
}

TEST_F(FlowControlIntegrationTest, MemoryIsGivenBackOnceFloodingConnectionsClose) {
  startProxy();

  // Twenty connections upload to the stalled upstream until the proxy holds every one of them
  // back: each leaves a buffer limit's worth (1 MiB) or more waiting for the upstream.
  std::vector<std::unique_ptr<PipelinedClient>> owned;
  std::vector<PipelinedClient*> uploaders;
  for (int i = 0; i < 20; i++) {
    absl::StatusOr<std::unique_ptr<PipelinedClient>> uploader =
        PipelinedClient::connect(port_, /*request=*/std::string(64 * 1024, 'b'), kUploadHead);
    ASSERT_TRUE(uploader.ok()) << uploader.status();
    uploaders.push_back(uploader->get());
    owned.push_back(std::move(*uploader));
  }
  absl::StatusOr<FloodResult> flood = floodUntilHeldBack(uploaders, /*min_pauses=*/20);
  ASSERT_TRUE(flood.ok()) << flood.status();
  EXPECT_TRUE(flood->stalled);
  expectMemoryBounded();

  // They go away, with a reset: a FIN would wait behind the body bytes the proxy is not
  // reading. What their buffers took is returned to the kernel, not kept by the allocator for
  // the life of the process.
  for (PipelinedClient* uploader : uploaders) {
    const linger reset{/*l_onoff=*/1, /*l_linger=*/0};
    ::setsockopt(uploader->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  }
  owned.clear();
  expectPong();
  if (kRssIsMeaningful) {
    EXPECT_TRUE(waitUntil(
        [&] {
          absl::StatusOr<uint64_t> rss = procStatusKb(proxy_->pid(), "VmRSS");
          return rss.ok() && *rss < baseline_rss_kb_ + 12 * 1024;
        },
        20s, "VmRSS back within 12 MiB of the baseline"))
        << "peak growth " << peakGrowthKb() << " kB";
  }
}

TEST_F(FlowControlIntegrationTest, ListenerBufferLimitIsWhatAFloodingConnectionMayHold) {
  // A listener that allows 16 MiB per connection instead of the default 1 MiB.
  startProxy({/*listener=*/"per_connection_buffer_limit_bytes: 16777216", /*stalled_cluster=*/""});

  absl::StatusOr<std::unique_ptr<PipelinedClient>> flooder =
      PipelinedClient::connect(port_, paddedGet("/ping", 64));
  ASSERT_TRUE(flooder.ok()) << flooder.status();
  absl::StatusOr<FloodResult> flood = floodUntilHeldBack({flooder->get()});
  ASSERT_TRUE(flood.ok()) << flood.status();
  EXPECT_TRUE(flood->stalled);
  expectMemoryBounded();
  // The proxy held the connection back only once its buffers reached the listener's limit:
  // at least 16 MiB of responses were waiting for the client.
  if (kRssIsMeaningful) {
    EXPECT_GE(peakGrowthKb(), 16u * 1024);
  }
}

TEST_F(FlowControlIntegrationTest, ClusterBufferLimitIsWhatAnUploadMayHoldTowardsTheUpstream) {
  // The stalled upstream's cluster allows 16 MiB per connection instead of the default 1 MiB.
  startProxy(
      {/*listener=*/"", /*stalled_cluster=*/"per_connection_buffer_limit_bytes: 16777216, "});

  absl::StatusOr<std::unique_ptr<PipelinedClient>> uploader =
      PipelinedClient::connect(port_, /*request=*/std::string(64 * 1024, 'b'),
                               /*prefix=*/
                               kUploadHead);
  ASSERT_TRUE(uploader.ok()) << uploader.status();
  absl::StatusOr<FloodResult> flood = floodUntilHeldBack({uploader->get()});
  ASSERT_TRUE(flood.ok()) << flood.status();
  EXPECT_TRUE(flood->stalled);
  expectMemoryBounded();
  // The body piled up towards the upstream until the cluster's limit, not the default one.
  if (kRssIsMeaningful) {
    EXPECT_GE(peakGrowthKb(), 16u * 1024);
  }
}

}  // namespace
}  // namespace Proxy::Integration
