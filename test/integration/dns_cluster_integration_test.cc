// DNS clusters end to end: the real proxy binary (and, to compare, the real Envoy 1.40) resolving
// its STRICT_DNS / LOGICAL_DNS clusters through a real DNS server the test starts (dnsmasq on
// 127.0.0.1:<free port>, answering from a hosts file the test rewrites), routing to
// FakeUpstreams that share one port on 127.0.0.2, .3 and .4, so that each DNS answer is a set of
// upstreams. Each test narrates what the answers are, what the client got, what the upstreams
// saw, /clusters and the stats, with Envoy's names.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "test/integration/dnsmasq_process.h"
#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

// The c-ares resolver of a cluster, pointed at the test's dnsmasq.
std::string caresResolver(uint32_t dns_port) {
  return absl::StrCat(
      "typed_dns_resolver_config: {name: envoy.network.dns_resolver.cares, typed_config: "
      "{\"@type\": type.googleapis.com/"
      "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig, ",
      "resolvers: [{socket_address: {address: 127.0.0.1, port_value: ", dns_port,
      "}}], dns_resolver_options: {no_default_search_domain: true}}}");
}

// A DNS cluster of one name; `fields` adds refresh rates and the like.
std::string dnsCluster(const std::string& name, const std::string& type,
                       const std::string& dns_name, uint32_t port, uint32_t dns_port,
                       const std::string& fields) {
  return absl::StrCat("{name: ", name, ", type: ", type,
                      ", connect_timeout: 1s, dns_lookup_family: V4_ONLY, ",
                      caresResolver(dns_port), fields.empty() ? "" : ", ", fields,
                      ", load_assignment: {cluster_name: ", name,
                      ", endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: ",
                      "{address: ", dns_name, ", port_value: ", port, "}}}}]}]}}");
}

