#include "proxy/filters/http_connection_manager_config.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "proxy/router/config_impl.h"
#include "proxy/router/rds_impl.h"

namespace Proxy::Filters {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

HcmStats::HcmStats(Stats::Scope s)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_active(s.gauge("downstream_cx_active")),
      downstream_cx_http1_total(s.counter("downstream_cx_http1_total")),
      downstream_cx_http1_active(s.gauge("downstream_cx_http1_active")),
      downstream_cx_http2_total(s.counter("downstream_cx_http2_total")),
      downstream_cx_http2_active(s.gauge("downstream_cx_http2_active")),
      downstream_cx_destroy(s.counter("downstream_cx_destroy")),
      downstream_cx_destroy_remote(s.counter("downstream_cx_destroy_remote")),
      downstream_cx_destroy_local(s.counter("downstream_cx_destroy_local")),
      downstream_cx_destroy_active_rq(s.counter("downstream_cx_destroy_active_rq")),
      downstream_cx_protocol_error(s.counter("downstream_cx_protocol_error")),
      downstream_cx_drain_close(s.counter("downstream_cx_drain_close")),
      downstream_cx_idle_timeout(s.counter("downstream_cx_idle_timeout")),
      downstream_cx_max_duration_reached(s.counter("downstream_cx_max_duration_reached")),
      downstream_cx_rx_bytes_total(s.counter("downstream_cx_rx_bytes_total")),
      downstream_cx_tx_bytes_total(s.counter("downstream_cx_tx_bytes_total")),
      downstream_flow_control_paused_reading_total(
          s.counter("downstream_flow_control_paused_reading_total")),
      downstream_flow_control_resumed_reading_total(
          s.counter("downstream_flow_control_resumed_reading_total")),
      downstream_rq_total(s.counter("downstream_rq_total")),
      downstream_rq_http1_total(s.counter("downstream_rq_http1_total")),
      downstream_rq_http2_total(s.counter("downstream_rq_http2_total")),
      downstream_rq_too_many_premature_resets(s.counter("downstream_rq_too_many_premature_resets")),
      downstream_rq_active(s.gauge("downstream_rq_active")),
      downstream_rq_completed(s.counter("downstream_rq_completed")),
      downstream_rq_1xx(s.counter("downstream_rq_1xx")),
      downstream_rq_2xx(s.counter("downstream_rq_2xx")),
      downstream_rq_3xx(s.counter("downstream_rq_3xx")),
      downstream_rq_4xx(s.counter("downstream_rq_4xx")),
      downstream_rq_5xx(s.counter("downstream_rq_5xx")),
      downstream_rq_rx_reset(s.counter("downstream_rq_rx_reset")),
      downstream_rq_tx_reset(s.counter("downstream_rq_tx_reset")),
      downstream_rq_timeout(s.counter("downstream_rq_timeout")),
      downstream_rq_header_timeout(s.counter("downstream_rq_header_timeout")),
      downstream_rq_max_duration_reached(s.counter("downstream_rq_max_duration_reached")),
      downstream_rq_idle_timeout(s.counter("downstream_rq_idle_timeout")),
      downstream_rq_non_relative_path(s.counter("downstream_rq_non_relative_path")),
      downstream_rq_too_large(s.counter("downstream_rq_too_large")),
      downstream_rq_failed_path_normalization(s.counter("downstream_rq_failed_path_normalization")),
      downstream_rq_redirected_with_normalized_path(
          s.counter("downstream_rq_redirected_with_normalized_path")),
      no_route(s.counter("no_route")),
      no_cluster(s.counter("no_cluster")),
      rq_direct_response(s.counter("rq_direct_response")),
      rq_redirect(s.counter("rq_redirect")) {}

namespace {

std::chrono::milliseconds toMillis(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const HcmConfig>> HcmConfig::create(
    const HttpConnectionManager& proto, Stats::Store& store,
    Router::RouteConfigProviderManager* rds) {
  auto config = std::make_shared<HcmConfig>();
  if (proto.stat_prefix().empty()) {
    return absl::InvalidArgumentError("stat_prefix: must not be empty");
  }
  config->stat_prefix = proto.stat_prefix();
  config->stats = std::make_unique<HcmStats>(
      Stats::Scope(store, absl::StrCat("http.", proto.stat_prefix(), ".")));

  switch (proto.codec_type()) {
    case HttpConnectionManager::AUTO:
      config->codec_type = Http::CodecType::Auto;
      break;
    case HttpConnectionManager::HTTP1:
      config->codec_type = Http::CodecType::Http1;
      break;
    case HttpConnectionManager::HTTP2:
      config->codec_type = Http::CodecType::Http2;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "codec_type: unsupported codec '",
          HttpConnectionManager::CodecType_Name(proto.codec_type()), "' (HTTP1, HTTP2 or AUTO)"));
  }
  config->http2_stats =
      std::make_unique<Http::Http2::ServerCodecStats>(Stats::Scope(store, "http2."));

