// gRPC end to end through the real `proxy` binary: gRPC C++ clients (libgrpc++) speak HTTP/2 to
// the proxy (codec_type AUTO), which forwards to a real gRPC C++ server over an HTTP/2 cluster
// (grpc_test_server.h). The four call types with large and many messages, statuses and
// trailing metadata end to end, a client's cancel reaching the server, the route's deadline
// from grpc-timeout, and the proxy's own trailers-only replies (no route, no upstream). And an
// HTTP/1.1 client calling the same gRPC server through the proxy (HTTP/1.1 <-> HTTP/2,
// trailers as chunked trailers).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "test/integration/grpc/grpc_test_server.h"
#include "test/integration/grpc/test_service.grpc.pb.h"
#include "test/integration/proxy_integration_test_fixture.h"
#include "test/integration/tls_test_util.h"

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
// 300 ms ("x-route: silent": the same, to an upstream that never answers); "x-route: empty" go
// to a cluster without endpoints; every other gRPC call to the server. Only the authority
// grpc.test is routed.
constexpr char kVirtualHost[] = R"({name: grpc, domains: ["grpc.test"], routes: [
  {match: {prefix: "/", grpc: {}, headers: [{name: x-route, string_match: {exact: deadline}}]},
   route: {cluster: grpc, max_stream_duration: {grpc_timeout_header_max: 0.3s}}},
  {match: {prefix: "/", grpc: {}, headers: [{name: x-route, string_match: {exact: silent}}]},
   route: {cluster: silent, max_stream_duration: {grpc_timeout_header_max: 0.3s}}},
  {match: {prefix: "/", grpc: {}, headers: [{name: x-route, string_match: {exact: empty}}]},
   route: {cluster: empty}},
  {match: {prefix: "/proxy.test.TestService/", grpc: {}}, route: {cluster: grpc, timeout: 0s}}]})";

// An HTTP/2 cluster `name` to 127.0.0.1:`port`.
std::string h2Cluster(const std::string& name, uint32_t port) {
  return absl::StrCat(
      "{name: ", name, ", type: STATIC, connect_timeout: 1s, ",
      R"(typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, explicit_http_config: {http2_protocol_options: {}}}}, )",
      "load_assignment: {cluster_name: ", name,
      ", endpoints: [{lb_endpoints: [{endpoint: "
      "{address: {socket_address: {address: 127.0.0.1, port_value: ",
      port, "}}}}]}]}}");
}

// A port that takes connections (the kernel completes them into the backlog) but never reads
// or answers: an upstream whose response never comes, however long the test waits.
class SilentPort {
 public:
  SilentPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~SilentPort() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  SilentPort(const SilentPort&) = delete;
  SilentPort& operator=(const SilentPort&) = delete;
  uint32_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint32_t port_ = 0;
};

class GrpcIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    server_ = GrpcTestServer::start();
    ASSERT_NE(server_, nullptr);
    BootstrapSpec spec;
    spec.virtual_hosts = {kVirtualHost};
    ASSERT_NE(silent_.port(), 0u);
    spec.clusters = {h2Cluster("grpc", server_->port()), h2Cluster("silent", silent_.port()),
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
  SilentPort silent_;
  std::unique_ptr<ProxyProcess> proxy_;
  uint32_t port_ = 0;
};

