#pragma once

// A Network::Connection without a socket, for unit tests of the network filters on a
// SimulatedDispatcher (test/unit/xds_client/simulated_dispatcher.h). The test plays the peer:
// send() is a socket read handed to the read filter, take() is the peer reading what the
// filter wrote. It keeps ConnectionImpl's contract where the filters can tell:
//   - the write buffer holds what the peer has not take()n yet; above bufferLimit() it raises
//     onAboveWriteBufferHighWatermark, and once take() empties it, onBelowWriteBufferLowWatermark;
//   - readDisable() is counted; bytes that arrive while reading is off stay in the read buffer,
//     as do bytes the filter leaves there, and re-enabling re-offers them from the event loop
//     (a posted callback), never from inside readDisable();
//   - close(FlushWrite) with unread bytes is Closing until the peer take()s them, then
//     LocalClose; close(NoFlush), or with nothing to flush, is Closed and LocalClose at once.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/assert.h"
#include "proxy/network/connection.h"

namespace Proxy::Network {

class FakeConnection : public Connection {
 public:
  FakeConnection(Event::Dispatcher& dispatcher, Address remote, Address local)
      : dispatcher_(dispatcher), remote_(std::move(remote)), local_(std::move(local)) {}

  // ---- The peer's side (the test) -------------------------------------------------------

  // The peer sent `bytes`: the read filter gets them now unless reading is disabled.
  void send(std::string_view bytes) {
    if (state_ != State::Open) {
      return;
    }
    read_buffer_.add(bytes);
    bytes_received_ += bytes.size();
    deliver();
  }

  // The peer reads everything written so far. Crossing back below the low watermark and
  // finishing a FlushWrite close happen here, as when a real socket drains.
  std::string take() {
    std::string out = write_buffer_.toString();
    bytes_sent_ += write_buffer_.length();
    write_buffer_.drain(write_buffer_.length());
    if (above_high_watermark_) {
      above_high_watermark_ = false;
      raise([](ConnectionCallbacks& callbacks) { callbacks.onBelowWriteBufferLowWatermark(); });
    }
    if (state_ == State::Closing) {
      closeSocket(ConnectionEvent::LocalClose);
    }
    return out;
  }

  // The peer closed (or reset) the connection.
  void remoteClose() { closeSocket(ConnectionEvent::RemoteClose); }

  // What the filter wrote and the peer has not read yet; what is waiting to be read.
  uint64_t pendingWriteBytes() const { return write_buffer_.length(); }
  uint64_t unreadBytes() const { return read_buffer_.length(); }
  const std::vector<ConnectionEvent>& events() const { return events_; }
  int readDisableCount() const { return read_disable_count_; }

  // ---- Network::Connection --------------------------------------------------------------

  void addConnectionCallbacks(ConnectionCallbacks& callbacks) override {
    callbacks_.push_back(&callbacks);
  }
  void removeConnectionCallbacks(ConnectionCallbacks& callbacks) override {
    for (ConnectionCallbacks*& entry : callbacks_) {
      if (entry == &callbacks) {
        entry = nullptr;  // raise() may be iterating
      }
    }
  }
  void setReadFilter(ReadFilter* filter) override { read_filter_ = filter; }

  void close(ConnectionCloseType type) override {
    if (state_ == State::Closed) {
      return;
    }
    if (type == ConnectionCloseType::NoFlush || write_buffer_.length() == 0) {
      closeSocket(ConnectionEvent::LocalClose);
      return;
    }
    state_ = State::Closing;
  }
  State state() const override { return state_; }

  void readDisable(bool disable) override {
    if (state_ != State::Open) {
      return;
    }
    if (disable) {
      read_disable_count_++;
      return;
    }
    ASSERT(read_disable_count_ > 0);
    if (read_disable_count_ == 0 || --read_disable_count_ > 0) {
      return;
    }
    if (read_buffer_.length() > 0) {
      // ConnectionImpl activates a Read event: the bytes come again on the next iteration.
      dispatcher_.post([this] { deliver(); });
    }
  }
  bool readEnabled() const override { return read_disable_count_ == 0; }

  void write(Buffer::Instance& data, bool) override {
    if (state_ != State::Open) {
      data.drain(data.length());
      return;
    }
    write_buffer_.move(data);
    if (buffer_limit_ != 0 && !above_high_watermark_ && write_buffer_.length() > buffer_limit_) {
      above_high_watermark_ = true;
      raise([](ConnectionCallbacks& callbacks) { callbacks.onAboveWriteBufferHighWatermark(); });
    }
  }
  void setBufferLimits(uint32_t limit) override { buffer_limit_ = limit; }
  uint32_t bufferLimit() const override { return buffer_limit_; }
  bool aboveHighWatermark() const override { return above_high_watermark_; }
  void enableHalfClose(bool) override {}
  void noDelay(bool) override {}

  uint64_t id() const override { return 1; }
  Event::Dispatcher& dispatcher() override { return dispatcher_; }
  const Address& remoteAddress() const override { return remote_; }
  const Address& localAddress() const override { return local_; }
  uint64_t bytesReceived() const override { return bytes_received_; }
  uint64_t bytesSent() const override { return bytes_sent_; }

 private:
  void deliver() {
    if (state_ == State::Open && read_disable_count_ == 0 && read_filter_ != nullptr &&
        read_buffer_.length() > 0) {
      read_filter_->onData(read_buffer_, /*end_stream=*/false);
    }
  }

  void closeSocket(ConnectionEvent event) {
    if (state_ == State::Closed) {
      return;
    }
    state_ = State::Closed;
    events_.push_back(event);
    raise([event](ConnectionCallbacks& callbacks) { callbacks.onEvent(event); });
  }

  // By index, skipping removed entries: a callback may add or remove callbacks.
  template <class Fn>
  void raise(const Fn& fn) {
    for (size_t i = 0; i < callbacks_.size(); i++) {
      if (callbacks_[i] != nullptr) {
        fn(*callbacks_[i]);
      }
    }
  }

  Event::Dispatcher& dispatcher_;
  const Address remote_;
  const Address local_;
  std::vector<ConnectionCallbacks*> callbacks_;
  ReadFilter* read_filter_ = nullptr;
  State state_ = State::Open;
  Buffer::Instance read_buffer_;
  Buffer::Instance write_buffer_;
  uint32_t buffer_limit_ = 0;
  bool above_high_watermark_ = false;
  int read_disable_count_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  std::vector<ConnectionEvent> events_;
};

}  // namespace Proxy::Network
