#include "proxy/config/filter_config.h"

#include "absl/strings/str_cat.h"

namespace Proxy::Config {
namespace {

template <class T>
absl::StatusOr<T> unpack(const envoy::config::listener::v3::Filter& filter) {
  if (!filter.has_typed_config()) {
    return absl::InvalidArgumentError("typed_config: required");
  }
  if (!filter.typed_config().Is<T>()) {
    return absl::InvalidArgumentError(absl::StrCat("typed_config: expected type '", typeUrl<T>(),
                                                   "', got '", filter.typed_config().type_url(),
                                                   "'"));
  }
  T config;
  if (!filter.typed_config().UnpackTo(&config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("typed_config: unable to parse ", T::descriptor()->full_name()));
  }
  return config;
}

}  // namespace

std::string_view typeName(const google::protobuf::Any& any) {
  std::string_view url = any.type_url();
  const size_t slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

NetworkFilterType networkFilterType(const envoy::config::listener::v3::Filter& filter) {
  if (!filter.has_typed_config()) {
    return NetworkFilterType::Unsupported;
  }
  if (filter.typed_config().Is<HttpConnectionManager>()) {
    return NetworkFilterType::HttpConnectionManager;
  }
  if (filter.typed_config().Is<TcpProxy>()) {
    return NetworkFilterType::TcpProxy;
  }
  return NetworkFilterType::Unsupported;
}

absl::StatusOr<HttpConnectionManager> unpackHcm(const envoy::config::listener::v3::Filter& filter) {
  return unpack<HttpConnectionManager>(filter);
}

absl::StatusOr<TcpProxy> unpackTcpProxy(const envoy::config::listener::v3::Filter& filter) {
  return unpack<TcpProxy>(filter);
}

bool isRouterFilter(const HttpFilter& filter) {
  if (filter.has_typed_config()) {
    return filter.typed_config().Is<RouterFilter>();
  }
  return !filter.has_config_discovery() && filter.name() == kRouterName;
}

}  // namespace Proxy::Config
