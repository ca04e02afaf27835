// Checks that our protos/ subset of Envoy's v3 API keeps upstream's names, type URLs, field
// numbers and services (the numbers below were read from envoyproxy/envoy's api/ tree, see
// protos/tools/compare_upstream.sh for the full cross-check), and that a realistic Envoy
// bootstrap parses from JSON.

#include <string>
#include <string_view>
#include <vector>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gtest/gtest.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>

namespace Proxy::Protos {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

using envoy::config::bootstrap::v3::Bootstrap;
using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;
using envoy::extensions::filters::http::router::v3::Router;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

const Descriptor* findMessage(std::string_view full_name) {
  return DescriptorPool::generated_pool()->FindMessageTypeByName(std::string(full_name));
}

// The resource types xDS carries, with the type URLs management servers put in
// DiscoveryResponse.type_url and Any.type_url.
TEST(ProtosTest, XdsResourceTypeUrlsMatchUpstream) {
  // Packing each resource into an Any must produce exactly upstream's type URL.
  auto type_url_of = [](const google::protobuf::Message& message) {
    google::protobuf::Any any;
    any.PackFrom(message);
    return any.type_url();
  };
  EXPECT_EQ(type_url_of(Listener()), "type.googleapis.com/envoy.config.listener.v3.Listener");
  EXPECT_EQ(type_url_of(RouteConfiguration()),
            "type.googleapis.com/envoy.config.route.v3.RouteConfiguration");
  EXPECT_EQ(type_url_of(Cluster()), "type.googleapis.com/envoy.config.cluster.v3.Cluster");
  EXPECT_EQ(type_url_of(ClusterLoadAssignment()),
            "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
  EXPECT_EQ(type_url_of(HttpConnectionManager()),
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager");
  EXPECT_EQ(type_url_of(Router()),
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
}

// Every message a config may name in "@type" must be in the generated pool, even the ones this
// test never mentions in C++ (xds_protos links the whole library for this reason).
TEST(ProtosTest, EveryConfigTypeIsInTheGeneratedPool) {
  const std::vector<std::string_view> full_names = {
      "google.rpc.Status",
      "envoy.config.core.v3.Node",
      "envoy.config.core.v3.Address",
      "envoy.config.core.v3.TypedExtensionConfig",
      "envoy.config.core.v3.HealthCheck",
      "envoy.config.core.v3.Http2ProtocolOptions",
      "envoy.config.core.v3.SubstitutionFormatString",
      "envoy.config.listener.v3.Listener",
      "envoy.config.listener.v3.FilterChain",
      "envoy.config.listener.v3.ApiListener",
      "envoy.config.cluster.v3.Cluster",
      "envoy.config.cluster.v3.CircuitBreakers",
      "envoy.config.cluster.v3.OutlierDetection",
      "envoy.config.endpoint.v3.ClusterLoadAssignment",
      "envoy.config.endpoint.v3.LbEndpoint",
      "envoy.config.route.v3.RouteConfiguration",
      "envoy.config.route.v3.VirtualHost",
      "envoy.config.route.v3.FilterConfig",
      "envoy.config.bootstrap.v3.Bootstrap",
      "envoy.config.accesslog.v3.AccessLog",
      "envoy.config.metrics.v3.StatsdSink",
      "envoy.config.overload.v3.OverloadManager",
      "envoy.extensions.access_loggers.file.v3.FileAccessLog",
      "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
      "envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
      "envoy.extensions.filters.http.router.v3.Router",
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      "envoy.service.discovery.v3.DiscoveryRequest",
      "envoy.service.discovery.v3.DiscoveryResponse",
      "envoy.service.discovery.v3.DeltaDiscoveryRequest",
      "envoy.service.discovery.v3.DeltaDiscoveryResponse",
      "envoy.service.discovery.v3.Resource",
  };
  for (std::string_view full_name : full_names) {
    EXPECT_NE(findMessage(full_name), nullptr) << full_name;
  }
}

struct ExpectedField {
  std::string_view message;
  std::string_view field;
  int number;
  // The oneof upstream puts the field in, or "" for none.
  std::string_view oneof = "";
};

// A sample of upstream's field numbers, names and oneofs; compare_upstream.sh checks them all.
TEST(ProtosTest, FieldNumbersMatchUpstream) {
  const std::vector<ExpectedField> expected = {
      {"envoy.config.listener.v3.Listener", "name", 1},
      {"envoy.config.listener.v3.Listener", "address", 2},
      {"envoy.config.listener.v3.Listener", "filter_chains", 3},
      {"envoy.config.listener.v3.Listener", "use_original_dst", 4},
      {"envoy.config.listener.v3.Listener", "drain_type", 8},
      {"envoy.config.listener.v3.Listener", "listener_filters", 9},
      {"envoy.config.listener.v3.Listener", "api_listener", 19},
      {"envoy.config.listener.v3.Listener", "access_log", 22},
      {"envoy.config.listener.v3.Listener", "default_filter_chain", 25},
      {"envoy.config.listener.v3.Listener", "stat_prefix", 28},
      {"envoy.config.listener.v3.Listener", "enable_reuse_port", 29},
      {"envoy.config.listener.v3.FilterChain", "filter_chain_match", 1},
      {"envoy.config.listener.v3.FilterChain", "filters", 3},
      {"envoy.config.listener.v3.FilterChain", "transport_socket", 6},
      {"envoy.config.listener.v3.FilterChain", "name", 7},
      {"envoy.config.listener.v3.FilterChainMatch", "destination_port", 8},
      {"envoy.config.listener.v3.FilterChainMatch", "server_names", 11},
      {"envoy.config.listener.v3.Filter", "typed_config", 4, "config_type"},
      {"envoy.config.listener.v3.ApiListener", "api_listener", 1},
      {"envoy.config.core.v3.Address", "socket_address", 1, "address"},
      {"envoy.config.core.v3.SocketAddress", "port_value", 3, "port_specifier"},
      {"envoy.config.core.v3.Node", "user_agent_version", 7, "user_agent_version_type"},
      {"envoy.config.core.v3.Node", "client_features", 10},
      {"envoy.config.core.v3.ConfigSource", "api_config_source", 2, "config_source_specifier"},
      {"envoy.config.core.v3.ConfigSource", "ads", 3, "config_source_specifier"},
      {"envoy.config.core.v3.ConfigSource", "resource_api_version", 6},
      {"envoy.config.core.v3.ApiConfigSource", "grpc_services", 4},
      {"envoy.config.core.v3.ApiConfigSource", "transport_api_version", 8},
      {"envoy.config.cluster.v3.Cluster", "name", 1},
      {"envoy.config.cluster.v3.Cluster", "type", 2, "cluster_discovery_type"},
      {"envoy.config.cluster.v3.Cluster", "eds_cluster_config", 3},
      {"envoy.config.cluster.v3.Cluster", "connect_timeout", 4},
      {"envoy.config.cluster.v3.Cluster", "lb_policy", 6},
      {"envoy.config.cluster.v3.Cluster", "circuit_breakers", 10},
      {"envoy.config.cluster.v3.Cluster", "http2_protocol_options", 14},
      {"envoy.config.cluster.v3.Cluster", "transport_socket", 24},
      {"envoy.config.cluster.v3.Cluster", "load_assignment", 33},
      {"envoy.config.cluster.v3.Cluster", "typed_extension_protocol_options", 36},
      {"envoy.config.cluster.v3.Cluster", "least_request_lb_config", 37, "lb_config"},
      {"envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name", 1},
      {"envoy.config.endpoint.v3.ClusterLoadAssignment", "endpoints", 2},
      {"envoy.config.endpoint.v3.ClusterLoadAssignment", "policy", 4},
      {"envoy.config.endpoint.v3.LbEndpoint", "endpoint", 1, "host_identifier"},
      {"envoy.config.endpoint.v3.LbEndpoint", "health_status", 2},
      {"envoy.config.endpoint.v3.LbEndpoint", "load_balancing_weight", 4},
      {"envoy.config.endpoint.v3.LocalityLbEndpoints", "priority", 5},
      {"envoy.config.route.v3.RouteConfiguration", "virtual_hosts", 2},
      {"envoy.config.route.v3.VirtualHost", "domains", 2},
      {"envoy.config.route.v3.VirtualHost", "routes", 3},
      {"envoy.config.route.v3.Route", "match", 1},
      {"envoy.config.route.v3.Route", "route", 2, "action"},
      {"envoy.config.route.v3.Route", "direct_response", 7, "action"},
      {"envoy.config.route.v3.Route", "typed_per_filter_config", 13},
      {"envoy.config.route.v3.RouteMatch", "prefix", 1, "path_specifier"},
      {"envoy.config.route.v3.RouteMatch", "safe_regex", 10, "path_specifier"},
      {"envoy.config.route.v3.RouteAction", "cluster", 1, "cluster_specifier"},
      {"envoy.config.route.v3.RouteAction", "weighted_clusters", 3, "cluster_specifier"},
      {"envoy.config.route.v3.RouteAction", "timeout", 8},
      {"envoy.config.route.v3.RouteAction", "hash_policy", 15},
      {"envoy.config.route.v3.HeaderMatcher", "string_match", 13, "header_match_specifier"},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
       "codec_type", 1},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
       "stat_prefix", 2},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "rds",
       3, "route_specifier"},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
       "route_config", 4, "route_specifier"},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
       "http_filters", 5},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "typed_config", 4,
       "config_type"},
      {"envoy.service.discovery.v3.DiscoveryRequest", "version_info", 1},
      {"envoy.service.discovery.v3.DiscoveryRequest", "node", 2},
      {"envoy.service.discovery.v3.DiscoveryRequest", "resource_names", 3},
      {"envoy.service.discovery.v3.DiscoveryRequest", "type_url", 4},
      {"envoy.service.discovery.v3.DiscoveryRequest", "response_nonce", 5},
      {"envoy.service.discovery.v3.DiscoveryRequest", "error_detail", 6},
      {"envoy.service.discovery.v3.DiscoveryResponse", "version_info", 1},
      {"envoy.service.discovery.v3.DiscoveryResponse", "resources", 2},
      {"envoy.service.discovery.v3.DiscoveryResponse", "type_url", 4},
      {"envoy.service.discovery.v3.DiscoveryResponse", "nonce", 5},
      {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "resource_names_subscribe", 3},
      {"envoy.service.discovery.v3.DeltaDiscoveryRequest", "initial_resource_versions", 5},
      {"envoy.service.discovery.v3.DeltaDiscoveryResponse", "removed_resources", 6},
      {"envoy.service.discovery.v3.Resource", "name", 3},
      {"envoy.service.discovery.v3.Resource", "resource", 2},
  };
  for (const ExpectedField& e : expected) {
    SCOPED_TRACE(std::string(e.message) + "." + std::string(e.field));
    const Descriptor* message = findMessage(e.message);
    ASSERT_NE(message, nullptr);
    const FieldDescriptor* field = message->FindFieldByName(std::string(e.field));
    ASSERT_NE(field, nullptr);
    EXPECT_EQ(field->number(), e.number);
    const std::string oneof =
        field->real_containing_oneof() == nullptr ? "" : field->real_containing_oneof()->name();
    EXPECT_EQ(oneof, e.oneof);
  }
}

