// The table of implemented fields (proxy/config/field_support.h) against our protos and against
// the configs the project ships and tests with, and the refusal of every other field.
//
// Over ~600 lines on purpose: one table checked from every side; most tests share the corpus
// and refusal helpers above them.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "proxy/config/bootstrap.h"
#include "proxy/config/field_support.h"
#include "proxy/config/filter_config.h"
#include "proxy/config/message_util.h"
#include "proxy/config/validation.h"

#include <google/protobuf/unknown_field_set.h>
#include <yaml-cpp/yaml.h>

#include "gtest/gtest.h"

namespace Proxy::Config {
namespace {

using envoy::config::bootstrap::v3::Bootstrap;
using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;
using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;

// --- the table itself ---------------------------------------------------------------------

TEST(FieldSupportTest, EveryRowNamesAFieldOfOurProtos) {
  // A typo in the table would silently refuse a field we implement (or accept nothing).
  const DescriptorPool& pool = *DescriptorPool::generated_pool();
  for (const ImplementedField& row : implementedFields()) {
    const Descriptor* message = pool.FindMessageTypeByName(row.message);
    ASSERT_NE(message, nullptr) << row.message;
    EXPECT_NE(message->FindFieldByName(row.field), nullptr) << row.message << "." << row.field;
    if (row.via != nullptr) {
      const google::protobuf::FieldDescriptor* via = pool.FindFieldByName(row.via);
      ASSERT_NE(via, nullptr) << row.via;
      EXPECT_EQ(via->message_type(), message) << row.via << " does not hold " << row.message;
    }
    EXPECT_EQ(row.condition == nullptr, row.accepts == nullptr) << row.message << "." << row.field;
  }
}

// Every message type a config can reach from the roots, by descriptor (Any excluded: what it
// holds is walked by its own type).
void reachable(const Descriptor& d, std::set<const Descriptor*>& out) {
  if (!out.insert(&d).second || d.file()->package() == "google.protobuf") {
    return;
  }
  for (int i = 0; i < d.field_count(); i++) {
    if (const Descriptor* m = d.field(i)->message_type(); m != nullptr) {
      reachable(*m, out);
    }
  }
}

TEST(FieldSupportTest, TheTableOnlyNamesMessagesAConfigCanReach) {
  std::set<const Descriptor*> messages;
  for (const Descriptor* root :
       {Bootstrap::descriptor(), Listener::descriptor(), Cluster::descriptor(),
        RouteConfiguration::descriptor(), ClusterLoadAssignment::descriptor(),
        HttpConnectionManager::descriptor(), TcpProxy::descriptor(), RouterFilter::descriptor(),
        HttpProtocolOptions::descriptor(),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.access_loggers.file.v3.FileAccessLog"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.load_balancing_policies.maglev.v3.Maglev"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.resource_monitors.downstream_connections.v3."
            "DownstreamConnectionsConfig"),
        DescriptorPool::generated_pool()->FindMessageTypeByName(
            "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig")}) {
    ASSERT_NE(root, nullptr);
    reachable(*root, messages);
  }
  size_t fields = 0;
  for (const Descriptor* d : messages) {
    fields += d->field_count();
  }
  for (const ImplementedField& row : implementedFields()) {
    EXPECT_TRUE(
        messages.count(DescriptorPool::generated_pool()->FindMessageTypeByName(row.message)) > 0)
        << row.message;
  }
  // For the record: how much of what parses is implemented.
  std::cout << implementedFields().size() << " implemented of " << fields << " fields in "
            << messages.size() << " message types\n";
}

// --- the corpus ---------------------------------------------------------------------------
//
// The configs the project ships (deploy/examples, control_plane_stub/examples) and the YAML/JSON
// literals in the tests (raw strings in test/**/*.cc that parse as one of our config messages).
// Each one must set only implemented fields, except the ones below, which tests set on
// purpose to see them refused. A literal that is only a fragment of a larger config is taken
// as the first type it parses as without a refused field, if any.
const std::set<std::string>& refusedOnPurpose() {
  static const std::set<std::string> fields = {
      // field_support_test.cc and the integration tests of refusals.
      "envoy.config.bootstrap.v3.Bootstrap.stats_flush_interval",
      "envoy.config.bootstrap.v3.Admin.access_log_path",
      "envoy.config.bootstrap.v3.Bootstrap.DynamicResources.lds_resources_locator",
      "envoy.config.listener.v3.Listener.traffic_direction",
      "envoy.config.listener.v3.Listener.bind_to_port",
      "envoy.config.listener.v3.FilterChainMatch.source_prefix_ranges",
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager."
      "delayed_close_timeout",
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager."
      "xff_num_trusted_hops",
      "envoy.config.accesslog.v3.AccessLog.filter",
      "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.access_log",
      "envoy.config.route.v3.RouteConfiguration.request_mirror_policies",
      "envoy.config.route.v3.VirtualHost.include_request_attempt_count",
      "envoy.config.route.v3.RetryPolicy.per_try_idle_timeout",
      "envoy.config.route.v3.RouteAction.internal_redirect_policy",
      "envoy.config.route.v3.Route.decorator",
      "envoy.config.core.v3.HealthCheck.custom_health_check",
      "envoy.config.core.v3.Http2ProtocolOptions.hpack_table_size",
      "envoy.config.endpoint.v3.ClusterLoadAssignment.policy",
      "envoy.config.endpoint.v3.LbEndpoint.metadata",
  };
  return fields;
}

struct Document {
  std::string where;  // file (and literal index)
  std::string text;
};

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The raw string literals R"delim(...)delim" of a C++ source.
std::vector<std::string> rawStrings(const std::string& source) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = source.find("R\"", pos)) != std::string::npos) {
    const size_t open = source.find('(', pos + 2);
    if (open == std::string::npos || open - pos - 2 > 16) {
      pos += 2;
      continue;
    }
    const std::string close = absl::StrCat(")", source.substr(pos + 2, open - pos - 2), "\"");
    const size_t end = source.find(close, open + 1);
    if (end == std::string::npos) {
      break;
    }
    out.push_back(source.substr(open + 1, end - open - 1));
    pos = end + close.size();
  }
  return out;
}

