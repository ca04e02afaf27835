// RDS route tables reaching workers through a thread-local slot, with real threads: a real
// ThreadLocal::InstanceImpl, a main DispatcherImpl on the test thread and four worker
// DispatcherImpls on their own threads. The main thread publishes 1,000 route tables through
// RdsRouteConfigProvider::onConfigUpdate() while every worker keeps reading config() and routing
// with it. Run under ThreadSanitizer (label `threading`): any unsynchronised access between the
// publisher and the readers is a report. The assertions: a reader only ever sees a complete
// table (every route of one version), versions only move forward on a thread, the done callback
// of runOnAllThreads fires once per update, in order, and in the end every worker serves the
// last version.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "envoy/config/route/v3/route.pb.h"
#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/router/rds_impl.h"
#include "proxy/router/router.h"
#include "proxy/stats/stats.h"
#include "proxy/thread_local/thread_local_impl.h"

namespace Proxy::Filters {
namespace {

using Router::RdsRouteConfigProvider;
using Router::RdsRouteConfigProviderSharedPtr;
using Router::RouteConfigProviderManager;

using namespace std::chrono_literals;

constexpr int kWorkers = 4;
constexpr int kUpdates = 1000;
constexpr int kRoutes = 16;
constexpr std::chrono::seconds kDeadline{120};

// Version `version`: kRoutes routes "/r<k>", each answering "<version>:<k>" directly.
envoy::config::route::v3::RouteConfiguration table(int version) {
  envoy::config::route::v3::RouteConfiguration config;
  config.set_name("routes");
  auto* vhost = config.add_virtual_hosts();
  vhost->set_name("all");
  vhost->add_domains("*");
  for (int k = 0; k < kRoutes; k++) {
    auto* route = vhost->add_routes();
    route->mutable_match()->set_path(absl::StrCat("/r", k));
    route->mutable_direct_response()->set_status(200);
    route->mutable_direct_response()->mutable_body()->set_inline_string(
        absl::StrCat(version, ":", k));
  }
  return config;
}

Http::RequestHeaderMap request(int k) {
  Http::RequestHeaderMap headers;
  headers.addCopy(Http::Headers::Method, "GET");
  headers.addCopy(Http::Headers::Authority, "example.com");
  headers.addCopy(Http::Headers::Path, absl::StrCat("/r", k));
  headers.addCopy(Http::Headers::Scheme, "http");
  return headers;
}

// What one worker's reader saw. Written only on that worker; read by the test thread after
// the worker thread was joined.
struct ReaderState {
  uint64_t reads = 0;
  int last_version = 0;
  int versions_seen = 0;
  std::vector<std::string> problems;
};

// A reader on one worker: on every loop iteration (a 0 ms timer) it takes the current table,
// routes every path with it and checks the table is whole and not older than the last one.
class Reader {
 public:
  Reader(Event::Dispatcher& dispatcher, RdsRouteConfigProvider& provider, ReaderState& state)
      : provider_(provider), state_(state), requests_(makeRequests()) {
    timer_ = dispatcher.createTimer([this] { onTimer(); });
    timer_->enableTimer(0ms);
  }

  // One read now, without re-arming (the last check before the worker exits).
  void readOnce() {
    timer_.reset();
    std::shared_ptr<const Router::Config> config = provider_.config();
    if (config == nullptr) {
      problem("no table");
      return;
    }
    check(*config);
  }

 private:
  static std::vector<Http::RequestHeaderMap> makeRequests() {
    std::vector<Http::RequestHeaderMap> out;
    for (int k = 0; k < kRoutes; k++) {
      out.push_back(request(k));
    }
    return out;
  }

  void onTimer() {
    // The request's view: one snapshot, held while it is used.
    std::shared_ptr<const Router::Config> config = provider_.config();
    if (config != nullptr) {
      check(*config);
    }
    timer_->enableTimer(0ms);
  }

  void check(const Router::Config& config) {
    state_.reads++;
    int version = -1;
    for (int k = 0; k < kRoutes; k++) {
      const Router::RouteEntry* route = config.route(requests_[k], /*random_value=*/0);
      if (route == nullptr) {
        problem(absl::StrCat("no route for /r", k));
        return;
      }
      const std::string& body = route->responseBody();
      const size_t colon = body.find(':');
      int v = 0;
      int key = 0;
      if (colon == std::string::npos || !absl::SimpleAtoi(body.substr(0, colon), &v) ||
          !absl::SimpleAtoi(body.substr(colon + 1), &key) || key != k) {
        problem(absl::StrCat("route /r", k, " answers '", body, "'"));
        return;
      }
      if (version == -1) {
        version = v;
      } else if (v != version) {
        problem(absl::StrCat("a torn table: /r0 has version ", version, ", /r", k, " has ", v));
        return;
      }
    }
    if (version < state_.last_version) {
      problem(absl::StrCat("went back from version ", state_.last_version, " to ", version));
    } else if (version > state_.last_version) {
      state_.versions_seen++;
      state_.last_version = version;
    }
  }

