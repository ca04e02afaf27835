#pragma once

// The HTTP/1.1 connection pool of one worker to one host (Envoy's http1 ConnPoolImpl): one
// stream per connection at a time, idle connections reused most-recently-used first, a queue of
// requests waiting for a connection, circuit breakers from the cluster. Dispatcher-thread only;
// never locks.
//
// Lifetime: connections are destroyed through deferredDelete(), so a connection whose callback
// is on the stack stays valid until the loop iteration ends. A pool that is no longer wanted
// (its host left the cluster, or the cluster was removed or replaced) is retire()d: it keeps
// serving its active streams and queued requests, closes each connection as it becomes idle,
// and calls its drained callback when nothing is left, at which point its owner deletes it.

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string_view>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/conn_pool_base.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

class HttpConnPoolImpl : public HttpConnPoolBase {
 public:
  HttpConnPoolImpl(Event::Dispatcher& dispatcher, HostConstSharedPtr host,
                   ClusterInfoConstSharedPtr cluster);
  // Closes every connection without calling anyone back (owner or thread shutdown): queued
  // requests and active streams are dropped silently, their stats unwound.
  ~HttpConnPoolImpl() override;

  // HttpConnPool
  Cancellable* newStream(Http::ResponseDecoder& response_decoder,
                         HttpPoolCallbacks& callbacks) override;
  // True while a stream is active or a request is queued.
  bool hasActiveConnections() const override;
  // Close idle connections now and busy ones when their stream ends; connections still being
  // established are kept for the queued requests. New streams get new connections.
  void drainConnections() override;

  // HttpConnPoolBase
  void updateHost(HostConstSharedPtr host) override;
  const HostConstSharedPtr& host() const override { return host_; }
  // Closes every connection as soon as it is idle.
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
  size_t pendingCount() const { return pending_.size(); }

 private:
  class ActiveClient;
  class PendingRequest;
  using ActiveClientPtr = std::unique_ptr<ActiveClient>;
  using ClientList = std::list<ActiveClientPtr>;
  using PendingRequestPtr = std::unique_ptr<PendingRequest>;

  // One queued request, waiting for a connection.
  class PendingRequest : public Cancellable {
   public:
    PendingRequest(HttpConnPoolImpl& parent, Http::ResponseDecoder& decoder,
                   HttpPoolCallbacks& callbacks)
        : parent_(parent), decoder_(decoder), callbacks_(callbacks) {}
    void cancel() override { parent_.onPendingCancelled(*this); }

    HttpConnPoolImpl& parent_;
    Http::ResponseDecoder& decoder_;
    HttpPoolCallbacks& callbacks_;
    std::list<PendingRequestPtr>::iterator it_;
  };

