#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "envoy/config/accesslog/v3/accesslog.pb.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "gtest/gtest.h"
#include "proxy/filters/access_log.h"

namespace Proxy::Filters {
namespace {

StreamInfo::StreamInfo exampleInfo() {
  StreamInfo::StreamInfo info;
  // 2026-11-21T10:00:00.123Z
  info.start_system = SystemTime(std::chrono::milliseconds(1795255200123));
  info.start_monotonic = MonotonicTime(std::chrono::milliseconds(1000));
  info.end_monotonic = MonotonicTime(std::chrono::milliseconds(1042));
  info.response_code = 503;
  info.response_flags = StreamInfo::UpstreamConnectionFailure;
  info.bytes_received = 12;
  info.bytes_sent = 91;
  info.upstream_host = *Network::Address::fromIpPort("127.0.0.1", 8081);
  info.protocol = Http::Protocol::Http11;
  return info;
}

TEST(AccessLogTest, DefaultFormatMatchesEnvoys) {
  Http::RequestHeaderMap request;
  request.addCopy(":method", "POST");
  request.addCopy(":path", "/service/1?x=1");
  request.addCopy(":authority", "example.com");
  request.addCopy("user-agent", "curl/7.88");
  request.addCopy("x-request-id", "abc");
  Http::ResponseHeaderMap response;
  response.setStatus(503);

  EXPECT_EQ(formatDefault(&request, &response, exampleInfo()),
            "[2026-11-21T10:00:00.123Z] \"POST /service/1?x=1 HTTP/1.1\" 503 UF 12 91 42 - \"-\" "
            "\"curl/7.88\" \"abc\" \"example.com\" \"127.0.0.1:8081\"\n");
}

TEST(AccessLogTest, ProtocolIsTheDownstreamRequestsVersion) {
  // %PROTOCOL% as Envoy prints it: HTTP/1.0, HTTP/2, or "-" before any request was decoded.
  Http::RequestHeaderMap request;
  request.addCopy(":method", "GET");
  request.addCopy(":path", "/");
  Http::ResponseHeaderMap response;
  response.setStatus(200);
  StreamInfo::StreamInfo info = exampleInfo();
  info.protocol = Http::Protocol::Http2;
  EXPECT_NE(formatDefault(&request, &response, info).find("\"GET / HTTP/2\""), std::string::npos);
  info.protocol = Http::Protocol::Http10;
  EXPECT_NE(formatDefault(&request, &response, info).find("\"GET / HTTP/1.0\""), std::string::npos);
  info.protocol.reset();
  EXPECT_NE(formatDefault(&request, &response, info).find("\"GET / -\""), std::string::npos);
}

TEST(AccessLogTest, ResponseFlagsUseEnvoysShortNames) {
  EXPECT_EQ(StreamInfo::responseFlagsToString(0), "-");
  EXPECT_EQ(StreamInfo::responseFlagsToString(StreamInfo::NoRouteFound), "NR");
  EXPECT_EQ(StreamInfo::responseFlagsToString(StreamInfo::NoHealthyUpstream |
                                              StreamInfo::UpstreamRequestTimeout),
            "UH,UT");
}

TEST(AccessLogTest, FileLoggerWritesCustomFormat) {
  char path[] = "/tmp/access_log_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);

  envoy::extensions::access_loggers::file::v3::FileAccessLog file;
  file.set_path(path);
  file.mutable_log_format()->set_text_format("%RESPONSE_CODE% %RESPONSE_FLAGS% %REQ(:PATH)%\n");
  envoy::config::accesslog::v3::AccessLog config;
  config.set_name("envoy.access_loggers.file");
  config.mutable_typed_config()->PackFrom(file);

  auto log = createAccessLog(config);
  ASSERT_TRUE(log.ok()) << log.status();
  Http::RequestHeaderMap request;
  request.addCopy(":path", "/a");
  (*log)->log(&request, nullptr, exampleInfo());

  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  EXPECT_EQ(contents.str(), "503 UF /a\n");
  unlink(path);
}

TEST(AccessLogTest, UnknownCommandIsAConfigError) {
  envoy::extensions::access_loggers::file::v3::FileAccessLog file;
  file.set_path("/dev/null");
  file.mutable_log_format()->set_text_format("%NOPE%");
  envoy::config::accesslog::v3::AccessLog config;
  config.mutable_typed_config()->PackFrom(file);

  auto log = createAccessLog(config);
  EXPECT_EQ(log.status().message(),
            "typed_config.log_format.text_format: unsupported format command '%NOPE%'");
}

}  // namespace
}  // namespace Proxy::Filters