TEST_F(GrpcIntegrationTest, GrpcClientOverTlsNegotiatesH2ByAlpn) {
  // A second proxy terminates TLS (ALPN h2, http/1.1) in front of the same gRPC server; the
  // client is gRPC's own TLS stack verifying the proxy's certificate against the test CA.
  absl::StatusOr<TestPki> pki = TestPki::create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  BootstrapSpec spec;
  // gRPC's TLS target name override is the call's :authority too.
  spec.virtual_hosts = {R"({name: tls, domains: ["localhost"], routes: [
      {match: {prefix: "/proxy.test.TestService/", grpc: {}}, route: {cluster: grpc}}]})"};
  spec.clusters = {h2Cluster("grpc", server_->port())};
  spec.hcm_fields = {"codec_type: AUTO"};
  std::string yaml = bootstrapYaml(spec);
  const std::string chains = "    filter_chains:\n    - filters:\n";
  const size_t at = yaml.find(chains);
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, chains.size(),
               absl::StrCat("    filter_chains:\n    - transport_socket: {name: "
                            "envoy.transport_sockets.tls, typed_config: {\"@type\": "
                            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                            "DownstreamTlsContext, common_tls_context: {alpn_protocols: [h2, "
                            "http/1.1], tls_certificates: [{certificate_chain: {filename: \"",
                            pki->cert("server"), "\"}, private_key: {filename: \"",
                            pki->key("server"), "\"}}]}}}\n      filters:\n"));
  ProxyOptions options;
  options.bootstrap_yaml = yaml;
  options.concurrency = 1;
  ProxyProcess tls_proxy(std::move(options));
  ASSERT_TRUE(tls_proxy.start());
  absl::StatusOr<uint32_t> port = tls_proxy.listenerPort(kListenerName);
  ASSERT_TRUE(port.ok()) << port.status();

  std::ifstream ca_file(pki->ca());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(ca_file), {});
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");  // the certificate's SAN
  std::unique_ptr<TestService::Stub> client = TestService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", *port), grpc::SslCredentials(ssl), args));

  // A unary call and a server stream of 100 messages, with their trailers, over TLS.
  EchoRequest request;
  request.set_payload("over tls");
  request.set_trailer_value("tls-trailer");
  EchoReply reply;
  grpc::ClientContext unary;
  withDeadline(unary, 10s);
  grpc::Status status = client->Unary(&unary, request, &reply);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(reply.payload(), "over tls");
  auto trailers = unary.GetServerTrailingMetadata();
  ASSERT_EQ(trailers.count("x-test-trailer"), 1u);
  EXPECT_EQ(trailers.find("x-test-trailer")->second, "tls-trailer");

  request.set_reply_count(100);
  grpc::ClientContext stream_context;
  withDeadline(stream_context, 10s);
  std::unique_ptr<grpc::ClientReader<EchoReply>> reader =
      client->ServerStream(&stream_context, request);
  int received = 0;
  while (reader->Read(&reply)) {
    received++;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(received, 100);

  // One TLS connection, HTTP/2 by ALPN.
  EXPECT_EQ(
      tls_proxy.counter(absl::StrCat("listener.127.0.0.1_", *port, ".ssl.handshake")).value_or(-1),
      1);
  EXPECT_TRUE(tls_proxy.waitForCounterGe("http.ingress_http.downstream_cx_http2_total", 1));
  EXPECT_EQ(tls_proxy.counter("http.ingress_http.downstream_cx_http1_total").value_or(-1), 0);
  EXPECT_EQ(tls_proxy.counter("http.ingress_http.downstream_rq_http2_total").value_or(-1), 2);
}

