#include "proxy/config/yaml_to_json.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "proxy/common/json.h"
#include "proxy/common/string_view.h"
#include "proxy/config/yaml_guard.h"
#include "proxy/config/yaml_to_json_converter.h"

namespace Proxy::Config {
namespace YamlToJson {
namespace {

// Proto3 strings must be UTF-8 (protobuf's parser checks too, but without our path).
bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t code;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) {
      return false;
    }
    for (size_t k = 1; k <= extra; k++) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        return false;
      }
      code = (code << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    default:
      return "null";
  }
}

bool isWrapperType(const Descriptor& d) {
  const std::string& n = d.full_name();
  return n == "google.protobuf.DoubleValue" || n == "google.protobuf.FloatValue" ||
         n == "google.protobuf.Int64Value" || n == "google.protobuf.UInt64Value" ||
         n == "google.protobuf.Int32Value" || n == "google.protobuf.UInt32Value" ||
         n == "google.protobuf.BoolValue" || n == "google.protobuf.StringValue" ||
         n == "google.protobuf.BytesValue";
}

bool isWellKnownType(const Descriptor& d) {
  const std::string& n = d.full_name();
  return n == "google.protobuf.Any" || n == "google.protobuf.Duration" ||
         n == "google.protobuf.Timestamp" || n == "google.protobuf.FieldMask" ||
         n == "google.protobuf.Struct" || n == "google.protobuf.Value" ||
         n == "google.protobuf.ListValue" || n == "google.protobuf.Empty" || isWrapperType(d);
}

absl::Status collectEntries(const YAML::Node& map, const std::string& path, Entries& out) {
  Entries merged;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: yaml-cpp's iterator hands out a temporary proxy, so references into it dangle.
    // (A Node is a handle; copying it is cheap.)
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (key.IsScalar() && key.Scalar() == "<<" && key.Tag() != "!") {
      std::vector<YAML::Node> sources;
      if (value.IsMap()) {
        sources.push_back(value);
      } else if (value.IsSequence()) {
        for (size_t i = 0; i < value.size(); i++) {
          sources.push_back(value[i]);
        }
      }
      for (const YAML::Node& source : sources) {
        if (!source.IsMap()) {
          return error(path, "a merge key '<<' must refer to a mapping");
        }
        Entries source_entries;
        absl::Status status = collectEntries(source, path, source_entries);
        if (!status.ok()) {
          return status;
        }
        merged.insert(merged.end(), source_entries.begin(), source_entries.end());
      }
      continue;
    }
    out.emplace_back(key, value);
  }
  absl::flat_hash_set<std::string> present;
  for (const auto& [key, value] : out) {
    if (key.IsScalar()) {
      present.insert(key.Scalar());
    }
  }
  for (const auto& [key, value] : merged) {
    if (key.IsScalar() && present.insert(key.Scalar()).second) {
      out.emplace_back(key, value);
    }
  }
  return absl::OkStatus();
}

absl::Status YamlToJsonConverter::convertMessage(const YAML::Node& node, const Descriptor& d,
                                                 const std::string& path, std::string& out) {
  if (isWellKnownType(d)) {
    return convertWellKnown(node, d, path, out);
  }
  if (node.IsNull()) {
    out.append("{}");
    return absl::OkStatus();
  }
  if (!node.IsMap()) {
    return error(path,
                 absl::StrCat("expected a mapping (", d.full_name(), "), got ", describe(node)));
  }
  out.push_back('{');
  bool first = true;
  absl::Status status = convertFields(node, d, path, /*skip_type_key=*/false, first, out);
  out.push_back('}');
  return status;
}

