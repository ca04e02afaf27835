#include "proxy/listener/connection_handler.h"

#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "proxy/common/assert.h"
#include "proxy/network/connection_impl.h"
#include "proxy/network/tcp_listener_impl.h"
#include "proxy/tls/ssl_socket.h"
#include "proxy/tls/tls_inspector.h"
#include "spdlog/spdlog.h"

namespace Proxy::Listener {

ConnectionHandler::ConnectionHandler(Event::Dispatcher& dispatcher, uint32_t worker_index,
                                     Upstream::ClusterManager& cluster_manager)
    : dispatcher_(dispatcher), worker_index_(worker_index), cluster_manager_(cluster_manager) {}

ConnectionHandler::~ConnectionHandler() {
  closeConnections();
  listeners_.clear();
  dispatcher_.clearDeferredDeleteList();
}

ConnectionHandler::ActiveListener* ConnectionHandler::find(uint64_t tag) {
  for (auto& listener : listeners_) {
    if (listener->config->tag() == tag) {
      return listener.get();
    }
  }
  return nullptr;
}

void ConnectionHandler::addListener(ListenerConfigConstSharedPtr config) {
  ASSERT(dispatcher_.isThreadSafe());
  listeners_.push_back(std::make_unique<ActiveListener>(*this, std::move(config)));
}

void ConnectionHandler::replaceListener(uint64_t old_tag, ListenerConfigConstSharedPtr config,
                                        bool in_place, std::chrono::milliseconds drain_spread) {
  ASSERT(dispatcher_.isThreadSafe());
  ActiveListener* old = find(old_tag);
  if (old == nullptr) {
    addListener(std::move(config));
    return;
  }
  if (in_place) {
    // Same sockets, same accept loop: only the chains change. A connection keeps the chain it
    // was accepted with (it holds it); those whose chain is gone drain.
    old->config = std::move(config);
    const ListenerConfig& current = *old->config;
    old->drain(current.tag(), drain_spread, [&current](const ActiveConnection& c) {
      return !current.hasFilterChain(c.chain.get());
    });
    return;
  }
  // Accept on the new version first, then stop the old one: both happen in this callback, so
  // there is no loop iteration in which nobody accepts.
  addListener(std::move(config));
  old->stopAccepting();
  old->drain(old_tag, drain_spread, [](const ActiveConnection&) { return true; });
}

void ConnectionHandler::stopListener(uint64_t tag, std::chrono::milliseconds drain_spread) {
  if (ActiveListener* listener = find(tag); listener != nullptr) {
    listener->stopAccepting();
    listener->drain(tag, drain_spread, [](const ActiveConnection&) { return true; });
  }
}

void ConnectionHandler::closeDrainingConnections(uint64_t tag) {
  for (auto& listener : listeners_) {
    listener->closeDraining(tag);
  }
}

void ConnectionHandler::removeListener(uint64_t tag) {
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if ((*it)->config->tag() == tag) {
      listeners_.erase(it);  // closes its remaining connections
      return;
    }
  }
}

void ConnectionHandler::stopListeners() {
  for (auto& listener : listeners_) {
    listener->stopAccepting();
  }
}

void ConnectionHandler::drainConnections() {
  for (auto& listener : listeners_) {
    if (listener->config->drainOnShutdown()) {
      listener->drain(listener->config->tag(), std::chrono::milliseconds(0),
                      [](const ActiveConnection&) { return true; });
    }
  }
}

void ConnectionHandler::closeConnections() {
  for (auto& listener : listeners_) {
    while (!listener->connections.empty()) {
      // close() raises LocalClose, which moves the connection to deferred deletion.
      listener->connections.front()->connection->close(Network::ConnectionCloseType::NoFlush);
    }
  }
}

ConnectionHandler::ActiveListener::ActiveListener(ConnectionHandler& parent,
                                                  ListenerConfigConstSharedPtr config)
    : parent(parent), config(std::move(config)) {
  auto tcp = std::make_unique<Network::TcpListenerImpl>(
      parent.dispatcher_, this->config->socket(parent.worker_index_), *this);
  if (this->config->globalConnectionLimit() != nullptr) {
    ListenerStats* stats = &this->config->stats();
    tcp->setGlobalConnectionLimit(this->config->globalConnectionLimit(),
                                  [stats] { stats->downstream_global_cx_overflow.inc(); });
  }
  listener = std::move(tcp);
}

ConnectionHandler::ActiveListener::~ActiveListener() {
  listener.reset();
  for (auto& pending : pending_sockets) {
    config->stats().downstream_pre_cx_active.dec();
    pending->file_event.reset();  // before its fd closes
  }
  pending_sockets.clear();
  while (!connections.empty()) {
    connections.front()->connection->close(Network::ConnectionCloseType::NoFlush);
  }
}

