// proxy_config's command line (options.h): Envoy's flags, defaults, errors naming the flag.

#include "test/unit/config/config_test_util.h"

namespace Proxy::Config {
namespace {

// ---------------------------------------------------------------------------------------------
// The command line

// Parses a command line given as words (argv[0] included).
absl::StatusOr<Options> parse(std::vector<std::string> words) {
  std::vector<char*> argv;
  for (std::string& w : words) {
    argv.push_back(w.data());
  }
  argv.push_back(nullptr);
  return parseOptions(static_cast<int>(words.size()), argv.data());
}

TEST(OptionsTest, EnvoyStyleFlags) {
  absl::StatusOr<Options> options = parse({"proxy",
                                           "-c",
                                           "/etc/proxy.yaml",
                                           "--concurrency",
                                           "3",
                                           "-l",
                                           "debug",
                                           "--service-node",
                                           "node-1",
                                           "--service-cluster",
                                           "edge",
                                           "--service-zone",
                                           "z1",
                                           "--drain-time-s",
                                           "5",
                                           "--mode",
                                           "validate",
                                           "--admin-address-path",
                                           "/tmp/a",
                                           "--base-id",
                                           "7",
                                           "--disable-hot-restart",
                                           "--parent-shutdown-time-s",
                                           "10",
                                           "--config-yaml",
                                           "node: {id: x}"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->config_path, "/etc/proxy.yaml");
  EXPECT_EQ(options->concurrency, 3u);
  EXPECT_EQ(options->log_level, LogLevel::Debug);
  EXPECT_EQ(options->service_node, "node-1");
  EXPECT_EQ(options->service_cluster, "edge");
  EXPECT_EQ(options->service_zone, "z1");
  EXPECT_EQ(options->drain_time, std::chrono::seconds(5));
  EXPECT_EQ(options->mode, Mode::Validate);
  EXPECT_EQ(options->admin_address_path, "/tmp/a");
  EXPECT_EQ(options->base_id, 7u);
  EXPECT_TRUE(options->disable_hot_restart);
  EXPECT_EQ(options->config_yaml, "node: {id: x}");
}

TEST(OptionsTest, Defaults) {
  absl::StatusOr<Options> options = parse({"proxy"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->mode, Mode::Serve);
  EXPECT_EQ(options->drain_time, std::chrono::seconds(600));
  EXPECT_EQ(options->log_level, LogLevel::Info);
  EXPECT_GE(options->concurrency, 1u);
  EXPECT_FALSE(options->help);
}

TEST(OptionsTest, LongFormsAndEqualsSigns) {
  absl::StatusOr<Options> options =
      parse({"proxy", "--config-path=/x.json", "--log-level=warn", "--concurrency=1"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->config_path, "/x.json");
  EXPECT_EQ(options->log_level, LogLevel::Warn);
  EXPECT_EQ(options->concurrency, 1u);
  EXPECT_TRUE(parse({"proxy", "--help"})->help);
  EXPECT_TRUE(parse({"proxy", "--version"})->version);
}

TEST(OptionsTest, BadFlagsAreNamed) {
  EXPECT_EQ(parse({"proxy", "--foo"}).status().message(), "unknown option '--foo'");
  EXPECT_EQ(parse({"proxy", "--foo=1"}).status().message(), "unknown option '--foo'");
  EXPECT_EQ(parse({"proxy", "-x"}).status().message(), "unknown option '-x'");
  EXPECT_EQ(parse({"proxy", "--concurrency", "x"}).status().message(),
            "--concurrency: expected a positive integer, got 'x'");
  EXPECT_EQ(parse({"proxy", "--concurrency", "0"}).status().message(),
            "--concurrency: expected a positive integer, got '0'");
  EXPECT_EQ(parse({"proxy", "--drain-time-s", "-1"}).status().message(),
            "--drain-time-s: expected a non-negative integer, got '-1'");
  EXPECT_EQ(parse({"proxy", "--mode", "init_only"}).status().message(),
            "--mode: expected 'serve' or 'validate', got 'init_only'");
  EXPECT_EQ(parse({"proxy", "-l", "loud"}).status().message(),
            "--log-level: invalid log level 'loud' (expected trace, debug, info, warning, error, "
            "critical or off)");
  EXPECT_EQ(parse({"proxy", "--config-path"}).status().message(),
            "option '--config-path' requires a value");
  EXPECT_EQ(parse({"proxy", "envoy.yaml"}).status().message(), "unexpected argument 'envoy.yaml'");
}

}  // namespace
}  // namespace Proxy::Config
