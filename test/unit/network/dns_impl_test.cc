// DnsResolverImpl against a real DNS server (dnsmasq, started by the test on 127.0.0.1 with a
// hosts file the test writes), on a real Dispatcher: the lookup families as Envoy has them, names
// without records, failures, TTLs, cancellation, IP literals answered inline and the channel
// rebuilt after the server refused.

#include "proxy/network/dns_impl.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "test/integration/dnsmasq_process.h"

namespace Proxy::Network {
namespace {

using namespace std::chrono_literals;
using Integration::DnsmasqProcess;

struct Result {
  DnsResolutionStatus status;
  std::vector<std::string> addresses;  // "127.0.0.2", "::2", in the answer's order
  std::vector<std::chrono::seconds> ttls;
};

class DnsResolverImplTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<DnsmasqProcess>> dns = DnsmasqProcess::start(
        {{"127.0.0.2", "both.test"}, {"::2", "both.test"}, {"127.0.0.3", "v4.test"}},
        /*local_ttl=*/7);
    ASSERT_TRUE(dns.ok()) << dns.status();
    dns_ = std::move(*dns);
    resolver_ = makeResolver();
  }

  std::unique_ptr<DnsResolverImpl> makeResolver() {
    DnsResolverOptions options;
    options.resolvers = {*Address::fromIpPort("127.0.0.1", dns_->port())};
    options.no_default_search_domain = true;
    return std::make_unique<DnsResolverImpl>(dispatcher_, options, store_);
  }

  // Resolve and run the loop until the answer (at most 10 s).
  Result resolve(const std::string& name, DnsLookupFamily family) {
    std::optional<Result> result;
    ActiveDnsQuery* query = resolver_->resolve(
        name, family, [&](DnsResolutionStatus status, std::list<DnsResponse>&& response) {
          result = Result{status, {}, {}};
          for (const DnsResponse& answer : response) {
            result->addresses.push_back(answer.address.ip());
            result->ttls.push_back(answer.ttl);
          }
          dispatcher_.exit();
        });
    if (query != nullptr) {
      Event::TimerPtr deadline = dispatcher_.createTimer([this] { dispatcher_.exit(); });
      deadline->enableTimer(10s);
      dispatcher_.run(Event::Dispatcher::RunType::RunUntilExit);
    }
    EXPECT_TRUE(result.has_value()) << "no answer for " << name;
    return result.value_or(Result{DnsResolutionStatus::Failure, {}, {}});
  }

  RealTimeSource time_source_;
  Event::DispatcherImpl dispatcher_{"test", time_source_};
  Stats::Store store_;
  std::unique_ptr<DnsmasqProcess> dns_;
  std::unique_ptr<DnsResolverImpl> resolver_;
};

