#pragma once

// A worker's listeners and connections: accepts on its own socket of each listener, builds the
// listener's filter for every connection and owns both until the connection closes. Worker
// (dispatcher) thread only; the main thread (the listener manager) reaches it only through
// Dispatcher::post().

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>

#include "proxy/event/dispatcher.h"
#include "proxy/listener/listener_config.h"
#include "proxy/network/connection_limit.h"
#include "proxy/network/listener.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Listener {

class ConnectionHandler {
 public:
  ConnectionHandler(Event::Dispatcher& dispatcher, uint32_t worker_index,
                    Upstream::ClusterManager& cluster_manager);
  ~ConnectionHandler();

  // Start accepting on this worker's socket of `config`.
  void addListener(ListenerConfigConstSharedPtr config);
  // A new version of a listener replaces the one tagged `old_tag`. Full replace: the new one
  // starts accepting on its (possibly shared) socket and the old one, in the same loop
  // iteration, stops accepting and drains its connections over `drain_spread` (it stays until
  // removeListener(old_tag)). In place (only filter chains changed): the old listener takes the
  // new config; connections on chains the new config still has are untouched, the others
  // drain.
  void replaceListener(uint64_t old_tag, ListenerConfigConstSharedPtr config, bool in_place,
                       std::chrono::milliseconds drain_spread);
  // Stop accepting on the listener tagged `tag` and drain its connections over `drain_spread`.
  void stopListener(uint64_t tag, std::chrono::milliseconds drain_spread);
  // Close the connections still draining in the window of the update tagged `tag` (end of
  // that drain window): those an in-place update to the version tagged `tag` left on removed
  // chains, wherever they are now.
  void closeDrainingConnections(uint64_t tag);
  // Forget the listener tagged `tag`, closing whatever connections it still has.
  void removeListener(uint64_t tag);

  // Server shutdown: stop accepting everywhere / drain every connection / close everything.
  void stopListeners();
  void drainConnections();
  void closeConnections();
  uint64_t numConnections() const { return num_connections_; }

 private:
  class ActiveListener;

  // One downstream connection and its terminal filter. The filter is declared after the
  // connection so it is destroyed first (it holds a reference to the connection).
  struct ActiveConnection : public Network::ConnectionCallbacks, public Event::DeferredDeletable {
    ActiveConnection(ActiveListener& listener, Network::ConnectionPtr connection,
                     FilterChainConstSharedPtr chain);
    ~ActiveConnection() override;
    void onEvent(Network::ConnectionEvent event) override;

    ActiveListener& listener;
    // The global connection limit's slot, given back after the connection (declared first, so
    // destroyed last).
    Network::ConnectionSlot slot;
    Network::ConnectionPtr connection;
    FilterChainConstSharedPtr chain;  // keeps the chain's config alive for this connection
    Filters::NetworkFilterPtr filter;
    // transport_socket_connect_timeout, until the TLS handshake completes (Connected).
    Event::TimerPtr handshake_timer;
    bool draining = false;
    // The update whose drain window this connection is in: closeDrainingConnections(tag) closes
    // exactly these. (Matching the listener's current tag instead missed connections drained by
    // an in-place update once a newer in-place update retagged the listener: under in-place
    // updates more frequent than the drain time they were never closed. Found by
    // xds_listener_integration_test DrainWindowEndClosesConnectionsOnRemovedChains...)
    uint64_t drain_tag = 0;
    std::list<std::unique_ptr<ActiveConnection>>::iterator it;
  };

  // An accepted socket the listener filters (tls_inspector) are still looking at: its first
  // bytes are peeked, not consumed, until the ClientHello is complete (or is not TLS), bounded
  // by listener_filters_timeout. Then the filter chain is chosen and the connection created.
  struct PendingSocket : public Event::DeferredDeletable {
    PendingSocket(ActiveListener& listener, Network::IoHandle socket,
                  const Network::Address& remote, const Network::Address& local);
    void onReadable();
    void onTimeout();
    // Done inspecting: a connection on the chain chosen with what was found, or (chain
    // lookup failing, `close`) the socket closed.
    void finish(bool close, const std::string& server_name, std::string_view transport_protocol);

    ActiveListener& listener;
    Network::ConnectionSlot slot;  // handed to the connection, or given back with the socket
    Network::IoHandle socket;
    Network::Address remote;
    Network::Address local;
    Event::FileEventPtr file_event;
    Event::TimerPtr timer;
    std::list<std::unique_ptr<PendingSocket>>::iterator it;
  };

  class ActiveListener : public Network::TcpListenerCallbacks {
   public:
    ActiveListener(ConnectionHandler& parent, ListenerConfigConstSharedPtr config);
    ~ActiveListener() override;
    void onAccept(Network::IoHandle socket, const Network::Address& remote,
                  const Network::Address& local) override;
    // A connection on `chain` (null: none matched; the socket is closed and counted). `slot`:
    // the socket's global connection slot, kept by the connection.
    void newConnection(Network::IoHandle socket, const Network::Address& remote,
                       const Network::Address& local, const FilterChainConstSharedPtr* chain,
                       Network::ConnectionSlot slot);
    void removeConnection(ActiveConnection& connection);
    void stopAccepting() { listener.reset(); }
    // Drain the connections `pred` selects, in the drain window of the update tagged `tag`.
    template <class Pred>
    void drain(uint64_t tag, std::chrono::milliseconds spread, Pred pred);
    // Close the connections draining in the window of the update tagged `tag`.
    void closeDraining(uint64_t tag);

    ConnectionHandler& parent;
    ListenerConfigConstSharedPtr config;
    std::unique_ptr<Network::Listener> listener;
    std::list<std::unique_ptr<ActiveConnection>> connections;
    std::list<std::unique_ptr<PendingSocket>> pending_sockets;
  };

  ActiveListener* find(uint64_t tag);

  Event::Dispatcher& dispatcher_;
  const uint32_t worker_index_;
  Upstream::ClusterManager& cluster_manager_;
  std::list<std::unique_ptr<ActiveListener>> listeners_;
  uint64_t num_connections_ = 0;
};

}  // namespace Proxy::Listener
