#include "proxy/network/tcp_listener_impl.h"

#include <sys/socket.h>

#include <cerrno>

#include "proxy/common/assert.h"
#include "spdlog/spdlog.h"

namespace Proxy::Network {

TcpListenerImpl::TcpListenerImpl(Event::Dispatcher& dispatcher, ListenSocket& socket,
                                 TcpListenerCallbacks& callbacks)
    : dispatcher_(dispatcher),
      socket_(socket),
      callbacks_(callbacks),
      local_is_wildcard_(socket.localAddress().isAnyAddress()) {
  ASSERT(dispatcher_.isThreadSafe());
  // Level-triggered: connections left in the queue after kMaxAcceptsPerWakeup wake us again.
  file_event_ = dispatcher_.createFileEvent(
      socket_.fd(), [this](uint32_t) { onSocketReady(); }, Event::FileTriggerType::Level,
      Event::FileReadyType::Read);
  backoff_timer_ = dispatcher_.createTimer([this]() { onBackoffDone(); });
}

TcpListenerImpl::~TcpListenerImpl() {
  ASSERT(dispatcher_.isThreadSafe());
  // The FileEvent and Timer unregister themselves; the socket belongs to someone else.
}

void TcpListenerImpl::enable() {
  ASSERT(dispatcher_.isThreadSafe());
  enabled_ = true;
  updateFileEvent();
}

void TcpListenerImpl::disable() {
  ASSERT(dispatcher_.isThreadSafe());
  enabled_ = false;
  updateFileEvent();
}

void TcpListenerImpl::updateFileEvent() {
  file_event_->setEnabled(enabled_ && !backing_off_ ? Event::FileReadyType::Read : 0);
}

void TcpListenerImpl::onBackoffDone() {
  backing_off_ = false;
  updateFileEvent();
}

void TcpListenerImpl::onSocketReady() {
  for (uint32_t i = 0; i < kMaxAcceptsPerWakeup; i++) {
    // A callback may have disabled us (drain started) in the middle of a batch.
    if (!enabled_ || backing_off_) {
      return;
    }
    sockaddr_storage remote_storage{};
    socklen_t remote_len = sizeof(remote_storage);
    const int fd = ::accept4(socket_.fd(), reinterpret_cast<sockaddr*>(&remote_storage),
                             &remote_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) {
        return;
      }
      if (error == EINTR || error == ECONNABORTED) {
        continue;  // this connection is gone; the next one may be fine
      }
      accept_errors_++;
      spdlog::warn("[{}] listener {}: accept failed: {}", dispatcher_.name(),
                   socket_.localAddress().asString(), errorDetails(error));
      // EMFILE/ENFILE/ENOBUFS/ENOMEM: the connection stays queued and the socket readable, so
      // stop watching it for a moment instead of spinning on the same failure.
      backing_off_ = true;
      updateFileEvent();
      backoff_timer_->enableTimer(kResourceErrorBackoff);
      return;
    }
    IoHandle handle(fd);
    if (limit_ != nullptr && !limit_->tryAcquire()) {
      // Over the global limit: closed at once (Envoy's downstream_global_cx_overflow), and the
      // next queued connection is tried; the socket does not stay readable for nothing.
      if (on_overflow_) {
        on_overflow_();
      }
      continue;
    }
    accepted_total_++;
    const Address remote =
        Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&remote_storage), remote_len);
    const Address local = local_is_wildcard_ ? Address::fromLocal(fd) : socket_.localAddress();
    callbacks_.onAccept(std::move(handle), remote, local);
  }
}

}  // namespace Proxy::Network
