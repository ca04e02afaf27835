// A management server we did not write drives our proxy: go-control-plane's example server
// (examples/go-control-plane, on the library most Go control planes are built on), in each xDS
// mode (ADS SotW, ADS Delta, per-type SotW streams). The real Envoy is driven by the same
// server in the same test, as the control case: what Envoy does with the same responses is
// what the proxy must do. Each data plane has its own node id and snapshot (the same but for
// its listener's port: both bind with SO_REUSEPORT), PUT through the server's admin API.
//  - both accept all four types (their own stats), are connected, and route per snapshot;
//  - a new snapshot (endpoints swapped, a route and a cluster added, a cluster removed) is
//    followed by each with zero failed requests under a running load loop, and both end in
//    the same routing;
//  - a listener neither can bind is NACKed by each; the Go server logs each NACK with its
//    error_detail (the proxy's message, exactly), both keep serving the previous snapshot, and
//    apply the next one.

#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/integration/control_plane_e2e/e2e_support.h"
#include "test/integration/control_plane_e2e/go_control_plane_process.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/xds/xds_test_base.h"

namespace Proxy::ControlPlaneE2e {
namespace {

using Integration::FakeUpstream;
using Integration::FakeUpstreamOptions;
using Integration::FakeUpstreamPtr;
using XdsIntegration::PortHolder;

constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";

class GoControlPlaneE2eTest : public testing::TestWithParam<XdsMode> {
 protected:
  // One data plane: its process and the port its `ingress` listener binds.
  struct Side {
    std::string node;
    std::unique_ptr<PortHolder> port;
    std::unique_ptr<DataPlaneProcess> process;
  };

  void SetUp() override {
    for (const char* upstream_name : {"upstream-a", "upstream-b", "upstream-c"}) {
      FakeUpstreamOptions options;
      options.name = upstream_name;
      absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
      ASSERT_TRUE(upstream.ok()) << upstream.status();
      upstreams_[upstream_name] = std::move(*upstream);
    }
    for (DataPlane kind : {DataPlane::Proxy, DataPlane::Envoy}) {
      Side& side = sides_[kind];
      side.node = kind == DataPlane::Proxy ? "go-e2e-proxy" : "go-e2e-envoy";
      side.port = std::make_unique<PortHolder>(PortHolder::Mode::ReservedForReusePort);
    }
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- go-control-plane example log ----\n" << server_.log();
    }
    for (auto& [kind, side] : sides_) {
      side.process.reset();
    }
    server_.kill();
  }

  uint32_t port(const std::string& upstream) { return upstreams_[upstream]->port(); }
  uint32_t listenerPort(DataPlane kind) { return sides_[kind].port->port(); }

  // The demo's shape, plus a cluster no route uses (`spare`, upstream-c).
  SnapshotSpec v1(DataPlane kind) {
    SnapshotSpec spec;
    spec.version = "1";
    spec.mode = GetParam();
    spec.listener_port = listenerPort(kind);
    spec.routes = {{"/service/1", "service1"}, {"/service/2", "service2"}};
    spec.clusters = {{"service1", {port("upstream-a")}},
                     {"service2", {port("upstream-b")}},
                     {"spare", {port("upstream-c")}}};
    return spec;
  }

  // Endpoints swapped, /service/3 -> service3 (a new cluster), `spare` removed. Nothing the
  // load uses depends on the order the types arrive in: go-control-plane does not order them.
  SnapshotSpec v2(DataPlane kind) {
    SnapshotSpec spec = v1(kind);
    spec.version = "2";
    spec.routes.push_back({"/service/3", "service3"});
    spec.clusters = {{"service1", {port("upstream-b")}},
                     {"service2", {port("upstream-a")}},
                     {"service3", {port("upstream-c")}}};
    return spec;
  }

  // Puts `make(kind)` as each data plane's own snapshot.
  template <class Make>
  testing::AssertionResult putBoth(Make make) {
    for (DataPlane kind : {DataPlane::Proxy, DataPlane::Envoy}) {
      if (auto put = server_.putSnapshot(snapshotYaml(make(kind)), sides_[kind].node); !put) {
        return put;
      }
    }
    return testing::AssertionSuccess();
  }

