#include "proxy/server/worker.h"

#include "absl/strings/str_cat.h"
#include "proxy/common/assert.h"

namespace Proxy::Server {

Worker::Worker(uint32_t index, ThreadLocal::Instance& tls, TimeSource& time_source)
    : index_(index),
      tls_(tls),
      dispatcher_(
          std::make_unique<Event::DispatcherImpl>(absl::StrCat("worker_", index), time_source)) {
  tls_.registerThread(*dispatcher_, /*main_thread=*/false);
}

void Worker::initialize(Upstream::ClusterManager& cluster_manager) {
  handler_ = std::make_unique<Listener::ConnectionHandler>(*dispatcher_, index_, cluster_manager);
}

Worker::~Worker() {
  ASSERT(!thread_.joinable());
}

void Worker::start(std::function<void()> on_started) {
  thread_ = std::thread([this, cb = std::move(on_started)]() mutable { threadRoutine(cb); });
}

void Worker::post(std::function<void(Listener::ConnectionHandler&)> cb) {
  dispatcher_->post([this, cb = std::move(cb)]() { cb(*handler_); });
}

void Worker::stop() {
  if (thread_.joinable()) {
    dispatcher_->exit();
    thread_.join();
  }
}

void Worker::threadRoutine(std::function<void()> on_started) {
  dispatcher_->post(std::move(on_started));
  dispatcher_->run(Event::Dispatcher::RunType::RunUntilExit);
  // Tear down on this thread, in dependency order: connections (which use the thread-local
  // connection pools), then this thread's thread-local objects, then anything deferred.
  handler_.reset();
  tls_.shutdownThread();
  dispatcher_->clearDeferredDeleteList();
}

}  // namespace Proxy::Server
