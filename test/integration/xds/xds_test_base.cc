#include "test/integration/xds/xds_test_base.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace Proxy::XdsIntegration {

FakeUpstreamPtr makeUpstream(const std::string& name) {
  FakeUpstreamOptions options;
  options.name = name;
  absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
  EXPECT_TRUE(upstream.ok()) << upstream.status();
  return upstream.ok() ? std::move(*upstream) : nullptr;
}

absl::StatusOr<HttpResponse> get(uint32_t port, const std::string& path,
                                 std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest request;
  request.path = path;
  request.headers = std::move(headers);
  return Integration::httpRequest(port, request, 10s);
}

// ---- PortHolder ----------------------------------------------------------------------------

PortHolder::PortHolder(Mode mode) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    ADD_FAILURE() << "socket: " << errno;
    return;
  }
  const int one = 1;
  if (mode == Mode::ReservedForReusePort) {
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (mode == Mode::Listening && ::listen(fd_, 16) != 0)) {
    ADD_FAILURE() << "bind/listen 127.0.0.1:0: " << errno;
    return;
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

PortHolder::~PortHolder() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

// ---- ConfigDump ----------------------------------------------------------------------------

absl::StatusOr<ConfigDump> ConfigDump::fetch(ProxyProcess& proxy, bool include_eds) {
  absl::StatusOr<HttpResponse> response =
      proxy.adminGet(include_eds ? "/config_dump?include_eds" : "/config_dump");
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return absl::InternalError(absl::StrCat("GET /config_dump: ", response->status));
  }
  ConfigDump dump;
  dump.json_ = response->body;
  auto parsed = google::protobuf::util::JsonStringToMessage(response->body, &dump.root_);
  if (!parsed.ok()) {
    return absl::InternalError(absl::StrCat("/config_dump is not JSON: ", response->body));
  }
  return dump;
}

const google::protobuf::Struct* ConfigDump::section(const std::string& type) const {
  auto configs = root_.fields().find("configs");
  if (configs == root_.fields().end()) {
    return nullptr;
  }
  for (const google::protobuf::Value& config : configs->second.list_value().values()) {
    auto at_type = config.struct_value().fields().find("@type");
    // The whole last component: Envoy's dump also has a ScopedRoutesConfigDump.
    if (at_type != config.struct_value().fields().end() &&
        absl::EndsWith(at_type->second.string_value(), absl::StrCat(".", type))) {
      return &config.struct_value();
    }
  }
  return nullptr;
}

const google::protobuf::Struct* ConfigDump::dynamicListener(const std::string& name) const {
  const google::protobuf::Struct* listeners = section("ListenersConfigDump");
  if (listeners == nullptr) {
    return nullptr;
  }
  const google::protobuf::Value* dynamic = field(*listeners, {"dynamic_listeners"});
  if (dynamic == nullptr) {
    return nullptr;
  }
  for (const google::protobuf::Value& listener : dynamic->list_value().values()) {
    if (stringField(listener.struct_value(), {"name"}) == name) {
      return &listener.struct_value();
    }
  }
  return nullptr;
}

std::vector<std::string> ConfigDump::names(const std::string& type, const std::string& list) const {
  std::vector<std::string> out;
  const google::protobuf::Struct* s = section(type);
  const google::protobuf::Value* entries = s == nullptr ? nullptr : field(*s, {list});
  if (entries == nullptr) {
    return out;
  }
  for (const google::protobuf::Value& entry : entries->list_value().values()) {
    const google::protobuf::Struct& e = entry.struct_value();
    for (const auto& path : std::vector<std::vector<std::string>>{
             {"cluster", "name"}, {"route_config", "name"}, {"name"}}) {
      if (const std::string name = stringField(e, path); !name.empty()) {
        out.push_back(name);
        break;
      }
    }
  }
  return out;
}