  // Starts the server with v1 for both, then both data planes, and waits until they are ready.
  testing::AssertionResult startAll() {
    if (auto started = server_.start(); !started) {
      return started;
    }
    if (auto put = putBoth([this](DataPlane kind) { return v1(kind); }); !put) {
      return put;
    }
    for (DataPlane kind : {DataPlane::Proxy, DataPlane::Envoy}) {
      Side& side = sides_[kind];
      side.process =
          std::make_unique<DataPlaneProcess>(kind, GetParam(), side.node, server_.xdsPort());
      if (auto started = side.process->start(30s); !started) {
        return started << " (" << name(kind) << ")";
      }
    }
    return testing::AssertionSuccess();
  }

  // Which upstream answers each path, on one data plane.
  std::map<std::string, std::string> routing(DataPlane kind) {
    std::map<std::string, std::string> out;
    for (const char* path : {"/service/1", "/service/2", "/service/3", "/nothing"}) {
      out[path] = upstreamFor(listenerPort(kind), path);
    }
    return out;
  }

  std::map<std::string, FakeUpstreamPtr> upstreams_;
  std::map<DataPlane, Side> sides_;
  GoControlPlaneProcess server_;
};

TEST_P(GoControlPlaneE2eTest, BothDataPlanesAcceptRouteAndFollowANewSnapshotUnderLoad) {
  ASSERT_TRUE(startAll());
  for (DataPlane kind : {DataPlane::Proxy, DataPlane::Envoy}) {
    SCOPED_TRACE(name(kind));
    DataPlaneProcess& process = *sides_[kind].process;
    // Every type accepted, connected.
    for (const std::string& counter : process.updateSuccessStats(v1(kind))) {
      EXPECT_GE(process.stat(counter), 1) << counter;
    }
    EXPECT_TRUE(process.waitForConnectedState(1));
    EXPECT_EQ(upstreamFor(listenerPort(kind), "/service/1"), "upstream-a");
    EXPECT_EQ(upstreamFor(listenerPort(kind), "/service/2"), "upstream-b");
  }

  // Keep-alive load on both while v2 is applied.
  LoadLoop proxy_load(listenerPort(DataPlane::Proxy), {"/service/1", "/service/2"}, 2);
  LoadLoop envoy_load(listenerPort(DataPlane::Envoy), {"/service/1", "/service/2"}, 2);
  ASSERT_TRUE(proxy_load.waitForMoreRequests(100));
  ASSERT_TRUE(envoy_load.waitForMoreRequests(100));
  ASSERT_TRUE(putBoth([this](DataPlane kind) { return v2(kind); }));
  for (LoadLoop* load : {&proxy_load, &envoy_load}) {
    ASSERT_TRUE(load->waitForAnswer("/service/1", "upstream-b"));
    ASSERT_TRUE(load->waitForAnswer("/service/2", "upstream-a"));
  }
  for (DataPlane kind : {DataPlane::Proxy, DataPlane::Envoy}) {
    ASSERT_TRUE(waitForUpstream(listenerPort(kind), "/service/3", "upstream-c")) << name(kind);
    // `spare` is gone.
    EXPECT_TRUE(sides_[kind].process->waitForStat("cluster_manager.cluster_removed", 1))
        << name(kind);
  }
  ASSERT_TRUE(proxy_load.waitForMoreRequests(100));
  ASSERT_TRUE(envoy_load.waitForMoreRequests(100));
  proxy_load.stop();
  envoy_load.stop();
  EXPECT_EQ(proxy_load.failures(), 0) << "proxy: of " << proxy_load.requests() << " requests:\n"
                                      << proxy_load.failureSamples();
  EXPECT_EQ(envoy_load.failures(), 0) << "Envoy: of " << envoy_load.requests() << " requests:\n"
                                      << envoy_load.failureSamples();

  // Both end in the same routing.
  const std::map<std::string, std::string> expected = {{"/service/1", "upstream-b"},
                                                       {"/service/2", "upstream-a"},
                                                       {"/service/3", "upstream-c"},
                                                       {"/nothing", "HTTP 404"}};
  EXPECT_EQ(routing(DataPlane::Envoy), expected);
  EXPECT_EQ(routing(DataPlane::Proxy), expected);
}

TEST_P(GoControlPlaneE2eTest, EachNackIsLoggedWithItsErrorDetail) {
  ASSERT_TRUE(startAll());

  // v2 adds a listener on a port a socket of this test holds (without SO_REUSEPORT): neither
  // data plane can bind it, and each NACKs.
  PortHolder taken(PortHolder::Mode::Listening);
  ASSERT_TRUE(putBoth([&](DataPlane kind) {
    SnapshotSpec spec = v1(kind);
    spec.version = "2";
    spec.extra_listeners = {{"blocked", taken.port()}};
    return spec;
  }));
  const std::string bind_error =
      absl::StrCat("cannot bind '127.0.0.1:", taken.port(), "': Address already in use");
  absl::StatusOr<GoControlPlaneProcess::Nack> proxy_nack =
      server_.waitForNack(sides_[DataPlane::Proxy].node, kListenerType);
  ASSERT_TRUE(proxy_nack.ok()) << proxy_nack.status();
  EXPECT_EQ(proxy_nack->delta, GetParam() == XdsMode::AdsDelta);
  // The proxy's message: the resource by index and name, the field, the reason. (The
  // listeners' order in go-control-plane's responses is a map's: `blocked` is index 0 or 1,
  // and alone in a Delta response.)
  EXPECT_TRUE(proxy_nack->error_detail ==
                  absl::StrCat("resource index 0: blocked: address: ", bind_error) ||
              proxy_nack->error_detail ==
                  absl::StrCat("resource index 1: blocked: address: ", bind_error))
      << proxy_nack->error_detail;
  // The server logged it, with the error_detail.
  EXPECT_TRUE(
      absl::StrContains(server_.log(), absl::StrCat("NACK node=go-e2e-proxy type=", kListenerType)))
      << server_.log();
  EXPECT_TRUE(absl::StrContains(server_.log(), bind_error)) << server_.log();
  // Envoy too, in its words.
  absl::StatusOr<GoControlPlaneProcess::Nack> envoy_nack =
      server_.waitForNack(sides_[DataPlane::Envoy].node, kListenerType);
  ASSERT_TRUE(envoy_nack.ok()) << envoy_nack.status();
  EXPECT_EQ(envoy_nack->error_detail,
            absl::StrCat("Error adding/updating listener(s) blocked: ", bind_error, "\n"));

  // Both counted the rejection and keep serving the previous snapshot.
  for (DataPlane kind : {DataPlane::Proxy, DataPlane::Envoy}) {
    SCOPED_TRACE(name(kind));
    EXPECT_TRUE(sides_[kind].process->waitForStat("listener_manager.lds.update_rejected", 1));
    EXPECT_EQ(upstreamFor(listenerPort(kind), "/service/1"), "upstream-a");
  }

  // v3 drops the listener and swaps the endpoints: both apply it.
  ASSERT_TRUE(putBoth([this](DataPlane kind) {
    SnapshotSpec spec = v2(kind);
    spec.version = "3";
    return spec;
  }));
  for (DataPlane kind : {DataPlane::Proxy, DataPlane::Envoy}) {
    EXPECT_TRUE(waitForUpstream(listenerPort(kind), "/service/1", "upstream-b")) << name(kind);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, GoControlPlaneE2eTest,
                         testing::Values(XdsMode::AdsSotw, XdsMode::AdsDelta, XdsMode::PerTypeSotw),
                         [](const testing::TestParamInfo<XdsMode>& info) {
                           return name(info.param);
                         });

}  // namespace
}  // namespace Proxy::ControlPlaneE2e
