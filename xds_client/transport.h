#pragma once

// The seam between the xDS protocol logic and the wire: one bidirectional gRPC stream. The
// real implementation is gRPC C++ (grpc_transport_impl.h); unit tests use a fake that needs no
// network (ARCHITECTURE.md, convention 13).

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "xds_client/config.h"
#include "xds_client/decoder.h"

namespace Proxy::Xds {

class XdsTransport {
 public:
  // Events of one stream, delivered on the main dispatcher, never after the transport was
  // destroyed.
  class EventHandler {
   public:
    virtual ~EventHandler() = default;
    // The stream reached the server (a write completed or the server sent something). At
    // most once per stream.
    virtual void onConnected() = 0;
    // A response, already decoded on the transport's thread.
    virtual void onResponse(DecodedResponsePtr response) = 0;
    // The stream ended (server closed it, connection failed or refused). Exactly once, last.
    // The handler may destroy the transport from here.
    virtual void onStreamClosed(const absl::Status& status) = 0;
  };

  // Destroying the transport cancels the stream; no event is delivered afterwards.
  virtual ~XdsTransport() = default;

  // Queue a serialized DiscoveryRequest / DeltaDiscoveryRequest. Never blocks. Main thread.
  virtual void sendMessage(std::string serialized_request) = 0;
};
using XdsTransportPtr = std::unique_ptr<XdsTransport>;

class XdsTransportFactory {
 public:
  virtual ~XdsTransportFactory() = default;
  // Open a stream to `config.target` (over TLS when `config.tls`) on `method`
  // ("/envoy.service.discovery.v3.Aggregated..."). Responses are decoded with
  // decodeResponse(bytes, config.delta) before they reach `handler`. Main thread.
  virtual XdsTransportPtr createTransport(const XdsStreamConfig& config, std::string_view method,
                                          XdsTransport::EventHandler& handler) = 0;
};
using XdsTransportFactoryPtr = std::unique_ptr<XdsTransportFactory>;

}  // namespace Proxy::Xds