// Enum values travel as numbers on the wire and as names in JSON: both must match upstream.
TEST(ProtosTest, EnumValuesMatchUpstream) {
  EXPECT_EQ(Cluster::STATIC, 0);
  EXPECT_EQ(Cluster::STRICT_DNS, 1);
  EXPECT_EQ(Cluster::LOGICAL_DNS, 2);
  EXPECT_EQ(Cluster::EDS, 3);
  EXPECT_EQ(Cluster::ORIGINAL_DST, 4);
  EXPECT_EQ(Cluster::ROUND_ROBIN, 0);
  EXPECT_EQ(Cluster::LEAST_REQUEST, 1);
  EXPECT_EQ(Cluster::RING_HASH, 2);
  EXPECT_EQ(Cluster::RANDOM, 3);
  EXPECT_EQ(Cluster::MAGLEV, 5);
  EXPECT_EQ(Cluster::CLUSTER_PROVIDED, 6);
  EXPECT_EQ(Cluster::LOAD_BALANCING_POLICY_CONFIG, 7);
  EXPECT_EQ(envoy::config::core::v3::HEALTHY, 1);
  EXPECT_EQ(envoy::config::core::v3::DEGRADED, 5);
  EXPECT_EQ(envoy::config::core::v3::ApiConfigSource::GRPC, 2);
  EXPECT_EQ(envoy::config::core::v3::ApiConfigSource::AGGREGATED_GRPC, 5);
  EXPECT_EQ(envoy::config::core::v3::ApiConfigSource::AGGREGATED_DELTA_GRPC, 6);
  EXPECT_EQ(envoy::config::core::v3::V3, 2);
  EXPECT_EQ(HttpConnectionManager::AUTO, 0);
  EXPECT_EQ(HttpConnectionManager::HTTP2, 2);
  EXPECT_EQ(envoy::config::route::v3::RedirectAction::PERMANENT_REDIRECT, 4);
}

