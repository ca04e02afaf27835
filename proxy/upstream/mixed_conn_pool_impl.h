#pragma once

// The connection pool of an auto_config cluster to one host (Envoy's HttpConnPoolImplMixed):
// the TLS ClientHello offers ALPN "h2" and "http/1.1", and the protocol the first connection
// negotiates (Http::chooseClientProtocol) picks the pool that serves this host from then on:
// the HTTP/2 pool (streams multiplexed) or the HTTP/1.1 pool (one stream per connection,
// keep-alive), each with the cluster's auto_config options for its protocol.
//
// That first connection, the probe, is this pool's own: it is counted as the pools count a
// connection (upstream_cx_total, _active, circuit breaker max_connections, connect timeout,
// upstream_cx_connect_fail), the requests that arrive meanwhile wait on it (pending stats and
// max_pending_requests as a pool's queue), and once its handshake is done it is handed,
// connected, to the chosen pool (adoptConnection), which counts upstream_cx_http1_total or
// upstream_cx_http2_total and serves the waiting requests at once; further connections are the
// chosen pool's. A probe that fails fails the requests waiting on it, as a pool's connection
// does (their callers may retry), and the next request starts a new probe. Unlike Envoy, which
// reads ALPN on every connection, the protocol is learned once per pool: later connections are
// expected to negotiate the same. Dispatcher-thread only; never locks.

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string_view>

#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/http/protocol.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/conn_pool_base.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

class MixedConnPoolImpl : public HttpConnPoolBase {
 public:
  MixedConnPoolImpl(Event::Dispatcher& dispatcher, HostConstSharedPtr host,
                    ClusterInfoConstSharedPtr cluster);
  // Closes the probe and the chosen pool's connections without calling anyone back.
  ~MixedConnPoolImpl() override;

  // HttpConnPool
  Cancellable* newStream(Http::ResponseDecoder& response_decoder,
                         HttpPoolCallbacks& callbacks) override;
  bool hasActiveConnections() const override;
  // The chosen pool drains; a probe still connecting is kept for the requests waiting on it.
  void drainConnections() override;
  // HttpConnPoolBase
  void updateHost(HostConstSharedPtr host) override;
  const HostConstSharedPtr& host() const override { return host_; }
  void retire(std::function<void()> drained_cb) override;
  bool drained() const override;

  // The protocol the first connection negotiated; nullopt until then. For tests and admin.
  std::optional<Http::Protocol> protocol() const { return protocol_; }

 private:
  class Probe;
  class PendingRequest;
  using PendingList = std::list<std::unique_ptr<PendingRequest>>;

  void startProbe();
  // The probe's handshake is done: learn the protocol, create that pool, give it the
  // connection and the waiting requests.
  void onProbeConnected();
  // The probe closed before its handshake completed: fail the requests waiting on it.
  void onProbeFailed(bool timed_out);
  void onPendingCancelled(PendingRequest& request);
  // `request` has been answered by the chosen pool (ready or failure): forget it.
  void onForwardedDone(PendingRequest& request);
  void unwindPendingStats();
  void checkDrained();

  Event::Dispatcher& dispatcher_;
  HostConstSharedPtr host_;
  const ClusterInfoConstSharedPtr cluster_;
  std::optional<Http::Protocol> protocol_;
  std::unique_ptr<Probe> probe_;
  PendingList waiting_;       // on the probe
  PendingList forwarded_;     // queued in the chosen pool, their callbacks still ours to relay
  HttpConnPoolBasePtr pool_;  // the chosen pool, once the protocol is known
  bool retired_ = false;
  std::function<void()> drained_cb_;
};

}  // namespace Proxy::Upstream
