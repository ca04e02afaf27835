#include "proxy/upstream/http2_conn_pool_impl.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "proxy/common/assert.h"
#include "proxy/network/connection_impl.h"
#include "proxy/upstream/outlier_detection.h"

namespace Proxy::Upstream {

namespace {

// The same details as the HTTP/1 pool's (Envoy's).
constexpr std::string_view kPendingOverflow = "upstream pending request overflow";
constexpr std::string_view kRequestsOverflow = "upstream max requests overflow";

}  // namespace

// ---- ActiveStream ----

void Http2ConnPoolImpl::ActiveStream::decode100ContinueHeaders(
    Http::ResponseHeaderMapPtr&& headers) {
  if (decoder_ != nullptr) {
    decoder_->decode100ContinueHeaders(std::move(headers));
  }
}

void Http2ConnPoolImpl::ActiveStream::decodeHeaders(Http::ResponseHeaderMapPtr&& headers,
                                                    bool end_stream) {
  if (decoder_ == nullptr) {
    return;
  }
  success_ = headers->status() < 500;
  // Outlier detection hears the status, as from Envoy's router.
  Outlier::putHttpResponseCode(*client_.parent_.host_, headers->status());
  Http::ResponseDecoder* decoder = decoder_;
  if (!end_stream) {
    decoder->decodeHeaders(std::move(headers), false);
    return;
  }
  // The stream is over before the caller hears it, so the caller may start another one (or
  // this connection may take a queued request) from inside the callback.
  ActiveClient& client = client_;
  end(success_);
  decoder->decodeHeaders(std::move(headers), true);
  client.onStreamEnded();
}

void Http2ConnPoolImpl::ActiveStream::decodeData(Buffer::Instance& data, bool end_stream) {
  if (decoder_ == nullptr) {
    data.drain(data.length());
    return;
  }
  Http::ResponseDecoder* decoder = decoder_;
  if (!end_stream) {
    decoder->decodeData(data, false);
    return;
  }
  ActiveClient& client = client_;
  end(success_);
  decoder->decodeData(data, true);
  client.onStreamEnded();
}

void Http2ConnPoolImpl::ActiveStream::decodeTrailers(Http::ResponseTrailerMapPtr&& trailers) {
  if (decoder_ == nullptr) {
    return;
  }
  Http::ResponseDecoder* decoder = decoder_;
  ActiveClient& client = client_;
  end(success_);
  decoder->decodeTrailers(std::move(trailers));
  client.onStreamEnded();
}

void Http2ConnPoolImpl::ActiveStream::onResetStream(Http::StreamResetReason reason) {
  if (decoder_ == nullptr) {
    return;
  }
  ClusterStats& stats = client_.parent_.cluster_->stats();
  if (reason != Http::StreamResetReason::LocalReset &&
      reason != Http::StreamResetReason::LocalRefusedStreamReset &&
      reason != Http::StreamResetReason::Overflow) {
    // Not the caller's own reset: Envoy's router reports an upstream reset as a local-origin
    // connect failure.
    Outlier::putResult(*client_.parent_.host_, Outlier::Result::LocalOriginConnectFailed);
  }
  if (reason == Http::StreamResetReason::LocalReset ||
      reason == Http::StreamResetReason::LocalRefusedStreamReset) {
    stats.upstream_rq_tx_reset().inc();
  } else if (reason != Http::StreamResetReason::ConnectionTermination || client_.remote_closed_) {
    stats.upstream_rq_rx_reset().inc();
  }
  // The caller's own callbacks (registered after ours) hear the reset next.
  ActiveClient& client = client_;
  end(/*success=*/false);
  client.onStreamEnded();
}

void Http2ConnPoolImpl::ActiveStream::unwindStats(bool success) {
  ASSERT(decoder_ != nullptr);
  decoder_ = nullptr;
  Http2ConnPoolImpl& pool = client_.parent_;
  const ClusterInfo& cluster = *pool.cluster_;
  cluster.stats().upstream_rq_active().dec();
  cluster.resources().requests--;
  HostStats& host_stats = pool.host_->stats();
  host_stats.rq_active--;
  (success ? host_stats.rq_success : host_stats.rq_error)++;
}

void Http2ConnPoolImpl::ActiveStream::end(bool success) {
  unwindStats(success);
  encoder_->getStream().removeCallbacks(*this);
  Http2ConnPoolImpl& pool = client_.parent_;
  std::unique_ptr<ActiveStream> owned = std::move(*it_);
  client_.streams_.erase(it_);
  pool.dispatcher_.deferredDelete(std::move(owned));
}

// ---- ActiveClient ----

Http2ConnPoolImpl::ActiveClient::ActiveClient(Http2ConnPoolImpl& parent,
                                              Network::ClientConnectionPtr adopted)
    : parent_(parent) {
  const ClusterInfo& cluster = *parent_.cluster_;
  ASSERT(cluster.http2CodecStats() != nullptr);
  const bool is_adopted = adopted != nullptr;
  if (is_adopted) {
    connection_ = std::move(adopted);
  } else {
    // Over TLS the ClientHello offers "h2" (an auto_config cluster: "h2,http/1.1") unless the
    // context names its own protocols.
    connection_ = std::make_unique<Network::ClientConnectionImpl>(
        parent.dispatcher_, parent.host_->address(),
        cluster.createTransportSocket(cluster.upstreamHttpProtocol() == UpstreamHttpProtocol::Auto
                                          ? kAutoAlpnFallback
                                          : std::string_view("h2")));
    connection_->setBufferLimits(cluster.perConnectionBufferLimitBytes());
    connection_->noDelay(true);
  }
  connection_->addConnectionCallbacks(*this);
  connection_->setReadFilter(this);
  codec_ = std::make_unique<Http::Http2::ClientConnectionImpl>(parent_.dispatcher_, codec_output_,
                                                               *this, cluster.http2Settings(),
                                                               *cluster.http2CodecStats());
  connect_timer_ = parent_.dispatcher_.createTimer([this]() {
    connect_timed_out_ = true;
    parent_.cluster_->stats().upstream_cx_connect_timeout().inc();
    close();
  });

  ClusterStats& stats = cluster.stats();
  stats.upstream_cx_http2_total().inc();
  if (is_adopted) {
    return;  // connected, and counted as a connection by the mixed pool's probe
  }
  connect_timer_->enableTimer(cluster.connectTimeout());
  stats.upstream_cx_total().inc();
  stats.upstream_cx_active().inc();
  parent_.host_->stats().cx_total++;
  parent_.host_->stats().cx_active++;
  cluster.resources().connections++;
}

Http2ConnPoolImpl::ActiveClient::~ActiveClient() = default;

bool Http2ConnPoolImpl::ActiveClient::hasCapacity() const {
  if (draining_ || state_ == State::Closed || state_ == State::Connecting) {
    return false;
  }
  const uint64_t limit = std::min(parent_.cluster_->http2Settings().max_concurrent_streams,
                                  codec_->peerMaxConcurrentStreams());
  if (streams_.size() >= limit) {
    return false;
  }
  const uint64_t max_requests = parent_.cluster_->maxRequestsPerConnection();
  return max_requests == 0 || total_streams_ < max_requests;
}

void Http2ConnPoolImpl::ActiveClient::attach(Http::ResponseDecoder& decoder,
                                             HttpPoolCallbacks& callbacks) {
  auto stream = std::make_unique<ActiveStream>(*this, decoder);
  ActiveStream& raw = *stream;
  streams_.push_back(std::move(stream));
  raw.it_ = std::prev(streams_.end());
  total_streams_++;
  raw.encoder_ = &codec_->newStream(raw);
  // First in the stream's callbacks: the pool's bookkeeping precedes the caller's reaction.
  raw.encoder_->getStream().addCallbacks(raw);

  const ClusterInfo& cluster = *parent_.cluster_;
  cluster.stats().upstream_rq_total().inc();
  cluster.stats().upstream_rq_active().inc();
  cluster.resources().requests++;
  parent_.host_->stats().rq_total++;
  parent_.host_->stats().rq_active++;
  const uint64_t max_requests = cluster.maxRequestsPerConnection();
  if (max_requests != 0 && total_streams_ >= max_requests) {
    cluster.stats().upstream_cx_max_requests().inc();
    startDraining();
  }
  Outlier::putResult(*parent_.host_, Outlier::Result::LocalOriginConnectSuccess);
  callbacks.onPoolReady(*raw.encoder_, parent_.host_);
}

void Http2ConnPoolImpl::ActiveClient::onStreamEnded() {
  if (state_ == State::Closed) {
    return;
  }
  parent_.onClientCapacity(*this);
}

void Http2ConnPoolImpl::ActiveClient::startDraining() {
  if (draining_) {
    return;
  }
  draining_ = true;
  if (state_ == State::Ready || state_ == State::Busy) {
    parent_.moveClient(*this, State::Draining);
  }
}

void Http2ConnPoolImpl::ActiveClient::close() {
  if (state_ == State::Closed) {
    return;
  }
  connection_->close(Network::ConnectionCloseType::NoFlush);
  if (state_ != State::Closed) {
    onEvent(Network::ConnectionEvent::LocalClose);
  }
}

void Http2ConnPoolImpl::ActiveClient::onEvent(Network::ConnectionEvent event) {
  if (state_ == State::Closed) {
    return;
  }
  if (event == Network::ConnectionEvent::Connected && state_ != State::Connecting) {
    return;  // an adopted connection: the pool raised it already
  }
  connect_timer_->disableTimer();
  if (event == Network::ConnectionEvent::Connected) {
    parent_.moveClient(*this, State::Ready);
    parent_.onClientCapacity(*this);
    return;
  }
  const bool was_connecting = state_ == State::Connecting;
  remote_closed_ = event == Network::ConnectionEvent::RemoteClose;
  parent_.onClientClosed(*this, was_connecting);
}

void Http2ConnPoolImpl::ActiveClient::onAboveWriteBufferHighWatermark() {
  codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
}

void Http2ConnPoolImpl::ActiveClient::onBelowWriteBufferLowWatermark() {
  codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
}

void Http2ConnPoolImpl::ActiveClient::onData(Buffer::Instance& data, bool) {
  if (state_ == State::Closed) {
    data.drain(data.length());
    return;
  }
  const absl::Status status = codec_->dispatch(data);
  if (state_ == State::Closed) {
    return;
  }
  if (!status.ok() || codec_->sessionOver()) {
    // A connection error: nghttp2 has said GOAWAY; what is still open ends with the close.
    close();
    return;
  }
  // GOAWAY or SETTINGS may have changed what this connection can take.
  parent_.onClientCapacity(*this);
}

void Http2ConnPoolImpl::ActiveClient::onGoAway(uint32_t, int32_t) {
  // No new stream here; the open ones finish (those above last_stream_id are reset by the
  // codec as refused, which callers may retry). onData() closes the connection once empty.
  if (!draining_) {
    parent_.cluster_->stats().upstream_cx_close_notify().inc();
  }
  startDraining();
}

void Http2ConnPoolImpl::ActiveClient::onMaxConcurrentStreamsChanged(uint32_t) {
  // Applied after dispatch (onData -> onClientCapacity): hasCapacity() reads the codec's value.
}

// ---- Http2ConnPoolImpl ----

Http2ConnPoolImpl::Http2ConnPoolImpl(Event::Dispatcher& dispatcher, HostConstSharedPtr host,
                                     ClusterInfoConstSharedPtr cluster)
    : dispatcher_(dispatcher), host_(std::move(host)), cluster_(std::move(cluster)) {}

Http2ConnPoolImpl::~Http2ConnPoolImpl() {
  while (!pending_.empty()) {
    popPending();
  }
  for (ClientList* list : {&connecting_, &ready_, &busy_, &draining_}) {
    for (ActiveClientPtr& client : *list) {
      for (std::unique_ptr<ActiveStream>& stream : client->streams_) {
        stream->unwindStats(/*success=*/false);
      }
      unwindConnectionStats(*client, /*remote=*/false);
    }
    list->clear();
  }
}

Cancellable* Http2ConnPoolImpl::newStream(Http::ResponseDecoder& response_decoder,
                                          HttpPoolCallbacks& callbacks) {
  ASSERT(dispatcher_.isThreadSafe());
  if (!ready_.empty()) {
    ActiveClient& client = *ready_.front();
    attachOrFail(client, response_decoder, callbacks);
    if (client.state_ == ActiveClient::State::Ready && !client.hasCapacity()) {
      moveClient(client,
                 client.draining_ ? ActiveClient::State::Draining : ActiveClient::State::Busy);
    }
    return nullptr;
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
  pending_.push_back(std::move(request));
  raw->it_ = std::prev(pending_.end());
  stats.upstream_rq_pending_total().inc();
  stats.upstream_rq_pending_active().inc();
  resources.pending_requests++;
  tryCreateClients();
  return raw;
}

bool Http2ConnPoolImpl::hasActiveConnections() const {
  if (!pending_.empty()) {
    return true;
  }
  for (const ClientList* list : {&ready_, &busy_, &draining_}) {
    for (const ActiveClientPtr& client : *list) {
      if (!client->streams_.empty()) {
        return true;
      }
    }
  }
  return false;
}

void Http2ConnPoolImpl::drainConnections() {
  std::vector<ActiveClient*> clients;
  for (ClientList* list : {&ready_, &busy_}) {
    for (ActiveClientPtr& client : *list) {
      clients.push_back(client.get());
    }
  }
  for (ActiveClient* client : clients) {
    client->startDraining();
    if (client->streams_.empty()) {
      client->close();
    }
  }
}

void Http2ConnPoolImpl::updateHost(HostConstSharedPtr host) {
  ASSERT(host->address() == host_->address());
  host_ = std::move(host);
}

void Http2ConnPoolImpl::retire(std::function<void()> drained_cb) {
  retired_ = true;
  drained_cb_ = std::move(drained_cb);
  drainConnections();
  checkDrained();
}

bool Http2ConnPoolImpl::drained() const {
  return connecting_.empty() && ready_.empty() && busy_.empty() && draining_.empty() &&
         pending_.empty();
}

void Http2ConnPoolImpl::adoptConnection(Network::ClientConnectionPtr connection) {
  auto client = std::make_unique<ActiveClient>(*this, std::move(connection));
  ActiveClient& raw = *client;
  connecting_.push_back(std::move(client));
  raw.it_ = std::prev(connecting_.end());
  raw.onEvent(Network::ConnectionEvent::Connected);
}

void Http2ConnPoolImpl::createClient() {
  auto client = std::make_unique<ActiveClient>(*this);
  ActiveClient& raw = *client;
  connecting_.push_back(std::move(client));
  raw.it_ = std::prev(connecting_.end());
  raw.connection_->connect();
}

bool Http2ConnPoolImpl::canCreateClient() const {
  return cluster_->resources().connections.load(std::memory_order_relaxed) <
         cluster_->maxConnections();
}

uint32_t Http2ConnPoolImpl::configuredStreamLimit() const {
  uint64_t limit = cluster_->http2Settings().max_concurrent_streams;
  const uint64_t max_requests = cluster_->maxRequestsPerConnection();
  if (max_requests != 0) {
    limit = std::min(limit, max_requests);
  }
  return static_cast<uint32_t>(std::max<uint64_t>(limit, 1));
}

void Http2ConnPoolImpl::tryCreateClients() {
  // Each connection being established will take up to the stream limit of queued requests.
  while (pending_.size() > connecting_.size() * uint64_t{configuredStreamLimit()}) {
    if (!canCreateClient()) {
      cluster_->stats().upstream_cx_overflow().inc();
      // As Envoy (and the HTTP/1 pool): a pool with no usable connection still gets one.
      if (!(connecting_.empty() && ready_.empty() && busy_.empty())) {
        return;
      }
    }
    createClient();
  }
}

Http2ConnPoolImpl::ClientList& Http2ConnPoolImpl::listFor(ActiveClient::State state) {
  switch (state) {
    case ActiveClient::State::Connecting:
      return connecting_;
    case ActiveClient::State::Ready:
      return ready_;
    case ActiveClient::State::Busy:
      return busy_;
    case ActiveClient::State::Draining:
    case ActiveClient::State::Closed:
      break;
  }
  return draining_;
}

void Http2ConnPoolImpl::moveClient(ActiveClient& client, ActiveClient::State to) {
  if (client.state_ == to || client.state_ == ActiveClient::State::Closed) {
    return;
  }
  ClientList& from_list = listFor(client.state_);
  ClientList& to_list = listFor(to);
  to_list.splice(to_list.begin(), from_list, client.it_);
  client.state_ = to;
}

void Http2ConnPoolImpl::onClientCapacity(ActiveClient& client) {
  if (client.state_ == ActiveClient::State::Closed) {
    return;
  }
  while (!pending_.empty() && client.hasCapacity()) {
    PendingRequestPtr request = popPending();
    attachOrFail(client, request->decoder_, request->callbacks_);
  }
  if (retired_) {
    // It served what was queued (nobody else will) and takes nothing new.
    client.startDraining();
  }
  if (client.state_ == ActiveClient::State::Closed) {
    return;
  }
  if (client.draining_) {
    moveClient(client, ActiveClient::State::Draining);
    if (client.streams_.empty()) {
      client.close();
      return;
    }
  } else {
    moveClient(client,
               client.hasCapacity() ? ActiveClient::State::Ready : ActiveClient::State::Busy);
  }
  updateIdleTimer(client);
  // Requests queued behind a connection that now drains need connections of their own.
  tryCreateClients();
  checkDrained();
}

void Http2ConnPoolImpl::updateIdleTimer(ActiveClient& client) {
  const std::chrono::milliseconds idle_timeout = cluster_->idleTimeout();
  if (client.streams_.empty() && client.state_ != ActiveClient::State::Closed &&
      idle_timeout.count() > 0) {
    if (client.idle_timer_ == nullptr) {
      client.idle_timer_ = dispatcher_.createTimer([this, &client] {
        cluster_->stats().upstream_cx_idle_timeout().inc();
        client.close();
      });
    }
    client.idle_timer_->enableTimer(idle_timeout);
  } else if (client.idle_timer_ != nullptr) {
    client.idle_timer_->disableTimer();
  }
}

bool Http2ConnPoolImpl::attachOrFail(ActiveClient& client, Http::ResponseDecoder& decoder,
                                     HttpPoolCallbacks& callbacks) {
  if (cluster_->resources().requests.load(std::memory_order_relaxed) >= cluster_->maxRequests()) {
    cluster_->stats().upstream_rq_pending_overflow().inc();
    callbacks.onPoolFailure(PoolFailureReason::Overflow, kRequestsOverflow, host_);
    return false;
  }
  if (client.idle_timer_ != nullptr) {
    client.idle_timer_->disableTimer();
  }
  client.attach(decoder, callbacks);
  return true;
}

void Http2ConnPoolImpl::unwindConnectionStats(ActiveClient& client, bool remote) {
  if (!client.accounted_) {
    return;
  }
  client.accounted_ = false;
  ClusterStats& stats = cluster_->stats();
  stats.upstream_cx_active().dec();
  stats.upstream_cx_destroy().inc();
  (remote ? stats.upstream_cx_destroy_remote() : stats.upstream_cx_destroy_local()).inc();
  host_->stats().cx_active--;
  cluster_->resources().connections--;
}

void Http2ConnPoolImpl::onClientClosed(ActiveClient& client, bool was_connecting) {
  unwindConnectionStats(client, client.remote_closed_);
  if (was_connecting) {
    cluster_->stats().upstream_cx_connect_fail().inc();
    host_->stats().cx_connect_fail++;
  }
  ClientList& list = listFor(client.state_);
  ActiveClientPtr owned = std::move(*client.it_);
  list.erase(client.it_);
  client.state_ = ActiveClient::State::Closed;
  if (client.idle_timer_ != nullptr) {
    client.idle_timer_->disableTimer();
  }
  dispatcher_.deferredDelete(std::move(owned));

  // Every stream still open ends with the connection (its callers may retry elsewhere).
  client.codec_->onConnectionClose();
  if (was_connecting) {
    const PoolFailureReason reason = client.connect_timed_out_
                                         ? PoolFailureReason::Timeout
                                         : PoolFailureReason::ConnectionFailure;
    // Envoy hands the router the connection's failure reason ("delayed connect error:
    // Connection refused", a TLS error; none for a timeout) for the response code details.
    const std::string details(client.connection_->transportFailureReason());
    const uint64_t servable = connecting_.size() * uint64_t{configuredStreamLimit()};
    size_t to_fail = pending_.size() > servable ? pending_.size() - servable : 0;
    while (to_fail-- > 0 && !pending_.empty()) {
      PendingRequestPtr request = popPending();
      Outlier::putResult(*host_, Outlier::Result::LocalOriginConnectFailed);  // per request
      request->callbacks_.onPoolFailure(reason, details, host_);
    }
  }
  tryCreateClients();
  checkDrained();
}

void Http2ConnPoolImpl::onPendingCancelled(PendingRequest& request) {
  cluster_->stats().upstream_rq_cancelled().inc();
  cluster_->stats().upstream_rq_pending_active().dec();
  cluster_->resources().pending_requests--;
  pending_.erase(request.it_);
  checkDrained();
}

Http2ConnPoolImpl::PendingRequestPtr Http2ConnPoolImpl::popPending() {
  PendingRequestPtr request = std::move(pending_.front());
  pending_.pop_front();
  cluster_->stats().upstream_rq_pending_active().dec();
  cluster_->resources().pending_requests--;
  return request;
}

void Http2ConnPoolImpl::checkDrained() {
  if (retired_ && drained_cb_ != nullptr && drained()) {
    std::function<void()> cb = std::move(drained_cb_);
    drained_cb_ = nullptr;
    cb();
  }
}

}  // namespace Proxy::Upstream