absl::StatusOr<std::string> envoyBinary() {
  if (const char* env = std::getenv("ENVOY_BINARY"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  const char* home = std::getenv("HOME");
  const std::string path_file =
      absl::StrCat(home != nullptr ? home : "", "/.cache/xds-proxy-peers/envoy-path");
  std::string path(absl::StripAsciiWhitespace(readFile(path_file)));
  if (path.empty()) {
    return absl::NotFoundError(
        absl::StrCat("Envoy is not installed (no '", path_file, "'): run deploy/install-peers.sh"));
  }
  return path;
}

class DnsClusterIntegrationTest : public ProxyIntegrationTest {
 protected:
  void SetUp() override {
    // Three upstreams on one port: 127.0.0.2:P, 127.0.0.3:P, 127.0.0.4:P.
    for (const char* address : {"127.0.0.2", "127.0.0.3", "127.0.0.4"}) {
      FakeUpstreamOptions options;
      options.address = address;
      options.name = absl::StrCat("upstream-", std::string(address).substr(8));
      absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options, port_on_all_);
      ASSERT_TRUE(upstream.ok()) << upstream.status();
      port_on_all_ = (*upstream)->port();
      upstreams_[address] = std::move(*upstream);
    }
    // backend.test has two addresses to start with.
    absl::StatusOr<std::unique_ptr<DnsmasqProcess>> dns =
        DnsmasqProcess::start({{"127.0.0.2", "backend.test"}, {"127.0.0.3", "backend.test"}});
    ASSERT_TRUE(dns.ok()) << dns.status();
    dns_ = std::move(*dns);
  }

  FakeUpstream& upstream(const std::string& address) { return *upstreams_.at(address); }

  std::string cluster(const std::string& type, const std::string& fields,
                      const std::string& dns_name = "backend.test") {
    return dnsCluster("backend", type, dns_name, port_on_all_, dns_->port(), fields);
  }

  BootstrapSpec routeAllTo(const std::vector<std::string>& clusters) {
    BootstrapSpec spec;
    spec.virtual_hosts = {
        R"({name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: backend}}]})"};
    spec.clusters = clusters;
    spec.hcm_fields = {kStdoutAccessLog};
    return spec;
  }

  // The hosts /clusters lists for `cluster` ("127.0.0.2:P", ...), of `process`.
  static std::set<std::string> hosts(ProxyProcess& process, const std::string& cluster) {
    std::set<std::string> out;
    absl::StatusOr<HttpResponse> clusters = process.adminGet("/clusters");
    if (!clusters.ok()) {
      return out;
    }
    for (absl::string_view line : absl::StrSplit(clusters->body, '\n')) {
      std::vector<std::string> parts = absl::StrSplit(line, "::");
      if (parts.size() == 4 && parts[0] == cluster && parts[2] == "cx_active") {
        out.insert(parts[1]);
      }
    }
    return out;
  }

  std::string hostOn(const std::string& address) const {
    return absl::StrCat(address, ":", port_on_all_);
  }

  testing::AssertionResult waitForHosts(ProxyProcess& process, std::set<std::string> expected) {
    return waitUntil([&] { return hosts(process, "backend") == expected; }, 10s,
                     "the DNS answer in /clusters");
  }

  // `count` requests on one keep-alive connection (one worker, its pools): who answered.
  std::map<std::string, int> requestsOn(HttpClient& client, int count) {
    std::map<std::string, int> seen;
    for (int i = 0; i < count; i++) {
      HttpRequest request;
      request.path = "/";
      request.host = "example.com";
      absl::StatusOr<HttpResponse> response = client.request(request);
      EXPECT_TRUE(response.ok()) << response.status();
      if (response.ok()) {
        seen[response->status == 200 ? response->header("x-upstream")
                                     : absl::StrCat(response->status)]++;
      }
    }
    return seen;
  }

  std::map<std::string, int> requests(int count) {
    std::map<std::string, int> seen;
    for (int i = 0; i < count; i++) {
      absl::StatusOr<HttpResponse> response = get("/");
      EXPECT_TRUE(response.ok()) << response.status();
      if (response.ok()) {
        seen[response->status == 200 ? response->header("x-upstream")
                                     : absl::StrCat(response->status)]++;
      }
    }
    return seen;
  }

  uint32_t port_on_all_ = 0;
  std::map<std::string, FakeUpstreamPtr> upstreams_;
  std::unique_ptr<DnsmasqProcess> dns_;
};

TEST_F(DnsClusterIntegrationTest, StrictDnsRoutesToEveryAddressAndFollowsTheAnswer) {
  // Two workers; the answer is re-asked every 100 ms.
  startProxy(routeAllTo({cluster("STRICT_DNS", "dns_refresh_rate: 0.1s")}), /*concurrency=*/2);

  // The proxy was ready only once the first answer came: both addresses are hosts, under the
  // name they were resolved from.
  EXPECT_EQ(hosts(*proxy_, "backend"),
            (std::set<std::string>{hostOn("127.0.0.2"), hostOn("127.0.0.3")}));
  absl::StatusOr<HttpResponse> clusters = proxy_->adminGet("/clusters");
  ASSERT_TRUE(clusters.ok());
  EXPECT_NE(clusters->body.find(
                absl::StrCat("backend::", hostOn("127.0.0.2"), "::hostname::backend.test")),
            std::string::npos)
      << clusters->body;

  // Round robin over both, on one keep-alive connection (one worker's pools).
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  std::map<std::string, int> seen = requestsOn(**client, 10);
  EXPECT_EQ(seen["upstream-2"], 5);
  EXPECT_EQ(seen["upstream-3"], 5);
  const uint64_t upstream2_connections = upstream("127.0.0.2").connectionsAccepted();
  EXPECT_EQ(upstream("127.0.0.3").activeConnections(), 1);

  // The answer changes: .3 leaves, .4 comes.
  ASSERT_TRUE(dns_->setHosts({{"127.0.0.2", "backend.test"}, {"127.0.0.4", "backend.test"}}).ok());
  ASSERT_TRUE(waitForHosts(*proxy_, {hostOn("127.0.0.2"), hostOn("127.0.0.4")}));

  // The removed host's pool drained: its idle connection closed. The new one serves; the one
  // that stayed kept its pool (no new connection to it).
  EXPECT_TRUE(waitUntil([&] { return upstream("127.0.0.3").activeConnections() == 0; }, 10s,
                        "the removed host's connection to close"));
  seen = requestsOn(**client, 10);
  EXPECT_EQ(seen["upstream-2"], 5);
  EXPECT_EQ(seen["upstream-4"], 5);
  EXPECT_EQ(upstream("127.0.0.2").connectionsAccepted(), upstream2_connections);

  // Every worker has the new hosts: new connections (either worker) never reach .3.
  const uint64_t upstream3_requests = upstream("127.0.0.3").requestsReceived();
  seen = requests(20);
  EXPECT_EQ(seen["upstream-2"] + seen["upstream-4"], 20);
  EXPECT_EQ(upstream("127.0.0.3").requestsReceived(), upstream3_requests);

  // Envoy's stats: every resolution is an attempt; answers that changed nothing are
  // update_no_rebuild (the next refresh brings one).
  ASSERT_TRUE(proxy_->waitForCounterGe("cluster.backend.update_no_rebuild", 1));
  absl::StatusOr<std::map<std::string, int64_t>> stats = proxy_->stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ((*stats)["cluster.backend.membership_total"], 2);
  EXPECT_EQ((*stats)["cluster.backend.membership_healthy"], 2);
  EXPECT_EQ((*stats)["cluster.backend.membership_change"], 2);  // the first answer, the change
  EXPECT_GE((*stats)["cluster.backend.update_attempt"], 3);
  EXPECT_GE((*stats)["cluster.backend.update_success"], 3);
  EXPECT_EQ((*stats)["cluster.backend.update_failure"], 0);
  EXPECT_GE((*stats)["dns.cares.resolve_total"], 2);
  EXPECT_EQ((*stats)["dns.cares.get_addr_failure"], 0);
}

TEST_F(DnsClusterIntegrationTest, AFailedResolutionKeepsTheLastHostsAndAnEmptyAnswerRemovesThem) {
  startProxy(routeAllTo({cluster(
      "STRICT_DNS",
      "dns_refresh_rate: 0.1s, dns_failure_refresh_rate: {base_interval: 0.05s, max_interval: "
      "0.1s}")}));
  std::map<std::string, int> seen = requests(4);
  EXPECT_EQ(seen["upstream-2"], 2);
  EXPECT_EQ(seen["upstream-3"], 2);

  // The DNS server goes away: every resolution fails (the kernel refuses the datagrams). The
  // hosts stay and serve.
  const uint32_t dns_port = dns_->port();
  ASSERT_TRUE(dns_->stop().ok());
  ASSERT_TRUE(proxy_->waitForCounterGe("cluster.backend.update_failure", 2));
  seen = requests(4);
  EXPECT_EQ(seen["upstream-2"], 2);
  EXPECT_EQ(seen["upstream-3"], 2);
  EXPECT_EQ(hosts(*proxy_, "backend"),
            (std::set<std::string>{hostOn("127.0.0.2"), hostOn("127.0.0.3")}));
  absl::StatusOr<int64_t> failures = proxy_->counter("dns.cares.get_addr_failure");
  ASSERT_TRUE(failures.ok());
  EXPECT_GE(*failures, 1);

  // It comes back (same port) with a new answer: the next resolution takes it.
  absl::StatusOr<std::unique_ptr<DnsmasqProcess>> dns =
      DnsmasqProcess::start({{"127.0.0.4", "backend.test"}}, /*local_ttl=*/0, dns_port);
  ASSERT_TRUE(dns.ok()) << dns.status();
  dns_ = std::move(*dns);
  ASSERT_TRUE(waitForHosts(*proxy_, {hostOn("127.0.0.4")}));
  seen = requests(2);
  EXPECT_EQ(seen["upstream-4"], 2);

  // The name leaves the server: NXDOMAIN is an answer with no addresses (Envoy's rule for
  // STRICT_DNS), not a failure: no hosts, 503 UH.
  ASSERT_TRUE(dns_->setHosts({{"127.0.0.2", "other.test"}}).ok());
  ASSERT_TRUE(waitForHosts(*proxy_, {}));
  seen = requests(1);
  EXPECT_EQ(seen["503"], 1);
  EXPECT_TRUE(waitForAccessLog(" 503 UH "));
  absl::StatusOr<std::map<std::string, int64_t>> stats = proxy_->stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ((*stats)["cluster.backend.membership_total"], 0);
  EXPECT_GE((*stats)["dns.cares.not_found"], 1);
}

TEST_F(DnsClusterIntegrationTest, RespectDnsTtlRefreshesAtTheAnswersTtl) {
  // Answers live 1 s; the configured refresh rate (60 s) would never refresh within the test.
  absl::StatusOr<std::unique_ptr<DnsmasqProcess>> dns =
      DnsmasqProcess::start({{"127.0.0.2", "backend.test"}}, /*local_ttl=*/1);
  ASSERT_TRUE(dns.ok()) << dns.status();
  dns_ = std::move(*dns);
  startProxy(routeAllTo({cluster("STRICT_DNS", "dns_refresh_rate: 60s, respect_dns_ttl: true")}));
  EXPECT_EQ(hosts(*proxy_, "backend"), (std::set<std::string>{hostOn("127.0.0.2")}));

  ASSERT_TRUE(dns_->setHosts({{"127.0.0.3", "backend.test"}}).ok());
  ASSERT_TRUE(waitForHosts(*proxy_, {hostOn("127.0.0.3")}));
  std::map<std::string, int> seen = requests(2);
  EXPECT_EQ(seen["upstream-3"], 2);
}

TEST_F(DnsClusterIntegrationTest, LogicalDnsUsesTheFirstAddressAndMovesWithTheAnswer) {
  ASSERT_TRUE(dns_->setHosts({{"127.0.0.2", "backend.test"}}).ok());
  startProxy(routeAllTo({cluster("LOGICAL_DNS", "dns_refresh_rate: 0.1s")}));

  // One logical host.
  EXPECT_EQ(hosts(*proxy_, "backend"), (std::set<std::string>{hostOn("127.0.0.2")}));
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port_);
  ASSERT_TRUE(client.ok()) << client.status();
  std::map<std::string, int> seen = requestsOn(**client, 3);
  EXPECT_EQ(seen["upstream-2"], 3);
  EXPECT_EQ(upstream("127.0.0.2").activeConnections(), 1);
  // Unchanged answers rebuild nothing.
  ASSERT_TRUE(proxy_->waitForCounterGe("cluster.backend.update_no_rebuild", 1));

  // The name moves: the next connections go to the new address, and the connection to the old
  // one drains.
  ASSERT_TRUE(dns_->setHosts({{"127.0.0.3", "backend.test"}}).ok());
  ASSERT_TRUE(waitForHosts(*proxy_, {hostOn("127.0.0.3")}));
  seen = requestsOn(**client, 3);
  EXPECT_EQ(seen["upstream-3"], 3);
  EXPECT_TRUE(waitUntil([&] { return upstream("127.0.0.2").activeConnections() == 0; }, 10s,
                        "the old address's connection to close"));

  // An answer with no address is a failure for LOGICAL_DNS: the host stays.
  ASSERT_TRUE(dns_->setHosts({}).ok());
  ASSERT_TRUE(proxy_->waitForCounterGe("cluster.backend.update_failure", 1));
  EXPECT_EQ(hosts(*proxy_, "backend"), (std::set<std::string>{hostOn("127.0.0.3")}));
  seen = requests(1);
  EXPECT_EQ(seen["upstream-3"], 1);
}