TEST_F(GrpcIntegrationTest, UnaryCallsCarryLargeMessagesStatusesAndTrailers) {
  std::unique_ptr<TestService::Stub> client = stub();

  // 1.5 MiB each way (several HTTP/2 frames and windows), OK with trailing metadata.
  EchoRequest request;
  request.set_payload(std::string(kLarge, 'q'));
  request.set_trailer_value("ok-trailer");
  EchoReply reply;
  grpc::ClientContext ok_context;
  withDeadline(ok_context, 10s);
  grpc::Status status = client->Unary(&ok_context, request, &reply);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(reply.payload(), request.payload());
  auto trailers = ok_context.GetServerTrailingMetadata();
  ASSERT_EQ(trailers.count("x-test-trailer"), 1u);
  EXPECT_EQ(trailers.find("x-test-trailer")->second, "ok-trailer");

  // An error status, its message and the trailing metadata reach the client as the server sent
  // them (grpc-status / grpc-message trailers through the proxy).
  EchoRequest failing;
  failing.set_status_code(grpc::StatusCode::NOT_FOUND);
  failing.set_status_message("no such thing: 100% gone");
  failing.set_trailer_value("error-trailer");
  grpc::ClientContext error_context;
  withDeadline(error_context, 10s);
  status = client->Unary(&error_context, failing, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no such thing: 100% gone");
  trailers = error_context.GetServerTrailingMetadata();
  ASSERT_EQ(trailers.count("x-test-trailer"), 1u);
  EXPECT_EQ(trailers.find("x-test-trailer")->second, "error-trailer");

  // 1000 calls on the one connection.
  EchoRequest small;
  for (int i = 0; i < kMany; i++) {
    small.set_payload(absl::StrCat("call ", i));
    grpc::ClientContext context;
    withDeadline(context, 10s);
    ASSERT_TRUE(client->Unary(&context, small, &reply).ok()) << i;
    ASSERT_EQ(reply.payload(), small.payload());
  }
  EXPECT_EQ(counter("cluster.grpc.upstream_rq_total"), kMany + 2);
  EXPECT_EQ(counter("cluster.grpc.upstream_cx_total"), 1);
}

TEST_F(GrpcIntegrationTest, StreamingCallsCarryManyAndLargeMessagesBothWays) {
  std::unique_ptr<TestService::Stub> client = stub();

  // Server streaming: 1000 small replies, then 3 large ones.
  for (const auto& [count, size] :
       {std::pair<uint32_t, uint32_t>{kMany, 16}, std::pair<uint32_t, uint32_t>{3, kLarge}}) {
    EchoRequest request;
    request.set_reply_count(count);
    request.set_reply_size(size);
    request.set_trailer_value("server-stream");
    grpc::ClientContext context;
    withDeadline(context, 10s);
    std::unique_ptr<grpc::ClientReader<EchoReply>> reader = client->ServerStream(&context, request);
    EchoReply reply;
    uint32_t received = 0;
    while (reader->Read(&reply)) {
      ASSERT_EQ(reply.payload().size(), size);
      received++;
    }
    grpc::Status status = reader->Finish();
    ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    EXPECT_EQ(received, count);
    EXPECT_EQ(context.GetServerTrailingMetadata().find("x-test-trailer")->second, "server-stream");
  }

  // Client streaming: 1000 small requests and 2 large ones; the server's tally comes back.
  {
    grpc::ClientContext context;
    withDeadline(context, 10s);
    EchoReply reply;
    std::unique_ptr<grpc::ClientWriter<EchoRequest>> writer =
        client->ClientStream(&context, &reply);
    EchoRequest request;
    uint64_t sent_bytes = 0;
    for (int i = 0; i < kMany + 2; i++) {
      request.set_payload(i < kMany ? std::string(16, 'c') : std::string(kLarge, 'C'));
      sent_bytes += request.payload().size();
      if (i == kMany + 1) {
        request.set_status_code(grpc::StatusCode::ALREADY_EXISTS);
        request.set_status_message("tallied");
      }
      ASSERT_TRUE(writer->Write(request)) << i;
    }
    ASSERT_TRUE(writer->WritesDone());
    grpc::Status status = writer->Finish();
    // The last request asked for ALREADY_EXISTS: a status that is not OK carries no reply.
    EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_EQ(status.error_message(), "tallied");
  }
  {
    grpc::ClientContext context;
    withDeadline(context, 10s);
    EchoReply reply;
    std::unique_ptr<grpc::ClientWriter<EchoRequest>> writer =
        client->ClientStream(&context, &reply);
    EchoRequest request;
    request.set_payload(std::string(64, 'c'));
    for (int i = 0; i < kMany; i++) {
      ASSERT_TRUE(writer->Write(request)) << i;
    }
    ASSERT_TRUE(writer->WritesDone());
    ASSERT_TRUE(writer->Finish().ok());
    EXPECT_EQ(reply.received_messages(), static_cast<uint32_t>(kMany));
    EXPECT_EQ(reply.received_bytes(), uint64_t{64} * kMany);
  }

  // Bidirectional: 1000 ping-pongs, then large messages both ways.
  {
    grpc::ClientContext context;
    withDeadline(context, 10s);
    auto stream = client->Bidi(&context);
    EchoRequest request;
    EchoReply reply;
    for (int i = 0; i < kMany + 2; i++) {
      request.set_payload(i < kMany ? absl::StrCat("ping ", i) : std::string(kLarge, 'b'));
      ASSERT_TRUE(stream->Write(request)) << i;
      ASSERT_TRUE(stream->Read(&reply)) << i;
      ASSERT_EQ(reply.payload(), request.payload()) << i;
      ASSERT_EQ(reply.received_messages(), static_cast<uint32_t>(i + 1));
    }
    request.set_payload("last");
    request.set_trailer_value("bidi-trailer");
    ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(stream->Read(&reply));
    ASSERT_TRUE(stream->WritesDone());
    EXPECT_FALSE(stream->Read(&reply));
    grpc::Status status = stream->Finish();
    ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    EXPECT_EQ(context.GetServerTrailingMetadata().find("x-test-trailer")->second, "bidi-trailer");
  }
}

TEST_F(GrpcIntegrationTest, ClientCancelMidStreamReachesTheServer) {
  std::unique_ptr<TestService::Stub> client = stub();
  grpc::ClientContext context;
  withDeadline(context, 10s);
  auto stream = client->Bidi(&context);
  EchoRequest request;
  request.set_payload("before the cancel");
  EchoReply reply;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&reply));  // the call is established end to end

  // The client cancels (RST_STREAM CANCEL to the proxy): the proxy resets the upstream stream,
  // and the server's call ends cancelled.
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(server_->waitForCancelled(1, 5s));
  EXPECT_EQ(counter("http.ingress_http.downstream_rq_rx_reset"), 1);
  EXPECT_EQ(counter("cluster.grpc.upstream_rq_tx_reset"), 1);

  // The connection and the upstream pool go on serving.
  grpc::ClientContext next;
  withDeadline(next, 10s);
  request.set_payload("after the cancel");
  ASSERT_TRUE(client->Unary(&next, request, &reply).ok());
  EXPECT_EQ(reply.payload(), "after the cancel");
}

