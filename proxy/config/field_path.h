#pragma once

// Field paths and errors in the one-line form every config message uses, from the YAML loader
// to the semantic checks (validation.h):
//   static_resources.clusters[0].lb_policy: invalid value 'ROUND_ROBINN' for enum ...
//   virtual_hosts[0].routes[2].match.safe_regex: invalid regex '(': missing ): (

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace Proxy::Config {

// "path.field", or "field" at the top of a resource (empty `path`).
std::string join(const std::string& path, std::string_view field);
// "path.field[index]".
std::string at(const std::string& path, std::string_view field, int index);
// An InvalidArgument "path: message", just the message at the top of a resource.
absl::Status error(const std::string& path, std::string_view message);

}  // namespace Proxy::Config
