// proxy/grpc/common.cc against Envoy 1.40's Grpc::Common / Grpc::Utility behaviour (the
// conformance cases in test/conformance/cases/grpc.yaml check the same through the real Envoy).

#include "proxy/grpc/common.h"

#include "gtest/gtest.h"

namespace Proxy::Grpc {
namespace {

using std::chrono::milliseconds;

Http::RequestHeaderMap request(std::string_view content_type, std::string_view timeout = {}) {
  Http::RequestHeaderMap headers;
  headers.addCopy(Http::Headers::Method, "POST");
  headers.addCopy(Http::Headers::Path, "/pkg.Service/Method");
  if (!content_type.empty()) {
    headers.addCopy(Http::Headers::ContentType, content_type);
  }
  if (!timeout.empty()) {
    headers.addCopy("grpc-timeout", timeout);
  }
  return headers;
}

TEST(GrpcCommonTest, GrpcRequestsAreApplicationGrpcOrAPlusSuffix) {
  EXPECT_TRUE(isGrpcRequestHeaders(request("application/grpc")));
  EXPECT_TRUE(isGrpcRequestHeaders(request("application/grpc+proto")));
  EXPECT_FALSE(isGrpcRequestHeaders(request("application/grpc-web")));
  EXPECT_FALSE(isGrpcRequestHeaders(request("application/grpc;charset=utf-8")));
  EXPECT_FALSE(isGrpcRequestHeaders(request("application/grpcx")));
  EXPECT_FALSE(isGrpcRequestHeaders(request("")));
  Http::RequestHeaderMap no_path;
  no_path.addCopy(Http::Headers::ContentType, "application/grpc");
  EXPECT_FALSE(isGrpcRequestHeaders(no_path));
}

TEST(GrpcCommonTest, HttpStatusMapsAsGrpcsTable) {
  EXPECT_EQ(httpToGrpcStatus(400), Status::Internal);
  EXPECT_EQ(httpToGrpcStatus(401), Status::Unauthenticated);
  EXPECT_EQ(httpToGrpcStatus(403), Status::PermissionDenied);
  EXPECT_EQ(httpToGrpcStatus(404), Status::Unimplemented);
  for (uint32_t code : {429u, 502u, 503u, 504u}) {
    EXPECT_EQ(httpToGrpcStatus(code), Status::Unavailable) << code;
  }
  for (uint32_t code : {200u, 408u, 418u, 500u, 507u}) {
    EXPECT_EQ(httpToGrpcStatus(code), Status::Unknown) << code;
  }
}

TEST(GrpcCommonTest, GrpcTimeoutIsParsedInEveryUnitAndRoundedUp) {
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "2H")), milliseconds(7200000));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "3M")), milliseconds(180000));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "10S")), milliseconds(10000));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "250m")), milliseconds(250));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "1500u")), milliseconds(2));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "1000u")), milliseconds(1));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "1n")), milliseconds(1));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "0m")), milliseconds(0));
  EXPECT_EQ(getGrpcTimeout(request("application/grpc", "99999999S")), milliseconds(99999999000));
  // Not grpc-timeout's grammar: ignored.
  for (std::string_view bad : {"100000000S", "10", "S", "10s", "-1S", "1.5S", "abcS"}) {
    EXPECT_EQ(getGrpcTimeout(request("application/grpc", bad)), std::nullopt) << bad;
  }
  EXPECT_EQ(getGrpcTimeout(request("application/grpc")), std::nullopt);
}

TEST(GrpcCommonTest, GrpcTimeoutIsWrittenInTheFinestUnitThatFitsEightDigits) {
  Http::RequestHeaderMap headers = request("application/grpc", "1S");
  toGrpcTimeout(milliseconds(200), headers);
  EXPECT_EQ(headers.getValue("grpc-timeout"), "200m");
  toGrpcTimeout(milliseconds(99999999), headers);
  EXPECT_EQ(headers.getValue("grpc-timeout"), "99999999m");
  toGrpcTimeout(milliseconds(100000000), headers);
  EXPECT_EQ(headers.getValue("grpc-timeout"), "100000S");
  toGrpcTimeout(milliseconds(int64_t{99999999} * 1000 * 60), headers);
  EXPECT_EQ(headers.getValue("grpc-timeout"), "99999999M");
  toGrpcTimeout(milliseconds::max(), headers);
  EXPECT_EQ(headers.getValue("grpc-timeout"), "99999999H");
  size_t count = 0;
  for (const auto& h : headers) {
    count += h.key == "grpc-timeout";
  }
  EXPECT_EQ(count, 1u);
}

TEST(GrpcCommonTest, GrpcMessageIsPercentEncodedAsEnvoyDoes) {
  EXPECT_EQ(percentEncode("no healthy upstream"), "no healthy upstream");
  EXPECT_EQ(percentEncode("100% forbidden ~ \xc3\xa9t\xc3\xa9\n"),
            "100%25 forbidden %7E %C3%A9t%C3%A9%0A");
  EXPECT_EQ(percentEncode(std::string_view("a\0b\x7f", 4)), "a%00b%7F");
}

TEST(GrpcCommonTest, LocalReplyBecomesTrailersOnly) {
  Http::ResponseHeaderMap headers;
  headers.setStatus(503);
  headers.addCopy(Http::Headers::ContentType, "text/plain");
  headers.addCopy(Http::Headers::ContentLength, "19");
  headers.addCopy("x-added", "kept");
  toTrailersOnlyLocalReply(headers, 503, "no healthy upstream", std::nullopt);
  EXPECT_EQ(headers.status(), 200u);
  EXPECT_EQ(headers.getValue(Http::Headers::ContentType), "application/grpc");
  EXPECT_EQ(headers.getValue("grpc-status"), "14");
  EXPECT_EQ(headers.getValue("grpc-message"), "no healthy upstream");
  EXPECT_FALSE(headers.has(Http::Headers::ContentLength));
  EXPECT_EQ(headers.getValue("x-added"), "kept");

  // An explicit status wins over the mapping; no body, no grpc-message.
  Http::ResponseHeaderMap timeout;
  timeout.setStatus(504);
  toTrailersOnlyLocalReply(timeout, 504, "", Status::DeadlineExceeded);
  EXPECT_EQ(timeout.getValue("grpc-status"), "4");
  EXPECT_FALSE(timeout.has("grpc-message"));

  // A grpc-status the route already put there is kept (Envoy sets one only when absent).
  Http::ResponseHeaderMap preset;
  preset.setStatus(403);
  preset.addCopy("grpc-status", "9");
  toTrailersOnlyLocalReply(preset, 403, "", std::nullopt);
  EXPECT_EQ(preset.getValue("grpc-status"), "9");
}

}  // namespace
}  // namespace Proxy::Grpc