using Refusals = std::vector<UnsupportedField>;

// Parses `yaml` as a T; nullopt when it does not parse.
template <class T>
std::optional<Refusals> refusalsAs(const std::string& yaml) {
  T message;
  if (!loadFromYaml(yaml, message).ok()) {
    return std::nullopt;
  }
  if constexpr (std::is_same_v<T, Bootstrap>) {
    return findUnsupportedBootstrapFields(message);
  } else {
    Refusals refusals = findUnsupportedFields(message);
    // checkSupportedFields() reads a clean message from its bytes, not by reflection: over the
    // whole corpus it must agree with the walk.
    EXPECT_EQ(checkSupportedFields(message).ok(), refusals.empty()) << yaml;
    return refusals;
  }
}

std::string emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

// A control-plane-stub snapshot ({version, resources: {listeners, routes, clusters,
// endpoints}}): the refusals of each resource; nullopt when `yaml` is not one.
std::optional<Refusals> snapshotRefusals(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
  if (!root.IsMap() || !root["resources"].IsMap()) {
    return std::nullopt;
  }
  Refusals out;
  const YAML::Node resources = root["resources"];
  const std::vector<
      std::pair<std::string, std::function<std::optional<Refusals>(const std::string&)>>>
      kinds = {{"listeners", refusalsAs<Listener>},
               {"routes", refusalsAs<RouteConfiguration>},
               {"clusters", refusalsAs<Cluster>},
               {"endpoints", refusalsAs<ClusterLoadAssignment>}};
  for (const auto& [key, refusals] : kinds) {
    for (const YAML::Node& resource : resources[key]) {
      std::optional<Refusals> found = refusals(emit(resource));
      if (!found.has_value()) {
        return std::nullopt;
      }
      out.insert(out.end(), found->begin(), found->end());
    }
  }
  return out;
}

bool allOnPurpose(const Refusals& refusals);

