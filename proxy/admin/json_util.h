#pragma once

// JSON pieces shared by the admin pages: a protobuf message as Envoy prints it (proto field
// names, unknown Any types shown as {"@type": url}) and a UTC timestamp in the form Envoy's config
// dump uses.

#include <string>
#include <string_view>

#include "google/protobuf/message.h"
#include "proxy/common/time.h"

namespace Proxy::Admin {

std::string toJson(const google::protobuf::Message& message);
std::string timestamp(SystemTime t);

}  // namespace Proxy::Admin