template <class Pred>
void ConnectionHandler::ActiveListener::drain(uint64_t tag, std::chrono::milliseconds spread,
                                              Pred pred) {
  // startDrain() may close a connection, which unlinks it from the list: collect first.
  std::vector<ActiveConnection*> selected;
  for (auto& c : connections) {
    if (!c->draining && pred(*c)) {
      selected.push_back(c.get());
    }
  }
  for (ActiveConnection* c : selected) {
    c->draining = true;
    c->drain_tag = tag;
    c->filter->startDrain(spread);
  }
}

void ConnectionHandler::ActiveListener::closeDraining(uint64_t tag) {
  std::vector<ActiveConnection*> draining;
  for (auto& c : connections) {
    if (c->draining && c->drain_tag == tag) {
      draining.push_back(c.get());
    }
  }
  for (ActiveConnection* c : draining) {
    c->connection->close(Network::ConnectionCloseType::FlushWrite);
  }
}

void ConnectionHandler::ActiveListener::onAccept(Network::IoHandle socket,
                                                 const Network::Address& remote,
                                                 const Network::Address& local) {
  // The TcpListenerImpl took a slot for this socket when the listener counts against the
  // global limit (see its constructor below).
  Network::ConnectionSlot slot(config->globalConnectionLimit());
  if (config->tlsInspector()) {
    auto pending = std::make_unique<PendingSocket>(*this, std::move(socket), remote, local);
    PendingSocket& ref = *pending;
    ref.slot = std::move(slot);
    pending_sockets.push_front(std::move(pending));
    ref.it = pending_sockets.begin();
    config->stats().downstream_pre_cx_active.inc();
    // Registering the edge-triggered event reports bytes that are already there.
    ref.file_event = parent.dispatcher_.createFileEvent(
        ref.socket.fd(), [&ref](uint32_t) { ref.onReadable(); }, Event::FileTriggerType::Edge,
        Event::FileReadyType::Read);
    if (config->listenerFiltersTimeout().count() > 0) {
      ref.timer = parent.dispatcher_.createTimer([&ref]() { ref.onTimeout(); });
      ref.timer->enableTimer(config->listenerFiltersTimeout());
    }
    return;
  }
  newConnection(std::move(socket), remote, local, config->findFilterChain(local), std::move(slot));
}

ConnectionHandler::PendingSocket::PendingSocket(ActiveListener& listener, Network::IoHandle socket,
                                                const Network::Address& remote,
                                                const Network::Address& local)
    : listener(listener), socket(std::move(socket)), remote(remote), local(local) {}

void ConnectionHandler::PendingSocket::onReadable() {
  uint8_t buffer[Tls::kMaxClientHelloSize];
  ssize_t rc;
  do {
    rc = ::recv(socket.fd(), buffer, sizeof(buffer), MSG_PEEK);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return;
  }
  if (rc <= 0) {
    finish(/*close=*/true, "", "");  // the peer left (or reset) before saying anything useful
    return;
  }
  const Tls::ClientHelloInfo info = Tls::inspectClientHello(buffer, static_cast<size_t>(rc));
  switch (info.result) {
    case Tls::ClientHelloInfo::Result::NeedMoreData:
      return;  // the next bytes come with the next edge
    case Tls::ClientHelloInfo::Result::Tls:
      finish(/*close=*/false, info.server_name, "tls");
      return;
    case Tls::ClientHelloInfo::Result::NotTls:
      finish(/*close=*/false, "", "raw_buffer");
      return;
  }
}

void ConnectionHandler::PendingSocket::onTimeout() {
  spdlog::debug("listener filters timed out for a connection from {}", remote.asString());
  listener.config->stats().downstream_pre_cx_timeout.inc();
  // Envoy: close, unless continue_on_listener_filters_timeout (then it is plaintext).
  finish(/*close=*/!listener.config->continueOnListenerFiltersTimeout(), "", "raw_buffer");
}

void ConnectionHandler::PendingSocket::finish(bool close, const std::string& server_name,
                                              std::string_view transport_protocol) {
  ActiveListener& owner = listener;
  owner.config->stats().downstream_pre_cx_active.dec();
  // This may run inside the file event's or the timer's callback: both die with `this`, on the
  // next loop iteration.
  file_event->setEnabled(0);
  if (timer != nullptr) {
    timer->disableTimer();
  }
  std::unique_ptr<PendingSocket> self = std::move(*it);
  owner.pending_sockets.erase(it);
  Network::ConnectionSlot fd_slot = std::move(slot);
  Network::IoHandle fd = std::move(socket);
  owner.parent.dispatcher_.deferredDelete(std::move(self));
  if (close) {
    return;  // `fd` closes as it goes out of scope, then `fd_slot` gives its slot back
  }
  owner.newConnection(std::move(fd), remote, local,
                      owner.config->findFilterChain(local, server_name, transport_protocol),
                      std::move(fd_slot));
}

