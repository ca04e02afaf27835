#pragma once

// The cluster manager on this (main) thread with two worker threads, for the tests of health
// state crossing threads (cluster_manager_health_test.cc, grpc_health_check_test.cc).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/thread_local/thread_local_impl.h"
#include "proxy/upstream/cluster_manager_impl.h"
#include "test/unit/upstream/upstream_test_util.h"

namespace Proxy::Upstream {

using namespace std::chrono_literals;

inline constexpr int kWorkers = 2;
inline constexpr std::chrono::seconds kDeadline{30};

// A socket bound to 127.0.0.1:0: connections are refused until listen() is called (then the
// kernel completes them without anyone accepting, which is all a connect-only check needs).
class Port {
 public:
  Port() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(0, ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Port() { ::close(fd_); }
  void listen() { EXPECT_EQ(0, ::listen(fd_, 64)); }
  uint32_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint32_t port_ = 0;
};

class ClusterManagerHealthTest : public testing::Test {
 protected:
  void SetUp() override {
    tls_.registerThread(main_, /*main_thread=*/true);
    for (int i = 0; i < kWorkers; i++) {
      workers_.push_back(
          std::make_unique<Event::DispatcherImpl>("worker_" + std::to_string(i), time_source_));
      tls_.registerThread(*workers_.back(), /*main_thread=*/false);
    }
    for (int i = 0; i < kWorkers; i++) {
      threads_.emplace_back(
          [this, i] { workers_[i]->run(Event::Dispatcher::RunType::RunUntilExit); });
    }
    cm_ = std::make_unique<ClusterManagerImpl>(main_, tls_, store_);
  }

  void TearDown() override {
    cm_.reset();
    tls_.shutdownGlobalThreading();
    for (auto& worker : workers_) {
      Event::Dispatcher* dispatcher = worker.get();
      dispatcher->post([this, dispatcher] {
        tls_.shutdownThread();
        dispatcher->exit();
      });
    }
    for (std::thread& thread : threads_) {
      thread.join();
    }
    tls_.shutdownThread();
    main_.clearDeferredDeleteList();
  }

  // Runs the main loop (the checker's timers and connections) until `condition` holds.
  testing::AssertionResult runMainUntil(const std::function<bool()>& condition,
                                        const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      main_.run(Event::Dispatcher::RunType::NonBlock);
      if (condition()) {
        return testing::AssertionSuccess();
      }
      std::this_thread::sleep_for(1ms);  // the poll interval, not a synchronisation
    }
    return testing::AssertionFailure() << "timed out waiting for " << what;
  }

  // The ports worker `i`'s load balancer picks for `backend` in `picks` picks.
  std::multiset<uint32_t> picksOnWorker(int i, int picks) {
    auto promise = std::make_shared<std::promise<std::multiset<uint32_t>>>();
    std::future<std::multiset<uint32_t>> future = promise->get_future();
    workers_[i]->post([this, promise, picks] {
      std::multiset<uint32_t> ports;
      ThreadLocalCluster* cluster = cm_->getThreadLocalCluster("backend");
      for (int n = 0; cluster != nullptr && n < picks; n++) {
        HostConstSharedPtr host = cluster->loadBalancer().chooseHost();
        ports.insert(host == nullptr ? 0 : host->address().port());
      }
      promise->set_value(ports);
    });
    EXPECT_EQ(std::future_status::ready, future.wait_for(kDeadline));
    return future.get();
  }

  RealTimeSource time_source_;
  Stats::Store store_;
  ThreadLocal::InstanceImpl tls_;
  Event::DispatcherImpl main_{"main", time_source_};
  std::vector<std::unique_ptr<Event::DispatcherImpl>> workers_;
  std::vector<std::thread> threads_;
  std::unique_ptr<ClusterManagerImpl> cm_;
};

}  // namespace Proxy::Upstream
