#pragma once

// The fixture of the xds_client unit tests: a client on a simulated dispatcher (time moves only
// when the test says) with a fake transport, so that the test plays the management server.
// Shared by xds_client_test.cc (subscriptions, updates, ACK/NACK) and xds_stream_test.cc
// (streams: opening, reconnecting, backoff, rate limit).

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/unit/xds_client/fake_transport.h"
#include "test/unit/xds_client/simulated_dispatcher.h"
#include "xds_client/xds_client_impl.h"

namespace Proxy::Xds {

// What the first request of every stream carries.
inline constexpr char kNode[] = R"pb(
  node {
    id: "node-1"
    cluster: "edge"
    user_agent_name: "xds-proxy"
    user_agent_build_version { version { minor_number: 1 } }
    client_features: "xds.config.resource-in-sotw"
  }
)pb";

class XdsClientTest : public ::testing::Test {
 protected:
  XdsClientTest() {
    config_.node.set_id("node-1");
    config_.node.set_cluster("edge");
    fillNodeIdentity(config_.node);
    config_.ads = XdsStreamConfig{"ipv4:127.0.0.1:18000", /*delta=*/false, {}};
    for (auto type_url : {kListenerTypeUrl, kRouteConfigurationTypeUrl, kClusterTypeUrl,
                          kClusterLoadAssignmentTypeUrl}) {
      XdsTypeConfig type;
      type.ads = true;
      config_.types[std::string(type_url)] = type;
    }
    // Jitter off: every backoff delay is the low end, interval / 2.
    config_.random = [] { return 0; };
  }

  void createClient() {
    client_ = std::make_unique<XdsClientImpl>(
        dispatcher_, config_, std::make_unique<::Proxy::Test::FakeTransportFactory>(streams_),
        Stats::Scope(store_, ""));
  }

  WatchHandle watch(std::string_view type_url, const std::vector<std::string>& names,
                    Watcher& watcher, WatchOptions options = {}) {
    auto handle = client_->watch(type_url, names, watcher, std::move(options));
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.ok() ? *std::move(handle) : nullptr;
  }

  ::Proxy::Test::FakeStream& stream(size_t i) { return *streams_->all.at(i); }
  size_t streamCount() const { return streams_->all.size(); }
  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  int64_t gauge(const std::string& name) { return store_.gauge(name).value(); }
  std::string text(const std::string& name) { return store_.textReadout(name).value(); }

  Stats::Store store_;
  ::Proxy::Test::SimulatedDispatcher dispatcher_;
  std::shared_ptr<::Proxy::Test::FakeTransportFactory::Streams> streams_ =
      std::make_shared<::Proxy::Test::FakeTransportFactory::Streams>();
  XdsClientConfig config_;
  std::unique_ptr<XdsClientImpl> client_;  // destroyed before the dispatcher
};

class XdsClientDeltaTest : public XdsClientTest {
 protected:
  XdsClientDeltaTest() { config_.ads->delta = true; }
};

}  // namespace Proxy::Xds
