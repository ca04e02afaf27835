#pragma once

// A worker's listeners and connections: accepts on its own socket of each listener, builds the
// listener's filter for every connection and owns both until the connection closes. Worker
// (dispatcher) thread only; the main thread reaches it through Dispatcher::post().

#include <cstdint>
#include <list>
#include <memory>

#include "proxy/event/dispatcher.h"
#include "proxy/listener/listener_config.h"
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
  // Stop accepting on every listener (sockets stay open: the kernel keeps queueing).
  void stopListeners();
  // Ask every connection to finish what it is doing and close (HTTP: connection: close).
  void drainConnections();
  // Close every connection now (end of the drain window, or shutdown).
  void closeConnections();
  uint64_t numConnections() const { return num_connections_; }

private:
  class ActiveListener;

  // One downstream connection and its terminal filter. The filter is declared after the
  // connection so it is destroyed first (it holds a reference to the connection).
  struct ActiveConnection : public Network::ConnectionCallbacks, public Event::DeferredDeletable {
    ActiveConnection(ActiveListener& listener, Network::ConnectionPtr connection);
    ~ActiveConnection() override;
    void onEvent(Network::ConnectionEvent event) override;

    ActiveListener& listener;
    Network::ConnectionPtr connection;
    Filters::NetworkFilterPtr filter;
    std::list<std::unique_ptr<ActiveConnection>>::iterator it;
  };

  class ActiveListener : public Network::TcpListenerCallbacks {
  public:
    ActiveListener(ConnectionHandler& parent, ListenerConfigConstSharedPtr config);
    ~ActiveListener() override;
    void onAccept(Network::IoHandle socket, const Network::Address& remote,
                  const Network::Address& local) override;
    void removeConnection(ActiveConnection& connection);

    ConnectionHandler& parent;
    ListenerConfigConstSharedPtr config;
    std::unique_ptr<Network::Listener> listener;
    std::list<std::unique_ptr<ActiveConnection>> connections;
  };

  Event::Dispatcher& dispatcher_;
  const uint32_t worker_index_;
  Upstream::ClusterManager& cluster_manager_;
  std::list<std::unique_ptr<ActiveListener>> listeners_;
  uint64_t num_connections_ = 0;
};

} // namespace Proxy::Listener
