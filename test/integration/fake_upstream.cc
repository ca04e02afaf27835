#include "test/integration/fake_upstream.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proxy/buffer/buffer.h"
#include "proxy/common/assert.h"
#include "proxy/common/string_view.h"
#include "proxy/common/time.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/http/codec.h"
#include "proxy/http/header_map.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "proxy/network/address.h"
#include "proxy/network/connection_impl.h"
#include "proxy/network/listen_socket.h"
#include "proxy/network/tcp_listener_impl.h"
#include "test/integration/body_pattern.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

// Streamed responses are produced in slices of this size while the connection is below its
// write high watermark.
constexpr uint64_t kStreamSlice = 64 * 1024;

// A request header's numeric value, or `fallback` when absent or not a number.
uint64_t headerNumber(const Http::RequestHeaderMap& headers, std::string_view name,
                      uint64_t fallback) {
  uint64_t value = 0;
  const std::string_view text = headers.getValue(name);
  return !text.empty() && absl::SimpleAtoi(asAbsl(text), &value) ? value : fallback;
}

}  // namespace

// One downstream connection of the fake upstream: the network connection, its HTTP/1 codec,
// and the state of the one request in flight (HTTP/1: the codec holds pipelined requests back
// until the current response is done). Lives on the server thread; destroyed deferred.
class FakeConnection : public Network::ReadFilter,
                       public Network::ConnectionCallbacks,
                       public Http::CodecOutput,
                       public Http::ServerConnectionCallbacks,
                       public Http::RequestDecoder,
                       public Event::DeferredDeletable {
 public:
  FakeConnection(FakeUpstream::Server& server, const FakeUpstreamOptions& options,
                 FakeUpstream& counters, Network::ConnectionPtr connection);
  ~FakeConnection() override = default;

  Network::Connection& connection() { return *connection_; }

  // Network::ReadFilter
  void onData(Buffer::Instance& data, bool end_stream) override;
  // Network::ConnectionCallbacks
  void onEvent(Network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override {
    codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
    continueStreaming();
  }
  // Http::CodecOutput
  void write(Buffer::Instance& data, bool end_stream) override {
    connection_->write(data, end_stream);
  }
  void readDisable(bool disable) override { connection_->readDisable(disable); }
  // Http::ServerConnectionCallbacks
  Http::RequestDecoder& newStream(Http::ResponseEncoder& response_encoder) override;
  void onResponseComplete() override;
  // Http::RequestDecoder
  void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) override;
  void decodeData(Buffer::Instance& data, bool end_stream) override;
  void decodeTrailers(Http::RequestTrailerMapPtr&& trailers) override;

 private:
  void onRequestComplete();
  void respond();
  void continueStreaming();
  // x-fake-trickle-ms / x-fake-close-after-bytes: the next body byte(s), or the cut.
  void trickleStep();
  bool closed() const { return connection_->state() != Network::Connection::State::Open; }

  FakeUpstream::Server& server_;
  const FakeUpstreamOptions& options_;
  FakeUpstream& counters_;
  Network::ConnectionPtr connection_;
  Http::ServerConnectionPtr codec_;

  // The request in flight.
  Http::ResponseEncoder* encoder_ = nullptr;
  Http::RequestHeaderMapPtr request_headers_;
  Http::RequestTrailerMapPtr request_trailers_;
  uint64_t request_body_bytes_ = 0;
  Fnv1a request_body_digest_;
  Event::TimerPtr delay_timer_;
  // x-fake-trickle-ms: one body byte per tick.
  Event::TimerPtr trickle_timer_;
  std::chrono::milliseconds trickle_interval_{0};
  // x-fake-close-after-bytes: body bytes still to send before closing (UINT64_MAX: no cut).
  uint64_t close_after_bytes_ = UINT64_MAX;
  // Streaming state: body bytes still to send, and how many were sent.
  uint64_t stream_remaining_ = 0;
  uint64_t stream_offset_ = 0;
  std::string slice_;  // reused between slices
};

// The serving side: a dispatcher on its own thread, one listener, the open connections.
class FakeUpstream::Server : public Network::TcpListenerCallbacks {
 public:
  Server(FakeUpstream& parent, Network::ListenSocketPtr socket)
      : parent_(parent),
        dispatcher_(std::make_unique<Event::DispatcherImpl>(absl::StrCat("fake_", parent.name()),
                                                            time_source_)),
        socket_(std::move(socket)) {}

  Event::Dispatcher& dispatcher() { return *dispatcher_; }

  // Server thread: start accepting.
  void start() {
    listener_ = std::make_unique<Network::TcpListenerImpl>(*dispatcher_, *socket_, *this);
  }

