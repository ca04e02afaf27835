#pragma once

// The admin HTTP server, on the main thread: /ready, /stats, /config_dump, /quitquitquit and
// the rest are registered by the server as handlers. Not on the request path; it reuses the
// data plane's HTTP/1 codec and network layer.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/header_map.h"
#include "proxy/network/address.h"
#include "proxy/network/connection_limit.h"
#include "proxy/stats/stats.h"

namespace Proxy::Admin {

struct Request {
  std::string_view method;
  std::string_view path;  // without the query string
  std::map<std::string, std::string> query;
  std::string_view body;
};

struct Response {
  uint32_t code = 200;
  std::string content_type = "text/plain; charset=UTF-8";
  std::string body;
};

// Runs on the main thread.
using Handler = std::function<void(const Request& request, Response& response)>;

class Admin {
 public:
  virtual ~Admin() = default;
  // `mutates_state` handlers answer 405 unless the method is POST (Envoy's rule).
  virtual void addHandler(std::string path, std::string help, bool mutates_state,
                          Handler handler) = 0;
  // The bound address (port 0 resolved).
  virtual const Network::Address& address() const = 0;
};

struct AdminOptions {
  // A request body longer than this is refused whole with 413 (never truncated): as soon as
  // a Content-Length announces it (with "Expect: 100-continue" before the client sends it),
  // or when a chunked body crosses it. The client is then read to its end, so that it sees the
  // answer rather than a reset, and the connection closes. Admin requests are small; an API
  // that takes documents (the control plane's PUT /v1/snapshot) raises it.
  uint64_t max_request_body_bytes = 4 * 1024 * 1024;
  // Named in the 413 message when set, e.g. "--max-snapshot-bytes":
  //   request body exceeds the limit of 4194304 bytes (--max-snapshot-bytes)
  std::string max_request_body_flag;
  // The overload manager's global downstream connection limit (null: not counted), and the
  // counter of connections it closed at accept (listener.admin.downstream_global_cx_overflow).
  Network::GlobalConnectionLimit* global_connection_limit = nullptr;
  Stats::Counter* global_overflow = nullptr;
};

// Binds and starts serving on `dispatcher` (main thread).
absl::StatusOr<std::unique_ptr<Admin>> createAdmin(Event::Dispatcher& dispatcher,
                                                   const Network::Address& address,
                                                   AdminOptions options = {});

}  // namespace Proxy::Admin