const google::protobuf::Value* field(const google::protobuf::Struct& root,
                                     const std::vector<std::string>& path) {
  const google::protobuf::Struct* current = &root;
  const google::protobuf::Value* value = nullptr;
  for (const std::string& step : path) {
    if (current == nullptr) {
      return nullptr;
    }
    auto it = current->fields().find(step);
    if (it == current->fields().end()) {
      return nullptr;
    }
    value = &it->second;
    current = value->has_struct_value() ? &value->struct_value() : nullptr;
  }
  return value;
}

std::string stringField(const google::protobuf::Struct& root,
                        const std::vector<std::string>& path) {
  const google::protobuf::Value* value = field(root, path);
  return value == nullptr ? "" : value->string_value();
}

// ---- XdsIntegrationTest --------------------------------------------------------------------

void XdsIntegrationTest::SetUp() {
  ads_ = std::make_unique<AdsServer>();
}

void XdsIntegrationTest::TearDown() {
  // A sanitizer report in the proxy fails the test even when every request went well (a use
  // after free on a deferred deletion often happens after the last response).
  if (proxy_ != nullptr) {
    const std::string stderr_text = proxy_->stderrText();
    for (const char* report : {"ERROR: AddressSanitizer", "WARNING: ThreadSanitizer",
                               "runtime error:", "ERROR: LeakSanitizer"}) {
      EXPECT_EQ(stderr_text.find(report), std::string::npos)
          << "the proxy reported '" << report << "':\n"
          << stderr_text;
    }
  }
  // The proxy first (its ADS stream ends), then the server.
  proxy_.reset();
  ads_.reset();
}

testing::AssertionResult XdsIntegrationTest::startProxy(uint32_t concurrency, uint32_t drain_time_s,
                                                        const std::string& rate_limit_settings) {
  ProxyOptions options;
  options.bootstrap_yaml = adsBootstrap(static_cast<uint32_t>(ads_->port()), rate_limit_settings);
  options.concurrency = concurrency;
  options.drain_time_s = drain_time_s;
  options.wait_for_ready = false;
  proxy_ = std::make_unique<ProxyProcess>(options);
  if (testing::AssertionResult started = proxy_->start(); !started) {
    return started;
  }
  return ads_->waitForStream();
}

testing::AssertionResult XdsIntegrationTest::initialize(
    const std::vector<Cluster>& clusters, const std::vector<ClusterLoadAssignment>& endpoints,
    const std::vector<Listener>& listeners, const std::vector<RouteConfiguration>& routes) {
  // CDS comes first: the proxy asks for every cluster.
  if (auto cds = ads_->waitForSubscription(kClusterType, {}); !cds.ok()) {
    return testing::AssertionFailure() << cds.status().message();
  }
  if (auto acked = applyClusters(clusters); !acked) {
    return acked;
  }
  // The EDS clusters' assignments, by the names they asked for.
  if (!endpoints.empty()) {
    std::vector<std::string> names;
    for (const ClusterLoadAssignment& cla : endpoints) {
      names.push_back(cla.cluster_name());
    }
    if (auto eds = ads_->waitForSubscription(kEndpointType, names); !eds.ok()) {
      return testing::AssertionFailure() << eds.status().message();
    }
    if (auto acked = applyEndpoints(endpoints); !acked) {
      return acked;
    }
  }
  // Only then LDS (Envoy's order), and the route configurations its listeners name.
  if (auto lds = ads_->waitForSubscription(kListenerType, {}); !lds.ok()) {
    return testing::AssertionFailure() << lds.status().message();
  }
  if (auto acked = applyListeners(listeners); !acked) {
    return acked;
  }
  if (!routes.empty()) {
    std::vector<std::string> names;
    for (const RouteConfiguration& route : routes) {
      names.push_back(route.name());
    }
    if (auto rds = ads_->waitForSubscription(kRouteType, names); !rds.ok()) {
      return testing::AssertionFailure() << rds.status().message();
    }
    if (auto acked = applyRoutes(routes); !acked) {
      return acked;
    }
  }
  return waitForReady(200);
}

