// Path normalisation end to end: the real `proxy` binary, a real upstream (FakeUpstream echoes
// the path it received as x-echo-path), requests sent byte for byte. The hardening issue's
// bypasses of a route rule, the escaped-slash actions, and the whole table of Envoy 1.40's
// answers (test/unit/http/testdata/path_normalization_envoy.tsv, recorded from the real Envoy
// with the same bootstrap by test/interop/envoy_path_normalization/compare.py) replayed
// against the proxy.

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "test/integration/fake_upstream.h"
#include "test/integration/http_client.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {
namespace {

// One listener (and HttpConnectionManager) per entry: its name and the path options it sets
// ("normalize_path: true", ...). Every listener routes /admin to a 403 direct_response unless
// `admin_rule` is false, and everything else to the upstream.
struct ListenerSpec {
  std::string name;
  std::vector<std::string> hcm_fields;
};

std::string bootstrapYaml(const std::vector<ListenerSpec>& listeners, uint32_t upstream_port,
                          bool admin_rule = true) {
  std::string yaml = R"(admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
)";
  for (const ListenerSpec& listener : listeners) {
    absl::StrAppend(&yaml, "  - name: ", listener.name, R"(
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: )",
                    listener.name, "\n");
    for (const std::string& field : listener.hcm_fields) {
      absl::StrAppend(&yaml, "          ", field, "\n");
    }
    absl::StrAppend(&yaml, R"(          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
)");
    if (admin_rule) {
      absl::StrAppend(
          &yaml,
          R"(              - {match: {prefix: "/admin"}, direct_response: {status: 403, body: {inline_string: "denied"}}}
)");
    }
    absl::StrAppend(&yaml, R"(              - {match: {prefix: "/"}, route: {cluster: backend}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
)");
  }
  absl::StrAppend(&yaml, R"(  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: )",
                  upstream_port, "}}}}]}]\n");
  return yaml;
}

class PathNormalizationIntegrationTest : public testing::Test {
 protected:
  void SetUp() override {
    FakeUpstreamOptions options;
    options.name = "backend";
    absl::StatusOr<FakeUpstreamPtr> upstream = FakeUpstream::create(options);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
  }

  // Start the proxy and learn the port of each listener; a failure ends the test.
  void startProxy(const std::vector<ListenerSpec>& listeners, bool admin_rule = true) {
    ProxyOptions options;
    options.bootstrap_yaml = bootstrapYaml(listeners, upstream_->port(), admin_rule);
    proxy_ = std::make_unique<ProxyProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
    for (const ListenerSpec& listener : listeners) {
      absl::StatusOr<uint32_t> port = proxy_->listenerPort(listener.name);
      ASSERT_TRUE(port.ok()) << port.status();
      ports_[listener.name] = *port;
    }
  }

  // GET `path` exactly as written, on a new connection to `listener`.
  absl::StatusOr<HttpResponse> get(const std::string& listener, std::string_view path) {
    HttpRequest request;
    request.path = std::string(path);
    return httpRequest(ports_.at(listener), request);
  }

  FakeUpstreamPtr upstream_;
  std::unique_ptr<ProxyProcess> proxy_;
  std::map<std::string, uint32_t> ports_;
};

constexpr const char* kBypasses[] = {"/public/../admin/secret", "/%61dmin/secret",
                                     "//admin/secret"};

