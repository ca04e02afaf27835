#include "proxy/upstream/mixed_conn_pool_impl.h"

#include <string>
#include <vector>

#include "proxy/common/assert.h"
#include "proxy/http/codec_selection.h"
#include "proxy/network/connection_impl.h"
#include "proxy/upstream/http2_conn_pool_impl.h"
#include "proxy/upstream/http_conn_pool_impl.h"
#include "proxy/upstream/outlier_detection.h"

namespace Proxy::Upstream {

namespace {

constexpr std::string_view kPendingOverflow = "upstream pending request overflow";

}  // namespace

// ---- PendingRequest ----

// A caller's request while the protocol is unknown. Its handle stays the caller's after the
// hand-over, so it relays: cancel() to the chosen pool's handle, the chosen pool's callbacks
// to the caller's.
class MixedConnPoolImpl::PendingRequest : public Cancellable,
                                          public HttpPoolCallbacks,
                                          public Event::DeferredDeletable {
 public:
  PendingRequest(MixedConnPoolImpl& parent, Http::ResponseDecoder& decoder,
                 HttpPoolCallbacks& callbacks)
      : parent_(parent), decoder_(decoder), callbacks_(callbacks) {}

  // Cancellable
  void cancel() override {
    if (inner_ != nullptr) {
      inner_->cancel();
      parent_.onForwardedDone(*this);
      return;
    }
    parent_.onPendingCancelled(*this);
  }
  // HttpPoolCallbacks, from the chosen pool.
  void onPoolReady(Http::RequestEncoder& encoder, const HostConstSharedPtr& host) override {
    HttpPoolCallbacks& callbacks = callbacks_;
    parent_.onForwardedDone(*this);
    callbacks.onPoolReady(encoder, host);
  }
  void onPoolFailure(PoolFailureReason reason, std::string_view details,
                     const HostConstSharedPtr& host) override {
    HttpPoolCallbacks& callbacks = callbacks_;
    parent_.onForwardedDone(*this);
    callbacks.onPoolFailure(reason, details, host);
  }

  MixedConnPoolImpl& parent_;
  Http::ResponseDecoder& decoder_;
  HttpPoolCallbacks& callbacks_;
  Cancellable* inner_ = nullptr;  // the chosen pool's handle, while it queues the request
  bool done_ = false;             // answered or cancelled (and deferred-deleted)
  PendingList::iterator it_;      // in waiting_ or forwarded_
};

// ---- Probe ----

class MixedConnPoolImpl::Probe : public Network::ConnectionCallbacks,
                                 public Network::ReadFilter,
                                 public Event::DeferredDeletable {
 public:
  explicit Probe(MixedConnPoolImpl& parent)
      : parent_(parent),
        connection_(std::make_unique<Network::ClientConnectionImpl>(
            parent.dispatcher_, parent.host_->address(),
            parent.cluster_->createTransportSocket(kAutoAlpnFallback))) {
    const ClusterInfo& cluster = *parent_.cluster_;
    connection_->setBufferLimits(cluster.perConnectionBufferLimitBytes());
    connection_->noDelay(true);
    connection_->addConnectionCallbacks(*this);
    connection_->setReadFilter(this);
    connect_timer_ = parent_.dispatcher_.createTimer([this]() {
      timed_out_ = true;
      parent_.cluster_->stats().upstream_cx_connect_timeout().inc();
      connection_->close(Network::ConnectionCloseType::NoFlush);
    });
    connect_timer_->enableTimer(cluster.connectTimeout());
    // Counted as the pools count a connection being established; the chosen pool takes these
    // over with the connection.
    ClusterStats& stats = cluster.stats();
    stats.upstream_cx_total().inc();
    stats.upstream_cx_active().inc();
    parent_.host_->stats().cx_total++;
    parent_.host_->stats().cx_active++;
    cluster.resources().connections++;
  }

  // The connection leaves, connected, for the chosen pool.
  Network::ClientConnectionPtr release() {
    connect_timer_->disableTimer();
    connection_->removeConnectionCallbacks(*this);
    connection_->setReadFilter(nullptr);
    return std::move(connection_);
  }

  // Owner or thread shutdown: close without calling back, unwinding the connection's stats.
  void closeQuietly() {
    if (connection_ == nullptr) {
      return;
    }
    connect_timer_->disableTimer();
    connection_->removeConnectionCallbacks(*this);
    connection_->close(Network::ConnectionCloseType::NoFlush);
    unwindStats(/*remote=*/false);
  }

  void unwindStats(bool remote) {
    const ClusterInfo& cluster = *parent_.cluster_;
    ClusterStats& stats = cluster.stats();
    stats.upstream_cx_active().dec();
    stats.upstream_cx_destroy().inc();
    (remote ? stats.upstream_cx_destroy_remote() : stats.upstream_cx_destroy_local()).inc();
    parent_.host_->stats().cx_active--;
    cluster.resources().connections--;
  }

  // Network::ConnectionCallbacks
  void onEvent(Network::ConnectionEvent event) override {
    if (event == Network::ConnectionEvent::Connected) {
      parent_.onProbeConnected();
      return;
    }
    connect_timer_->disableTimer();
    unwindStats(event == Network::ConnectionEvent::RemoteClose);
    parent_.onProbeFailed(timed_out_);
  }
  // Network::ReadFilter: nothing arrives before the handshake is done, and by then the
  // connection has left.
  void onData(Buffer::Instance& data, bool) override { data.drain(data.length()); }

  MixedConnPoolImpl& parent_;
  Network::ClientConnectionPtr connection_;
  Event::TimerPtr connect_timer_;
  bool timed_out_ = false;
};

// ---- MixedConnPoolImpl ----

MixedConnPoolImpl::MixedConnPoolImpl(Event::Dispatcher& dispatcher, HostConstSharedPtr host,
                                     ClusterInfoConstSharedPtr cluster)
    : dispatcher_(dispatcher), host_(std::move(host)), cluster_(std::move(cluster)) {}

MixedConnPoolImpl::~MixedConnPoolImpl() {
  // The chosen pool first: it drops what it queued for our relays without calling them.
  pool_.reset();
  if (probe_ != nullptr) {
    probe_->closeQuietly();
  }
  while (!waiting_.empty()) {
    unwindPendingStats();
    waiting_.pop_front();
  }
  forwarded_.clear();
}

Cancellable* MixedConnPoolImpl::newStream(Http::ResponseDecoder& response_decoder,
                                          HttpPoolCallbacks& callbacks) {
  ASSERT(dispatcher_.isThreadSafe());
  if (pool_ != nullptr) {
    return pool_->newStream(response_decoder, callbacks);
  }
  ClusterStats& stats = cluster_->stats();
  ClusterResources& resources = cluster_->resources();
  if (resources.pending_requests.load(std::memory_order_relaxed) >=
      cluster_->maxPendingRequests()) {
    stats.upstream_rq_pending_overflow().inc();
    callbacks.onPoolFailure(PoolFailureReason::Overflow, kPendingOverflow, host_);
    return nullptr;
  }
  auto request = std::make_unique<PendingRequest>(*this, response_decoder, callbacks);
  PendingRequest* raw = request.get();
  waiting_.push_back(std::move(request));
  raw->it_ = std::prev(waiting_.end());
  stats.upstream_rq_pending_total().inc();
  stats.upstream_rq_pending_active().inc();
  resources.pending_requests++;
  if (probe_ == nullptr) {
    // One connection for every request until the protocol is known, as Envoy's mixed pool
    // (its first connection may carry HTTP/2's many streams).
    startProbe();
  }
  return raw;
}

void MixedConnPoolImpl::startProbe() {
  probe_ = std::make_unique<Probe>(*this);
  probe_->connection_->connect();
}

void MixedConnPoolImpl::onProbeConnected() {
  ASSERT(probe_ != nullptr && pool_ == nullptr);
  protocol_ = Http::chooseClientProtocol(probe_->connection_->nextProtocol());
  Network::ClientConnectionPtr connection = probe_->release();
  dispatcher_.deferredDelete(std::move(probe_));
  // The connection is raising Connected to its callbacks as we adopt it: the chosen pool's
  // client joins the list (ConnectionImpl's callbacks are a std::list: appending is safe) and
  // ignores the Connected it then hears a second time.
  if (*protocol_ == Http::Protocol::Http2) {
    auto pool = std::make_unique<Http2ConnPoolImpl>(dispatcher_, host_, cluster_);
    pool->adoptConnection(std::move(connection));
    pool_ = std::move(pool);
  } else {
    auto pool = std::make_unique<HttpConnPoolImpl>(dispatcher_, host_, cluster_);
    pool->adoptConnection(std::move(connection));
    pool_ = std::move(pool);
  }
  // The waiting requests go to the chosen pool in order; the connection just adopted takes the
  // first (HTTP/1.1) or as many as its streams allow (HTTP/2), the pool queues the rest.
  while (!waiting_.empty()) {
    PendingRequest& request = *waiting_.front();
    unwindPendingStats();
    forwarded_.splice(forwarded_.end(), waiting_, waiting_.begin());
    request.it_ = std::prev(forwarded_.end());
    Cancellable* inner = pool_->newStream(request.decoder_, request);
    if (!request.done_) {
      request.inner_ = inner;
    }
  }
  if (retired_) {
    pool_->retire([this] { checkDrained(); });
  }
}

void MixedConnPoolImpl::onProbeFailed(bool timed_out) {
  cluster_->stats().upstream_cx_connect_fail().inc();
  host_->stats().cx_connect_fail++;
  const PoolFailureReason reason =
      timed_out ? PoolFailureReason::Timeout : PoolFailureReason::ConnectionFailure;
  // Envoy hands the router the connection's failure reason (a refused connection, a TLS error)
  // for the response code details.
  const std::string details(probe_->connection_->transportFailureReason());
  dispatcher_.deferredDelete(std::move(probe_));
  // Every waiting request fails with it; one its callback adds (a retry) starts a new probe.
  PendingList failed;
  failed.swap(waiting_);
  while (!failed.empty()) {
    std::unique_ptr<PendingRequest> request = std::move(failed.front());
    failed.pop_front();
    unwindPendingStats();
    request->done_ = true;
    Outlier::putResult(*host_, Outlier::Result::LocalOriginConnectFailed);  // per request
    HttpPoolCallbacks& callbacks = request->callbacks_;
    dispatcher_.deferredDelete(std::move(request));
    callbacks.onPoolFailure(reason, details, host_);
  }
  checkDrained();
}

void MixedConnPoolImpl::onPendingCancelled(PendingRequest& request) {
  cluster_->stats().upstream_rq_cancelled().inc();
  unwindPendingStats();
  request.done_ = true;
  std::unique_ptr<PendingRequest> owned = std::move(*request.it_);
  waiting_.erase(request.it_);
  dispatcher_.deferredDelete(std::move(owned));
  // The probe stays: the next request will want it (as Envoy keeps a connecting connection),
  // unless the pool is retired.
  if (retired_ && waiting_.empty() && probe_ != nullptr) {
    probe_->closeQuietly();
    dispatcher_.deferredDelete(std::move(probe_));
  }
  checkDrained();
}

void MixedConnPoolImpl::onForwardedDone(PendingRequest& request) {
  request.done_ = true;
  request.inner_ = nullptr;
  std::unique_ptr<PendingRequest> owned = std::move(*request.it_);
  forwarded_.erase(request.it_);
  dispatcher_.deferredDelete(std::move(owned));
}

void MixedConnPoolImpl::unwindPendingStats() {
  cluster_->stats().upstream_rq_pending_active().dec();
  cluster_->resources().pending_requests--;
}

bool MixedConnPoolImpl::hasActiveConnections() const {
  return !waiting_.empty() || (pool_ != nullptr && pool_->hasActiveConnections());
}

void MixedConnPoolImpl::drainConnections() {
  if (pool_ != nullptr) {
    pool_->drainConnections();
  }
}

void MixedConnPoolImpl::updateHost(HostConstSharedPtr host) {
  ASSERT(host->address() == host_->address());
  host_ = std::move(host);
  if (pool_ != nullptr) {
    pool_->updateHost(host_);
  }
}

void MixedConnPoolImpl::retire(std::function<void()> drained_cb) {
  retired_ = true;
  drained_cb_ = std::move(drained_cb);
  if (pool_ != nullptr) {
    pool_->retire([this] { checkDrained(); });
  } else if (probe_ != nullptr && waiting_.empty()) {
    // Nobody waits for the connection being established: close it.
    probe_->closeQuietly();
    dispatcher_.deferredDelete(std::move(probe_));
  }
  checkDrained();
}

bool MixedConnPoolImpl::drained() const {
  return probe_ == nullptr && waiting_.empty() && (pool_ == nullptr || pool_->drained());
}

void MixedConnPoolImpl::checkDrained() {
  if (retired_ && drained_cb_ != nullptr && drained()) {
    std::function<void()> cb = std::move(drained_cb_);
    drained_cb_ = nullptr;
    cb();
  }
}

}  // namespace Proxy::Upstream