TEST_F(DnsResolverImplTest, LookupFamiliesAsEnvoy) {
  // AUTO: AAAA first; A only when there is no AAAA.
  Result auto_both = resolve("both.test", DnsLookupFamily::Auto);
  EXPECT_EQ(auto_both.status, DnsResolutionStatus::Completed);
  EXPECT_EQ(auto_both.addresses, std::vector<std::string>{"::2"});
  EXPECT_EQ(resolve("v4.test", DnsLookupFamily::Auto).addresses,
            std::vector<std::string>{"127.0.0.3"});
  // V4_PREFERRED: the reverse.
  EXPECT_EQ(resolve("both.test", DnsLookupFamily::V4Preferred).addresses,
            std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(resolve("both.test", DnsLookupFamily::V4Only).addresses,
            std::vector<std::string>{"127.0.0.2"});
  // V6_ONLY of a name with only an A record: an answer without addresses.
  Result v6_of_v4 = resolve("v4.test", DnsLookupFamily::V6Only);
  EXPECT_EQ(v6_of_v4.status, DnsResolutionStatus::Completed);
  EXPECT_TRUE(v6_of_v4.addresses.empty());
  // ALL: both families.
  Result all = resolve("both.test", DnsLookupFamily::All);
  std::sort(all.addresses.begin(), all.addresses.end());
  EXPECT_EQ(all.addresses, (std::vector<std::string>{"127.0.0.2", "::2"}));
  // The answer's TTL (dnsmasq's --local-ttl).
  EXPECT_EQ(resolve("v4.test", DnsLookupFamily::V4Only).ttls,
            std::vector<std::chrono::seconds>{7s});
  EXPECT_GE(store_.counter("dns.cares.resolve_total").value(), 8u);
  EXPECT_EQ(store_.gauge("dns.cares.pending_resolutions").value(), 0);
}

TEST_F(DnsResolverImplTest, NoSuchNameIsAnEmptyAnswerARefusalIsAFailure) {
  Result missing = resolve("nosuch.test", DnsLookupFamily::V4Only);
  EXPECT_EQ(missing.status, DnsResolutionStatus::Completed);
  EXPECT_TRUE(missing.addresses.empty());
  EXPECT_EQ(store_.counter("dns.cares.not_found").value(), 1u);

  // dnsmasq refuses names outside .test (it has no upstream).
  EXPECT_EQ(resolve("elsewhere.example", DnsLookupFamily::V4Only).status,
            DnsResolutionStatus::Failure);
  EXPECT_EQ(store_.counter("dns.cares.get_addr_failure").value(), 1u);
}

TEST_F(DnsResolverImplTest, IpLiteralsAnswerInline) {
  bool called = false;
  ActiveDnsQuery* query =
      resolver_->resolve("127.0.0.9", DnsLookupFamily::Auto,
                         [&](DnsResolutionStatus status, std::list<DnsResponse>&& response) {
                           called = true;
                           EXPECT_EQ(status, DnsResolutionStatus::Completed);
                           ASSERT_EQ(response.size(), 1u);
                           EXPECT_EQ(response.front().address.ip(), "127.0.0.9");
                         });
  EXPECT_EQ(query, nullptr);
  EXPECT_TRUE(called);
}

TEST_F(DnsResolverImplTest, CancelledQueriesNeverCallBack) {
  bool cancelled_called = false;
  ActiveDnsQuery* query = resolver_->resolve(
      "both.test", DnsLookupFamily::V4Only,
      [&](DnsResolutionStatus, std::list<DnsResponse>&&) { cancelled_called = true; });
  ASSERT_NE(query, nullptr);
  query->cancel();
  // A later query on the same channel completes after the cancelled one was answered.
  EXPECT_EQ(resolve("v4.test", DnsLookupFamily::V4Only).addresses,
            std::vector<std::string>{"127.0.0.3"});
  EXPECT_FALSE(cancelled_called);

  // Destroying the resolver with a query in flight: no call back either.
  ActiveDnsQuery* pending = resolver_->resolve(
      "both.test", DnsLookupFamily::V4Only,
      [&](DnsResolutionStatus, std::list<DnsResponse>&&) { cancelled_called = true; });
  ASSERT_NE(pending, nullptr);
  resolver_.reset();
  EXPECT_FALSE(cancelled_called);
}

TEST_F(DnsResolverImplTest, AStoppedServerFailsAndTheChannelRecovers) {
  const uint32_t port = dns_->port();
  ASSERT_TRUE(dns_->stop().ok());
  EXPECT_EQ(resolve("v4.test", DnsLookupFamily::V4Only).status, DnsResolutionStatus::Failure);

  absl::StatusOr<std::unique_ptr<DnsmasqProcess>> dns =
      DnsmasqProcess::start({{"127.0.0.4", "v4.test"}}, /*local_ttl=*/0, port);
  ASSERT_TRUE(dns.ok()) << dns.status();
  dns_ = std::move(*dns);
  EXPECT_EQ(resolve("v4.test", DnsLookupFamily::V4Only).addresses,
            std::vector<std::string>{"127.0.0.4"});
  // The refused channel was rebuilt for the second query (Envoy's dirty channel).
  EXPECT_EQ(store_.counter("dns.cares.reinits").value(), 1u);
}

}  // namespace
}  // namespace Proxy::Network