// The first reading of `text` without refusals; else the first whose refusals are all on
// purpose; else the refusals of the first reading that parses; nullopt when it is not a config
// of ours at all.
std::optional<Refusals> refusalsOf(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
  if (!root.IsMap() || root.size() == 0) {
    return std::nullopt;
  }
  const std::vector<std::function<std::optional<Refusals>(const std::string&)>> readings = {
      snapshotRefusals,
      refusalsAs<Bootstrap>,
      refusalsAs<Listener>,
      refusalsAs<Cluster>,
      refusalsAs<RouteConfiguration>,
      refusalsAs<ClusterLoadAssignment>,
      refusalsAs<HttpConnectionManager>,
      refusalsAs<TcpProxy>,
      refusalsAs<envoy::config::route::v3::VirtualHost>,
      refusalsAs<envoy::config::route::v3::Route>,
  };
  std::optional<Refusals> first;
  for (const auto& reading : readings) {
    std::optional<Refusals> refusals = reading(text);
    if (!refusals.has_value()) {
      continue;
    }
    if (refusals->empty() || allOnPurpose(*refusals)) {
      return refusals;
    }
    if (!first.has_value()) {
      first = std::move(refusals);
    }
  }
  return first;
}

std::string refusedName(const UnsupportedField& refused) {
  return refused.field != nullptr
             ? refused.field->full_name()
             : absl::StrCat(refused.message->full_name(), " (", refused.reason, ")");
}

bool allOnPurpose(const Refusals& refusals) {
  return std::all_of(refusals.begin(), refusals.end(), [](const UnsupportedField& refused) {
    return refusedOnPurpose().count(refusedName(refused)) > 0;
  });
}

std::vector<Document> corpus() {
  const std::filesystem::path root(PROJECT_SOURCE_DIR);
  std::vector<Document> out;
  for (const char* dir : {"deploy/examples", "control_plane_stub/examples"}) {
    for (const auto& entry : std::filesystem::directory_iterator(root / dir)) {
      if (entry.path().extension() == ".yaml" || entry.path().extension() == ".json") {
        out.push_back({entry.path().lexically_relative(root).string(), readFile(entry.path())});
      }
    }
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root / "test")) {
    const std::string name = entry.path().string();
    // test/protos checks that upstream's configs parse (a wire and JSON compatibility test of
    // protos/), not what the proxy runs: it sets fields on purpose that nothing implements.
    if (name.find("node_modules") != std::string::npos ||
        name.find("/test/protos/") != std::string::npos) {
      continue;
    }
    if (entry.path().extension() == ".yaml" || entry.path().extension() == ".json") {
      out.push_back({entry.path().lexically_relative(root).string(), readFile(entry.path())});
    } else if (entry.path().extension() == ".cc" || entry.path().extension() == ".h") {
      const std::vector<std::string> literals = rawStrings(readFile(entry.path()));
      for (size_t i = 0; i < literals.size(); i++) {
        out.push_back(
            {absl::StrCat(entry.path().lexically_relative(root).string(), " literal #", i),
             literals[i]});
      }
    }
  }
  return out;
}

TEST(FieldSupportTest, TheCorpusSetsOnlyImplementedFieldsOrOnesRefusedOnPurpose) {
  size_t configs = 0;
  std::set<std::string> seen_on_purpose;
  for (const Document& document : corpus()) {
    std::optional<Refusals> refusals = refusalsOf(document.text);
    if (!refusals.has_value()) {
      continue;
    }
    configs++;
    for (const UnsupportedField& refused : *refusals) {
      const std::string name = refused.field != nullptr ? refused.field->full_name()
                                                        : absl::StrCat(refused.message->full_name(),
                                                                       " (", refused.reason, ")");
      if (refusedOnPurpose().count(name) > 0) {
        seen_on_purpose.insert(name);
        continue;
      }
      ADD_FAILURE() << document.where << ": " << refused.path << ": " << refused.reason << " ("
                    << name << "): implement it, or take it out of the config";
    }
  }
  // The examples are all there, plus a good share of the tests' literals.
  EXPECT_GT(configs, 60u);
  std::cout << configs << " configs checked\n";
  // Every field listed as refused on purpose is still set by some test (no stale entries).
  for (const std::string& name : refusedOnPurpose()) {
    EXPECT_TRUE(seen_on_purpose.count(name) > 0) << name << " is set by no test any more";
  }
}

