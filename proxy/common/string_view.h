#pragma once

// std::string_view is the project's string view at every boundary it owns. Debian's abseil
// (20220623) is built without ABSL_USES_STD_STRING_VIEW, so absl::string_view is a class of its
// own there, with no conversion from or to std::string_view: these two convert at the calls
// into and out of absl (absl::SimpleAtoi, absl::StrSplit, Status::message(), absl containers'
// heterogeneous lookup, ...). re2::StringPiece converts from std::string_view by itself.

#include <string_view>

#include "absl/strings/string_view.h"

namespace Proxy {

inline absl::string_view asAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

inline std::string_view asStd(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace Proxy