  // Server thread: stop accepting, drop every connection, leave the loop.
  void stop() {
    listener_.reset();
    std::vector<FakeConnection*> open;
    for (const auto& entry : connections_) {
      open.push_back(entry.first);
    }
    for (FakeConnection* connection : open) {
      // close() raises LocalClose, whose handler moves the connection to deferred deletion.
      if (connections_.count(connection) != 0) {
        connection->connection().close(Network::ConnectionCloseType::NoFlush);
      }
    }
    // Whatever raised no close event (already closing) goes the same way.
    for (auto& entry : connections_) {
      parent_.active_connections_.fetch_sub(1);
      dispatcher_->deferredDelete(std::move(entry.second));
    }
    connections_.clear();
    dispatcher_->clearDeferredDeleteList();
    dispatcher_->exit();
  }

  // Network::TcpListenerCallbacks
  void onAccept(Network::IoHandle socket, const Network::Address& remote,
                const Network::Address& local) override {
    auto connection =
        std::make_unique<Network::ConnectionImpl>(*dispatcher_, std::move(socket), remote, local);
    parent_.connections_accepted_.fetch_add(1);
    parent_.active_connections_.fetch_add(1);
    auto fake =
        std::make_unique<FakeConnection>(*this, parent_.options_, parent_, std::move(connection));
    FakeConnection* key = fake.get();
    connections_.emplace(key, std::move(fake));
  }

  // Called from the connection's close event (its callback is on the stack: delete deferred).
  void onConnectionClosed(FakeConnection& connection) {
    auto it = connections_.find(&connection);
    if (it == connections_.end()) {
      return;
    }
    parent_.active_connections_.fetch_sub(1);
    dispatcher_->deferredDelete(std::move(it->second));
    connections_.erase(it);
  }

 private:
  FakeUpstream& parent_;
  RealTimeSource time_source_;
  // Declared first: destroyed last, after everything it created.
  std::unique_ptr<Event::DispatcherImpl> dispatcher_;
  Network::ListenSocketPtr socket_;
  Network::ListenerPtr listener_;
  std::map<FakeConnection*, std::unique_ptr<FakeConnection>> connections_;
};

FakeConnection::FakeConnection(FakeUpstream::Server& server, const FakeUpstreamOptions& options,
                               FakeUpstream& counters, Network::ConnectionPtr connection)
    : server_(server), options_(options), counters_(counters), connection_(std::move(connection)) {
  Http::Http1Settings settings;
  settings.enable_trailers = options.enable_trailers;
  codec_ = std::make_unique<Http::ServerConnectionImpl>(*this, *this, settings);
  connection_->addConnectionCallbacks(*this);
  connection_->setReadFilter(this);
  connection_->noDelay(true);
}

void FakeConnection::onData(Buffer::Instance& data, bool) {
  if (closed()) {
    return;
  }
  if (!codec_->dispatch(data).ok()) {
    // A fake upstream has nothing to prove about bad requests: drop the connection.
    connection_->close(Network::ConnectionCloseType::NoFlush);
  }
}

void FakeConnection::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::RemoteClose ||
      event == Network::ConnectionEvent::LocalClose) {
    if (delay_timer_ != nullptr) {
      delay_timer_->disableTimer();
    }
    if (trickle_timer_ != nullptr) {
      trickle_timer_->disableTimer();
    }
    server_.onConnectionClosed(*this);
  }
}

Http::RequestDecoder& FakeConnection::newStream(Http::ResponseEncoder& response_encoder) {
  encoder_ = &response_encoder;
  request_headers_.reset();
  request_trailers_.reset();
  request_body_bytes_ = 0;
  request_body_digest_ = Fnv1a();
  stream_remaining_ = 0;
  stream_offset_ = 0;
  return *this;
}

void FakeConnection::decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) {
  request_headers_ = std::move(headers);
  // The total first: trafficReceived() must never see more health checks than requests.
  const bool first = counters_.requests_received_.fetch_add(1) < options_.first_requests;
  if (request_headers_->getValue("user-agent") == "Envoy/HC") {
    counters_.health_checks_received_.fetch_add(1);
  }
  if (first) {
    for (const auto& [name, value] : options_.first_requests_headers) {
      request_headers_->setCopy(name, value);
    }
  }
  const bool close =
      options_.close_without_response || request_headers_->getValue("x-fake-close") == "1";
  if (close) {
    connection_->close(Network::ConnectionCloseType::NoFlush);
    return;
  }
  if (end_stream) {
    onRequestComplete();
  }
}

