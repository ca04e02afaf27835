#pragma once

// Loads protobuf messages (a Bootstrap, an xDS resource, a test fixture) from YAML or JSON text,
// the way Envoy does: YAML -> JSON -> google::protobuf::util::JsonStringToMessage.
//
// A YAML scalar carries no type ("80", "true" and "5s" are all just text), so the YAML tree is
// converted to JSON by walking it alongside the message Descriptor: every scalar is emitted with
// the JSON type its field needs. The same walk reports what protobuf's JSON parser would report
// vaguely, in one line and with the full field path:
//
//   static_resources.listeners[0].address.socket_address: unknown field 'prot'
//   static_resources.clusters[0].lb_policy: invalid value 'ROUND_ROBINN' for enum ...LbPolicy
//   static_resources.clusters[0].connect_timeout: invalid duration 'abc'
//
// Nothing here throws: yaml-cpp's exceptions are caught and turned into a Status. Thread-safe
// (no shared state besides protobuf's generated descriptor pool, which is immutable).

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "proxy/config/yaml_to_json.h"

namespace Proxy::Config {

// Replaces `out` with the message described by `yaml`. An empty document yields an empty
// message. Any's "@type" must name a message linked into this binary.
absl::Status loadFromYaml(std::string_view yaml, google::protobuf::Message& out);

// Same for JSON text (JSON is parsed by the same walk, so the errors read the same).
absl::Status loadFromJson(std::string_view json, google::protobuf::Message& out);

// Reads `path` and parses it by extension: .json as JSON, .yaml/.yml and anything else as YAML.
absl::Status loadFromFile(const std::string& path, google::protobuf::Message& out);

}  // namespace Proxy::Config
