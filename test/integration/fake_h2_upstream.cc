#include "test/integration/fake_h2_upstream.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proxy/buffer/buffer.h"
#include "proxy/common/time.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/network/address.h"
#include "proxy/network/connection_impl.h"
#include "proxy/network/listen_socket.h"
#include "proxy/network/tcp_listener_impl.h"
#include "proxy/stats/stats.h"
#include "proxy/tls/context_impl.h"
#include "proxy/tls/ssl_socket.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {

// One accepted connection: an nghttp2 server session fed by the connection's reads.
class H2Connection : public Network::ReadFilter,
                     public Network::ConnectionCallbacks,
                     public Event::DeferredDeletable {
 public:
  H2Connection(FakeH2Upstream::Server& server, FakeH2Upstream& parent,
               Network::ConnectionPtr connection);
  ~H2Connection() override {
    timers_.clear();
    nghttp2_session_del(session_);
  }

  Network::Connection& connection() { return *connection_; }
  void goAway();

  // Network::ReadFilter
  void onData(Buffer::Instance& data, bool) override;
  // Network::ConnectionCallbacks
  void onEvent(Network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override {}

 private:
  struct Stream {
    std::map<std::string, std::string> headers;
    uint64_t body_bytes = 0;
    std::string response_body;
    size_t offset = 0;
  };

  void flush();
  void onRequestComplete(int32_t stream_id);
  void respond(int32_t stream_id);

  FakeH2Upstream::Server& server_;
  FakeH2Upstream& parent_;
  Network::ConnectionPtr connection_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  std::map<int32_t, Event::TimerPtr> timers_;
  bool going_away_ = false;
  bool closed_ = false;
};

class FakeH2Upstream::Server : public Network::TcpListenerCallbacks {
 public:
  Server(FakeH2Upstream& parent, Network::ListenSocketPtr socket)
      : parent_(parent),
        dispatcher_(std::make_unique<Event::DispatcherImpl>(
            absl::StrCat("fake_", parent.options_.name), time_source_)),
        socket_(std::move(socket)) {}

  Event::Dispatcher& dispatcher() { return *dispatcher_; }
  // The TLS context when the options ask for TLS (before start()).
  absl::Status initTls() {
    const FakeH2UpstreamOptions& options = parent_.options_;
    if (options.tls_cert_file.empty()) {
      return absl::OkStatus();
    }
    envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext proto;
    auto* common = proto.mutable_common_tls_context();
    auto* certificate = common->add_tls_certificates();
    certificate->mutable_certificate_chain()->set_filename(options.tls_cert_file);
    certificate->mutable_private_key()->set_filename(options.tls_key_file);
    common->add_alpn_protocols("h2");
    absl::StatusOr<std::shared_ptr<Tls::ContextImpl>> context =
        Tls::ContextImpl::createServer(proto);
    if (!context.ok()) {
      return context.status();
    }
    (*context)->initStats(Stats::Scope(stats_, "fake_h2_upstream."));
    tls_context_ = *std::move(context);
    return absl::OkStatus();
  }
  void start() {
    listener_ = std::make_unique<Network::TcpListenerImpl>(*dispatcher_, *socket_, *this);
  }
  void stop() {
    listener_.reset();
    std::vector<H2Connection*> open;
    for (const auto& entry : connections_) {
      open.push_back(entry.first);
    }
    for (H2Connection* connection : open) {
      if (connections_.count(connection) != 0) {
        connection->connection().close(Network::ConnectionCloseType::NoFlush);
      }
    }
    for (auto& entry : connections_) {
      parent_.active_connections_.fetch_sub(1);
      dispatcher_->deferredDelete(std::move(entry.second));
    }
    connections_.clear();
    dispatcher_->clearDeferredDeleteList();
    dispatcher_->exit();
  }
  void goAwayAll() {
    for (auto& entry : connections_) {
      entry.first->goAway();
    }
  }

  void onAccept(Network::IoHandle socket, const Network::Address& remote,
                const Network::Address& local) override {
    Network::TransportSocketPtr transport;
    if (tls_context_ != nullptr) {
      transport = std::make_unique<Tls::SslSocket>(tls_context_);
    }
    auto connection = std::make_unique<Network::ConnectionImpl>(
        *dispatcher_, std::move(socket), remote, local, std::move(transport));
    parent_.connections_accepted_.fetch_add(1);
    parent_.active_connections_.fetch_add(1);
    auto h2 = std::make_unique<H2Connection>(*this, parent_, std::move(connection));
    H2Connection* key = h2.get();
    connections_.emplace(key, std::move(h2));
  }
  void onConnectionClosed(H2Connection& connection) {
    auto it = connections_.find(&connection);
    if (it == connections_.end()) {
      return;
    }
    parent_.active_connections_.fetch_sub(1);
    dispatcher_->deferredDelete(std::move(it->second));
    connections_.erase(it);
  }
  const FakeH2UpstreamOptions& options() const { return parent_.options_; }

 private:
  FakeH2Upstream& parent_;
  Stats::Store stats_;
  std::shared_ptr<Tls::ContextImpl> tls_context_;
  RealTimeSource time_source_;
  std::unique_ptr<Event::DispatcherImpl> dispatcher_;
  Network::ListenSocketPtr socket_;
  Network::ListenerPtr listener_;
  std::map<H2Connection*, std::unique_ptr<H2Connection>> connections_;
};

H2Connection::H2Connection(FakeH2Upstream::Server& server, FakeH2Upstream& parent,
                           Network::ConnectionPtr connection)
    : server_(server), parent_(parent), connection_(std::move(connection)) {
  connection_->addConnectionCallbacks(*this);
  connection_->setReadFilter(this);
  connection_->noDelay(true);

  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* frame, void* user) {
        auto* self = static_cast<H2Connection*>(user);
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          self->streams_[frame->hd.stream_id] = Stream();
          const uint64_t open = self->streams_.size();
          uint64_t peak = self->parent_.peak_streams_.load();
          while (open > peak && !self->parent_.peak_streams_.compare_exchange_weak(peak, open)) {
          }
        }
        return 0;
      });
  nghttp2_session_callbacks_set_on_header_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* user) {
        auto* self = static_cast<H2Connection*>(user);
        auto it = self->streams_.find(frame->hd.stream_id);
        if (it != self->streams_.end()) {
          it->second.headers[std::string(reinterpret_cast<const char*>(name), namelen)] =
              std::string(reinterpret_cast<const char*>(value), valuelen);
        }
        return 0;
      });
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cbs,
      [](nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t*, size_t len, void* user) {
        auto* self = static_cast<H2Connection*>(user);
        auto it = self->streams_.find(stream_id);
        if (it != self->streams_.end()) {
          it->second.body_bytes += len;
        }
        return 0;
      });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      cbs, [](nghttp2_session* session, const nghttp2_frame* frame, void* user) {
        auto* self = static_cast<H2Connection*>(user);
        if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 &&
            self->streams_.count(frame->hd.stream_id) != 0) {
          self->onRequestComplete(frame->hd.stream_id);
        }
        if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 &&
            self->going_away_) {
          // A round trip after the notice: every stream the client opened before it saw the
          // notice has arrived. Now the final GOAWAY names the last one.
          nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE,
                                nghttp2_session_get_last_proc_stream_id(session), NGHTTP2_NO_ERROR,
                                nullptr, 0);
          self->parent_.goaways_sent_.fetch_add(1);
        }
        return 0;
      });
  nghttp2_session_callbacks_set_on_stream_close_callback(
      cbs, [](nghttp2_session*, int32_t stream_id, uint32_t, void* user) {
        auto* self = static_cast<H2Connection*>(user);
        self->streams_.erase(stream_id);
        self->timers_.erase(stream_id);
        return 0;
      });
  nghttp2_session_server_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  std::vector<nghttp2_settings_entry> iv;
  if (server_.options().max_concurrent_streams != 0) {
    iv.push_back(
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_.options().max_concurrent_streams});
  }
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  flush();
}

