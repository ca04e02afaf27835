#include "proxy/config/field_path.h"

#include "absl/strings/str_cat.h"

#include "proxy/common/string_view.h"

namespace Proxy::Config {

std::string join(const std::string& path, std::string_view field) {
  return path.empty() ? std::string(field) : absl::StrCat(path, ".", asAbsl(field));
}

std::string at(const std::string& path, std::string_view field, int index) {
  return absl::StrCat(join(path, field), "[", index, "]");
}

absl::Status error(const std::string& path, std::string_view message) {
  return absl::InvalidArgumentError(path.empty() ? std::string(message)
                                                 : absl::StrCat(path, ": ", asAbsl(message)));
}

}  // namespace Proxy::Config
