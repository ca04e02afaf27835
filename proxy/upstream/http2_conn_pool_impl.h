#pragma once

// The HTTP/2 connection pool of one worker to one host (Envoy's http2 ConnPoolImpl): streams
// share connections up to the stream limit (the cluster's max_concurrent_streams, or the
// server's SETTINGS_MAX_CONCURRENT_STREAMS when lower), a new connection is opened when every
// one is full, and a connection that received GOAWAY or reached max_requests_per_connection
// drains: no new stream, its streams finish, then it closes. Circuit breakers and stats are the
// HTTP/1 pool's (http_conn_pool_impl.h), plus upstream_cx_http2_total and the codec's http2.*.
// Dispatcher-thread only; never locks. Lifetime rules as the HTTP/1 pool's: connections and
// per-stream state are destroyed through deferredDelete(); a retired pool drains and then calls
// its drained callback.

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string_view>

#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/http/http2/client_connection_impl.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/conn_pool_base.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

class Http2ConnPoolImpl : public HttpConnPoolBase {
 public:
  Http2ConnPoolImpl(Event::Dispatcher& dispatcher, HostConstSharedPtr host,
                    ClusterInfoConstSharedPtr cluster);
  // Closes every connection without calling anyone back (owner or thread shutdown).
  ~Http2ConnPoolImpl() override;

  // HttpConnPool
  Cancellable* newStream(Http::ResponseDecoder& response_decoder,
                         HttpPoolCallbacks& callbacks) override;
  bool hasActiveConnections() const override;
  // Connections stop taking new streams; each closes once its streams are done (idle ones at
  // once). Connections still being established are kept for the queued requests.
  void drainConnections() override;
  // HttpConnPoolBase
  void updateHost(HostConstSharedPtr host) override;
  const HostConstSharedPtr& host() const override { return host_; }
  void retire(std::function<void()> drained_cb) override;
  bool drained() const override;

  // auto_config (mixed_conn_pool_impl.h): take a connection whose TLS handshake completed, its
  // connection stats already counted by the mixed pool's probe, as a connected one of this pool
  // (it serves the queued requests at once).
  void adoptConnection(Network::ClientConnectionPtr connection);

  // For tests and admin.
  size_t connectingCount() const { return connecting_.size(); }
  size_t readyCount() const { return ready_.size(); }
  size_t busyCount() const { return busy_.size(); }
  size_t drainingCount() const { return draining_.size(); }
  size_t pendingCount() const { return pending_.size(); }

 private:
  class ActiveClient;
  class ActiveStream;
  class PendingRequest;
  using ActiveClientPtr = std::unique_ptr<ActiveClient>;
  using ClientList = std::list<ActiveClientPtr>;
  using PendingRequestPtr = std::unique_ptr<PendingRequest>;

  class PendingRequest : public Cancellable {
   public:
    PendingRequest(Http2ConnPoolImpl& parent, Http::ResponseDecoder& decoder,
                   HttpPoolCallbacks& callbacks)
        : parent_(parent), decoder_(decoder), callbacks_(callbacks) {}
    void cancel() override { parent_.onPendingCancelled(*this); }

    Http2ConnPoolImpl& parent_;
    Http::ResponseDecoder& decoder_;
    HttpPoolCallbacks& callbacks_;
    std::list<PendingRequestPtr>::iterator it_;
  };

  // The pool's view of one stream: it stands between the codec and the caller's decoder, so
  // the pool learns when the response ended or the stream was reset. The caller talks to the
  // codec's RequestEncoder directly.
  class ActiveStream : public Http::ResponseDecoder,
                       public Http::StreamCallbacks,
                       public Event::DeferredDeletable {
   public:
    ActiveStream(ActiveClient& client, Http::ResponseDecoder& decoder)
        : client_(client), decoder_(&decoder) {}

    // Http::ResponseDecoder
    void decode100ContinueHeaders(Http::ResponseHeaderMapPtr&& headers) override;
    void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override;
    void decodeData(Buffer::Instance& data, bool end_stream) override;
    void decodeTrailers(Http::ResponseTrailerMapPtr&& trailers) override;
    // Http::StreamCallbacks
    void onResetStream(Http::StreamResetReason reason) override;
    void onAboveWriteBufferHighWatermark() override {}
    void onBelowWriteBufferLowWatermark() override {}

    // The stream is over: unwind its stats, leave the codec stream, delete it (deferred). The
    // caller then gives the slot back (ActiveClient::onStreamEnded()).
    void end(bool success);
    void unwindStats(bool success);

    ActiveClient& client_;
    Http::ResponseDecoder* decoder_;  // null once ended
    Http::RequestEncoder* encoder_ = nullptr;
    bool success_ = true;
    std::list<std::unique_ptr<ActiveStream>>::iterator it_;
  };