std::string XdsIntegrationTest::nextVersion(const std::string& type_url) {
  Versions& v = versions_[type_url];
  v.last = std::to_string(v.next++);
  return v.last;
}

std::string XdsIntegrationTest::sendClusters(const std::vector<Cluster>& clusters) {
  return ads_->sendResources(kClusterType, nextVersion(kClusterType), clusters);
}
std::string XdsIntegrationTest::sendEndpoints(const std::vector<ClusterLoadAssignment>& cla) {
  return ads_->sendResources(kEndpointType, nextVersion(kEndpointType), cla);
}
std::string XdsIntegrationTest::sendListeners(const std::vector<Listener>& listeners) {
  return ads_->sendResources(kListenerType, nextVersion(kListenerType), listeners);
}
std::string XdsIntegrationTest::sendRoutes(const std::vector<RouteConfiguration>& routes) {
  return ads_->sendResources(kRouteType, nextVersion(kRouteType), routes);
}

testing::AssertionResult XdsIntegrationTest::waitForAck(const std::string& type_url,
                                                        const std::string& nonce) {
  return ads_->waitForAck(type_url, nonce, lastVersion(type_url));
}

testing::AssertionResult XdsIntegrationTest::applyClusters(const std::vector<Cluster>& clusters) {
  return waitForAck(kClusterType, sendClusters(clusters));
}
testing::AssertionResult XdsIntegrationTest::applyEndpoints(
    const std::vector<ClusterLoadAssignment>& endpoints) {
  return waitForAck(kEndpointType, sendEndpoints(endpoints));
}
testing::AssertionResult XdsIntegrationTest::applyListeners(
    const std::vector<Listener>& listeners) {
  return waitForAck(kListenerType, sendListeners(listeners));
}
testing::AssertionResult XdsIntegrationTest::applyRoutes(
    const std::vector<RouteConfiguration>& routes) {
  return waitForAck(kRouteType, sendRoutes(routes));
}

int64_t XdsIntegrationTest::stat(const std::string& name) {
  absl::StatusOr<int64_t> value = proxy_->counter(name);
  return value.ok() ? *value : -1;
}

testing::AssertionResult XdsIntegrationTest::waitForStat(const std::string& name, int64_t value,
                                                         std::chrono::milliseconds timeout) {
  int64_t last = -1;
  testing::AssertionResult result = Integration::waitUntil(
      [&] {
        last = stat(name);
        return last == value;
      },
      timeout, absl::StrCat(name, " == ", value));
  if (!result) {
    return result << " (last value " << last << ")";
  }
  return result;
}

testing::AssertionResult XdsIntegrationTest::waitForReady(uint32_t status,
                                                          std::chrono::milliseconds timeout) {
  std::string last;
  testing::AssertionResult result = Integration::waitUntil(
      [&] {
        absl::StatusOr<HttpResponse> response = proxy_->adminGet("/ready");
        last = response.ok() ? absl::StrCat(response->status, " ", response->body)
                             : std::string(response.status().message());
        return response.ok() && response->status == status;
      },
      timeout, absl::StrCat("GET /ready -> ", status));
  if (!result) {
    return result << " (last: " << last << ")";
  }
  return result;
}

uint32_t XdsIntegrationTest::listenerPort(const std::string& name) {
  absl::StatusOr<uint32_t> port = proxy_->listenerPort(name);
  EXPECT_TRUE(port.ok()) << port.status();
  return port.ok() ? *port : 0;
}

testing::AssertionResult XdsIntegrationTest::waitForAccessLog(const std::string& text,
                                                              std::chrono::milliseconds timeout) {
  testing::AssertionResult result =
      Integration::waitUntil([&] { return absl::StrContains(proxy_->stdoutText(), text); }, timeout,
                             absl::StrCat("'", text, "' in the access log"));
  if (!result) {
    return result << "; stdout:\n" << proxy_->stdoutText();
  }
  return result;
}

}  // namespace Proxy::XdsIntegration
