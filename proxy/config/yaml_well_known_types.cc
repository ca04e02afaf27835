#include "proxy/config/yaml_to_json_converter.h"

// The well-known types' JSON forms (protobuf's JSON mapping), which are not objects of their
// fields: Any (its "@type" resolved in the generated pool), Duration, Timestamp, FieldMask,
// wrappers, Empty, and the schema-less Struct / Value / ListValue.

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

#include "proxy/common/json.h"

namespace Proxy::Config::YamlToJson {
namespace {

// "-1.5s" / "5s" / "0.000000001s": what protobuf's JSON mapping accepts for Duration.
bool isValidDuration(absl::string_view s) {
  if (!absl::ConsumeSuffix(&s, "s")) {
    return false;
  }
  absl::ConsumePrefix(&s, "-");
  const size_t dot = s.find('.');
  absl::string_view seconds = s.substr(0, dot);
  absl::string_view nanos =
      dot == absl::string_view::npos ? absl::string_view() : s.substr(dot + 1);
  if (seconds.empty() || seconds.size() > 12 || (dot != absl::string_view::npos && nanos.empty()) ||
      nanos.size() > 9) {
    return false;
  }
  for (absl::string_view part : {seconds, nanos}) {
    for (char c : part) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return false;
      }
    }
  }
  // Protobuf's limit: +-10000 years.
  int64_t secs = 0;
  return absl::SimpleAtoi(seconds, &secs) && secs <= 315576000000;
}

// lower_snake_case -> lowerCamelCase, for FieldMask paths (their JSON form is camel case).
std::string snakeToCamel(absl::string_view s) {
  std::string out;
  bool upper = false;
  for (char c : s) {
    if (c == '_') {
      upper = true;
    } else {
      out.push_back(upper ? absl::ascii_toupper(static_cast<unsigned char>(c)) : c);
      upper = false;
    }
  }
  return out;
}

}  // namespace

absl::Status YamlToJsonConverter::convertWellKnown(const YAML::Node& node, const Descriptor& d,
                                                   const std::string& path, std::string& out) {
  const std::string& n = d.full_name();
  if (n == "google.protobuf.Any") {
    return convertAny(node, path, out);
  }
  if (n == "google.protobuf.Duration") {
    if (!node.IsScalar() || !isValidDuration(node.Scalar())) {
      return error(path, absl::StrCat("invalid duration ", describe(node)));
    }
    Json::appendString(out, node.Scalar());
    return absl::OkStatus();
  }
  if (n == "google.protobuf.Timestamp") {
    absl::Time t;
    std::string err;
    if (!node.IsScalar() || !absl::ParseTime(absl::RFC3339_full, node.Scalar(), &t, &err)) {
      return error(path, absl::StrCat("invalid timestamp ", describe(node)));
    }
    Json::appendString(out, node.Scalar());
    return absl::OkStatus();
  }
  if (n == "google.protobuf.FieldMask") {
    std::vector<std::string> paths;
    if (node.IsScalar()) {
      for (absl::string_view p : absl::StrSplit(node.Scalar(), ',', absl::SkipEmpty())) {
        paths.push_back(snakeToCamel(absl::StripAsciiWhitespace(p)));
      }
    } else if (node.IsSequence()) {
      for (const YAML::Node& p : node) {
        if (!p.IsScalar()) {
          return error(path, absl::StrCat("invalid field mask path ", describe(p)));
        }
        paths.push_back(snakeToCamel(p.Scalar()));
      }
    } else if (!node.IsNull()) {
      return error(path, absl::StrCat("invalid field mask ", describe(node)));
    }
    Json::appendString(out, absl::StrJoin(paths, ","));
    return absl::OkStatus();
  }
  if (n == "google.protobuf.Struct") {
    if (!node.IsMap() && !node.IsNull()) {
      return error(path, absl::StrCat("expected a mapping, got ", describe(node)));
    }
    return convertFreeForm(node, path, out);
  }
  if (n == "google.protobuf.ListValue") {
    if (!node.IsSequence() && !node.IsNull()) {
      return error(path, absl::StrCat("expected a list, got ", describe(node)));
    }
    return node.IsNull() ? (out.append("[]"), absl::OkStatus()) : convertFreeForm(node, path, out);
  }
  if (n == "google.protobuf.Value") {
    return convertFreeForm(node, path, out);
  }
  if (n == "google.protobuf.Empty") {
    if (node.IsMap() && node.size() > 0) {
      return error(path, absl::StrCat("unknown field '", node.begin()->first.Scalar(), "'"));
    }
    if (!node.IsMap() && !node.IsNull()) {
      return error(path, absl::StrCat("expected an empty mapping, got ", describe(node)));
    }
    out.append("{}");
    return absl::OkStatus();
  }
  if (isWrapperType(d)) {
    // A wrapper's JSON form is its bare value.
    return convertScalar(node, *d.FindFieldByName("value"), path, out);
  }
  return error(path, absl::StrCat("unsupported well-known type ", n));
}