  // The filter chain must be exactly the router: it is the only HTTP filter we have.
  if (proto.http_filters_size() == 0) {
    return absl::InvalidArgumentError("http_filters: must contain envoy.filters.http.router");
  }
  for (int i = 0; i < proto.http_filters_size(); i++) {
    const auto& filter = proto.http_filters(i);
    const bool is_router =
        filter.typed_config().Is<envoy::extensions::filters::http::router::v3::Router>() ||
        (!filter.has_typed_config() && filter.name() == "envoy.filters.http.router");
    if (!is_router) {
      if (filter.is_optional() || filter.disabled()) {
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "http_filters[", i, "]: unsupported HTTP filter '", filter.name(), "'",
          filter.has_typed_config() ? absl::StrCat(" (", filter.typed_config().type_url(), ")")
                                    : ""));
    }
    if (i != proto.http_filters_size() - 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("http_filters[", i, "]: the router must be the last HTTP filter"));
    }
    envoy::extensions::filters::http::router::v3::Router router;
    if (filter.has_typed_config() && !filter.typed_config().UnpackTo(&router)) {
      return absl::InvalidArgumentError(
          absl::StrCat("http_filters[", i, "].typed_config: cannot decode Router"));
    }
    config->suppress_envoy_headers = router.suppress_envoy_headers();
  }

  if (proto.has_route_config()) {
    auto table = Router::ConfigImpl::create(proto.route_config());
    if (!table.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("route_config.", table.status().message()));
    }
    config->route_provider = std::make_shared<Router::StaticRouteConfigProvider>(*std::move(table));
  } else if (proto.has_rds()) {
    if (rds == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("rds: route configuration '", proto.rds().route_config_name(),
                       "' needs dynamic_resources (an xDS server), which this server has not"));
    }
    if (proto.rds().route_config_name().empty()) {
      return absl::InvalidArgumentError("rds.route_config_name: must not be empty");
    }
    config->rds_provider =
        rds->getOrCreate(proto.rds().route_config_name(), proto.rds().config_source());
    config->route_provider = config->rds_provider;
  } else {
    return absl::InvalidArgumentError("route_specifier: one of route_config or rds is required");
  }

  if (proto.has_max_request_headers_kb()) {
    const uint32_t kb = proto.max_request_headers_kb().value();
    if (kb == 0 || kb > 8192) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_request_headers_kb: must be in [1, 8192], got ", kb));
    }
    config->max_request_headers_kb = kb;
  }
  // Only these Http1ProtocolOptions fields are implemented; field_support refuses the rest.
  config->accept_http_10 = proto.http_protocol_options().accept_http_10();
  config->default_host_for_http_10 = proto.http_protocol_options().default_host_for_http_10();
  config->enable_trailers = proto.http_protocol_options().enable_trailers();
  const auto& common = proto.common_http_protocol_options();
  if (common.has_max_headers_count()) {
    config->max_headers_count = common.max_headers_count().value();
  }
  // Envoy's validation: none of the timeouts may be negative.
  const std::pair<const char*, const google::protobuf::Duration*> durations[] = {
      {"common_http_protocol_options.idle_timeout", &common.idle_timeout()},
      {"common_http_protocol_options.max_connection_duration", &common.max_connection_duration()},
      {"common_http_protocol_options.max_stream_duration", &common.max_stream_duration()},
      {"drain_timeout", &proto.drain_timeout()},
      {"stream_idle_timeout", &proto.stream_idle_timeout()},
      {"request_timeout", &proto.request_timeout()},
      {"request_headers_timeout", &proto.request_headers_timeout()},
  };
  for (const auto& [name, duration] : durations) {
    if (duration->seconds() < 0 || duration->nanos() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": must not be negative"));
    }
  }
  // http2_protocol_options: what field_support lets through (the rest is refused there).
  Http::Http2::ServerSettings& h2 = config->http2_settings;
  const auto& h2_proto = proto.http2_protocol_options();
  if (h2_proto.has_max_concurrent_streams()) {
    h2.max_concurrent_streams = h2_proto.max_concurrent_streams().value();
  }
  if (h2_proto.has_initial_stream_window_size()) {
    // Envoy's bounds (RFC 9113 6.5.2: at most 2^31-1; Envoy asks for at least 65535).
    const uint32_t v = h2_proto.initial_stream_window_size().value();
    if (v < 65535 || v > 2147483647) {
      return absl::InvalidArgumentError(absl::StrCat(
          "http2_protocol_options.initial_stream_window_size: must be in [65535, 2147483647], "
          "got ",
          v));
    }
    h2.initial_stream_window_size = v;
  }
  if (h2_proto.has_initial_connection_window_size()) {
    const uint32_t v = h2_proto.initial_connection_window_size().value();
    if (v < 65535 || v > 2147483647) {
      return absl::InvalidArgumentError(
          absl::StrCat("http2_protocol_options.initial_connection_window_size: must be in [65535, "
                       "2147483647], got ",
                       v));
    }
    h2.initial_connection_window_size = v;
  }
  if (h2_proto.has_override_stream_error_on_invalid_http_message()) {
    h2.stream_error_on_invalid_http_messaging =
        h2_proto.override_stream_error_on_invalid_http_message().value();
  }
  if (h2_proto.has_max_outbound_frames()) {
    h2.max_outbound_frames = h2_proto.max_outbound_frames().value();
  }
  if (h2_proto.has_max_outbound_control_frames()) {
    h2.max_outbound_control_frames = h2_proto.max_outbound_control_frames().value();
  }
  if (h2_proto.has_max_consecutive_inbound_frames_with_empty_payload()) {
    h2.max_consecutive_inbound_frames_with_empty_payload =
        h2_proto.max_consecutive_inbound_frames_with_empty_payload().value();
  }
  if (h2_proto.has_max_inbound_priority_frames_per_stream()) {
    h2.max_inbound_priority_frames_per_stream =
        h2_proto.max_inbound_priority_frames_per_stream().value();
  }
  if (h2_proto.has_max_inbound_window_update_frames_per_data_frame_sent()) {
    h2.max_inbound_window_update_frames_per_data_frame_sent =
        h2_proto.max_inbound_window_update_frames_per_data_frame_sent().value();
  }
  if (common.has_idle_timeout()) {
    config->idle_timeout = toMillis(common.idle_timeout());
  }
  if (common.has_max_connection_duration()) {
    config->max_connection_duration = toMillis(common.max_connection_duration());
  }
  if (common.has_max_stream_duration()) {
    config->max_stream_duration = toMillis(common.max_stream_duration());
  }
  if (proto.has_drain_timeout()) {
    config->drain_timeout = toMillis(proto.drain_timeout());
  }
  if (proto.has_stream_idle_timeout()) {
    config->stream_idle_timeout = toMillis(proto.stream_idle_timeout());
  }
  if (proto.has_request_timeout()) {
    config->request_timeout = toMillis(proto.request_timeout());
  }
  if (proto.has_request_headers_timeout()) {
    config->request_headers_timeout = toMillis(proto.request_headers_timeout());
  }
  if (!proto.server_name().empty()) {
    config->server_name = proto.server_name();
  }
  config->overwrite_server_header =
      proto.server_header_transformation() == HttpConnectionManager::OVERWRITE;
  config->pass_through_server_header =
      proto.server_header_transformation() == HttpConnectionManager::PASS_THROUGH;
  config->use_remote_address = proto.has_use_remote_address() && proto.use_remote_address().value();
  config->skip_xff_append = proto.skip_xff_append();
  config->generate_request_id =
      !proto.has_generate_request_id() || proto.generate_request_id().value();
  config->preserve_external_request_id = proto.preserve_external_request_id();
  config->always_set_request_id_in_response = proto.always_set_request_id_in_response();
  config->strip_matching_host_port = proto.strip_matching_host_port();
  config->strip_any_host_port = proto.strip_any_host_port();
  RequestHeaderPolicy& policy = config->request_header_policy;
  policy.use_remote_address = config->use_remote_address;
  policy.skip_xff_append = config->skip_xff_append;
  policy.generate_request_id = config->generate_request_id;
  policy.preserve_external_request_id = config->preserve_external_request_id;
  policy.local_address = ConnManagerUtility::localAddress();
  const auto& ranges = proto.internal_address_config().cidr_ranges();
  for (int i = 0; i < ranges.size(); i++) {
    CidrRange range;
    if (!ConnManagerUtility::parseCidrRange(ranges[i].address_prefix(),
                                            ranges[i].prefix_len().value(), range)) {
      return absl::InvalidArgumentError(
          absl::StrCat("internal_address_config.cidr_ranges[", i, "]: invalid range '",
                       ranges[i].address_prefix(), "/", ranges[i].prefix_len().value(), "'"));
    }
    policy.internal_ranges.push_back(range);
  }

  // Envoy's defaults: normalize_path and merge_slashes off (the runtime keys
  // http_connection_manager.normalize_path / .path_with_escaped_slashes_action default to off /
  // KEEP_UNCHANGED), IMPLEMENTATION_SPECIFIC_DEFAULT is KEEP_UNCHANGED.
  config->path_normalization.normalize_path =
      proto.has_normalize_path() && proto.normalize_path().value();
  config->path_normalization.merge_slashes = proto.merge_slashes();
  switch (proto.path_with_escaped_slashes_action()) {
    case HttpConnectionManager::IMPLEMENTATION_SPECIFIC_DEFAULT:
    case HttpConnectionManager::KEEP_UNCHANGED:
      config->path_normalization.escaped_slashes_action = Http::EscapedSlashesAction::KeepUnchanged;
      break;
    case HttpConnectionManager::REJECT_REQUEST:
      config->path_normalization.escaped_slashes_action = Http::EscapedSlashesAction::RejectRequest;
      break;
    case HttpConnectionManager::UNESCAPE_AND_REDIRECT:
      config->path_normalization.escaped_slashes_action =
          Http::EscapedSlashesAction::UnescapeAndRedirect;
      break;
    case HttpConnectionManager::UNESCAPE_AND_FORWARD:
      config->path_normalization.escaped_slashes_action =
          Http::EscapedSlashesAction::UnescapeAndForward;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("path_with_escaped_slashes_action: unknown value ",
                       static_cast<int>(proto.path_with_escaped_slashes_action())));
  }

  for (int i = 0; i < proto.access_log_size(); i++) {
    auto log = createAccessLog(proto.access_log(i));
    if (!log.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("access_log[", i, "].", log.status().message()));
    }
    config->access_logs.push_back(*std::move(log));
  }
  return config;
}

}  // namespace Proxy::Filters