// gRPC routes calls by "/<service full name>/<method>": these paths are the wire contract with
// every management server.
TEST(ProtosTest, DiscoveryServicesMatchUpstream) {
  struct ExpectedMethod {
    std::string_view service;
    std::string_view method;
    std::string_view request;
  };
  const std::vector<ExpectedMethod> expected = {
      {"envoy.service.discovery.v3.AggregatedDiscoveryService", "StreamAggregatedResources",
       "envoy.service.discovery.v3.DiscoveryRequest"},
      {"envoy.service.discovery.v3.AggregatedDiscoveryService", "DeltaAggregatedResources",
       "envoy.service.discovery.v3.DeltaDiscoveryRequest"},
      {"envoy.service.listener.v3.ListenerDiscoveryService", "StreamListeners",
       "envoy.service.discovery.v3.DiscoveryRequest"},
      {"envoy.service.listener.v3.ListenerDiscoveryService", "DeltaListeners",
       "envoy.service.discovery.v3.DeltaDiscoveryRequest"},
      {"envoy.service.route.v3.RouteDiscoveryService", "StreamRoutes",
       "envoy.service.discovery.v3.DiscoveryRequest"},
      {"envoy.service.route.v3.RouteDiscoveryService", "DeltaRoutes",
       "envoy.service.discovery.v3.DeltaDiscoveryRequest"},
      {"envoy.service.cluster.v3.ClusterDiscoveryService", "StreamClusters",
       "envoy.service.discovery.v3.DiscoveryRequest"},
      {"envoy.service.cluster.v3.ClusterDiscoveryService", "DeltaClusters",
       "envoy.service.discovery.v3.DeltaDiscoveryRequest"},
      {"envoy.service.endpoint.v3.EndpointDiscoveryService", "StreamEndpoints",
       "envoy.service.discovery.v3.DiscoveryRequest"},
      {"envoy.service.endpoint.v3.EndpointDiscoveryService", "DeltaEndpoints",
       "envoy.service.discovery.v3.DeltaDiscoveryRequest"},
  };
  for (const ExpectedMethod& e : expected) {
    SCOPED_TRACE("/" + std::string(e.service) + "/" + std::string(e.method));
    const ServiceDescriptor* service =
        DescriptorPool::generated_pool()->FindServiceByName(std::string(e.service));
    ASSERT_NE(service, nullptr);
    const MethodDescriptor* method = service->FindMethodByName(std::string(e.method));
    ASSERT_NE(method, nullptr);
    EXPECT_EQ(method->input_type()->full_name(), e.request);
    // Every xDS stream is bidirectional.
    EXPECT_TRUE(method->client_streaming());
    EXPECT_TRUE(method->server_streaming());
  }
  // The generated stub exposes the service under its upstream name.
  EXPECT_STREQ(envoy::service::discovery::v3::AggregatedDiscoveryService::service_full_name(),
               "envoy.service.discovery.v3.AggregatedDiscoveryService");
}

