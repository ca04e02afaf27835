#pragma once

// The handful of typed_config types this proxy understands, and helpers to unpack them.
// Filters are recognised by the type URL of their typed_config, not by their name (the name is
// informational, as in current Envoy). A switch on these is all the "registry" we need
// (ARCHITECTURE.md, convention 3).

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "envoy/config/listener/v3/listener_components.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"

#include <google/protobuf/any.pb.h>

namespace Proxy::Config {

using HttpConnectionManager =
    envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using HttpFilter = envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
using TcpProxy = envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
using RouterFilter = envoy::extensions::filters::http::router::v3::Router;
using HttpProtocolOptions = envoy::extensions::upstreams::http::v3::HttpProtocolOptions;

// Extension names as Envoy spells them (used as map keys, e.g. in a cluster's
// typed_extension_protocol_options, and as the conventional filter names).
inline constexpr std::string_view kHttpConnectionManagerName =
    "envoy.filters.network.http_connection_manager";
inline constexpr std::string_view kTcpProxyName = "envoy.filters.network.tcp_proxy";
inline constexpr std::string_view kRouterName = "envoy.filters.http.router";
inline constexpr std::string_view kHttpProtocolOptionsName =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
inline constexpr std::string_view kRawBufferTypeName =
    "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
inline constexpr std::string_view kDownstreamTlsContextTypeName =
    "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
inline constexpr std::string_view kUpstreamTlsContextTypeName =
    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

// "type.googleapis.com/<full name of T>".
template <class T>
std::string typeUrl() {
  return "type.googleapis.com/" + T::descriptor()->full_name();
}

// The message name an Any's type URL refers to (the text after the last '/').
std::string_view typeName(const google::protobuf::Any& any);

enum class NetworkFilterType { HttpConnectionManager, TcpProxy, Unsupported };

// Which network filter `filter` configures, by its typed_config type.
NetworkFilterType networkFilterType(const envoy::config::listener::v3::Filter& filter);

// `filter`'s typed_config as an HttpConnectionManager / TcpProxy. Fails (with a message relative
// to the filter, e.g. "typed_config: ...") when the type differs or the bytes do not parse.
absl::StatusOr<HttpConnectionManager> unpackHcm(const envoy::config::listener::v3::Filter& filter);
absl::StatusOr<TcpProxy> unpackTcpProxy(const envoy::config::listener::v3::Filter& filter);

// True when `filter` is the terminal router filter. A filter with no typed_config is accepted
// by its name, as older Envoy configs write `- name: envoy.filters.http.router`.
bool isRouterFilter(const HttpFilter& filter);

}  // namespace Proxy::Config
