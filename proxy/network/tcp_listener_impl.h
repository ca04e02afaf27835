#pragma once

// The accept loop of one worker for one ListenSocket (which is owned elsewhere and must outlive
// this listener).

#include <chrono>
#include <cstdint>
#include <functional>

#include "proxy/event/dispatcher.h"
#include "proxy/network/connection_limit.h"
#include "proxy/network/listen_socket.h"
#include "proxy/network/listener.h"

namespace Proxy::Network {

class TcpListenerImpl : public Listener {
 public:
  // At most this many accept4() calls per wake-up: the rest wait for the next loop iteration
  // (the event is level-triggered) so that one busy listener does not starve connections.
  static constexpr uint32_t kMaxAcceptsPerWakeup = 64;
  // Pause after running out of fds/memory: the pending connection keeps the socket readable,
  // and retrying immediately would spin the loop until something closes.
  static constexpr std::chrono::milliseconds kResourceErrorBackoff{100};

  // Starts enabled. Worker (dispatcher) thread only.
  TcpListenerImpl(Event::Dispatcher& dispatcher, ListenSocket& socket,
                  TcpListenerCallbacks& callbacks);
  ~TcpListenerImpl() override;

  // Listener
  void enable() override;
  void disable() override;

  // Connections over `limit` (the overload manager's global downstream connection limit) are
  // closed right after accept() and counted by `on_overflow` (the listener's
  // downstream_global_cx_overflow). Null: this listener ignores the limit. With a limit, every
  // onAccept() comes with one slot taken, which the callee holds (a ConnectionSlot) until that
  // socket is closed.
  void setGlobalConnectionLimit(GlobalConnectionLimit* limit, std::function<void()> on_overflow) {
    limit_ = limit;
    on_overflow_ = std::move(on_overflow);
  }

  uint64_t acceptedTotal() const { return accepted_total_; }
  // accept4() failures other than EAGAIN (EMFILE, ENFILE, ENOBUFS, ...).
  uint64_t acceptErrors() const { return accept_errors_; }

 private:
  void onSocketReady();
  void onBackoffDone();
  void updateFileEvent();

  Event::Dispatcher& dispatcher_;
  ListenSocket& socket_;
  TcpListenerCallbacks& callbacks_;
  Event::FileEventPtr file_event_;
  Event::TimerPtr backoff_timer_;
  bool enabled_ = true;
  bool backing_off_ = false;
  // Only a wildcard listener needs a getsockname() per connection to learn its local address.
  const bool local_is_wildcard_;
  uint64_t accepted_total_ = 0;
  uint64_t accept_errors_ = 0;
  GlobalConnectionLimit* limit_ = nullptr;
  std::function<void()> on_overflow_;
};

}  // namespace Proxy::Network
