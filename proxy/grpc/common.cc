#include "proxy/grpc/common.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proxy/common/string_view.h"

namespace Proxy::Grpc {
namespace {

constexpr std::string_view kGrpcContentType = "application/grpc";
constexpr std::string_view kGrpcTimeout = "grpc-timeout";
constexpr std::string_view kGrpcStatus = "grpc-status";
constexpr std::string_view kGrpcMessage = "grpc-message";
// grpc-timeout's TimeoutValue is at most 8 digits.
constexpr uint64_t kMaxGrpcTimeoutValue = 99999999;

}  // namespace

bool hasGrpcContentType(const Http::HeaderMap& headers) {
  const std::string_view content_type = headers.getValue(Http::Headers::ContentType);
  return content_type.substr(0, kGrpcContentType.size()) == kGrpcContentType &&
         (content_type.size() == kGrpcContentType.size() ||
          content_type[kGrpcContentType.size()] == '+');
}

bool isGrpcRequestHeaders(const Http::RequestHeaderMap& headers) {
  return headers.has(Http::Headers::Path) && hasGrpcContentType(headers);
}

Status httpToGrpcStatus(uint32_t http_status) {
  switch (http_status) {
    case 400:
      return Status::Internal;
    case 401:
      return Status::Unauthenticated;
    case 403:
      return Status::PermissionDenied;
    case 404:
      return Status::Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status::Unavailable;
    default:
      return Status::Unknown;
  }
}

std::optional<std::chrono::milliseconds> getGrpcTimeout(const Http::RequestHeaderMap& headers) {
  const std::string_view value = headers.getValue(kGrpcTimeout);
  if (value.empty()) {
    return std::nullopt;
  }
  int64_t amount = 0;
  if (!absl::SimpleAtoi(asAbsl(value.substr(0, value.size() - 1)), &amount) || amount < 0 ||
      static_cast<uint64_t>(amount) > kMaxGrpcTimeoutValue) {
    return std::nullopt;
  }
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  switch (value.back()) {
    case 'H':
      return duration_cast<milliseconds>(std::chrono::hours(amount));
    case 'M':
      return duration_cast<milliseconds>(std::chrono::minutes(amount));
    case 'S':
      return duration_cast<milliseconds>(std::chrono::seconds(amount));
    case 'm':
      return milliseconds(amount);
    case 'u': {
      milliseconds ms = duration_cast<milliseconds>(std::chrono::microseconds(amount));
      return ms < std::chrono::microseconds(amount) ? ms + milliseconds(1) : ms;
    }
    case 'n': {
      milliseconds ms = duration_cast<milliseconds>(std::chrono::nanoseconds(amount));
      return ms < std::chrono::nanoseconds(amount) ? ms + milliseconds(1) : ms;
    }
    default:
      return std::nullopt;
  }
}

void toGrpcTimeout(std::chrono::milliseconds timeout, Http::RequestHeaderMap& headers) {
  static constexpr char kUnits[] = "mSMH";
  uint64_t amount = static_cast<uint64_t>(timeout.count());
  const char* unit = kUnits;
  if (amount > kMaxGrpcTimeoutValue) {
    amount /= 1000;
    unit++;
  }
  while (amount > kMaxGrpcTimeoutValue) {
    if (*unit == 'H') {
      amount = kMaxGrpcTimeoutValue;
    } else {
      amount /= 60;
      unit++;
    }
  }
  headers.setCopy(kGrpcTimeout, absl::StrCat(amount, absl::string_view(unit, 1)));
}

std::string percentEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(value.size());
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < ' ' || byte >= '~' || c == '%') {
      encoded.push_back('%');
      encoded.push_back(kHex[byte >> 4]);
      encoded.push_back(kHex[byte & 0xf]);
    } else {
      encoded.push_back(c);
    }
  }
  return encoded;
}

void toTrailersOnlyLocalReply(Http::ResponseHeaderMap& headers, uint32_t http_status,
                              std::string_view body, std::optional<Status> grpc_status) {
  headers.setStatus(200);
  headers.setCopy(Http::Headers::ContentType, kGrpcContentType);
  if (!headers.has(kGrpcStatus)) {
    const Status status = grpc_status.value_or(httpToGrpcStatus(http_status));
    headers.setCopy(kGrpcStatus, std::to_string(static_cast<uint32_t>(status)));
  }
  if (!body.empty()) {
    headers.setCopy(kGrpcMessage, percentEncode(body));
  }
  headers.remove(Http::Headers::ContentLength);
}

}  // namespace Proxy::Grpc
