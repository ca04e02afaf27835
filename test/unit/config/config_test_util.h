#pragma once

// Shared by the proxy_config tests: the YAML/JSON loader (message_util_test.cc), the command line
// (options_test.cc), and bootstrap validation (bootstrap_test.cc).
// Error strings are asserted exactly: they are what an operator reads when the proxy refuses a
// config, so a change to one is a change to the product.

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/route/v3/route.pb.h"

#include "proxy/config/bootstrap.h"
#include "proxy/config/filter_config.h"
#include "proxy/config/message_util.h"
#include "proxy/config/options.h"
#include "proxy/config/validation.h"

#include "gtest/gtest.h"

namespace Proxy::Config {

using envoy::config::bootstrap::v3::Bootstrap;

// Writes `contents` to a fresh file under the test's temp dir and returns its path.
inline std::string writeTempFile(const std::string& name, const std::string& contents) {
  static int counter = 0;
  const std::string path = ::testing::TempDir() + "/config_test_" + std::to_string(getpid()) + "_" +
                           std::to_string(counter++) + "_" + name;
  std::ofstream(path) << contents;
  return path;
}

// The message of loading `yaml` as a Bootstrap ("" when it loads).
inline std::string yamlError(const std::string& yaml) {
  Bootstrap bootstrap;
  absl::Status status = loadFromYaml(yaml, bootstrap);
  return std::string(status.message());
}

// The message of loading and validating `yaml` as the bootstrap ("" when it is accepted).
inline std::string bootstrapError(const std::string& yaml) {
  Options options;
  options.config_yaml = yaml;
  absl::StatusOr<Bootstrap> bootstrap = loadBootstrap(options);
  return std::string(bootstrap.status().message());
}

// `yaml` as a Bootstrap (the test fails if it does not parse).
inline Bootstrap parseBootstrap(const std::string& yaml) {
  Bootstrap bootstrap;
  absl::Status status = loadFromYaml(yaml, bootstrap);
  EXPECT_TRUE(status.ok()) << status;
  return bootstrap;
}

// A listener with an HTTP connection manager, an inline route and the router filter: the
// smallest thing validation accepts. `{filters}` / `{http_filters}` are substituted by tests.
constexpr char kHcmListener[] = R"(
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: backend}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
)";

}  // namespace Proxy::Config