// Emits `"field": value` for every key of `node` (a mapping), separated by commas.
absl::Status YamlToJsonConverter::convertFields(const YAML::Node& node, const Descriptor& d,
                                                const std::string& path, bool skip_type_key,
                                                bool& first, std::string& out) {
  Entries entries;
  absl::Status status = collectEntries(node, path, entries);
  if (!status.ok()) {
    return status;
  }
  absl::flat_hash_set<const FieldDescriptor*> seen;
  absl::flat_hash_map<const OneofDescriptor*, const FieldDescriptor*> oneofs;
  for (const auto& [key, value] : entries) {
    if (!key.IsScalar()) {
      return error(path, absl::StrCat("a field name must be a string, got ", describe(key)));
    }
    const std::string& name = key.Scalar();
    if (skip_type_key && name == "@type") {
      continue;
    }
    const FieldDescriptor* field = findField(d, name);
    if (field == nullptr) {
      return error(path, absl::StrCat("unknown field '", name, "'"));
    }
    if (!seen.insert(field).second) {
      return error(path, absl::StrCat("field '", field->name(), "' is set more than once"));
    }
    // null means "not set", as in protobuf's JSON mapping (except for google.protobuf.Value,
    // where null is a value).
    if (value.IsNull() &&
        !(field->message_type() != nullptr &&
          field->message_type()->full_name() == "google.protobuf.Value" && !field->is_repeated())) {
      continue;
    }
    if (const OneofDescriptor* oneof = field->real_containing_oneof(); oneof != nullptr) {
      auto [it, inserted] = oneofs.emplace(oneof, field);
      if (!inserted) {
        return error(path, absl::StrCat("only one of '", it->second->name(), "' and '",
                                        field->name(), "' may be set (oneof ", oneof->name(), ")"));
      }
    }
    if (!first) {
      out.push_back(',');
    }
    first = false;
    Json::appendString(out, field->name());
    out.push_back(':');
    status = convertField(value, *field, join(path, field->name()), out);
    if (!status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

// Accepts the proto name ("stat_prefix") and the JSON name ("statPrefix"), like protobuf.
const FieldDescriptor* YamlToJsonConverter::findField(const Descriptor& d,
                                                      const std::string& name) {
  if (const FieldDescriptor* f = d.FindFieldByName(name); f != nullptr) {
    return f;
  }
  for (int i = 0; i < d.field_count(); i++) {
    if (d.field(i)->json_name() == name) {
      return d.field(i);
    }
  }
  return nullptr;
}

absl::Status YamlToJsonConverter::convertField(const YAML::Node& node, const FieldDescriptor& field,
                                               const std::string& path, std::string& out) {
  if (field.is_map()) {
    return convertMap(node, field, path, out);
  }
  if (field.is_repeated()) {
    if (!node.IsSequence()) {
      return error(path, absl::StrCat("expected a list, got ", describe(node)));
    }
    out.push_back('[');
    for (size_t i = 0; i < node.size(); i++) {
      if (i > 0) {
        out.push_back(',');
      }
      const std::string element_path = absl::StrCat(path, "[", i, "]");
      if (node[i].IsNull() && field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        return error(element_path, "null is not a valid list element");
      }
      absl::Status status = convertSingle(node[i], field, element_path, out);
      if (!status.ok()) {
        return status;
      }
    }
    out.push_back(']');
    return absl::OkStatus();
  }
  return convertSingle(node, field, path, out);
}

absl::Status YamlToJsonConverter::convertMap(const YAML::Node& node, const FieldDescriptor& field,
                                             const std::string& path, std::string& out) {
  if (!node.IsMap()) {
    return error(path, absl::StrCat("expected a mapping, got ", describe(node)));
  }
  const FieldDescriptor& key_field = *field.message_type()->map_key();
  const FieldDescriptor& value_field = *field.message_type()->map_value();
  Entries entries;
  absl::Status status = collectEntries(node, path, entries);
  if (!status.ok()) {
    return status;
  }
  out.push_back('{');
  bool first = true;
  absl::flat_hash_set<std::string> keys;
  for (const auto& [key, value] : entries) {
    if (!key.IsScalar()) {
      return error(path, absl::StrCat("a map key must be a scalar, got ", describe(key)));
    }
    const std::string entry_path = absl::StrCat(path, "['", key.Scalar(), "']");
    // JSON object keys are strings whatever the key type; check the text parses as that type.
    std::string typed_key;
    status = convertScalar(key, key_field, entry_path, typed_key);
    if (!status.ok()) {
      return status;
    }
    if (!keys.insert(key.Scalar()).second) {
      return error(path, absl::StrCat("duplicate map key '", key.Scalar(), "'"));
    }
    if (value.IsNull() && value_field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return error(entry_path, "null is not a valid map value");
    }
    if (!first) {
      out.push_back(',');
    }
    first = false;
    Json::appendString(out, key.Scalar());
    out.push_back(':');
    status = convertSingle(value, value_field, entry_path, out);
    if (!status.ok()) {
      return status;
    }
  }
  out.push_back('}');
  return absl::OkStatus();
}

absl::Status YamlToJsonConverter::convertSingle(const YAML::Node& node,
                                                const FieldDescriptor& field,
                                                const std::string& path, std::string& out) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return convertMessage(node, *field.message_type(), path, out);
    case FieldDescriptor::CPPTYPE_ENUM:
      return convertEnum(node, *field.enum_type(), path, out);
    default:
      return convertScalar(node, field, path, out);
  }
}

absl::Status YamlToJsonConverter::convertEnum(const YAML::Node& node, const EnumDescriptor& e,
                                              const std::string& path, std::string& out) {
  if (e.full_name() == "google.protobuf.NullValue") {
    out.append("null");
    return absl::OkStatus();
  }
  if (!node.IsScalar()) {
    return error(
        path, absl::StrCat("expected an enum value (", e.full_name(), "), got ", describe(node)));
  }
  const std::string& text = node.Scalar();
  if (const EnumValueDescriptor* v = e.FindValueByName(text); v != nullptr) {
    Json::appendString(out, v->name());
    return absl::OkStatus();
  }
  // proto3 enums are open: a number is accepted even when it names no value.
  int32_t number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    absl::StrAppend(&out, number);
    return absl::OkStatus();
  }
  return error(path, absl::StrCat("invalid value '", text, "' for enum ", e.full_name()));
}