void FakeConnection::decodeData(Buffer::Instance& data, bool end_stream) {
  if (closed() || request_headers_ == nullptr) {
    data.drain(data.length());
    return;
  }
  // Digest slice by slice: the body is never copied or kept.
  Buffer::RawSlice slices[16];
  const size_t count = data.getRawSlices(slices, 16);
  if (count <= 16) {
    for (size_t i = 0; i < count; i++) {
      request_body_digest_.update(slices[i].mem, slices[i].len);
    }
  } else {
    const std::string copy = data.toString();
    request_body_digest_.update(copy.data(), copy.size());
  }
  request_body_bytes_ += data.length();
  data.drain(data.length());
  if (end_stream) {
    onRequestComplete();
  }
}

void FakeConnection::decodeTrailers(Http::RequestTrailerMapPtr&& trailers) {
  if (closed() || request_headers_ == nullptr) {
    return;
  }
  request_trailers_ = std::move(trailers);
  onRequestComplete();
}

void FakeConnection::onRequestComplete() {
  const int64_t delay_override = counters_.delay_override_ms_.load();
  const auto delay = std::chrono::milliseconds(headerNumber(
      *request_headers_, "x-fake-delay-ms",
      static_cast<uint64_t>(delay_override >= 0 ? delay_override : options_.delay.count())));
  if (delay.count() == 0) {
    respond();
    return;
  }
  delay_timer_ = connection_->dispatcher().createTimer([this] { respond(); });
  delay_timer_->enableTimer(delay);
}

void FakeConnection::respond() {
  if (closed()) {
    return;
  }
  const Http::RequestHeaderMap& request = *request_headers_;
  Http::ResponseHeaderMap headers;
  uint32_t status_override = counters_.status_override_.load();
  if (const uint32_t traffic = counters_.traffic_status_override_.load();
      traffic != 0 && request.getValue("user-agent") != "Envoy/HC") {
    status_override = traffic;
  }
  headers.setStatus(static_cast<uint32_t>(headerNumber(
      request, "x-fake-status", status_override != 0 ? status_override : options_.status)));
  headers.addCopy("x-upstream", options_.name);
  if (options_.echo_headers) {
    for (const Http::HeaderEntry& entry : request) {
      // ":path" -> "x-echo-path"; "x-forwarded-for" -> "x-echo-x-forwarded-for".
      const std::string_view key = std::string_view(entry.key).substr(entry.key[0] == ':');
      headers.addCopy(absl::StrCat("x-echo-", asAbsl(key)), entry.value);
    }
  }
  if (request_trailers_ != nullptr) {
    for (const Http::HeaderEntry& entry : *request_trailers_) {
      headers.addCopy(absl::StrCat("x-echo-trailer-", entry.key), entry.value);
    }
  }
  headers.addCopy("x-request-body-bytes", std::to_string(request_body_bytes_));
  headers.addCopy("x-request-body-fnv1a", request_body_digest_.hex());

  stream_remaining_ = headerNumber(request, "x-fake-response-bytes", options_.response_bytes);
  stream_offset_ = 0;
  std::string greeting;
  if (stream_remaining_ == 0) {
    greeting = absl::StrCat("hello from ", options_.name, "\npath: ", asAbsl(request.path()), "\n");
  }
  const std::string_view trailer = request.getValue("x-fake-response-trailer");
  if (trailer.empty() || stream_remaining_ > 0) {
    headers.addCopy(Http::Headers::ContentLength,
                    std::to_string(stream_remaining_ > 0 ? stream_remaining_ : greeting.size()));
  }
  counters_.responses_started_.fetch_add(1);
  encoder_->encodeHeaders(headers, /*end_stream=*/false);
  trickle_interval_ = std::chrono::milliseconds(headerNumber(request, "x-fake-trickle-ms", 0));
  close_after_bytes_ = headerNumber(request, "x-fake-close-after-bytes", UINT64_MAX);
  if (stream_remaining_ > 0 &&
      (trickle_interval_.count() > 0 || close_after_bytes_ != UINT64_MAX)) {
    trickleStep();
    return;
  }
  if (stream_remaining_ > 0) {
    continueStreaming();
    return;
  }
  Buffer::Instance body;
  body.add(greeting);
  if (trailer.empty()) {
    encoder_->encodeData(body, /*end_stream=*/true);
    return;
  }
  encoder_->encodeData(body, /*end_stream=*/false);
  const size_t eq = trailer.find('=');
  Http::ResponseTrailerMap trailers;
  trailers.addCopy(trailer.substr(0, eq),
                   eq == std::string_view::npos ? std::string_view() : trailer.substr(eq + 1));
  encoder_->encodeTrailers(trailers);
}

