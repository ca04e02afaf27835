#pragma once

// The plaintext transport: bytes go between the fd and the connection's buffers unchanged,
// with IoHandle's readv/sendmsg (no copies beyond the kernel's, one syscall per chunk), which
// is what ConnectionImpl did itself before the transport socket seam existed.

#include "proxy/network/transport_socket.h"

namespace Proxy::Network {

class RawBufferSocket : public TransportSocket {
 public:
  void setTransportSocketCallbacks(TransportSocketCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  TransportIoResult doRead(Buffer::Instance& buffer, uint64_t max_buffer_length) override;
  TransportIoResult doWrite(Buffer::Instance& buffer) override;
  bool wantsWriteEvents() const override { return false; }
  void onConnected() override { callbacks_->raiseEvent(ConnectionEvent::Connected); }
  void closeSocket(ConnectionEvent) override {}
  std::string_view protocol() const override { return {}; }
  bool secure() const override { return false; }
  std::string_view failureReason() const override { return {}; }

 private:
  TransportSocketCallbacks* callbacks_ = nullptr;
};

}  // namespace Proxy::Network
