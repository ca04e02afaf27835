#pragma once

// Network::Connection over a non-blocking TCP socket, following Envoy's ConnectionImpl: one
// edge-triggered FileEvent drives reads and writes; reads are bounded per event so that one
// busy connection cannot starve the others on its worker; writes are batched per loop
// iteration; a FlushWrite close waits (bounded by a timer) for the write buffer to drain.
// Dispatcher-thread only; destroy through Dispatcher::deferredDelete().

#include <chrono>
#include <cstdint>
#include <list>

#include "proxy/buffer/buffer.h"
#include "proxy/event/dispatcher.h"
#include "proxy/network/address.h"
#include "proxy/network/connection.h"
#include "proxy/network/io_handle.h"
#include "proxy/network/transport_socket.h"

namespace Proxy::Network {

class ConnectionImpl : public virtual Connection, protected TransportSocketCallbacks {
 public:
  // Buffer limit until setBufferLimits() is called: high watermark and most bytes per read.
  static constexpr uint32_t kDefaultBufferLimit = 1024 * 1024;
  static constexpr std::chrono::milliseconds kDefaultDelayedCloseTimeout{1000};

  // A connected (accepted) socket, read and written through `transport_socket` (null: the raw
  // socket, RawBufferSocket).
  ConnectionImpl(Event::Dispatcher& dispatcher, IoHandle socket, const Address& remote_address,
                 const Address& local_address, TransportSocketPtr transport_socket = nullptr);
  // Destroying an open connection closes the socket without raising events (shutdown path);
  // normal owners close() first and delete through deferredDelete().
  ~ConnectionImpl() override;

  // Connection
  void addConnectionCallbacks(ConnectionCallbacks& callbacks) override;
  void removeConnectionCallbacks(ConnectionCallbacks& callbacks) override;
  void setReadFilter(ReadFilter* filter) override { read_filter_ = filter; }
  void close(ConnectionCloseType type) override;
  State state() const override { return state_; }
  void readDisable(bool disable) override;
  bool readEnabled() const override { return read_disable_count_ == 0; }
  void write(Buffer::Instance& data, bool end_stream) override;
  void setBufferLimits(uint32_t limit) override;
  uint32_t bufferLimit() const override { return buffer_limit_; }
  bool aboveHighWatermark() const override { return above_high_watermark_; }
  void enableHalfClose(bool enabled) override;
  void noDelay(bool enable) override;
  uint64_t id() const override { return id_; }
  Event::Dispatcher& dispatcher() override { return dispatcher_; }
  const Address& remoteAddress() const override { return remote_address_; }
  const Address& localAddress() const override { return local_address_; }
  uint64_t bytesReceived() const override { return bytes_received_; }
  uint64_t bytesSent() const override { return bytes_sent_; }
  std::string_view nextProtocol() const override { return transport_socket_->protocol(); }
  bool secure() const override { return transport_socket_->secure(); }
  // Envoy's: why connect() failed ("delayed connect error: Connection refused"), else the
  // transport socket's reason (a TLS handshake failure).
  std::string_view transportFailureReason() const override {
    if (!failure_reason_.empty()) {
      return failure_reason_;
    }
    return transport_socket_->failureReason();
  }

  // How long close(FlushWrite) waits for the write buffer to drain before closing anyway, so a
  // peer that never reads cannot pin the connection. Zero waits forever.
  void setDelayedCloseTimeout(std::chrono::milliseconds timeout) {
    delayed_close_timeout_ = timeout;
  }
  uint64_t writeBufferLength() const { return write_buffer_.length(); }
  uint64_t readBufferLength() const { return read_buffer_.length(); }

 protected:
  // For ClientConnectionImpl: `connecting` defers reads and writes until connect() completes,
  // and the FileEvent is only created by connect() (an unconnected socket polls as writable).
  ConnectionImpl(Event::Dispatcher& dispatcher, IoHandle socket, const Address& remote_address,
                 const Address& local_address, bool connecting,
                 TransportSocketPtr transport_socket);

  // Close the socket and raise `event` to every callback exactly once.
  void closeSocket(ConnectionEvent event);