  void problem(std::string what) {
    if (state_.problems.size() < 10) {
      state_.problems.push_back(std::move(what));
    }
  }

  RdsRouteConfigProvider& provider_;
  ReaderState& state_;
  const std::vector<Http::RequestHeaderMap> requests_;
  Event::TimerPtr timer_;
};

TEST(RdsThreadLocalTest, WorkersOnlySeeCompleteTablesWhileMainPublishesAThousandUpdates) {
  // Main registers first, then the workers, before any worker thread runs (the registry's
  // contract).
  RealTimeSource time_source;
  Event::DispatcherImpl main("main", time_source);
  ThreadLocal::InstanceImpl tls;
  tls.registerThread(main, /*main_thread=*/true);
  std::vector<std::unique_ptr<Event::DispatcherImpl>> workers;
  for (int i = 0; i < kWorkers; i++) {
    workers.push_back(
        std::make_unique<Event::DispatcherImpl>(absl::StrCat("worker_", i), time_source));
    tls.registerThread(*workers.back(), /*main_thread=*/false);
  }

  Stats::Store store;
  auto manager = std::make_unique<RouteConfigProviderManager>(main, tls, store);
  RdsRouteConfigProviderSharedPtr provider = manager->getOrCreate("routes");

  // Each worker runs its loop on its own thread, with a reader on it from the start (before the
  // first table: config() is null then, which the reader skips).
  std::vector<ReaderState> states(kWorkers);
  std::vector<std::unique_ptr<Reader>> readers(kWorkers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; i++) {
    Event::Dispatcher* dispatcher = workers[i].get();
    dispatcher->post([&, i, dispatcher] {
      readers[i] = std::make_unique<Reader>(*dispatcher, *provider, states[i]);
    });
    threads.emplace_back(
        [dispatcher] { dispatcher->run(Event::Dispatcher::RunType::RunUntilExit); });
  }

  // Main publishes update n+1 on the loop iteration after update n, without waiting for the
  // workers: publications overlap with each other, with the readers and with the done
  // callbacks coming back. Each done callback must fire once, in publication order.
  int published = 0;
  int done = 0;
  std::vector<std::string> done_problems;
  std::function<void()> publish_next = [&] {
    const int version = ++published;
    const absl::Status status =
        provider->onConfigUpdate(table(version), absl::StrCat(version), [&, version] {
          if (++done != version && done_problems.size() < 10) {
            done_problems.push_back(
                absl::StrCat("done callback of update ", version, " fired as #", done));
          }
          if (done == kUpdates) {
            main.exit();
          }
        });
    ASSERT_TRUE(status.ok()) << status;
    if (published < kUpdates) {
      main.post(publish_next);
    }
  };
  main.post(publish_next);
  bool timed_out = false;
  Event::TimerPtr deadline = main.createTimer([&] {
    timed_out = true;
    main.exit();
  });
  deadline->enableTimer(kDeadline);
  main.run(Event::Dispatcher::RunType::RunUntilExit);
  ASSERT_FALSE(timed_out) << "only " << done << " of " << kUpdates << " done callbacks fired";
  EXPECT_EQ(done, kUpdates);
  EXPECT_TRUE(done_problems.empty()) << done_problems[0];
  EXPECT_EQ(provider->versionInfo(), absl::StrCat(kUpdates));
  EXPECT_EQ(store.counter("http.rds.routes.update_success").value(), kUpdates);

  // Every worker serves the last version now (the last done callback said so): each checks
  // once more with a fresh read, drops its reader and exits. Then the registry shuts down in
  // the server's order.
  tls.shutdownGlobalThreading();
  for (int i = 0; i < kWorkers; i++) {
    Event::Dispatcher* dispatcher = workers[i].get();
    dispatcher->post([&, i, dispatcher] {
      readers[i]->readOnce();
      readers[i].reset();
      tls.shutdownThread();
      dispatcher->exit();
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  provider.reset();
  manager.reset();
  tls.shutdownThread();

  // What the readers saw.
  int total_versions_seen = 0;
  for (int i = 0; i < kWorkers; i++) {
    const ReaderState& state = states[i];
    EXPECT_TRUE(state.problems.empty()) << "worker_" << i << ": " << state.problems[0];
    EXPECT_GT(state.reads, 0u) << "worker_" << i;
    EXPECT_EQ(state.last_version, kUpdates) << "worker_" << i;
    total_versions_seen += state.versions_seen;
    std::cout << "worker_" << i << ": " << state.reads << " reads, " << state.versions_seen
              << " distinct versions seen\n";
  }
  // The readers really ran while tables changed (not only before the first or after the last).
  EXPECT_GT(total_versions_seen, kWorkers);
}

}  // namespace
}  // namespace Proxy::Filters
