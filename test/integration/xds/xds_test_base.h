#pragma once

// The fixture of the xDS end-to-end tests: an AdsServer the test drives, the real proxy binary
// configured only through it (adsBootstrap), and FakeUpstreams. Helpers send one xDS response
// and wait for its ACK (the proxy applied it on the main thread), read stats and /config_dump,
// and send requests. Every wait is a condition with a deadline.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"
#include "test/integration/xds/ads_server.h"
#include "test/integration/xds/xds_resources.h"

namespace Proxy::XdsIntegration {

using Integration::FakeUpstream;
using Integration::FakeUpstreamOptions;
using Integration::FakeUpstreamPtr;
using Integration::HttpClient;
using Integration::HttpClientPtr;
using Integration::HttpRequest;
using Integration::HttpResponse;
using Integration::ProxyOptions;
using Integration::ProxyProcess;

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;

// A FakeUpstream named `name` with default behaviour (fails the test if it cannot bind).
FakeUpstreamPtr makeUpstream(const std::string& name);

// GET `path` on a fresh connection to 127.0.0.1:`port`.
absl::StatusOr<HttpResponse> get(uint32_t port, const std::string& path,
                                 std::vector<std::pair<std::string, std::string>> headers = {});

// A socket on 127.0.0.1 the test holds to occupy a port: `listening` without SO_REUSEPORT
// makes any other bind of the port fail ("port already bound by another process"); bound with
// SO_REUSEPORT and not listening it only reserves a free port number that a proxy listener
// may still bind (the kernel never hands it out for port 0 meanwhile).
class PortHolder {
 public:
  enum class Mode { Listening, ReservedForReusePort };
  explicit PortHolder(Mode mode);
  ~PortHolder();
  PortHolder(const PortHolder&) = delete;
  PortHolder& operator=(const PortHolder&) = delete;
  uint32_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint32_t port_ = 0;
};

// /config_dump, parsed.
class ConfigDump {
 public:
  static absl::StatusOr<ConfigDump> fetch(ProxyProcess& proxy, bool include_eds = false);

  // The dump's section whose "@type" ends in `type` ("ListenersConfigDump"); null if absent.
  const google::protobuf::Struct* section(const std::string& type) const;
  // dynamic_listeners[name=`name`] (null when absent).
  const google::protobuf::Struct* dynamicListener(const std::string& name) const;
  // The names under `list` of section `type`, e.g. ("ClustersConfigDump",
  // "dynamic_warming_clusters") -> cluster names; ("RoutesConfigDump", "dynamic_route_configs")
  // -> route config names.
  std::vector<std::string> names(const std::string& type, const std::string& list) const;
  const std::string& json() const { return json_; }

 private:
  google::protobuf::Struct root_;
  std::string json_;
};

// Field access on parsed JSON: root["a"]["b"]... ; null when a step is missing.
const google::protobuf::Value* field(const google::protobuf::Struct& root,
                                     const std::vector<std::string>& path);
std::string stringField(const google::protobuf::Struct& root, const std::vector<std::string>& path);

class XdsIntegrationTest : public testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts the proxy (`--concurrency`, `--drain-time-s`) against the ADS server and waits for
  // its admin address and its ADS stream; /ready is still 503. `rate_limit_settings`: the ADS
  // config source's, as a YAML flow mapping (none when empty).
  testing::AssertionResult startProxy(uint32_t concurrency = 2, uint32_t drain_time_s = 2,
                                      const std::string& rate_limit_settings = "");

  // Envoy's initialisation, played by the server: CDS (wildcard) gets `clusters`, EDS (the
  // names the EDS clusters asked for) gets `endpoints`, LDS gets `listeners`, RDS (the names
  // the listeners asked for) gets `routes`; each ACKed; then /ready turns 200.
  testing::AssertionResult initialize(const std::vector<Cluster>& clusters,
                                      const std::vector<ClusterLoadAssignment>& endpoints,
                                      const std::vector<Listener>& listeners,
                                      const std::vector<RouteConfiguration>& routes);

  // One response of each type, with the next version ("1", "2", ... per type): sends it and
  // returns the nonce.
  std::string sendClusters(const std::vector<Cluster>& clusters);
  std::string sendEndpoints(const std::vector<ClusterLoadAssignment>& endpoints);
  std::string sendListeners(const std::vector<Listener>& listeners);
  std::string sendRoutes(const std::vector<RouteConfiguration>& routes);
  // The same, then wait for the proxy to ACK it.
  testing::AssertionResult applyClusters(const std::vector<Cluster>& clusters);
  testing::AssertionResult applyEndpoints(const std::vector<ClusterLoadAssignment>& endpoints);
  testing::AssertionResult applyListeners(const std::vector<Listener>& listeners);
  testing::AssertionResult applyRoutes(const std::vector<RouteConfiguration>& routes);
  // The version the last send of `type_url` carried ("" before the first).
  std::string lastVersion(const std::string& type_url) { return versions_[type_url].last; }
  // Waits for the ACK of `nonce` with the last version sent of `type_url`.
  testing::AssertionResult waitForAck(const std::string& type_url, const std::string& nonce);

  // A stat (counter or gauge); -1 when the proxy does not export it.
  int64_t stat(const std::string& name);
  testing::AssertionResult waitForStat(const std::string& name, int64_t value,
                                       std::chrono::milliseconds timeout = 10s);
  // Polls /ready until it answers `status`.
  testing::AssertionResult waitForReady(uint32_t status = 200,
                                        std::chrono::milliseconds timeout = 10s);
  // The port listener `name` is bound to (from /listeners).
  uint32_t listenerPort(const std::string& name);
  // Polls the proxy's stdout (its access log) until it contains `text`.
  testing::AssertionResult waitForAccessLog(const std::string& text,
                                            std::chrono::milliseconds timeout = 10s);

  std::unique_ptr<AdsServer> ads_;
  std::unique_ptr<ProxyProcess> proxy_;

 private:
  struct Versions {
    uint64_t next = 1;
    std::string last;
  };
  std::string nextVersion(const std::string& type_url);
  std::map<std::string, Versions> versions_;
};

}  // namespace Proxy::XdsIntegration
