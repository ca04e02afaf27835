// proxy_router: route tables built from RouteConfiguration YAML (through proxy_config's loader,
// so these tests exercise it too) and matched against requests.
//
// Over ~600 lines on purpose: one concept, building and matching a route table; every test
// goes through build() / buildError() and the request helpers at the top.

#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "envoy/config/route/v3/route.pb.h"

#include "proxy/config/message_util.h"
#include "proxy/router/config_impl.h"

#include "gtest/gtest.h"

namespace Proxy::Router {
namespace {

using envoy::config::route::v3::RouteConfiguration;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Builds a route table from YAML; fails the test when either step fails.
std::shared_ptr<const ConfigImpl> build(const std::string& yaml) {
  RouteConfiguration proto;
  absl::Status loaded = ::Proxy::Config::loadFromYaml(yaml, proto);
  EXPECT_TRUE(loaded.ok()) << loaded;
  absl::StatusOr<std::shared_ptr<const ConfigImpl>> config = ConfigImpl::create(proto);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : nullptr;
}

// The error ConfigImpl::create gives for `yaml` ("" when it builds).
std::string buildError(const std::string& yaml) {
  RouteConfiguration proto;
  absl::Status loaded = ::Proxy::Config::loadFromYaml(yaml, proto);
  if (!loaded.ok()) {
    return "load: " + std::string(loaded.message());
  }
  return std::string(ConfigImpl::create(proto).status().message());
}

Http::RequestHeaderMap request(const std::string& host, const std::string& path,
                               const Headers& extra = {}) {
  Http::RequestHeaderMap headers;
  headers.addCopy(Http::Headers::Method, "GET");
  headers.addCopy(Http::Headers::Authority, host);
  headers.addCopy(Http::Headers::Path, path);
  headers.addCopy(Http::Headers::Scheme, "http");
  for (const auto& [key, value] : extra) {
    if (key == ":method") {
      headers.setCopy(key, value);
    } else {
      headers.addCopy(key, value);
    }
  }
  return headers;
}

// What a route does with a request, as one comparable string:
//   "vhost -> cluster path" | "vhost -> redirect 302 LOCATION" |
//   "vhost -> direct 418 'body'" | "no route"
std::string outcome(const Config& config, Http::RequestHeaderMap headers,
                    uint64_t random_value = 0) {
  const RouteEntry* route = config.route(headers, random_value);
  if (route == nullptr) {
    return "no route";
  }
  const std::string vhost = route->virtualHost().name();
  switch (route->action()) {
    case RouteAction::Forward: {
      const std::string cluster(route->clusterName(headers));
      route->finalizeRequestHeaders(headers, /*insert_envoy_original_path=*/false);
      return vhost + " -> " + cluster + " " + std::string(headers.path());
    }
    case RouteAction::Redirect:
      return vhost + " -> redirect " + std::to_string(route->responseCode()) + " " +
             route->redirectLocation(headers);
    case RouteAction::DirectResponse:
      return vhost + " -> direct " + std::to_string(route->responseCode()) + " '" +
             route->responseBody() + "'";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// The matching table

constexpr char kTable[] = R"(
name: table
virtual_hosts:
- name: api
  domains: ["api.example.com", "api.example.com:8080"]
  routes:
  - match: {path: "/exact"}
    route: {cluster: exact_path}
  - match: {prefix: "/v1/", case_sensitive: false}
    route: {cluster: v1, prefix_rewrite: "/"}
  - match: {safe_regex: {regex: "/users/[0-9]+"}}
    route:
      cluster: users
      regex_rewrite: {pattern: {regex: "^/users/([0-9]+)$"}, substitution: "/u/\\1"}
  - match: {path_separated_prefix: "/docs"}
    route: {cluster: docs}
  - match:
      prefix: "/h"
      headers:
      - {name: x-canary, string_match: {exact: "yes"}}
      - {name: ":method", string_match: {exact: POST}}
    route: {cluster: canary_post}
  - match:
      prefix: "/h"
      headers: [{name: X-Canary, present_match: true, invert_match: true}]
    route: {cluster: no_canary}
  - match:
      prefix: "/q"
      query_parameters: [{name: debug, present_match: true}]
    route: {cluster: debug}
  - match:
      prefix: "/q"
      query_parameters: [{name: v, string_match: {prefix: "2"}}]
    route: {cluster: v2}
  - match: {prefix: "/old"}
    redirect: {path_redirect: "/new", response_code: FOUND}
  - match: {prefix: "/teapot"}
    direct_response: {status: 418, body: {inline_string: "short and stout"}}
  - match: {prefix: "/"}
    route: {cluster: api_default}
- name: suffix
  domains: ["*.example.com"]
  routes: [{match: {prefix: "/"}, route: {cluster: suffix}}]
- name: longer_suffix
  domains: ["*.eu.example.com"]
  routes: [{match: {prefix: "/"}, route: {cluster: longer_suffix}}]
- name: prefix
  domains: ["www.example.*"]
  routes: [{match: {prefix: "/"}, route: {cluster: prefix}}]
- name: fallback
  domains: ["*"]
  routes: [{match: {prefix: "/only"}, route: {cluster: fallback}}]
)";

TEST(RouterTest, MatchingTable) {
  std::shared_ptr<const ConfigImpl> config = build(kTable);
  ASSERT_NE(config, nullptr);

  struct Case {
    std::string host;
    std::string path;
    Headers headers;
    std::string expected;
  };
  const std::vector<Case> cases = {
      // Virtual host selection: exact (case-insensitive, port as written), then the longest
      // suffix wildcard, then prefix wildcards, then "*". Ports are not stripped (Envoy).
      {"api.example.com", "/exact", {}, "api -> exact_path /exact"},
      {"API.Example.COM", "/exact?x=1", {}, "api -> exact_path /exact?x=1"},
      {"api.example.com:8080", "/exact", {}, "api -> exact_path /exact"},
      {"api.example.com:9090", "/only", {}, "fallback -> fallback /only"},
      {"foo.example.com", "/", {}, "suffix -> suffix /"},
      {"a.eu.example.com", "/", {}, "longer_suffix -> longer_suffix /"},
      {"eu.example.com", "/", {}, "suffix -> suffix /"},
      {"example.com", "/only", {}, "fallback -> fallback /only"},
      {"www.example.org", "/", {}, "prefix -> prefix /"},
      {"elsewhere.org", "/only", {}, "fallback -> fallback /only"},
      {"elsewhere.org", "/other", {}, "no route"},

      // Path matchers.
      {"api.example.com", "/exactly", {}, "api -> api_default /exactly"},
      {"api.example.com", "/V1/items?page=2", {}, "api -> v1 /items?page=2"},
      {"api.example.com", "/users/42", {}, "api -> users /u/42"},
      {"api.example.com", "/users/42?a=b", {}, "api -> users /u/42?a=b"},
      {"api.example.com", "/users/abc", {}, "api -> api_default /users/abc"},
      {"api.example.com", "/docs", {}, "api -> docs /docs"},
      {"api.example.com", "/docs/intro", {}, "api -> docs /docs/intro"},
      {"api.example.com", "/docs?toc", {}, "api -> docs /docs?toc"},
      {"api.example.com", "/docsx", {}, "api -> api_default /docsx"},

      // Header matchers, including pseudo-headers and invert_match.
      {"api.example.com",
       "/h",
       {{"x-canary", "yes"}, {":method", "POST"}},
       "api -> canary_post /h"},
      {"api.example.com", "/h", {{"x-canary", "yes"}}, "api -> api_default /h"},
      {"api.example.com", "/h", {}, "api -> no_canary /h"},

      // Query parameters.
      {"api.example.com", "/q?debug", {}, "api -> debug /q?debug"},
      {"api.example.com", "/q?x=1&debug=0", {}, "api -> debug /q?x=1&debug=0"},
      {"api.example.com", "/q?v=23", {}, "api -> v2 /q?v=23"},
      {"api.example.com", "/q?v=3", {}, "api -> api_default /q?v=3"},
      {"api.example.com", "/q#debug", {}, "api -> api_default /q#debug"},

      // Redirects and direct responses.
      {"api.example.com", "/old?k=v", {}, "api -> redirect 302 http://api.example.com/new?k=v"},
      {"api.example.com", "/teapot", {}, "api -> direct 418 'short and stout'"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(outcome(*config, request(c.host, c.path, c.headers)), c.expected)
        << "host=" << c.host << " path=" << c.path;
  }
}

TEST(RouterTest, HeaderMatcherKinds) {
  std::shared_ptr<const ConfigImpl> config = build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/range", headers: [{name: x-n, range_match: {start: 10, end: 20}}]}
    route: {cluster: range}
  - match: {prefix: "/regex", headers: [{name: x-v, safe_regex_match: {regex: "v[0-9]+"}}]}
    route: {cluster: regex}
  - match: {prefix: "/legacy", headers: [{name: x-v, prefix_match: "ab"}, {name: x-w, suffix_match: "yz"}, {name: x-z, contains_match: "mm"}]}
    route: {cluster: legacy}
  - match: {prefix: "/absent", headers: [{name: x-v, present_match: false}]}
    route: {cluster: absent}
  - match: {prefix: "/empty", headers: [{name: x-v, string_match: {exact: ""}, treat_missing_header_as_empty: true}]}
    route: {cluster: empty}
  - match: {prefix: "/each", headers: [{name: x-v, string_match: {exact: "b"}}]}
    route: {cluster: each}
  - match: {prefix: "/joined", headers: [{name: x-v, string_match: {exact: "a,b"}}]}
    route: {cluster: joined}
  - match: {prefix: "/icase", headers: [{name: x-v, string_match: {suffix: "ABC", ignore_case: true}}]}
    route: {cluster: icase}
  - match: {prefix: "/grpc", grpc: {}}
    route: {cluster: grpc}
)");
  ASSERT_NE(config, nullptr);
  auto cluster = [&](const std::string& path, const Headers& headers) {
    const RouteEntry* route = config->route(request("h", path, headers), 0);
    return route == nullptr ? std::string("none") : std::string(route->clusterName({}));
  };
  // Range: [start, end), integers only.
  EXPECT_EQ(cluster("/range", {{"x-n", "10"}}), "range");
  EXPECT_EQ(cluster("/range", {{"x-n", "20"}}), "none");
  EXPECT_EQ(cluster("/range", {{"x-n", "1x"}}), "none");
  // Regexes match the whole value.
  EXPECT_EQ(cluster("/regex", {{"x-v", "v12"}}), "regex");
  EXPECT_EQ(cluster("/regex", {{"x-v", "v12x"}}), "none");
  // The deprecated prefix/suffix/contains forms.
  EXPECT_EQ(cluster("/legacy", {{"x-v", "abc"}, {"x-w", "xyz"}, {"x-z", "summer"}}), "legacy");
  EXPECT_EQ(cluster("/legacy", {{"x-v", "abc"}, {"x-w", "xyz"}, {"x-z", "sumer"}}), "none");
  // present_match: false matches a missing header only.
  EXPECT_EQ(cluster("/absent", {}), "absent");
  EXPECT_EQ(cluster("/absent", {{"x-v", ""}}), "none");
  // treat_missing_header_as_empty.
  EXPECT_EQ(cluster("/empty", {}), "empty");
  // A header given twice matches when one of its values does, each on its own (Envoy 1.40;
  // found by the conformance corpus, route_match/header_repeated_values_are_joined): they are
  // not joined with ','.
  EXPECT_EQ(cluster("/each", {{"x-v", "a"}, {"x-v", "b"}}), "each");
  EXPECT_EQ(cluster("/joined", {{"x-v", "a"}, {"x-v", "b"}}), "none");
  EXPECT_EQ(cluster("/joined", {{"x-v", "a,b"}}), "joined");
  EXPECT_EQ(cluster("/icase", {{"x-v", "xyzabc"}}), "icase");
  // grpc: {} needs a gRPC content-type.
  EXPECT_EQ(cluster("/grpc", {{"content-type", "application/grpc+proto"}}), "grpc");
  EXPECT_EQ(cluster("/grpc", {{"content-type", "application/json"}}), "none");
}

TEST(RouterTest, CaseSensitivityAndIgnorePort) {
  std::shared_ptr<const ConfigImpl> config = build(R"(
ignore_port_in_host_matching: true
virtual_hosts:
- name: v
  domains: ["example.com"]
  routes:
  - match: {path: "/Exact"}
    route: {cluster: exact}
  - match: {path: "/any", case_sensitive: false}
    route: {cluster: any}
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(outcome(*config, request("example.com:8443", "/Exact")), "v -> exact /Exact");
  EXPECT_EQ(outcome(*config, request("example.com", "/exact")), "no route");
  EXPECT_EQ(outcome(*config, request("example.com", "/ANY")), "v -> any /ANY");
}

// ---------------------------------------------------------------------------------------------
// Actions

TEST(RouterTest, WeightedClustersAreDeterministicGivenTheRandomValue) {
  std::shared_ptr<const ConfigImpl> config = build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/"}
    route:
      weighted_clusters:
        header_name: x-pin
        clusters:
        - {name: a, weight: 10}
        - {name: b, weight: 20, request_headers_to_add: [{header: {key: x-cluster, value: b}}]}
        - {name: c, weight: 70, host_rewrite_literal: c.internal}
)");
  ASSERT_NE(config, nullptr);
  // Cluster i owns the random values [sum of earlier weights, + weight_i) modulo the total.
  auto pick = [&](uint64_t random_value) {
    return std::string(config->route(request("h", "/"), random_value)->clusterName({}));
  };
  EXPECT_EQ(pick(/*random_value=*/0), "a");
  EXPECT_EQ(pick(/*random_value=*/9), "a");
  EXPECT_EQ(pick(/*random_value=*/10), "b");
  EXPECT_EQ(pick(/*random_value=*/29), "b");
  EXPECT_EQ(pick(/*random_value=*/30), "c");
  EXPECT_EQ(pick(/*random_value=*/99), "c");
  EXPECT_EQ(pick(/*random_value=*/100), "a");

  // Over 1000 consecutive values the split is exactly the weights.
  std::map<std::string, int> counts;
  for (uint64_t r = 0; r < 1000; r++) {
    counts[pick(r)]++;
  }
  EXPECT_EQ(counts, (std::map<std::string, int>{{"a", 100}, {"b", 200}, {"c", 700}}));

  // A request can pin itself with the header_name value.
  EXPECT_EQ(
      config->route(request("h", "/", {{"x-pin", "15"}}), /*random_value=*/0)->clusterName({}),
      "b");

  // The chosen cluster's own header mutations and host rewrite apply.
  Http::RequestHeaderMap headers = request("h", "/");
  config->route(headers, /*random_value=*/15)->finalizeRequestHeaders(headers, false);
  EXPECT_EQ(headers.getValue("x-cluster"), "b");
  headers = request("h", "/");
  config->route(headers, /*random_value=*/50)->finalizeRequestHeaders(headers, false);
  EXPECT_EQ(headers.host(), "c.internal");
  EXPECT_FALSE(headers.has("x-cluster"));
}

TEST(RouterTest, ClusterHeaderAndRouteSettings) {
  std::shared_ptr<const ConfigImpl> config = build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/dynamic"}
    route: {cluster_header: X-Target, cluster_not_found_response_code: NOT_FOUND, timeout: 0s}
  - match: {prefix: "/"}
    route: {cluster: fixed}
)");
  ASSERT_NE(config, nullptr);
  // cluster_header: the cluster is whatever the request says; empty when it says nothing.
  Http::RequestHeaderMap headers = request("h", "/dynamic", {{"x-target", "blue"}});
  const RouteEntry* dynamic = config->route(headers, 0);
  EXPECT_EQ(dynamic->clusterName(headers), "blue");
  EXPECT_EQ(dynamic->clusterName(request("h", "/dynamic")), "");
  EXPECT_EQ(dynamic->clusterNotFoundResponseCode(), 404u);
  EXPECT_EQ(dynamic->timeout(), std::chrono::milliseconds(0));

  const RouteEntry* fixed = config->route(request("h", "/x"), 0);
  EXPECT_EQ(fixed->clusterNotFoundResponseCode(), 503u);
  EXPECT_EQ(fixed->timeout(), std::chrono::milliseconds(15000));  // Envoy's default
}

// What the router does not do is refused rather than accepted and ignored (field_support.h):
// per-try idle timeouts, retry host predicates other than previous_hosts, attempt counts, gRPC
// timeouts.
TEST(RouterTest, UnimplementedRetryAndTimeoutFieldsAreRefused) {
  auto refused = [](const std::string& yaml) {
    envoy::config::route::v3::RouteConfiguration proto;
    EXPECT_TRUE(::Proxy::Config::loadFromYaml(yaml, proto).ok());
    auto config = ConfigImpl::create(proto);
    return config.ok() ? std::string("accepted") : std::string(config.status().message());
  };
  EXPECT_EQ(refused(R"(
virtual_hosts:
- {name: v, domains: ["*"], include_request_attempt_count: true}
)"),
            "virtual_hosts[0].include_request_attempt_count: not supported");
  EXPECT_EQ(refused(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/"}
    route: {cluster: c, retry_policy: {retry_on: "connect-failure", per_try_idle_timeout: 1s}}
)"),
            "virtual_hosts[0].routes[0].route.retry_policy.per_try_idle_timeout: not supported");
  // A retry host predicate other than previous_hosts.
  EXPECT_EQ(refused(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/"}
    route: {cluster: c, retry_policy: {retry_on: "5xx", retry_host_predicate: [{name: envoy.retry_host_predicates.omit_canary_hosts}]}}
)"),
            "virtual_hosts[0].routes[0].route.retry_policy.retry_host_predicate[0]: "
            "'envoy.retry_host_predicates.omit_canary_hosts': not supported (only "
            "envoy.retry_host_predicates.previous_hosts)");
  EXPECT_EQ(refused(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/"}
    route: {cluster: c, internal_redirect_policy: {max_internal_redirects: 2}}
)"),
            "virtual_hosts[0].routes[0].route.internal_redirect_policy: not supported");
}

// RouteAction.max_stream_duration (the connection manager's stream deadline, grpc-timeout driven)
// and the deprecated max_grpc_timeout / grpc_timeout_offset (the router's timeout); their effect
// is judged against Envoy in test/conformance/cases/grpc.yaml.
TEST(RouterTest, StreamDurationsAndGrpcTimeoutsAreParsed) {
  std::shared_ptr<const ConfigImpl> config = build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/new"}
    route:
      cluster: c
      max_stream_duration: {max_stream_duration: 2s, grpc_timeout_header_max: 1s, grpc_timeout_header_offset: 0.1s}
  - match: {prefix: "/presence"}
    route: {cluster: c, max_stream_duration: {}}
  - match: {prefix: "/old"}
    route: {cluster: c, max_grpc_timeout: 0s, grpc_timeout_offset: 0.05s}
  - match: {prefix: "/"}
    route: {cluster: c}
)");
  ASSERT_NE(config, nullptr);
  using std::chrono::milliseconds;
  const StreamDurationPolicy& fresh = config->route(request("h", "/new"), 0)->streamDurations();
  EXPECT_TRUE(fresh.using_new_timeouts);
  EXPECT_EQ(fresh.max_stream_duration, milliseconds(2000));
  EXPECT_EQ(fresh.grpc_timeout_header_max, milliseconds(1000));
  EXPECT_EQ(fresh.grpc_timeout_header_offset, milliseconds(100));
  const StreamDurationPolicy& presence =
      config->route(request("h", "/presence"), 0)->streamDurations();
  EXPECT_TRUE(presence.using_new_timeouts);  // an empty message turns the route timeout off
  EXPECT_EQ(presence.max_stream_duration, std::nullopt);
  EXPECT_EQ(presence.grpc_timeout_header_max, std::nullopt);
  const StreamDurationPolicy& old = config->route(request("h", "/old"), 0)->streamDurations();
  EXPECT_FALSE(old.using_new_timeouts);
  EXPECT_EQ(old.max_grpc_timeout, milliseconds(0));
  EXPECT_EQ(old.grpc_timeout_offset, milliseconds(50));
  const StreamDurationPolicy& none = config->route(request("h", "/x"), 0)->streamDurations();
  EXPECT_FALSE(none.using_new_timeouts);
  EXPECT_EQ(none.max_grpc_timeout, std::nullopt);
}

TEST(RouterTest, RewritesHostAndPath) {
  std::shared_ptr<const ConfigImpl> config = build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/literal/"}
    route: {cluster: c, prefix_rewrite: "/", host_rewrite_literal: upstream.local}
  - match: {prefix: "/from-header"}
    route: {cluster: c, host_rewrite_header: x-host}
  - match: {prefix: "/svc/"}
    route:
      cluster: c
      host_rewrite_path_regex: {pattern: {regex: "^/svc/([^/]+)/.*$"}, substitution: "\\1.svc"}
  - match: {path: "/exact"}
    route: {cluster: c, prefix_rewrite: "/replaced"}
  - match: {prefix: "/auto"}
    route: {cluster: c, auto_host_rewrite: true}
)");
  ASSERT_NE(config, nullptr);
  // prefix_rewrite replaces the matched prefix, keeps the rest and the query; the old path is
  // kept in x-envoy-original-path when asked.
  Http::RequestHeaderMap headers = request("front", "/literal/a/b?q=1");
  config->route(headers, 0)->finalizeRequestHeaders(headers, /*insert_envoy_original_path=*/true);
  EXPECT_EQ(headers.path(), "/a/b?q=1");
  EXPECT_EQ(headers.host(), "upstream.local");
  EXPECT_EQ(headers.getValue("x-envoy-original-path"), "/literal/a/b?q=1");