// A field we do not model (here Listener field 999) must survive decode and re-encode, so that
// nothing a newer management server sends is silently dropped when we pass it on.
TEST(ProtosTest, UnknownFieldsSurviveBinaryRoundTrip) {
  // Build a Listener and append an unknown varint field to its encoding.
  Listener original;
  original.set_name("ingress");
  google::protobuf::UnknownFieldSet unknown;
  unknown.AddVarint(/*number=*/999, /*value=*/42);
  std::string wire = original.SerializeAsString();
  std::string unknown_wire;
  ASSERT_TRUE(unknown.SerializeToString(&unknown_wire));
  wire += unknown_wire;

  // Decoding keeps it as an unknown field...
  Listener decoded;
  ASSERT_TRUE(decoded.ParseFromString(wire));
  EXPECT_EQ(decoded.name(), "ingress");
  const google::protobuf::UnknownFieldSet& kept =
      decoded.GetReflection()->GetUnknownFields(decoded);
  ASSERT_EQ(kept.field_count(), 1);
  EXPECT_EQ(kept.field(0).number(), 999);
  EXPECT_EQ(kept.field(0).varint(), 42u);

  // ...and re-encoding writes it back.
  EXPECT_EQ(decoded.SerializeAsString(), wire);
}

// An Envoy bootstrap as users write it (static listener with an HTTP connection manager and an
// inline route table, a static cluster, ADS over a cluster, admin), in Envoy's JSON form.
constexpr std::string_view kBootstrapJson = R"json({
  "node": {
    "id": "proxy-1",
    "cluster": "edge",
    "locality": {"region": "eu-west", "zone": "eu-west-1a"},
    "user_agent_name": "xds-proxy"
  },
  "admin": {
    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}},
    "access_log": [{
      "name": "envoy.access_loggers.stdout",
      "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
      }
    }]
  },
  "static_resources": {
    "listeners": [{
      "name": "ingress_http",
      "address": {"socket_address": {"address": "0.0.0.0", "port_value": 10000}},
      "enable_reuse_port": true,
      "filter_chains": [{
        "filters": [{
          "name": "envoy.filters.network.http_connection_manager",
          "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress_http",
            "codec_type": "AUTO",
            "stream_idle_timeout": "300s",
            "access_log": [{
              "name": "envoy.access_loggers.file",
              "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": "/dev/stdout",
                "log_format": {
                  "text_format_source": {"inline_string": "%REQ(:METHOD)% %RESPONSE_CODE%\n"}
                }
              }
            }],
            "route_config": {
              "name": "local_route",
              "virtual_hosts": [{
                "name": "backend",
                "domains": ["*"],
                "routes": [
                  {
                    "match": {"prefix": "/healthz"},
                    "direct_response": {"status": 200, "body": {"inline_string": "ok"}}
                  },
                  {
                    "match": {
                      "prefix": "/",
                      "headers": [{"name": "x-canary", "string_match": {"exact": "1"}}]
                    },
                    "route": {
                      "weighted_clusters": {
                        "clusters": [
                          {"name": "service_backend", "weight": 90},
                          {"name": "service_canary", "weight": 10}
                        ]
                      }
                    }
                  },
                  {
                    "match": {"prefix": "/"},
                    "route": {
                      "cluster": "service_backend",
                      "timeout": "5s",
                      "retry_policy": {"retry_on": "5xx,connect-failure", "num_retries": 2},
                      "hash_policy": [{"header": {"header_name": "x-user"}}]
                    }
                  }
                ]
              }]
            },
            "http_filters": [{
              "name": "envoy.filters.http.router",
              "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                "suppress_envoy_headers": true
              }
            }]
          }
        }]
      }]
    }],
    "clusters": [
      {
        "name": "service_backend",
        "type": "STATIC",
        "connect_timeout": "0.25s",
        "lb_policy": "LEAST_REQUEST",
        "least_request_lb_config": {"choice_count": 3},
        "circuit_breakers": {"thresholds": [{"priority": "DEFAULT", "max_connections": 1000}]},
        "typed_extension_protocol_options": {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {}}
          }
        },
        "load_assignment": {
          "cluster_name": "service_backend",
          "endpoints": [{
            "lb_endpoints": [
              {
                "endpoint": {
                  "address": {"socket_address": {"address": "127.0.0.1", "port_value": 8080}}
                }
              },
              {
                "endpoint": {
                  "address": {"socket_address": {"address": "127.0.0.1", "port_value": 8081}}
                },
                "load_balancing_weight": 2
              }
            ]
          }]
        }
      },
      {
        "name": "service_canary",
        "type": "EDS",
        "connect_timeout": "1s",
        "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}
      },
      {
        "name": "xds_cluster",
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "http2_protocol_options": {},
        "load_assignment": {
          "cluster_name": "xds_cluster",
          "endpoints": [{
            "lb_endpoints": [
              {
                "endpoint": {
                  "address": {"socket_address": {"address": "control-plane", "port_value": 18000}}
                }
              }
            ]
          }]
        }
      }
    ]
  },
  "dynamic_resources": {
    "ads_config": {
      "api_type": "GRPC",
      "transport_api_version": "V3",
      "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}],
      "set_node_on_first_message_only": true
    },
    "lds_config": {"ads": {}, "resource_api_version": "V3"},
    "cds_config": {"ads": {}, "resource_api_version": "V3"}
  },
  "layered_runtime": {
    "layers": [{
      "name": "static",
      "static_layer": {"overload.global_downstream_max_connections": 50000}
    }]
  }
})json";

