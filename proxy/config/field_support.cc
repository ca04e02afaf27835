#include "proxy/config/field_support.h"

// The table of the config fields the proxy implements (field_support.h). Long by nature: one row
// per implemented field, each with a comment saying where its effect lives, in one place so that
// a reviewer sees the whole surface at once. The walk that checks messages against it is in
// field_support_check.cc.

#include <vector>

namespace Proxy::Config {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// --- conditions ---------------------------------------------------------------------------

// A google.protobuf.BoolValue field whose value is `expected`: the behaviour the proxy has.
template <bool expected>
bool boolValueIs(const Message& parent, const FieldDescriptor& field, const FieldCheckContext&) {
  const Message& wrapper = parent.GetReflection()->GetMessage(parent, &field);
  const FieldDescriptor* value = wrapper.GetDescriptor()->FindFieldByName("value");
  return value != nullptr && wrapper.GetReflection()->GetBool(wrapper, value) == expected;
}

// A field of a STRICT_DNS or LOGICAL_DNS Cluster: the DNS settings mean nothing elsewhere.
bool dnsCluster(const Message& parent, const FieldDescriptor&, const FieldCheckContext&) {
  const FieldDescriptor* type = parent.GetDescriptor()->FindFieldByName("type");
  if (type == nullptr) {
    return false;
  }
  const std::string& name = parent.GetReflection()->GetEnum(parent, type)->name();
  return name == "STRICT_DNS" || name == "LOGICAL_DNS";
}

// --- the table ----------------------------------------------------------------------------

constexpr const char* kHcm =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
constexpr const char* kHcmCommonOptions =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager."
    "common_http_protocol_options";
constexpr const char* kHcmHttp1Options =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager."
    "http_protocol_options";
constexpr const char* kHcmHttp2Options =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager."
    "http2_protocol_options";
constexpr const char* kHcmInternalRanges =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager."
    "InternalAddressConfig.cidr_ranges";
constexpr const char* kClusterCommonOptions =
    "envoy.config.cluster.v3.Cluster.common_http_protocol_options";
constexpr const char* kClusterHttp2Options =
    "envoy.config.cluster.v3.Cluster.http2_protocol_options";
constexpr const char* kExplicitHttp2Options =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig."
    "http2_protocol_options";
constexpr const char* kDownstreamHttp2Options =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig."
    "http2_protocol_options";
constexpr const char* kAutoHttp2Options =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig."
    "http2_protocol_options";
constexpr const char* kUpstreamCommonOptions =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.common_http_protocol_options";

constexpr const char* kDownstreamTls =
    "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
constexpr const char* kUpstreamTls = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
constexpr const char* kCommonTls = "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext";
constexpr const char* kTlsCertificate = "envoy.extensions.transport_sockets.tls.v3.TlsCertificate";
constexpr const char* kTlsParameters = "envoy.extensions.transport_sockets.tls.v3.TlsParameters";
constexpr const char* kValidationContext =
    "envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext";
constexpr const char* kSecret = "envoy.extensions.transport_sockets.tls.v3.Secret";
constexpr const char* kSdsSecretConfig =
    "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig";
constexpr const char* kSanMatcher =
    "envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher";

// Each row: a field with an effect, and where that effect lives. Identifiers (names) count:
// they name the resource in stats, errors, /config_dump and the protocol.
const std::vector<ImplementedField>& table() {
  static const std::vector<ImplementedField> rows = {
      // --- Bootstrap (proxy/config/bootstrap.cc, proxy/server/server.cc) ------------------
      {"envoy.config.bootstrap.v3.Bootstrap", "node", nullptr, nullptr, nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap", "static_resources", nullptr, nullptr, nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap", "dynamic_resources", nullptr, nullptr, nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap", "admin", nullptr, nullptr, nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap.StaticResources", "listeners", nullptr, nullptr,
       nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap.StaticResources", "clusters", nullptr, nullptr,
       nullptr},
      // proxy/tls/secret_manager.cc: named by TLS contexts' SDS references without sds_config.
      {"envoy.config.bootstrap.v3.Bootstrap.StaticResources", "secrets", nullptr, nullptr, nullptr},
      // xds_client/config.cc
      {"envoy.config.bootstrap.v3.Bootstrap.DynamicResources", "lds_config", nullptr, nullptr,
       nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap.DynamicResources", "cds_config", nullptr, nullptr,
       nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap.DynamicResources", "ads_config", nullptr, nullptr,
       nullptr},
      {"envoy.config.bootstrap.v3.Admin", "address", nullptr, nullptr, nullptr},
      // proxy/server/overload_manager_impl.cc: the global downstream connection limit, counted
      // at accept (proxy/network/tcp_listener_impl.cc) with an atomic shared by the workers.
      {"envoy.config.bootstrap.v3.Admin", "ignore_global_conn_limit", nullptr, nullptr, nullptr},
      {"envoy.config.bootstrap.v3.Bootstrap", "overload_manager", nullptr, nullptr, nullptr},
      {"envoy.config.overload.v3.OverloadManager", "resource_monitors", nullptr, nullptr, nullptr},
      {"envoy.config.overload.v3.ResourceMonitor", "name", nullptr, nullptr, nullptr},
      {"envoy.config.overload.v3.ResourceMonitor", "typed_config", nullptr, nullptr, nullptr},
      {"envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
       "max_active_downstream_connections", nullptr, nullptr, nullptr},
      // The node is sent to the management server as written (xds_client/config.cc);
      // user_agent_* and extensions are filled in by the proxy itself, as Envoy does.
      {"envoy.config.core.v3.Node", "id", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Node", "cluster", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Node", "metadata", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Node", "locality", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Node", "client_features", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Locality", "region", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Locality", "zone", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Locality", "sub_zone", nullptr, nullptr, nullptr},

      // --- Config sources (xds_client/config.cc; validation.cc for those in resources) ---
      {"envoy.config.core.v3.ConfigSource", "ads", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ConfigSource", "self", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ConfigSource", "api_config_source", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ConfigSource", "path", nullptr, nullptr, nullptr},  // refused
      {"envoy.config.core.v3.ConfigSource", "path_config_source", nullptr, nullptr, nullptr},
      // Refused by validation.cc except in an sds_config (proxy/tls/secret_files.cc).
      {"envoy.config.core.v3.PathConfigSource", "path", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.PathConfigSource", "watched_directory", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.WatchedDirectory", "path", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ConfigSource", "initial_fetch_timeout", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ConfigSource", "resource_api_version", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.SelfConfigSource", "transport_api_version", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ApiConfigSource", "api_type", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ApiConfigSource", "transport_api_version", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ApiConfigSource", "cluster_names", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ApiConfigSource", "grpc_services", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.ApiConfigSource", "rate_limit_settings", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.RateLimitSettings", "max_tokens", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.RateLimitSettings", "fill_rate", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.GrpcService", "envoy_grpc", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.GrpcService", "google_grpc", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.GrpcService.EnvoyGrpc", "cluster_name", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.GrpcService.GoogleGrpc", "target_uri", nullptr, nullptr, nullptr},
      // grpc.<stat_prefix>.streams_total / .streams_closed_<code> (xds_client/xds_stream.cc).
      {"envoy.config.core.v3.GrpcService.GoogleGrpc", "stat_prefix", nullptr, nullptr, nullptr},
      // TLS to the management server (xds_client/config.cc -> grpc::SslCredentials); the
      // other channel credentials and call_credentials are refused there.
      {"envoy.config.core.v3.GrpcService.GoogleGrpc", "channel_credentials", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.GrpcService.GoogleGrpc.ChannelCredentials", "ssl_credentials", nullptr,
       nullptr, nullptr},
      {"envoy.config.core.v3.GrpcService.GoogleGrpc.SslCredentials", "root_certs", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.GrpcService.GoogleGrpc.SslCredentials", "cert_chain", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.GrpcService.GoogleGrpc.SslCredentials", "private_key", nullptr,
       nullptr, nullptr},
      {"envoy.config.core.v3.GrpcService.GoogleGrpc", "call_credentials", nullptr, nullptr,
       nullptr},

      // --- Listener (proxy/listener/listener_config.cc) -----------------------------------
      {"envoy.config.listener.v3.Listener", "name", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "address", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "additional_addresses", nullptr, nullptr,
       nullptr},  // refused by validation.cc with its own message
      {"envoy.config.listener.v3.Listener", "stat_prefix", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "filter_chains", nullptr, nullptr, nullptr},
      // Not counted against the overload manager's global connection limit
      // (listener_config.cc, connection_handler.cc).
      {"envoy.config.listener.v3.Listener", "ignore_global_conn_limit", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "default_filter_chain", nullptr, nullptr, nullptr},
      // Being implemented with downstream backpressure (hard-mem).
      {"envoy.config.listener.v3.Listener", "per_connection_buffer_limit_bytes", nullptr, nullptr,
       nullptr},
      {"envoy.config.listener.v3.Listener", "drain_type", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "enable_reuse_port", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "tcp_backlog_size", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "api_listener", nullptr, nullptr, nullptr},
      // Only envoy.filters.listener.tls_inspector (connection_handler.cc, tls_inspector.cc).
      {"envoy.config.listener.v3.Listener", "listener_filters", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "listener_filters_timeout", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "continue_on_listener_filters_timeout", nullptr,
       nullptr, nullptr},
      {"envoy.config.listener.v3.ListenerFilter", "name", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.ListenerFilter", "typed_config", nullptr, nullptr, nullptr},
      // Refused by the proxy (validation.cc); walked for control-plane-stub, which checks the
      // API listeners it serves to gRPC's clients.
      {"envoy.config.listener.v3.ApiListener", "api_listener", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Listener", "internal_listener", nullptr, nullptr, nullptr},
      // Values that are what the proxy does anyway.
      {"envoy.config.listener.v3.Listener", "bind_to_port", nullptr, "true", &boolValueIs<true>},
      {"envoy.config.listener.v3.Listener", "use_original_dst", nullptr, "false",
       &boolValueIs<false>},
      {"envoy.config.listener.v3.Listener", "transparent", nullptr, "false", &boolValueIs<false>},
      {"envoy.config.listener.v3.Listener", "freebind", nullptr, "false", &boolValueIs<false>},
      {"envoy.config.listener.v3.FilterChain", "filter_chain_match", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.FilterChain", "filters", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.FilterChain", "use_proxy_proto", nullptr, nullptr,
       nullptr},  // true is refused by validation.cc
      {"envoy.config.listener.v3.FilterChain", "transport_socket", nullptr, nullptr, nullptr},
      // proxy/listener/connection_handler.cc: a TLS handshake not done by then closes.
      {"envoy.config.listener.v3.FilterChain", "transport_socket_connect_timeout", nullptr, nullptr,
       nullptr},
      {"envoy.config.listener.v3.FilterChain", "name", nullptr, nullptr, nullptr},
      // ListenerConfig::findFilterChain (listener_config.cc), in Envoy's order; SNI and the
      // transport protocol come from the tls_inspector. application_protocols is refused there.
      {"envoy.config.listener.v3.FilterChainMatch", "destination_port", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.FilterChainMatch", "server_names", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.FilterChainMatch", "transport_protocol", nullptr, nullptr,
       nullptr},
      {"envoy.config.listener.v3.FilterChainMatch", "application_protocols", nullptr, nullptr,
       nullptr},
      {"envoy.config.listener.v3.FilterChainMatch", "transport_protocol", nullptr, nullptr,
       nullptr},
      {"envoy.config.listener.v3.FilterChainMatch", "application_protocols", nullptr, nullptr,
       nullptr},
      {"envoy.config.listener.v3.Filter", "name", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Filter", "typed_config", nullptr, nullptr, nullptr},
      {"envoy.config.listener.v3.Filter", "config_discovery", nullptr, nullptr,
       nullptr},  // refused by validation.cc
      // Only raw_buffer (validation.cc), whose config is empty.
      {"envoy.config.core.v3.TransportSocket", "name", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.TransportSocket", "typed_config", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Address", "socket_address", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Address", "pipe", nullptr, nullptr, nullptr},  // refused
      {"envoy.config.core.v3.Address", "envoy_internal_address", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.SocketAddress", "protocol", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.SocketAddress", "address", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.SocketAddress", "port_value", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.SocketAddress", "named_port", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.SocketAddress", "resolver_name", nullptr, nullptr, nullptr},

      // --- HTTP connection manager (proxy/filters/http_connection_manager.cc) -------------
      {kHcm, "codec_type", nullptr, nullptr, nullptr},
      {kHcm, "stat_prefix", nullptr, nullptr, nullptr},
      {kHcm, "rds", nullptr, nullptr, nullptr},
      {kHcm, "route_config", nullptr, nullptr, nullptr},
      {kHcm, "http_filters", nullptr, nullptr, nullptr},
      {kHcm, "common_http_protocol_options", nullptr, nullptr, nullptr},
      {kHcm, "http_protocol_options", nullptr, nullptr, nullptr},
      // Downstream HTTP/2 (proxy/http/http2/server_connection_impl.cc): SETTINGS and Envoy's flood
      // limits.
      {kHcm, "http2_protocol_options", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_concurrent_streams", kHcmHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_stream_window_size", kHcmHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_connection_window_size",
       kHcmHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_outbound_frames", kHcmHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "override_stream_error_on_invalid_http_message",
       kHcmHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_outbound_control_frames", kHcmHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions",
       "max_consecutive_inbound_frames_with_empty_payload", kHcmHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_inbound_priority_frames_per_stream",
       kHcmHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions",
       "max_inbound_window_update_frames_per_data_frame_sent", kHcmHttp2Options, nullptr, nullptr},
      {kHcm, "server_name", nullptr, nullptr, nullptr},
      {kHcm, "server_header_transformation", nullptr, nullptr, nullptr},
      {kHcm, "max_request_headers_kb", nullptr, nullptr, nullptr},
      // Timeouts: the stream timers and the drain sequence of http_connection_manager.cc.
      {kHcm, "stream_idle_timeout", nullptr, nullptr, nullptr},
      {kHcm, "request_timeout", nullptr, nullptr, nullptr},
      {kHcm, "request_headers_timeout", nullptr, nullptr, nullptr},
      {kHcm, "drain_timeout", nullptr, nullptr, nullptr},
      {kHcm, "access_log", nullptr, nullptr, nullptr},
      {kHcm, "use_remote_address", nullptr, nullptr, nullptr},
      {kHcm, "skip_xff_append", nullptr, nullptr, nullptr},
      {kHcm, "generate_request_id", nullptr, nullptr, nullptr},
      {kHcm, "preserve_external_request_id", nullptr, nullptr, nullptr},
      {kHcm, "always_set_request_id_in_response", nullptr, nullptr, nullptr},
      // proxy/filters/conn_manager_utility.cc: internal requests, host port stripping.
      {kHcm, "internal_address_config", nullptr, nullptr, nullptr},
      {kHcm, "strip_matching_host_port", nullptr, nullptr, nullptr},
      {kHcm, "strip_any_host_port", nullptr, nullptr, nullptr},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager."
       "InternalAddressConfig",
       "cidr_ranges", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.CidrRange", "address_prefix", kHcmInternalRanges, nullptr, nullptr},
      {"envoy.config.core.v3.CidrRange", "prefix_len", kHcmInternalRanges, nullptr, nullptr},
      // Path normalisation before routing (proxy/http/path_normalization.cc).
      {kHcm, "normalize_path", nullptr, nullptr, nullptr},
      {kHcm, "merge_slashes", nullptr, nullptr, nullptr},
      {kHcm, "path_with_escaped_slashes_action", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HttpProtocolOptions", "idle_timeout", kHcmCommonOptions, nullptr,
       nullptr},
      {"envoy.config.core.v3.HttpProtocolOptions", "max_headers_count", kHcmCommonOptions, nullptr,
       nullptr},
      {"envoy.config.core.v3.HttpProtocolOptions", "max_connection_duration", kHcmCommonOptions,
       nullptr, nullptr},
      {"envoy.config.core.v3.HttpProtocolOptions", "max_stream_duration", kHcmCommonOptions,
       nullptr, nullptr},
      // HTTP/1.0, being implemented in the codec/HCM (hard-mem).
      {"envoy.config.core.v3.Http1ProtocolOptions", "accept_http_10", kHcmHttp1Options, nullptr,
       nullptr},
      {"envoy.config.core.v3.Http1ProtocolOptions", "default_host_for_http_10", kHcmHttp1Options,
       nullptr, nullptr},
      // HTTP/1 chunked trailers decoded/encoded (proxy/http/http1/codec_impl_base.cc).
      {"envoy.config.core.v3.Http1ProtocolOptions", "enable_trailers", kHcmHttp1Options, nullptr,
       nullptr},
      {"envoy.extensions.filters.network.http_connection_manager.v3.Rds", "config_source", nullptr,
       nullptr, nullptr},
      {"envoy.extensions.filters.network.http_connection_manager.v3.Rds", "route_config_name",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "name", nullptr,
       nullptr, nullptr},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "typed_config",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "config_discovery",
       nullptr, nullptr, nullptr},  // refused by validation.cc
      // An optional filter we do not know is skipped, as Envoy does.
      {"envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "is_optional",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers", nullptr, nullptr,
       nullptr},

      // --- Access logs (proxy/filters/access_log.cc) --------------------------------------
      {"envoy.config.accesslog.v3.AccessLog", "name", nullptr, nullptr, nullptr},
      {"envoy.config.accesslog.v3.AccessLog", "typed_config", nullptr, nullptr, nullptr},
      {"envoy.extensions.access_loggers.file.v3.FileAccessLog", "path", nullptr, nullptr, nullptr},
      {"envoy.extensions.access_loggers.file.v3.FileAccessLog", "log_format", nullptr, nullptr,
       nullptr},
      {"envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", "log_format", nullptr, nullptr,
       nullptr},
      {"envoy.extensions.access_loggers.stream.v3.StderrAccessLog", "log_format", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.SubstitutionFormatString", "text_format", nullptr, nullptr, nullptr},
      // json_format is refused by access_log.cc; text_format_source takes inline_string only.
      {"envoy.config.core.v3.SubstitutionFormatString", "json_format", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.SubstitutionFormatString", "text_format_source", nullptr, nullptr,
       nullptr},

      // --- tcp_proxy (proxy/filters/tcp_proxy.cc) -----------------------------------------
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix", nullptr, nullptr,
       nullptr},
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "cluster", nullptr, nullptr,
       nullptr},
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "weighted_clusters", nullptr,
       nullptr, nullptr},
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "idle_timeout", nullptr, nullptr,
       nullptr},
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "tunneling_config", nullptr,
       nullptr, nullptr},  // refused by validation.cc
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "on_demand", nullptr, nullptr,
       nullptr},  // refused by validation.cc
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster", "clusters",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight",
       "name", nullptr, nullptr, nullptr},
      {"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight",
       "weight", nullptr, nullptr, nullptr},

      // --- Route configuration (proxy/router/config_impl.cc) ------------------------------
      {"envoy.config.route.v3.RouteConfiguration", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "virtual_hosts", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "vhds", nullptr, nullptr, nullptr},  // refused
      {"envoy.config.route.v3.RouteConfiguration", "request_headers_to_add", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "request_headers_to_remove", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "response_headers_to_add", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "response_headers_to_remove", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "most_specific_header_mutations_wins", nullptr,
       nullptr, nullptr},
      // validation.cc (validateRouteClusters), called by listeners and RDS.
      {"envoy.config.route.v3.RouteConfiguration", "validate_clusters", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "max_direct_response_body_size_bytes", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.RouteConfiguration", "cluster_specifier_plugins", nullptr, nullptr,
       nullptr},  // refused by validation.cc
      {"envoy.config.route.v3.RouteConfiguration", "ignore_port_in_host_matching", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.VirtualHost", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.VirtualHost", "domains", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.VirtualHost", "routes", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.VirtualHost", "require_tls", nullptr, nullptr, nullptr},
      // Retries: the router filter (router.cc) with its retry state (retry_state.cc).
      {"envoy.config.route.v3.VirtualHost", "retry_policy", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy", "retry_on", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy", "num_retries", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy", "per_try_timeout", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy", "retry_host_predicate", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy", "host_selection_retry_max_attempts", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RetryPolicy", "retriable_status_codes", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy", "retry_back_off", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy.RetryBackOff", "base_interval", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RetryPolicy.RetryBackOff", "max_interval", nullptr, nullptr, nullptr},
      // Only envoy.retry_host_predicates.previous_hosts (validation.cc), whose config is empty.
      {"envoy.config.route.v3.RetryPolicy.RetryHostPredicate", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RetryPolicy.RetryHostPredicate", "typed_config", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.VirtualHost", "request_headers_to_add", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.VirtualHost", "request_headers_to_remove", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.VirtualHost", "response_headers_to_add", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.VirtualHost", "response_headers_to_remove", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.Route", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "route", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "redirect", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "direct_response", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "filter_action", nullptr, nullptr, nullptr},  // refused
      {"envoy.config.route.v3.Route", "non_forwarding_action", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "request_headers_to_add", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "request_headers_to_remove", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "response_headers_to_add", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.Route", "response_headers_to_remove", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "prefix", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "path", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "safe_regex", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "connect_matcher", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "path_separated_prefix", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "path_match_policy", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "case_sensitive", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "runtime_fraction", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "headers", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "query_parameters", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch", "grpc", nullptr, nullptr, nullptr},
      // Without TLS no connection presents a certificate: such a route never matches.
      {"envoy.config.route.v3.RouteMatch", "tls_context", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteMatch.TlsContextMatchOptions", "presented", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteMatch.TlsContextMatchOptions", "validated", nullptr, nullptr,
       nullptr},
      // The default applies; there is no runtime layer (Bootstrap.layered_runtime is refused),
      // so a runtime key is never overridden: what Envoy does with an empty runtime.
      {"envoy.config.core.v3.RuntimeFractionalPercent", "default_value", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.RuntimeFractionalPercent", "runtime_key", nullptr, nullptr, nullptr},
      {"envoy.type.v3.FractionalPercent", "numerator", nullptr, nullptr, nullptr},
      {"envoy.type.v3.FractionalPercent", "denominator", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "exact_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "safe_regex_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "range_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "present_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "prefix_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "suffix_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "contains_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "string_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "invert_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.HeaderMatcher", "treat_missing_header_as_empty", nullptr, nullptr,
       nullptr},
      {"envoy.type.v3.Int64Range", "start", nullptr, nullptr, nullptr},
      {"envoy.type.v3.Int64Range", "end", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.QueryParameterMatcher", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.QueryParameterMatcher", "string_match", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.QueryParameterMatcher", "present_match", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.StringMatcher", "exact", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.StringMatcher", "prefix", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.StringMatcher", "suffix", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.StringMatcher", "safe_regex", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.StringMatcher", "contains", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.StringMatcher", "ignore_case", nullptr, nullptr, nullptr},
      // google_re2 ({}, deprecated upstream) names the engine we use; its max_program_size is
      // not implemented.
      {"envoy.type.matcher.v3.RegexMatcher", "google_re2", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.RegexMatcher", "regex", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.RegexMatchAndSubstitute", "pattern", nullptr, nullptr, nullptr},
      {"envoy.type.matcher.v3.RegexMatchAndSubstitute", "substitution", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "cluster", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "cluster_header", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "weighted_clusters", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "cluster_specifier_plugin", nullptr, nullptr,
       nullptr},  // refused by validation.cc
      {"envoy.config.route.v3.RouteAction", "inline_cluster_specifier_plugin", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteAction", "cluster_not_found_response_code", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteAction", "prefix_rewrite", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "regex_rewrite", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "path_rewrite_policy", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "host_rewrite_literal", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "auto_host_rewrite", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "host_rewrite_header", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "host_rewrite_path_regex", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "timeout", nullptr, nullptr, nullptr},
      // proxy/router/hash_policy_impl.cc (the router hashes for RING_HASH / MAGLEV clusters).
      {"envoy.config.route.v3.RouteAction", "hash_policy", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy", "header", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy", "cookie", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy", "connection_properties", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy", "query_parameter", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy", "terminal", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy.Header", "header_name", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy.Cookie", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy.Cookie", "ttl", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy.Cookie", "path", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties", "source_ip", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter", "name", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.RouteAction", "retry_policy", nullptr, nullptr, nullptr},
      // Replaces the HCM's stream_idle_timeout for the stream (http_connection_manager.cc).
      {"envoy.config.route.v3.RouteAction", "idle_timeout", nullptr, nullptr, nullptr},
      // The stream duration timer of http_connection_manager.cc (refreshDurationTimeout), fed by
      // a gRPC request's grpc-timeout; its presence turns the route timeout off (router.cc).
      {"envoy.config.route.v3.RouteAction", "max_stream_duration", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.MaxStreamDuration", "max_stream_duration", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.MaxStreamDuration", "grpc_timeout_header_max", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction.MaxStreamDuration", "grpc_timeout_header_offset", nullptr,
       nullptr, nullptr},
      // Deprecated upstream, still honoured by Envoy 1.40: the router's timeout for a gRPC
      // request from its grpc-timeout (router.cc setTimeout).
      {"envoy.config.route.v3.RouteAction", "max_grpc_timeout", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RouteAction", "grpc_timeout_offset", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster", "clusters", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster", "total_weight", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster", "runtime_key_prefix", nullptr, nullptr,
       nullptr},  // no runtime: the weights apply (see runtime_key above)
      {"envoy.config.route.v3.WeightedCluster", "header_name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "name", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "cluster_header", nullptr, nullptr,
       nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "weight", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "request_headers_to_add", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "request_headers_to_remove", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "response_headers_to_add", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "response_headers_to_remove", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.WeightedCluster.ClusterWeight", "host_rewrite_literal", nullptr,
       nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "https_redirect", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "scheme_redirect", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "host_redirect", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "port_redirect", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "path_redirect", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "prefix_rewrite", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "regex_rewrite", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "response_code", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.RedirectAction", "strip_query", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.DirectResponseAction", "status", nullptr, nullptr, nullptr},
      {"envoy.config.route.v3.DirectResponseAction", "body", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.DataSource", "filename", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.DataSource", "inline_bytes", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.DataSource", "inline_string", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.DataSource", "environment_variable", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HeaderValueOption", "header", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HeaderValueOption", "append", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HeaderValueOption", "append_action", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HeaderValueOption", "keep_empty_value", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HeaderValue", "key", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HeaderValue", "value", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HeaderValue", "raw_value", nullptr, nullptr, nullptr},

      // --- TLS (proxy/tls/context_impl.cc) ------------------------------------------------
      {kDownstreamTls, "common_tls_context", nullptr, nullptr, nullptr},
      {kDownstreamTls, "require_client_certificate", nullptr, nullptr, nullptr},
      // Upstream (proxy/upstream/cluster_info_impl.cc creates the SslSocket per connection).
      {kUpstreamTls, "common_tls_context", nullptr, nullptr, nullptr},
      {kUpstreamTls, "sni", nullptr, nullptr, nullptr},
      {kCommonTls, "tls_params", nullptr, nullptr, nullptr},
      {kCommonTls, "tls_certificates", nullptr, nullptr, nullptr},
      {kCommonTls, "validation_context", nullptr, nullptr, nullptr},
      {kCommonTls, "alpn_protocols", nullptr, nullptr, nullptr},
      // Secrets and the references to them (proxy/tls/secret_manager.cc).
      {kCommonTls, "tls_certificate_sds_secret_configs", nullptr, nullptr, nullptr},
      {kCommonTls, "validation_context_sds_secret_config", nullptr, nullptr, nullptr},
      {kSdsSecretConfig, "name", nullptr, nullptr, nullptr},
      // SDS over xDS: ads or the SDS stream's api_config_source (server/xds_config.cc).
      {kSdsSecretConfig, "sds_config", nullptr, nullptr, nullptr},
      {kSecret, "name", nullptr, nullptr, nullptr},
      {kSecret, "tls_certificate", nullptr, nullptr, nullptr},
      {kSecret, "validation_context", nullptr, nullptr, nullptr},
      {kTlsCertificate, "certificate_chain", nullptr, nullptr, nullptr},
      {kTlsCertificate, "private_key", nullptr, nullptr, nullptr},
      // Watched only in a secret delivered by SDS, as Envoy (proxy/tls/secret_files.cc); a
      // static secret with it is refused by secret_manager.cc.
      {kTlsCertificate, "watched_directory",
       "envoy.extensions.transport_sockets.tls.v3.Secret.tls_certificate", nullptr, nullptr},
      {kTlsParameters, "tls_minimum_protocol_version", nullptr, nullptr, nullptr},
      {kTlsParameters, "tls_maximum_protocol_version", nullptr, nullptr, nullptr},
      {kTlsParameters, "cipher_suites", nullptr, nullptr, nullptr},
      {kTlsParameters, "ecdh_curves", nullptr, nullptr, nullptr},
      {kValidationContext, "trusted_ca", nullptr, nullptr, nullptr},
      {kValidationContext, "match_typed_subject_alt_names", nullptr, nullptr, nullptr},
      {kValidationContext, "crl", nullptr, nullptr, nullptr},
      {kValidationContext, "watched_directory",
       "envoy.extensions.transport_sockets.tls.v3.Secret.validation_context", nullptr, nullptr},
      {kValidationContext, "only_verify_leaf_cert_crl", nullptr, nullptr, nullptr},
      {kSanMatcher, "san_type", nullptr, nullptr, nullptr},
      {kSanMatcher, "matcher", nullptr, nullptr, nullptr},

      // --- Cluster (proxy/upstream/cluster_info_impl.cc, cluster_manager_impl.cc) ---------
      {"envoy.config.cluster.v3.Cluster", "name", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "alt_stat_name", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "type", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "cluster_type", nullptr, nullptr, nullptr},  // refused
      {"envoy.config.cluster.v3.Cluster", "eds_cluster_config", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "connect_timeout", nullptr, nullptr, nullptr},
      // Being implemented with upstream backpressure (hard-mem).
      {"envoy.config.cluster.v3.Cluster", "per_connection_buffer_limit_bytes", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster", "lb_policy", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "load_assignment", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "max_requests_per_connection", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "circuit_breakers", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "common_http_protocol_options", nullptr, nullptr,
       nullptr},
      // An empty message: "HTTP/1.1 upstream".
      {"envoy.config.cluster.v3.Cluster", "http_protocol_options", nullptr, nullptr, nullptr},
      // Deprecated upstream but still honoured by Envoy 1.40: HTTP/2 upstream unless the typed
      // HttpProtocolOptions is present (cluster_info_impl.cc; the pool in
      // http2_conn_pool_impl.cc, the codec in proxy/http/http2/client_connection_impl.cc).
      {"envoy.config.cluster.v3.Cluster", "http2_protocol_options", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "typed_extension_protocol_options", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster", "least_request_lb_config", nullptr, nullptr, nullptr},
      // RING_HASH / MAGLEV (proxy/upstream/ring_hash_lb.cc, maglev_lb.cc; the structures built
      // per snapshot in thread_aware_lb_impl.cc).
      {"envoy.config.cluster.v3.Cluster", "ring_hash_lb_config", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "maglev_lb_config", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster.RingHashLbConfig", "minimum_ring_size", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster.RingHashLbConfig", "maximum_ring_size", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster.RingHashLbConfig", "hash_function", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster.MaglevLbConfig", "table_size", nullptr, nullptr, nullptr},
      // The typed forms in load_balancing_policy (cluster_info_impl.cc policyFromExtensions()).
      {"envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash", "hash_function", nullptr,
       nullptr, nullptr},
      {"envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash", "minimum_ring_size",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash", "maximum_ring_size",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.load_balancing_policies.maglev.v3.Maglev", "table_size", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster", "transport_socket", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "transport_socket_matches", nullptr, nullptr,
       nullptr},  // refused by validation.cc
      // The downstream side only speaks HTTP/1, so "the downstream's protocol" is HTTP/1.1.
      {"envoy.config.cluster.v3.Cluster", "protocol_selection", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "load_balancing_policy", nullptr, nullptr, nullptr},
      // proxy/upstream/health_checker_impl.* (one checker per cluster, on the main thread).
      {"envoy.config.cluster.v3.Cluster", "health_checks", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster", "outlier_detection", nullptr, nullptr, nullptr},
      // proxy/upstream/host_impl.cc computeHostSet(): priority load and panic mode.
      {"envoy.config.cluster.v3.Cluster", "common_lb_config", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster.CommonLbConfig", "healthy_panic_threshold", nullptr,
       nullptr, nullptr},
      // host_impl.cc computeLocalities(), locality_wrr.*, load_balancer_impl.cc chooseLocality()
      // (refused with RING_HASH / MAGLEV by cluster_info_impl.cc).
      {"envoy.config.cluster.v3.Cluster.CommonLbConfig", "locality_weighted_lb_config", nullptr,
       nullptr, nullptr},
      {"envoy.type.v3.Percent", "value", nullptr, nullptr, nullptr},
      // STRICT_DNS / LOGICAL_DNS (proxy/upstream/strict_dns_cluster.*, logical_dns_cluster.*;
      // the c-ares resolver in proxy/network/dns_impl.*). Refused on other cluster types,
      // where they would do nothing.
      {"envoy.config.cluster.v3.Cluster", "dns_refresh_rate", nullptr, "STRICT_DNS/LOGICAL_DNS",
       dnsCluster},
      {"envoy.config.cluster.v3.Cluster", "dns_failure_refresh_rate", nullptr,
       "STRICT_DNS/LOGICAL_DNS", dnsCluster},
      {"envoy.config.cluster.v3.Cluster", "respect_dns_ttl", nullptr, "STRICT_DNS/LOGICAL_DNS",
       dnsCluster},
      {"envoy.config.cluster.v3.Cluster", "dns_lookup_family", nullptr, "STRICT_DNS/LOGICAL_DNS",
       dnsCluster},
      {"envoy.config.cluster.v3.Cluster", "typed_dns_resolver_config", nullptr,
       "STRICT_DNS/LOGICAL_DNS", dnsCluster},
      {"envoy.config.cluster.v3.Cluster.RefreshRate", "base_interval", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster.RefreshRate", "max_interval", nullptr, nullptr, nullptr},
      {"envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig", "resolvers",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
       "dns_resolver_options", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.DnsResolverOptions", "use_tcp_for_dns_lookups", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.DnsResolverOptions", "no_default_search_domain", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster.EdsClusterConfig", "eds_config", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.Cluster.EdsClusterConfig", "service_name", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.Cluster.LeastRequestLbConfig", "choice_count", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.LoadBalancingPolicy", "policies", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.LoadBalancingPolicy.Policy", "typed_extension_config", nullptr,
       nullptr, nullptr},
      {"envoy.config.core.v3.TypedExtensionConfig", "name", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.TypedExtensionConfig", "typed_config", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.CircuitBreakers", "thresholds", nullptr, nullptr, nullptr},
      // Routes at HIGH priority are refused, so only DEFAULT thresholds ever apply.
      {"envoy.config.cluster.v3.CircuitBreakers.Thresholds", "priority", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.CircuitBreakers.Thresholds", "max_connections", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.CircuitBreakers.Thresholds", "max_pending_requests", nullptr,
       nullptr, nullptr},
      {"envoy.config.cluster.v3.CircuitBreakers.Thresholds", "max_requests", nullptr, nullptr,
       nullptr},
      // The retry budget: retries in flight cluster-wide (retry_state.cc).
      {"envoy.config.cluster.v3.CircuitBreakers.Thresholds", "max_retries", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.HttpProtocolOptions", "max_requests_per_connection",
       kClusterCommonOptions, nullptr, nullptr},
      {"envoy.config.core.v3.HttpProtocolOptions", "max_requests_per_connection",
       kUpstreamCommonOptions, nullptr, nullptr},
      // Idle pooled connections close after it (http_conn_pool_impl.cc).
      {"envoy.config.core.v3.HttpProtocolOptions", "idle_timeout", kClusterCommonOptions, nullptr,
       nullptr},
      {"envoy.config.core.v3.HttpProtocolOptions", "idle_timeout", kUpstreamCommonOptions, nullptr,
       nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "common_http_protocol_options",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "explicit_http_config", nullptr,
       nullptr, nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "use_downstream_protocol_config",
       nullptr, nullptr, nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig",
       "http_protocol_options", nullptr, nullptr, nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig",
       "http2_protocol_options", nullptr, nullptr, nullptr},
      // The upstream HTTP/2 codec's settings (cluster_info_impl.cc -> Http2Settings).
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_concurrent_streams", kClusterHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_stream_window_size",
       kClusterHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_connection_window_size",
       kClusterHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_concurrent_streams", kExplicitHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_stream_window_size",
       kExplicitHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_connection_window_size",
       kExplicitHttp2Options, nullptr, nullptr},
      // use_downstream_protocol_config: HTTP/1.x requests go as HTTP/1.1 (empty options), HTTP/2
      // ones as HTTP/2 with these settings (ClusterInfo::upstreamHttpProtocol(downstream)).
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig",
       "http_protocol_options", nullptr, nullptr, nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig",
       "http2_protocol_options", nullptr, nullptr, nullptr},
      // auto_config: ALPN (h2, http/1.1) over TLS picks the codec per host, the options of the
      // protocol chosen apply (mixed_conn_pool_impl.cc; TLS required, cluster_info_impl.cc).
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "auto_config", nullptr, nullptr,
       nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig",
       "http_protocol_options", nullptr, nullptr, nullptr},
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig",
       "http2_protocol_options", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_concurrent_streams", kAutoHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_stream_window_size", kAutoHttp2Options,
       nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_connection_window_size",
       kAutoHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "max_concurrent_streams",
       kDownstreamHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_stream_window_size",
       kDownstreamHttp2Options, nullptr, nullptr},
      {"envoy.config.core.v3.Http2ProtocolOptions", "initial_connection_window_size",
       kDownstreamHttp2Options, nullptr, nullptr},

      // --- OutlierDetection (proxy/upstream/outlier_detection_impl.cc; reports from the
      // HTTP pool, http_conn_pool_impl.cc) ---------------------------------------------------
      {"envoy.config.cluster.v3.OutlierDetection", "consecutive_5xx", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "interval", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "base_ejection_time", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "max_ejection_percent", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "enforcing_consecutive_5xx", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "enforcing_success_rate", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "success_rate_minimum_hosts", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "success_rate_request_volume", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "success_rate_stdev_factor", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "consecutive_gateway_failure", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "enforcing_consecutive_gateway_failure", nullptr,
       nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "split_external_local_origin_errors", nullptr,
       nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "consecutive_local_origin_failure", nullptr,
       nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "enforcing_consecutive_local_origin_failure",
       nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "enforcing_local_origin_success_rate", nullptr,
       nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "failure_percentage_threshold", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "enforcing_failure_percentage", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "enforcing_failure_percentage_local_origin",
       nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "failure_percentage_minimum_hosts", nullptr,
       nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "failure_percentage_request_volume", nullptr,
       nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "max_ejection_time", nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "max_ejection_time_jitter", nullptr, nullptr,
       nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "successful_active_health_check_uneject_host",
       nullptr, nullptr, nullptr},
      {"envoy.config.cluster.v3.OutlierDetection", "always_eject_one_host", nullptr, nullptr,
       nullptr},

      // --- HealthCheck (proxy/upstream/health_checker_impl.cc, _http.cc, _tcp.cc) ---------
      {"envoy.config.core.v3.HealthCheck", "timeout", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "interval", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "initial_jitter", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "interval_jitter", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "interval_jitter_percent", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "unhealthy_threshold", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "healthy_threshold", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "alt_port", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "reuse_connection", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "http_health_check", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "tcp_health_check", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "grpc_health_check", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.GrpcHealthCheck", "service_name", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.HealthCheck.GrpcHealthCheck", "authority", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "no_traffic_interval", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "no_traffic_healthy_interval", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.HealthCheck", "unhealthy_interval", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "unhealthy_edge_interval", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck", "healthy_edge_interval", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.HttpHealthCheck", "host", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.HttpHealthCheck", "path", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.HttpHealthCheck", "request_headers_to_add", nullptr,
       nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.HttpHealthCheck", "expected_statuses", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.HealthCheck.HttpHealthCheck", "retriable_statuses", nullptr, nullptr,
       nullptr},
      {"envoy.config.core.v3.HealthCheck.HttpHealthCheck", "method", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.TcpHealthCheck", "send", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.TcpHealthCheck", "receive", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.Payload", "text", nullptr, nullptr, nullptr},
      {"envoy.config.core.v3.HealthCheck.Payload", "binary", nullptr, nullptr, nullptr},

      // --- ClusterLoadAssignment (proxy/upstream/host_impl.cc) ----------------------------
      {"envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.ClusterLoadAssignment", "endpoints", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.LocalityLbEndpoints", "locality", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.LocalityLbEndpoints", "lb_endpoints", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.LocalityLbEndpoints", "load_balancer_endpoints", nullptr, nullptr,
       nullptr},  // refused by validation.cc
      {"envoy.config.endpoint.v3.LocalityLbEndpoints", "leds_cluster_locality_config", nullptr,
       nullptr, nullptr},
      // The locality's weight under common_lb_config.locality_weighted_lb_config (Envoy too
      // ignores it otherwise; gRPC's clients require it).
      {"envoy.config.endpoint.v3.LocalityLbEndpoints", "load_balancing_weight", nullptr, nullptr,
       nullptr},
      {"envoy.config.endpoint.v3.LocalityLbEndpoints", "priority", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.LbEndpoint", "endpoint", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.LbEndpoint", "endpoint_name", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.LbEndpoint", "health_status", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.LbEndpoint", "load_balancing_weight", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.Endpoint", "address", nullptr, nullptr, nullptr},
      {"envoy.config.endpoint.v3.Endpoint", "hostname", nullptr, nullptr, nullptr},
  };
  return rows;
}

}  // namespace

const std::vector<ImplementedField>& implementedFields() {
  return table();
}

}  // namespace Proxy::Config
