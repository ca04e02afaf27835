#pragma once

// gRPC over HTTP as an HTTP proxy sees it (Envoy's source/common/grpc/common.cc and
// status.cc): which requests are gRPC, the grpc-timeout header both ways, the HTTP status to
// grpc-status mapping, and the trailers-only local reply a gRPC client gets instead of an HTTP
// error page.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/http/header_map.h"

namespace Proxy::Grpc {

// The gRPC status codes the proxy produces itself (grpc/include/grpc/impl/codegen/status.h).
enum class Status : uint32_t {
  Ok = 0,
  Canceled = 1,
  Unknown = 2,
  DeadlineExceeded = 4,
  PermissionDenied = 7,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  Unauthenticated = 16,
};

// content-type is exactly "application/grpc" or starts with "application/grpc+"
// ("application/grpc-web" is not gRPC), as Envoy's Grpc::Common::hasGrpcContentType.
bool hasGrpcContentType(const Http::HeaderMap& headers);

// A request with a :path and a gRPC content-type (Envoy's isGrpcRequestHeaders): what the
// route's `grpc: {}` matcher and the local replies look at.
bool isGrpcRequestHeaders(const Http::RequestHeaderMap& headers);

// The mapping of https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md, as
// Envoy's Grpc::Utility::httpToGrpcStatus: 400 INTERNAL, 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, anything else UNKNOWN.
Status httpToGrpcStatus(uint32_t http_status);

// The request's grpc-timeout ("<1-8 digits><H|M|S|m|u|n>"), rounded up to milliseconds; nullopt
// when absent or malformed (Envoy's Grpc::Common::getGrpcTimeout).
std::optional<std::chrono::milliseconds> getGrpcTimeout(const Http::RequestHeaderMap& headers);

// Writes `timeout` as grpc-timeout in the largest precision that fits 8 digits (m, S, M, H;
// clipped at 99999999H), as Envoy's Grpc::Common::toGrpcTimeout.
void toGrpcTimeout(std::chrono::milliseconds timeout, Http::RequestHeaderMap& headers);

// Percent-encodes a grpc-message value as Envoy's Http::Utility::PercentEncoding::encode: bytes
// below ' ', from '~' up, and '%' become "%XX" (upper-case hex).
std::string percentEncode(std::string_view value);

// Turns a local reply's response headers (:status `http_status`, whatever the route added) into
// a gRPC trailers-only response, as Envoy's Http::Utility::encodeLocalReply does for a gRPC
// request: :status 200, content-type application/grpc, grpc-status (`grpc_status`, or mapped
// from `http_status`, unless the headers carry one), grpc-message with the local reply body
// percent-encoded (all of it: Envoy 1.40 keeps a direct response's trailing newline), no
// content-length. The reply has no body.
void toTrailersOnlyLocalReply(Http::ResponseHeaderMap& headers, uint32_t http_status,
                              std::string_view body, std::optional<Status> grpc_status);

}  // namespace Proxy::Grpc
