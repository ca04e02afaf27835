// The YAML alias guard every YAML/JSON load goes through (proxy/config/yaml_guard.h): alias
// bombs and cycles are refused before yaml-cpp builds a node tree, in the control plane's
// snapshots and the proxy's bootstrap alike.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config/bootstrap.h"
#include "proxy/config/options.h"
#include "proxy/config/yaml_guard.h"

namespace Proxy::Config {
namespace {

TEST(YamlGuardTest, CountsWhatAliasesAddWithNestedAliasesExpanded) {
  // No aliases, or a few: fine.
  EXPECT_TRUE(checkYamlAliases("a: [1, 2, 3]\n").ok());
  EXPECT_TRUE(checkYamlAliases("a: &x {b: 1, c: [1, 2]}\nd: *x\ne: {<<: *x, f: 2}\n").ok());
  // &x is 6 nodes (the map, two keys, 1, the list, 2): y = [*x, *x] adds 12 and is 13 nodes
  // itself, so z = [*y, *y] adds 26: 38 in all.
  const std::string nested = "x: &x {b: 1, c: [2]}\ny: &y [*x, *x]\nz: [*y, *y]\n";
  EXPECT_TRUE(checkYamlAliases(nested, /*max_alias_nodes=*/38).ok());
  EXPECT_EQ(checkYamlAliases(nested, /*max_alias_nodes=*/37),
            absl::InvalidArgumentError("yaml aliases would add more than 37 nodes to the "
                                       "document (limit reached at line 3, column 9)"));
}

TEST(YamlGuardTest, HundredLevelsOfAliasesNeitherOverflowNorTakeLong) {
  // 2^100 nodes: the counts saturate instead of wrapping around to something small.
  std::string yaml = "l0: &l0 [x, x]\n";
  for (int i = 1; i < 100; i++) {
    absl::StrAppend(&yaml, "l", i, ": &l", i, " [*l", i - 1, ", *l", i - 1, "]\n");
  }
  absl::Status status = checkYamlAliases(yaml, /*max_alias_nodes=*/UINT64_MAX - 1);
  EXPECT_THAT(std::string(status.message()),
              testing::HasSubstr("yaml aliases would add more than 18446744073709551614 nodes"));
}

TEST(YamlGuardTest, AnAliasInsideTheNodeItNamesIsACycle) {
  EXPECT_EQ(checkYamlAliases("a: &a [1, *a]\n"),
            absl::InvalidArgumentError(
                "yaml alias at line 1, column 11 names a node that contains it (a cycle)"));
  EXPECT_EQ(checkYamlAliases("a: &a {b: {c: *a}}\n"),
            absl::InvalidArgumentError(
                "yaml alias at line 1, column 15 names a node that contains it (a cycle)"));
}

TEST(YamlGuardTest, SyntaxErrorsAreLeftToTheLoader) {
  EXPECT_TRUE(checkYamlAliases("a: [\n").ok());
  EXPECT_TRUE(checkYamlAliases("a: *undefined\n").ok());
}

TEST(YamlGuardTest, ABootstrapWithAnAliasCycleIsOneLineOfErrorNotAStackOverflow) {
  // --config-yaml with a cycle: before the guard, the conversion recursed until the stack
  // ended and the process died.
  Options options;
  options.config_yaml = "admin: &a {address: {socket_address: {address: *a}}}\n";
  absl::StatusOr<Bootstrap> bootstrap = loadBootstrap(options);
  EXPECT_EQ(bootstrap.status(),
            absl::InvalidArgumentError(
                "--config-yaml: yaml alias at line 1, column 48 names a node that contains it "
                "(a cycle)"));
}

}  // namespace
}  // namespace Proxy::Config
