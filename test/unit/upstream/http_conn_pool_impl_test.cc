// The HTTP/1 connection pool against a real upstream on 127.0.0.1:0 (FakeUpstream, on the same
// dispatcher); the response parsing under test is our client codec's. Waiting is always "run the
// loop until a condition holds, with a deadline".

#include "proxy/upstream/http_conn_pool_impl.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/network/listen_socket.h"
#include "proxy/upstream/cluster_info_impl.h"
#include "test/unit/upstream/fake_upstream.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {
namespace {

class HttpConnPoolTest : public testing::Test {
 protected:
  ~HttpConnPoolTest() override {
    pool_.reset();
    upstream_.reset();
    dispatcher_.clearDeferredDeleteList();
  }

  // A pool to `port` for a cluster built from `cluster` (name and type filled in here).
  void createPool(uint32_t port, envoy::config::cluster::v3::Cluster cluster = {}) {
    cluster.set_name("backend");
    if (!cluster.has_connect_timeout()) {
      cluster.mutable_connect_timeout()->set_seconds(10);
    }
    absl::StatusOr<ClusterInfoImplConstSharedPtr> info = ClusterInfoImpl::create(cluster, store_);
    ASSERT_TRUE(info.ok()) << info.status();
    info_ = *info;
    host_ = makeHost(port);
    pool_ = std::make_unique<HttpConnPoolImpl>(dispatcher_, host_, info_);
  }

  void startUpstream() { upstream_ = std::make_unique<FakeUpstream>(dispatcher_); }

  testing::AssertionResult runUntil(const std::function<bool()>& condition,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    if (condition()) {
      return testing::AssertionSuccess();
    }
    Event::TimerPtr deadline = dispatcher_.createTimer([&]() { dispatcher_.exit(); });
    Event::TimerPtr poll;
    poll = dispatcher_.createTimer([&]() {
      if (condition()) {
        dispatcher_.exit();
      } else {
        poll->enableTimer(std::chrono::milliseconds(1));
      }
    });
    deadline->enableTimer(timeout);
    poll->enableTimer(std::chrono::milliseconds(0));
    dispatcher_.run(Event::Dispatcher::RunType::RunUntilExit);
    return condition() ? testing::AssertionSuccess()
                       : testing::AssertionFailure()
                             << "condition not met within " << timeout.count() << " ms";
  }

  uint64_t counter(const std::string& name) {
    return store_.counter("cluster.backend." + name).value();
  }
  int64_t gauge(const std::string& name) { return store_.gauge("cluster.backend." + name).value(); }

