// ConnManagerUtility: what the connection manager does to request headers before routing, as
// Envoy 1.40 does it (the conformance corpus compares the two end to end; these pin the rules).

#include "proxy/filters/conn_manager_utility.h"

#include <string>

#include "gtest/gtest.h"

namespace Proxy::Filters {
namespace {

using ConnManagerUtility::mutateRequestHeaders;

std::string_view fixedUuid() {
  return "00000000-0000-4000-8000-000000000000";
}

Http::RequestHeaderMap headers(std::vector<std::pair<std::string, std::string>> entries) {
  Http::RequestHeaderMap map;
  for (const auto& [key, value] : entries) {
    map.addCopy(key, value);
  }
  return map;
}

RequestHeaderPolicy policy() {
  RequestHeaderPolicy p;
  p.local_address = "192.0.2.2";
  return p;
}

CidrRange range(const char* address, uint32_t length) {
  CidrRange r;
  EXPECT_TRUE(ConnManagerUtility::parseCidrRange(address, length, r));
  return r;
}

TEST(ConnManagerUtilityTest, EdgeAppendsTheLocalAddressForALoopbackPeer) {
  RequestHeaderPolicy edge = policy();
  edge.use_remote_address = true;

  // A loopback peer stands for this machine: its local address goes into x-forwarded-for.
  Http::RequestHeaderMap local = headers({});
  ConnManagerUtility::MutationResult result =
      mutateRequestHeaders(local, "127.0.0.1", /*secure=*/false, edge, &fixedUuid);
  EXPECT_EQ(local.getValue("x-forwarded-for"), "192.0.2.2");
  EXPECT_TRUE(result.edge);
  EXPECT_FALSE(result.internal);
  EXPECT_EQ(local.getValue("x-envoy-external-address"), "127.0.0.1");

  // Any other peer is appended as itself, after what the client sent.
  Http::RequestHeaderMap remote = headers({{"x-forwarded-for", "203.0.113.7"}});
  mutateRequestHeaders(remote, "198.51.100.4", /*secure=*/false, edge, &fixedUuid);
  EXPECT_EQ(remote.getValue("x-forwarded-for"), "203.0.113.7,198.51.100.4");

  // skip_xff_append leaves it alone.
  edge.skip_xff_append = true;
  Http::RequestHeaderMap skipped = headers({{"x-forwarded-for", "203.0.113.7"}});
  mutateRequestHeaders(skipped, "198.51.100.4", /*secure=*/false, edge, &fixedUuid);
  EXPECT_EQ(skipped.getValue("x-forwarded-for"), "203.0.113.7");
}

TEST(ConnManagerUtilityTest, XForwardedProtoIsTheConnectionsScheme) {
  // Over TLS the scheme is https: set when the client sent none, and at the edge always (the
  // client's own value is not trusted there), as Envoy's mutateRequestHeaders.
  Http::RequestHeaderMap none = headers({});
  mutateRequestHeaders(none, "127.0.0.1", /*secure=*/true, policy(), &fixedUuid);
  EXPECT_EQ(none.getValue("x-forwarded-proto"), "https");

  Http::RequestHeaderMap claimed = headers({{"x-forwarded-proto", "http"}});
  mutateRequestHeaders(claimed, "127.0.0.1", /*secure=*/true, policy(), &fixedUuid);
  EXPECT_EQ(claimed.getValue("x-forwarded-proto"), "http");  // behind a trusted proxy: kept

  RequestHeaderPolicy edge = policy();
  edge.use_remote_address = true;
  Http::RequestHeaderMap spoofed = headers({{"x-forwarded-proto", "https"}});
  mutateRequestHeaders(spoofed, "198.51.100.4", /*secure=*/false, edge, &fixedUuid);
  EXPECT_EQ(spoofed.getValue("x-forwarded-proto"), "http");
  Http::RequestHeaderMap tls = headers({{"x-forwarded-proto", "http"}});
  mutateRequestHeaders(tls, "198.51.100.4", /*secure=*/true, edge, &fixedUuid);
  EXPECT_EQ(tls.getValue("x-forwarded-proto"), "https");
}

TEST(ConnManagerUtilityTest, NothingIsInternalUnlessConfigured) {
  // Envoy 1.40: without internal_address_config even 10/8 and loopback are external, so their
  // x-envoy-* control headers are removed and x-envoy-internal is never set.
  Http::RequestHeaderMap request = headers({{"x-forwarded-for", "10.1.2.3"},
                                            {"x-envoy-retry-on", "5xx"},
                                            {"x-envoy-internal", "true"},
                                            {"x-envoy-original-path", "/kept-off-edge"}});
  ConnManagerUtility::MutationResult result =
      mutateRequestHeaders(request, "127.0.0.1", /*secure=*/false, policy(), &fixedUuid);
  EXPECT_FALSE(result.internal);
  EXPECT_FALSE(result.edge);
  EXPECT_FALSE(request.has("x-envoy-retry-on"));
  EXPECT_FALSE(request.has("x-envoy-internal"));
  // x-envoy-original-path is only removed at the edge.
  EXPECT_EQ(request.getValue("x-envoy-original-path"), "/kept-off-edge");
  EXPECT_FALSE(request.has("x-envoy-external-address"));
}

TEST(ConnManagerUtilityTest, ASingleInternalForwardedAddressIsInternal) {
  RequestHeaderPolicy p = policy();
  p.internal_ranges = {range("10.0.0.0", 8), range("fd00::", 8)};

  Http::RequestHeaderMap internal =
      headers({{"x-forwarded-for", " 10.1.2.3"}, {"x-envoy-retry-on", "5xx"}});
  EXPECT_TRUE(
      mutateRequestHeaders(internal, "127.0.0.1", /*secure=*/false, p, &fixedUuid).internal);
  EXPECT_EQ(internal.getValue("x-envoy-internal"), "true");
  EXPECT_EQ(internal.getValue("x-envoy-retry-on"), "5xx");  // the router consumes it later

  Http::RequestHeaderMap v6 = headers({{"x-forwarded-for", "fd12::1"}});
  EXPECT_TRUE(mutateRequestHeaders(v6, "127.0.0.1", /*secure=*/false, p, &fixedUuid).internal);

  // Two addresses: the request crossed another proxy, so it is not internal.
  Http::RequestHeaderMap two = headers({{"x-forwarded-for", "10.9.9.9,10.1.2.3"}});
  EXPECT_FALSE(mutateRequestHeaders(two, "127.0.0.1", /*secure=*/false, p, &fixedUuid).internal);
  Http::RequestHeaderMap outside = headers({{"x-forwarded-for", "11.1.2.3"}});
  EXPECT_FALSE(
      mutateRequestHeaders(outside, "127.0.0.1", /*secure=*/false, p, &fixedUuid).internal);
}

TEST(ConnManagerUtilityTest, RequestIdKeptOrGenerated) {
  Http::RequestHeaderMap kept = headers({{"x-request-id", "mine"}});
  mutateRequestHeaders(kept, "127.0.0.1", /*secure=*/false, policy(), &fixedUuid);
  EXPECT_EQ(kept.getValue("x-request-id"), "mine");

  RequestHeaderPolicy edge = policy();
  edge.use_remote_address = true;
  Http::RequestHeaderMap replaced = headers({{"x-request-id", "mine"}});
  mutateRequestHeaders(replaced, "127.0.0.1", /*secure=*/false, edge, &fixedUuid);
  EXPECT_EQ(replaced.getValue("x-request-id"), fixedUuid());

  edge.preserve_external_request_id = true;
  Http::RequestHeaderMap preserved = headers({{"x-request-id", "mine"}});
  mutateRequestHeaders(preserved, "127.0.0.1", /*secure=*/false, edge, &fixedUuid);
  EXPECT_EQ(preserved.getValue("x-request-id"), "mine");
}

TEST(ConnManagerUtilityTest, ConnectionNominationsAndTe) {
  // Nominated headers are removed; connection options stay for the codec.
  Http::RequestHeaderMap request = headers(
      {{"connection", "close, X-A, te"}, {"x-a", "1"}, {"x-b", "2"}, {"te", "gzip, Trailers"}});
  EXPECT_TRUE(ConnManagerUtility::sanitizeConnectionHeader(request));
  EXPECT_FALSE(request.has("x-a"));
  EXPECT_EQ(request.getValue("x-b"), "2");
  EXPECT_EQ(request.getValue("te"), "trailers");
  EXPECT_EQ(request.getValue("connection"), "close,te");

  // Hostile nominations.
  for (const char* value : {"x-forwarded-for", "X-Forwarded-Proto", "x-forwarded-host", ":path",
                            "a,b,c,d,e,f,g,h,i,j"}) {
    Http::RequestHeaderMap hostile = headers({{"connection", value}});
    EXPECT_FALSE(ConnManagerUtility::sanitizeConnectionHeader(hostile)) << value;
  }

  // TE outside Connection: only an exact "trailers" token survives.
  for (const auto& [te, expected] :
       std::vector<std::pair<std::string, std::string>>{{"trailers", "trailers"},
                                                        {"gzip, trailers", "trailers"},
                                                        {"Trailers", ""},
                                                        {"deflate", ""}}) {
    Http::RequestHeaderMap map = headers({{"te", te}});
    ConnManagerUtility::sanitizeTeHeader(map);
    EXPECT_EQ(map.getValue("te"), expected) << te;
  }
}

TEST(ConnManagerUtilityTest, StripPortFromHost) {
  auto strip = [](std::string host, std::optional<uint32_t> port) {
    Http::RequestHeaderMap map = headers({{":authority", host}});
    ConnManagerUtility::stripPortFromHost(map, port);
    return std::string(map.host());
  };
  EXPECT_EQ(strip("a.example:8080", 8080), "a.example");
  EXPECT_EQ(strip("a.example:9999", 8080), "a.example:9999");
  EXPECT_EQ(strip("a.example:9999", std::nullopt), "a.example");
  EXPECT_EQ(strip("[::1]", std::nullopt), "[::1]");
  EXPECT_EQ(strip("[::1]:80", std::nullopt), "[::1]");
}

TEST(ConnManagerUtilityTest, CidrRanges) {
  CidrRange r;
  EXPECT_FALSE(ConnManagerUtility::parseCidrRange("10.0.0.0", 33, r));
  EXPECT_FALSE(ConnManagerUtility::parseCidrRange("not-an-ip", 8, r));
  EXPECT_TRUE(ConnManagerUtility::isInternalAddress("172.16.5.4", {range("172.16.0.0", 12)}));
  EXPECT_FALSE(ConnManagerUtility::isInternalAddress("172.32.0.1", {range("172.16.0.0", 12)}));
  EXPECT_TRUE(ConnManagerUtility::isLoopbackAddress("127.8.8.8"));
  EXPECT_TRUE(ConnManagerUtility::isLoopbackAddress("::1"));
  EXPECT_FALSE(ConnManagerUtility::isLoopbackAddress("10.0.0.1"));
}

}  // namespace
}  // namespace Proxy::Filters
