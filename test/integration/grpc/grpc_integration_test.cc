// gRPC end to end through the real `proxy` binary: gRPC C++ clients (libgrpc++) speak HTTP/2 to
// the proxy (codec_type AUTO), which forwards to a real gRPC C++ server over an HTTP/2 cluster
// (grpc_test_server.h). The four call types with large and many messages, statuses and
// trailing metadata end to end, a client's cancel reaching the server, the route's deadline
// from grpc-timeout, and the proxy's own trailers-only replies (no route, no upstream). And an
// HTTP/1.1 client calling the same gRPC server through the proxy (HTTP/1.1 <-> HTTP/2,
// trailers as chunked trailers).

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "test/integration/grpc/grpc_test_server.h"
#include "test/integration/grpc/test_service.grpc.pb.h"
#include "test/integration/proxy_integration_test_fixture.h"

namespace Proxy::Integration {
namespace {

using proxy::test::EchoReply;
using proxy::test::EchoRequest;
using proxy::test::TestService;
using namespace std::chrono_literals;

constexpr char kAuthority[] = "grpc.test";
constexpr size_t kLarge = 1536 * 1024;  // 1.5 MiB
constexpr int kMany = 1000;

// Routes: calls with "x-route: deadline" get the stream deadline from grpc-timeout capped at
// 300 ms; "x-route: empty" go to a cluster without endpoints; every other gRPC call to the
// server. Only the authority grpc.test is routed.
constexpr char kVirtualHost[] = R"({name: grpc, domains: ["grpc.test"], routes: [
  {match: {prefix: "/", grpc: {}, headers: [{name: x-route, string_match: {exact: deadline}}]},
   route: {cluster: grpc, max_stream_duration: {grpc_timeout_header_max: 0.3s}}},
  {match: {prefix: "/", grpc: {}, headers: [{name: x-route, string_match: {exact: empty}}]},
   route: {cluster: empty}},
  {match: {prefix: "/proxy.test.TestService/", grpc: {}}, route: {cluster: grpc, timeout: 0s}}]})";

std::string grpcCluster(uint32_t port) {
  return absl::StrCat(
      "{name: grpc, type: STATIC, connect_timeout: 1s, ",
      R"(typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, explicit_http_config: {http2_protocol_options: {}}}}, )",
      "load_assignment: {cluster_name: grpc, endpoints: [{lb_endpoints: [{endpoint: "
      "{address: {socket_address: {address: 127.0.0.1, port_value: ",
      port, "}}}}]}]}}");
}

class GrpcIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    server_ = GrpcTestServer::start();
    ASSERT_NE(server_, nullptr);
    BootstrapSpec spec;
    spec.virtual_hosts = {kVirtualHost};
    spec.clusters = {grpcCluster(server_->port()),
                     "{name: empty, type: STATIC, connect_timeout: 1s, load_assignment: "
                     "{cluster_name: empty, endpoints: []}}"};
    // HTTP/1.1 responses carry trailers only when asked to (as Envoy's).
    spec.hcm_fields = {"codec_type: AUTO", "http_protocol_options: {enable_trailers: true}"};
    ProxyOptions options;
    options.bootstrap_yaml = bootstrapYaml(spec);
    options.concurrency = 1;
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    absl::StatusOr<uint32_t> port = proxy_->listenerPort(kListenerName);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // A client of the proxy, calling with `authority` as :authority.
  std::unique_ptr<TestService::Stub> stub(const std::string& authority = kAuthority) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    args.SetMaxSendMessageSize(16 << 20);
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, authority);
    // A fresh connection per stub (gRPC shares subchannels between channels by default).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return TestService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials(), args));
  }

  static void withDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
    context.set_deadline(std::chrono::system_clock::now() + timeout);
  }

  int64_t counter(const std::string& name) {
    absl::StatusOr<int64_t> value = proxy_->counter(name);
    EXPECT_TRUE(value.ok()) << name << ": " << value.status();
    return value.ok() ? *value : -1;
  }

  std::unique_ptr<GrpcTestServer> server_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

// An HTTP/1.1 client calls the gRPC server through the proxy: the request goes upstream as
// HTTP/2, the response comes back chunked with grpc-status as an HTTP/1.1 trailer.
TEST_F(GrpcIntegrationTest, Http1ClientCallsTheGrpcServer) {
  EchoRequest request;
  request.set_payload("over http/1.1");
  request.set_trailer_value("h1");
  const std::string message = request.SerializeAsString();
  std::string framed(5, '\0');
  framed[1] = static_cast<char>((message.size() >> 24) & 0xff);
  framed[2] = static_cast<char>((message.size() >> 16) & 0xff);
  framed[3] = static_cast<char>((message.size() >> 8) & 0xff);
  framed[4] = static_cast<char>(message.size() & 0xff);
  framed += message;

  HttpRequest http;
  http.method = "POST";
  http.path = "/proxy.test.TestService/Unary";
  http.host = kAuthority;
  http.headers = {{"content-type", "application/grpc"}, {"te", "trailers"}};
  http.body = framed;
  absl::StatusOr<HttpResponse> response = httpRequest(port_, http);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("content-type"), "application/grpc");
  EXPECT_EQ(response->header("transfer-encoding"), "chunked");
  // The trailers follow the body (the client lists them after the headers).
  EXPECT_EQ(response->header("grpc-status"), "0");
  EXPECT_EQ(response->header("x-test-trailer"), "h1");
  ASSERT_GE(response->body.size(), 5u);
  EXPECT_EQ(response->body[0], '\0');
  EchoReply reply;
  ASSERT_TRUE(reply.ParseFromString(response->body.substr(5)));
  EXPECT_EQ(reply.payload(), "over http/1.1");

  // And the proxy's own answer to an HTTP/1.1 gRPC request with no route is trailers-only.
  http.host = "nowhere.test";
  response = httpRequest(port_, http);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("grpc-status"), "12");
  EXPECT_EQ(response->body, "");
}

}  // namespace
}  // namespace Proxy::Integration
