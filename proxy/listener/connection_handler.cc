#include "proxy/listener/connection_handler.h"

#include "proxy/common/assert.h"
#include "proxy/network/connection_impl.h"
#include "proxy/network/tcp_listener_impl.h"
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

void ConnectionHandler::addListener(ListenerConfigConstSharedPtr config) {
  ASSERT(dispatcher_.isThreadSafe());
  listeners_.push_back(std::make_unique<ActiveListener>(*this, std::move(config)));
}

void ConnectionHandler::stopListeners() {
  for (auto& listener : listeners_) {
    listener->listener->disable();
  }
}

void ConnectionHandler::drainConnections() {
  for (auto& listener : listeners_) {
    // startDrain() may close a connection, which removes it from the list: iterate a copy.
    std::vector<ActiveConnection*> connections;
    for (auto& c : listener->connections) {
      connections.push_back(c.get());
    }
    for (ActiveConnection* c : connections) {
      c->filter->startDrain();
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
  listener = std::make_unique<Network::TcpListenerImpl>(
      parent.dispatcher_, this->config->socket(parent.worker_index_), *this);
}

ConnectionHandler::ActiveListener::~ActiveListener() {
  listener.reset();
  while (!connections.empty()) {
    connections.front()->connection->close(Network::ConnectionCloseType::NoFlush);
  }
}

void ConnectionHandler::ActiveListener::onAccept(Network::IoHandle socket,
                                                 const Network::Address& remote,
                                                 const Network::Address& local) {
  const FilterChain* chain = config->findFilterChain(local);
  if (chain == nullptr) {
    config->stats().no_filter_chain_match.inc();
    return; // `socket` closes as it goes out of scope
  }
  auto connection = std::make_unique<Network::ConnectionImpl>(parent.dispatcher_,
                                                              std::move(socket), remote, local);
  connection->setBufferLimits(config->perConnectionBufferLimitBytes());
  ListenerStats& stats = config->stats();
  stats.downstream_cx_total.inc();
  stats.downstream_cx_active.inc();
  stats.per_worker[parent.worker_index_].downstream_cx_total->inc();
  stats.per_worker[parent.worker_index_].downstream_cx_active->inc();
  parent.num_connections_++;

  auto active = std::make_unique<ActiveConnection>(*this, std::move(connection));
  ActiveConnection& ref = *active;
  connections.push_front(std::move(active));
  ref.it = connections.begin();
  if (chain->hcm != nullptr) {
    ref.filter = Filters::createHttpConnectionManager(
        chain->hcm,
        Filters::HcmContext{parent.cluster_manager_, config->perConnectionBufferLimitBytes()},
        *ref.connection);
  } else {
    ref.filter = Filters::createTcpProxy(chain->tcp_proxy, parent.cluster_manager_,
                                         *ref.connection);
  }
  if (ref.connection->state() == Network::Connection::State::Closed) {
    // The filter gave up at once (tcp_proxy with no healthy host); our LocalClose callback
    // already queued the connection for deletion.
    return;
  }
  ref.connection->setReadFilter(ref.filter.get());
}

void ConnectionHandler::ActiveListener::removeConnection(ActiveConnection& connection) {
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
                                                      Network::ConnectionPtr connection)
    : listener(listener), connection(std::move(connection)) {
  this->connection->addConnectionCallbacks(*this);
}

ConnectionHandler::ActiveConnection::~ActiveConnection() {
  // Filter first: it unregisters itself from the connection.
  filter.reset();
  connection->removeConnectionCallbacks(*this);
}

void ConnectionHandler::ActiveConnection::onEvent(Network::ConnectionEvent event) {
  if (event == Network::ConnectionEvent::RemoteClose ||
      event == Network::ConnectionEvent::LocalClose) {
    listener.removeConnection(*this);
  }
}

} // namespace Proxy::Listener