void H2Connection::onData(Buffer::Instance& data, bool) {
  if (closed_) {
    data.drain(data.length());
    return;
  }
  const std::string bytes = data.toString();
  data.drain(data.length());
  const ssize_t rc = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rc < 0) {
    connection_->close(Network::ConnectionCloseType::NoFlush);
    return;
  }
  flush();
}

void H2Connection::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::RemoteClose ||
      event == Network::ConnectionEvent::LocalClose) {
    closed_ = true;
    timers_.clear();
    server_.onConnectionClosed(*this);
  }
}

void H2Connection::goAway() {
  if (going_away_ || closed_) {
    return;
  }
  going_away_ = true;
  nghttp2_submit_shutdown_notice(session_);
  parent_.goaways_sent_.fetch_add(1);
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
  flush();
}

void H2Connection::flush() {
  if (closed_) {
    return;
  }
  const uint8_t* out;
  ssize_t n;
  Buffer::Instance buffer;
  while ((n = nghttp2_session_mem_send(session_, &out)) > 0) {
    buffer.add(out, static_cast<size_t>(n));
  }
  if (buffer.length() > 0) {
    connection_->write(buffer, false);
  }
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    // After the final GOAWAY, once the last stream finished.
    connection_->close(Network::ConnectionCloseType::FlushWrite);
  }
}

