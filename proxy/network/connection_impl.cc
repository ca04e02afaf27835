#include "proxy/network/connection_impl.h"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>

#include "proxy/common/assert.h"
#include "proxy/network/raw_buffer_socket.h"
#include "spdlog/spdlog.h"

namespace Proxy::Network {
namespace {

// Process-wide so that ids in logs identify a connection across workers.
std::atomic<uint64_t> next_connection_id{0};

IoHandle createClientSocket(const Address& remote_address) {
  if (!remote_address.valid()) {
    return IoHandle();
  }
  return IoHandle(::socket(remote_address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

}  // namespace

ConnectionImpl::ConnectionImpl(Event::Dispatcher& dispatcher, IoHandle socket,
                               const Address& remote_address, const Address& local_address,
                               TransportSocketPtr transport_socket)
    : ConnectionImpl(dispatcher, std::move(socket), remote_address, local_address,
                     /*connecting=*/false, std::move(transport_socket)) {}

ConnectionImpl::ConnectionImpl(Event::Dispatcher& dispatcher, IoHandle socket,
                               const Address& remote_address, const Address& local_address,
                               bool connecting, TransportSocketPtr transport_socket)
    : dispatcher_(dispatcher),
      socket_(std::move(socket)),
      transport_socket_(transport_socket != nullptr ? std::move(transport_socket)
                                                    : std::make_unique<RawBufferSocket>()),
      remote_address_(remote_address),
      local_address_(local_address),
      connecting_(connecting),
      id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)) {
  ASSERT(dispatcher_.isThreadSafe());
  transport_socket_->setTransportSocketCallbacks(*this);
  if (!socket_.isOpen()) {
    return;  // only a client whose socket() failed; connect() reports it
  }
  // Small writes (HTTP headers, RPCs) must not wait for Nagle's delayed ACK dance.
  noDelay(true);
  if (!connecting_) {
    createFileEvent();
  }
}

void ConnectionImpl::createFileEvent() {
  const Interest interest = wantedInterest();
  registered_events_ = interest.events;
  registered_trigger_ = interest.trigger;
  file_event_ = dispatcher_.createFileEvent(
      socket_.fd(), [this](uint32_t events) { onFileEventAndUpdateInterest(events); },
      interest.trigger, interest.events);
}

ConnectionImpl::Interest ConnectionImpl::wantedInterest() const {
  // Reading with nothing waiting to be written: level-triggered Read (and Closed) alone. A read
  // pass may then end at the first short read (shortReadDrainsSocket()): whatever is still
  // unread (more bytes, or a reset queued behind the bytes, which libevent reports as
  // Read|Write without Closed) makes the next epoll_wait report the socket again. Closed
  // (EPOLLRDHUP) says a FIN is queued: that pass reads on to the EOF, so the last bytes and the
  // end of stream are delivered together. Edge-triggered, every pass would have to read until
  // EAGAIN: half of all reads on a keep-alive connection.
  // Everything else is edge-triggered, reading until EAGAIN: a blocked write (level-triggered
  // Write would wake every iteration once writable), a connect or a TLS handshake waiting to
  // write, reading disabled or a full read buffer (unread bytes would wake every iteration),
  // the peer's FIN in half-close mode (EOF stays readable), closing.
  if (state_ == State::Open && read_disable_count_ == 0 && !connecting_ && !read_end_stream_ &&
      !write_blocked_ && !transport_socket_->wantsWriteEvents() &&
      (buffer_limit_ == 0 || read_buffer_.length() < buffer_limit_)) {
    return {Event::FileReadyType::Read | Event::FileReadyType::Closed,
            Event::FileTriggerType::Level};
  }
  return {watchedEvents(), Event::FileTriggerType::Edge};
}

void ConnectionImpl::updateFileEvent() {
  // Inside onFileEvent() the loop is not polling: the registration is settled once, at its end,
  // however often the state changed on the way (a readDisable(true) then (false)).
  if (file_event_ == nullptr || in_file_event_) {
    return;
  }
  const Interest interest = wantedInterest();
  if (interest.events == registered_events_ && interest.trigger == registered_trigger_) {
    return;  // the common case: no epoll_ctl
  }
  // Re-registering re-evaluates readiness (epoll_ctl ADD), so nothing that arrived meanwhile is
  // lost when switching from level to edge or back.
  registered_events_ = interest.events;
  registered_trigger_ = interest.trigger;
  file_event_->setEnabled(interest.events, interest.trigger);
}

ConnectionImpl::~ConnectionImpl() {
  ASSERT(dispatcher_.isThreadSafe());
  // Unregister before the fd closes (members are destroyed in reverse order, but be explicit:
  // a registered event on a closed, reused fd number would watch someone else's socket).
  file_event_.reset();
  socket_.close();
}

void ConnectionImpl::addConnectionCallbacks(ConnectionCallbacks& callbacks) {
  ASSERT(dispatcher_.isThreadSafe());
  callbacks_.push_back(&callbacks);
}

void ConnectionImpl::removeConnectionCallbacks(ConnectionCallbacks& callbacks) {
  ASSERT(dispatcher_.isThreadSafe());
  for (ConnectionCallbacks*& entry : callbacks_) {
    if (entry == &callbacks) {
      entry = nullptr;
      return;
    }
  }
}

void ConnectionImpl::flushWriteBuffer() {
  if (state_ != State::Closed && file_event_ != nullptr && !connecting_) {
    write_blocked_ = false;
    file_event_->activate(Event::FileReadyType::Write);
  }
}

void ConnectionImpl::setTransportSocketIsReadable() {
  if (state_ == State::Open && file_event_ != nullptr && !connecting_) {
    // A read pass even without a Read edge; reading while disabled is remembered as usual.
    file_event_->activate(Event::FileReadyType::Read);
  }
}

void ConnectionImpl::raiseEvent(ConnectionEvent event) {
  for (ConnectionCallbacks* callbacks : callbacks_) {
    if (callbacks != nullptr) {
      callbacks->onEvent(event);
    }
  }
}

uint32_t ConnectionImpl::watchedEvents() const {
  if (state_ == State::Open && read_disable_count_ == 0) {
    return Event::FileReadyType::Read | Event::FileReadyType::Write;
  }
  // Not reading: still learn about a peer that went away (EPOLLRDHUP), unless half-close is
  // on, where a FIN is data-like and must wait until reading resumes.
  return Event::FileReadyType::Write | (half_close_enabled_ ? 0 : Event::FileReadyType::Closed);
}

void ConnectionImpl::close(ConnectionCloseType type) {
  ASSERT(dispatcher_.isThreadSafe());
  if (state_ == State::Closed) {
    return;
  }
  if (type == ConnectionCloseType::NoFlush || write_buffer_.length() == 0 || !socket_.isOpen()) {
    closeSocket(ConnectionEvent::LocalClose);
    return;
  }
  if (state_ == State::Closing) {
    return;  // already flushing
  }
  spdlog::debug("[C{}] closing after flushing {} bytes", id_, write_buffer_.length());
  state_ = State::Closing;
  if (delayed_close_timeout_.count() > 0) {
    if (delayed_close_timer_ == nullptr) {
      delayed_close_timer_ = dispatcher_.createTimer([this]() {
        spdlog::debug("[C{}] delayed close timeout", id_);
        closeSocket(ConnectionEvent::LocalClose);
      });
    }
    delayed_close_timer_->enableTimer(delayed_close_timeout_);
  }
  if (file_event_ != nullptr) {
    updateFileEvent();
    if (!connecting_ && !write_blocked_) {
      file_event_->activate(Event::FileReadyType::Write);
    }
  }
}

void ConnectionImpl::closeSocket(ConnectionEvent event) {
  if (state_ == State::Closed) {
    return;
  }
  spdlog::debug("[C{}] closed ({})", id_,
                event == ConnectionEvent::LocalClose ? "local" : "remote");
  state_ = State::Closed;
  // Unregister first, then close: see the destructor.
  file_event_.reset();
  if (delayed_close_timer_ != nullptr) {
    // Disabled, not destroyed: this may be running inside the timer's own callback.
    delayed_close_timer_->disableTimer();
  }
  if (socket_.isOpen()) {
    transport_socket_->closeSocket(event);
  }
  socket_.close();
  // Callbacks may deferredDelete() us; that keeps `this` valid until we return to the loop.
  raiseEvent(event);
}

void ConnectionImpl::readDisable(bool disable) {
  ASSERT(dispatcher_.isThreadSafe());
  if (state_ != State::Open) {
    return;  // closing or closed: reading is already off for good
  }
  if (disable) {
    read_disable_count_++;
    if (read_disable_count_ == 1) {
      updateFileEvent();
    }
    return;
  }
  ASSERT(read_disable_count_ > 0);
  if (read_disable_count_ == 0) {
    return;
  }
  read_disable_count_--;
  if (read_disable_count_ > 0 || file_event_ == nullptr || connecting_) {
    return;
  }
  updateFileEvent();
  // Bytes the filter left in the read buffer will not cause a socket event, and an edge we
  // ignored while disabled will not come again: read (or redeliver) explicitly.
  if (read_buffer_.length() > 0) {
    dispatch_buffered_ = true;
  }
  if (read_buffer_.length() > 0 || read_pending_) {
    file_event_->activate(Event::FileReadyType::Read);
  }
}

void ConnectionImpl::write(Buffer::Instance& data, bool end_stream) {
  ASSERT(dispatcher_.isThreadSafe());
  // Without half-close a stream end only happens through close().
  const bool half_close = end_stream && half_close_enabled_;
  if (state_ != State::Open || write_end_stream_) {
    data.drain(data.length());
    return;
  }
  if (data.length() == 0 && !half_close) {
    return;
  }
  write_buffer_.move(data);
  write_end_stream_ = half_close;
  checkHighWatermark();
  // Flush on the Write activation, later in this loop iteration: several writes made in one
  // callback (headers, then body) go out in one sendmsg(), and I/O errors are reported from
  // the event loop rather than re-entrantly from inside write().
  if (state_ == State::Open && file_event_ != nullptr && !connecting_ && !write_blocked_) {
    file_event_->activate(Event::FileReadyType::Write);
  }
}

void ConnectionImpl::setBufferLimits(uint32_t limit) {
  ASSERT(dispatcher_.isThreadSafe());
  buffer_limit_ = limit;
  checkHighWatermark();
  checkLowWatermark();
  updateFileEvent();  // a read buffer at the new limit reads edge-triggered
}

void ConnectionImpl::checkHighWatermark() {
  if (buffer_limit_ == 0 || above_high_watermark_ || write_buffer_.length() <= buffer_limit_) {
    return;
  }
  above_high_watermark_ = true;
  for (ConnectionCallbacks* callbacks : callbacks_) {
    if (callbacks != nullptr) {
      callbacks->onAboveWriteBufferHighWatermark();
    }
  }
}

void ConnectionImpl::checkLowWatermark() {
  if (!above_high_watermark_ ||
      (buffer_limit_ != 0 && write_buffer_.length() > buffer_limit_ / 2)) {
    return;
  }
  above_high_watermark_ = false;
  for (ConnectionCallbacks* callbacks : callbacks_) {
    if (callbacks != nullptr) {
      callbacks->onBelowWriteBufferLowWatermark();
    }
  }
}

void ConnectionImpl::enableHalfClose(bool enabled) {
  ASSERT(dispatcher_.isThreadSafe());
  half_close_enabled_ = enabled;
  // Whether a FIN counts as an early close while not reading depends on this setting.
  updateFileEvent();
}

void ConnectionImpl::noDelay(bool enable) {
  ASSERT(dispatcher_.isThreadSafe());
  if (!socket_.isOpen()) {
    return;
  }
  const int value = enable ? 1 : 0;
  // Failure (e.g. the peer already reset the connection) is harmless: the next I/O reports it.
  if (::setsockopt(socket_.fd(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value)) != 0) {
    spdlog::debug("[C{}] TCP_NODELAY failed: {}", id_, errorDetails(errno));
  }
}

void ConnectionImpl::onFileEvent(uint32_t events) {
  ASSERT(dispatcher_.isThreadSafe());
  if (state_ == State::Closed) {
    return;
  }
  if (immediate_error_) {
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  // While reading, EOF arrives as a read of 0 (Closed makes the pass read on until it does).
  if ((events & Event::FileReadyType::Closed) != 0 &&
      (watchedEvents() & Event::FileReadyType::Read) == 0) {
    spdlog::debug("[C{}] remote early close", id_);
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  if ((events & Event::FileReadyType::Write) != 0) {
    onWriteReady();
    if (state_ == State::Closed) {
      return;
    }
  }
  if ((events & Event::FileReadyType::Read) != 0) {
    onReadReady();
  }
}

void ConnectionImpl::onFileEventAndUpdateInterest(uint32_t events) {
  in_file_event_ = true;
  fin_queued_ = (events & Event::FileReadyType::Closed) != 0;
  onFileEvent(events);
  in_file_event_ = false;
  fin_queued_ = false;
  if (state_ != State::Closed) {
    updateFileEvent();
  }
}

void ConnectionImpl::onWriteReady() {
  write_blocked_ = false;
  if (connecting_) {
    int error = 0;
    socklen_t len = sizeof(error);
    if (::getsockopt(socket_.fd(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
      error = errno;
    }
    if (error != 0) {
      failure_reason_ = "delayed connect error: " + errorDetails(error);
      spdlog::debug("[C{}] connect to {} failed: {}", id_, remote_address_.asString(),
                    errorDetails(error));
      closeSocket(ConnectionEvent::RemoteClose);
      return;
    }
    connecting_ = false;
    local_address_ = Address::fromLocal(socket_.fd());
    // The raw socket raises Connected now; TLS once its handshake completes.
    transport_socket_->onConnected();
    if (state_ == State::Closed) {
      return;
    }
    // A Read edge that came while connecting was set aside in onReadReady().
    if (read_pending_ && state_ == State::Open && read_disable_count_ == 0) {
      file_event_->activate(Event::FileReadyType::Read);
    }
  }

  if (write_buffer_.length() == 0 && (watchedEvents() & Event::FileReadyType::Read) == 0) {
    // libevent 2.1 turns EPOLLERR/EPOLLHUP (a reset) into Read|Write without Closed, and we
    // are not watching Read: with nothing to write, only SO_ERROR can tell us the peer is gone.
    int error = 0;
    socklen_t len = sizeof(error);
    if (::getsockopt(socket_.fd(), SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error != 0) {
      spdlog::debug("[C{}] socket error while not reading: {}", id_, errorDetails(error));
      closeSocket(ConnectionEvent::RemoteClose);
      return;
    }
  }

  if (write_buffer_.length() > 0 || transport_socket_->wantsWriteEvents()) {
    const TransportIoResult result = transport_socket_->doWrite(write_buffer_);
    bytes_sent_ += result.bytes_processed;
    if (result.action == PostIoAction::Close) {
      closeSocket(ConnectionEvent::RemoteClose);
      return;
    }
    // Bytes left: the socket (or a TLS handshake) would block; the next Write edge, or
    // flushWriteBuffer(), resumes us.
    write_blocked_ = write_buffer_.length() > 0;
    checkLowWatermark();
    if (state_ == State::Closed) {
      return;
    }
  }

  if (write_buffer_.length() == 0) {
    if (state_ == State::Closing) {
      closeSocket(ConnectionEvent::LocalClose);
      return;
    }
    if (write_end_stream_ && !shutdown_sent_) {
      ::shutdown(socket_.fd(), SHUT_WR);
      shutdown_sent_ = true;
      if (bothSidesHalfClosed()) {
        closeSocket(ConnectionEvent::LocalClose);
      }
    }
  }
}

void ConnectionImpl::onReadReady() {
  if (connecting_ || state_ != State::Open || read_disable_count_ > 0) {
    // Stale activation or an edge while not reading: remember it for when reading resumes.
    read_pending_ = true;
    return;
  }
  const bool dispatch_buffered = dispatch_buffered_;
  dispatch_buffered_ = false;
  read_pending_ = false;

  uint64_t bytes_read = 0;
  bool eof = false;
  bool error = false;
  // After a FIN (half-close mode) the socket has nothing more to say; only redeliveries remain.
  if (!read_end_stream_) {
    // The limit bounds what the read buffer holds, not what one event reads: bytes the filter
    // left behind (pipelined requests held back) count, so a filter that consumes a little
    // per event cannot make the buffer grow by a whole limit each time. A full buffer also
    // ends this event's reading (fairness: other connections get their turn).
    const TransportIoResult result = transport_socket_->doRead(read_buffer_, buffer_limit_);
    bytes_read = result.bytes_processed;
    eof = result.end_stream_read;
    error = result.action == PostIoAction::Close;
    if (!eof && !error && buffer_limit_ != 0 && read_buffer_.length() >= buffer_limit_) {
      read_pending_ = true;
    }
  }
  bytes_received_ += bytes_read;

  const bool new_end_stream = eof && half_close_enabled_;
  if (new_end_stream) {
    read_end_stream_ = true;
  }
  if (read_filter_ != nullptr &&
      (bytes_read > 0 || new_end_stream || (dispatch_buffered && read_buffer_.length() > 0))) {
    read_filter_->onData(read_buffer_, read_end_stream_);
    if (state_ == State::Closed) {
      return;
    }
  }
  // Without half-close a FIN ends the connection (after the bytes before it were delivered).
  if (error || (eof && !half_close_enabled_) || bothSidesHalfClosed()) {
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  // Read on next iteration, unless the buffer is still full: then the filter holds bytes it
  // cannot take yet and has disabled reading (or will drain them); re-arming would spin.
  if (read_pending_ && state_ == State::Open && read_disable_count_ == 0 &&
      (buffer_limit_ == 0 || read_buffer_.length() < buffer_limit_)) {
    file_event_->activate(Event::FileReadyType::Read);
  }
}

ClientConnectionImpl::ClientConnectionImpl(Event::Dispatcher& dispatcher,
                                           const Address& remote_address,
                                           TransportSocketPtr transport_socket)
    : ConnectionImpl(dispatcher, createClientSocket(remote_address), remote_address, Address(),
                     /*connecting=*/true, std::move(transport_socket)) {
  if (!socket_.isOpen()) {
    spdlog::debug("[C{}] cannot create a socket for {}: {}", id(), remote_address.asString(),
                  errorDetails(errno));
    socket_error_timer_ =
        dispatcher_.createTimer([this]() { closeSocket(ConnectionEvent::RemoteClose); });
  }
}

ClientConnectionImpl::~ClientConnectionImpl() = default;

void ClientConnectionImpl::connect() {
  ASSERT(dispatcher_.isThreadSafe());
  ASSERT(connecting_ && file_event_ == nullptr);
  if (state_ == State::Closed || file_event_ != nullptr) {
    return;
  }
  if (!socket_.isOpen()) {
    socket_error_timer_->enableTimer(std::chrono::milliseconds(0));
    return;
  }
  const int rc = ::connect(socket_.fd(), remote_address_.sockAddr(), remote_address_.sockAddrLen());
  const int error = rc == 0 ? 0 : errno;
  if (rc == 0 || error == EINPROGRESS) {
    local_address_ = Address::fromLocal(socket_.fd());
  } else {
    // Refused or unreachable right away (common on loopback): still report it from the loop so
    // the caller never sees callbacks from inside connect().
    spdlog::debug("[C{}] connect to {} failed immediately: {}", id(), remote_address_.asString(),
                  errorDetails(error));
    immediate_error_ = true;
    failure_reason_ = "immediate connect error: " + errorDetails(error);
  }
  // Registered only now: before connect() an unconnected socket polls as writable/hung up.
  // The Write edge reports completion (or failure, checked through SO_ERROR).
  createFileEvent();
  if (immediate_error_) {
    file_event_->activate(Event::FileReadyType::Write);
  }
}

}  // namespace Proxy::Network
