#pragma once

// The real transport: gRPC C++ callback-API bidi streams (ClientBidiReactor over the generic
// stub, so requests and responses stay bytes and responses are decoded on gRPC's thread).
//
// Threads and lifetime: a stream's reactor runs on gRPC's threads and owns itself until
// OnDone. It reaches the main thread only through Dispatcher::post(), via a shared state whose
// dispatcher pointer the transport clears when it is destroyed; posted events check, on the
// main thread, that the transport still exists. Destroying a transport cancels its stream and
// waits (bounded) for the reactor to finish, so after ~XdsClientImpl no gRPC callback touches
// anything of ours.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "xds_client/transport.h"

namespace grpc {
class Channel;
}

namespace Proxy::Xds {

struct GrpcTransportOptions {
  // gRPC's own reconnect backoff for the channel, aligned with the client's stream backoff so
  // that a call made after our backoff finds the channel willing to connect.
  std::chrono::milliseconds reconnect_backoff_min{500};
  std::chrono::milliseconds reconnect_backoff_max{30000};
  // How long ~XdsTransport waits for a cancelled stream to finish before giving up (and
  // leaking the reactor rather than risking a use-after-free).
  std::chrono::milliseconds shutdown_wait{10000};
};

class GrpcXdsTransportFactory : public XdsTransportFactory {
 public:
  explicit GrpcXdsTransportFactory(Event::Dispatcher& main, GrpcTransportOptions options = {});
  ~GrpcXdsTransportFactory() override;

  // Streams to one target with the same TLS settings share one channel (one HTTP/2
  // connection). Main thread.
  XdsTransportPtr createTransport(const XdsStreamConfig& config, std::string_view method,
                                  XdsTransport::EventHandler& handler) override;

 private:
  struct Channel {
    std::string target;
    std::optional<ChannelTls> tls;
    std::shared_ptr<grpc::Channel> channel;
  };

  Event::Dispatcher& main_;
  const GrpcTransportOptions options_;
  std::vector<Channel> channels_;
};

}  // namespace Proxy::Xds
