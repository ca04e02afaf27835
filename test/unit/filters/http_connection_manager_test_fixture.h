#pragma once

// The HTTP connection manager (proxy/filters/http_connection_manager.cc) driven without sockets:
// its config is built from an HttpConnectionManager YAML by HcmConfig::create, as the listener
// builds it (static route_config); the downstream connection is a FakeConnection on a
// SimulatedDispatcher, so every byte written to the client and every timer is the test's to
// see. The router's upstream leg reaches a fake cluster manager whose one cluster hands out
// FakeUpstreamRequests at the HttpConnPool seam (the real pool needs sockets: it is covered by
// test/unit/upstream/http_conn_pool_impl_test.cc and the integration tests).
// The fixture and fakes shared by http_connection_manager_test.cc (local replies, normalisation,
// pipelining, drain, flow control) and http_connection_manager_upstream_test.cc (through the
// router to the upstream seam, idle timeout).

#include "proxy/filters/http_connection_manager.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gtest/gtest.h"
#include "proxy/config/message_util.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "test/unit/http/codec_test_util.h"
#include "test/unit/network/fake_connection.h"
#include "test/unit/upstream/upstream_test_util.h"
#include "test/unit/xds_client/simulated_dispatcher.h"

namespace Proxy::Filters {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

// The Date header of every response: the simulated clock starts one hour after the epoch and
// only moves when a test advances it.
constexpr char kDate[] = "date: Thu, 01 Jan 1970 01:00:00 GMT\r\n";

// The route table every test runs against (plus the fields a test adds to the HCM).
constexpr char kRoutes[] = R"(
route_config:
  name: local
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - match: {path: "/ping"}
      direct_response: {status: 200, body: {inline_string: "pong"}}
      response_headers_to_add: [{header: {key: x-route, value: ping}}]
    - match: {prefix: "/admin"}
      direct_response: {status: 403, body: {inline_string: "denied"}}
    - match: {prefix: "/service"}
      route: {cluster: backend}
http_filters:
- name: envoy.filters.http.router
  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)";

inline std::string get(const std::string& path, const std::string& extra_headers = "") {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nhost: example.com\r\n", extra_headers, "\r\n");
}

// The proxy's answer to GET /ping, as written to the client.
inline std::string pong(const std::string& connection_header = "") {
  return absl::StrCat(
      "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nx-route: ping\r\n"
      "server: envoy\r\n",
      kDate, connection_header, "\r\npong");
}

// ---- The upstream seam: a cluster manager with one cluster, "backend", whose pool hands out
// FakeUpstreamRequests. -----------------------------------------------------------------------

// One request the router made of the pool: what it sent upstream, and the handles the test
// answers it through (`pool_callbacks` until ready(), then `decoder`).
struct FakeUpstreamRequest : public Upstream::Cancellable,
                             public Http::RequestEncoder,
                             public Http::Stream {
  FakeUpstreamRequest(Http::ResponseDecoder& decoder, Upstream::HttpPoolCallbacks& callbacks)
      : decoder(decoder), pool_callbacks(callbacks) {}

  // The pool found a connection: the router sends the request now.
  void ready(const Upstream::HostConstSharedPtr& host) { pool_callbacks.onPoolReady(*this, host); }
  // The upstream answers.
  void respond(uint32_t status, std::string_view body) {
    auto headers = std::make_unique<Http::ResponseHeaderMap>();
    headers->setStatus(status);
    headers->addCopy(Http::Headers::ContentLength, std::to_string(body.size()));
    decoder.decodeHeaders(std::move(headers), /*end_stream=*/body.empty());
    if (!body.empty()) {
      Buffer::Instance data;
      data.add(body);
      decoder.decodeData(data, /*end_stream=*/true);
    }
  }

  // Upstream::Cancellable
  void cancel() override { cancelled = true; }
  // Http::RequestEncoder
  void encodeHeaders(const Http::RequestHeaderMap& sent, bool end_stream) override {
    headers = sent;
    headers_end_stream = end_stream;
  }
  void encodeData(Buffer::Instance& data, bool end_stream) override {
    body += data.toString();
    data.drain(data.length());
    body_end_stream = end_stream;
  }
  void encodeTrailers(const Http::RequestTrailerMap& sent) override {
    trailers = sent;
    body_end_stream = true;
  }
  Http::Stream& getStream() override { return *this; }
  // Http::Stream
  void addCallbacks(Http::StreamCallbacks& added) override { stream_callbacks = &added; }
  void removeCallbacks(Http::StreamCallbacks& removed) override {
    if (stream_callbacks == &removed) {
      stream_callbacks = nullptr;
    }
  }
  void resetStream(Http::StreamResetReason) override { reset = true; }
  void readDisable(bool disable) override { read_disable_count += disable ? 1 : -1; }

  Http::ResponseDecoder& decoder;
  Upstream::HttpPoolCallbacks& pool_callbacks;
  Http::StreamCallbacks* stream_callbacks = nullptr;
  Http::RequestHeaderMap headers;
  Http::RequestTrailerMap trailers;
  bool headers_end_stream = false;
  std::string body;
  bool body_end_stream = false;
  bool cancelled = false;
  bool reset = false;
  int read_disable_count = 0;  // > 0: the router stopped reading the upstream response
};

