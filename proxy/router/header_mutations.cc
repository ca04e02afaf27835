#include "proxy/router/header_mutations.h"

#include "proxy/router/config_utility.h"

namespace Proxy::Router {
namespace {

using envoy::config::core::v3::HeaderValueOption;

// Header values may hold Envoy's %VARIABLE% formatters. Only "%%" (a literal '%') is applied
// here; other %...% text is kept as written until per-request formatting exists.
std::string formatHeaderValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); i++) {
    out.push_back(value[i]);
    if (value[i] == '%' && i + 1 < value.size() && value[i + 1] == '%') {
      i++;
    }
  }
  return out;
}

}  // namespace

// --- HeaderMutations ----------------------------------------------------------------------

HeaderMutations::HeaderMutations(const HeaderValueOptions& to_add, const HeaderNames& to_remove) {
  for (const HeaderValueOption& option : to_add) {
    const auto& header = option.header();
    std::string value =
        formatHeaderValue(header.value().empty() ? header.raw_value() : header.value());
    // Envoy drops a header whose value formats to nothing, unless asked to keep it.
    if (value.empty() && !option.keep_empty_value()) {
      continue;
    }
    Action action = option.append_action();
    if (option.has_append()) {
      action = option.append().value() ? HeaderValueOption::APPEND_IF_EXISTS_OR_ADD
                                       : HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD;
    }
    to_add_.push_back(Entry{StringUtil::toLower(header.key()), std::move(value), action});
  }
  for (const std::string& name : to_remove) {
    to_remove_.push_back(StringUtil::toLower(name));
  }
}

void HeaderMutations::apply(Http::HeaderMap& headers) const {
  for (const std::string& name : to_remove_) {
    headers.remove(name);
  }
  for (const Entry& entry : to_add_) {
    switch (entry.action) {
      case HeaderValueOption::ADD_IF_ABSENT:
        if (!headers.has(entry.key)) {
          headers.addCopy(entry.key, entry.value);
        }
        break;
      case HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD:
        headers.setCopy(entry.key, entry.value);
        break;
      case HeaderValueOption::OVERWRITE_IF_EXISTS:
        if (headers.has(entry.key)) {
          headers.setCopy(entry.key, entry.value);
        }
        break;
      default:  // APPEND_IF_EXISTS_OR_ADD
        headers.addCopy(entry.key, entry.value);
        break;
    }
  }
}

}  // namespace Proxy::Router
