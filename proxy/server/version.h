#pragma once

namespace Proxy::Server {

// Reported by --version and /server_info.
inline constexpr const char* kVersionString = "xds-proxy/0.1.0 (HTTP/1.1, static bootstrap)";

}  // namespace Proxy::Server