void ConnectionHandler::ActiveListener::newConnection(Network::IoHandle socket,
                                                      const Network::Address& remote,
                                                      const Network::Address& local,
                                                      const FilterChainConstSharedPtr* chain,
                                                      Network::ConnectionSlot slot) {
  if (chain == nullptr) {
    config->stats().no_filter_chain_match.inc();
    return;  // `socket` closes as it goes out of scope
  }
  Network::TransportSocketPtr transport;
  if ((*chain)->tls != nullptr) {
    // The context of now: a rotated secret (SDS) applies from the next connection on.
    transport = std::make_unique<Tls::SslSocket>((*chain)->tls->current());
  }
  auto connection = std::make_unique<Network::ConnectionImpl>(parent.dispatcher_, std::move(socket),
                                                              remote, local, std::move(transport));
  connection->setBufferLimits(config->perConnectionBufferLimitBytes());
  ListenerStats& stats = config->stats();
  stats.downstream_cx_total.inc();
  stats.downstream_cx_active.inc();
  stats.per_worker[parent.worker_index_].downstream_cx_total->inc();
  stats.per_worker[parent.worker_index_].downstream_cx_active->inc();
  parent.num_connections_++;

  auto active = std::make_unique<ActiveConnection>(*this, std::move(connection), *chain);
  active->slot = std::move(slot);
  ActiveConnection& ref = *active;
  connections.push_front(std::move(active));
  ref.it = connections.begin();
  const FilterChain& c = *ref.chain;
  if (c.tls != nullptr && c.transport_socket_connect_timeout.count() > 0) {
    // A handshake that stalls (a peer that connects and says nothing, or stops halfway) must
    // not hold the connection: Envoy's transport_socket_connect_timeout.
    ref.handshake_timer = parent.dispatcher_.createTimer([&ref]() {
      spdlog::debug("[C{}] transport socket connect timeout", ref.connection->id());
      ref.listener.config->stats().downstream_cx_transport_socket_connect_timeout.inc();
      ref.connection->close(Network::ConnectionCloseType::NoFlush);
    });
    ref.handshake_timer->enableTimer(c.transport_socket_connect_timeout);
  }
  if (c.hcm != nullptr) {
    ref.filter = Filters::createHttpConnectionManager(
        c.hcm,
        Filters::HcmContext{parent.cluster_manager_, config->perConnectionBufferLimitBytes()},
        *ref.connection);
  } else {
    ref.filter = Filters::createTcpProxy(c.tcp_proxy, parent.cluster_manager_, *ref.connection);
  }
  if (ref.connection->state() == Network::Connection::State::Closed) {
    // The filter gave up at once (tcp_proxy with no healthy host); our LocalClose callback
    // already queued the connection for deletion.
    return;
  }
  ref.connection->setReadFilter(ref.filter.get());
}

void ConnectionHandler::ActiveListener::removeConnection(ActiveConnection& connection) {
  // Stats of the version that accepted it: an in-place update may have swapped `config`, but
  // stats are named after the address, which did not change.
  ListenerStats& stats = config->stats();
  stats.downstream_cx_active.dec();
  stats.downstream_cx_destroy.inc();
  stats.per_worker[parent.worker_index_].downstream_cx_active->dec();
  parent.num_connections_--;
  // Callbacks of this connection may be on the stack: delete on the next loop iteration.
  std::unique_ptr<ActiveConnection> owned = std::move(*connection.it);
  connections.erase(connection.it);
  owned->connection->setReadFilter(nullptr);
  parent.dispatcher_.deferredDelete(std::move(owned));
}

ConnectionHandler::ActiveConnection::ActiveConnection(ActiveListener& listener,
                                                      Network::ConnectionPtr connection,
                                                      FilterChainConstSharedPtr chain)
    : listener(listener), connection(std::move(connection)), chain(std::move(chain)) {
  this->connection->addConnectionCallbacks(*this);
}

ConnectionHandler::ActiveConnection::~ActiveConnection() {
  // Filter first: it unregisters itself from the connection.
  filter.reset();
  connection->removeConnectionCallbacks(*this);
}

void ConnectionHandler::ActiveConnection::onEvent(Network::ConnectionEvent event) {
  if (handshake_timer != nullptr) {
    handshake_timer->disableTimer();  // Connected: the handshake is done; or closed
  }
  if (event == Network::ConnectionEvent::RemoteClose ||
      event == Network::ConnectionEvent::LocalClose) {
    listener.removeConnection(*this);
  }
}

}  // namespace Proxy::Listener
