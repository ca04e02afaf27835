#include "proxy/config/data_source.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "proxy/config/field_path.h"

namespace Proxy::Config {

absl::StatusOr<std::string> readDataSource(const envoy::config::core::v3::DataSource& source,
                                           const std::string& what, size_t max_size) {
  using envoy::config::core::v3::DataSource;
  std::string data;
  switch (source.specifier_case()) {
    case DataSource::kInlineString:
      data = source.inline_string();
      break;
    case DataSource::kInlineBytes:
      data = source.inline_bytes();
      break;
    case DataSource::kFilename: {
      std::ifstream file(source.filename(), std::ios::in | std::ios::binary);
      if (!file) {
        return error(
            join(what, "filename"),
            absl::StrCat("unable to read file '", source.filename(), "': ", std::strerror(errno)));
      }
      std::stringstream contents;
      contents << file.rdbuf();
      data = contents.str();
      break;
    }
    case DataSource::kEnvironmentVariable: {
      const char* value = std::getenv(source.environment_variable().c_str());
      if (value == nullptr) {
        return error(join(what, "environment_variable"),
                     absl::StrCat("environment variable '", source.environment_variable(),
                                  "' does not exist"));
      }
      data = value;
      break;
    }
    default:
      return error(
          what, "one of filename, inline_bytes, inline_string or environment_variable is required");
  }
  if (data.size() > max_size) {
    return error(what, absl::StrCat("size is ", data.size(), " bytes; maximum is ", max_size));
  }
  return data;
}

}  // namespace Proxy::Config
