#include "proxy/router/config_impl.h"

#include "absl/strings/str_cat.h"

#include "proxy/config/validation.h"
#include "proxy/router/config_utility.h"

namespace Proxy::Router {

// --- VirtualHostImpl ----------------------------------------------------------------------

VirtualHostImpl::VirtualHostImpl(const ConfigImpl& config,
                                 const envoy::config::route::v3::VirtualHost& vhost)
    : config_(config),
      name_(vhost.name()),
      ssl_redirect_(*this),
      request_mutations_(vhost.request_headers_to_add(), vhost.request_headers_to_remove()),
      response_mutations_(vhost.response_headers_to_add(), vhost.response_headers_to_remove()) {
  switch (vhost.require_tls()) {
    case envoy::config::route::v3::VirtualHost::EXTERNAL_ONLY:
      require_tls_ = TlsRequirement::ExternalOnly;
      break;
    case envoy::config::route::v3::VirtualHost::ALL:
      require_tls_ = TlsRequirement::All;
      break;
    default:
      require_tls_ = TlsRequirement::None;
      break;
  }
  if (vhost.has_retry_policy()) {
    retry_policy_ = parseRetryPolicy(vhost.retry_policy());
  }
}

absl::Status VirtualHostImpl::addRoutes(const envoy::config::route::v3::VirtualHost& vhost,
                                        const std::string& path, size_t max_body_size) {
  for (int i = 0; i < vhost.routes_size(); i++) {
    const auto& route = vhost.routes(i);
    std::string body;
    if (route.has_direct_response() && route.direct_response().has_body()) {
      absl::StatusOr<std::string> read = ::Proxy::Config::readDataSource(
          route.direct_response().body(),
          absl::StrCat(path, ".routes[", i, "].direct_response.body"), max_body_size);
      if (!read.ok()) {
        return read.status();
      }
      body = std::move(*read);
    }
    routes_.push_back(std::make_unique<RouteEntryImpl>(*this, route, std::move(body)));
  }
  return absl::OkStatus();
}

const RouteEntry* VirtualHostImpl::route(const Http::RequestHeaderMap& headers,
                                         uint64_t random_value) const {
  if (require_tls_ != TlsRequirement::None && requestScheme(headers) != "https") {
    const bool internal = headers.getValue("x-envoy-internal") == "true";
    if (require_tls_ == TlsRequirement::All || !internal) {
      return &ssl_redirect_;
    }
  }
  const std::string_view path = headers.path();
  for (const auto& route : routes_) {
    if (route->matches(headers, path, random_value)) {
      return route->pick(headers, random_value);
    }
  }
  return nullptr;
}

// --- ConfigImpl ---------------------------------------------------------------------------

ConfigImpl::ConfigImpl(const envoy::config::route::v3::RouteConfiguration& config)
    : name_(config.name()),
      ignore_port_(config.ignore_port_in_host_matching()),
      most_specific_wins_(config.most_specific_header_mutations_wins()),
      request_mutations_(config.request_headers_to_add(), config.request_headers_to_remove()),
      response_mutations_(config.response_headers_to_add(), config.response_headers_to_remove()) {}

absl::StatusOr<std::shared_ptr<const ConfigImpl>> ConfigImpl::create(
    const envoy::config::route::v3::RouteConfiguration& config) {
  absl::Status status = ::Proxy::Config::validateRouteConfiguration(config);
  if (!status.ok()) {
    return status;
  }
  std::shared_ptr<ConfigImpl> impl(new ConfigImpl(config));
  const size_t max_body = config.has_max_direct_response_body_size_bytes()
                              ? config.max_direct_response_body_size_bytes().value()
                              : ::Proxy::Config::kDefaultMaxDirectResponseBodySize;
  for (int i = 0; i < config.virtual_hosts_size(); i++) {
    const auto& vhost_config = config.virtual_hosts(i);
    auto vhost = std::make_unique<VirtualHostImpl>(*impl, vhost_config);
    status = vhost->addRoutes(vhost_config, absl::StrCat("virtual_hosts[", i, "]"), max_body);
    if (!status.ok()) {
      return status;
    }
    // Validation rejected duplicate domains, so every insertion below is new.
    for (const std::string& domain_config : vhost_config.domains()) {
      const std::string domain = StringUtil::toLower(domain_config);
      if (domain == "*") {
        impl->default_ = vhost.get();
      } else if (domain.front() == '*') {
        impl->suffix_wildcards_[domain.size() - 1].emplace(domain.substr(1), vhost.get());
      } else if (domain.back() == '*') {
        impl->prefix_wildcards_[domain.size() - 1].emplace(domain.substr(0, domain.size() - 1),
                                                           vhost.get());
      } else {
        impl->exact_.emplace(domain, vhost.get());
      }
    }
    impl->virtual_hosts_.push_back(std::move(vhost));
  }
  return std::shared_ptr<const ConfigImpl>(std::move(impl));
}

const VirtualHostImpl* ConfigImpl::findWildcard(std::string_view host, const WildcardMap& map,
                                                bool suffix) const {
  // Longest wildcard first; the '*' must stand for at least one character.
  for (const auto& [length, domains] : map) {
    if (length >= host.size()) {
      continue;
    }
    const std::string_view key =
        suffix ? host.substr(host.size() - length) : host.substr(0, length);
    auto it = domains.find(asAbsl(key));
    if (it != domains.end()) {
      return it->second;
    }
  }
  return nullptr;
}

const VirtualHostImpl* ConfigImpl::virtualHostFor(std::string_view host) const {
  if (ignore_port_) {
    host = host.substr(0, portStart(host));
  }
  // Lower-case into a stack buffer: no allocation for any sane host name.
  char buffer[256];
  std::string large;
  std::string_view lowered;
  if (host.size() <= sizeof(buffer)) {
    for (size_t i = 0; i < host.size(); i++) {
      buffer[i] = StringUtil::toLower(host[i]);
    }
    lowered = std::string_view(buffer, host.size());
  } else {
    large = StringUtil::toLower(host);
    lowered = large;
  }
  // Envoy's order: exact, longest suffix wildcard, longest prefix wildcard, then "*".
  auto it = exact_.find(asAbsl(lowered));
  if (it != exact_.end()) {
    return it->second;
  }
  if (const VirtualHostImpl* v = findWildcard(lowered, suffix_wildcards_, /*suffix=*/true)) {
    return v;
  }
  if (const VirtualHostImpl* v = findWildcard(lowered, prefix_wildcards_, /*suffix=*/false)) {
    return v;
  }
  return default_;
}

const RouteEntry* ConfigImpl::route(const Http::RequestHeaderMap& headers,
                                    uint64_t random_value) const {
  const VirtualHostImpl* vhost = virtualHostFor(headers.host());
  return vhost == nullptr ? nullptr : vhost->route(headers, random_value);
}

}  // namespace Proxy::Router