  headers = request("front", "/from-header", {{"x-host", "chosen"}});
  config->route(headers, 0)->finalizeRequestHeaders(headers, false);
  EXPECT_EQ(headers.host(), "chosen");
  EXPECT_FALSE(headers.has("x-envoy-original-path"));

  headers = request("front", "/svc/billing/invoices?x");
  config->route(headers, 0)->finalizeRequestHeaders(headers, false);
  EXPECT_EQ(headers.host(), "billing.svc");

  // For an exact path match, the whole path (not the query) is what gets replaced.
  headers = request("front", "/exact?x=1");
  config->route(headers, 0)->finalizeRequestHeaders(headers, false);
  EXPECT_EQ(headers.path(), "/replaced?x=1");

  EXPECT_TRUE(config->route(request("front", "/auto"), 0)->autoHostRewrite());
}

TEST(RouterTest, RedirectLocations) {
  std::shared_ptr<const ConfigImpl> config = build(R"yaml(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/https"}
    redirect: {https_redirect: true}
  - match: {prefix: "/host"}
    redirect: {host_redirect: new.example.com, port_redirect: 8443, scheme_redirect: https, response_code: PERMANENT_REDIRECT}
  - match: {prefix: "/prefix/"}
    redirect: {prefix_rewrite: "/moved/", strip_query: true, response_code: TEMPORARY_REDIRECT}
  - match: {prefix: "/withquery"}
    redirect: {path_redirect: "/target?from=redirect", strip_query: true, response_code: SEE_OTHER}
  - match: {safe_regex: {regex: "/item/([0-9]+)"}}
    redirect: {regex_rewrite: {pattern: {regex: "^/item/([0-9]+)$"}, substitution: "/items/\\1"}}
)yaml");
  ASSERT_NE(config, nullptr);
  auto location = [&](const std::string& host, const std::string& path, const Headers& extra) {
    Http::RequestHeaderMap headers = request(host, path, extra);
    const RouteEntry* route = config->route(headers, 0);
    return std::to_string(route->responseCode()) + " " + route->redirectLocation(headers);
  };
  // https_redirect drops the old scheme's default port, and keeps any other.
  EXPECT_EQ(location("a.com:80", "/https/x?y", {}), "301 https://a.com/https/x?y");
  EXPECT_EQ(location("a.com:8080", "/https", {}), "301 https://a.com:8080/https");
  // Already https (x-forwarded-proto): the port stays.
  EXPECT_EQ(location("a.com:80", "/https", {{"x-forwarded-proto", "https"}}),
            "301 https://a.com:80/https");
  // Host, port and scheme replaced.
  EXPECT_EQ(location("a.com:80", "/host/p", {}), "308 https://new.example.com:8443/host/p");
  // prefix_rewrite and strip_query.
  EXPECT_EQ(location("a.com", "/prefix/a?b=c", {}), "307 http://a.com/moved/a");
  // A query in path_redirect wins and is never stripped.
  EXPECT_EQ(location("a.com", "/withquery?mine=1", {}), "303 http://a.com/target?from=redirect");
  // regex_rewrite.
  EXPECT_EQ(location("[::1]:80", "/item/7", {}), "301 http://[::1]:80/items/7");
}

