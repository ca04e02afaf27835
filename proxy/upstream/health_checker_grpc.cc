// Envoy's gRPC health checker: grpc.health.v1.Health/Check over an HTTP/2 connection of its own
// (h2c, prior knowledge, as Envoy's checker always speaks HTTP/2), reused between checks unless
// reuse_connection is false or the server sent GOAWAY. The host passes when the call ends with
// :status 200, grpc-status 0 and a HealthCheckResponse whose status is SERVING; any other
// answer fails it at once (an active failure); a connection or stream that dies mid-check is a
// network failure.

#include "proxy/buffer/buffer.h"
#include "proxy/common/assert.h"
#include "proxy/http/http2/client_connection_impl.h"
#include "proxy/network/connection_impl.h"
#include "proxy/upstream/health_checker_impl.h"

namespace Proxy::Upstream {

namespace {

constexpr char kCheckPath[] = "/grpc.health.v1.Health/Check";
constexpr uint64_t kMaxResponseBytes = 64 * 1024;

// HealthCheckRequest { string service = 1; } in a gRPC frame (no compression, 4-byte length).
std::string requestFrame(const std::string& service) {
  std::string message;
  if (!service.empty()) {
    message.push_back(0x0a);  // field 1, length-delimited
    uint64_t length = service.size();
    while (length >= 0x80) {
      message.push_back(static_cast<char>((length & 0x7f) | 0x80));
      length >>= 7;
    }
    message.push_back(static_cast<char>(length));
    message += service;
  }
  std::string frame(5, '\0');
  const uint32_t size = static_cast<uint32_t>(message.size());
  frame[1] = static_cast<char>(size >> 24);
  frame[2] = static_cast<char>(size >> 16);
  frame[3] = static_cast<char>(size >> 8);
  frame[4] = static_cast<char>(size);
  return frame + message;
}

// HealthCheckResponse.status (field 1, varint) from one uncompressed gRPC frame; -1 when the
// bytes are not that.
int64_t responseStatus(const std::string& body) {
  if (body.size() < 5 || body[0] != 0) {
    return -1;
  }
  const uint32_t size = (static_cast<uint32_t>(static_cast<uint8_t>(body[1])) << 24) |
                        (static_cast<uint32_t>(static_cast<uint8_t>(body[2])) << 16) |
                        (static_cast<uint32_t>(static_cast<uint8_t>(body[3])) << 8) |
                        static_cast<uint32_t>(static_cast<uint8_t>(body[4]));
  if (body.size() != 5 + static_cast<size_t>(size)) {
    return -1;
  }
  int64_t status = 0;  // proto3: an absent field is UNKNOWN (0)
  size_t i = 5;
  while (i < body.size()) {
    const uint8_t tag = static_cast<uint8_t>(body[i++]);
    if ((tag & 0x07) != 0) {
      return -1;  // HealthCheckResponse has only the varint field
    }
    uint64_t value = 0;
    for (int shift = 0; i < body.size() && shift < 64; shift += 7) {
      const uint8_t byte = static_cast<uint8_t>(body[i++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        break;
      }
    }
    if ((tag >> 3) == 1) {
      status = static_cast<int64_t>(value);
    }
  }
  return status;
}

class GrpcHealthCheckerImpl : public HealthCheckerImplBase {
 public:
  GrpcHealthCheckerImpl(Event::Dispatcher& dispatcher, const HealthCheckConfig& config,
                        std::shared_ptr<const ClusterInfoImpl> cluster, HealthChangedCb changed,
                        InitialRoundDoneCb initial_round_done)
      : HealthCheckerImplBase(dispatcher, config, cluster, std::move(changed),
                              std::move(initial_round_done)),
        codec_stats_(cluster->statsScope().child("http2")) {}

 private:
  class GrpcSession : public Session,
                      public Network::ConnectionCallbacks,
                      public Network::ReadFilter,
                      public Http::ResponseDecoder,
                      public Http::StreamCallbacks,
                      public Http::CodecOutput,
                      public Http::Http2::ClientConnectionCallbacks {
   public:
    GrpcSession(GrpcHealthCheckerImpl& parent, HostConstSharedPtr host)
        : Session(parent, std::move(host)), checker_(parent) {}
    ~GrpcSession() override { closeClient(); }

    // Session
    void onInterval() override;
    void onTimeout() override {
      request_in_flight_ = false;
      closeClient();
    }
    // Network::ConnectionCallbacks
    void onEvent(Network::ConnectionEvent event) override;
    // Network::ReadFilter
    void onData(Buffer::Instance& data, bool end_stream) override;
    // Http::ResponseDecoder
    void decode100ContinueHeaders(Http::ResponseHeaderMapPtr&&) override {}
    void decodeHeaders(Http::ResponseHeaderMapPtr&& headers, bool end_stream) override;
    void decodeData(Buffer::Instance& data, bool end_stream) override;
    void decodeTrailers(Http::ResponseTrailerMapPtr&& trailers) override;
    // Http::StreamCallbacks
    void onResetStream(Http::StreamResetReason) override { networkFailure(); }
    void onAboveWriteBufferHighWatermark() override {}
    void onBelowWriteBufferLowWatermark() override {}
    // Http::CodecOutput
    void write(Buffer::Instance& data, bool end_stream) override {
      client_->connection->write(data, end_stream);
    }
    // Http::Http2::ClientConnectionCallbacks
    void onGoAway(uint32_t, int32_t) override { go_away_ = true; }
    void onMaxConcurrentStreamsChanged(uint32_t) override {}

   private:
    struct Client : public Event::DeferredDeletable {
      Network::ClientConnectionPtr connection;
      std::unique_ptr<Http::Http2::ClientConnectionImpl> codec;
    };

    void sendRequest();
    void onRpcComplete();
    void networkFailure();
    void closeClient();
    const HealthCheckConfig& config() const { return parent_.config(); }

    GrpcHealthCheckerImpl& checker_;
    std::unique_ptr<Client> client_;
    bool connected_ = false;
    bool go_away_ = false;
    bool request_in_flight_ = false;
    bool request_sent_ = false;
    uint64_t http_status_ = 0;
    std::string grpc_status_;
    std::string body_;
  };

  SessionPtr createSession(HostConstSharedPtr host) override {
    return std::make_unique<GrpcSession>(*this, std::move(host));
  }

  Http::Http2::ClientCodecStats codec_stats_;
};

void GrpcHealthCheckerImpl::GrpcSession::onInterval() {
  if (client_ == nullptr) {
    client_ = std::make_unique<Client>();
    Network::Address address = host_->address();
    if (config().alt_port.has_value()) {
      absl::StatusOr<Network::Address> alt =
          Network::Address::fromIpPort(address.ip(), *config().alt_port);
      if (alt.ok()) {
        address = *alt;
      }
    }
    client_->connection = std::make_unique<Network::ClientConnectionImpl>(
        parent_.dispatcher(), address,
        parent_.cluster().createTransportSocket(/*alpn_fallback=*/"h2"));
    client_->connection->noDelay(true);
    client_->connection->addConnectionCallbacks(*this);
    client_->connection->setReadFilter(this);
    client_->codec = std::make_unique<Http::Http2::ClientConnectionImpl>(
        parent_.dispatcher(), *this, *this, Http::Http2::Http2Settings(), checker_.codec_stats_);
    connected_ = false;
    go_away_ = false;
    client_->connection->connect();
  }
  request_in_flight_ = true;
  request_sent_ = false;
  http_status_ = 0;
  grpc_status_.clear();
  body_.clear();
  if (connected_) {
    sendRequest();
  }
}

void GrpcHealthCheckerImpl::GrpcSession::sendRequest() {
  request_sent_ = true;
  Http::RequestHeaderMap headers;
  headers.addCopy(Http::Headers::Method, "POST");
  headers.addCopy(Http::Headers::Scheme, "http");
  headers.addCopy(Http::Headers::Authority, config().grpc_authority.empty()
                                                ? parent_.cluster().name()
                                                : config().grpc_authority);
  headers.addCopy(Http::Headers::Path, kCheckPath);
  headers.addCopy(Http::Headers::ContentType, "application/grpc");
  headers.addCopy(Http::Headers::Te, "trailers");
  headers.addCopy(Http::Headers::UserAgent, "Envoy/HC");
  Http::RequestEncoder& encoder = client_->codec->newStream(*this);
  encoder.getStream().addCallbacks(*this);
  encoder.encodeHeaders(headers, /*end_stream=*/false);
  Buffer::Instance body;
  body.add(requestFrame(config().grpc_service_name));
  encoder.encodeData(body, /*end_stream=*/true);
}

void GrpcHealthCheckerImpl::GrpcSession::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::Connected) {
    connected_ = true;
    if (request_in_flight_ && !request_sent_) {
      sendRequest();
    }
    return;
  }
  if (client_ != nullptr) {
    client_->codec->onConnectionClose();  // may reset the stream: a network failure
  }
  closeClient();
  networkFailure();
}

void GrpcHealthCheckerImpl::GrpcSession::onData(Buffer::Instance& data, bool) {
  if (client_ == nullptr) {
    data.drain(data.length());
    return;
  }
  const absl::Status status = client_->codec->dispatch(data);
  if (!status.ok() || (client_ != nullptr && client_->codec->sessionOver())) {
    closeClient();
    networkFailure();
  }
}

void GrpcHealthCheckerImpl::GrpcSession::decodeHeaders(Http::ResponseHeaderMapPtr&& headers,
                                                       bool end_stream) {
  http_status_ = headers->status();
  // A trailers-only response carries grpc-status in its headers.
  grpc_status_ = std::string(headers->getValue("grpc-status"));
  if (end_stream) {
    onRpcComplete();
  }
}

void GrpcHealthCheckerImpl::GrpcSession::decodeData(Buffer::Instance& data, bool end_stream) {
  if (body_.size() + data.length() <= kMaxResponseBytes) {
    body_ += data.toString();
  }
  data.drain(data.length());
  if (end_stream) {
    onRpcComplete();
  }
}

void GrpcHealthCheckerImpl::GrpcSession::decodeTrailers(Http::ResponseTrailerMapPtr&& trailers) {
  grpc_status_ = std::string(trailers->getValue("grpc-status"));
  onRpcComplete();
}

void GrpcHealthCheckerImpl::GrpcSession::onRpcComplete() {
  if (!request_in_flight_) {
    return;
  }
  request_in_flight_ = false;
  // grpc.health.v1.HealthCheckResponse.ServingStatus: SERVING = 1.
  const bool serving = http_status_ == 200 && grpc_status_ == "0" && responseStatus(body_) == 1;
  if (!config().reuse_connection || go_away_) {
    closeClient();
  }
  if (serving) {
    handleSuccess();
  } else {
    handleFailure(FailureType::Active);
  }
}

void GrpcHealthCheckerImpl::GrpcSession::networkFailure() {
  if (!request_in_flight_) {
    return;
  }
  request_in_flight_ = false;
  closeClient();
  handleFailure(FailureType::Network);
}

void GrpcHealthCheckerImpl::GrpcSession::closeClient() {
  if (client_ == nullptr) {
    return;
  }
  connected_ = false;
  closeHealthCheckClient(client_, *this, parent_.dispatcher());
}

}  // namespace

HealthCheckerPtr createGrpcHealthChecker(Event::Dispatcher& dispatcher,
                                         const HealthCheckConfig& config,
                                         std::shared_ptr<const ClusterInfoImpl> cluster,
                                         HealthChecker::HealthChangedCb changed,
                                         HealthChecker::InitialRoundDoneCb initial_round_done) {
  return std::make_unique<GrpcHealthCheckerImpl>(dispatcher, config, std::move(cluster),
                                                 std::move(changed), std::move(initial_round_done));
}

}  // namespace Proxy::Upstream