absl::Status YamlToJsonConverter::convertScalar(const YAML::Node& node,
                                                const FieldDescriptor& field,
                                                const std::string& path, std::string& out) {
  if (!node.IsScalar()) {
    return error(path, absl::StrCat("expected ", typeName(field), ", got ", describe(node)));
  }
  const std::string& text = node.Scalar();
  auto invalid = [&]() {
    return error(path, absl::StrCat("invalid value '", text, "' for ", typeName(field)));
  };
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      if (field.type() == FieldDescriptor::TYPE_BYTES) {
        // Bytes are base64 in JSON (standard or URL-safe alphabet, as protobuf accepts).
        std::string decoded;
        if (!absl::Base64Unescape(text, &decoded) && !absl::WebSafeBase64Unescape(text, &decoded)) {
          return error(path, absl::StrCat("invalid base64 '", text, "' for bytes"));
        }
      } else if (!isValidUtf8(text)) {
        return error(path, "invalid UTF-8 in a string");
      }
      Json::appendString(out, text);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value = false;
      if (!YAML::convert<bool>::decode(node, value)) {
        return invalid();
      }
      out.append(value ? "true" : "false");
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t value = 0;
      if (!absl::SimpleAtoi(text, &value)) {
        return invalid();
      }
      absl::StrAppend(&out, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t value = 0;
      if (absl::StartsWith(absl::StripAsciiWhitespace(text), "-") ||
          !absl::SimpleAtoi(text, &value)) {
        return invalid();
      }
      absl::StrAppend(&out, value);
      return absl::OkStatus();
    }
    // 64-bit integers are quoted: protobuf reads JSON numbers as doubles otherwise.
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t value = 0;
      if (!absl::SimpleAtoi(text, &value)) {
        return invalid();
      }
      absl::StrAppend(&out, "\"", value, "\"");
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t value = 0;
      if (absl::StartsWith(absl::StripAsciiWhitespace(text), "-") ||
          !absl::SimpleAtoi(text, &value)) {
        return invalid();
      }
      absl::StrAppend(&out, "\"", value, "\"");
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double value = 0;
      if (!parseDouble(text, value)) {
        return invalid();
      }
      appendDouble(out, value);
      return absl::OkStatus();
    }
    default:
      return invalid();
  }
}

// YAML spells infinities and NaN ".inf" / ".nan"; absl accepts "inf" / "nan".
bool YamlToJsonConverter::parseDouble(std::string_view text, double& value) {
  absl::string_view t = absl::StripAsciiWhitespace(asAbsl(text));
  bool negative = absl::ConsumePrefix(&t, "-");
  if (!negative) {
    absl::ConsumePrefix(&t, "+");
  }
  if (absl::EqualsIgnoreCase(t, ".inf")) {
    value = negative ? -std::numeric_limits<double>::infinity()
                     : std::numeric_limits<double>::infinity();
    return true;
  }
  if (absl::EqualsIgnoreCase(t, ".nan")) {
    value = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  return absl::SimpleAtod(asAbsl(text), &value);
}

void YamlToJsonConverter::appendDouble(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("\"NaN\"");
  } else if (std::isinf(value)) {
    out.append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", value);
    out.append(buf);
  }
}

std::string YamlToJsonConverter::typeName(const FieldDescriptor& field) {
  switch (field.type()) {
    case FieldDescriptor::TYPE_STRING:
      return "a string";
    case FieldDescriptor::TYPE_BYTES:
      return "bytes (base64)";
    case FieldDescriptor::TYPE_BOOL:
      return "bool";
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FLOAT:
      return "a number";
    default:
      return field.type_name();  // int32, uint64, ...
  }
}

namespace {

absl::Status parseYaml(std::string_view yaml, YAML::Node& root) {
  // Before yaml-cpp builds the tree: an alias cycle would make the conversion below recurse
  // until the stack ends, and an alias bomb would expand into gigabytes (yaml_guard.h).
  if (absl::Status aliases = checkYamlAliases(yaml); !aliases.ok()) {
    return aliases;
  }
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return absl::InvalidArgumentError(absl::StrCat("yaml parse error: ", e.msg));
    }
    return absl::InvalidArgumentError(absl::StrCat("yaml parse error at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> convert(const YAML::Node& root, const Descriptor& descriptor) {
  std::string json;
  try {
    absl::Status status = YamlToJsonConverter().convertMessage(root, descriptor, "", json);
    if (!status.ok()) {
      return status;
    }
  } catch (const YAML::Exception& e) {
    // Not expected once the document parsed, but yaml-cpp's accessors are allowed to throw.
    return absl::InvalidArgumentError(absl::StrCat("yaml error: ", e.what()));
  }
  return json;
}

}  // namespace
}  // namespace YamlToJson

absl::StatusOr<std::string> yamlToJson(std::string_view yaml,
                                       const google::protobuf::Descriptor& descriptor) {
  YAML::Node root;
  absl::Status status = YamlToJson::parseYaml(yaml, root);
  if (!status.ok()) {
    return status;
  }
  return YamlToJson::convert(root, descriptor);
}

}  // namespace Proxy::Config