  // One upstream connection and its codec. It stands between the caller and the codec: the
  // caller's RequestEncoder, Stream and ResponseDecoder are this object, so the pool learns
  // when the request was fully sent and the response fully received, and owns the stream's
  // callbacks and resets (an HTTP/1 stream cannot be reset without closing the connection).
  class ActiveClient : public Network::ConnectionCallbacks,
                       public Network::ReadFilter,
                       public Http::RequestEncoder,
                       public Http::ResponseDecoder,
                       public Http::Stream,
                       public Event::DeferredDeletable {
   public:
    enum class State { Connecting, Ready, Busy, Closed };

    // `adopted`: a connection already connected (and counted) by the mixed pool's probe.
    explicit ActiveClient(HttpConnPoolImpl& parent, Network::ClientConnectionPtr adopted = nullptr);
    ~ActiveClient() override;

    // Start a stream on this (connected, idle) connection.
    void attach(Http::ResponseDecoder& decoder);
    // The stream is over (response complete, or reset): unwind its stats and state.
    void endStream();
    // The connection died with a stream on it.
    void resetActiveStream(Http::StreamResetReason reason);
    // Close now (NoFlush); the pool hears of it through onEvent(LocalClose).
    void close();

    // Network::ConnectionCallbacks
    void onEvent(Network::ConnectionEvent event) override;
    void onAboveWriteBufferHighWatermark() override;
    void onBelowWriteBufferLowWatermark() override;
    // Network::ReadFilter
    void onData(Buffer::Instance& data, bool end_stream) override;
    // Http::RequestEncoder
    void encodeHeaders(const Http::RequestHeaderMap& headers, bool end_stream) override;
    void encodeData(Buffer::Instance& data, bool end_stream) override;
    void encodeTrailers(const Http::RequestTrailerMap& trailers) override;
    Http::Stream& getStream() override { return *this; }
    // Http::ResponseDecoder
    void decode100ContinueHeaders(Http::ResponseHeaderMapPtr&& headers) override;
    void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override;
    void decodeData(Buffer::Instance& data, bool end_stream) override;
    void decodeTrailers(Http::ResponseTrailerMapPtr&& trailers) override;
    // Http::Stream
    void addCallbacks(Http::StreamCallbacks& callbacks) override;
    void removeCallbacks(Http::StreamCallbacks& callbacks) override;
    void resetStream(Http::StreamResetReason reason) override;
    void readDisable(bool disable) override;

    // The codec's bytes go straight to the connection. A separate object because the codec's
    // readDisable() (its own, e.g. while it holds bytes) is not the stream's, which we count
    // per stream.
    struct CodecOutputImpl : public Http::CodecOutput {
      explicit CodecOutputImpl(ActiveClient& client) : client_(client) {}
      void write(Buffer::Instance& data, bool end_stream) override {
        client_.connection_->write(data, end_stream);
      }
      void readDisable(bool disable) override { client_.connection_->readDisable(disable); }
      ActiveClient& client_;
    };

    HttpConnPoolImpl& parent_;
    CodecOutputImpl codec_output_{*this};
    State state_ = State::Connecting;
    ClientList::iterator it_;  // in the parent's list for state_
    Network::ClientConnectionPtr connection_;
    Http::ClientConnectionPtr codec_;
    Event::TimerPtr connect_timer_;
    // Armed while the connection is Ready (no stream): the cluster's idle_timeout.
    Event::TimerPtr idle_timer_;
    bool connect_timed_out_ = false;
    bool remote_closed_ = false;
    // How a stream cut short by the remote close ends (the codec judges: a response begun and
    // unfinished is a protocol error, as Envoy).
    Http::StreamResetReason close_reset_reason_ = Http::StreamResetReason::ConnectionTermination;
    // The connection is closing: a response the codec completes now is not recycled.
    bool closing_ = false;
    // Stats unwound (closed); the destructor must not unwind them again.
    bool accounted_ = true;
    uint64_t stream_count_ = 0;
    // Close instead of reuse when the current stream ends (drain, max requests, early reply).
    bool close_after_stream_ = false;
    bool max_requests_reached_ = false;

    // The current stream, if any.
    bool stream_active_ = false;
    Http::ResponseDecoder* decoder_ = nullptr;
    Http::RequestEncoder* codec_encoder_ = nullptr;
    // Null entries are callbacks removed while the list was being walked; the vector keeps its
    // capacity from stream to stream.
    std::vector<Http::StreamCallbacks*> stream_callbacks_;
    bool request_complete_ = false;
    uint32_t stream_read_disables_ = 0;
    bool response_success_ = true;  // not a 5xx
    // Inside codec_->dispatch(): a completed response is recycled only after dispatch returns,
    // so the next stream never starts while the codec is still parsing the previous one.
    bool dispatching_ = false;
    bool recycle_after_dispatch_ = false;

   private:
    void onResponseComplete();
    // Back to the pool, or closed when it must not be reused.
    void recycle();
    void runResetCallbacks(Http::StreamResetReason reason);
  };

  void createClient();
  // Create connections while queued requests outnumber connections being established.
  void tryCreateClients();
  bool canCreateClient() const;
  void moveClient(ActiveClient& client, ActiveClient::State to);
  ClientList& listFor(ActiveClient::State state);
  // A connection became idle (connected, or its stream ended): serve the next queued request,
  // or park it; a retired pool closes it instead.
  void onClientIdle(ActiveClient& client);
  // Start a stream on `client` for a caller, or fail it with Overflow (max_requests).
  bool attachOrFail(ActiveClient& client, Http::ResponseDecoder& decoder,
                    HttpPoolCallbacks& callbacks);
  void unwindConnectionStats(ActiveClient& client, bool remote);
  void onClientClosed(ActiveClient& client, bool was_connecting, bool had_stream);
  void onPendingCancelled(PendingRequest& request);
  PendingRequestPtr popPending();
  void checkDrained();

  Event::Dispatcher& dispatcher_;
  HostConstSharedPtr host_;
  const ClusterInfoConstSharedPtr cluster_;
  ClientList connecting_;
  ClientList ready_;  // front = most recently used (warmest)
  ClientList busy_;
  std::list<PendingRequestPtr> pending_;
  bool retired_ = false;
  std::function<void()> drained_cb_;
};

using HttpConnPoolImplPtr = std::unique_ptr<HttpConnPoolImpl>;

}  // namespace Proxy::Upstream