TEST(ProtosTest, ParsesARealisticEnvoyBootstrapFromJson) {
  // Parse with protobuf's own JSON parser (unknown fields are errors by default).
  Bootstrap bootstrap;
  const auto status = google::protobuf::util::JsonStringToMessage(kBootstrapJson, &bootstrap);
  ASSERT_TRUE(status.ok()) << status.ToString();

  // Node and admin.
  EXPECT_EQ(bootstrap.node().id(), "proxy-1");
  EXPECT_EQ(bootstrap.node().locality().zone(), "eu-west-1a");
  EXPECT_EQ(bootstrap.admin().address().socket_address().port_value(), 9901u);

  // The listener and the HTTP connection manager inside its Any.
  ASSERT_EQ(bootstrap.static_resources().listeners_size(), 1);
  const Listener& listener = bootstrap.static_resources().listeners(0);
  EXPECT_EQ(listener.name(), "ingress_http");
  EXPECT_EQ(listener.address().socket_address().port_value(), 10000u);
  ASSERT_EQ(listener.filter_chains(0).filters_size(), 1);
  HttpConnectionManager hcm;
  ASSERT_TRUE(listener.filter_chains(0).filters(0).typed_config().UnpackTo(&hcm));
  EXPECT_EQ(hcm.stat_prefix(), "ingress_http");
  EXPECT_EQ(hcm.stream_idle_timeout().seconds(), 300);
  ASSERT_TRUE(hcm.has_route_config());
  const auto& virtual_host = hcm.route_config().virtual_hosts(0);
  EXPECT_EQ(virtual_host.domains(0), "*");
  ASSERT_EQ(virtual_host.routes_size(), 3);
  EXPECT_EQ(virtual_host.routes(0).direct_response().body().inline_string(), "ok");
  EXPECT_EQ(virtual_host.routes(1).route().weighted_clusters().clusters(1).weight().value(), 10u);
  EXPECT_EQ(virtual_host.routes(2).route().cluster(), "service_backend");
  EXPECT_EQ(virtual_host.routes(2).route().timeout().seconds(), 5);
  EXPECT_EQ(virtual_host.routes(2).route().retry_policy().num_retries().value(), 2u);
  ASSERT_EQ(hcm.http_filters_size(), 1);
  Router router;
  ASSERT_TRUE(hcm.http_filters(0).typed_config().UnpackTo(&router));
  EXPECT_TRUE(router.suppress_envoy_headers());

  // The clusters.
  ASSERT_EQ(bootstrap.static_resources().clusters_size(), 3);
  const Cluster& backend = bootstrap.static_resources().clusters(0);
  EXPECT_EQ(backend.type(), Cluster::STATIC);
  EXPECT_EQ(backend.connect_timeout().nanos(), 250000000);
  EXPECT_EQ(backend.lb_policy(), Cluster::LEAST_REQUEST);
  EXPECT_EQ(backend.least_request_lb_config().choice_count().value(), 3u);
  EXPECT_EQ(backend.load_assignment().endpoints(0).lb_endpoints(1).load_balancing_weight().value(),
            2u);
  EXPECT_EQ(backend.typed_extension_protocol_options().count(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
            1u);
  EXPECT_EQ(bootstrap.static_resources().clusters(1).eds_cluster_config().eds_config().has_ads(),
            true);
  EXPECT_TRUE(bootstrap.static_resources().clusters(2).has_http2_protocol_options());

  // ADS through the xds_cluster.
  const auto& ads = bootstrap.dynamic_resources().ads_config();
  EXPECT_EQ(ads.api_type(), envoy::config::core::v3::ApiConfigSource::GRPC);
  EXPECT_EQ(ads.grpc_services(0).envoy_grpc().cluster_name(), "xds_cluster");
  EXPECT_TRUE(bootstrap.dynamic_resources().lds_config().has_ads());

  // The binary encoding round-trips.
  Bootstrap reparsed;
  ASSERT_TRUE(reparsed.ParseFromString(bootstrap.SerializeAsString()));
  EXPECT_EQ(reparsed.SerializeAsString(), bootstrap.SerializeAsString());
}

// What a gRPC xDS client (grpc-js-xds, grpc-go) receives over LDS: an api_listener holding an
// HTTP connection manager that points at RDS over ADS.
TEST(ProtosTest, ParsesAGrpcClientApiListenerFromJson) {
  constexpr std::string_view kListenerJson = R"json({
    "name": "server.example.com:443",
    "api_listener": {
      "api_listener": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "rds": {
          "config_source": {"ads": {}, "resource_api_version": "V3"},
          "route_config_name": "route-1"
        },
        "http_filters": [{
          "name": "router",
          "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
          }
        }]
      }
    }
  })json";
  Listener listener;
  const auto status = google::protobuf::util::JsonStringToMessage(kListenerJson, &listener);
  ASSERT_TRUE(status.ok()) << status.ToString();
  HttpConnectionManager hcm;
  ASSERT_TRUE(listener.api_listener().api_listener().UnpackTo(&hcm));
  EXPECT_EQ(hcm.rds().route_config_name(), "route-1");
}

// A DiscoveryRequest NACK, as the xDS client sends it: error_detail is a google.rpc.Status.
TEST(ProtosTest, DiscoveryRequestCarriesANack) {
  DiscoveryRequest nack;
  nack.set_version_info("1");
  nack.set_type_url("type.googleapis.com/envoy.config.cluster.v3.Cluster");
  nack.set_response_nonce("nonce-2");
  nack.mutable_error_detail()->set_code(3);  // INVALID_ARGUMENT
  nack.mutable_error_detail()->set_message("resource index 0: backend: bad lb_policy");

  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(nack, &json).ok());
  EXPECT_NE(json.find(R"("errorDetail":{"code":3,"message":"resource index 0: backend: )"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace Proxy::Protos
