#include "proxy/config/message_util.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include <google/protobuf/util/json_util.h>

namespace Proxy::Config {

absl::Status loadFromYaml(std::string_view yaml, google::protobuf::Message& out) {
  absl::StatusOr<std::string> json = yamlToJson(yaml, *out.GetDescriptor());
  if (!json.ok()) {
    return json.status();
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(*json, &out, options);
  if (!status.ok()) {
    // Protobuf's own checks (e.g. UTF-8) come last. Its paths are relative to the innermost Any,
    // so the message names the type it was parsing. Kept to one line.
    std::string message(status.message());
    std::replace(message.begin(), message.end(), '\n', ' ');
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ", out.GetDescriptor()->full_name(), ": ", message));
  }
  return absl::OkStatus();
}

absl::Status loadFromJson(std::string_view json, google::protobuf::Message& out) {
  // JSON is (for all practical purposes) YAML flow style, and going through the same walk gives
  // the same path-qualified errors for both formats.
  return loadFromYaml(json, out);
}

absl::Status loadFromFile(const std::string& path, google::protobuf::Message& out) {
  std::ifstream file(path, std::ios::in | std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("unable to read file '", path, "': ", std::strerror(errno)));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unable to read file '", path, "': ", std::strerror(errno)));
  }
  if (absl::EndsWith(path, ".json")) {
    return loadFromJson(contents.str(), out);
  }
  return loadFromYaml(contents.str(), out);
}

}  // namespace Proxy::Config