  // TransportSocketCallbacks
  IoHandle& ioHandle() override { return socket_; }
  Connection& connection() override { return *this; }
  void raiseEvent(ConnectionEvent event) override;
  void flushWriteBuffer() override;
  void setTransportSocketIsReadable() override;
  // Level-triggered reading (wantedInterest()) reports whatever a pass left unread; a FIN
  // known to be queued is read in the same pass.
  bool shortReadDrainsSocket() const override {
    return registered_trigger_ == Event::FileTriggerType::Level && !fin_queued_;
  }

  void onFileEvent(uint32_t events);
  // The file event's callback: onFileEvent(), then the registration for the new state.
  void onFileEventAndUpdateInterest(uint32_t events);
  // Register the socket with the dispatcher (once it is connected or connecting).
  void createFileEvent();

  Event::Dispatcher& dispatcher_;
  IoHandle socket_;
  TransportSocketPtr transport_socket_;
  Address remote_address_;
  Address local_address_;
  Event::FileEventPtr file_event_;
  State state_ = State::Open;
  bool connecting_ = false;
  // A connect() that failed synchronously: reported from the next loop iteration.
  bool immediate_error_ = false;
  std::string failure_reason_;

 private:
  void onReadReady();
  void onWriteReady();
  void deliverRead(bool end_stream);
  void checkHighWatermark();
  void checkLowWatermark();
  struct Interest {
    uint32_t events;
    Event::FileTriggerType trigger;
  };
  // What the file event should watch in the current state, and how (see the definition).
  Interest wantedInterest() const;
  // Re-register the file event when wantedInterest() changed (an epoll_ctl; never per request
  // on a keep-alive connection: only a blocked write, readDisable(), a connect, a handshake).
  void updateFileEvent();
  // The edge-triggered events to watch for the current state (reading enabled or not).
  uint32_t watchedEvents() const;
  bool bothSidesHalfClosed() const {
    return read_end_stream_ && write_end_stream_ && shutdown_sent_;
  }

  const uint64_t id_;
  Buffer::Instance read_buffer_;
  Buffer::Instance write_buffer_;
  // std::list: callbacks may add or remove callbacks while events are raised; removal marks the
  // entry null instead of erasing it so iteration stays valid.
  std::list<ConnectionCallbacks*> callbacks_;
  ReadFilter* read_filter_ = nullptr;
  Event::TimerPtr delayed_close_timer_;
  std::chrono::milliseconds delayed_close_timeout_ = kDefaultDelayedCloseTimeout;

  uint32_t buffer_limit_ = kDefaultBufferLimit;
  uint32_t read_disable_count_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  bool above_high_watermark_ = false;
  bool half_close_enabled_ = false;
  // The socket may hold unread bytes we did not read (limit reached or reading disabled).
  bool read_pending_ = false;
  // Offer retained read-buffer bytes to the filter on the next read event.
  bool dispatch_buffered_ = false;
  // Peer FIN seen (half-close mode only; otherwise a FIN closes the connection).
  bool read_end_stream_ = false;
  // write(end_stream=true) was called; shutdown(SHUT_WR) follows once the buffer drains.
  bool write_end_stream_ = false;
  bool shutdown_sent_ = false;
  // The last write hit EAGAIN: wait for the Write edge instead of trying again.
  bool write_blocked_ = false;
  // What the file event is registered with (wantedInterest() when it was last applied).
  uint32_t registered_events_ = 0;
  Event::FileTriggerType registered_trigger_ = Event::FileTriggerType::Edge;
  // onFileEvent() is running: updateFileEvent() waits for its end.
  bool in_file_event_ = false;
  // The running event carried Closed (EPOLLRDHUP): the peer's FIN is queued behind the bytes.
  bool fin_queued_ = false;
};

// An outgoing connection to `remote_address`. The socket is created in the constructor;
// connect() starts a non-blocking connect and Connected or RemoteClose follows, always from a
// later loop iteration, never from inside connect().
class ClientConnectionImpl : public ConnectionImpl, public ClientConnection {
 public:
  ClientConnectionImpl(Event::Dispatcher& dispatcher, const Address& remote_address,
                       TransportSocketPtr transport_socket = nullptr);
  ~ClientConnectionImpl() override;

  // ClientConnection
  void connect() override;

 private:
  // Only when socket() itself failed: there is no fd to activate, so a zero timer reports it.
  Event::TimerPtr socket_error_timer_;
};

}  // namespace Proxy::Network