TEST_F(PathNormalizationIntegrationTest,
       RouteRuleBypassesReachTheUpstreamOnlyWithoutNormalisation) {
  // Two listeners with the same routes (/admin -> 403): Envoy's defaults, and normalize_path +
  // merge_slashes.
  startProxy({{"defaults", {}}, {"normalized", {"normalize_path: true", "merge_slashes: true"}}});

  // The rule itself holds on both.
  for (const char* listener : {"defaults", "normalized"}) {
    absl::StatusOr<HttpResponse> response = get(listener, "/admin/secret");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 403u) << listener;
    EXPECT_EQ(response->body, "denied");
  }

  // With the defaults each bypass reaches the upstream, which receives the path as sent (and a
  // server that resolves it serves /admin/secret).
  for (const char* bypass : kBypasses) {
    absl::StatusOr<HttpResponse> response = get("defaults", bypass);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200u) << bypass;
    EXPECT_EQ(response->header("x-echo-path"), bypass);
  }
  EXPECT_EQ(upstream_->requestsReceived(), 3u);

  // Normalised, each one is /admin/secret to the route table: 403, and the upstream sees
  // nothing.
  for (const char* bypass : kBypasses) {
    absl::StatusOr<HttpResponse> response = get("normalized", bypass);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 403u) << bypass;
    EXPECT_EQ(response->body, "denied");
  }
  EXPECT_EQ(upstream_->requestsReceived(), 3u);

  // What is forwarded is the normalised path, query untouched.
  absl::StatusOr<HttpResponse> response =
      get("normalized", "/public//docs/./%7Euser/../index.html?next=/../admin&x=%61");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-echo-path"), "/public/docs/index.html?next=/../admin&x=%61");
}

TEST_F(PathNormalizationIntegrationTest, EscapedSlashActions) {
  startProxy(
      {{"reject", {"path_with_escaped_slashes_action: REJECT_REQUEST"}},
       {"redirect",
        {"normalize_path: true", "merge_slashes: true",
         "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT"}},
       {"forward",
        {"normalize_path: true", "path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD"}},
       {"keep", {"normalize_path: true", "path_with_escaped_slashes_action: KEEP_UNCHANGED"}}});

  // REJECT_REQUEST: 400 with an empty body, and the connection is closed (as Envoy does).
  {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(ports_.at("reject"));
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = "/public%2F..%2Fadmin/secret";
    absl::StatusOr<HttpResponse> response = (*client)->request(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 400u);
    EXPECT_EQ(response->header("content-length"), "0");
    EXPECT_EQ(response->header("connection"), "close");
    EXPECT_TRUE((*client)->waitForClose(5s)) << "the proxy kept the connection open";
    EXPECT_TRUE(proxy_->waitForCounterGe("http.reject.downstream_rq_failed_path_normalization", 1));
  }

  // UNESCAPE_AND_REDIRECT: 307 to the unescaped, normalised path; the connection stays usable.
  {
    absl::StatusOr<HttpClientPtr> client = HttpClient::connect(ports_.at("redirect"));
    ASSERT_TRUE(client.ok()) << client.status();
    HttpRequest request;
    request.path = "/public%2f..%2fadmin/secret?a=%2F";
    absl::StatusOr<HttpResponse> response = (*client)->request(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 307u);
    EXPECT_EQ(response->header("location"), "/admin/secret?a=%2F");
    EXPECT_EQ(response->header("content-length"), "0");
    EXPECT_TRUE(response->keep_alive);
    // Following it lands on the rule.
    request.path = response->header("location");
    response = (*client)->request(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 403u);
    EXPECT_TRUE(
        proxy_->waitForCounterGe("http.redirect.downstream_rq_redirected_with_normalized_path", 1));
  }

  // UNESCAPE_AND_FORWARD: routed and forwarded unescaped.
  absl::StatusOr<HttpResponse> response = get("forward", "/public%2f..%2fadmin/secret");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 403u);
  response = get("forward", "/files/a%2Fb%5Cc");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-echo-path"), "/files/a/b/c");

  // KEEP_UNCHANGED: an escaped slash is data, also for normalize_path.
  response = get("keep", "/public%2f..%2fadmin/secret");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-echo-path"), "/public%2f..%2fadmin/secret");
}

TEST_F(PathNormalizationIntegrationTest, UnnormalisablePathsAndFragmentsAre400) {
  startProxy({{"defaults", {}}, {"normalized", {"normalize_path: true"}}});

  // A fragment, whatever the options (Envoy refuses it before normalising).
  absl::StatusOr<HttpResponse> response = get("defaults", "/public/page#section");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400u);
  // NUL cannot be normalised.
  response = get("normalized", "/public/%00/x");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400u);
  // Without normalize_path it is passed on as it is.
  response = get("defaults", "/public/%00/x");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->header("x-echo-path"), "/public/%00/x");
  EXPECT_TRUE(proxy_->waitForCounterGe("http.defaults.downstream_rq_failed_path_normalization", 1));
  EXPECT_TRUE(
      proxy_->waitForCounterGe("http.normalized.downstream_rq_failed_path_normalization", 1));
}

