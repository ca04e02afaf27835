#pragma once

// request/response_headers_to_add/remove of one level of the route table (route configuration,
// virtual host, route, weighted cluster), formatted at build time (Envoy's HeaderParser).
// Immutable once built: safe from any thread.

#include <string>
#include <vector>

#include "envoy/config/core/v3/base.pb.h"

#include "proxy/http/header_map.h"

namespace Proxy::Router {

// request/response_headers_to_add/remove of one level of the table.
class HeaderMutations {
 public:
  using HeaderValueOptions =
      google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>;
  using HeaderNames = google::protobuf::RepeatedPtrField<std::string>;

  HeaderMutations() = default;
  HeaderMutations(const HeaderValueOptions& to_add, const HeaderNames& to_remove);

  // Removes first, then adds in configuration order (Envoy's HeaderParser order).
  void apply(Http::HeaderMap& headers) const;
  bool empty() const { return to_add_.empty() && to_remove_.empty(); }

 private:
  using Action = envoy::config::core::v3::HeaderValueOption::HeaderAppendAction;
  struct Entry {
    std::string key;    // lower-case
    std::string value;  // formatted at build time
    Action action;
  };
  std::vector<Entry> to_add_;
  std::vector<std::string> to_remove_;  // lower-case
};

}  // namespace Proxy::Router
