#pragma once

// Access logs as Envoy's envoy.access_loggers.file / stdout / stderr, with Envoy's default
// format. A log is configured on the main thread; workers write lines with one write(2) each
// (O_APPEND), so there is no shared buffer and no lock between workers.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/accesslog/v3/accesslog.pb.h"
#include "proxy/http/header_map.h"
#include "proxy/stream_info/stream_info.h"

namespace Proxy::Filters {

class AccessLog {
 public:
  virtual ~AccessLog() = default;
  // Any thread. `request`/`response` may be null (no request parsed, no response sent).
  virtual void log(const Http::RequestHeaderMap* request, const Http::ResponseHeaderMap* response,
                   const StreamInfo::StreamInfo& info) = 0;
};

using AccessLogSharedPtr = std::shared_ptr<AccessLog>;

// From HttpConnectionManager.access_log / TcpProxy.access_log entries. Errors name the field
// relative to the entry ("typed_config: unsupported access logger type '...'").
absl::StatusOr<AccessLogSharedPtr> createAccessLog(const envoy::config::accesslog::v3::AccessLog&);

// Reopens every file access log at its configured path (SIGUSR1, as Envoy's access log
// manager does after logrotate renamed the files away): lines written after it returns go to
// a new file at the path. A log's descriptor keeps its number (the new file is dup3()'d onto
// it), so workers writing concurrently need no lock. Any thread; meant for the main thread.
// Returns how many files were reopened; a file that cannot be opened keeps its old one and is
// named in the error (after every other file was reopened).
absl::StatusOr<size_t> reopenAccessLogs();

// Envoy's default text format, expanded for one request (exposed for tests).
std::string formatDefault(const Http::RequestHeaderMap* request,
                          const Http::ResponseHeaderMap* response,
                          const StreamInfo::StreamInfo& info);

}  // namespace Proxy::Filters