void H2Connection::onRequestComplete(int32_t stream_id) {
  parent_.requests_received_.fetch_add(1);
  Stream& stream = streams_[stream_id];
  uint64_t delay_ms = 0;
  auto delay = stream.headers.find("x-fake-delay-ms");
  if (delay != stream.headers.end() && absl::SimpleAtoi(delay->second, &delay_ms) && delay_ms > 0) {
    Event::TimerPtr& timer = timers_[stream_id];
    timer = connection_->dispatcher().createTimer([this, stream_id] {
      respond(stream_id);
      flush();
    });
    timer->enableTimer(std::chrono::milliseconds(delay_ms));
    return;
  }
  respond(stream_id);
}

void H2Connection::respond(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    return;
  }
  Stream& stream = it->second;
  const std::string status =
      stream.headers.count("x-fake-status") != 0 ? stream.headers["x-fake-status"] : "200";
  const std::string name = server_.options().name;
  const std::string body_bytes = std::to_string(stream.body_bytes);
  const std::string protocol = "HTTP/2";
  stream.response_body =
      absl::StrCat("hello from ", name, "\npath: ", stream.headers[":path"], "\n");
  auto nv = [](const std::string& k, const std::string& v) {
    return nghttp2_nv{(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  const std::string k_status = ":status", k_upstream = "x-upstream",
                    k_bytes = "x-request-body-bytes", k_protocol = "x-upstream-protocol",
                    k_alpn = "x-upstream-alpn";
  const std::string alpn(connection_->nextProtocol());
  std::vector<nghttp2_nv> nva = {nv(k_status, status), nv(k_upstream, name),
                                 nv(k_bytes, body_bytes), nv(k_protocol, protocol)};
  if (!server_.options().tls_cert_file.empty()) {
    nva.push_back(nv(k_alpn, alpn));
  }
  nghttp2_data_provider provider;
  provider.source.ptr = &stream;
  provider.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                              uint32_t* flags, nghttp2_data_source* source, void*) -> ssize_t {
    auto* s = static_cast<Stream*>(source->ptr);
    const size_t n = std::min(length, s->response_body.size() - s->offset);
    memcpy(buf, s->response_body.data() + s->offset, n);
    s->offset += n;
    if (s->offset == s->response_body.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  };
  nghttp2_submit_response(session_, stream_id, nva.data(), nva.size(), &provider);
}

// ---- FakeH2Upstream ----

FakeH2Upstream::FakeH2Upstream(FakeH2UpstreamOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<FakeH2Upstream>> FakeH2Upstream::create(
    FakeH2UpstreamOptions options) {
  absl::StatusOr<Network::Address> address = Network::Address::fromIpPort("127.0.0.1", 0);
  if (!address.ok()) {
    return address.status();
  }
  absl::StatusOr<Network::ListenSocketPtr> socket =
      Network::ListenSocket::create(*address, /*reuse_port=*/false, /*backlog=*/1024);
  if (!socket.ok()) {
    return socket.status();
  }
  std::unique_ptr<FakeH2Upstream> upstream(new FakeH2Upstream(std::move(options)));
  upstream->port_ = (*socket)->localAddress().port();
  upstream->server_ = std::make_unique<Server>(*upstream, std::move(*socket));
  Server* server = upstream->server_.get();
  if (absl::Status tls = server->initTls(); !tls.ok()) {
    return tls;
  }
  server->dispatcher().post([server] { server->start(); });
  upstream->thread_ =
      std::thread([server] { server->dispatcher().run(Event::Dispatcher::RunType::RunUntilExit); });
  return upstream;
}

FakeH2Upstream::~FakeH2Upstream() {
  if (thread_.joinable()) {
    Server* server = server_.get();
    server->dispatcher().post([server] { server->stop(); });
    thread_.join();
  }
  server_.reset();
}

void FakeH2Upstream::goAwayAll() {
  Server* server = server_.get();
  server->dispatcher().post([server] { server->goAwayAll(); });
}

testing::AssertionResult FakeH2Upstream::waitForRequests(uint64_t count,
                                                         std::chrono::milliseconds timeout) const {
  return waitUntil([&] { return requestsReceived() >= count; }, timeout,
                   absl::StrCat(options_.name, ": ", count, " requests received (have ",
                                requestsReceived(), ")"));
}

}  // namespace Proxy::Integration
