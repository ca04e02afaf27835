#pragma once

// The schema-guided YAML -> JSON conversion behind loadFromYaml (message_util.h): every YAML
// scalar is emitted with the JSON type its field needs, and what protobuf's JSON parser would
// report vaguely is reported here in one line with the full field path. Thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include <google/protobuf/descriptor.h>

namespace Proxy::Config {

// The schema-guided conversion on its own: the JSON text loadFromYaml hands to protobuf.
// Exposed for tests and for tools that want to show what a config means.
absl::StatusOr<std::string> yamlToJson(std::string_view yaml,
                                       const google::protobuf::Descriptor& descriptor);

}  // namespace Proxy::Config