  RealTimeSource time_source_;
  Event::DispatcherImpl dispatcher_{"worker_0", time_source_};
  Stats::Store store_;
  std::unique_ptr<FakeUpstream> upstream_;
  ClusterInfoConstSharedPtr info_;
  HostConstSharedPtr host_;
  std::unique_ptr<HttpConnPoolImpl> pool_;
};

TEST_F(HttpConnPoolTest, KeepAliveReusesOneConnection) {
  startUpstream();
  createPool(upstream_->port());

  // First request: no connection yet, so it waits (a cancellable handle) while one is made.
  TestStream first;
  EXPECT_NE(nullptr, pool_->newStream(first, first));
  EXPECT_EQ(1u, pool_->pendingCount());
  ASSERT_TRUE(runUntil([&]() { return first.complete; }));
  EXPECT_EQ(200u, first.status);
  EXPECT_EQ("ok", first.body);
  // The connection is idle again once the exchange is over.
  ASSERT_TRUE(runUntil([&]() { return pool_->readyCount() == 1; }));

  // Second request: the idle connection is handed over inline (no handle).
  TestStream second;
  EXPECT_EQ(nullptr, pool_->newStream(second, second));
  EXPECT_TRUE(second.ready);
  ASSERT_TRUE(runUntil([&]() { return second.complete; }));
  EXPECT_EQ("ok", second.body);

  // One upstream connection served both.
  EXPECT_EQ(1u, upstream_->accepted());
  EXPECT_EQ(2, upstream_->requests());
  EXPECT_EQ(1u, counter("upstream_cx_total"));
  EXPECT_EQ(2u, counter("upstream_rq_total"));
  EXPECT_EQ(0, gauge("upstream_rq_active"));
  EXPECT_EQ(1, gauge("upstream_cx_active"));
  EXPECT_EQ(2u, host_->stats().rq_success.load());
  EXPECT_EQ(0, host_->stats().rq_active.load());
  EXPECT_FALSE(pool_->hasActiveConnections());
}

TEST_F(HttpConnPoolTest, ConnectRefusedFailsThePendingRequest) {
  // A port that is bound but not listening: connect() is refused.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  Network::Address any = loopback(0);
  ASSERT_EQ(0, ::bind(fd, any.sockAddr(), any.sockAddrLen()));
  const uint32_t port = Network::Address::fromLocal(fd).port();
  createPool(port);

  TestStream stream;
  EXPECT_NE(nullptr, pool_->newStream(stream, stream));
  ASSERT_TRUE(runUntil([&]() { return stream.failed; }));
  EXPECT_EQ(PoolFailureReason::ConnectionFailure, stream.failure_reason);
  // The connection's failure reason, as Envoy's (the router puts it in the details).
  EXPECT_EQ("delayed connect error: Connection refused", stream.details);
  EXPECT_FALSE(stream.ready);
  EXPECT_EQ(1u, counter("upstream_cx_connect_fail"));
  EXPECT_EQ(1u, host_->stats().cx_connect_fail.load());
  EXPECT_EQ(0, gauge("upstream_cx_active"));
  EXPECT_EQ(0, gauge("upstream_rq_pending_active"));
  EXPECT_EQ(0u, pool_->pendingCount());
  ::close(fd);
}

TEST_F(HttpConnPoolTest, ConnectTimeoutFailsThePendingRequest) {
  // A listener that never accepts, with backlog 0 and its accept queue already holding one
  // connection: the kernel drops further SYNs, so our connect() can only time out.
  absl::StatusOr<Network::ListenSocketPtr> socket =
      Network::ListenSocket::create(loopback(0), /*reuse_port=*/false, /*backlog=*/0);
  ASSERT_TRUE(socket.ok()) << socket.status();
  const Network::Address& address = (*socket)->localAddress();
  int filler = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(0, ::connect(filler, address.sockAddr(), address.sockAddrLen()));

  envoy::config::cluster::v3::Cluster cluster;
  cluster.mutable_connect_timeout()->set_nanos(20 * 1000 * 1000);  // 20ms
  createPool(address.port(), cluster);

  TestStream stream;
  EXPECT_NE(nullptr, pool_->newStream(stream, stream));
  ASSERT_TRUE(runUntil([&]() { return stream.failed; }));
  EXPECT_EQ(PoolFailureReason::Timeout, stream.failure_reason);
  EXPECT_EQ("", stream.details);  // a timeout has no transport failure reason
  EXPECT_EQ(1u, counter("upstream_cx_connect_timeout"));
  EXPECT_EQ(1u, counter("upstream_cx_connect_fail"));
  EXPECT_EQ(0u, pool_->connectingCount());
  ::close(filler);
}

TEST_F(HttpConnPoolTest, CancelledPendingRequestIsNeverCalledBack) {
  startUpstream();
  createPool(upstream_->port());

  // Queue a request, then cancel it before the connection is up.
  TestStream stream;
  Cancellable* handle = pool_->newStream(stream, stream);
  ASSERT_NE(nullptr, handle);
  handle->cancel();
  EXPECT_EQ(0u, pool_->pendingCount());
  EXPECT_EQ(1u, counter("upstream_rq_cancelled"));
  EXPECT_EQ(0, gauge("upstream_rq_pending_active"));

  // The connection being made is kept (idle) for the next request; the caller hears nothing.
  ASSERT_TRUE(runUntil([&]() { return pool_->readyCount() == 1; }));
  EXPECT_FALSE(stream.ready);
  EXPECT_FALSE(stream.failed);
  EXPECT_EQ(0, upstream_->requests());
}

TEST_F(HttpConnPoolTest, RemoteCloseOfIdleConnectionMeansANewOneNextTime) {
  startUpstream();
  createPool(upstream_->port());

  TestStream first;
  pool_->newStream(first, first);
  ASSERT_TRUE(runUntil([&]() { return first.complete && pool_->readyCount() == 1; }));

  // The upstream closes its idle connection; the pool notices and forgets it.
  upstream_->closeAll();
  ASSERT_TRUE(runUntil([&]() { return pool_->readyCount() == 0; }));
  EXPECT_EQ(1u, counter("upstream_cx_destroy_remote"));
  EXPECT_EQ(0, gauge("upstream_cx_active"));

  // The next request gets a new connection.
  TestStream second;
  EXPECT_NE(nullptr, pool_->newStream(second, second));
  ASSERT_TRUE(runUntil([&]() { return second.complete; }));
  EXPECT_EQ("ok", second.body);
  EXPECT_EQ(2u, upstream_->accepted());
  EXPECT_EQ(2u, counter("upstream_cx_total"));
}

TEST_F(HttpConnPoolTest, RemoteCloseMidResponseResetsTheStream) {
  startUpstream();
  // Headers promise 10 bytes; 2 arrive, then the upstream closes.
  upstream_->respond_ = [](FakeUpstream::ServerConnection& c) {
    c.send("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok");
    c.connection_->close(Network::ConnectionCloseType::FlushWrite);
  };
  createPool(upstream_->port());

  TestStream stream;
  pool_->newStream(stream, stream);
  ASSERT_TRUE(runUntil([&]() { return stream.reset; }));
  // The codec's verdict: a response begun and cut short is a protocol error (Envoy's UPE).
  EXPECT_EQ(Http::StreamResetReason::ProtocolError, stream.reset_reason);
  EXPECT_EQ(200u, stream.status);
  EXPECT_FALSE(stream.complete);
  EXPECT_EQ(1u, counter("upstream_rq_rx_reset"));
  EXPECT_EQ(0, gauge("upstream_rq_active"));
  EXPECT_EQ(1u, host_->stats().rq_error.load());
  EXPECT_EQ(0u, pool_->readyCount() + pool_->busyCount());
}

TEST_F(HttpConnPoolTest, ResponseReadUntilCloseCompletes) {
  startUpstream();
  // No content-length, no chunking: the body ends with the connection.
  upstream_->respond_ = [](FakeUpstream::ServerConnection& c) {
    c.send("HTTP/1.1 200 OK\r\n\r\nhello");
    c.connection_->close(Network::ConnectionCloseType::FlushWrite);
  };
  createPool(upstream_->port());

  TestStream stream;
  pool_->newStream(stream, stream);
  ASSERT_TRUE(runUntil([&]() { return stream.complete || stream.reset; }));
  EXPECT_TRUE(stream.complete);
  EXPECT_FALSE(stream.reset);
  EXPECT_EQ("hello", stream.body);
  EXPECT_EQ(0u, pool_->readyCount());  // not reusable
  EXPECT_EQ(0u, counter("upstream_rq_rx_reset"));
}

TEST_F(HttpConnPoolTest, ResponseBeforeTheRequestEndedClosesTheConnection) {
  startUpstream();
  createPool(upstream_->port());

  // The request's headers go out without end_stream (a body would follow); the upstream
  // answers anyway. The rest of the request would be read as a new request: no reuse.
  TestStream stream;
  stream.request_end_stream = false;
  pool_->newStream(stream, stream);
  ASSERT_TRUE(runUntil([&]() { return stream.complete; }));
  ASSERT_TRUE(runUntil([&]() { return gauge("upstream_cx_active") == 0; }));
  EXPECT_EQ(0u, pool_->readyCount());
  EXPECT_EQ(1u, counter("upstream_cx_destroy_local"));
}

TEST_F(HttpConnPoolTest, MaxRequestsPerConnectionRetiresTheConnection) {
  startUpstream();
  envoy::config::cluster::v3::Cluster cluster;
  cluster.mutable_max_requests_per_connection()->set_value(1);
  createPool(upstream_->port(), cluster);

  TestStream first;
  pool_->newStream(first, first);
  ASSERT_TRUE(runUntil([&]() { return first.complete; }));
  TestStream second;
  EXPECT_NE(nullptr, pool_->newStream(second, second));  // no idle connection to reuse
  ASSERT_TRUE(runUntil([&]() { return second.complete; }));
  EXPECT_EQ(2u, upstream_->accepted());
  EXPECT_EQ(2u, counter("upstream_cx_max_requests"));
}

TEST_F(HttpConnPoolTest, PendingOverflowFailsInline) {
  startUpstream();
  envoy::config::cluster::v3::Cluster cluster;
  cluster.mutable_circuit_breakers()->add_thresholds()->mutable_max_pending_requests()->set_value(
      1);
  createPool(upstream_->port(), cluster);

  // One request may wait; the second overflows at once.
  TestStream first;
  TestStream second;
  EXPECT_NE(nullptr, pool_->newStream(first, first));
  EXPECT_EQ(nullptr, pool_->newStream(second, second));
  EXPECT_TRUE(second.failed);
  EXPECT_EQ(PoolFailureReason::Overflow, second.failure_reason);
  EXPECT_EQ(1u, counter("upstream_rq_pending_overflow"));
  ASSERT_TRUE(runUntil([&]() { return first.complete; }));
}

TEST_F(HttpConnPoolTest, MaxConnectionsQueuesRequestsOnExistingConnections) {
  startUpstream();
  envoy::config::cluster::v3::Cluster cluster;
  cluster.mutable_circuit_breakers()->add_thresholds()->mutable_max_connections()->set_value(1);
  createPool(upstream_->port(), cluster);

  // Three requests, one connection allowed: they are served one after another on it.
  TestStream streams[3];
  for (TestStream& stream : streams) {
    pool_->newStream(stream, stream);
  }
  EXPECT_EQ(1u, pool_->connectingCount());
  ASSERT_TRUE(runUntil([&]() { return streams[2].complete; }));
  EXPECT_TRUE(streams[0].complete && streams[1].complete);
  EXPECT_EQ(1u, upstream_->accepted());
  EXPECT_GE(counter("upstream_cx_overflow"), 1u);
}

TEST_F(HttpConnPoolTest, LocalResetClosesTheConnection) {
  startUpstream();
  upstream_->respond_ = [](FakeUpstream::ServerConnection&) {};  // never answers
  createPool(upstream_->port());

  TestStream stream;
  pool_->newStream(stream, stream);
  ASSERT_TRUE(runUntil([&]() { return upstream_->requests() == 1; }));

  // The caller gives up (say, a timeout): an HTTP/1 stream ends only with its connection.
  stream.encoder->getStream().resetStream(Http::StreamResetReason::LocalReset);
  EXPECT_TRUE(stream.reset);
  EXPECT_EQ(Http::StreamResetReason::LocalReset, stream.reset_reason);
  EXPECT_EQ(1u, counter("upstream_rq_tx_reset"));
  EXPECT_EQ(0, gauge("upstream_cx_active"));
  EXPECT_EQ(0u, pool_->busyCount());
}

TEST_F(HttpConnPoolTest, RetiredPoolFinishesItsStreamThenReportsDrained) {
  startUpstream();
  FakeUpstream::ServerConnection* server = nullptr;
  upstream_->respond_ = [&](FakeUpstream::ServerConnection& c) { server = &c; };
  createPool(upstream_->port());

  TestStream stream;
  pool_->newStream(stream, stream);
  ASSERT_TRUE(runUntil([&]() { return server != nullptr; }));

  // Retired with a stream in flight: not drained until the response is done.
  bool drained = false;
  pool_->retire([&]() { drained = true; });
  EXPECT_FALSE(drained);
  server->send(kOkResponse);
  ASSERT_TRUE(runUntil([&]() { return drained; }));
  EXPECT_TRUE(stream.complete);
  EXPECT_EQ(0, gauge("upstream_cx_active"));  // closed instead of kept idle
}

TEST_F(HttpConnPoolTest, DrainConnectionsClosesIdleOnes) {
  startUpstream();
  createPool(upstream_->port());
  TestStream first;
  pool_->newStream(first, first);
  ASSERT_TRUE(runUntil([&]() { return pool_->readyCount() == 1; }));

  pool_->drainConnections();
  EXPECT_EQ(0u, pool_->readyCount());
  EXPECT_EQ(0, gauge("upstream_cx_active"));

  // The pool still works: the next request gets a new connection.
  TestStream second;
  pool_->newStream(second, second);
  ASSERT_TRUE(runUntil([&]() { return second.complete; }));
  EXPECT_EQ(2u, upstream_->accepted());
}

}  // namespace
}  // namespace Proxy::Upstream
