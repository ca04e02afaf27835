// Envoy's TCP health checker: connect, send the `send` bytes (if any), and pass once every
// `receive` block has arrived, in order (Envoy's PayloadMatcher: each block found after the
// previous one). With no `receive` blocks a connection that opens passes, and is closed. The
// connection is kept between checks when reuse_connection is true (the default); a close before
// the blocks arrived is a network failure, a timeout counts as one too.

#include "proxy/buffer/buffer.h"
#include "proxy/common/assert.h"
#include "proxy/network/connection_impl.h"
#include "proxy/upstream/health_checker_impl.h"

namespace Proxy::Upstream {

namespace {

constexpr size_t kMaxReceived = 64 * 1024;

// Whether `data` holds the blocks in order.
bool matches(const std::vector<std::string>& blocks, const std::string& data) {
  size_t start = 0;
  for (const std::string& block : blocks) {
    const size_t at = data.find(block, start);
    if (at == std::string::npos) {
      return false;
    }
    start = at + block.size();
  }
  return true;
}

class TcpHealthCheckerImpl : public HealthCheckerImplBase {
 public:
  using HealthCheckerImplBase::HealthCheckerImplBase;

 private:
  class TcpSession : public Session,
                     public Network::ConnectionCallbacks,
                     public Network::ReadFilter {
   public:
    TcpSession(TcpHealthCheckerImpl& parent, HostConstSharedPtr host)
        : Session(parent, std::move(host)) {}
    ~TcpSession() override { closeConnection(); }

    // Session
    void onInterval() override;
    void onTimeout() override;
    // Network::ConnectionCallbacks
    void onEvent(Network::ConnectionEvent event) override;
    // Network::ReadFilter
    void onData(Buffer::Instance& data, bool end_stream) override;

   private:
    void send();
    void closeConnection();
    const HealthCheckConfig& config() const { return parent_.config(); }

    Network::ClientConnectionPtr connection_;
    bool connected_ = false;
    bool check_in_flight_ = false;
    std::string received_;
  };

  SessionPtr createSession(HostConstSharedPtr host) override {
    return std::make_unique<TcpSession>(*this, std::move(host));
  }
};

void TcpHealthCheckerImpl::TcpSession::onInterval() {
  check_in_flight_ = true;
  received_.clear();
  if (connection_ == nullptr) {
    Network::Address address = host_->address();
    if (config().alt_port.has_value()) {
      absl::StatusOr<Network::Address> alt =
          Network::Address::fromIpPort(address.ip(), *config().alt_port);
      if (alt.ok()) {
        address = *alt;
      }
    }
    connection_ = std::make_unique<Network::ClientConnectionImpl>(
        parent_.dispatcher(), address, parent_.cluster().createTransportSocket());
    connection_->noDelay(true);
    connection_->addConnectionCallbacks(*this);
    connection_->setReadFilter(this);
    connected_ = false;
    connection_->connect();
    return;  // sends once connected
  }
  send();
}

void TcpHealthCheckerImpl::TcpSession::send() {
  if (!config().send.empty()) {
    Buffer::Instance bytes;
    bytes.add(config().send);
    connection_->write(bytes, /*end_stream=*/false);
  }
  if (config().receive.empty()) {
    // A connect-only check: connected is healthy; the connection is not kept.
    check_in_flight_ = false;
    closeConnection();
    handleSuccess();
  }
}

void TcpHealthCheckerImpl::TcpSession::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::Connected) {
    connected_ = true;
    if (check_in_flight_) {
      send();
    }
    return;
  }
  closeConnection();
  if (check_in_flight_) {
    check_in_flight_ = false;
    handleFailure(FailureType::Network);
  }
}

void TcpHealthCheckerImpl::TcpSession::onData(Buffer::Instance& data, bool) {
  if (!check_in_flight_) {
    data.drain(data.length());
    return;
  }
  received_ += data.toString();
  data.drain(data.length());
  if (!matches(config().receive, received_)) {
    if (received_.size() > kMaxReceived) {
      // An upstream that never stops talking does not hold our memory.
      check_in_flight_ = false;
      closeConnection();
      handleFailure(FailureType::Network);
    }
    return;  // not all there yet (a wrong answer fails by timeout, as in Envoy)
  }
  check_in_flight_ = false;
  received_.clear();
  if (!config().reuse_connection) {
    closeConnection();
  }
  handleSuccess();
}

void TcpHealthCheckerImpl::TcpSession::onTimeout() {
  check_in_flight_ = false;
  closeConnection();
}

void TcpHealthCheckerImpl::TcpSession::closeConnection() {
  if (connection_ == nullptr) {
    return;
  }
  Network::ClientConnectionPtr connection = std::move(connection_);
  connected_ = false;
  connection->removeConnectionCallbacks(*this);
  connection->setReadFilter(nullptr);
  connection->close(Network::ConnectionCloseType::NoFlush);
  parent_.dispatcher().deferredDelete(std::move(connection));
}

}  // namespace

HealthCheckerPtr createTcpHealthChecker(Event::Dispatcher& dispatcher,
                                        const HealthCheckConfig& config,
                                        std::shared_ptr<const ClusterInfoImpl> cluster,
                                        HealthChecker::HealthChangedCb changed,
                                        HealthChecker::InitialRoundDoneCb initial_round_done) {
  return std::make_unique<TcpHealthCheckerImpl>(dispatcher, config, std::move(cluster),
                                                std::move(changed), std::move(initial_round_done));
}

}  // namespace Proxy::Upstream