void FakeConnection::trickleStep() {
  if (closed()) {
    return;
  }
  if (close_after_bytes_ == 0) {
    connection_->close(Network::ConnectionCloseType::FlushWrite);
    return;
  }
  // One byte per tick when trickling; else the bytes before the cut at once.
  uint64_t n = trickle_interval_.count() > 0 ? 1 : std::min(stream_remaining_, close_after_bytes_);
  n = std::min(n, stream_remaining_);
  slice_.resize(n);
  fillPattern(stream_offset_, slice_.data(), n);
  stream_offset_ += n;
  stream_remaining_ -= n;
  if (close_after_bytes_ != UINT64_MAX) {
    close_after_bytes_ -= n;
  }
  Buffer::Instance data;
  data.add(slice_);
  encoder_->encodeData(data, /*end_stream=*/stream_remaining_ == 0);
  if (stream_remaining_ == 0) {
    return;
  }
  if (trickle_interval_.count() == 0) {
    trickleStep();  // the cut
    return;
  }
  if (trickle_timer_ == nullptr) {
    trickle_timer_ = connection_->dispatcher().createTimer([this] { trickleStep(); });
  }
  trickle_timer_->enableTimer(trickle_interval_);
}

void FakeConnection::continueStreaming() {
  // Produce only while the connection's write buffer is below its high watermark; the low
  // watermark callback resumes us. The whole body never sits in memory.
  while (stream_remaining_ > 0 && !closed() && !connection_->aboveHighWatermark()) {
    const size_t n = static_cast<size_t>(std::min(kStreamSlice, stream_remaining_));
    slice_.resize(n);
    fillPattern(stream_offset_, slice_.data(), n);
    stream_offset_ += n;
    stream_remaining_ -= n;
    Buffer::Instance data;
    data.add(slice_);
    encoder_->encodeData(data, /*end_stream=*/stream_remaining_ == 0);
  }
}

void FakeConnection::onResponseComplete() {
  // Called by the codec once the response is fully encoded. Pipelined bytes it held back are
  // re-offered by the connection when the codec re-enables reading.
  encoder_ = nullptr;
  if (codec_->closeAfterResponse()) {
    connection_->close(Network::ConnectionCloseType::FlushWrite);
  }
}

FakeUpstream::FakeUpstream(FakeUpstreamOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<FakeUpstream>> FakeUpstream::create(FakeUpstreamOptions options,
                                                                   uint32_t port) {
  absl::StatusOr<Network::Address> address = Network::Address::fromIpPort(options.address, port);
  if (!address.ok()) {
    return address.status();
  }
  // Bound on the calling thread, so the port is known (and connectable: the kernel queues
  // connections) before create() returns.
  absl::StatusOr<Network::ListenSocketPtr> socket =
      Network::ListenSocket::create(*address, /*reuse_port=*/false, /*backlog=*/1024);
  if (!socket.ok()) {
    return socket.status();
  }
  std::unique_ptr<FakeUpstream> upstream(new FakeUpstream(std::move(options)));
  upstream->port_ = (*socket)->localAddress().port();
  upstream->server_ = std::make_unique<Server>(*upstream, std::move(*socket));
  Server* server = upstream->server_.get();
  server->dispatcher().post([server] { server->start(); });
  upstream->thread_ =
      std::thread([server] { server->dispatcher().run(Event::Dispatcher::RunType::RunUntilExit); });
  return upstream;
}

FakeUpstream::~FakeUpstream() {
  if (thread_.joinable()) {
    Server* server = server_.get();
    server->dispatcher().post([server] { server->stop(); });
    thread_.join();
  }
  server_.reset();
}

testing::AssertionResult FakeUpstream::waitForConnections(uint64_t count,
                                                          std::chrono::milliseconds timeout) const {
  return waitUntil([&] { return connectionsAccepted() >= count; }, timeout,
                   absl::StrCat(options_.name, ": ", count, " connections accepted (have ",
                                connectionsAccepted(), ")"));
}

testing::AssertionResult FakeUpstream::waitForRequests(uint64_t count,
                                                       std::chrono::milliseconds timeout) const {
  return waitUntil([&] { return requestsReceived() >= count; }, timeout,
                   absl::StrCat(options_.name, ": ", count, " requests received"));
}

testing::AssertionResult FakeUpstream::waitForActiveConnections(
    int64_t count, std::chrono::milliseconds timeout) const {
  return waitUntil([&] { return activeConnections() == count; }, timeout,
                   absl::StrCat(options_.name, ": ", count, " active connections"));
}

}  // namespace Proxy::Integration