  // One upstream connection and its HTTP/2 codec.
  class ActiveClient : public Network::ConnectionCallbacks,
                       public Network::ReadFilter,
                       public Http::Http2::ClientConnectionCallbacks,
                       public Event::DeferredDeletable {
   public:
    enum class State { Connecting, Ready, Busy, Draining, Closed };

    // `adopted`: a connection already connected (and counted) by the mixed pool's probe.
    explicit ActiveClient(Http2ConnPoolImpl& parent,
                          Network::ClientConnectionPtr adopted = nullptr);
    ~ActiveClient() override;

    // How many more streams this connection may carry now.
    bool hasCapacity() const;
    // Start a stream for a caller on this (connected) connection.
    void attach(Http::ResponseDecoder& decoder, HttpPoolCallbacks& callbacks);
    // A stream ended: give its slot back (to a queued request, or close when draining).
    void onStreamEnded();
    // No new streams from now on; close once the last one ends.
    void startDraining();
    void close();

    // Network::ConnectionCallbacks
    void onEvent(Network::ConnectionEvent event) override;
    void onAboveWriteBufferHighWatermark() override;
    void onBelowWriteBufferLowWatermark() override;
    // Network::ReadFilter
    void onData(Buffer::Instance& data, bool end_stream) override;
    // Http::Http2::ClientConnectionCallbacks
    void onGoAway(uint32_t error_code, int32_t last_stream_id) override;
    void onMaxConcurrentStreamsChanged(uint32_t peer_max_concurrent_streams) override;

    struct CodecOutputImpl : public Http::CodecOutput {
      explicit CodecOutputImpl(ActiveClient& client) : client_(client) {}
      void write(Buffer::Instance& data, bool end_stream) override {
        client_.connection_->write(data, end_stream);
      }
      ActiveClient& client_;
    };

    Http2ConnPoolImpl& parent_;
    CodecOutputImpl codec_output_{*this};
    State state_ = State::Connecting;
    ClientList::iterator it_;
    Network::ClientConnectionPtr connection_;
    std::unique_ptr<Http::Http2::ClientConnectionImpl> codec_;
    Event::TimerPtr connect_timer_;
    // Armed while the connection carries no stream: the cluster's idle_timeout.
    Event::TimerPtr idle_timer_;
    std::list<std::unique_ptr<ActiveStream>> streams_;
    uint64_t total_streams_ = 0;
    bool connect_timed_out_ = false;
    bool remote_closed_ = false;
    bool accounted_ = true;  // connection stats not yet unwound
    bool draining_ = false;
  };

  void createClient();
  void tryCreateClients();
  bool canCreateClient() const;
  // The stream limit a new connection will have until the server's SETTINGS says otherwise.
  uint32_t configuredStreamLimit() const;
  void moveClient(ActiveClient& client, ActiveClient::State to);
  ClientList& listFor(ActiveClient::State state);
  // A connection may take streams (connected, a stream ended, SETTINGS grew): serve queued
  // requests, then file it under ready/busy/draining, or close it if draining and empty.
  void onClientCapacity(ActiveClient& client);
  // Arm the idle timer of a connection without streams (the cluster's idle_timeout, as the
  // HTTP/1 pool's); disarm it otherwise.
  void updateIdleTimer(ActiveClient& client);
  bool attachOrFail(ActiveClient& client, Http::ResponseDecoder& decoder,
                    HttpPoolCallbacks& callbacks);
  void unwindConnectionStats(ActiveClient& client, bool remote);
  void onClientClosed(ActiveClient& client, bool was_connecting);
  void onPendingCancelled(PendingRequest& request);
  PendingRequestPtr popPending();
  void checkDrained();

  Event::Dispatcher& dispatcher_;
  HostConstSharedPtr host_;
  const ClusterInfoConstSharedPtr cluster_;
  ClientList connecting_;
  ClientList ready_;     // connected, below the stream limit
  ClientList busy_;      // connected, at the stream limit
  ClientList draining_;  // GOAWAY, max requests, drain: finishing their streams
  std::list<PendingRequestPtr> pending_;
  bool retired_ = false;
  std::function<void()> drained_cb_;
};

}  // namespace Proxy::Upstream
