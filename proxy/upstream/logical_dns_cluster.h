#pragma once

// LOGICAL_DNS's share of the DNS cluster (strict_dns_cluster.h has the rest): one logical host
// per cluster, whose address is the first address of the latest answer. New connections go to
// that address; when the answer changes, the host is replaced by a new one (Envoy 1.40's
// DnsClusterImpl::updateLogicalDnsHosts), so the workers' pools to the old address drain while
// the new address gets new pools. An unchanged answer (same first address, same list) keeps the
// host.

#include <list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "proxy/network/dns_impl.h"
#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream {

// What a LOGICAL_DNS cluster's load_assignment must be: one locality with one lb_endpoint
// (Envoy's words). Errors are relative to the cluster.
absl::Status validateLogicalDnsLoadAssignment(const envoy::config::cluster::v3::Cluster& config);

// The logical host of one answer. `current`: the host and the answer's addresses (as strings,
// in order) so far; replaced and true when the answer changed, untouched and false otherwise.
// `response` is not empty.
struct LogicalDnsHostState {
  HostConstSharedPtr host;
  std::vector<std::string> addresses;
};
bool updateLogicalDnsHost(const std::list<Network::DnsResponse>& response, uint32_t port,
                          const std::string& hostname, const std::string& cluster_name,
                          uint32_t weight, HealthStatus health, LogicalDnsHostState& current);

}  // namespace Proxy::Upstream
