// Envoy's HTTP health checker: "GET <path>" with Host <host or cluster name> and user-agent
// Envoy/HC over an HTTP/1.1 connection of its own (not the workers' pools, not counted in the
// cluster's upstream_* stats), reused between checks unless reuse_connection is false or the
// upstream asks to close. The status decides: expected_statuses pass, retriable_statuses count
// toward unhealthy_threshold, any other status fails the host at once; a connection that fails
// or closes mid-check is a network failure.

#include "proxy/buffer/buffer.h"
#include "proxy/common/assert.h"
#include "proxy/http/http1/client_connection_impl.h"
#include "proxy/network/connection_impl.h"
#include "proxy/upstream/health_checker_impl.h"

namespace Proxy::Upstream {

namespace {

using HeaderValueOption = envoy::config::core::v3::HeaderValueOption;

bool inRanges(const std::vector<std::pair<int64_t, int64_t>>& ranges, uint64_t status) {
  for (const auto& [start, end] : ranges) {
    if (static_cast<int64_t>(status) >= start && static_cast<int64_t>(status) < end) {
      return true;
    }
  }
  return false;
}

Network::Address checkAddress(const Host& host, const HealthCheckConfig& config) {
  if (!config.alt_port.has_value()) {
    return host.address();
  }
  absl::StatusOr<Network::Address> address =
      Network::Address::fromIpPort(host.address().ip(), *config.alt_port);
  return address.ok() ? *address : host.address();
}

class HttpHealthCheckerImpl : public HealthCheckerImplBase {
 public:
  using HealthCheckerImplBase::HealthCheckerImplBase;

 private:
  class HttpSession : public Session,
                      public Network::ConnectionCallbacks,
                      public Network::ReadFilter,
                      public Http::ResponseDecoder,
                      public Http::StreamCallbacks,
                      public Http::CodecOutput {
   public:
    HttpSession(HttpHealthCheckerImpl& parent, HostConstSharedPtr host)
        : Session(parent, std::move(host)) {}
    ~HttpSession() override { closeClient(); }

    // Session
    void onInterval() override;
    void onTimeout() override;
    // Network::ConnectionCallbacks
    void onEvent(Network::ConnectionEvent event) override;
    // Network::ReadFilter
    void onData(Buffer::Instance& data, bool end_stream) override;
    // Http::ResponseDecoder
    void decode100ContinueHeaders(Http::ResponseHeaderMapPtr&&) override {}
    void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override;
    void decodeData(Buffer::Instance& data, bool end_stream) override;
    void decodeTrailers(Http::ResponseTrailerMapPtr&&) override { onResponseComplete(); }
    // Http::StreamCallbacks
    void onResetStream(Http::StreamResetReason) override;
    void onAboveWriteBufferHighWatermark() override {}
    void onBelowWriteBufferLowWatermark() override {}
    // Http::CodecOutput
    void write(Buffer::Instance& data, bool end_stream) override {
      client_->connection->write(data, end_stream);
    }

   private:
    // The connection and its codec, deleted together (deferred: a callback of either may be
    // on the stack when the connection closes).
    struct Client : public Event::DeferredDeletable {
      Network::ClientConnectionPtr connection;
      std::unique_ptr<Http::ClientConnectionImpl> codec;
    };

    void sendRequest();
    void onResponseComplete();
    // Close without reporting anything (the caller already did, or nobody needs to know).
    void closeClient();
    const HealthCheckConfig& config() const { return parent_.config(); }

    std::unique_ptr<Client> client_;
    bool connected_ = false;
    bool request_in_flight_ = false;
    bool request_sent_ = false;
    uint64_t status_ = 0;
  };

