#include "proxy/upstream/http_conn_pool_impl.h"

#include "proxy/common/assert.h"
#include "proxy/http/http1/client_connection_impl.h"
#include "proxy/network/connection_impl.h"
#include "proxy/upstream/outlier_detection.h"

namespace Proxy::Upstream {

namespace {

constexpr std::string_view kPendingOverflow = "upstream pending request overflow";
constexpr std::string_view kRequestsOverflow = "upstream max requests overflow";

}  // namespace

// ---- ActiveClient ----

HttpConnPoolImpl::ActiveClient::ActiveClient(HttpConnPoolImpl& parent,
                                             Network::ClientConnectionPtr adopted)
    : parent_(parent) {
  const ClusterInfo& cluster = *parent_.cluster_;
  const bool is_adopted = adopted != nullptr;
  if (is_adopted) {
    connection_ = std::move(adopted);
  } else {
    // An auto_config cluster's connections offer both protocols, whichever this pool speaks.
    connection_ = std::make_unique<Network::ClientConnectionImpl>(
        parent.dispatcher_, parent.host_->address(),
        cluster.createTransportSocket(cluster.upstreamHttpProtocol() == UpstreamHttpProtocol::Auto
                                          ? kAutoAlpnFallback
                                          : std::string_view()));
    connection_->setBufferLimits(cluster.perConnectionBufferLimitBytes());
    connection_->noDelay(true);
  }
  connection_->addConnectionCallbacks(*this);
  connection_->setReadFilter(this);
  codec_ = std::make_unique<Http::ClientConnectionImpl>(codec_output_, Http::Http1Settings());
  stream_callbacks_.reserve(2);
  connect_timer_ = parent_.dispatcher_.createTimer([this]() {
    connect_timed_out_ = true;
    parent_.cluster_->stats().upstream_cx_connect_timeout().inc();
    close();
  });

  ClusterStats& stats = cluster.stats();
  stats.upstream_cx_http1_total().inc();
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

HttpConnPoolImpl::ActiveClient::~ActiveClient() = default;

void HttpConnPoolImpl::ActiveClient::close() {
  if (state_ == State::Closed) {
    return;
  }
  connection_->close(Network::ConnectionCloseType::NoFlush);
  // The connection raises LocalClose from close(); should it ever not, account here once.
  if (state_ != State::Closed) {
    onEvent(Network::ConnectionEvent::LocalClose);
  }
}

void HttpConnPoolImpl::ActiveClient::onEvent(Network::ConnectionEvent event) {
  if (state_ == State::Closed) {
    return;
  }
  if (event == Network::ConnectionEvent::Connected) {
    if (state_ != State::Connecting) {
      return;  // an adopted connection: the pool raised it already
    }
    connect_timer_->disableTimer();
    parent_.onClientIdle(*this);
    return;
  }
  connect_timer_->disableTimer();
  const bool was_connecting = state_ == State::Connecting;
  remote_closed_ = event == Network::ConnectionEvent::RemoteClose;
  if (stream_active_ && remote_closed_) {
    // A response without content-length or chunking ends with the connection: let the codec
    // complete it before deciding whether the stream was cut short.
    closing_ = true;
    codec_->onConnectionClose();
    close_reset_reason_ = codec_->closeResetReason();
  }
  parent_.onClientClosed(*this, was_connecting, stream_active_);
}

void HttpConnPoolImpl::ActiveClient::onAboveWriteBufferHighWatermark() {
  codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
  if (!stream_active_) {
    return;
  }
  for (size_t i = 0; i < stream_callbacks_.size(); i++) {
    if (stream_callbacks_[i] != nullptr) {
      stream_callbacks_[i]->onAboveWriteBufferHighWatermark();
    }
  }
}

void HttpConnPoolImpl::ActiveClient::onBelowWriteBufferLowWatermark() {
  codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
  if (!stream_active_) {
    return;
  }
  for (size_t i = 0; i < stream_callbacks_.size(); i++) {
    if (stream_callbacks_[i] != nullptr) {
      stream_callbacks_[i]->onBelowWriteBufferLowWatermark();
    }
  }
}

void HttpConnPoolImpl::ActiveClient::onData(Buffer::Instance& data, bool) {
  if (state_ == State::Closed) {
    data.drain(data.length());
    return;
  }
  if (!stream_active_) {
    // An idle HTTP/1 connection must be silent; bytes now mean a confused upstream, and they
    // would be taken for the next request's response (Envoy closes too).
    data.drain(data.length());
    close();
    return;
  }
  dispatching_ = true;
  const absl::Status status = codec_->dispatch(data);
  dispatching_ = false;
  if (state_ == State::Closed) {
    return;
  }
  if (!status.ok()) {
    // A malformed response: nothing after it on this connection can be trusted.
    if (stream_active_) {
      parent_.cluster_->stats().upstream_rq_rx_reset().inc();
      resetActiveStream(Http::StreamResetReason::ProtocolError);
    }
    close();
    return;
  }
  if (recycle_after_dispatch_) {
    recycle_after_dispatch_ = false;
    if (data.length() > 0) {
      // Bytes beyond the end of the response (an unsolicited pipelined reply).
      close();
      return;
    }
    recycle();
  }
}

void HttpConnPoolImpl::ActiveClient::encodeHeaders(const Http::RequestHeaderMap& headers,
                                                   bool end_stream) {
  if (!stream_active_) {
    return;  // the response already ended (early reply) or the stream was reset
  }
  request_complete_ = end_stream;
  codec_encoder_->encodeHeaders(headers, end_stream);
}

void HttpConnPoolImpl::ActiveClient::encodeData(Buffer::Instance& data, bool end_stream) {
  if (!stream_active_) {
    data.drain(data.length());
    return;
  }
  request_complete_ = end_stream;
  codec_encoder_->encodeData(data, end_stream);
}

void HttpConnPoolImpl::ActiveClient::encodeTrailers(const Http::RequestTrailerMap& trailers) {
  if (!stream_active_) {
    return;
  }
  request_complete_ = true;
  codec_encoder_->encodeTrailers(trailers);
}

void HttpConnPoolImpl::ActiveClient::decode100ContinueHeaders(
    Http::ResponseHeaderMapPtr&& headers) {
  if (stream_active_) {
    decoder_->decode100ContinueHeaders(std::move(headers));
  }
}

void HttpConnPoolImpl::ActiveClient::decodeHeaders(Http::ResponseHeaderMapPtr&& headers,
                                                   bool end_stream) {
  if (!stream_active_) {
    return;
  }
  // upstream_rq_<N>xx is the router's to count (Envoy's split); the host's success/error is ours,
  // and so is outlier detection's report (Envoy's router reports the same status).
  response_success_ = headers->status() < 500;
  Outlier::putHttpResponseCode(*parent_.host_, headers->status());
  Http::ResponseDecoder* decoder = decoder_;
  if (end_stream) {
    endStream();
  }
  decoder->decodeHeaders(std::move(headers), end_stream);
  if (end_stream) {
    onResponseComplete();
  }
}

void HttpConnPoolImpl::ActiveClient::decodeData(Buffer::Instance& data, bool end_stream) {
  if (!stream_active_) {
    data.drain(data.length());
    return;
  }
  Http::ResponseDecoder* decoder = decoder_;
  if (end_stream) {
    endStream();
  }
  decoder->decodeData(data, end_stream);
  if (end_stream) {
    onResponseComplete();
  }
}

void HttpConnPoolImpl::ActiveClient::decodeTrailers(Http::ResponseTrailerMapPtr&& trailers) {
  if (!stream_active_) {
    return;
  }
  Http::ResponseDecoder* decoder = decoder_;
  endStream();
  decoder->decodeTrailers(std::move(trailers));
  onResponseComplete();
}

void HttpConnPoolImpl::ActiveClient::addCallbacks(Http::StreamCallbacks& callbacks) {
  stream_callbacks_.push_back(&callbacks);
}

void HttpConnPoolImpl::ActiveClient::removeCallbacks(Http::StreamCallbacks& callbacks) {
  for (Http::StreamCallbacks*& entry : stream_callbacks_) {
    if (entry == &callbacks) {
      entry = nullptr;
    }
  }
}

void HttpConnPoolImpl::ActiveClient::resetStream(Http::StreamResetReason reason) {
  if (!stream_active_) {
    return;
  }
  // An HTTP/1 request cannot be abandoned on a live connection: close it.
  parent_.cluster_->stats().upstream_rq_tx_reset().inc();
  response_success_ = false;
  endStream();
  runResetCallbacks(reason);
  close();
}

void HttpConnPoolImpl::ActiveClient::readDisable(bool disable) {
  if (!stream_active_) {
    return;
  }
  if (disable) {
    stream_read_disables_++;
    connection_->readDisable(true);
  } else if (stream_read_disables_ > 0) {
    stream_read_disables_--;
    connection_->readDisable(false);
  }
}

void HttpConnPoolImpl::ActiveClient::attach(Http::ResponseDecoder& decoder) {
  ASSERT(!stream_active_);
  stream_active_ = true;
  decoder_ = &decoder;
  request_complete_ = false;
  response_success_ = true;
  stream_callbacks_.clear();
  stream_count_++;
  const uint64_t max_requests = parent_.cluster_->maxRequestsPerConnection();
  if (max_requests != 0 && stream_count_ >= max_requests) {
    close_after_stream_ = true;
    max_requests_reached_ = true;
  }
  codec_encoder_ = &codec_->newStream(*this);

  const ClusterInfo& cluster = *parent_.cluster_;
  cluster.stats().upstream_rq_total().inc();
  cluster.stats().upstream_rq_active().inc();
  cluster.resources().requests++;
  parent_.host_->stats().rq_total++;
  parent_.host_->stats().rq_active++;
}

void HttpConnPoolImpl::ActiveClient::endStream() {
  ASSERT(stream_active_);
  stream_active_ = false;
  decoder_ = nullptr;
  codec_encoder_ = nullptr;
  // Reads the caller left disabled must not outlive its stream on a reused connection.
  while (stream_read_disables_ > 0) {
    stream_read_disables_--;
    connection_->readDisable(false);
  }
  const ClusterInfo& cluster = *parent_.cluster_;
  cluster.stats().upstream_rq_active().dec();
  cluster.resources().requests--;
  HostStats& host_stats = parent_.host_->stats();
  host_stats.rq_active--;
  (response_success_ ? host_stats.rq_success : host_stats.rq_error)++;
}

void HttpConnPoolImpl::ActiveClient::resetActiveStream(Http::StreamResetReason reason) {
  if (!stream_active_) {
    return;
  }
  // The upstream cut the stream short (closed, or sent something unparsable): Envoy's router
  // reports an upstream reset as a local-origin connect failure.
  Outlier::putResult(*parent_.host_, Outlier::Result::LocalOriginConnectFailed);
  response_success_ = false;
  endStream();
  runResetCallbacks(reason);
}

void HttpConnPoolImpl::ActiveClient::runResetCallbacks(Http::StreamResetReason reason) {
  // By index: a callback may remove itself (nulling its entry) while we walk.
  for (size_t i = 0; i < stream_callbacks_.size(); i++) {
    if (stream_callbacks_[i] != nullptr) {
      stream_callbacks_[i]->onResetStream(reason);
    }
  }
  stream_callbacks_.clear();
}

void HttpConnPoolImpl::ActiveClient::onResponseComplete() {
  stream_callbacks_.clear();
  if (!request_complete_) {
    // The upstream answered before the request was fully sent (e.g. 413): the rest of the
    // request would be read as a new one, so this connection cannot be reused.
    close_after_stream_ = true;
  }
  if (state_ == State::Closed || closing_) {
    return;
  }
  if (dispatching_) {
    recycle_after_dispatch_ = true;
    return;
  }
  recycle();
}

void HttpConnPoolImpl::ActiveClient::recycle() {
  if (close_after_stream_ || codec_->remoteWantsClose()) {
    if (max_requests_reached_) {
      parent_.cluster_->stats().upstream_cx_max_requests().inc();
    }
    close();
    return;
  }
  parent_.onClientIdle(*this);
}

// ---- HttpConnPoolImpl ----

HttpConnPoolImpl::HttpConnPoolImpl(Event::Dispatcher& dispatcher, HostConstSharedPtr host,
                                   ClusterInfoConstSharedPtr cluster)
    : dispatcher_(dispatcher), host_(std::move(host)), cluster_(std::move(cluster)) {}

HttpConnPoolImpl::~HttpConnPoolImpl() {
  while (!pending_.empty()) {
    popPending();
  }
  for (ClientList* list : {&connecting_, &ready_, &busy_}) {
    for (ActiveClientPtr& client : *list) {
      if (client->stream_active_) {
        client->response_success_ = false;
        client->endStream();
      }
      unwindConnectionStats(*client, /*remote=*/false);
    }
    // Destroying an open connection closes its socket without raising events.
    list->clear();
  }
}

Cancellable* HttpConnPoolImpl::newStream(Http::ResponseDecoder& response_decoder,
                                         HttpPoolCallbacks& callbacks) {
  ASSERT(dispatcher_.isThreadSafe());
  if (!ready_.empty()) {
    attachOrFail(*ready_.front(), response_decoder, callbacks);
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

  // connect() never calls back from inside itself, so `raw` is still queued on return.
  tryCreateClients();
  return raw;
}

bool HttpConnPoolImpl::hasActiveConnections() const {
  return !pending_.empty() || !busy_.empty();
}

void HttpConnPoolImpl::drainConnections() {
  while (!ready_.empty()) {
    ready_.front()->close();
  }
  for (ActiveClientPtr& client : busy_) {
    client->close_after_stream_ = true;
  }
}

void HttpConnPoolImpl::updateHost(HostConstSharedPtr host) {
  ASSERT(host->address() == host_->address());
  host_ = std::move(host);
}

void HttpConnPoolImpl::retire(std::function<void()> drained_cb) {
  retired_ = true;
  drained_cb_ = std::move(drained_cb);
  drainConnections();
  checkDrained();
}

bool HttpConnPoolImpl::drained() const {
  return connecting_.empty() && ready_.empty() && busy_.empty() && pending_.empty();
}

void HttpConnPoolImpl::adoptConnection(Network::ClientConnectionPtr connection) {
  auto client = std::make_unique<ActiveClient>(*this, std::move(connection));
  ActiveClient& raw = *client;
  connecting_.push_back(std::move(client));
  raw.it_ = std::prev(connecting_.end());
  raw.onEvent(Network::ConnectionEvent::Connected);
}

void HttpConnPoolImpl::createClient() {
  auto client = std::make_unique<ActiveClient>(*this);
  ActiveClient& raw = *client;
  connecting_.push_back(std::move(client));
  raw.it_ = std::prev(connecting_.end());
  raw.connection_->connect();
}

bool HttpConnPoolImpl::canCreateClient() const {
  return cluster_->resources().connections.load(std::memory_order_relaxed) <
         cluster_->maxConnections();
}

void HttpConnPoolImpl::tryCreateClients() {
  while (pending_.size() > connecting_.size()) {
    if (!canCreateClient()) {
      cluster_->stats().upstream_cx_overflow().inc();
      // As Envoy: a pool with no connection at all still gets one, or its queue would wait on
      // other hosts' connections to close.
      if (!(connecting_.empty() && ready_.empty() && busy_.empty())) {
        return;
      }
    }
    createClient();
  }
}

HttpConnPoolImpl::ClientList& HttpConnPoolImpl::listFor(ActiveClient::State state) {
  switch (state) {
    case ActiveClient::State::Connecting:
      return connecting_;
    case ActiveClient::State::Ready:
      return ready_;
    case ActiveClient::State::Busy:
    case ActiveClient::State::Closed:
      break;
  }
  return busy_;
}

void HttpConnPoolImpl::moveClient(ActiveClient& client, ActiveClient::State to) {
  if (client.state_ == to) {
    return;
  }
  ClientList& from_list = listFor(client.state_);
  ClientList& to_list = listFor(to);
  // splice keeps the iterator valid; the front of ready_ is the warmest connection.
  to_list.splice(to_list.begin(), from_list, client.it_);
  client.state_ = to;
  // An idle pooled connection lives for the cluster's idle_timeout (Envoy's
  // common_http_protocol_options.idle_timeout, 1 h by default), then is closed.
  const std::chrono::milliseconds idle_timeout = cluster_->idleTimeout();
  if (to == ActiveClient::State::Ready && idle_timeout.count() > 0) {
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

void HttpConnPoolImpl::onClientIdle(ActiveClient& client) {
  while (!pending_.empty()) {
    PendingRequestPtr request = popPending();
    if (attachOrFail(client, request->decoder_, request->callbacks_)) {
      return;
    }
  }
  if (retired_ || client.close_after_stream_) {
    client.close();
    return;
  }
  moveClient(client, ActiveClient::State::Ready);
}

bool HttpConnPoolImpl::attachOrFail(ActiveClient& client, Http::ResponseDecoder& decoder,
                                    HttpPoolCallbacks& callbacks) {
  if (cluster_->resources().requests.load(std::memory_order_relaxed) >= cluster_->maxRequests()) {
    cluster_->stats().upstream_rq_pending_overflow().inc();
    callbacks.onPoolFailure(PoolFailureReason::Overflow, kRequestsOverflow, host_);
    return false;
  }
  moveClient(client, ActiveClient::State::Busy);
  client.attach(decoder);
  Outlier::putResult(*host_, Outlier::Result::LocalOriginConnectSuccess);
  callbacks.onPoolReady(client, host_);
  return true;
}

void HttpConnPoolImpl::unwindConnectionStats(ActiveClient& client, bool remote) {
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

void HttpConnPoolImpl::onClientClosed(ActiveClient& client, bool was_connecting, bool had_stream) {
  // Bookkeeping first, so that callers we call below see a consistent pool.
  unwindConnectionStats(client, client.remote_closed_);
  if (was_connecting) {
    cluster_->stats().upstream_cx_connect_fail().inc();
    host_->stats().cx_connect_fail++;
  }
  if (client.idle_timer_ != nullptr) {
    client.idle_timer_->disableTimer();
  }
  ClientList& list = listFor(client.state_);
  ActiveClientPtr owned = std::move(*client.it_);
  list.erase(client.it_);
  client.state_ = ActiveClient::State::Closed;
  dispatcher_.deferredDelete(std::move(owned));

  if (had_stream && client.stream_active_) {
    if (client.remote_closed_) {
      cluster_->stats().upstream_rq_rx_reset().inc();
    }
    client.resetActiveStream(client.close_reset_reason_);
  }
  if (was_connecting) {
    // Fail the requests queued before this failure that the remaining connection attempts
    // cannot serve (Envoy purges them too). Requests queued by the callbacks (retries) wait
    // for the connections tryCreateClients() starts for them.
    const PoolFailureReason reason = client.connect_timed_out_
                                         ? PoolFailureReason::Timeout
                                         : PoolFailureReason::ConnectionFailure;
    // Envoy hands the router the connection's failure reason ("delayed connect error:
    // Connection refused", a TLS error; none for a timeout) for the response code details.
    const std::string details(client.connection_->transportFailureReason());
    size_t to_fail =
        pending_.size() > connecting_.size() ? pending_.size() - connecting_.size() : 0;
    while (to_fail-- > 0 && !pending_.empty()) {
      PendingRequestPtr request = popPending();
      // Per request, as Envoy's router reports a pool failure (a timeout too).
      Outlier::putResult(*host_, Outlier::Result::LocalOriginConnectFailed);
      request->callbacks_.onPoolFailure(reason, details, host_);
    }
  }
  tryCreateClients();
  checkDrained();
}

void HttpConnPoolImpl::onPendingCancelled(PendingRequest& request) {
  cluster_->stats().upstream_rq_cancelled().inc();
  cluster_->stats().upstream_rq_pending_active().dec();
  cluster_->resources().pending_requests--;
  // The connection being established for it stays: the next request will want it (Envoy).
  pending_.erase(request.it_);
  checkDrained();
}

HttpConnPoolImpl::PendingRequestPtr HttpConnPoolImpl::popPending() {
  PendingRequestPtr request = std::move(pending_.front());
  pending_.pop_front();
  cluster_->stats().upstream_rq_pending_active().dec();
  cluster_->resources().pending_requests--;
  return request;
}

void HttpConnPoolImpl::checkDrained() {
  if (retired_ && drained_cb_ != nullptr && drained()) {
    std::function<void()> cb = std::move(drained_cb_);
    drained_cb_ = nullptr;
    cb();
  }
}

}  // namespace Proxy::Upstream