TEST(RouterTest, RequireTlsRedirectsPlainTextRequests) {
  std::shared_ptr<const ConfigImpl> config = build(R"(
virtual_hosts:
- name: secure
  domains: ["*"]
  require_tls: ALL
  routes: [{match: {prefix: "/"}, route: {cluster: c}}]
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(outcome(*config, request("a.com:8080", "/x?y")),
            "secure -> redirect 301 https://a.com:8080/x?y");
  EXPECT_EQ(outcome(*config, request("a.com", "/x", {{"x-forwarded-proto", "https"}})),
            "secure -> c /x");
}

TEST(RouterTest, DirectResponseBodies) {
  // From a file, read when the table is built.
  const std::string path = ::testing::TempDir() + "/router_test_body_" + std::to_string(getpid());
  std::ofstream(path) << "from a file";
  std::shared_ptr<const ConfigImpl> config = build(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: "/file"}
    direct_response: {status: 200, body: {filename: ")" +
                                                   path + R"("}}
  - match: {prefix: "/bytes"}
    direct_response: {status: 503, body: {inline_bytes: "aGVsbG8="}}
  - match: {prefix: "/"}
    direct_response: {status: 204}
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(outcome(*config, request("h", "/file")), "v -> direct 200 'from a file'");
  EXPECT_EQ(outcome(*config, request("h", "/bytes")), "v -> direct 503 'hello'");
  EXPECT_EQ(outcome(*config, request("h", "/")), "v -> direct 204 ''");
  // No Location for anything but a redirect.
  EXPECT_EQ(config->route(request("h", "/"), 0)->redirectLocation(request("h", "/")), "");
}

// ---------------------------------------------------------------------------------------------
// Header mutations

constexpr char kMutations[] = R"(
most_specific_header_mutations_wins: {wins}
request_headers_to_add:
- {header: {key: x-level, value: global}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
- {header: {key: x-trail, value: global}}
request_headers_to_remove: [x-secret]
response_headers_to_add:
- {header: {key: x-level, value: global}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
virtual_hosts:
- name: v
  domains: ["*"]
  request_headers_to_add:
  - {header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
  - {header: {key: x-trail, value: vhost}}
  response_headers_to_remove: [server]
  routes:
  - match: {prefix: "/"}
    route: {cluster: c}
    request_headers_to_add:
    - {header: {key: X-Level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-trail, value: route}}
    - {header: {key: x-once, value: route}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-only-if-there, value: route}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-legacy, value: replaced}, append: false}
    - {header: {key: x-empty, value: ""}}
    - {header: {key: x-kept-empty, value: ""}, keep_empty_value: true}
    - {header: {key: x-percent, value: "100%% sure, %UNKNOWN%"}}
    response_headers_to_add:
    - {header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
)";

std::string withWins(bool wins) {
  std::string yaml = kMutations;
  yaml.replace(yaml.find("{wins}"), 6, wins ? "true" : "false");
  return yaml;
}

// "name=value" for every header after the pseudo-headers, in order.
std::vector<std::string> dump(const Http::HeaderMap& headers) {
  std::vector<std::string> out;
  for (const Http::HeaderEntry& h : headers) {
    if (h.key[0] != ':') {
      out.push_back(h.key + "=" + h.value);
    }
  }
  return out;
}

TEST(RouterTest, HeaderMutationsApplyMostSpecificFirst) {
  std::shared_ptr<const ConfigImpl> config = build(withWins(false));
  ASSERT_NE(config, nullptr);
  Http::RequestHeaderMap headers =
      request("h", "/", {{"x-secret", "s"}, {"x-once", "client"}, {"x-legacy", "client"}});
  const RouteEntry* route = config->route(headers, 0);
  route->finalizeRequestHeaders(headers, false);
  // Route, then virtual host, then the route configuration: an overwrite at a less specific
  // level has the last word (Envoy's default); appends accumulate in that order. Removal comes
  // before the additions of its level.
  EXPECT_EQ(dump(headers), (std::vector<std::string>{
                               "x-once=client",
                               "x-legacy=replaced",
                               "x-level=global",
                               "x-trail=route",
                               "x-kept-empty=",
                               "x-percent=100% sure, %UNKNOWN%",
                               "x-trail=vhost",
                               "x-trail=global",
                           }));

  // Responses: route, virtual host (removes server), global.
  Http::ResponseHeaderMap response;
  response.setStatus(200);
  response.addCopy("server", "upstream");
  route->finalizeResponseHeaders(response);
  EXPECT_EQ(dump(response), (std::vector<std::string>{"x-level=global"}));
}

TEST(RouterTest, MostSpecificHeaderMutationsWins) {
  std::shared_ptr<const ConfigImpl> config = build(withWins(true));
  ASSERT_NE(config, nullptr);
  Http::RequestHeaderMap headers = request("h", "/");
  const RouteEntry* route = config->route(headers, 0);
  route->finalizeRequestHeaders(headers, false);
  EXPECT_EQ(headers.getValue("x-level"), "route");
  Http::ResponseHeaderMap response;
  route->finalizeResponseHeaders(response);
  EXPECT_EQ(response.getValue("x-level"), "route");
}

// ---------------------------------------------------------------------------------------------
// Configuration errors

TEST(RouterTest, ConfigErrorsNameTheField) {
  EXPECT_EQ(buildError(R"(
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - {match: {prefix: "/"}, route: {cluster: a}}
  - {match: {prefix: "/"}, route: {cluster: a}}
  - {match: {safe_regex: {regex: "("}}, route: {cluster: a}}
)"),
            "virtual_hosts[0].routes[2].match.safe_regex: invalid regex '(': missing ): (");

  EXPECT_EQ(buildError(R"(
name: rc
virtual_hosts:
- {name: a, domains: ["x.com"], routes: []}
- {name: b, domains: ["y.com", "X.com"], routes: []}
)"),
            "virtual_hosts[1].domains[1]: Only unique values for domains are permitted. Duplicate "
            "entry of domain x.com in route rc");

  EXPECT_EQ(buildError(R"(
name: rc
virtual_hosts:
- {name: a, domains: ["*"], routes: []}
- {name: b, domains: ["*"], routes: []}
)"),
            "virtual_hosts[1].domains[0]: Only a single wildcard domain is permitted in route rc");

  EXPECT_EQ(buildError(R"(
virtual_hosts:
- {name: a, domains: ["*"], routes: [{match: {prefix: "/"}}]}
)"),
            "virtual_hosts[0].routes[0]: one of route, redirect or direct_response is required");

  EXPECT_EQ(buildError(R"(
virtual_hosts:
- name: a
  domains: ["*"]
  routes:
  - match: {prefix: "/"}
    route: {cluster: c, prefix_rewrite: "/x", regex_rewrite: {pattern: {regex: "a"}, substitution: "b"}}
)"),
            "virtual_hosts[0].routes[0].route: Cannot specify both prefix_rewrite and "
            "regex_rewrite");

  EXPECT_EQ(buildError(R"(
virtual_hosts:
- name: a
  domains: ["*"]
  routes:
  - match: {prefix: "/"}
    route: {weighted_clusters: {clusters: [{name: a, weight: 0}]}}
)"),
            "virtual_hosts[0].routes[0].route.weighted_clusters: Sum of weights in the "
            "weighted_cluster must be greater than 0.");

  EXPECT_EQ(buildError(R"(
virtual_hosts:
- name: a
  domains: ["*"]
  request_headers_to_add: [{header: {key: ":path", value: "/"}}]
)"),
            "virtual_hosts[0].request_headers_to_add[0].header.key: :-prefixed or host headers "
            "may not be modified");

  EXPECT_EQ(buildError(R"(
virtual_hosts:
- name: a
  domains: ["*"]
  routes: [{match: {prefix: "/"}, direct_response: {status: 200, body: {filename: /nonexistent/body}}}]
)"),
            "virtual_hosts[0].routes[0].direct_response.body.filename: unable to read file "
            "'/nonexistent/body': No such file or directory");

  EXPECT_EQ(buildError(R"(
max_direct_response_body_size_bytes: 4
virtual_hosts:
- name: a
  domains: ["*"]
  routes: [{match: {prefix: "/"}, direct_response: {status: 200, body: {inline_string: "12345"}}}]
)"),
            "virtual_hosts[0].routes[0].direct_response.body: size is 5 bytes; maximum is 4");

  EXPECT_EQ(buildError(R"(
virtual_hosts:
- name: a
  domains: ["*"]
  routes: [{match: {prefix: "/"}, direct_response: {status: 99}}]
)"),
            "virtual_hosts[0].routes[0].direct_response.status: 99 is out of range [200, 600)");
}

}  // namespace
}  // namespace Proxy::Router
