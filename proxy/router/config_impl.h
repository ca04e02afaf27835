#pragma once

// The route table built from a RouteConfiguration proto (router.h has the contract).
// Everything that can be decided at build time is: regexes are compiled, domains lower-cased
// and sorted into exact / suffix-wildcard / prefix-wildcard tables, header values formatted,
// direct response bodies read. Matching then only compares bytes.
//
// The routes themselves are in route_entry_impl.h, their match conditions in matchers.h and
// header mutations in header_mutations.h.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include "envoy/config/route/v3/route.pb.h"
#include "envoy/config/route/v3/route_components.pb.h"

#include "proxy/router/header_mutations.h"
#include "proxy/router/route_entry_impl.h"
#include "proxy/router/router.h"

namespace Proxy::Router {

class VirtualHostImpl : public VirtualHost {
 public:
  VirtualHostImpl(const ConfigImpl& config, const envoy::config::route::v3::VirtualHost& vhost);

  // Builds the routes (separate from the constructor: a route's direct response body may fail
  // to load).
  absl::Status addRoutes(const envoy::config::route::v3::VirtualHost& vhost,
                         const std::string& path, size_t max_body_size);

  const RouteEntry* route(const Http::RequestHeaderMap& headers, uint64_t random_value) const;

  const std::string& name() const override { return name_; }
  const ConfigImpl& config() const { return config_; }
  const HeaderMutations& requestMutations() const { return request_mutations_; }
  const HeaderMutations& responseMutations() const { return response_mutations_; }
  const RetryPolicy& retryPolicy() const { return retry_policy_; }

 private:
  enum class TlsRequirement { None, ExternalOnly, All };

  const ConfigImpl& config_;
  std::string name_;
  std::vector<std::unique_ptr<RouteEntryImpl>> routes_;
  TlsRequirement require_tls_ = TlsRequirement::None;
  SslRedirectEntry ssl_redirect_;
  RetryPolicy retry_policy_;  // retry_on == 0 when the virtual host has none
  HeaderMutations request_mutations_;
  HeaderMutations response_mutations_;
};

class ConfigImpl : public Config {
 public:
  // Validates `config` (Proxy::Config::validateRouteConfiguration: errors name the field, e.g.
  // "virtual_hosts[0].routes[2].match.safe_regex: invalid regex '(': missing ): (") and builds
  // the table. Main thread.
  static absl::StatusOr<std::shared_ptr<const ConfigImpl>> create(
      const envoy::config::route::v3::RouteConfiguration& config);

  // Config
  const RouteEntry* route(const Http::RequestHeaderMap& headers,
                          uint64_t random_value) const override;
  const std::string& name() const override { return name_; }

  // The virtual host `host` (an :authority value) selects, or nullptr. Exposed for tests.
  const VirtualHostImpl* virtualHostFor(std::string_view host) const;

  bool mostSpecificHeaderMutationsWins() const { return most_specific_wins_; }
  const HeaderMutations& requestMutations() const { return request_mutations_; }
  const HeaderMutations& responseMutations() const { return response_mutations_; }

 private:
  explicit ConfigImpl(const envoy::config::route::v3::RouteConfiguration& config);

  // Wildcard tables: suffix/prefix length, longest first, then the lower-cased text.
  using WildcardMap = std::map<size_t, absl::flat_hash_map<std::string, const VirtualHostImpl*>,
                               std::greater<size_t>>;

  const VirtualHostImpl* findWildcard(std::string_view host, const WildcardMap& map,
                                      bool suffix) const;

  std::string name_;
  std::vector<std::unique_ptr<VirtualHostImpl>> virtual_hosts_;
  absl::flat_hash_map<std::string, const VirtualHostImpl*> exact_;
  WildcardMap suffix_wildcards_;  // "*.example.com" -> ".example.com"
  WildcardMap prefix_wildcards_;  // "www.example.*" -> "www.example."
  const VirtualHostImpl* default_ = nullptr;
  bool ignore_port_ = false;
  bool most_specific_wins_ = false;
  HeaderMutations request_mutations_;
  HeaderMutations response_mutations_;
};

}  // namespace Proxy::Router