TEST_F(PathNormalizationIntegrationTest, AnUnknownEscapedSlashesActionIsRefused) {
  // 7 is no PathWithEscapedSlashesAction: the bootstrap is refused, naming the field.
  ProxyOptions options;
  options.bootstrap_yaml =
      bootstrapYaml({{"ingress", {"path_with_escaped_slashes_action: 7"}}}, upstream_->port());
  ProxyProcess proxy(std::move(options));
  absl::StatusOr<ProcessResult> result = proxy.runToCompletion({"--mode", "validate"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->exit_code, 0);
  EXPECT_NE(result->stderr_text.find("path_with_escaped_slashes_action: unknown value 7"),
            std::string::npos)
      << result->stderr_text;
}

// ---- The recorded Envoy table, replayed ---------------------------------------------------------

// The listener of a table column: "n1m0_UNESCAPE_AND_FORWARD" sets normalize_path: true,
// merge_slashes: false and that action; "default" sets nothing.
ListenerSpec columnListener(const std::string& column) {
  if (column == "default") {
    return {column, {}};
  }
  return {column,
          {absl::StrCat("normalize_path: ", column[1] == '1' ? "true" : "false"),
           absl::StrCat("merge_slashes: ", column[3] == '1' ? "true" : "false"),
           absl::StrCat("path_with_escaped_slashes_action: ", column.substr(5))}};
}

TEST_F(PathNormalizationIntegrationTest, EveryCaseOfTheRecordedEnvoyTable) {
  // Read the table: a header (input + one column per option combination), then one row per
  // request target.
  std::ifstream file(PATH_NORMALIZATION_ENVOY_TABLE);
  ASSERT_TRUE(file.good()) << PATH_NORMALIZATION_ENVOY_TABLE;
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line[0] != '#') {
      rows.push_back(absl::StrSplit(line, '\t'));
    }
  }
  ASSERT_GT(rows.size(), 1u);
  const std::vector<std::string> header = rows.front();
  rows.erase(rows.begin());

  // The same bootstrap Envoy ran: one listener per column, every path routed to the upstream.
  std::vector<ListenerSpec> listeners;
  for (size_t i = 1; i < header.size(); i++) {
    listeners.push_back(columnListener(header[i]));
  }
  startProxy(listeners, /*admin_rule=*/false);

  // Every target on every listener, over one keep-alive connection per listener (a new one
  // after the proxy closed it, as it does after a 400).
  size_t cases = 0;
  for (size_t column = 1; column < header.size(); column++) {
    HttpClientPtr client;
    for (const std::vector<std::string>& row : rows) {
      ASSERT_EQ(row.size(), header.size()) << row[0];
      if (client == nullptr) {
        absl::StatusOr<HttpClientPtr> connected = HttpClient::connect(ports_.at(header[column]));
        ASSERT_TRUE(connected.ok()) << connected.status();
        client = std::move(*connected);
      }
      HttpRequest request;
      request.path = row[0];
      absl::StatusOr<HttpResponse> response = client->request(request);
      ASSERT_TRUE(response.ok()) << header[column] << ": " << row[0] << ": " << response.status();
      std::string got = absl::StrCat(response->status);
      if (response->status == 200) {
        got = response->header("x-echo-path");
      } else if (response->status == 307) {
        got = absl::StrCat("307 ", response->header("location"));
      }
      EXPECT_EQ(got, row[column]) << header[column] << ": " << row[0];
      if (!response->keep_alive) {
        client.reset();
      }
      cases++;
    }
  }
  EXPECT_EQ(cases, rows.size() * (header.size() - 1));
}

}  // namespace
}  // namespace Proxy::Integration
