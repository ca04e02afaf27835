#pragma once

// A guard for YAML text from the network or from a file, run before anything builds a node
// tree from it. YAML aliases share nodes, so a few hundred bytes of nested aliases ("billion
// laughs") stand for billions of nodes; every walk of the tree (the YAML -> JSON conversion of
// proxy/config, protobuf) expands them. yaml-cpp's event parser reports anchors and aliases
// without building anything, so the expanded size is counted here in one linear pass.
// Pure functions, any thread.

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace Proxy::Config {

// How many nodes aliases may add to one document (an alias adds the nodes of the node it
// names, aliases inside it expanded). Sharing a block between resources (`<<: *defaults`)
// stays far below; a bomb goes over at once.
inline constexpr uint64_t kMaxYamlAliasNodes = 1000000;

// InvalidArgument when an alias names a node that contains it (a cycle: every walk would
// recurse until the stack ends):
//   yaml alias at line 7, column 56 names a node that contains it (a cycle)
// or when aliases would add more than `max_alias_nodes` nodes:
//   yaml aliases would add more than 1000000 nodes to the document (limit reached at line 15,
//   column 30)
// Syntax errors are left to the loader, which reports them with their line: OK here.
absl::Status checkYamlAliases(std::string_view text, uint64_t max_alias_nodes = kMaxYamlAliasNodes);

}  // namespace Proxy::Config