TEST_F(DnsClusterIntegrationTest, ANameThatDoesNotResolve) {
  // Neither cluster keeps the proxy from starting: the first answer (none) initializes them.
  BootstrapSpec spec = routeAllTo({cluster("STRICT_DNS", "dns_refresh_rate: 0.1s", "nosuch.test"),
                                   dnsCluster("logical", "LOGICAL_DNS", "nosuch.test", port_on_all_,
                                              dns_->port(), "dns_refresh_rate: 0.1s")});
  spec.virtual_hosts = {R"({name: all, domains: ["*"], routes: [
      {match: {prefix: "/logical"}, route: {cluster: logical}},
      {match: {prefix: "/"}, route: {cluster: backend}}]})"};
  startProxy(spec);

  std::map<std::string, int> seen = requests(1);
  EXPECT_EQ(seen["503"], 1);
  absl::StatusOr<HttpResponse> response = get("/logical");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503u);
  absl::StatusOr<std::map<std::string, int64_t>> stats = proxy_->stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  // STRICT_DNS: a successful answer with no hosts. LOGICAL_DNS: a failure.
  EXPECT_GE((*stats)["cluster.backend.update_success"], 1);
  EXPECT_EQ((*stats)["cluster.backend.update_failure"], 0);
  EXPECT_EQ((*stats)["cluster.backend.membership_total"], 0);
  EXPECT_GE((*stats)["cluster.logical.update_failure"], 1);
  EXPECT_EQ((*stats)["cluster.logical.update_success"], 0);
  EXPECT_EQ((*stats)["cluster_manager.warming_clusters"], 0);
  EXPECT_GE((*stats)["dns.cares.not_found"], 2);
}

