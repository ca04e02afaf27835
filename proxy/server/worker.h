#pragma once

// One worker thread: its own Dispatcher, its own copy of every thread-local slot, and a
// ConnectionHandler for the connections it accepts. The main thread talks to it only through
// post(); nothing here is shared with other workers.

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "proxy/event/dispatcher_impl.h"
#include "proxy/listener/connection_handler.h"
#include "proxy/listener/listener_manager.h"
#include "proxy/thread_local/thread_local.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Server {

class Worker : public Listener::WorkerHandle {
 public:
  // Main thread: creates the dispatcher and registers it with `tls` (before any slot is set).
  Worker(uint32_t index, ThreadLocal::Instance& tls, TimeSource& time_source);
  // Main thread, before start(): the cluster manager exists only once every thread is
  // registered.
  void initialize(Upstream::ClusterManager& cluster_manager);
  ~Worker() override;

  // Main thread. Starts the thread; `on_started` runs on the worker once its loop is running.
  void start(std::function<void()> on_started);
  // Main thread. Runs `cb` on the worker with its connection handler.
  void post(std::function<void(Listener::ConnectionHandler&)> cb) override;
  // Main thread. Ends the loop, tears down the worker's thread-local state on the worker, and
  // joins the thread.
  void stop();

  Event::Dispatcher& dispatcher() { return *dispatcher_; }
  uint32_t index() const { return index_; }

 private:
  void threadRoutine(std::function<void()> on_started);

  const uint32_t index_;
  ThreadLocal::Instance& tls_;
  Event::DispatcherPtr dispatcher_;
  std::unique_ptr<Listener::ConnectionHandler> handler_;
  std::thread thread_;
};

using WorkerPtr = std::unique_ptr<Worker>;

}  // namespace Proxy::Server