absl::Status YamlToJsonConverter::convertAny(const YAML::Node& node, const std::string& path,
                                             std::string& out) {
  if (node.IsNull()) {
    out.append("{}");
    return absl::OkStatus();
  }
  if (!node.IsMap()) {
    return error(path, absl::StrCat("expected a mapping with '@type', got ", describe(node)));
  }
  const YAML::Node type_node = node["@type"];
  if (!type_node.IsDefined() || type_node.IsNull()) {
    if (node.size() == 0) {
      out.append("{}");
      return absl::OkStatus();
    }
    return error(path, "missing '@type'");
  }
  if (!type_node.IsScalar()) {
    return error(path, absl::StrCat("invalid '@type' ", describe(type_node)));
  }
  const std::string& type_url = type_node.Scalar();
  const size_t slash = type_url.rfind('/');
  const Descriptor* inner =
      slash == std::string::npos
          ? nullptr
          : DescriptorPool::generated_pool()->FindMessageTypeByName(type_url.substr(slash + 1));
  if (inner == nullptr) {
    return error(path, absl::StrCat("unknown type '", type_url, "'"));
  }
  out.push_back('{');
  out.append("\"@type\":");
  // Protobuf's resolver wants the canonical prefix; "example.com/pkg.Msg" would not resolve.
  Json::appendString(out, absl::StrCat(kTypeUrlPrefix, inner->full_name()));
  if (isWellKnownType(*inner)) {
    // The JSON form of an Any holding a well-known type keeps the value under "value".
    Entries entries;
    absl::Status status = collectEntries(node, path, entries);
    if (!status.ok()) {
      return status;
    }
    for (const auto& [key, value] : entries) {
      if (key.Scalar() == "@type") {
        continue;
      }
      if (key.Scalar() != "value") {
        return error(path, absl::StrCat("unknown field '", key.Scalar(), "'"));
      }
      out.append(",\"value\":");
      status = convertMessage(value, *inner, join(path, "value"), out);
      if (!status.ok()) {
        return status;
      }
    }
    out.push_back('}');
    return absl::OkStatus();
  }
  bool first = false;  // "@type" already written
  absl::Status status = convertFields(node, *inner, path, /*skip_type_key=*/true, first, out);
  out.push_back('}');
  return status;
}

// Struct / Value / ListValue: no schema, so scalars are typed the way Envoy types them
// (quoted -> string; else bool, integer, float, string in that order).
absl::Status YamlToJsonConverter::convertFreeForm(const YAML::Node& node, const std::string& path,
                                                  std::string& out) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Entries entries;
      absl::Status status = collectEntries(node, path, entries);
      if (!status.ok()) {
        return status;
      }
      out.push_back('{');
      bool first = true;
      for (const auto& [key, value] : entries) {
        if (!key.IsScalar()) {
          return error(path, absl::StrCat("a key must be a scalar, got ", describe(key)));
        }
        if (!first) {
          out.push_back(',');
        }
        first = false;
        Json::appendString(out, key.Scalar());
        out.push_back(':');
        status = convertFreeForm(value, join(path, key.Scalar()), out);
        if (!status.ok()) {
          return status;
        }
      }
      out.push_back('}');
      return absl::OkStatus();
    }
    case YAML::NodeType::Sequence: {
      out.push_back('[');
      for (size_t i = 0; i < node.size(); i++) {
        if (i > 0) {
          out.push_back(',');
        }
        absl::Status status = convertFreeForm(node[i], absl::StrCat(path, "[", i, "]"), out);
        if (!status.ok()) {
          return status;
        }
      }
      out.push_back(']');
      return absl::OkStatus();
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() == "!") {
        Json::appendString(out, text);
        return absl::OkStatus();
      }
      bool b = false;
      int64_t i = 0;
      double d = 0;
      if (YAML::convert<bool>::decode(node, b)) {
        out.append(b ? "true" : "false");
      } else if (absl::SimpleAtoi(text, &i)) {
        absl::StrAppend(&out, i);
      } else if (absl::SimpleAtod(text, &d) && std::isfinite(d)) {
        appendDouble(out, d);
      } else {
        Json::appendString(out, text);
      }
      return absl::OkStatus();
    }
    default:
      out.append("null");
      return absl::OkStatus();
  }
}

}  // namespace Proxy::Config::YamlToJson