TEST_F(DnsClusterIntegrationTest, EnvoyChoosesTheSameHostsAndCountsTheSame) {
  // The same bootstrap and DNS server for our proxy and Envoy 1.40.
  absl::StatusOr<std::string> envoy = envoyBinary();
  ASSERT_TRUE(envoy.ok()) << envoy.status();
  const std::string yaml =
      bootstrapYaml(routeAllTo({cluster("STRICT_DNS", "dns_refresh_rate: 0.1s"),
                                dnsCluster("missing", "STRICT_DNS", "nosuch.test", port_on_all_,
                                           dns_->port(), "dns_refresh_rate: 0.1s")}));
  std::vector<std::unique_ptr<ProxyProcess>> processes;
  for (const std::string& binary : {std::string(), *envoy}) {
    ProxyOptions options;
    options.binary = binary;
    options.bootstrap_yaml = yaml;
    processes.push_back(std::make_unique<ProxyProcess>(std::move(options)));
    ASSERT_TRUE(processes.back()->start());
  }
  ProxyProcess& ours = *processes[0];
  ProxyProcess& theirs = *processes[1];

  // Both hosts, both proxies; the name that does not exist gives no host to either.
  const std::set<std::string> both = {hostOn("127.0.0.2"), hostOn("127.0.0.3")};
  EXPECT_EQ(hosts(ours, "backend"), both);
  EXPECT_EQ(hosts(theirs, "backend"), both);
  EXPECT_EQ(hosts(ours, "missing"), std::set<std::string>{});
  EXPECT_EQ(hosts(theirs, "missing"), std::set<std::string>{});

  // A new answer reaches both.
  ASSERT_TRUE(dns_->setHosts({{"127.0.0.4", "backend.test"}}).ok());
  ASSERT_TRUE(waitForHosts(ours, {hostOn("127.0.0.4")}));
  ASSERT_TRUE(waitForHosts(theirs, {hostOn("127.0.0.4")}));

  // A name that does not exist is an answer, not a failure (Envoy's c-ares resolver: ENOTFOUND
  // completes with no address). Compared while the server still answers: once it is gone,
  // how many of "missing"'s 0.1 s refreshes have timed out depends on when each proxy looks.
  {
    absl::StatusOr<std::map<std::string, int64_t>> our_stats = ours.stats();
    absl::StatusOr<std::map<std::string, int64_t>> envoy_stats = theirs.stats();
    ASSERT_TRUE(our_stats.ok() && envoy_stats.ok());
    EXPECT_EQ((*our_stats)["cluster.missing.update_failure"], 0);
    EXPECT_EQ((*envoy_stats)["cluster.missing.update_failure"], 0);
  }

  // The server goes: both count failures and keep the host.
  ASSERT_TRUE(dns_->stop().ok());
  for (ProxyProcess* process : {&ours, &theirs}) {
    ASSERT_TRUE(process->waitForCounterGe("cluster.backend.update_failure", 1));
    EXPECT_EQ(hosts(*process, "backend"), std::set<std::string>{hostOn("127.0.0.4")});
  }

  // The same stats exist, with values that agree where timing does not enter.
  absl::StatusOr<std::map<std::string, int64_t>> our_stats = ours.stats();
  absl::StatusOr<std::map<std::string, int64_t>> envoy_stats = theirs.stats();
  ASSERT_TRUE(our_stats.ok() && envoy_stats.ok());
  for (const char* name :
       {"cluster.backend.update_attempt", "cluster.backend.update_success",
        "cluster.backend.update_failure", "cluster.backend.update_no_rebuild",
        "cluster.backend.membership_total", "cluster.backend.membership_change",
        "cluster.missing.update_success", "cluster.missing.membership_total",
        "dns.cares.resolve_total", "dns.cares.not_found", "dns.cares.get_addr_failure",
        "dns.cares.pending_resolutions", "dns.cares.reinits"}) {
    EXPECT_TRUE(our_stats->count(name) == 1) << "ours lacks " << name;
    EXPECT_TRUE(envoy_stats->count(name) == 1) << "Envoy lacks " << name;
  }
  EXPECT_EQ((*our_stats)["cluster.backend.membership_total"],
            (*envoy_stats)["cluster.backend.membership_total"]);
  EXPECT_EQ((*our_stats)["cluster.missing.membership_total"],
            (*envoy_stats)["cluster.missing.membership_total"]);
  // The first answer and the new one changed the membership; the failures did not.
  EXPECT_EQ((*our_stats)["cluster.backend.membership_change"], 2);
  EXPECT_EQ((*envoy_stats)["cluster.backend.membership_change"], 2);
  EXPECT_EQ((*our_stats)["cluster.missing.membership_change"],
            (*envoy_stats)["cluster.missing.membership_change"]);
}

}  // namespace
}  // namespace Proxy::Integration
