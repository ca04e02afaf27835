#pragma once

// The walk behind yamlToJson (yaml_to_json.h): a YAML tree converted alongside a message
// Descriptor into the JSON protobuf's parser expects, with path-qualified errors. Internal to
// proxy_config: yaml_to_json.cc has the walk over messages, fields, maps and scalars,
// yaml_well_known_types.cc the well-known types (Any, Duration, Timestamp, FieldMask, Struct,
// Value, ListValue, Empty, wrappers).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include <google/protobuf/descriptor.h>
#include <yaml-cpp/yaml.h>

#include "proxy/config/field_path.h"

namespace Proxy::Config::YamlToJson {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::OneofDescriptor;

inline constexpr char kTypeUrlPrefix[] = "type.googleapis.com/";

// How `node` reads in an error message: "a mapping", "a list", "'text'" or "null".
std::string describe(const YAML::Node& node);

bool isWrapperType(const Descriptor& d);
// Messages whose JSON form is not an object of their fields (protobuf's JSON mapping).
bool isWellKnownType(const Descriptor& d);

using Entries = std::vector<std::pair<YAML::Node, YAML::Node>>;

// The key/value pairs of a mapping, with YAML merge keys ("<<: *anchor") expanded: explicit
// keys win over merged ones, and earlier merges win over later ones (YAML 1.1 merge spec).
// yaml-cpp resolves anchors/aliases itself but leaves "<<" as an ordinary key.
absl::Status collectEntries(const YAML::Node& map, const std::string& path, Entries& out);

// Walks a YAML tree alongside a message Descriptor and writes the JSON protobuf expects.
class YamlToJsonConverter {
 public:
  absl::Status convertMessage(const YAML::Node& node, const Descriptor& d, const std::string& path,
                              std::string& out);

 private:
  // Emits `"field": value` for every key of `node` (a mapping), separated by commas.
  absl::Status convertFields(const YAML::Node& node, const Descriptor& d, const std::string& path,
                             bool skip_type_key, bool& first, std::string& out);

  // Accepts the proto name ("stat_prefix") and the JSON name ("statPrefix"), like protobuf.
  static const FieldDescriptor* findField(const Descriptor& d, const std::string& name);

  absl::Status convertField(const YAML::Node& node, const FieldDescriptor& field,
                            const std::string& path, std::string& out);

  absl::Status convertMap(const YAML::Node& node, const FieldDescriptor& field,
                          const std::string& path, std::string& out);

  absl::Status convertSingle(const YAML::Node& node, const FieldDescriptor& field,
                             const std::string& path, std::string& out);

  absl::Status convertEnum(const YAML::Node& node, const EnumDescriptor& e, const std::string& path,
                           std::string& out);

  static absl::Status convertScalar(const YAML::Node& node, const FieldDescriptor& field,
                                    const std::string& path, std::string& out);

  // YAML spells infinities and NaN ".inf" / ".nan"; absl accepts "inf" / "nan".
  static bool parseDouble(std::string_view text, double& value);

  static void appendDouble(std::string& out, double value);

  static std::string typeName(const FieldDescriptor& field);

  absl::Status convertWellKnown(const YAML::Node& node, const Descriptor& d,
                                const std::string& path, std::string& out);

  absl::Status convertAny(const YAML::Node& node, const std::string& path, std::string& out);

  // Struct / Value / ListValue: no schema, so scalars are typed the way Envoy types them
  // (quoted -> string; else bool, integer, float, string in that order).
  absl::Status convertFreeForm(const YAML::Node& node, const std::string& path, std::string& out);
};

}  // namespace Proxy::Config::YamlToJson
