#pragma once

// The HTTP connection manager's config, built once on the main thread from an
// HttpConnectionManager proto (http_filters and the router's typed_config, route_config or rds,
// timeouts, header handling, access logs) and shared read-only by every connection on every
// worker.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/filters/access_log.h"
#include "proxy/filters/conn_manager_utility.h"
#include "proxy/http/codec_selection.h"
#include "proxy/http/http2/server_codec_stats.h"
#include "proxy/http/http2/server_connection_impl.h"
#include "proxy/http/path_normalization.h"
#include "proxy/router/rds.h"
#include "proxy/stats/stats.h"

namespace Proxy::Router {
class RouteConfigProviderManager;
class RdsRouteConfigProvider;
}  // namespace Proxy::Router

namespace Proxy::Filters {

// "http.<stat_prefix>." stats with Envoy's names.
struct HcmStats {
  explicit HcmStats(Stats::Scope scope);
  Stats::Counter& downstream_cx_total;
  Stats::Gauge& downstream_cx_active;
  Stats::Counter& downstream_cx_http1_total;
  Stats::Gauge& downstream_cx_http1_active;
  Stats::Counter& downstream_cx_http2_total;
  Stats::Gauge& downstream_cx_http2_active;
  Stats::Counter& downstream_cx_destroy;
  Stats::Counter& downstream_cx_destroy_remote;
  Stats::Counter& downstream_cx_destroy_local;
  Stats::Counter& downstream_cx_destroy_active_rq;
  Stats::Counter& downstream_cx_protocol_error;
  Stats::Counter& downstream_cx_drain_close;
  Stats::Counter& downstream_cx_idle_timeout;
  Stats::Counter& downstream_cx_max_duration_reached;
  Stats::Counter& downstream_cx_rx_bytes_total;
  Stats::Counter& downstream_cx_tx_bytes_total;
  // Reading the client paused / resumed by flow control: the upstream (or the pool) cannot
  // take the request body yet, or the client is not reading its responses.
  Stats::Counter& downstream_flow_control_paused_reading_total;
  Stats::Counter& downstream_flow_control_resumed_reading_total;
  Stats::Counter& downstream_rq_total;
  Stats::Counter& downstream_rq_http1_total;
  Stats::Counter& downstream_rq_http2_total;
  // HTTP/2 connections closed because most of their streams were reset before a response
  // (CVE-2023-44487, Envoy's premature reset check).
  Stats::Counter& downstream_rq_too_many_premature_resets;
  Stats::Gauge& downstream_rq_active;
  Stats::Counter& downstream_rq_completed;
  Stats::Counter& downstream_rq_1xx;
  Stats::Counter& downstream_rq_2xx;
  Stats::Counter& downstream_rq_3xx;
  Stats::Counter& downstream_rq_4xx;
  Stats::Counter& downstream_rq_5xx;
  Stats::Counter& downstream_rq_rx_reset;
  Stats::Counter& downstream_rq_tx_reset;
  Stats::Counter& downstream_rq_timeout;
  Stats::Counter& downstream_rq_header_timeout;
  Stats::Counter& downstream_rq_max_duration_reached;
  Stats::Counter& downstream_rq_idle_timeout;
  Stats::Counter& downstream_rq_non_relative_path;
  Stats::Counter& downstream_rq_too_large;
  Stats::Counter& downstream_rq_failed_path_normalization;
  Stats::Counter& downstream_rq_redirected_with_normalized_path;
  Stats::Counter& no_route;
  Stats::Counter& no_cluster;
  Stats::Counter& rq_direct_response;
  Stats::Counter& rq_redirect;
};

// Everything a connection manager needs, immutable after create().
struct HcmConfig {
  // Builds the config; errors are relative to the HttpConnectionManager message
  // ("route_config.virtual_hosts[0]...: ...", "http_filters[0]: ...").
  // `rds` hands out RDS providers (null: RDS is not available, e.g. a static-only server).
  static absl::StatusOr<std::shared_ptr<const HcmConfig>> create(
      const envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager&
          proto,
      Stats::Store& store, Router::RouteConfigProviderManager* rds);

  std::string stat_prefix;
  std::unique_ptr<HcmStats> stats;
  Router::RouteConfigProviderSharedPtr route_provider;
  // Set when the routes come from RDS: the listener warms until it is ready.
  std::shared_ptr<Router::RdsRouteConfigProvider> rds_provider;
  uint32_t max_request_headers_kb = 60;
  uint32_t max_headers_count = 100;
  // codec_type: HTTP1, HTTP2 (prior knowledge) or AUTO (the connection preface decides).
  Http::CodecType codec_type = Http::CodecType::Auto;
  // http2_protocol_options (limits and windows; the header limits above are copied in).
  Http::Http2::ServerSettings http2_settings;
  // "http2.*" in the root scope, as Envoy's downstream HTTP/2 codec stats.
  std::unique_ptr<Http::Http2::ServerCodecStats> http2_stats;
  // http_protocol_options: HTTP/1.0 is answered 426 unless accepted; an accepted one without
  // Host takes default_host_for_http_10.
  bool accept_http_10 = false;
  std::string default_host_for_http_10;
  // http_protocol_options.enable_trailers: HTTP/1 chunked trailers decoded and encoded (else
  // dropped, as in Envoy).
  bool enable_trailers = false;
  // Timeouts, Envoy's defaults; 0 disables each. Connection level (common_http_protocol_options):
  // idle (no stream), total lifetime (then a drain: idle connections close after drain_timeout,
  // a busy one after its response, which says "connection: close").
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds max_connection_duration{0};
  std::chrono::milliseconds drain_timeout{5000};
  // Stream level: no activity either way (a route's idle_timeout replaces it once routed); the
  // whole request received; its headers received; the stream's total lifetime.
  std::chrono::milliseconds stream_idle_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds request_timeout{0};
  std::chrono::milliseconds request_headers_timeout{0};
  std::chrono::milliseconds max_stream_duration{0};
  std::string server_name = "envoy";
  bool overwrite_server_header = true;      // ServerHeaderTransformation OVERWRITE
  bool pass_through_server_header = false;  // PASS_THROUGH: the upstream's, or none
  bool use_remote_address = false;
  bool skip_xff_append = false;
  bool generate_request_id = true;
  bool preserve_external_request_id = false;
  bool always_set_request_id_in_response = false;
  bool suppress_envoy_headers = false;
  // normalize_path, merge_slashes, path_with_escaped_slashes_action: applied to :path before
  // routing, and so to the path forwarded upstream.
  Http::PathNormalizationOptions path_normalization;
  // strip_matching_host_port / strip_any_host_port: drop ":port" from the Host before routing.
  bool strip_matching_host_port = false;
  bool strip_any_host_port = false;
  // x-forwarded-for, internal/edge requests, x-request-id (filled from the fields above plus
  // internal_address_config and the machine's local address).
  RequestHeaderPolicy request_header_policy;
  std::vector<AccessLogSharedPtr> access_logs;
};

using HcmConfigConstSharedPtr = std::shared_ptr<const HcmConfig>;

}  // namespace Proxy::Filters