TEST(FieldSupportTest, TheShippedExamplesAreFullyImplemented) {
  // Named on their own: the demo configs must never lean on a field that does nothing.
  for (const Document& document : corpus()) {
    if (document.where.rfind("deploy/", 0) != 0 &&
        document.where.rfind("control_plane_stub/", 0) != 0) {
      continue;
    }
    std::optional<Refusals> refusals = refusalsOf(document.text);
    ASSERT_TRUE(refusals.has_value()) << document.where << " does not parse";
    EXPECT_TRUE(refusals->empty()) << document.where << ": " << refusals->front().path;
  }
}

// --- one refused field per resource type, with its message ---------------------------------

template <class T>
T parse(const std::string& yaml) {
  T message;
  absl::Status status = loadFromYaml(yaml, message);
  EXPECT_TRUE(status.ok()) << status;
  return message;
}

std::string message(const absl::Status& status) {
  return status.ok() ? "OK" : std::string(status.message());
}

constexpr char kListener[] = R"(
name: ingress
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress_http
      delayed_close_timeout: 5s
      route_config: {name: local, virtual_hosts: [{name: all, domains: ["*"]}]}
      http_filters:
      - name: envoy.filters.http.router
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)";

TEST(FieldSupportTest, AnUnimplementedFieldOfEachResourceIsRefusedWithItsPath) {
  // Listener and what it holds (HCM, tcp_proxy, access logs), relative to the listener.
  EXPECT_EQ(message(validateListener(parse<Listener>(kListener))),
            "filter_chains[0].filters[0].typed_config.delayed_close_timeout: not supported");
  EXPECT_EQ(message(validateListener(parse<Listener>(R"(
name: l
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress_http
      xff_num_trusted_hops: 1
      route_config: {name: local, virtual_hosts: [{name: all, domains: ["*"]}]}
      http_filters: [{name: envoy.filters.http.router}]
)"))),
            "filter_chains[0].filters[0].typed_config.xff_num_trusted_hops: not supported");
  EXPECT_EQ(message(validateListener(parse<Listener>(R"(
name: l
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
traffic_direction: INBOUND
filter_chains: [{filters: [{name: tcp, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
)"))),
            "traffic_direction: not supported");
  EXPECT_EQ(message(validateListener(parse<Listener>(R"(
name: l
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
filter_chains:
- filter_chain_match: {source_prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}
  filters: [{name: tcp, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]
)"))),
            "filter_chains[0].filter_chain_match.source_prefix_ranges: not supported");
  EXPECT_EQ(message(validateListener(parse<Listener>(R"(
name: l
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
filter_chains:
- filters:
  - name: tcp
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
      stat_prefix: t
      cluster: c
      access_log: [{name: out, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}}]
)"))),
            "filter_chains[0].filters[0].typed_config.access_log: not supported");
  // The HTTP connection manager's access logs are implemented; their filters are not.
  EXPECT_EQ(message(validateListener(parse<Listener>(R"(
name: l
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress_http
      route_config: {name: local, virtual_hosts: [{name: all, domains: ["*"]}]}
      http_filters: [{name: envoy.filters.http.router}]
      access_log:
      - name: out
        filter: {status_code_filter: {comparison: {op: GE, value: {default_value: 500}}}}
        typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}
)"))),
            "filter_chains[0].filters[0].typed_config.access_log[0].filter: not supported");
  // A value that is the proxy's behaviour is fine; the other one is not.
  EXPECT_EQ(message(validateListener(parse<Listener>(R"(
name: l
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
bind_to_port: false
filter_chains: [{filters: [{name: tcp, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
)"))),
            "bind_to_port: not supported (only for true)");

  // RouteConfiguration, VirtualHost, Route.
  EXPECT_EQ(message(validateRouteConfiguration(parse<RouteConfiguration>(R"(
name: r
request_mirror_policies: [{cluster: shadow}]
)"))),
            "request_mirror_policies: not supported");
  EXPECT_EQ(message(validateRouteConfiguration(parse<RouteConfiguration>(R"(
name: r
virtual_hosts:
- name: v
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {cluster: c}, decorator: {operation: op}}]
)"))),
            "virtual_hosts[0].routes[0].decorator: not supported");

  // Cluster: custom (extension) health checkers.
  EXPECT_EQ(message(validateCluster(parse<Cluster>(R"(
name: c
type: STATIC
load_assignment: {cluster_name: c}
health_checks: [{timeout: 1s, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1,
                 custom_health_check: {name: envoy.health_checkers.redis}}]
)"))),
            "health_checks[0].custom_health_check: not supported");
  // HTTP/2 upstream, both ways, with the settings the codec implements; any other HTTP/2
  // setting is refused with its path.
  EXPECT_EQ(message(validateCluster(parse<Cluster>(R"(
name: c
type: STATIC
load_assignment: {cluster_name: c}
http2_protocol_options: {max_concurrent_streams: 10, initial_stream_window_size: 65535}
)"))),
            "OK");
  const Cluster h2 = parse<Cluster>(R"(
name: c
type: STATIC
load_assignment: {cluster_name: c}
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: {http2_protocol_options: {initial_connection_window_size: 1048576}}
)");
  EXPECT_EQ(message(validateCluster(h2)), "OK");
  EXPECT_EQ(message(validateCluster(parse<Cluster>(R"(
name: c
type: STATIC
load_assignment: {cluster_name: c}
http2_protocol_options: {hpack_table_size: 0}
)"))),
            "http2_protocol_options.hpack_table_size: not supported");
  // auto_config: ALPN picks HTTP/2 (its http2_protocol_options) or HTTP/1.1; HTTP/3 and the
  // alternate protocols cache are refused with their path.
  const std::string auto_config = R"(
name: c
type: STATIC
load_assignment: {cluster_name: c}
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    auto_config: )";
  EXPECT_EQ(message(validateCluster(
                parse<Cluster>(auto_config + "{http_protocol_options: {}, http2_protocol_options: "
                                             "{max_concurrent_streams: 10}}"))),
            "OK");
  EXPECT_EQ(message(validateCluster(parse<Cluster>(auto_config + "{http3_protocol_options: {}}"))),
            "typed_extension_protocol_options['envoy.extensions.upstreams.http.v3."
            "HttpProtocolOptions'].auto_config.http3_protocol_options: not supported");

  // ClusterLoadAssignment.
  EXPECT_EQ(message(validateClusterLoadAssignment(parse<ClusterLoadAssignment>(R"(
cluster_name: c
policy: {overprovisioning_factor: 140}
)"))),
            "policy: not supported");
  EXPECT_EQ(message(validateClusterLoadAssignment(parse<ClusterLoadAssignment>(R"(
cluster_name: c
endpoints:
- lb_endpoints:
  - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 80}}}
    metadata: {filter_metadata: {envoy.lb: {canary: true}}}
)"))),
            "endpoints[0].lb_endpoints[0].metadata: not supported");
}

TEST(FieldSupportTest, ConfigSourcesInResourcesMayHaveANonNegativeTimeout) {
  // RDS and EDS come over ADS, or from the server of the listener/cluster. Their own
  // initial_fetch_timeout bounds the wait for them (server/xds_config.cc).
  Listener listener = parse<Listener>(kListener);
  HttpConnectionManager hcm;
  ASSERT_TRUE(listener.filter_chains(0).filters(0).typed_config().UnpackTo(&hcm));
  hcm.clear_delayed_close_timeout();
  hcm.mutable_rds()->set_route_config_name("routes");
  auto* source = hcm.mutable_rds()->mutable_config_source();
  source->mutable_ads();
  source->mutable_initial_fetch_timeout()->set_seconds(1);
  listener.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  EXPECT_EQ(message(validateListener(listener)), "OK");
  source->mutable_initial_fetch_timeout()->set_seconds(-1);
  listener.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  EXPECT_EQ(message(validateListener(listener)),
            "filter_chains[0].filters[0].typed_config.rds.config_source.initial_fetch_timeout: "
            "must not be negative");

  const Cluster eds = parse<Cluster>(R"(
name: c
type: EDS
eds_cluster_config:
  eds_config:
    api_config_source: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}
)");
  // Whether an api_config_source names that server depends on the bootstrap
  // (checkResourceConfigSources, bootstrap_test.cc): the resource alone is fine.
  EXPECT_EQ(message(validateCluster(eds)), "OK");
}

TEST(FieldSupportTest, TheBootstrapsOwnFieldsAreRefusedWithTheirPath) {
  EXPECT_EQ(message(validateBootstrap(parse<Bootstrap>("stats_flush_interval: 5s"))),
            "stats_flush_interval: not supported");
  EXPECT_EQ(message(validateBootstrap(parse<Bootstrap>(R"(
admin:
  access_log_path: /dev/null
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
)"))),
            "admin.access_log_path: not supported");
  EXPECT_EQ(message(validateBootstrap(parse<Bootstrap>(R"(
dynamic_resources:
  lds_resources_locator: xdstp://example/envoy.config.listener.v3.Listener/*
)"))),
            "dynamic_resources.lds_resources_locator: not supported");
  // A static resource is named by its place in the bootstrap.
  Bootstrap bootstrap;
  *bootstrap.mutable_static_resources()->add_listeners() = parse<Listener>(kListener);
  EXPECT_EQ(message(validateBootstrap(bootstrap)),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config."
            "delayed_close_timeout: not supported");
}

TEST(FieldSupportTest, AnyClusterMayAskForHttp2InTheBootstrapAndBeRoutedTo) {
  // The xDS client's channel is gRPC, hence HTTP/2, as Envoy requires; the proxy's own pools
  // speak HTTP/2 to such a cluster too, so routes may name it, with or without a gRPC service.
  const std::string clusters = R"(
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18000}}}}]}]
)";
  const std::string ads = R"(
dynamic_resources:
  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds_cluster}}]}
  cds_config: {ads: {}, resource_api_version: V3}
)";
  EXPECT_EQ(message(validateBootstrap(parse<Bootstrap>(clusters + ads))), "OK");
  EXPECT_EQ(message(validateBootstrap(parse<Bootstrap>(clusters))), "OK");
  EXPECT_EQ(message(validateBootstrap(parse<Bootstrap>(clusters + R"(
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config: {name: r, virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: xds_cluster}}]}]}
          http_filters: [{name: envoy.filters.http.router}]
)" + ads))),
            "OK");
}

TEST(FieldSupportTest, UnknownFieldsFromTheWireAreRefusedByNumber) {
  // A management server built on upstream's protos sends a field our subset does not have
  // (Listener.filter_chain_matcher is 32): it is kept as an unknown field, and refused.
  Listener listener = parse<Listener>(kListener);
  HttpConnectionManager hcm;
  ASSERT_TRUE(listener.filter_chains(0).filters(0).typed_config().UnpackTo(&hcm));
  hcm.clear_delayed_close_timeout();
  listener.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  ASSERT_EQ(message(validateListener(listener)), "OK");
  listener.GetReflection()->MutableUnknownFields(&listener)->AddLengthDelimited(32, "x");
  EXPECT_EQ(message(validateListener(listener)), "unknown field 32: not supported");

  // Inside an Any too (HttpConnectionManager field 99 does not exist).
  Listener inner = parse<Listener>(kListener);
  hcm.GetReflection()->MutableUnknownFields(&hcm)->AddVarint(99, 1);
  inner.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  EXPECT_EQ(message(validateListener(inner)),
            "filter_chains[0].filters[0].typed_config: unknown field 99: not supported");
}

TEST(FieldSupportTest, TheCheckFromBytesFindsWhatTheWalkFinds) {
  // A large clean assignment, as EDS sends them: accepted (from its bytes).
  ClusterLoadAssignment cla;
  cla.set_cluster_name("big");
  auto* locality = cla.add_endpoints();
  locality->mutable_locality()->set_zone("z");
  locality->mutable_load_balancing_weight()->set_value(3);
  for (uint32_t i = 0; i < 10000; i++) {
    auto* lb = locality->add_lb_endpoints();
    auto* socket = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    socket->set_address("10.0.0.1");
    socket->set_port_value(1000 + i);
    lb->mutable_load_balancing_weight()->set_value(1 + i % 3);
    lb->set_health_status(envoy::config::core::v3::HEALTHY);
  }
  EXPECT_EQ(message(checkSupportedFields(cla)), "OK");

  // The last endpoint sets a field the proxy does not implement: the walk names it.
  ClusterLoadAssignment refused = cla;
  auto* last = refused.mutable_endpoints(0)->mutable_lb_endpoints(9999);
  (*last->mutable_metadata()->mutable_filter_metadata())["envoy.lb"];
  EXPECT_EQ(message(checkSupportedFields(refused)),
            "endpoints[0].lb_endpoints[9999].metadata: not supported");

  // A field our protos do not have, deep inside: refused by number.
  ClusterLoadAssignment unknown = cla;
  auto* socket = unknown.mutable_endpoints(0)
                     ->mutable_lb_endpoints(5000)
                     ->mutable_endpoint()
                     ->mutable_address()
                     ->mutable_socket_address();
  socket->GetReflection()->MutableUnknownFields(socket)->AddVarint(77, 1);
  EXPECT_EQ(message(checkSupportedFields(unknown)),
            "endpoints[0].lb_endpoints[5000].endpoint.address.socket_address: unknown field 77: "
            "not supported");

  // As received: the bytes are read as they are, and a field they carry that our protos do not
  // have (kept by the parser as unknown) is refused by number.
  const std::string received = cla.SerializeAsString();
  ClusterLoadAssignment parsed;
  ASSERT_TRUE(parsed.ParseFromString(received));
  EXPECT_EQ(message(checkSupportedFieldsAsReceived(parsed, received)), "OK");
  const std::string with_unknown = received + std::string("\xb8\x06\x01", 3);  // field 103: 1
  ASSERT_TRUE(parsed.ParseFromString(with_unknown));
  EXPECT_EQ(message(checkSupportedFieldsAsReceived(parsed, with_unknown)),
            "unknown field 103: not supported");

  // A row with a condition is for the walk to judge (bind_to_port: only true).
  Listener listener = parse<Listener>(R"(
name: l
address: {socket_address: {address: 127.0.0.1, port_value: 0}}
bind_to_port: true
filter_chains: [{filters: [{name: tcp, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}}]}]
)");
  EXPECT_EQ(message(checkSupportedFields(listener)), "OK");
  listener.mutable_bind_to_port()->set_value(false);
  EXPECT_EQ(message(checkSupportedFields(listener)), "bind_to_port: not supported (only for true)");
}

// --- validate_clusters ----------------------------------------------------------------------

TEST(FieldSupportTest, ValidateClustersNamesTheRouteConfigurationAndTheCluster) {
  const RouteConfiguration rc = parse<RouteConfiguration>(R"(
name: local_route
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - {match: {prefix: /a}, route: {cluster: known}}
  - {match: {prefix: /h}, route: {cluster_header: x-cluster}}
  - match: {prefix: /w}
    route: {weighted_clusters: {clusters: [{name: known, weight: 1}, {name: gone, weight: 1}]}}
  - {match: {prefix: /}, route: {cluster: nosuch}}
)");
  auto exists = [](std::string_view name) { return name == "known"; };
  EXPECT_EQ(message(validateRouteClusters(rc, exists, "route_config")),
            "route_config.virtual_hosts[0].routes[2].route.weighted_clusters.clusters[1].name: "
            "route: unknown weighted cluster 'gone' (route configuration 'local_route')");
  RouteConfiguration only_missing = rc;
  only_missing.mutable_virtual_hosts(0)->mutable_routes()->DeleteSubrange(2, 1);
  EXPECT_EQ(message(validateRouteClusters(only_missing, exists)),
            "virtual_hosts[0].routes[2].route.cluster: route: unknown cluster 'nosuch' (route "
            "configuration 'local_route')");
  // Envoy's defaults: true inline, false over RDS; an explicit value wins.
  EXPECT_TRUE(validatesClusters(rc, /*inline_default=*/true));
  EXPECT_FALSE(validatesClusters(rc, /*inline_default=*/false));
  RouteConfiguration explicit_false = rc;
  explicit_false.mutable_validate_clusters()->set_value(false);
  EXPECT_FALSE(validatesClusters(explicit_false, /*inline_default=*/true));
}

}  // namespace
}  // namespace Proxy::Config