class FakeCluster : public Upstream::ThreadLocalCluster,
                    public Upstream::LoadBalancer,
                    public Upstream::HttpConnPool {
 public:
  FakeCluster(Upstream::ClusterInfoConstSharedPtr info, Upstream::HostConstSharedPtr host)
      : info_(std::move(info)), host_(std::move(host)), host_set_(Upstream::makeHostSet({host_})) {}

  // Upstream::ThreadLocalCluster
  const Upstream::ClusterInfoConstSharedPtr& info() const override { return info_; }
  const Upstream::HostSetConstSharedPtr& hostSet() const override { return host_set_; }
  Upstream::LoadBalancer& loadBalancer() override { return *this; }
  Upstream::HttpConnPool* httpConnPool(const Upstream::HostConstSharedPtr&,
                                       std::optional<Http::Protocol>) override {
    return this;
  }
  Network::ClientConnectionPtr tcpConnection(const Upstream::HostConstSharedPtr&) override {
    return nullptr;
  }
  // Upstream::LoadBalancer
  Upstream::HostConstSharedPtr chooseHost() override { return host_; }
  // Upstream::HttpConnPool: every request waits for the test's ready().
  Upstream::Cancellable* newStream(Http::ResponseDecoder& decoder,
                                   Upstream::HttpPoolCallbacks& callbacks) override {
    requests.push_back(std::make_unique<FakeUpstreamRequest>(decoder, callbacks));
    return requests.back().get();
  }
  bool hasActiveConnections() const override { return false; }
  void drainConnections() override {}

  const Upstream::HostConstSharedPtr& host() const { return host_; }
  std::vector<std::unique_ptr<FakeUpstreamRequest>> requests;

 private:
  Upstream::ClusterInfoConstSharedPtr info_;
  Upstream::HostConstSharedPtr host_;
  Upstream::HostSetConstSharedPtr host_set_;
};

class FakeClusterManager : public Upstream::ClusterManager {
 public:
  Upstream::ThreadLocalCluster* getThreadLocalCluster(std::string_view name) override {
    auto it = clusters.find(std::string(name));
    return it == clusters.end() ? nullptr : it->second.get();
  }
  std::map<std::string, std::unique_ptr<FakeCluster>> clusters;
};

// ---- The fixture ---------------------------------------------------------------------------

class HttpConnectionManagerTest : public testing::Test {
 protected:
  HttpConnectionManagerTest() {
    envoy::config::cluster::v3::Cluster cluster;
    const absl::Status loaded = Config::loadFromYaml(R"(
name: backend
type: STATIC
connect_timeout: 1s
)",
                                                     cluster);
    EXPECT_TRUE(loaded.ok()) << loaded;
    absl::StatusOr<Upstream::ClusterInfoImplConstSharedPtr> info =
        Upstream::ClusterInfoImpl::create(cluster, store_);
    EXPECT_TRUE(info.ok()) << info.status();
    cluster_manager_.clusters["backend"] =
        std::make_unique<FakeCluster>(*info, Upstream::makeHost(/*port=*/8080));
  }
  ~HttpConnectionManagerTest() override {
    // As the connection handler does: the filter first (it unregisters from the connection),
    // then the connection; streams the manager let go of are deferred deletions.
    filter_.reset();
    connection_.reset();
    dispatcher_.clearDeferredDeleteList();
  }

  // Builds the HCM from `hcm_fields` (YAML lines of HttpConnectionManager) plus kRoutes, and
  // a connection accepted with `buffer_limit` (the listener's per_connection_buffer_limit).
  void start(const std::string& hcm_fields = "", uint32_t buffer_limit = 1024 * 1024) {
    HttpConnectionManager proto;
    const absl::Status loaded = Config::loadFromYaml(
        absl::StrCat("stat_prefix: ingress_http\n", hcm_fields, kRoutes), proto);
    ASSERT_TRUE(loaded.ok()) << loaded;
    absl::StatusOr<HcmConfigConstSharedPtr> config =
        HcmConfig::create(proto, store_, /*rds=*/nullptr);
    ASSERT_TRUE(config.ok()) << config.status();
    // A second start() in one test is a new connection: the previous one goes first.
    filter_.reset();
    connection_.reset();
    dispatcher_.clearDeferredDeleteList();
    connection_ = std::make_unique<Network::FakeConnection>(
        dispatcher_, *Network::Address::fromIpPort("10.0.0.7", 40000),
        *Network::Address::fromIpPort("127.0.0.1", 10000));
    connection_->setBufferLimits(buffer_limit);
    filter_ = createHttpConnectionManager(*config, HcmContext{cluster_manager_, buffer_limit},
                                          *connection_);
    connection_->setReadFilter(filter_.get());
  }

  // The client sends `bytes`; the event loop then runs until it has nothing left to do.
  void send(std::string_view bytes) {
    connection_->send(bytes);
    dispatcher_.runUntilIdle();
  }
  // The client reads everything the proxy wrote so far (and the loop runs what that unblocks).
  std::string read() {
    std::string out = connection_->take();
    dispatcher_.runUntilIdle();
    return out;
  }

  uint64_t counter(const std::string& name) {
    return store_.counter(absl::StrCat("http.ingress_http.", name)).value();
  }
  int64_t gauge(const std::string& name) {
    return store_.gauge(absl::StrCat("http.ingress_http.", name)).value();
  }
  bool closed() const { return connection_->state() == Network::Connection::State::Closed; }
  FakeCluster& backend() { return *cluster_manager_.clusters["backend"]; }

  ::Proxy::Test::SimulatedDispatcher dispatcher_;
  Stats::Store store_;
  FakeClusterManager cluster_manager_;
  std::unique_ptr<Network::FakeConnection> connection_;
  NetworkFilterPtr filter_;
};

}  // namespace Proxy::Filters