  SessionPtr createSession(HostConstSharedPtr host) override {
    return std::make_unique<HttpSession>(*this, std::move(host));
  }
};

void HttpHealthCheckerImpl::HttpSession::onInterval() {
  if (client_ == nullptr) {
    client_ = std::make_unique<Client>();
    // The cluster's transport socket (TLS when it has one), as Envoy's checkers use.
    client_->connection = std::make_unique<Network::ClientConnectionImpl>(
        parent_.dispatcher(), checkAddress(*host_, config()),
        parent_.cluster().createTransportSocket());
    client_->connection->noDelay(true);
    client_->connection->addConnectionCallbacks(*this);
    client_->connection->setReadFilter(this);
    client_->codec = std::make_unique<Http::ClientConnectionImpl>(*this, Http::Http1Settings());
    connected_ = false;
    client_->connection->connect();
  }
  request_in_flight_ = true;
  request_sent_ = false;
  status_ = 0;
  if (connected_) {
    sendRequest();
  }
}

void HttpHealthCheckerImpl::HttpSession::sendRequest() {
  request_sent_ = true;
  Http::RequestHeaderMap headers;
  headers.addCopy(Http::Headers::Method, config().method);
  headers.addCopy(Http::Headers::Path, config().path);
  headers.addCopy(Http::Headers::Authority,
                  config().host.empty() ? parent_.cluster().name() : config().host);
  headers.addCopy(Http::Headers::UserAgent, "Envoy/HC");
  for (const HealthCheckConfig::HeaderToAdd& add : config().request_headers_to_add) {
    switch (add.action) {
      case HeaderValueOption::ADD_IF_ABSENT:
        if (!headers.has(add.key)) {
          headers.addCopy(add.key, add.value);
        }
        break;
      case HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD:
        headers.setCopy(add.key, add.value);
        break;
      case HeaderValueOption::OVERWRITE_IF_EXISTS:
        if (headers.has(add.key)) {
          headers.setCopy(add.key, add.value);
        }
        break;
      default:
        headers.addCopy(add.key, add.value);
        break;
    }
  }
  Http::RequestEncoder& encoder = client_->codec->newStream(*this);
  encoder.getStream().addCallbacks(*this);
  encoder.encodeHeaders(headers, /*end_stream=*/true);
}

void HttpHealthCheckerImpl::HttpSession::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::Connected) {
    connected_ = true;
    if (request_in_flight_ && !request_sent_) {
      sendRequest();
    }
    return;
  }
  // Closed. A response delimited by the close completes now.
  if (request_in_flight_ && request_sent_ && client_ != nullptr) {
    client_->codec->onConnectionClose();
  }
  closeClient();
  if (request_in_flight_) {
    request_in_flight_ = false;
    handleFailure(FailureType::Network);
  }
}

void HttpHealthCheckerImpl::HttpSession::onData(Buffer::Instance& data, bool) {
  if (client_ == nullptr || !request_in_flight_) {
    // Bytes nobody asked for: this connection cannot be trusted for the next check.
    data.drain(data.length());
    closeClient();
    return;
  }
  const absl::Status status = client_->codec->dispatch(data);
  if (!status.ok() && client_ != nullptr) {
    closeClient();
    if (request_in_flight_) {
      request_in_flight_ = false;
      handleFailure(FailureType::Network);
    }
  }
}

void HttpHealthCheckerImpl::HttpSession::decodeHeaders(Http::ResponseHeaderMapPtr&& headers,
                                                       bool end_stream) {
  status_ = headers->status();
  if (end_stream) {
    onResponseComplete();
  }
}

void HttpHealthCheckerImpl::HttpSession::decodeData(Buffer::Instance& data, bool end_stream) {
  data.drain(data.length());
  if (end_stream) {
    onResponseComplete();
  }
}

void HttpHealthCheckerImpl::HttpSession::onResetStream(Http::StreamResetReason) {
  // The codec gave up on the response (protocol error, or the connection closed early).
  if (request_in_flight_) {
    closeClient();
    request_in_flight_ = false;
    handleFailure(FailureType::Network);
  }
}

void HttpHealthCheckerImpl::HttpSession::onResponseComplete() {
  if (!request_in_flight_) {
    return;
  }
  request_in_flight_ = false;
  const bool close =
      !config().reuse_connection || client_ == nullptr || client_->codec->remoteWantsClose();
  if (close) {
    closeClient();
  }
  if (inRanges(config().expected_statuses, status_)) {
    handleSuccess();
  } else {
    handleFailure(FailureType::Active, inRanges(config().retriable_statuses, status_));
  }
}

void HttpHealthCheckerImpl::HttpSession::onTimeout() {
  // The base counts the timeout; the connection cannot be reused for the next check.
  request_in_flight_ = false;
  closeClient();
}

void HttpHealthCheckerImpl::HttpSession::closeClient() {
  if (client_ == nullptr) {
    return;
  }
  connected_ = false;
  closeHealthCheckClient(client_, *this, parent_.dispatcher());
}

}  // namespace

HealthCheckerPtr createHttpHealthChecker(Event::Dispatcher& dispatcher,
                                         const HealthCheckConfig& config,
                                         std::shared_ptr<const ClusterInfoImpl> cluster,
                                         HealthChecker::HealthChangedCb changed,
                                         HealthChecker::InitialRoundDoneCb initial_round_done) {
  return std::make_unique<HttpHealthCheckerImpl>(dispatcher, config, std::move(cluster),
                                                 std::move(changed), std::move(initial_round_done));
}

}  // namespace Proxy::Upstream