TEST_F(GrpcIntegrationTest, GrpcTimeoutCappedByTheRouteIsDeadlineExceeded) {
  // The client allows 10 s; the route caps grpc-timeout at 300 ms. The server is told 300 ms
  // (grpc-timeout rewritten), and the call ends DEADLINE_EXCEEDED at about 300 ms: whichever of
  // the proxy's stream timer and the server's own deadline, both at 300 ms, fires first.
  std::unique_ptr<TestService::Stub> client = stub();
  EchoRequest request;
  request.set_payload("never finished");
  {
    grpc::ClientContext context;
    withDeadline(context, 10s);
    context.AddMetadata("x-route", "deadline");
    EchoReply reply;
    std::unique_ptr<grpc::ClientWriter<EchoRequest>> writer =
        client->ClientStream(&context, &reply);
    ASSERT_TRUE(writer->Write(request));
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = writer->Finish();  // no WritesDone: the server waits for more
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_GT(server_->lastDeadlineMs(), 0);
    EXPECT_LE(server_->lastDeadlineMs(), 300);
    EXPECT_TRUE(server_->waitForCancelled(1, 5s));
  }

  // The same route to an upstream that never answers: the proxy's own trailers-only reply.
  const int64_t reached = counter("http.ingress_http.downstream_rq_max_duration_reached");
  grpc::ClientContext context;
  withDeadline(context, 10s);
  context.AddMetadata("x-route", "silent");
  EchoReply reply;
  grpc::Status status = client->Unary(&context, request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(status.error_message(), "downstream duration timeout");
  EXPECT_EQ(counter("http.ingress_http.downstream_rq_max_duration_reached"), reached + 1);
}

TEST_F(GrpcIntegrationTest, LocalRepliesAreGrpcStatuses) {
  EchoRequest request;
  request.set_payload("x");
  EchoReply reply;

  // No route for the authority: 404 -> UNIMPLEMENTED, no message.
  {
    std::unique_ptr<TestService::Stub> client = stub("nowhere.test");
    grpc::ClientContext context;
    withDeadline(context, 10s);
    grpc::Status status = client->Unary(&context, request, &reply);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(status.error_message(), "");
  }
  // No endpoint: 503 "no healthy upstream" -> UNAVAILABLE with that message.
  {
    std::unique_ptr<TestService::Stub> client = stub();
    grpc::ClientContext context;
    withDeadline(context, 10s);
    context.AddMetadata("x-route", "empty");
    grpc::Status status = client->Unary(&context, request, &reply);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status.error_message(), "no healthy upstream");
  }
  EXPECT_EQ(counter("http.ingress_http.no_route"), 1);
  EXPECT_EQ(counter("cluster.empty.upstream_cx_none_healthy"), 1);
}

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
